"""Scale-free IR on the penultimate features: the invariance error of the representation the
head reads, relative to its size.

With ``φ`` the penultimate features (``Network.features``), for the augmented image ``x̃``
and every ``h ≠ e``, ``R = mean ‖φ(x̃) − φ(h·x̃)‖² / (½‖φ(x̃)‖² + ½‖φ(h·x̃)‖² + ε)``.
Features invariant on the orbit make the logits invariant (the head is linear), and the
error is scale-free: the paper blames IR's accuracy cost on spectral decay, the logit error
being lowered by shrinking every logit; here multiplying the features by any ``c > 0``
leaves ``R`` unchanged, so the only way down is to make the representation itself agree on
the orbit, and the head keeps its scale for the cross-entropy. Penalising embeddings of an
input and of its augmentation is the consistency loss of Wang et al. (ICLR 2021, squared ℓ₂
on representations); the normalisation is the saliency IR's. One forward pass of the orbit,
as IR; the logits are the head applied to the same features.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ginv.errors import GinvError
from ginv.models import Ensemble
from ginv.regularizers.base import Regularizer

EPS = 1e-12


class _Features(nn.Module):
    """``module.features`` as a module's forward, so that ``torch.func`` can call it."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: Tensor) -> Tensor:
        return self.module.features(x)  # type: ignore[operator]


def ensemble_features(model: Ensemble, x: Tensor) -> Tensor:
    """Each member's penultimate features ``(M, B, D)`` of inputs ``(M, B, ...)``."""
    template = model._template[0]
    if not callable(getattr(template, "features", None)):
        raise GinvError(f"{type(template).__name__} has no penultimate features to regularise")
    wrapped = _Features(template)

    def one(params: dict[str, Tensor], inp: Tensor) -> Tensor:
        return torch.func.functional_call(wrapped, params, (inp,))

    params = {f"module.{k}": v for k, v in model.weights().items()}
    return torch.func.vmap(one)(params, x)


def feature_invariance(orbit_features: Tensor) -> Tensor:
    """``R`` above from orbit features ``(..., |G|, B, D)``, identity first; returns ``(...)``."""
    ref, others = orbit_features[..., :1, :, :], orbit_features[..., 1:, :, :]
    size = 0.5 * (ref.pow(2).sum(-1) + others.pow(2).sum(-1)) + EPS
    return ((ref - others).pow(2).sum(-1) / size).mean((-2, -1))


class FeatureInvariance(Regularizer):
    """``R`` above, on the whole orbit of each augmented image, for networks with a linear
    ``head`` on ``features`` (ginv's MLP and CNN)."""

    needs_orbit = True
    uses = "inputs"
    architectures = ("mlp", "cnn")

    def __call__(self, model: Ensemble, x: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        weights = model.weights()
        if "head.weight" not in weights:
            raise GinvError("feature IR needs a linear head (head.weight) on the features")
        feats = ensemble_features(model, x)  # (M, |G|·B, D)
        logits = torch.baddbmm(
            weights["head.bias"].unsqueeze(1), feats, weights["head.weight"].transpose(1, 2)
        )
        return self.orbit_view(logits)[:, 0], feature_invariance(self.orbit_view(feats))
