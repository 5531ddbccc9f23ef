"""Distillation from an orbit-averaged teacher: every prediction on the orbit is pulled towards
the prediction of a separately trained model averaged over the orbit, which is exactly
invariant and fixed.

For the augmented image ``x̃``, the teacher ``t`` (a finished run, DA's in the frontier) gives
``p̄(x̃) = mean_h softmax t(h·x̃)``, the same for every point of the orbit, and the penalty is
``R = mean_{b, g} KL(p̄(x̃_b) ‖ softmax f(g·x̃_b))``, the identity included: the cross-entropy
of the student's orbit predictions against the teacher's soft labels, less the teacher's
entropy, so that ``R = 0`` exactly when every ``softmax f(g·x̃)`` equals ``p̄(x̃)``.

The rationale: IR's penalty, and the self-distillation of ``distill``, can be met by making
every prediction on the orbit equally unsure, which a network does by flattening itself (the
spectral decay that costs IR its accuracy). This target cannot be met that way. It is as
confident as the orbit-averaged DA model, which is as accurate as DA and invariant by
construction, and the student must match it on every point of the orbit: invariant *and*
confident. It is knowledge distillation (Hinton et al. 2015) with the orbit average as the
teacher, and it touches the group only through ``g·x``, the teacher's inputs included.
The teacher is not trained: its forward pass over the orbit costs a third of the student's
step.

``teacher-logit`` matches logits instead, ``R = ½ mean_{b, g} ‖f(g·x̃_b) − t̄(x̃_b)‖²`` with
``t̄(x̃) = mean_h t(h·x̃)`` the orbit-averaged teacher's logits (ginv's ``orbit-average``
model): IR's logit error with a fixed, invariant target of DA's scale, which no shrinking of
the student's logits can meet. Probabilities saturate where the teacher is confident, so the
KL leaves the logits, whose input gradients SI compares, free there; the logit target does
not.

``teacher-vicinal`` is ``teacher-logit`` on the orbits of the batch and of its mixed images
``z_b`` (:mod:`ginv.regularizers.vicinal`), ``R = ½ R_logit(x̃) + ½ R_logit(z)``. Matched at
the training orbits only, the student agrees with the teacher's values there and not with
its input gradients, which SI compares; the teacher is invariant everywhere, so a student
that matches it along the segments between training images also matches its directional
derivatives along them, a zeroth-order form of matching the teacher's gradients (Sobolev
training, Czarnecki et al., NeurIPS 2017). Twice ``teacher-logit``'s forward passes.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from ginv.errors import GinvError
from ginv.groups import PermutationGroup
from ginv.models import Ensemble
from ginv.regularizers.base import Regularizer
from ginv.regularizers.vicinal import with_mixed_orbits


def teacher_logit_distillation(orbit_logits: Tensor, teacher_orbit_logits: Tensor) -> Tensor:
    """``½ mean_{g, b} ‖f(g·x_b) − mean_h t(h·x_b)‖²`` of the student's and the teacher's orbit
    logits ``(..., |G|, B, K)``; returns ``(...)``."""
    target = teacher_orbit_logits.mean(-3, keepdim=True).detach()
    return 0.5 * (orbit_logits - target).pow(2).sum(-1).mean((-2, -1))


def teacher_distillation(orbit_logits: Tensor, teacher_orbit_logits: Tensor) -> Tensor:
    """``mean_{g, b} KL(p̄_b ‖ softmax f(g·x_b))`` with ``p̄_b = mean_h softmax t(h·x_b)``, of
    the student's and the teacher's orbit logits ``(..., |G|, B, K)``; returns ``(...)``.

    Example: a student equal to an invariant teacher scores 0::

        >>> z = torch.randn(1, 3, 5).expand(4, 3, 5)  # the same logits on the whole orbit
        >>> float(teacher_distillation(z, z)) < 1e-6
        True
    """
    n = teacher_orbit_logits.shape[-3]
    log_teacher = torch.logsumexp(torch.log_softmax(teacher_orbit_logits, -1), -3) - math.log(n)
    log_teacher = log_teacher.unsqueeze(-3).detach()  # (..., 1, B, K), the same for every g
    log_q = torch.log_softmax(orbit_logits, -1)
    return (log_teacher.exp() * (log_teacher - log_q)).sum(-1).clamp_min(0).mean((-2, -1))


TEACHER_LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "kl": teacher_distillation,
    "logit": teacher_logit_distillation,
}
"""The penalties of the student's and the teacher's orbit logits, by name."""


class OrbitTeacher(Regularizer):
    """``R`` above with ``loss`` (``kl``: on probabilities; ``logit``), on the whole orbit of
    each augmented image, and with ``vicinal`` also on the orbits of the mixed images; the
    teacher, one per member (a batched model of finished runs), is given by the trainer
    (:attr:`teacher`)."""

    needs_orbit = True
    needs_teacher = True
    uses = "inputs"

    def __init__(self, group: PermutationGroup, loss: str = "kl", vicinal: bool = False) -> None:
        super().__init__(group)
        if loss not in TEACHER_LOSSES:
            raise GinvError(f"unknown teacher loss {loss!r} (known: {', '.join(TEACHER_LOSSES)})")
        self.penalty = TEACHER_LOSSES[loss]
        self.vicinal = vicinal

    def __call__(self, model: Ensemble, x: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        if self.teacher is None:
            raise GinvError("the teacher distillation needs a teacher (TrainConfig.teacher)")
        b = x.shape[1] // len(self.group)
        if self.vicinal:  # the mixed images' orbits beside the batch's: (M, |G|·2B, ...)
            x = with_mixed_orbits(x, len(self.group))
        orbit_logits = self.orbit_view(model(x))  # (M, |G|, B or 2B, K)
        with torch.no_grad():
            teacher_logits = self.orbit_view(self.teacher(x))
        # the mean over 2B images is ½(batch) + ½(mixed)
        return orbit_logits[:, 0, :b], self.penalty(orbit_logits, teacher_logits)
