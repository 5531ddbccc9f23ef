"""What an experiment is: a name, a title, the work it declares (:mod:`ginv.experiments.spec`)
and how it runs; the registry (:mod:`ginv.experiments.registry`) holds them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ginv.experiments.spec import Work, no_work

if TYPE_CHECKING:
    from ginv.experiments.results import Results
    from ginv.experiments.study import Study


@dataclass(frozen=True)
class Experiment:
    """One experiment of ``ginv reproduce``.

    Attributes:
        name: its key on the command line and its folder under ``OUT``.
        title: its heading in the report.
        run: ``run(study, folder) -> Results``: does the work and returns what to report.
        work: ``work(config, group, sizes)``: the requests it makes of the run cache for one
            group (:class:`Train`, :class:`CalibratedIR`, :class:`Measure`).
        sections: report sections it leaves besides its own (written by ``reproduce`` after
            the experiments), in report order after its own.
        in_all: whether ``reproduce all`` runs it.
        summary: ``summary(data)``: lines the command line prints after the run, from its
            ``results.json``'s ``data`` (``None``: only its notes).
    """

    name: str
    title: str
    run: Callable[[Study, Path], Results]
    work: Work = no_work
    sections: tuple[str, ...] = ()
    in_all: bool = True
    summary: Callable[[dict[str, Any]], list[str]] | None = None
