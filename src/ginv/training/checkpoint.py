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
    except Exception as e:
        # torch's refusal is a paragraph; keep only the global the file asked for
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        if isinstance(e, pickle.UnpicklingError) and found:
            raise GinvError(
                f"{path}: refused, it asks to run {found.group(1)}; only tensors and plain data "
                "are loaded (delete the file if it is not yours)"
            ) from None
        detail = type(e).__name__
        if str(e) and not isinstance(e, pickle.UnpicklingError):  # whose text says weights_only
            detail += f": {str(e).splitlines()[0].split('. ')[0][:120]}"
        raise GinvError(f"{path}: corrupt, truncated or not a torch file ({detail})") from None
