"""Invariance errors between the outputs at ``x`` and at ``g·x`` (SPEC §4, §5).

Each pairwise error maps logits ``a = f(x)`` and ``b = f(g·x)`` of shape ``(..., K)`` to
``(...)``; :func:`invariance_penalty` averages one over the batch and the non-identity
group elements. The measures (LI, DI) call the same functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from ginv.errors import GinvError

PairwiseError = Callable[[Tensor, Tensor], Tensor]


def logit_invariance(a: Tensor, b: Tensor) -> Tensor:
    """``½‖a − b‖²``."""
    return 0.5 * (a - b).pow(2).sum(-1)


def distribution_invariance(a: Tensor, b: Tensor) -> Tensor:
    """``KL(softmax a ‖ softmax b)``."""
    log_p, log_q = torch.log_softmax(a, -1), torch.log_softmax(b, -1)
    return (log_p.exp() * (log_p - log_q)).sum(-1)


def normalised_logit_invariance(a: Tensor, b: Tensor, eps: float = 1e-12) -> Tensor:
    """``‖a − b‖² / ‖a‖²``."""
    return (a - b).pow(2).sum(-1) / a.pow(2).sum(-1).clamp_min(eps)


def jensen_shannon_invariance(a: Tensor, b: Tensor) -> Tensor:
    """``½ KL(p ‖ m) + ½ KL(q ‖ m)``, ``m = (p + q)/2``, ``p, q`` the softmax of ``a, b``."""
    log_p, log_q = torch.log_softmax(a, -1), torch.log_softmax(b, -1)
    log_m = torch.logaddexp(log_p, log_q) - math.log(2.0)  # broadcasts, as the others do
    kl_pm = (log_p.exp() * (log_p - log_m)).sum(-1)
    kl_qm = (log_q.exp() * (log_q - log_m)).sum(-1)
    return 0.5 * (kl_pm + kl_qm)


INVARIANCE_ERRORS: dict[str, PairwiseError] = {
    "logit": logit_invariance,
    "kl": distribution_invariance,
    "nlogit": normalised_logit_invariance,
    "jsd": jensen_shannon_invariance,
}


def pairwise_error(name: str) -> PairwiseError:
    try:
        return INVARIANCE_ERRORS[name]
    except KeyError:
        known = ", ".join(INVARIANCE_ERRORS)
        raise GinvError(f"unknown invariance loss {name!r} (known: {known})") from None


def invariance_penalty(name: str, orbit_logits: Tensor) -> Tensor:
    """``I(f)``: mean over the batch and ``h ≠ e`` of the error between ``f(x)`` and ``f(h·x)``.

    ``orbit_logits`` is ``(..., |G|, B, K)`` with the identity first; returns ``(...)``.
    """
    ref, others = orbit_logits[..., :1, :, :], orbit_logits[..., 1:, :, :]
    return pairwise_error(name)(ref, others).mean((-2, -1))
