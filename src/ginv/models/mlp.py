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
        # Gather indices by image shape and device: plain tensors, not buffers, so that
        # state_dict keys stay those of the MLP and Ensemble (which refuses buffers) accepts it.
        self._tied_index: dict[tuple[int, int, int, str], Tensor] = {}

    def tied_index(self, x: Tensor) -> Tensor:
        """``(C·H·W, |G|)`` indices with ``W₁[:, index[:, g]] x = W₁ (g·x)`` for images like ``x``:
        as ``(g·x).flat[i] = x.flat[p_g[i]]``, column ``j`` of ``W₁ P_g`` is ``W₁[:, p_g⁻¹[j]]``."""
        c, h, w = x.shape[-3:]
        key = (c, h, w, str(x.device))
        if key not in self._tied_index:
            perms = self.group.permutations(x)  # (|G|, H·W) on x's device
            inverse = perms[[self.group.inverse(g) for g in self.group.elements]]
            channels = torch.arange(c, device=x.device).view(c, 1, 1) * (h * w)
            index = (inverse.t().unsqueeze(0) + channels).flatten(0, 1)
            # Contiguous: a gather's output takes its index's layout, and embed views it as rows.
            self._tied_index[key] = index.contiguous()
        return self._tied_index[key]

    def embed(self, x: Tensor) -> Tensor:
        """``pool_g relu(W₁ P_g x + b₁)`` as one matmul of ``x`` with ``[W₁ P_g]_g`` stacked:
        only W₁'s columns are gathered (|G|·in·width), never the |G|·B·in orbit of the input."""
        n, width = len(self.group), self.first.out_features
        # Row gather of the (in, width) transpose straight into the (in, |G|·width) layout that
        # the matmul and its weight gradient use as they are: no permute copies of either.
        stacked = self.first.weight.t().contiguous()[self.tied_index(x)].view(-1, n * width)
        h = torch.addmm(self.first.bias.repeat(n), x.flatten(1), stacked)
        h = torch.relu(h).view(-1, n, width)
        return h.mean(1) if self.pool == "mean" else h.amax(1)


def check_invariance(model: nn.Module, group: PermutationGroup, x: Tensor) -> Tensor:
    """Per group element ``g``, the largest ``|f(g·x) − f(x)|`` over the batch and outputs, in
    the model's own precision (:func:`ginv.testing.assert_invariant` asserts it in float64)."""
    with torch.no_grad():
        base = model(x)
        return torch.stack([(model(group.act(g, x)) - base).abs().amax() for g in group.elements])
