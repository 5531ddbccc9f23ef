"""Sensitivity: the spectral norm ``σmax(J)`` of the input–logit Jacobian per
input, and ``σmax(W)`` of each weight matrix or reshaped convolution kernel."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.func import jvp, vjp

from ginv.errors import GinvError
from ginv.measures.memory import Footprint

Classifier = Callable[[Tensor], Tensor]


def input_jacobians(model: Classifier, images: Tensor) -> Tensor:
    """``J_i = ∂f(x_i)/∂x_i`` for each image: ``(N, K, D)``. One backward pass per output,
    summed over the batch, which is exact because each output depends on its own input only."""
    x = images.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)
        rows = [
            torch.autograd.grad(logits[:, k].sum(), x, retain_graph=k + 1 < logits.shape[1])[0]
            for k in range(logits.shape[1])
        ]
    return torch.stack(rows, 1).flatten(2)


def jacobian_spectral_norm(
    model: Classifier,
    images: Tensor,
    method: str = "exact",
    iterations: int = 100,
    chunk: int = 1024,
) -> Tensor:
    """``σmax(J(x_i))`` per image ``(N,)``: ``'exact'`` (Jacobian, then its 2-norm) or
    ``'power'`` (power iteration on ``JᵀJ`` with jvp/vjp, for models with many outputs)."""
    if method not in ("exact", "power"):
        raise GinvError(f"sensitivity method must be 'exact' or 'power', got {method!r}")
    out = []
    for start in range(0, len(images), chunk):
        x = images[start : start + chunk]
        if method == "exact":
            jacobians = input_jacobians(model, x)
            if not bool(torch.isfinite(jacobians).all()):
                raise GinvError(
                    "sensitivity: the model's input–logit Jacobian has non-finite values "
                    "(non-finite logits or gradients); σmax(J) is undefined"
                )
            out.append(torch.linalg.matrix_norm(jacobians, ord=2))
        else:
            out.append(_power_iteration(model, x, iterations))
    return torch.cat(out)


def sensitivity_sample_bytes(footprint: Footprint, method: str) -> int:
    """Working memory per image: ``'exact'`` keeps the graph, a backward pass and K Jacobian
    rows (twice, stacked); ``'power'`` a forward-mode pass (activations and tangents) too."""
    if method == "exact":
        return footprint.backward() + (2 * footprint.classes + 2) * footprint.input_bytes
    return 2 * footprint.backward() + 2 * footprint.input_bytes


def _power_iteration(model: Classifier, x: Tensor, iterations: int) -> Tensor:
    # A copy, not a view: forward AD gives a view's tangent the size of its base's storage,
    # so each jvp on a chunk of a whole split would allocate the whole split again.
    x = x.detach().clone(memory_format=torch.contiguous_format)
    v = torch.randn(x.shape, generator=torch.Generator().manual_seed(0)).to(x)
    v = v / v.flatten(1).norm(dim=1).view(-1, *[1] * (x.dim() - 1))
    pullback = vjp(model, x)[1]
    sigma = torch.zeros(len(x), device=x.device, dtype=x.dtype)
    for _ in range(iterations):
        jv = jvp(model, (x,), (v,))[1]  # J v, per sample
        (jtjv,) = pullback(jv)  # Jᵀ J v
        norm = jtjv.flatten(1).norm(dim=1)
        sigma = norm.sqrt()
        v = jtjv / norm.clamp_min(1e-30).view(-1, *[1] * (x.dim() - 1))
    return sigma.detach()


def weight_spectral_norms(model: nn.Module) -> dict[str, float]:
    """``σmax(W)`` of every weight with two or more dimensions, by parameter name. A
    convolution kernel ``(out, in, k, k)`` is taken as the matrix ``(out, in·k·k)`` (as in
    spectral normalisation), not as the convolution operator, whose norm depends on the image size."""
    return {
        name: float(torch.linalg.matrix_norm(p.detach().flatten(1), ord=2))
        for name, p in model.named_parameters()
        if p.dim() >= 2
    }
