"""Classifiers: the architecture registry, their weight-tied invariant twins, and batched
ensembles of them.

:data:`ARCHITECTURES` maps a name to a :class:`~ginv.models.base.Network` class; it is the
list ``ginv train --model`` and :class:`~ginv.training.TrainConfig` accept, each name with
its WT twin ``wt-NAME`` (the MLP's is ``wt``). Adding an architecture is one new file with a
``Network`` subclass and one line here.
"""

from __future__ import annotations

from collections.abc import Sequence

from ginv.errors import GinvError
from ginv.groups import PermutationGroup
from ginv.models.base import Network, Pool, WeightTied, weight_tied
from ginv.models.cnn import CNN
from ginv.models.ensemble import Ensemble
from ginv.models.mlp import MLP, WeightTiedMLP, check_invariance

ARCHITECTURES: dict[str, type[Network]] = {
    "mlp": MLP,
    "cnn": CNN,
}


def twin_name(architecture: str) -> str:
    """The model name of an architecture's weight-tied twin: ``wt-NAME`` (``wt`` for the MLP)."""
    return "wt" if architecture == "mlp" else f"wt-{architecture}"


_TWINS = {twin_name(a): a for a in ARCHITECTURES}
MODEL_KINDS: tuple[str, ...] = tuple(k for a in ARCHITECTURES for k in (a, twin_name(a)))
"""Every ``--model`` name: each architecture and its WT twin."""


def architecture_of(kind: str) -> tuple[type[Network], bool]:
    """The architecture class of a model name, and whether the model is its WT twin."""
    if kind in ARCHITECTURES:
        return ARCHITECTURES[kind], False
    if kind in _TWINS:
        return ARCHITECTURES[_TWINS[kind]], True
    raise GinvError(f"unknown model {kind!r} (known: {', '.join(MODEL_KINDS)})")


def build_model(
    kind: str,
    group: PermutationGroup,
    in_shape: int | Sequence[int] = (1, 36, 36),
    width: int = 0,
    depth: int = 0,
    num_classes: int = 9,
    pool: Pool = "mean",
    first_width: int = 0,
) -> Network:
    """A model by name (:data:`MODEL_KINDS`): ``'mlp'``, ``'cnn'`` (invariance only learnt) or
    their WT twins ``'wt'``, ``'wt-cnn'`` (invariant by construction). ``in_shape`` is the
    image shape ``(C, H, W)`` (an int: the MLP's flat input size); a ``width`` or ``depth`` of
    0 is the architecture's default, and so is a ``first_width`` (the first layer's units) of 0."""
    cls, tied = architecture_of(kind)
    shape = (in_shape,) if isinstance(in_shape, int) else tuple(int(n) for n in in_shape)
    model = cls.build(
        shape, width or cls.default_width, depth or cls.default_depth, num_classes, first_width
    )
    return weight_tied(model, group, pool) if tied else model


__all__ = [
    "ARCHITECTURES",
    "CNN",
    "MLP",
    "MODEL_KINDS",
    "Ensemble",
    "Network",
    "WeightTied",
    "WeightTiedMLP",
    "architecture_of",
    "build_model",
    "check_invariance",
    "twin_name",
    "weight_tied",
]
