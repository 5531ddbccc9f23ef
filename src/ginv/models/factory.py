"""Models of other packages: ``--model package.module:factory``.

A factory is a callable ``factory(in_shape, num_classes) -> nn.Module`` (``in_shape`` the
image shape ``(C, H, W)``). Its model name is the ``"package.module:factory"`` string, and
that string is what a :class:`~ginv.training.TrainConfig` (and so the run-cache key and
``run.json``) holds; ``WRAPPER-package.module:factory`` (``wt-…``, ``canon-…``) wraps it,
for factories whose models follow the :class:`~ginv.models.base.Network` contract.

**Safety.** Importing a module runs its code, so ginv imports one only from a name the user
gave in this process (:func:`load_factory`: ``ginv train --model``, ``ginv measure
--model``, ``--set model=``, ``load_run(folder, factory=…)``), never from a name read from a
file (``run.json``, a checkpoint): :func:`get_factory` returns a factory registered in this
process (:func:`register_factory`, or loaded before) or one whose module is imported
already, and otherwise refuses, saying how to allow it.
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable, Sequence

from torch import nn

from ginv.errors import GinvError

Factory = Callable[[tuple[int, ...], int], nn.Module]
"""``factory(in_shape, num_classes)``: a freshly initialised classifier for images of
``in_shape`` ``(C, H, W)`` with ``num_classes`` logits."""

_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
_FACTORIES: dict[str, Factory] = {}


def is_factory_name(name: str) -> bool:
    """Whether ``name`` reads ``package.module:attribute`` (a factory, not a registry name)."""
    return _NAME.fullmatch(name) is not None


def _check_name(name: str) -> tuple[str, str]:
    if not is_factory_name(name):
        raise GinvError(f"a model factory is named package.module:factory, got {name!r}")
    module, _, attr = name.partition(":")
    return module, attr


def _attribute(module: object, name: str, attr: str) -> Factory:
    target: object = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise GinvError(f"model factory {name!r}: the module has no {attr!r}")
        target = getattr(target, part)
    if not callable(target):
        raise GinvError(f"model factory {name!r} is a {type(target).__name__}, not a callable")
    return target


def register_factory(name: str, factory: Factory) -> None:
    """Make ``factory`` the model named ``name`` (``package.module:factory``) in this process.

    Example:
        >>> from torch import nn
        >>> register_factory("mine.models:tiny", lambda shape, k: nn.Linear(1, k))
        >>> get_factory("mine.models:tiny")((1, 1, 1), 3).out_features
        3
    """
    _check_name(name)
    if not callable(factory):
        raise GinvError(f"model factory {name!r} is a {type(factory).__name__}, not a callable")
    _FACTORIES[name] = factory


def load_factory(name: str) -> Factory:
    """Import ``package.module`` of a name the user gave and register its ``factory``.

    Args:
        name: ``"package.module:factory"``, e.g. ``"tests.plugins.bn_cnn:build"``.
    Returns:
        The factory. A name that does not import, or names no callable, is a GinvError line.
    """
    module_name, attr = _check_name(name)
    if name in _FACTORIES:
        return _FACTORIES[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise GinvError(f"model factory {name!r}: cannot import {module_name} ({e})") from None
    factory = _attribute(module, name, attr)
    _FACTORIES[name] = factory
    return factory


def loaded_factories() -> tuple[str, ...]:
    """The names of the factories this process has (names the user gave, or registered): what
    a job or worker process loads too, so that it can rebuild the same models."""
    return tuple(_FACTORIES)


def get_factory(name: str) -> Factory:
    """The factory of ``name`` without importing anything: registered in this process, or an
    attribute of a module imported already. Anything else is refused (module docstring)."""
    module_name, attr = _check_name(name)
    if name in _FACTORIES:
        return _FACTORIES[name]
    if module_name in sys.modules:
        factory = _attribute(sys.modules[module_name], name, attr)
        _FACTORIES[name] = factory
        return factory
    raise GinvError(
        f"model factory {name!r} is not loaded, and ginv imports no module named in a file: "
        f"give --model {name} (Python: ginv.models.load_factory({name!r})) to allow it"
    )


def build_factory_model(name: str, in_shape: Sequence[int], num_classes: int) -> nn.Module:
    """``factory(in_shape, num_classes)`` of a loaded factory, checked to be an ``nn.Module``."""
    shape = tuple(int(n) for n in in_shape)
    try:
        model = get_factory(name)(shape, int(num_classes))
    except GinvError:
        raise
    except Exception as e:  # the user's code: one line naming it, not a traceback
        raise GinvError(
            f"model factory {name!r} failed on in_shape {shape}, {num_classes} classes "
            f"({type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''})"
        ) from None
    if not isinstance(model, nn.Module):
        raise GinvError(
            f"model factory {name!r} returned a {type(model).__name__}, not an nn.Module"
        )
    return model
