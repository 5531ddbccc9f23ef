"""Orbit distillation: each prediction on the orbit is pulled towards the orbit-averaged
prediction of the model itself, a teacher that is exactly invariant.

For the augmented image ``x̃`` with orbit predictions ``q_g = softmax f(g·x̃)`` and their mean
``p̄ = mean_g q_g`` (the prediction of the orbit-averaged model, the same for every point of
the orbit), ``R = mean_{b, g} KL(q_g ‖ sg(p̄))``, the mean over the batch and over every ``g``,
identity included, with ``sg`` a stop-gradient. ``R = 0`` exactly when every ``q_g`` equals
``p̄``, that is when the predictions are invariant on the orbit. Unlike IR, which asks each
``f(g·x̃)`` to agree with ``f(x̃)`` (and lets ``f(x̃)`` move towards the others), the target
is the orbit consensus and is not itself pushed: the gradient only moves each prediction
towards it. Without the stop-gradient the value is the generalised Jensen–Shannon divergence
of the orbit (AugMix's consistency loss, Hendrycks et al. 2020); with it, the orbit average
is a teacher as in self-distillation. The cost is IR's: one forward pass of the orbit.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ginv.models import Ensemble
from ginv.regularizers.base import Regularizer


def orbit_distillation(orbit_logits: Tensor) -> Tensor:
    """``mean_{g, b} KL(softmax f(g·x_b) ‖ sg(mean_h softmax f(h·x_b)))`` of orbit logits
    ``(..., |G|, B, K)``; returns ``(...)``."""
    log_q = torch.log_softmax(orbit_logits, -1)
    n = orbit_logits.shape[-3]
    log_teacher = (torch.logsumexp(log_q, -3, keepdim=True) - math.log(n)).detach()
    return (log_q.exp() * (log_q - log_teacher)).sum(-1).mean((-2, -1))


class OrbitDistillation(Regularizer):
    """``R`` above, on the whole orbit of each augmented image."""

    needs_orbit = True
    uses = "inputs"

    def __call__(self, model: Ensemble, x: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        orbit_logits = self.orbit_view(model(x))  # (M, |G|, B, K)
        return orbit_logits[:, 0], orbit_distillation(orbit_logits)
