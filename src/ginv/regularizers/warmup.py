"""IR with a ν warm-up: the logit IR's weight ramps linearly from 0 over the first epochs.

At epoch ``t`` (from 0) of ``T``, the penalty is ``s(t)·I(f)`` with ``s(t) = min(1, t/k)`` and
``k = ⌈WARMUP·T⌉`` (a fifth of training): the first epoch is the cross-entropy alone, and
from epoch ``k`` on it is the logit IR at the full ν. The rationale is the paper's: a strong
invariance penalty from the first step is most cheaply met by flattening the network (the
spectral decay that costs IR its accuracy) before the cross-entropy has built features; the
warm-up lets the features form on augmented data first, as consistency-regularised
semi-supervised learning ramps up its consistency weight (Laine & Aila 2017, Tarvainen &
Valpola 2017). The trainer tells the epoch through :meth:`Regularizer.start_epoch`; outside
training (``start_epoch`` never called) the scale is 1. The reported penalty is the scaled
one, ``s(t)·I(f)``. The run's best-validation epoch is chosen among the epochs at full
strength (:meth:`WarmedUpInvariance.selectable`), not among those of the ramp.
"""

from __future__ import annotations

import math

from torch import Tensor

from ginv.groups import PermutationGroup
from ginv.models import Ensemble
from ginv.regularizers.output import OutputInvariance

WARMUP = 0.2
"""The share of the epochs over which ν ramps from 0 to its value."""


class WarmedUpInvariance(OutputInvariance):
    """The output IR (``loss``, default logit) weighted by the ramp ``s(t)`` above."""

    def __init__(self, group: PermutationGroup, loss: str = "logit") -> None:
        super().__init__(group, loss)
        self.scale = 1.0

    def start_epoch(self, epoch: int, epochs: int) -> None:
        self.scale = min(1.0, epoch / _ramp(epochs))

    def selectable(self, epoch: int, epochs: int) -> bool:
        """Only epochs at full strength (and the last) are selected: best-validation-accuracy
        selection would otherwise favour the nearly unregularised first epochs."""
        return epoch >= _ramp(epochs) or epoch == epochs - 1

    def __call__(self, model: Ensemble, x: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        logits, penalty = super().__call__(model, x, labels)
        return logits, self.scale * penalty


def _ramp(epochs: int) -> int:
    """``k``, the epochs of the ramp."""
    return max(1, math.ceil(WARMUP * epochs))
