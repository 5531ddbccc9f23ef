"""The data every measure takes: checked ``(images, labels)`` batches from tensors, NumPy
arrays or any iterable of batches (a ``DataLoader``), every batch's shape checked."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ginv.errors import GinvError

Batches = Iterable[tuple[Tensor, Tensor]]


def batches(
    images: Tensor | np.ndarray | Batches,
    labels: Tensor | np.ndarray | None,
    batch_size: int,
    need_labels: bool = True,
) -> tuple[Iterator[tuple[Tensor, Tensor]], int | None]:
    """Checked ``(images, labels)`` batches of ``images`` and ``labels`` (tensors or arrays,
    cut into ``batch_size`` samples) or of an iterable of batches (``labels=None``), and the
    number of samples when known. Each batch is checked by :func:`check_batch` as it comes,
    and every batch's images must have the first one's shape ``(C, H, W)``.

    Args:
        images: images ``(N, C, H, W)``, or an iterable of ``(images, labels)`` pairs
            (of bare image batches when ``need_labels`` is False).
        labels: labels ``(N,)``, or None with an iterable (or without labels).
        batch_size: samples per batch cut from tensors.
        need_labels: False for measures of features only: labels may be left out
            (they are then zeros).

    Returns:
        The batches (a generator) and the number of samples (None if unknown).

    Example: ``next(batches(torch.zeros(3, 1, 2, 2), torch.zeros(3, dtype=int), 2)[0])``.
    """
    if isinstance(images, Tensor | np.ndarray):
        if labels is None and need_labels:
            raise GinvError(
                "labels are missing: pass labels with images, or labels=None with "
                "an iterable of (images, labels) batches"
            )
        if labels is None:
            labels = torch.zeros(len(images), dtype=torch.long)
        if len(images) != len(labels):
            raise GinvError(
                f"need as many labels as images, got {len(images)} images and {len(labels)} labels"
            )
        cuts = range(0, len(images), batch_size)
        pairs = ((images[i : i + batch_size], labels[i : i + batch_size]) for i in cuts)
        return _same_shapes(check_batch(*p) for p in pairs), len(images)
    if labels is not None:
        raise GinvError(
            "labels must be None when images is an iterable of (images, labels) batches"
        )
    if not isinstance(images, Iterable) or isinstance(images, str | bytes):
        raise GinvError(
            f"images must be a tensor, an array or an iterable of batches, got {type(images).__name__}"
        )
    dataset = getattr(images, "dataset", None)
    total = len(dataset) if hasattr(dataset, "__len__") else None  # type: ignore[arg-type]
    return _same_shapes(check_batch(*_pair(b, need_labels)) for b in images), total


def _pair(batch: Any, need_labels: bool) -> tuple[Any, Any]:
    if not need_labels and isinstance(batch, Tensor | np.ndarray):
        return batch, torch.zeros(len(batch), dtype=torch.long)
    if isinstance(batch, Sequence) and len(batch) == 2:
        return batch[0], batch[1]
    raise GinvError(f"each batch must be a pair (images, labels), got {type(batch).__name__}")


def _same_shapes(checked: Iterable[tuple[Tensor, Tensor]]) -> Iterator[tuple[Tensor, Tensor]]:
    """The batches, refusing one whose images differ in shape from the first batch's."""
    first: tuple[int, ...] | None = None
    for i, (x, y) in enumerate(checked):
        shape = tuple(x.shape[1:])
        if first is None:
            first = shape
        elif shape != first:
            raise GinvError(
                f"batch {i} has images of shape {shape}, the first batch {first}; "
                "every batch must hold images of one size"
            )
        yield x, y


def check_batch(images: Any, labels: Any) -> tuple[Tensor, Tensor]:
    """Images ``(N, C, H, W)`` of finite floats and integer labels ``(N,)``; NumPy arrays
    are converted, labels moved to the images' device as ``long``.

    Example: ``check_batch(np.zeros((1, 1, 2, 2), np.float32), np.array([0]))``.
    """
    x = torch.as_tensor(images) if isinstance(images, np.ndarray) else images
    y = torch.as_tensor(labels) if isinstance(labels, np.ndarray) else labels
    if not isinstance(x, Tensor) or not isinstance(y, Tensor):
        raise GinvError(
            f"images and labels must be tensors or arrays, got {type(x).__name__} and {type(y).__name__}"
        )
    if not x.is_floating_point():
        raise GinvError(
            f"images must be floating point, got {x.dtype}; convert and normalise "
            "them as the model was trained (e.g. images.float() / 255)"
        )
    if x.dim() != 4:
        raise GinvError(f"images must be a batch (N, C, H, W), got shape {tuple(x.shape)}")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise GinvError(f"labels must be integer class indices, got {y.dtype}")
    if y.dim() != 1:
        raise GinvError(
            f"labels must have shape (N,), got {tuple(y.shape)}; e.g. labels.view(-1) for (N, 1)"
        )
    if len(x) != len(y):
        raise GinvError(f"need as many labels as images, got {len(x)} images and {len(y)} labels")
    if not bool(torch.isfinite(x).all()):
        raise GinvError(f"images contain {int((~torch.isfinite(x)).sum())} non-finite value(s)")
    return x, y.to(x.device, torch.long)
