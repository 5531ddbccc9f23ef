"""Distribution drift ``D(β) = (1−β)·D1 + β·D2`` from Transforming-MNIST to -FMNIST."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from ginv.data.transforming import Split, TransformingDataset
from ginv.errors import GinvError

DriftMode = Literal["blend", "mixture"]


def pair_by_class(labels1: Tensor, labels2: Tensor, seed: int = 0) -> Tensor:
    """For each sample of D1, the index of a D2 sample with the same class index, drawn
    without replacement per class (cycling when D2 has fewer)."""
    gen = torch.Generator().manual_seed(seed)
    l1, l2 = labels1.cpu(), labels2.cpu()
    partner = torch.empty_like(l1)
    for c in l1.unique().tolist():
        idx1 = (l1 == c).nonzero().squeeze(1)
        idx2 = (l2 == c).nonzero().squeeze(1)
        if len(idx2) == 0:
            raise GinvError(f"drift: class {c} has no sample in the target dataset")
        idx2 = idx2[torch.randperm(len(idx2), generator=gen)]
        partner[idx1] = idx2[torch.arange(len(idx1)) % len(idx2)]
    return partner.to(labels1.device)


def drift_split(
    d1: TransformingDataset,
    d2: TransformingDataset,
    beta: float,
    mode: DriftMode = "blend",
    split: str = "test",
    seed: int = 0,
    samples: int | None = None,
) -> Split:
    """Samples of ``D(β)`` with D1's labels, normalised with D1's training statistics.

    ``blend``: pixel-wise ``(1−β)·x1 + β·x2`` of class-paired images, in [0, 1] pixel space.
    ``mixture``: each sample is its D2 partner with probability β (nested as β grows).
    ``samples`` keeps the first N samples of D1's split.
    """
    if not 0.0 <= beta <= 1.0:
        raise GinvError(f"drift β must lie in [0, 1], got {beta}")
    s1: Split = getattr(d1, split).head(samples)
    s2: Split = getattr(d2, split)
    x2 = d2.to_pixels(s2.images[pair_by_class(s1.labels, s2.labels, seed)])
    x1 = d1.to_pixels(s1.images)
    if mode == "blend":
        pixels = (1.0 - beta) * x1 + beta * x2
    elif mode == "mixture":
        u = torch.rand(len(s1), generator=torch.Generator().manual_seed(seed + 1))
        take = (u < beta).to(x1.device).view(-1, 1, 1, 1)
        pixels = torch.where(take, x2, x1)
    else:
        raise GinvError(f"drift mode must be 'blend' or 'mixture', got {mode!r}")
    return Split(d1.normalise(pixels), s1.labels)
