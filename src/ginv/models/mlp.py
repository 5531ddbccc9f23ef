"""The study's classifiers: a ReLU perceptron (MLP) and its weight-tied invariant twin (WT)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ginv.errors import GinvError
from ginv.models.base import Network


class MLP(Network):
    """``depth`` hidden ReLU layers of ``width`` units and a linear head on ``in_features``
    inputs (the flattened image, ``C·H·W``) and ``num_classes`` outputs, both the data's; on
    Transforming-MNIST (1296 inputs, 9 classes) the default 1296 → 128×5 → 9 has 233,225
    parameters. ``features`` is the penultimate layer.
    ``first_width`` (0: ``width``) sets the first hidden layer alone, e.g. ``|G|·width`` units
    for an orbit-structured first layer (:mod:`ginv.regularizers.orbit_structure`)."""

    default_width = 128
    default_depth = 5

    def __init__(
        self,
        in_features: int,
        width: int = 128,
        depth: int = 5,
        *,
        num_classes: int,
        first_width: int = 0,
    ) -> None:
        super().__init__()
        first_width = first_width or width
        if depth < 1 or width < 1 or first_width < 1:
            raise GinvError(f"an MLP needs depth ≥ 1 and width ≥ 1, got {depth} and {width}")
        self.first = nn.Linear(in_features, first_width)
        sizes = [first_width] + [width] * (depth - 1)
        self.hidden = nn.ModuleList(nn.Linear(a, width) for a in sizes[:-1])
        self.head = nn.Linear(sizes[-1], num_classes)

    @classmethod
    def build(
        cls, in_shape: tuple[int, ...], width: int, depth: int, num_classes: int,
        first_width: int = 0,
    ) -> MLP:  # fmt: skip
        return cls(math.prod(in_shape), width, depth, num_classes=num_classes,
                   first_width=first_width)  # fmt: skip

    def body(self, h: Tensor) -> Tensor:
        for layer in self.hidden:
            h = torch.relu(layer(h))
        return h
