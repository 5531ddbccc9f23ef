"""Classifiers: the MLP, the weight-tied invariant WT model, and batched ensembles of them."""

from __future__ import annotations

from torch import nn

from ginv.errors import GinvError
from ginv.groups import PermutationGroup
from ginv.models.ensemble import Ensemble
from ginv.models.mlp import MLP, Pool, WeightTiedMLP, check_invariance

MODEL_KINDS = ("mlp", "wt")


def build_model(
    kind: str,
    group: PermutationGroup,
    in_features: int = 36 * 36,
    width: int = 128,
    depth: int = 5,
    num_classes: int = 9,
    pool: Pool = "mean",
) -> nn.Module:
    """``'mlp'`` (invariance only learnt) or ``'wt'`` (invariant by construction)."""
    if kind == "mlp":
        return MLP(in_features, width, depth, num_classes)
    if kind == "wt":
        return WeightTiedMLP(group, in_features, width, depth, num_classes, pool)
    raise GinvError(f"unknown model {kind!r} (known: {', '.join(MODEL_KINDS)})")


__all__ = [
    "MLP",
    "MODEL_KINDS",
    "Ensemble",
    "WeightTiedMLP",
    "build_model",
    "check_invariance",
]
