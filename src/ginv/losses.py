"""Invariance errors between the outputs at ``x`` and at ``g·x``.

Each pairwise error maps logits ``a = f(x)`` and ``b = f(g·x)`` of shape ``(..., K)`` to
``(...)``; :func:`invariance_penalty` averages one over the batch and the non-identity
group elements. The measures (LI, DI) call the same functions. :func:`invariance_loss` is the IR penalty of
any model on a batch, for a training loop of one's own.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from ginv.errors import GinvError

if TYPE_CHECKING:
    from ginv.groups import Group

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
    """The invariance error named ``name`` (:data:`INVARIANCE_ERRORS`); an unknown name is
    one :class:`GinvError` listing the known."""
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


def invariance_loss(
    model: Callable[[Tensor], Tensor],
    images: Tensor,
    group: Group,
    loss: str = "logit",
    sample: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""The IR penalty of ``model`` on a batch: a differentiable scalar to add, weighted by ν,
    to the cross-entropy in any training loop.

    .. math::

        I(f) = \frac{1}{B\,(|G| - 1)} \sum_{b=1}^{B} \sum_{g \ne e} E\big(f(x_b), f(g·x_b)\big)

    with ``E`` the pairwise error ``loss`` of :data:`INVARIANCE_ERRORS` (``logit``:
    ``½‖a − b‖²``; ``kl``: ``KL(softmax a ‖ softmax b)``; ``nlogit``; ``jsd``). It is the
    penalty that ``ginv train --reg LOSS`` adds (:class:`ginv.regularizers.OutputInvariance`),
    on the same batch the same number. With ``sample=True`` each image is compared with one
    non-identity element ``g_b`` drawn uniformly (from ``generator`` if given) instead of its
    whole orbit: ``mean_b E(f(x_b), f(g_b·x_b))``, an unbiased estimate of ``I(f)`` for two
    forward passes of the batch instead of ``|G|``.

    ``model`` is any ``nn.Module`` (or function) mapping images ``(B, C, H, W)`` to logits
    ``(B, K)``; ``images`` is ``(B, C, H, W)``; ``group`` a ginv group. Example::

        import torch, ginv
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(36, 3))
        x = torch.randn(8, 1, 6, 6)
        penalty = ginv.invariance_loss(model, x, ginv.R4(), loss="kl")
        penalty.backward()  # gradients reach the model's weights
    """
    error = pairwise_error(loss)
    if not callable(model):
        raise GinvError(f"model must be a module or function of images, got {type(model).__name__}")
    if not isinstance(images, Tensor) or images.dim() != 4 or not images.is_floating_point():
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise GinvError(f"images must be a floating-point batch (B, C, H, W), got {shape}")
    if images.shape[0] == 0:
        raise GinvError("images is an empty batch: the penalty is a mean over its samples")
    if not all(hasattr(group, a) for a in ("orbit", "act", "__len__")):
        raise GinvError(f"group must be a ginv group (e.g. ginv.R4()), got {type(group).__name__}")
    if len(group) < 2:
        raise GinvError("the group has no element but the identity: there is nothing to compare")
    if not isinstance(sample, bool):
        raise GinvError(f"sample must be True or False, got {sample!r}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise GinvError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    return _invariance_loss(model, images, group, error, sample, generator)


def _invariance_loss(
    model: Callable[[Tensor], Tensor],
    images: Tensor,
    group: Group,
    error: PairwiseError,
    sample: bool,
    generator: torch.Generator | None,
) -> Tensor:
    """:func:`invariance_loss` on checked arguments."""
    b, n = images.shape[0], len(group)
    if sample:
        device = generator.device if generator is not None else torch.device("cpu")
        elements = torch.randint(1, n, (b,), generator=generator, device=device)
        logits = model(torch.cat([images, group.act(elements.to(images.device), images)]))
        return error(logits[:b], logits[b:]).mean()
    orbit_logits = model(group.orbit(images))  # (|G|·B, K), element-major, identity first
    ref = orbit_logits[:b].unsqueeze(0)
    return error(ref, orbit_logits[b:].view(n - 1, b, -1)).mean()
