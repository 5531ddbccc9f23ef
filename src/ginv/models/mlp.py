"""The study's classifiers: a ReLU perceptron (MLP) and its weight-tied invariant twin (WT)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from ginv.errors import GinvError
from ginv.groups import PermutationGroup

Pool = Literal["mean", "max"]


class MLP(nn.Module):
    """``depth`` hidden ReLU layers of ``width`` units and a linear head; the default
    1296 → 128×5 → 9 has 233,225 parameters. ``features`` is the penultimate layer."""

    def __init__(
        self, in_features: int = 36 * 36, width: int = 128, depth: int = 5, num_classes: int = 9
    ) -> None:
        super().__init__()
        if depth < 1 or width < 1:
            raise GinvError(f"an MLP needs depth ≥ 1 and width ≥ 1, got {depth} and {width}")
        self.first = nn.Linear(in_features, width)
        self.hidden = nn.ModuleList(nn.Linear(width, width) for _ in range(depth - 1))
        self.head = nn.Linear(width, num_classes)

    def embed(self, x: Tensor) -> Tensor:
        """The first hidden layer, ``relu(W₁ x + b₁)``."""
        return torch.relu(self.first(x.flatten(1)))

    def features(self, x: Tensor) -> Tensor:
        """The penultimate representation (input of the head)."""
        h = self.embed(x)
        for layer in self.hidden:
            h = torch.relu(layer(h))
        return h

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class WeightTiedMLP(MLP):
    """WT: the first layer sees every ``g·x`` with the same weights, then ReLU, then a pool over
    the group: ``h(x) = pool_g relu(W₁ g·x + b₁)``, exactly invariant as ``{g·hx} = {g·x}``."""

    def __init__(
        self,
        group: PermutationGroup,
        in_features: int = 36 * 36,
        width: int = 128,
        depth: int = 5,
        num_classes: int = 9,
        pool: Pool = "mean",
    ) -> None:
        super().__init__(in_features, width, depth, num_classes)
        if pool not in ("mean", "max"):
            raise GinvError(f"pool must be 'mean' or 'max', got {pool!r}")
        self.group = group
        self.pool = pool

    def embed(self, x: Tensor) -> Tensor:
        b = x.shape[0]
        h = torch.relu(self.first(self.group.orbit(x).flatten(1)))
        h = h.view(len(self.group), b, -1)
        return h.mean(0) if self.pool == "mean" else h.amax(0)


def check_invariance(model: nn.Module, group: PermutationGroup, x: Tensor) -> Tensor:
    """Per group element ``g``, the largest ``|f(g·x) − f(x)|`` over the batch and outputs."""
    with torch.no_grad():
        base = model(x)
        return torch.stack([(model(group.act(g, x)) - base).abs().amax() for g in group.elements])
