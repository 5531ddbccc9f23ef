"""Assertions for tests of models that should be invariant."""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import Tensor, nn

from ginv.groups import Group

Classifier = Callable[[Tensor], Tensor]


def assert_invariant(
    model: Classifier,
    group: Group,
    x: Tensor,
    atol: float = 1e-8,
    rtol: float = 1e-6,
) -> None:
    """Assert ``|f(g·x) − f(x)| ≤ atol + rtol·|f(x)|`` for every element ``g`` and output, in
    float64 (on a copy of an ``nn.Module``, in eval mode); the failure names the worst element."""
    if isinstance(model, nn.Module):
        model = copy.deepcopy(model).double().eval()
    x = x.double()
    with torch.no_grad():
        base = model(x).reshape(len(x), -1)
        allowed = atol + rtol * base.abs()
        errors = [(model(group.act(g, x)).reshape_as(base) - base).abs() for g in group.elements]
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
