"""LI: ``½‖f(x) − f(g·x)‖²``, the logit invariance."""

from __future__ import annotations

from torch import Tensor

from ginv.losses import logit_invariance
from ginv.measures.base import OrbitMeasure


class LogitInvariance(OrbitMeasure):
    """``½‖f(x) − f(g·x)‖²`` per element and sample ``(|G|, n)``, in float64.

    Example: ``ginv.measure(model, x, y, ginv.R4(), metrics="li").li``.
    """

    name = "li"
    label = "LI  ½‖f(x)−f(gx)‖²"

    def from_orbit(self, logits: Tensor, labels: Tensor) -> Tensor:
        """:func:`ginv.losses.logit_invariance` of ``f(x)`` and each ``f(g·x)``."""
        logits = logits.double()
        return logit_invariance(logits[:1], logits)
