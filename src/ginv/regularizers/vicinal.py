"""Vicinal IR: the logit IR on the training orbits and on the orbits of points between them.

For the augmented batch ``x̃_1 … x̃_B`` the penalty is
``R = ½ I(f; x̃) + ½ I(f; z)``, ``I`` the logit IR (:func:`ginv.losses.invariance_penalty`)
and ``z_b = λ_b x̃_b + (1 − λ_b) x̃_{b−1}`` the mixed images, ``λ_b = (b − ½)/B`` a grid over
``(0, 1)`` and ``x̃_0 = x̃_B`` (the batch order is drawn afresh every epoch, so the pairs and
their weights vary). ginv's group actions permute pixels, so they are linear and the orbit
of a mixed image is the mix of the orbits, ``h·z_b = λ_b h·x̃_b + (1 − λ_b) h·x̃_{b−1}``: the
orbit the trainer hands over gives both without drawing anything.

The rationale: SI compares input gradients, and the logit IR constrains only the values on
the training orbits, which a network can match while its gradients differ. A function
invariant on a whole segment ``x̃_{b−1} → x̃_b`` and on its image under every ``h`` has
equivariant directional derivatives along ``x̃_b − x̃_{b−1}``, the directions in which the
data vary. Penalising at interpolated points is the interpolation consistency of Verma et
al. (IJCAI 2019), on mixup's vicinity (Zhang et al., ICLR 2018), here with the orbit as the
perturbation. The cross-entropy stays on the clean images: one forward pass of twice the
orbit, twice IR's step.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ginv.losses import invariance_penalty
from ginv.models import Ensemble
from ginv.regularizers.base import Regularizer


def mix_weights(
    batch: int, device: torch.device | None = None, dtype: torch.dtype | None = None
) -> Tensor:
    """``λ_b = (b − ½)/B`` for ``b = 1 … B``: ``(B,)``, evenly over ``(0, 1)``."""
    return (torch.arange(batch, device=device, dtype=dtype) + 0.5) / batch


def mix_orbits(orbit: Tensor) -> Tensor:
    """The orbits of ``z_b = λ_b x_b + (1 − λ_b) x_{b−1}`` from orbits ``(..., |G|, B, ...)``
    (the batch on axis 2 of an ``(M, |G|, B, C, H, W)`` tensor)."""
    lam = mix_weights(orbit.shape[2], orbit.device, orbit.dtype)
    lam = lam.view(1, 1, -1, *([1] * (orbit.dim() - 3)))
    return lam * orbit + (1 - lam) * orbit.roll(1, dims=2)


def with_mixed_orbits(x: Tensor, order: int) -> Tensor:
    """The orbits ``(M, |G|·B, ...)`` (element-major) of the batch with those of its mixed
    images after them in each element: ``(M, |G|·2B, ...)``, whose logits viewed as
    ``(M, |G|, 2B, K)`` hold the batch's first ``B`` and the mixed images' last ``B``."""
    orbit = x.view(x.shape[0], order, -1, *x.shape[2:])
    return torch.cat([orbit, mix_orbits(orbit)], dim=2).flatten(1, 2)


class VicinalInvariance(Regularizer):
    """``R`` above: the logit IR on the orbit of the batch and of its mixed images."""

    needs_orbit = True
    uses = "inputs"

    def __call__(self, model: Ensemble, x: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        b = x.shape[1] // len(self.group)
        logits = self.orbit_view(model(with_mixed_orbits(x, len(self.group))))  # (M, |G|, 2B, K)
        clean, mixed = logits[:, :, :b], logits[:, :, b:]
        penalty = 0.5 * (invariance_penalty("logit", clean) + invariance_penalty("logit", mixed))
        return clean[:, 0], penalty
