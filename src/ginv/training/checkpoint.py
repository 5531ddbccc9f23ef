"""Atomic writes: a file is either the old version or the complete new one, never half.
Safe reads: a torch file is unpickled as tensors and plain data only, never as code."""

from __future__ import annotations

import json
import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from ginv.errors import GinvError


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def atomic_torch_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(path)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(text: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(path)
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_json(obj: Any, path: Path) -> None:
    atomic_write_text(json.dumps(obj, indent=2) + "\n", path)


def load_torch_file(path: Path, map_location: Any = None) -> Any:
    """``torch.load(path, weights_only=True)``: tensors, containers and numbers only, so a
    planted file cannot run code; a missing, corrupt or refused file is one line naming it."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise GinvError(f"{path}: missing") from None
    except pickle.UnpicklingError as e:
        # torch's message is a paragraph; keep the offending global, when it names one
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        what = f"it asks to run {found.group(1)}" if found else "it is not plain torch data"
        raise GinvError(
            f"{path}: refused, {what}; only tensors and plain data are loaded (delete the file "
            "if it is not yours)"
        ) from None
    except Exception as e:  # zip, EOF, key errors of a corrupt or truncated file
        detail = str(e).splitlines()[0][:120] if str(e) else ""
        raise GinvError(
            f"{path}: corrupt or truncated torch file ({type(e).__name__}: {detail})"
        ) from None
