"""The bottom layer of ginv's files: atomic writes (a file is either the old version or the
complete new one, never half, and on disk before it replaces the old one), safe reads (a
torch file is unpickled as tensors and plain data only, never as code), and the one stable
hash that names cached runs, measures and splits. It imports nothing else from ginv but its
errors, so every layer can use it."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import pickle
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch

from ginv.errors import GinvError

# `.{name}.{pid}@{host}.tmp`: a write in progress, or one whose process was killed mid-write.
# The host is part of the name because a run cache on a shared file system has writers on
# many machines, and a pid means something only on its own machine. (Older temporaries,
# `.{name}.{pid}.tmp`, count as this machine's.)
_TMP = re.compile(r"^\..+\.(\d+)(?:@([A-Za-z0-9_-]+))?\.tmp$")
_HOST = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname().split(".")[0]) or "host"


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}@{_HOST}.tmp")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, another user's
        return True
    return True


def remove_stale_temporaries(folder: Path) -> None:
    """Delete this machine's ``.{name}.{pid}@{host}.tmp`` files in ``folder`` whose process is
    gone: what a kill in the middle of an atomic write leaves behind."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        found = _TMP.match(entry.name)
        if not found or found.group(2) not in (None, _HOST):
            continue  # not a temporary, or another machine's: its pid means nothing here
        if int(found.group(1)) != os.getpid() and not _alive(int(found.group(1))):
            with contextlib.suppress(OSError):  # a folder of that name is not ours to remove
                if not entry.is_dir(follow_symlinks=False):
                    Path(entry.path).unlink(missing_ok=True)


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable, where the platform lets a folder be synced."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a folder; the rename still happened
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Call ``write`` on a temporary binary file beside ``path``, fsync it, rename it over
    ``path`` and sync the folder. A failure (a full disk: ENOSPC) leaves ``path`` as it was,
    removes the temporary file and is one :class:`GinvError` line naming ``path``."""
    path = Path(path)
    tmp = _tmp(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path.parent)
        if tmp.is_dir() and not tmp.is_symlink():  # planted: a folder is never ginv's
            raise GinvError(f"cannot write {path}: the folder {tmp} is in the way")
        # our own name: a file left by an earlier process with this pid, or a planted link;
        # "x" below then creates the file afresh, never writing through a link
        tmp.unlink(missing_ok=True)
        with open(tmp, "xb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as e:
        reason = e.strerror or str(e) or errno.errorcode.get(e.errno or 0, type(e).__name__)
        raise GinvError(f"cannot write {path}: {reason}") from None
    finally:
        with contextlib.suppress(OSError):  # absent, or its folder could not be made
            tmp.unlink(missing_ok=True)


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save(obj)`` to ``path``, atomically (:func:`atomic_write`)."""
    atomic_write(path, lambda handle: torch.save(obj, handle))


def atomic_write_text(text: str, path: Path) -> None:
    """``text`` (UTF-8) to ``path``, atomically."""
    atomic_write(path, lambda handle: handle.write(text.encode()))


def atomic_write_json(obj: Any, path: Path) -> None:
    """``obj`` as indented JSON to ``path``, atomically."""
    atomic_write_text(json.dumps(obj, indent=2) + "\n", path)


def load_json(path: Path) -> Any:
    """The JSON document in ``path``; a missing, unreadable or malformed file is one
    :class:`GinvError` line naming it (these files are ginv's own: damage means tampering or
    a failing disk, and guessing would hide it)."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise GinvError(f"{path}: missing") from None
    except (OSError, ValueError) as e:  # UnicodeDecodeError and JSONDecodeError included
        raise GinvError(f"{path}: unreadable ({(str(e).splitlines() or [''])[0][:120]})") from None
    except RecursionError:  # `[[[[…` thousands deep: no record of ginv's nests like this
        raise GinvError(f"{path}: unreadable (nested too deep)") from None


def load_torch_file(path: Path, map_location: Any = None, mmap: bool = False) -> Any:
    """``torch.load(path, weights_only=True)``: tensors, containers and numbers only, so a
    planted file cannot run code; a missing, corrupt or refused file is one line naming it.
    ``mmap`` maps the tensors instead of reading them (to look at a file's small parts)."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
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


def load_weights(path: Path, map_location: Any = "cpu") -> dict[str, Any]:
    """A state dict of tensors from a file, and nothing else: ``.safetensors`` through the
    ``safetensors`` package (``pip install 'ginv[safetensors]'``), anything else through
    :func:`load_torch_file` (``weights_only=True``). A file of anything but a flat mapping
    of names to tensors is one :class:`GinvError` line naming it."""
    path = Path(path)
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise GinvError(
                f"{path}: reading .safetensors needs the safetensors package "
                "(pip install 'ginv[safetensors]')"
            ) from None
        if not path.is_file():
            raise GinvError(f"{path}: missing")
        try:
            state: Any = load_file(str(path), device=str(map_location))
        except Exception as e:  # the package raises its own errors for a damaged header
            raise GinvError(f"{path}: not a safetensors file ({type(e).__name__})") from None
    else:
        state = load_torch_file(path, map_location)
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise GinvError(f"{path}: not a state dict (a mapping of names to tensors)")
    return state


def short_hash(text: str, length: int = 16) -> str:
    """The first ``length`` hex digits of the sha256 of ``text``."""
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def stable_hash(obj: Any, length: int = 16) -> str:
    """:func:`short_hash` of ``obj`` as JSON with sorted keys: equal settings, equal names."""
    return short_hash(json.dumps(obj, sort_keys=True), length)
