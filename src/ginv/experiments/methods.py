"""The frontier's methods: every way ginv knows to make the MLP invariant, one registry.

Each :class:`Method` says how its runs are made from the study's settings; its name is its
key on the command line (``--set frontier_methods=…``), in the tables and in the figures.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from ginv.experiments import style
from ginv.experiments.kinds import Kind
from ginv.groups import get_group
from ginv.models import wrapped_name
from ginv.regularizers import Uses
from ginv.training import TrainConfig


class StudySettings(Protocol):
    """What a method reads of the study's settings (:class:`~ginv.experiments.StudyConfig`
    has it; a protocol here, so that the config may import this registry)."""

    @property
    def seeds(self) -> tuple[int, ...]:
        """The study's seeds."""
        ...

    @property
    def frontier_methods(self) -> tuple[str, ...]:
        """The methods to run (empty: all)."""
        ...

    @property
    def frontier_wide(self) -> bool:
        """Whether the wide twins run."""
        ...

    @property
    def train(self) -> TrainConfig:
        """The settings every run shares."""
        ...

    def run(self, group: str, kind: Kind | str, seed: int, reg: str = "none", nu: float = 0.0,
            epochs: int | None = None) -> TrainConfig:  # fmt: skip
        """The config of one of the study's runs."""
        ...


MakeConfig = Callable[[StudySettings, str, int, float], TrainConfig]


@dataclass(frozen=True)
class Method:
    """How one method's runs are made: ``make(config, group, seed, setting)`` for each of its
    settings (the tuple in the :class:`StudyConfig` field ``settings``: ν, or ``lr·ν`` for
    the orbit structure; ``None``: one run per seed), measured inside ``wrapper`` (a
    :data:`ginv.runs.POST_HOC` name) if given; ``uses``: what it knows of the group
    (:data:`ginv.regularizers.Uses`: inputs, weights, wrapper or architecture)."""

    name: str
    make: MakeConfig
    settings: str | None = None
    single_pass: bool = False
    wrapper: str | None = None
    setting_name: str = "ν"
    exact: bool = False  # invariant by construction
    uses: Uses = "inputs"
    capacity: str = "mlp"  # "wide": the first layer has |G|·width units, WT's capacity
    twin: bool = False  # a wide twin of another method, run with frontier_wide

    def values(self, c: StudySettings) -> tuple[float, ...]:
        """The method's settings under ``c`` (``()`` where it has none)."""
        return tuple(getattr(c, self.settings)) if self.settings else ()

    def configs(self, c: StudySettings, group: str) -> dict[float, list[TrainConfig]]:
        """The runs of the method, per setting (``nan`` where it has none), over the seeds."""
        settings = self.values(c) or (math.nan,)
        return {s: [self.make(c, group, seed, s) for seed in c.seeds] for s in settings}


def _plain(kind: Kind) -> MakeConfig:
    return lambda c, group, seed, _: c.run(group, kind, seed)


def _ir(loss: str) -> MakeConfig:
    return lambda c, group, seed, nu: c.run(group, Kind.IR, seed, loss, nu)


def _canon(c: StudySettings, group: str, seed: int, _: float) -> TrainConfig:
    return replace(
        c.run(group, Kind.DA, seed), model=wrapped_name("canon", c.train.model)
    ).validate()


def _wide(make: MakeConfig) -> MakeConfig:
    """``make``'s runs with the first layer |G|·width units wide: the parameters of WT's
    first layer and of ``orbit-wide``, so that methods are compared at equal capacity."""

    def wide(c: StudySettings, group: str, seed: int, setting: float) -> TrainConfig:
        config = make(c, group, seed, setting)
        return replace(config, first_width=len(get_group(group)) * config.width).validate()

    return wide


def wide_twin(method: Method) -> Method:
    """``method`` at WT's first-layer capacity: ``NAME-wide``."""
    return replace(method, name=f"{method.name}-wide", make=_wide(method.make), capacity="wide",
                   twin=True)  # fmt: skip


def _teacher(reg: str) -> MakeConfig:
    """Distillation (``reg``) from the orbit-averaged DA run of the same seed (its key: the
    run that must be trained first, in the same run cache)."""

    def make(c: StudySettings, group: str, seed: int, nu: float) -> TrainConfig:
        da = c.run(group, Kind.DA, seed)
        return replace(da, reg=reg, nu=nu, teacher=da.key()).validate()

    return make


def _orbit(wide: bool) -> MakeConfig:
    def make(c: StudySettings, group: str, seed: int, rate: float) -> TrainConfig:
        da = c.run(group, Kind.DA, seed)
        first = len(get_group(group)) * da.width if wide else 0
        return replace(da, reg="orbit", nu=rate / da.lr, first_width=first).validate()

    return make


