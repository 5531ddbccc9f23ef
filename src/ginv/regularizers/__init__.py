"""Regularisers ``R(f)`` that training adds, weighted by ν, to the cross-entropy.

:data:`REGULARIZERS` is the list ``ginv train --reg`` accepts: the output invariance
losses of the study's IR and the frontier's single-pass methods. Adding one is
one new file with a :class:`Regularizer` and one line here.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from ginv.errors import GinvError
from ginv.groups import PermutationGroup
from ginv.losses import INVARIANCE_ERRORS
from ginv.regularizers.base import USES, Regularizer, Uses
from ginv.regularizers.distill import OrbitDistillation
from ginv.regularizers.features import FeatureInvariance
from ginv.regularizers.orbit_structure import OrbitStructure
from ginv.regularizers.output import OutputInvariance
from ginv.regularizers.saliency import SaliencyInvariance
from ginv.regularizers.teacher import OrbitTeacher
from ginv.regularizers.vicinal import VicinalInvariance
from ginv.regularizers.warmup import LATE_RAMP, LATE_START, WarmedUpInvariance

REGULARIZERS: dict[str, Callable[[PermutationGroup], Regularizer]] = {
    **{loss: partial(OutputInvariance, loss=loss) for loss in INVARIANCE_ERRORS},
    "orbit": OrbitStructure,
    "saliency": SaliencyInvariance,
    "distill": OrbitDistillation,
    "logit-warmup": WarmedUpInvariance,
    "logit-late": partial(WarmedUpInvariance, start=LATE_START, ramp=LATE_RAMP),
    "features": FeatureInvariance,
    "teacher": OrbitTeacher,
    "teacher-logit": partial(OrbitTeacher, loss="logit"),
    "vicinal": VicinalInvariance,
    "teacher-vicinal": partial(OrbitTeacher, loss="logit", vicinal=True),
}
"""Name → constructor from the group: IR with each output loss, then the new methods."""


def get_regularizer(name: str, group: PermutationGroup) -> Regularizer:
    """The regulariser ``name`` for ``group``; an unknown name is one clear error."""
    if name not in REGULARIZERS:
        raise GinvError(f"unknown regularizer {name!r} (known: {', '.join(REGULARIZERS)})")
    return REGULARIZERS[name](group)


def regularizer_class(name: str) -> type[Regularizer]:
    """The class of regulariser ``name`` (its ``architectures``, ``decoupled``, ``uses``...)."""
    make = REGULARIZERS[name]
    cls = make.func if isinstance(make, partial) else make
    assert isinstance(cls, type) and issubclass(cls, Regularizer)
    return cls


__all__ = [
    "REGULARIZERS",
    "USES",
    "FeatureInvariance",
    "OrbitDistillation",
    "OrbitStructure",
    "OrbitTeacher",
    "OutputInvariance",
    "Regularizer",
    "SaliencyInvariance",
    "Uses",
    "VicinalInvariance",
    "WarmedUpInvariance",
    "get_regularizer",
    "regularizer_class",
]
