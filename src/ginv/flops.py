"""Exact FLOP counts of real PyTorch calls, and the work of training and measuring a model.

``count_flops(fn)`` runs ``fn`` once and adds up the FLOPs of every matmul-like op it
dispatches (PyTorch's own per-op formulas, ``torch.utils.flop_counter``), through autograd
and ``vmap`` alike, so the count is that of the code as it runs, for any architecture.
Elementwise work is not counted: the floor it gives is the matmul floor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry


class _FlopCounter(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.flops = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        rule = flop_registry.get(func._overloadpacket)
        if rule is not None:
            self.flops += int(rule(*args, **kwargs, out_val=out))
        return out


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of the matmul-like ops that one call of ``fn`` runs (forward and backward)."""
    with _FlopCounter() as counter:
        fn()
    return counter.flops


def _probe(model: nn.Module, shape: tuple[int, ...], batch: int) -> Tensor:
    p = next(model.parameters(), None)
    device = p.device if p is not None else torch.device("cpu")
    return torch.zeros(batch, *shape, device=device)


def train_step_flops(model: nn.Module, shape: tuple[int, ...], images_per_sample: int = 1) -> float:
    """FLOPs of one training step per sample: forward and backward to the weights of
    ``images_per_sample`` images (1 for DA and WT, ``|G|`` for IR, whose loss sees the orbit)."""
    batch = 2 * images_per_sample
    x = _probe(model, shape, batch)

    def step() -> None:
        model(x).sum().backward()

    flops = count_flops(step)
    model.zero_grad(set_to_none=True)
    return flops / 2


def forward_flops(model: nn.Module, shape: tuple[int, ...]) -> float:
    """FLOPs of one forward pass per image."""
    x = _probe(model, shape, 2)
    with torch.no_grad():
        return count_flops(lambda: model(x)) / 2


def input_gradient_flops(model: nn.Module, shape: tuple[int, ...]) -> float:
    """FLOPs per image of a forward pass and a backward pass to the input only (one IG step)."""
    x = _probe(model, shape, 2).requires_grad_(True)
    frozen = [p for p in model.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    try:
        flops = count_flops(lambda: torch.autograd.grad(model(x).sum(), x))
    finally:
        for p in frozen:
            p.requires_grad_(True)
    return flops / 2
