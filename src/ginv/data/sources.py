"""Where the dataset files come from: a data directory, the cache, or a download."""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ginv.data.idx import FILE_NAMES, KNOWN_SHA256, DataFileError, read_bytes, verify

DATASETS = tuple(KNOWN_SHA256)

MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
    ),
}

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


@dataclass(frozen=True)
class FoundFile:
    """A verified file and its origin: 'data-dir', 'cache', 'system' or 'download'."""

    path: Path
    origin: str
    data: bytes  # decompressed, checksum verified


def download(
    dataset: str,
    name: str,
    dest: Path,
    mirrors: Sequence[str] | None = None,
    retries: int = 2,
    timeout: float = 30.0,
) -> Path:
    """Fetch ``name.gz`` from the mirrors into ``dest`` (atomically, only once its
    decompressed checksum passes). Tries every mirror, each ``retries`` times."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    expected = KNOWN_SHA256[dataset][name]
    failures = []
    for mirror in mirrors if mirrors is not None else MIRRORS[dataset]:
        url = mirror.rstrip("/") + f"/{name}.gz"
        for attempt in range(retries):
            tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    tmp.write_bytes(response.read())
                verify(tmp, read_bytes(tmp), expected)
                os.replace(tmp, dest)
                return dest
            except (urllib.error.URLError, OSError, DataFileError) as e:
                failures.append(f"{url}: {getattr(e, 'reason', e)}")
                if attempt + 1 < retries:
                    time.sleep(0.5 * (attempt + 1))
            finally:
                tmp.unlink(missing_ok=True)
    raise DataFileError(
        f"{dataset}/{name}: not found locally and no mirror gave a valid copy "
        f"(last error: {failures[-1] if failures else 'no mirrors'}); "
        "point GINV_DATA_DIR or --data-dir at a folder holding the IDX files"
    )


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
    if dataset not in KNOWN_SHA256:
        raise DataFileError(f"unknown dataset {dataset!r} (known: {', '.join(DATASETS)})")
    if name not in FILE_NAMES:
        raise DataFileError(f"unknown file {name!r} (known: {', '.join(FILE_NAMES)})")
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    expected = KNOWN_SHA256[dataset][name]
    if data_dir is not None and not data_dir.is_dir():
        raise DataFileError(f"{data_dir}: data directory does not exist")
    searched: list[tuple[str, Path]] = []
    if data_dir is not None:
        searched.append(("data-dir", data_dir))
    searched.append(("cache", cache_dir))
    searched.extend(("system", d) for d in SYSTEM_DIRS[dataset])
    for origin, folder in searched:
        for path in _candidates(folder, dataset, name):
            data = read_bytes(path)
            verify(path, data, expected)
            return FoundFile(path, origin, data)
    if not allow_download:
        where = ", ".join(str(f) for _, f in searched)
        raise DataFileError(f"{dataset}/{name}: not found in {where} and downloads are off")
    path = download(dataset, name, cache_dir / dataset / f"{name}.gz", mirrors)
    return FoundFile(path, "download", read_bytes(path))
