"""DI: ``KL(softmax f(x) ‖ softmax f(g·x))``, the distribution invariance."""

from __future__ import annotations

from torch import Tensor

from ginv.losses import distribution_invariance
from ginv.measures.base import OrbitMeasure


class DistributionInvariance(OrbitMeasure):
    """``KL(u_x ‖ q_gx)`` per element and sample ``(|G|, n)``, in float64 (0 at the identity).

    Example: ``ginv.measure(model, x, y, ginv.R4(), metrics="di").di``.
    """

    name = "di"
    label = "DI  KL(u_x‖q_gx)"

    def from_orbit(self, logits: Tensor, labels: Tensor) -> Tensor:
        """:func:`ginv.losses.distribution_invariance` of ``f(x)`` and each ``f(g·x)``."""
        logits = logits.double()  # the errors of an invariant model are differences of equals
        return distribution_invariance(logits[:1], logits)
