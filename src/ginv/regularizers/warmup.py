"""IR on a ν schedule: the logit IR's weight is 0, then ramps linearly to ν.

At epoch ``t`` (from 0) of ``T``, the penalty is ``s(t)·I(f)`` with
``s(t) = clip((t − d)/k, 0, 1)``, ``d = ⌈start·T⌉`` the epochs before the ramp and
``k = max(1, ⌈ramp·T⌉)`` its length. Two schedules are registered:

* ``logit-warmup`` (``start = 0``, ``ramp = 0.2``): the first epoch is the cross-entropy
  alone, and from epoch ``k`` on it is the logit IR at the full ν. The rationale is the
  paper's: a strong invariance penalty from the first step is most cheaply met by flattening
  the network (the spectral decay that costs IR its accuracy) before the cross-entropy has
  built features; the warm-up lets the features form on augmented data first, as
  consistency-regularised semi-supervised learning ramps up its consistency weight (Laine &
  Aila 2017, Tarvainen & Valpola 2017).
* ``logit-late`` (``start = 0.5``, ``ramp = 0.1``): the first half of training is DA, then
  the penalty ramps up over a tenth of it. On the quick profile the warm-up's SI was already
  0.75 after two epochs at a tenth of ν, before the network had learnt to classify: even a
  small penalty is met by flattening if the features do not exist yet. The late schedule
  asks instead whether a network that has already learnt DA's features can be made invariant
  by IR without losing them, as fine-tuning does.

The trainer tells the epoch through :meth:`Regularizer.start_epoch`; outside training
(``start_epoch`` never called) the scale is 1. The reported penalty is the scaled one,
``s(t)·I(f)``. The run's best-validation epoch is chosen among the epochs at full strength
(:meth:`WarmedUpInvariance.selectable`), not among those before it.
"""

from __future__ import annotations

import math

from torch import Tensor

from ginv.groups import PermutationGroup
from ginv.models import Ensemble
from ginv.regularizers.output import OutputInvariance

WARMUP = 0.2
"""The share of the epochs over which ``logit-warmup``'s ν ramps from 0 to its value."""
LATE_START, LATE_RAMP = 0.5, 0.1
"""``logit-late``: the share of the epochs trained without the penalty, then of its ramp."""


class WarmedUpInvariance(OutputInvariance):
    """The output IR (``loss``, default logit) weighted by the schedule ``s(t)`` above."""

    def __init__(
        self, group: PermutationGroup, loss: str = "logit", start: float = 0.0,
        ramp: float = WARMUP,
    ) -> None:  # fmt: skip
        super().__init__(group, loss)
        self.start, self.ramp = start, ramp
        self.scale = 1.0

    def _schedule(self, epochs: int) -> tuple[int, int]:
        """``(d, k)``: the epochs before the ramp and the ramp's length."""
        return math.ceil(self.start * epochs), max(1, math.ceil(self.ramp * epochs))

    def start_epoch(self, epoch: int, epochs: int) -> None:
        d, k = self._schedule(epochs)
        self.scale = min(1.0, max(0.0, (epoch - d) / k))

    def selectable(self, epoch: int, epochs: int) -> bool:
        """Only epochs at full strength (and the last) are selected: best-validation-accuracy
        selection would otherwise favour the nearly unregularised epochs before them."""
        d, k = self._schedule(epochs)
        return epoch >= d + k or epoch == epochs - 1

    def __call__(self, model: Ensemble, x: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        logits, penalty = super().__call__(model, x, labels)
        return logits, self.scale * penalty
