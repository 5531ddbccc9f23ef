"""The measure registry: every measure ``ginv.measure`` and ``ginv measure --metrics`` know.

Adding a measure is one new file (a :class:`~ginv.measures.base.Measure`) and one line here,
or, outside the package, one call: ``ginv.measures.register_measure(MyMeasure())`` (for the
command line in a module named by ``ginv measure --plugin package.module``).
"""

from __future__ import annotations

from collections.abc import Sequence

from ginv.errors import GinvError
from ginv.measures.base import Measure
from ginv.measures.metrics.accuracy import Accuracy
from ginv.measures.metrics.di import DistributionInvariance
from ginv.measures.metrics.li import LogitInvariance
from ginv.measures.metrics.sensitivity import Sensitivity
from ginv.measures.metrics.si import SaliencyInvariance

MEASURES: dict[str, Measure] = {}
"""Every registered measure by name, in registration order (the order of reports)."""

LEGACY_NAMES = {"sigma_j": "sensitivity"}
"""Measure names of older reports, read as today's."""


def register_measure(measure: Measure) -> Measure:
    """Add ``measure`` to :data:`MEASURES` under ``measure.name`` and return it.

    Args:
        measure: an instance of a :class:`~ginv.measures.base.Measure` subclass.

    Returns:
        The measure, so that ``register_measure`` can be used at a module's top level.

    Raises a :class:`~ginv.errors.GinvError` for a name already taken by another measure
    or one that is not an identifier. Example::

        ginv.measures.register_measure(MeanLogit())
        ginv.measure(model, x, y, ginv.R4(), metrics=("li", "mean_logit"))
    """
    if not isinstance(measure, Measure):
        raise GinvError(f"register a Measure instance, got {type(measure).__name__}")
    name = getattr(measure, "name", "")
    if not isinstance(name, str) or not name.isidentifier():
        raise GinvError(f"a measure's name must be an identifier, got {name!r}")
    known = MEASURES.get(name)
    if known is not None and type(known) is not type(measure):
        raise GinvError(f"measure {name!r} is registered already ({type(known).__name__})")
    MEASURES[name] = measure
    return measure


def measures_named(metrics: Sequence[str] | str) -> list[Measure]:
    """The registered measures of ``metrics`` (a name or names), in registry order.

    Example: ``[m.name for m in measures_named("li,di".split(","))] == ["di", "li"]``.
    """
    wanted = {metrics} if isinstance(metrics, str) else set(metrics)
    unknown = wanted - set(MEASURES)
    if unknown:
        raise GinvError(
            f"unknown measures: {', '.join(sorted(unknown))} (known: {', '.join(MEASURES)})"
        )
    if not wanted:
        raise GinvError(f"no measures asked for (known: {', '.join(MEASURES)})")
    return [m for name, m in MEASURES.items() if name in wanted]


for _builtin in (
    Accuracy(), DistributionInvariance(), LogitInvariance(), SaliencyInvariance(), Sensitivity(),
):  # fmt: skip
    register_measure(_builtin)

METRICS: tuple[str, ...] = tuple(MEASURES)
"""The built-in measures, ``measure``'s default: accuracy, di, li, si, sensitivity."""
