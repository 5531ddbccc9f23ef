"""Datasets from arrays in files (a ``.npz``, an image folder): layout, checks, splits, hash.

Images arrive as ``(N, H, W)``, ``(N, H, W, C)`` or ``(N, C, H, W)``, uint8 or float in
``[0, 1]``. **Layout rule**: a 4-d array whose last axis has at most 4 entries and whose
second has more is channels-last (HWC); one whose second axis has at most 4 and whose last
has more is channels-first (CHW); any other 4-d shape (e.g. ``(N, 3, 4, 3)``) is ambiguous
and refused. Labels are integers ``0 … K − 1`` with ``K`` = the largest training label + 1.

**Splits**: the file's test split is the test split; the validation split is
``min(n_val, N_train // 5)`` samples drawn from the file's training split with
``split_seed``, the rest is the training split; each split is in a seeded random order
(``split_seed``) so that its first ``n`` samples are a random sample. ``n_train``,
``n_test`` and ``drop_class`` of :class:`~ginv.data.DataConfig` are the IDX sources'
protocol and do not apply.

**Identity**: a file dataset is known to the caches by the sha256 of its content (the bytes
of a ``.npz``; each image file's relative path and bytes for a folder), never by its path:
a moved copy keeps its cached splits and runs, a changed one gets new ones.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ginv.data.idx import DataFileError
from ginv.data.source import RawSplits, SplitSettings, check_split_tensors

MAX_CLASSES = 10_000


def as_images(array: np.ndarray, where: str) -> Tensor:
    """``array`` as a ``(N, C, H, W)`` uint8 or float32 tensor (layout rule: module doc)."""
    if array.dtype == object or array.dtype.kind not in "uif":
        raise DataFileError(f"{where}: images must be uint8 or float, got dtype {array.dtype}")
    if array.ndim == 3:
        array = array[:, None]
    elif array.ndim == 4:
        first, last = array.shape[1], array.shape[-1]
        if last <= 4 < first:
            array = array.transpose(0, 3, 1, 2)
        elif not first <= 4 < last:
            raise DataFileError(
                f"{where}: cannot tell the channel axis of images shaped {array.shape} "
                "((N, H, W, C) needs C ≤ 4 < W, (N, C, H, W) needs C ≤ 4 < W)"
            )
    else:
        raise DataFileError(
            f"{where}: images must be (N, H, W), (N, H, W, C) or (N, C, H, W), "
            f"got {array.ndim} dimensions {array.shape}"
        )
    if min(array.shape) < 1:
        raise DataFileError(f"{where}: no images (shape {array.shape})")
    if array.dtype == np.uint8:
        return torch.from_numpy(np.ascontiguousarray(array))
    if array.dtype.kind in "iu":
        raise DataFileError(f"{where}: integer images must be uint8, got {array.dtype}")
    values = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(values).all() or values.min() < 0 or values.max() > 1:
        raise DataFileError(f"{where}: float images must be finite and lie in [0, 1]")
    return torch.from_numpy(values)


def as_labels(array: np.ndarray, n: int, where: str) -> Tensor:
    """``array`` as ``(n,)`` int64 labels ≥ 0."""
    if array.dtype == object or array.dtype.kind not in "iu":
        raise DataFileError(f"{where}: labels must be integers, got dtype {array.dtype}")
    if array.ndim != 1 or len(array) != n:
        raise DataFileError(f"{where}: {n} images but labels shaped {array.shape}")
    labels = torch.from_numpy(array.astype(np.int64))
    if (labels < 0).any():
        raise DataFileError(f"{where}: labels out of range (negative)")
    return labels


def check_pair(train: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor], where: str) -> int:
    """The number of classes of a train and a test split; their images must agree in shape
    (but for N) and dtype, and every test label must be a training class."""
    (xt, yt), (xs, ys) = train, test
    if xt.shape[1:] != xs.shape[1:] or xt.dtype != xs.dtype:
        raise DataFileError(
            f"{where}: train images {tuple(xt.shape[1:])} {xt.dtype} but test images "
            f"{tuple(xs.shape[1:])} {xs.dtype}"
        )
    if len(yt) < 2:
        raise DataFileError(f"{where}: a training split of {len(yt)} images cannot be split")
    num_classes = int(yt.max()) + 1
    if num_classes > MAX_CLASSES:
        raise DataFileError(f"{where}: labels out of range (largest {num_classes - 1})")
    if len(ys) and int(ys.max()) >= num_classes:
        raise DataFileError(
            f"{where}: labels out of range: test label {int(ys.max())}, but the training "
            f"labels are 0 … {num_classes - 1}"
        )
    return num_classes


def split_given(
    cfg: SplitSettings, train: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor],
    sources: dict[str, str], where: str,
) -> RawSplits:  # fmt: skip
    """The cache entry of a file dataset: splits as the module docstring says."""
    num_classes = check_pair(train, test, where)
    (xt, yt), (xs, ys) = train, test
    gen = torch.Generator().manual_seed(cfg.split_seed)
    n_val = max(1, min(cfg.n_val, len(yt) // 5))
    order = torch.randperm(len(yt), generator=gen)
    test_order = torch.randperm(len(ys), generator=gen)
    val, rest = order[:n_val], order[n_val:]
    return {
        "train": {"images": xt[rest], "labels": yt[rest]},
        "test": {"images": xs[test_order], "labels": ys[test_order]},
        "val": {"images": xt[val], "labels": yt[val]},
        "sources": sources,
        "num_classes": num_classes,
    }


def file_cache_problem(raw: RawSplits) -> str | None:
    """What is wrong with a file dataset's cache entry, or None."""
    problem = check_split_tensors(raw)
    if problem is not None:
        return problem
    k = raw.get("num_classes")
    if not isinstance(k, int) or not 1 <= k <= MAX_CLASSES:
        return "has no number of classes"
    shapes = {
        (tuple(raw[s]["images"].shape[1:]), raw[s]["images"].dtype)
        for s in ("train", "test", "val")
    }
    if len(shapes) != 1:
        return "has splits of different image shapes"
    for s in ("train", "test", "val"):
        y = raw[s]["labels"]
        if ((y < 0) | (y >= k)).any():
            return f"has {s} labels out of range"
    return None


_HASHES: dict[tuple[Any, ...], str] = {}


def content_hash(root: Path, files: Callable[[], Iterable[Path]]) -> str:
    """sha256 over ``files()`` (paths relative to ``root`` and bytes), memoised by their sizes
    and mtimes: the file dataset's identity (module doc)."""
    paths = sorted(files())
    try:
        stamp = tuple((str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in paths)
    except OSError as e:
        raise DataFileError(f"{root}: cannot read ({e.strerror})") from None
    if stamp not in _HASHES:
        h = hashlib.sha256()
        for p in paths:
            rel = p.relative_to(root).as_posix() if p != root else ""
            try:
                data = p.read_bytes()
            except OSError as e:
                raise DataFileError(f"{p}: cannot read ({e.strerror})") from None
            h.update(f"{rel}\0{len(data)}\0".encode())
            h.update(data)
        _HASHES[stamp] = h.hexdigest()
    return _HASHES[stamp]


def label_of(path: Path) -> str:
    """A file dataset's name in run names and cache files: its stem, made filename-safe."""
    stem = path.stem if path.suffix else path.name
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-.") or "data"
