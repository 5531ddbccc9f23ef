"""The work an experiment asks of the run cache, declared before anything runs.

An experiment (:mod:`ginv.experiments.experiment`) *declares* its work as requests, per group, before anything runs:
:class:`Train` (runs known in advance), :class:`CalibratedIR` (an IR family at the ν its
search will find) and :class:`Measure` (what is measured, for the cost). ``reproduce --plan``
counts them, a SLURM driver submits what they make known up front, and the report orders its
sections by the registry (:mod:`ginv.experiments.registry`): nothing is written twice.

Example, a toy experiment registered from outside the package::

    from ginv.experiments.registry import register_experiment
    from ginv.experiments.experiment import Experiment
    from ginv.experiments.results import Results
    from ginv.experiments.spec import Train

    def work(config, group, sizes):
        return [Train("DA", tuple(config.run(group, "DA", s) for s in config.seeds))]

    def run(study, folder):
        runs = study.family(study.config.groups[0], "DA")
        return Results("toy", "A toy", f"{len(runs)} runs")

    register_experiment(Experiment("toy", "A toy", run, work))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ginv.training.config import TrainConfig

if TYPE_CHECKING:
    from ginv.experiments.config import StudyConfig


@dataclass(frozen=True)
class Sizes:
    """How many images a measure request means where a setting says 0 ("the whole split")."""

    test: int
    val: int


@dataclass(frozen=True)
class Train:
    """Runs known before any result: trained, or found in the cache, as they are. With
    ``upfront=False``, runs that results decide (which setting, say): ``configs`` stand for
    them in ``--plan``'s cost and are never submitted before."""

    item: str
    configs: tuple[TrainConfig, ...]
    note: str = ""
    upfront: bool = True


@dataclass(frozen=True)
class CalibratedIR:
    """IR with invariance loss ``loss`` at the ν its search finds, over the study's seeds:
    the pre-search grid is known up front, the search's rounds are not."""

    loss: str


@dataclass(frozen=True)
class Measure:
    """Measures of ``models`` models of architecture ``model``, for the cost: forward passes
    over the orbits of ``orbit`` images, integrated-gradient saliency over the orbits of
    ``si`` images, input Jacobians of ``sensitivity`` images; ``copies`` forward passes per
    image (``|G|`` for orbit averaging). Requests with the same ``shared`` key are counted
    once; ``job``: one job of its own under SLURM."""

    item: str
    model: str
    models: int
    orbit: int
    si: int = 0
    sensitivity: int = 0
    first_width: int = 0
    copies: int = 1
    shared: str = ""
    job: bool = False


Request = Train | CalibratedIR | Measure
Work = Callable[["StudyConfig", str, Sizes], list[Request]]


def no_work(config: StudyConfig, group: str, sizes: Sizes) -> list[Request]:
    """The work of an experiment that trains and measures nothing from the cache."""
    return []
