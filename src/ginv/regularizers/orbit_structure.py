"""A regulariser that pushes an unconstrained MLP's first layer towards an orbit structure:
units that permute under the group, read out with equal weights, which is WT's solution
written as a plain MLP.

The first layer's ``H`` units are grouped in ``J = ⌊H/|G|⌋`` orbits of ``|G|`` units,
unit ``(j, k)`` holding the row ``w_{j,k}``; the ``H − J·|G|`` units left over are single.
A network is exactly invariant when

* ``w_{j,k} = g_k⁻¹·w_{j,0}`` (the row seen as an image), so that ``w_{j,k}·x =
  w_{j,0}·(g_k·x)``, with equal biases in the orbit: an input ``h·x`` permutes the orbit's
  activations;
* the next layer reads the orbit's units with equal weights (its columns are equal), so it
  sees only their sum, which a permutation leaves unchanged;
* a single unit's row is fixed by the group, ``g·w = w`` for every ``g``.

``R`` is half the squared Euclidean distance from ``(W₁, b₁, W₂)`` to that subspace: each row
is brought back to its orbit's frame, ``a_{j,k} = g_k·w_{j,k}``, and ``2R = Σ‖a_{j,k} − ā_j‖²
+ Σ(b_{j,k} − b̄_j)² + Σ‖W₂[:, (j,k)] − W̄₂[:, j]‖² + Σ_{single}‖w − mean_h h·w‖²``
(bars: means over the orbit), so that ``∇R = θ − Πθ``. At ``R = 0`` the MLP is invariant; the model stays an
unconstrained MLP, one forward pass, with the MLP's parameters.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ginv.models import Ensemble
from ginv.regularizers.base import Regularizer


class OrbitStructure(Regularizer):
    """``R`` above, for the MLP (the first layer a linear map of the flattened image), applied
    as a decoupled step: Adam sees the cross-entropy alone, and after each of its steps the
    weights move towards the subspace, ``θ ← θ − lr·ν·(θ − Πθ)`` with ``Π`` the orthogonal
    projection onto it: a plain gradient step on ``ν·R`` (as AdamW decouples weight decay).
    Adam's per-coordinate scaling would otherwise let a large ``ν·R`` swamp the second moments
    of every weight it touches and starve the cross-entropy; ``lr·ν = 1`` projects fully."""

    needs_orbit = False
    decoupled = True
    uses = "weights"  # the group acting on the first layer's rows
    architectures = ("mlp",)

    def __call__(self, model: Ensemble, x: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        with torch.no_grad():  # reported, not differentiated: the step is `after_step`'s
            penalty = self.penalty(model.weights(), x.shape[-3:])
        return model(x), penalty

    @torch.no_grad()
    def after_step(self, model: Ensemble, rates: Tensor, image_shape: torch.Size) -> None:
        """``θ ← θ − rate·(θ − Πθ)`` per member, ``rates`` ``(M,)`` (``lr·ν``, at most 1)."""
        weights = model.weights()
        for name, target in self.projection(weights, image_shape).items():
            w = weights[name]
            w.sub_(rates.view(-1, *[1] * (w.dim() - 1)) * (w - target))

    def _parts(self, weights: dict[str, Tensor]) -> tuple[Tensor, Tensor, str, int, int]:
        w, b = weights["first.weight"], weights["first.bias"]  # (M, H, C·H·W), (M, H)
        readout = "hidden.0.weight" if "hidden.0.weight" in weights else "head.weight"
        n = len(self.group)
        j = w.shape[1] // n
        return w, b, readout, j, j * n

    def _aligned(self, w: Tensor, j: int, image_shape: torch.Size) -> Tensor:
        """``a_{j,k} = g_k·w_{j,k}``: the tied rows in their orbit's frame ``(M, J, |G|, D)``."""
        m, n = w.shape[0], len(self.group)
        rows = w[:, : j * n].reshape(m, j, n, *image_shape)
        k = torch.arange(n, device=w.device).expand(m, j, n)
        return self.group.act(k, rows).flatten(-3)

    def _single_orbit(self, w: Tensor, tied: int, image_shape: torch.Size) -> Tensor:
        """``h·w`` of every single unit's row and element ``h``: ``(M, S, |G|, D)``."""
        m, s, n = w.shape[0], w.shape[1] - tied, len(self.group)
        rows = w[:, tied:].reshape(m, s, 1, *image_shape).expand(m, s, n, *image_shape)
        k = torch.arange(n, device=w.device).expand(m, s, n)
        return self.group.act(k, rows).flatten(-3)

    def penalty(self, weights: dict[str, Tensor], image_shape: torch.Size) -> Tensor:
        """``R`` per member from stacked weights ``{name: (M, ...)}``."""
        w, b, readout, j, tied = self._parts(weights)
        m, n = w.shape[0], len(self.group)
        r = _spread(self._aligned(w, j, image_shape), 2) + _spread(b[:, :tied].view(m, j, n), 2)
        r = r + _spread(weights[readout][:, :, :tied].reshape(m, -1, j, n), 3)
        if tied < w.shape[1]:
            # Σ_g ‖g·w − w̄‖² = |G|·‖w − w̄‖², as w̄ = mean_h h·w is fixed by every g
            r = r + _spread(self._single_orbit(w, tied, image_shape), 2) / n
        return 0.5 * r

    def projection(self, weights: dict[str, Tensor], image_shape: torch.Size) -> dict[str, Tensor]:
        """``Πθ`` for the weights ``R`` involves: each orbit's rows ``g_k⁻¹·ā_j``, biases and
        readout columns their orbit's mean, single rows ``mean_h h·w``."""
        w, b, readout, j, tied = self._parts(weights)
        m, n = w.shape[0], len(self.group)
        mean = self._aligned(w, j, image_shape).mean(2, keepdim=True).expand(m, j, n, -1)
        k = torch.arange(n, device=w.device).expand(m, j, n)
        rows = self.group.act_inverse(k, mean.reshape(m, j, n, *image_shape)).flatten(-3)
        pw, pb, pr = w.clone(), b.clone(), weights[readout].clone()
        pw[:, :tied] = rows.reshape(m, tied, -1)
        pb[:, :tied] = b[:, :tied].view(m, j, n).mean(2, keepdim=True).expand(m, j, n).flatten(1)
        cols = pr[:, :, :tied].reshape(m, -1, j, n)
        pr[:, :, :tied] = cols.mean(3, keepdim=True).expand_as(cols).flatten(2)
        if tied < w.shape[1]:
            pw[:, tied:] = self._single_orbit(w, tied, image_shape).mean(2)
        return {"first.weight": pw, "first.bias": pb, readout: pr}


def _spread(t: Tensor, dim: int) -> Tensor:
    """``Σ (t − mean_dim t)²`` per member (summed over all but the first dimension)."""
    return (t - t.mean(dim, keepdim=True)).pow(2).flatten(1).sum(1)
