"""The study's experiments by name: the registry that ``reproduce``, ``--plan``, the SLURM
pre-submission and the report's order all read.

Importing it imports each experiment's module, none of which imports matplotlib or
scikit-learn until it runs, so the command line builds its choices from :data:`EXPERIMENTS`
cheaply. A new experiment is one module defining an :class:`Experiment` and one
:func:`register_experiment` call.
"""

from __future__ import annotations

import importlib.util

from ginv.errors import GinvError
from ginv.experiments import (
    drift,
    frontier,
    layers,
    prop31,
    saliency_grid,
    spectral,
    table,
    tsne,
    wt_ablation,
)
from ginv.experiments.experiment import Experiment

EXPERIMENTS: dict[str, Experiment] = {}
"""Experiment name → :class:`Experiment`, in the order of ``reproduce all`` and the report."""


def register_experiment(experiment: Experiment) -> Experiment:
    """Add ``experiment`` to :data:`EXPERIMENTS` (after those there); return it. A name taken
    by another experiment, or ``all``, is one :class:`GinvError`."""
    if not isinstance(experiment, Experiment):
        raise GinvError(f"register_experiment takes an Experiment, got {type(experiment).__name__}")
    known = EXPERIMENTS.get(experiment.name)
    if experiment.name == "all" or (known is not None and known is not experiment):
        raise GinvError(f"experiment name {experiment.name!r} is taken")
    EXPERIMENTS[experiment.name] = experiment
    return experiment


# wt-ablation after the table, whose WT row it explains (the report's order too)
for _module in (table, wt_ablation, saliency_grid, tsne, drift, spectral, layers, prop31, frontier):
    register_experiment(_module.EXPERIMENT)


def study_experiments() -> tuple[str, ...]:
    """What ``reproduce all`` runs, in order: the paper's experiments (the frontier, which
    trains every method at several settings, is left out)."""
    return tuple(name for name, e in EXPERIMENTS.items() if e.in_all)


def report_order() -> tuple[str, ...]:
    """Every report section, in order: each experiment, then the sections it leaves."""
    return tuple(s for e in EXPERIMENTS.values() for s in (e.name, *e.sections))


#: Import name → distribution name of what ``ginv[study]`` adds to the core.
STUDY_PACKAGES = {"matplotlib": "matplotlib", "sklearn": "scikit-learn", "scipy": "scipy"}


def require_study() -> None:
    """Raise one clear :class:`GinvError` if the ``study`` extra is not installed."""
    missing = [
        dist for mod, dist in STUDY_PACKAGES.items() if importlib.util.find_spec(mod) is None
    ]
    if missing:
        raise GinvError(
            f"this command needs ginv's study extra (missing: {', '.join(missing)}): "
            "pip install 'ginv[study]'"
        )


def get_experiment(name: str) -> Experiment:
    """Experiment ``name``; an unknown name is one :class:`GinvError` listing the known."""
    if name not in EXPERIMENTS:
        raise GinvError(f"unknown experiment {name!r} (known: {', '.join(EXPERIMENTS)})")
    return EXPERIMENTS[name]