METHODS: dict[str, Method] = {}
"""Method name → :class:`Method`, in the order of the frontier's table."""


def register_method(method: Method) -> Method:
    """Add ``method`` to :data:`METHODS`; return it."""
    METHODS[method.name] = method
    return method


for _method in (
    Method("DA", _plain(Kind.DA), single_pass=True),
    Method("WT", _plain(Kind.WT), exact=True, uses="architecture"),
    Method("orbit-average", _plain(Kind.DA), wrapper="orbit-average", exact=True, uses="wrapper"),
    Method("canonicalise", _canon, exact=True, uses="wrapper"),
    *(
        Method(f"IR-{loss}", _ir(loss), f"frontier_nus_{loss}", True)
        for loss in ("logit", "kl", "nlogit", "jsd")
    ),
    Method("IR-saliency", _ir("saliency"), "frontier_saliency_nus", True),
    Method("orbit", _orbit(False), "frontier_orbit_rates", True, setting_name="lr·ν",
           uses="weights"),
    Method("orbit-wide", _orbit(True), "frontier_orbit_rates", True, setting_name="lr·ν",
           uses="weights", capacity="wide"),
    Method("IR-distill", _ir("distill"), "frontier_nus_distill", True),
    Method("IR-warmup", _ir("logit-warmup"), "frontier_nus_warmup", True),
    Method("IR-features", _ir("features"), "frontier_nus_features", True),
    Method("IR-late", _ir("logit-late"), "frontier_nus_late", True),
    Method("IR-teacher", _teacher("teacher"), "frontier_nus_teacher", True),
    Method("IR-teacher-logit", _teacher("teacher-logit"), "frontier_nus_teacher_logit", True),
    Method("IR-vicinal", _ir("vicinal"), "frontier_nus_vicinal", True),
    Method("IR-teacher-vicinal", _teacher("teacher-vicinal"), "frontier_nus_teacher_vicinal",
           True),
):  # fmt: skip
    register_method(_method)
# every method that knows the group only through g·x, also at orbit-wide's (and WT's) capacity
for _method in [m for m in METHODS.values() if m.uses == "inputs" and m.capacity == "mlp"]:
    register_method(wide_twin(_method))

REFERENCE = "DA"
"""The method every gap is measured from (``DA-wide`` for the wide methods, at equal size)."""


def reference(method: Method) -> str:
    """The DA run a method's gap at equal capacity is read against."""
    return REFERENCE if method.capacity == "mlp" else f"{REFERENCE}-{method.capacity}"


def methods(c: StudySettings) -> list[Method]:
    """The frontier's methods under ``c``, in the order of the table: those of
    ``frontier_methods`` where it names some, else every method (the wide twins only with
    ``frontier_wide``)."""
    if c.frontier_methods:
        return [m for m in METHODS.values() if m.name in c.frontier_methods]
    return [m for m in METHODS.values() if c.frontier_wide or not m.twin]


LOOK = {
    "DA": ("#D55E00", "o", "-"), "WT": ("#0072B2", "s", "-"),
    "orbit-average": ("#D55E00", "D", "-"), "canonicalise": ("#000000", "P", "-"),
    "IR-logit": ("#009E73", "^", "-"), "IR-kl": ("#CC79A7", "^", "-"),
    "IR-nlogit": ("#E69F00", "^", "-"), "IR-jsd": ("#56B4E9", "^", "-"),
    "IR-saliency": ("#8C7A00", "v", "-"), "orbit": ("#000000", "*", "-"),
    "orbit-wide": ("#000000", "X", "--"), "IR-distill": ("#882255", "v", "-"),
    "IR-warmup": ("#332288", "<", "-"), "IR-features": ("#44AA99", "h", "-"),
    "IR-late": ("#AA4499", ">", "-"), "IR-teacher": ("#661100", "d", "-"),
    "IR-teacher-logit": ("#999933", "d", "-"), "IR-vicinal": ("#117733", "p", "-"),
    "IR-teacher-vicinal": ("#6699CC", "p", "-"),
}  # fmt: skip
"""Colour, marker and line of each method: DA's family in DA's colour, the IR losses in the
study's loss colours, the orbit structure in black, the newer input-only methods in colours
of their own; a ``-wide`` twin as its method, dashed."""


def look(name: str) -> tuple[str, str, str]:
    """:data:`LOOK` of a method, its ``-wide`` twin's derived from it."""
    if name in LOOK:
        return LOOK[name]
    colour, marker, _ = LOOK.get(name.removesuffix("-wide"), (style.NEUTRAL, "o", "-"))
    return colour, marker, "--"
