"""Invariance regularisation (IR) of the outputs: ``I(f)``, the mean over the batch and
``h ≠ e`` of an invariance error between ``f(x̃)`` and ``f(h·x̃)``."""

from __future__ import annotations

from torch import Tensor

from ginv.groups import PermutationGroup
from ginv.losses import invariance_penalty, pairwise_error
from ginv.models import Ensemble
from ginv.regularizers.base import Regularizer


class OutputInvariance(Regularizer):
    """IR with one of :data:`ginv.losses.INVARIANCE_ERRORS` (logit, kl, nlogit, jsd)."""

    needs_orbit = True
    uses = "inputs"

    def __init__(self, group: PermutationGroup, loss: str) -> None:
        super().__init__(group)
        pairwise_error(loss)  # an unknown name is one clear error here
        self.loss = loss

    def __call__(self, model: Ensemble, x: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        orbit_logits = self.orbit_view(model(x))  # (M, |G|, B, K)
        return orbit_logits[:, 0], invariance_penalty(self.loss, orbit_logits)
