"""Where the dataset files come from: a data directory, the cache, or a download."""

from __future__ import annotations

import http.client
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ginv.data.idx import (
    FILE_NAMES,
    KNOWN_SHA256,
    DataFileError,
    decompress,
    read_bytes,
    verify,
)
from ginv.errors import GinvError, warn_once
from ginv.io import atomic_write, atomic_write_json

DATASETS = tuple(KNOWN_SHA256)

# https first: the checksum protects the content either way, https also the privacy of the request
MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": (
        "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    ),
}
# The largest .gz (Fashion-MNIST's training images) is 26 MB; a mirror sending more is refused.
MAX_DOWNLOAD_BYTES = 48 << 20

# System-wide copies that distributions install (Debian's dataset-fashion-mnist).
SYSTEM_DIRS: dict[str, tuple[Path, ...]] = {
    "mnist": (Path("/usr/share/datasets/mnist"),),
    "fashion-mnist": (Path("/usr/share/datasets/fashion-mnist"),),
}


def default_data_dir() -> Path | None:
    """``$GINV_DATA_DIR`` if set."""
    value = os.environ.get("GINV_DATA_DIR")
    return Path(value).expanduser() if value else None


def default_cache_dir() -> Path:
    """``$GINV_CACHE_DIR``, else ``$XDG_CACHE_HOME/ginv``, else ``~/.cache/ginv``."""
    if value := os.environ.get("GINV_CACHE_DIR"):
        return Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ginv"


def _candidates(folder: Path, dataset: str, name: str) -> list[Path]:
    """Layouts accepted in a folder: ``folder/<dataset>/<name>[.gz]`` or ``folder/<name>[.gz]``."""
    return [
        d / f for d in (folder / dataset, folder) for f in (f"{name}.gz", name) if (d / f).is_file()
    ]


def _searched(dataset: str, data_dir: Path | None, cache_dir: Path) -> list[tuple[str, Path]]:
    """The folders :func:`find_file` looks in, in order, with their origin names."""
    searched: list[tuple[str, Path]] = []
    if data_dir is not None:
        searched.append(("data-dir", data_dir))
    searched.append(("cache", cache_dir))
    searched.extend(("system", d) for d in SYSTEM_DIRS[dataset])
    return searched


def _local_candidates(
    dataset: str, data_dir: Path | str | None, cache_dir: Path, name: str
) -> list[tuple[str, Path]]:
    """Every local copy of ``name``, in the order :func:`find_file` prefers them; a named data
    directory that does not exist, an unknown dataset or file name is an error."""
    if dataset not in KNOWN_SHA256:
        raise DataFileError(f"unknown dataset {dataset!r} (known: {', '.join(DATASETS)})")
    if name not in FILE_NAMES:
        raise DataFileError(f"unknown file {name!r} (known: {', '.join(FILE_NAMES)})")
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    if data_dir is not None and not data_dir.is_dir():
        raise DataFileError(f"{data_dir}: data directory does not exist")
    return [
        (origin, path)
        for origin, folder in _searched(dataset, data_dir, cache_dir)
        for path in _candidates(folder, dataset, name)
    ]


@dataclass(frozen=True)
class FoundFile:
    """A verified file and its origin: 'data-dir', 'cache', 'system' or 'download'."""

    path: Path
    origin: str
    data: bytes  # decompressed, checksum verified


def _fetch(url: str, timeout: float, max_seconds: float, max_bytes: int) -> bytes:
    """The body at ``url``: at most ``max_bytes``, complete within about ``max_seconds`` (each
    read waits at most ``timeout``), else an error."""
    deadline = time.monotonic() + max_seconds
    with urllib.request.urlopen(url, timeout=min(timeout, max_seconds)) as response:
        length = response.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > max_bytes:
            raise DataFileError(f"announces {length} bytes, more than the {max_bytes} allowed")
        body = bytearray()
        # read1: whatever has arrived, so that a mirror trickling bytes, which never lets a
        # read time out, still meets the deadline
        while chunk := response.read1(1 << 16):
            body += chunk
            if len(body) > max_bytes:
                raise DataFileError(f"sent more than the {max_bytes} bytes allowed")
            if time.monotonic() > deadline:
                raise DataFileError(f"not complete after {max_seconds:g} s")
        if length.isdigit() and len(body) != int(length):
            raise DataFileError(f"body cut short: {len(body)} of {length} bytes")
        return bytes(body)


