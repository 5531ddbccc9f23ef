"""Classifiers: the architecture registry, the wrappers that make any of them exactly
invariant, and batched ensembles of them.

:data:`ARCHITECTURES` maps a name to a :class:`~ginv.models.base.Network` class, and
:data:`WRAPPERS` a name to a function that wraps a network of any architecture. The model
names, :data:`MODEL_KINDS` (what ``ginv train --model`` and
:class:`~ginv.training.TrainConfig` accept), are every architecture and every wrapper of it:
``NAME`` and ``WRAPPER-NAME`` (bare ``WRAPPER`` for the MLP): ``mlp``, ``wt``, ``canon``,
``cnn``, ``wt-cnn``, ``canon-cnn``. Adding an architecture, or a wrapper, is one new file and
one line here. A model of another package is named ``package.module:factory``
(:mod:`ginv.models.factory`), its wrappers ``WRAPPER-package.module:factory``.
:class:`~ginv.models.orbit_average.OrbitAverage` wraps a trained model of any
kind (it is not trained as one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn

from ginv.errors import GinvError
from ginv.groups import PermutationGroup
from ginv.models.base import Network, Pool, WeightTied, weight_tied
from ginv.models.canonicalise import Canonicaliser, Scorer, canonicalised
from ginv.models.cnn import CNN
from ginv.models.ensemble import Ensemble
from ginv.models.factory import (
    Factory,
    build_factory_model,
    get_factory,
    is_factory_name,
    load_factory,
    register_factory,
)
from ginv.models.mlp import MLP
from ginv.models.orbit_average import OrbitAverage

ARCHITECTURES: dict[str, type[Network]] = {
    "mlp": MLP,
    "cnn": CNN,
}

Wrapper = Callable[[Network, PermutationGroup, tuple[int, ...], Pool], nn.Module]
"""``wrap(network, group, in_shape, pool)``: a network made invariant (``in_shape`` is the
image shape ``(C, H, W)``; ``pool`` the WT pooling, for the wrappers that pool)."""


def _weight_tied(
    model: Network, group: PermutationGroup, in_shape: tuple[int, ...], pool: Pool
) -> nn.Module:
    return weight_tied(model, group, pool)


WRAPPERS: dict[str, Wrapper] = {
    "wt": _weight_tied,  # the first layer tied over the group
    "canon": canonicalised,  # the classifier on a learned canonical pose of the input
}


def wrapped_name(wrapper: str, architecture: str) -> str:
    """The model name of an architecture in a wrapper: ``WRAPPER-NAME`` (``WRAPPER`` for the
    MLP, e.g. ``wt``, ``canon``, ``wt-cnn``)."""
    return wrapper if architecture == "mlp" else f"{wrapper}-{architecture}"


_WRAPPED = {wrapped_name(w, a): (a, w) for a in ARCHITECTURES for w in WRAPPERS}
MODEL_KINDS: tuple[str, ...] = tuple(
    k for a in ARCHITECTURES for k in (a, *(wrapped_name(w, a) for w in WRAPPERS))
)
"""Every ``--model`` name: each architecture, then each wrapper of it."""


def model_parts(kind: str) -> tuple[str, str | None]:
    """The architecture (a registry name or a ``package.module:factory``) and the wrapper
    (None: unwrapped) of a model name."""
    if kind in ARCHITECTURES or is_factory_name(kind):
        return kind, None
    if kind in _WRAPPED:
        return _WRAPPED[kind]
    wrapper, _, rest = kind.partition("-")  # a module name holds no '-'
    if wrapper in WRAPPERS and is_factory_name(rest):
        return rest, wrapper
    raise GinvError(f"unknown model {kind!r} (known: {', '.join(MODEL_KINDS)})")


def is_factory_model(kind: str) -> bool:
    """Whether a model name is a factory's (``package.module:factory``), wrapped or not."""
    try:
        return is_factory_name(model_parts(kind)[0])
    except GinvError:
        return False


def architecture_of(kind: str) -> tuple[type[Network], bool]:
    """The architecture class of a registry model name, and whether the model is its WT twin."""
    architecture, wrapper = model_parts(kind)
    if architecture not in ARCHITECTURES:
        raise GinvError(f"{kind!r} is a factory's model, of no registered architecture")
    return ARCHITECTURES[architecture], wrapper == "wt"


def build_model(
    kind: str,
    group: PermutationGroup,
    in_shape: int | Sequence[int],
    width: int = 0,
    depth: int = 0,
    *,
    num_classes: int,
    pool: Pool = "mean",
    first_width: int = 0,
) -> nn.Module:
    """A model by name (:data:`MODEL_KINDS`): ``'mlp'``, ``'cnn'`` (invariance only learnt) or
    a wrapper of one, invariant by construction: the WT twins ``'wt'``, ``'wt-cnn'``, the
    canonicalised ``'canon'``, ``'canon-cnn'``. ``in_shape`` is the image shape ``(C, H, W)``
    (an int: the MLP's flat input size) and ``num_classes`` the number of classes, both the
    data's (:attr:`ginv.data.DataSpec.shape`, ``num_classes``: no dataset is assumed); a ``width``, ``depth`` or ``first_width`` (the first
    layer's units) of 0 is the architecture's default. The network is drawn first, then what
    the wrapper adds, so a wrapped model starts from the weights of its plain twin drawn from
    the same seed. A factory's model (``package.module:factory``, loaded:
    :func:`~ginv.models.factory.load_factory`) is ``factory(in_shape, num_classes)``, and
    ``width``, ``depth`` and ``first_width`` are not used; a wrapper needs it to be a
    :class:`~ginv.models.base.Network`.

    Example:
        >>> import torch
        >>> from ginv.groups import get_group
        >>> model = build_model("wt", get_group("R4"), (1, 12, 12), width=8, num_classes=3)
        >>> model(torch.zeros(2, 1, 12, 12)).shape
        torch.Size([2, 3])
    """
    architecture, wrapper = model_parts(kind)
    shape = (in_shape,) if isinstance(in_shape, int) else tuple(int(n) for n in in_shape)
    model: nn.Module
    if architecture in ARCHITECTURES:
        cls = ARCHITECTURES[architecture]
        model = cls.build(
            shape, width or cls.default_width, depth or cls.default_depth, num_classes, first_width
        )
    else:
        model = build_factory_model(architecture, shape, num_classes)
        if wrapper and not isinstance(model, Network):
            raise GinvError(
                f"{kind}: the {wrapper} wrapper needs a ginv Network (first, body, head: "
                f"ginv.models.base.Network), and {architecture} made a {type(model).__name__}"
            )
    if not wrapper:
        return model
    assert isinstance(model, Network)
    return WRAPPERS[wrapper](model, group, shape, pool)


__all__ = [
    "ARCHITECTURES",
    "CNN",
    "MLP",
    "MODEL_KINDS",
    "WRAPPERS",
    "Canonicaliser",
    "Ensemble",
    "Factory",
    "Network",
    "OrbitAverage",
    "Scorer",
    "WeightTied",
    "Wrapper",
    "architecture_of",
    "build_factory_model",
    "build_model",
    "canonicalised",
    "get_factory",
    "is_factory_model",
    "is_factory_name",
    "load_factory",
    "model_parts",
    "register_factory",
    "weight_tied",
    "wrapped_name",
]
