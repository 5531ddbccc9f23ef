"""Assertions for tests of models that should be invariant."""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import Tensor, nn

from ginv.errors import GinvError
from ginv.groups import Group

Classifier = Callable[[Tensor], Tensor]


def assert_invariant(
    model: Classifier,
    group: Group,
    x: Tensor,
    atol: float = 1e-8,
    rtol: float = 1e-6,
) -> None:
    """Assert ``|f(g·x) − f(x)| ≤ atol + rtol·|f(x)|`` for every element ``g`` and output.

    An ``nn.Module`` is checked in float64 (a copy, in eval mode, inputs cast to float64);
    any other callable (e.g. a lambda wrapping a float32 model) gets the inputs in its own
    dtype, ``x``'s if ``x`` is floating point, and its outputs are compared in float64.

    Args:
        model: the classifier, an ``nn.Module`` or a callable from images to outputs.
        group: the group.
        x: a non-empty batch ``(N, C, H, W)``.
        atol: the absolute tolerance.
        rtol: the relative tolerance.

    Raises ``AssertionError`` naming the worst element; a :class:`~ginv.errors.GinvError`
    for an empty batch, which would assert nothing.

    Example: ``assert_invariant(build_model("wt", R4(), (1, 12, 12), num_classes=3).double(), R4(), torch.randn(4, 1, 12, 12))``.
    """
    if not isinstance(x, Tensor) or x.dim() < 1 or len(x) == 0:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise GinvError(f"assert_invariant needs a non-empty batch of images, got {shape}")
    if isinstance(model, nn.Module):
        model = copy.deepcopy(model).double().eval()
        x = x.double()
    elif not x.is_floating_point():
        x = x.double()
    with torch.no_grad():
        base = model(x).reshape(len(x), -1).double()
        allowed = atol + rtol * base.abs()
        errors = [
            (model(group.act(g, x)).reshape_as(base).double() - base).abs() for g in group.elements
        ]
    excess = torch.stack([(e - allowed).amax() for e in errors])
    if float(excess.max()) <= 0:
        return
    names = group.element_names
    worst = int(excess.argmax())
    error = errors[worst]
    sample, output = divmod(int((error - allowed).argmax()), error.shape[-1])
    summary = ", ".join(f"{n} {float(e.amax()):.3g}" for n, e in zip(names, errors, strict=True))
    raise AssertionError(
        f"not invariant under {group.name}: worst element {names[worst]}, "
        f"|f(g·x) − f(x)| = {float(error[sample, output]):.3g} at sample {sample}, output "
        f"{output} (allowed {float(allowed[sample, output]):.3g} = {atol:g} + {rtol:g}·|f(x)|); "
        f"largest error per element: {summary}"
    )
