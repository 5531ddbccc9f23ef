"""The study's experiments by name: a light registry, cheap to import.

The command line builds its choices from :data:`EXPERIMENTS` without importing an
experiment (and so without matplotlib or scikit-learn); :func:`load_experiment`
imports one only when it runs.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from typing import Any

from ginv.errors import GinvError

#: Experiment name → ``"module:function"``; the function takes ``(study, out)`` and
#: returns :class:`ginv.experiments.results.Results`. Order is the order of ``reproduce all``.
EXPERIMENTS: dict[str, str] = {
    "table": "ginv.experiments.table:run",
    "saliency": "ginv.experiments.saliency_grid:run",
    "tsne": "ginv.experiments.tsne:run",
    "drift": "ginv.experiments.drift:run",
    "spectral": "ginv.experiments.spectral:run",
    "prop31": "ginv.experiments.prop31:run",
    "frontier": "ginv.experiments.frontier:run",
}

#: Experiments beyond the paper's study, which ``reproduce all`` leaves out: the frontier
#: trains every method at several settings, far more than the study.
BEYOND_THE_STUDY = ("frontier",)
STUDY_EXPERIMENTS = tuple(name for name in EXPERIMENTS if name not in BEYOND_THE_STUDY)
"""What ``reproduce all`` runs: the paper's experiments, in order."""

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


def load_experiment(name: str) -> Callable[..., Any]:
    """Import and return the function that runs experiment ``name``."""
    if name not in EXPERIMENTS:
        raise GinvError(f"unknown experiment {name!r} (known: {', '.join(EXPERIMENTS)})")
    require_study()
    module, function = EXPERIMENTS[name].split(":")
    return getattr(importlib.import_module(module), function)
