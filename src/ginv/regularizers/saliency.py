"""Saliency invariance regularisation: the penalty acts on input gradients, the quantity
that SI compares, rather than on logits.

For the augmented image ``x̃`` and every ``h ≠ e``, with ``∇ = ∇ₓ f_y`` the gradient of the
label's logit, ``R = mean ‖∇(x̃) − h⁻¹·∇(h·x̃)‖² / (½‖∇(x̃)‖² + ½‖h⁻¹·∇(h·x̃)‖² + ε)``: the
squared difference of the realigned gradients, relative to their size, so that shrinking the
gradients (flattening the network, as spectral decay does) cannot lower it. An invariant
``f`` has ``∇f(x) = h⁻¹·∇f(h·x)`` for a permutation action, so ``R = 0``. Computed by
double backpropagation: about three times the cost of the logit IR's forward and backward.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ginv.models import Ensemble
from ginv.regularizers.base import Regularizer

EPS = 1e-12


class SaliencyInvariance(Regularizer):
    """``R`` above, on the whole orbit of each augmented image."""

    needs_orbit = True
    uses = "inputs"  # g·x, and g⁻¹ on input gradients: the action on images alone

    def __call__(self, model: Ensemble, x: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        x = x.detach().requires_grad_(True)
        logits = self.orbit_view(model(x))  # (M, |G|, B, K)
        target = labels.unsqueeze(1).expand(logits.shape[:3]).unsqueeze(-1)
        picked = logits.gather(-1, target).sum()
        (grads,) = torch.autograd.grad(picked, x, create_graph=True)
        grads = self.orbit_view(grads)  # (M, |G|, B, C, H, W): ∇ at h·x̃
        m, n, b = grads.shape[:3]
        h = torch.arange(n, device=x.device).view(1, n, 1).expand(m, n, b)
        aligned = self.group.act_inverse(h, grads).flatten(3)  # h⁻¹·∇(h·x̃)
        ref, others = aligned[:, :1], aligned[:, 1:]
        size = 0.5 * (ref.pow(2).sum(-1) + others.pow(2).sum(-1)) + EPS
        return logits[:, 0], ((ref - others).pow(2).sum(-1) / size).mean((1, 2))