def _download_verified(
    dataset: str,
    name: str,
    mirrors: Sequence[str] | None,
    retries: int,
    timeout: float,
    max_seconds: float,
) -> bytes:
    """The gzip bytes of ``name.gz`` from the first mirror giving a copy whose decompressed
    checksum passes. Tries every mirror, each ``retries`` times; any failure moves on."""
    expected = KNOWN_SHA256[dataset][name]
    failures = []
    for mirror in mirrors if mirrors is not None else MIRRORS[dataset]:
        url = mirror.rstrip("/") + f"/{name}.gz"
        for attempt in range(retries):
            try:
                raw = _fetch(url, timeout, max_seconds, MAX_DOWNLOAD_BYTES)
                verify(url, decompress(raw, url), expected)
                return raw
            # http.client.HTTPException: a body cut short (IncompleteRead), a garbled reply
            except (OSError, http.client.HTTPException, ValueError, DataFileError) as e:
                reason = getattr(e, "reason", None) or str(e) or type(e).__name__
                failures.append(f"{url}: {reason}")
                if attempt + 1 < retries:
                    time.sleep(0.5 * (attempt + 1))
    raise DataFileError(
        f"{dataset}/{name}: not found locally and no mirror gave a valid copy "
        f"(last error: {failures[-1] if failures else 'no mirrors'}); "
        "point GINV_DATA_DIR or --data-dir at a folder holding the IDX files"
    )


def download(
    dataset: str,
    name: str,
    dest: Path,
    mirrors: Sequence[str] | None = None,
    retries: int = 2,
    timeout: float = 30.0,
    max_seconds: float = 600.0,
) -> Path:
    """Fetch ``name.gz`` from the mirrors into ``dest`` (atomically, only once its
    decompressed checksum passes). Tries every mirror, each ``retries`` times, each attempt
    for at most ``max_seconds`` and ``MAX_DOWNLOAD_BYTES``."""

    raw = _download_verified(dataset, name, mirrors, retries, timeout, max_seconds)
    atomic_write(dest, lambda handle: handle.write(raw))
    return dest


# --- which local files were verified: (size, mtime) memo, so that a warm split cache can
# check the named data directory without reading and hashing 55 MB every time ----------
def _memo_path(cache_dir: Path) -> Path:
    return cache_dir / "verified.json"


def _read_memo(cache_dir: Path) -> dict:
    try:
        memo = json.loads(_memo_path(cache_dir).read_text())
    except (OSError, ValueError, RecursionError):  # damaged: the files are hashed again
        return {}
    return memo if isinstance(memo, dict) else {}


def _stamp(path: Path, sha: str) -> list:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, sha]


def _remember(cache_dir: Path, path: Path, sha: str) -> None:

    memo = _read_memo(cache_dir)
    key = str(path.resolve())
    if memo.get(key) == _stamp(path, sha):
        return
    memo[key] = _stamp(path, sha)
    try:
        atomic_write_json(memo, _memo_path(cache_dir))
    except GinvError as e:  # the memo only saves time
        warn_once(f"cache folder unusable, going on without it ({e})")


def find_file(
    dataset: str,
    name: str,
    data_dir: Path | str | None = None,
    cache_dir: Path | str | None = None,
    allow_download: bool = True,
    mirrors: Sequence[str] | None = None,
) -> FoundFile:
    """Locate and verify one dataset file: data directory, then cache, then system
    folders, then a download into the cache. A corrupt local copy is an error, not skipped."""
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    candidates = _local_candidates(dataset, data_dir, cache_dir, name)
    expected = KNOWN_SHA256[dataset][name]
    for origin, path in candidates:
        data = read_bytes(path)
        verify(path, data, expected)
        _remember(cache_dir, path, expected)
        return FoundFile(path, origin, data)
    if not allow_download:
        where = ", ".join(str(f) for _, f in _searched(dataset, data_dir, cache_dir))
        raise DataFileError(f"{dataset}/{name}: not found in {where} and downloads are off")
    raw = _download_verified(dataset, name, mirrors, retries=2, timeout=30.0, max_seconds=600.0)
    path = cache_dir / dataset / f"{name}.gz"

    try:
        atomic_write(path, lambda handle: handle.write(raw))
    except GinvError as e:  # the cache is optional: use the download, keep going
        warn_once(f"cache folder unusable, going on without it ({e})")
        return FoundFile(path, "download (not cached)", decompress(raw, str(path)))
    return FoundFile(path, "download", decompress(raw, str(path)))


def check_file(
    dataset: str, name: str, data_dir: Path | str | None, cache_dir: Path | str | None = None
) -> str:
    """Where :func:`find_file` finds ``name`` (``'origin: path'``), verified like it, but
    without reading a local file whose size and mtime match those of its last verification."""
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    for origin, path in _local_candidates(dataset, data_dir, cache_dir, name):
        if _read_memo(cache_dir).get(str(path.resolve())) == _stamp(
            path, KNOWN_SHA256[dataset][name]
        ):
            return f"{origin}: {path}"
        break  # find_file reads the first candidate: verify that one in full
    else:  # nothing to check; a download would not say whether the named folder is sound
        where = ", ".join(str(f) for _, f in _searched(dataset, _data_dir(data_dir), cache_dir))
        raise DataFileError(f"{dataset}/{name}: not found in {where}")
    found = find_file(dataset, name, data_dir, cache_dir, allow_download=False)
    return f"{found.origin}: {found.path}"


def _data_dir(data_dir: Path | str | None) -> Path | None:
    return Path(data_dir) if data_dir is not None else default_data_dir()
