"""One look for every figure of the study: sizes that read at a paper's column width, and one
colour per model (WT, DA, IR) and per IR invariance loss, the same in every experiment.

Plotting functions are wrapped in :func:`styled`, which draws under :data:`RC` without
touching matplotlib's global settings (a notebook that imports ginv keeps its own);
:func:`ginv.experiments.results.save_figure` saves under the same settings.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Sequence
from typing import Any, ParamSpec, TypeVar, cast

COLUMN = 3.3
"""Width in inches of one column of a two-column paper; single-panel figures use it."""
PAGE = 6.9
"""Width in inches of a full page (both columns); multi-panel figures use it."""

# Okabe–Ito colours: distinct for colour-blind readers and in greyscale print.
MODEL_COLORS = {"WT": "#0072B2", "DA": "#D55E00", "IR": "#009E73"}
LOSS_COLORS = {"logit": "#009E73", "kl": "#CC79A7", "nlogit": "#E69F00", "jsd": "#56B4E9"}
MODEL_MARKERS = {"WT": "s", "DA": "o", "IR": "^"}
GROUP_HATCHES = ("", "///", "...", "xxx")
NEUTRAL = "#555555"

FLOOR = 1e-16
"""Log axes show exact zeros (and anything below) at this value; each figure that clips
says so."""

RC: dict[str, Any] = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.title_fontsize": 7,
    "figure.titlesize": 9,
    "axes.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.minor.width": 0.4,
    "ytick.minor.width": 0.4,
    "lines.linewidth": 1.2,
    "lines.markersize": 3.5,
    "errorbar.capsize": 2,
    "legend.frameon": False,
    "legend.handlelength": 1.6,
    "figure.dpi": 100,
    "savefig.dpi": 300,
    "pdf.fonttype": 42,  # TrueType in PDFs: editable text, accepted by publishers
    "ps.fonttype": 42,
    "image.interpolation": "nearest",
}

P = ParamSpec("P")
T = TypeVar("T")


def context() -> contextlib.AbstractContextManager[None]:
    """matplotlib's settings replaced by :data:`RC` within the block. matplotlib is imported
    here, on first use, with the file-only Agg backend: importing an experiment (the
    registry, the command line) costs no matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    return matplotlib.rc_context(cast(Any, RC))


def styled(draw: Callable[P, T]) -> Callable[P, T]:
    """Run ``draw`` (which builds a figure) under :data:`RC`."""

    @functools.wraps(draw)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        with context():
            return draw(*args, **kwargs)

    return wrapper


def color(label: str) -> str:
    """The colour of a model label: ``WT``, ``DA``, ``IR``, ``IR-<loss>`` or ``IR (ν=…)``."""
    if label.startswith("IR-"):
        return LOSS_COLORS.get(label[3:], MODEL_COLORS["IR"])
    return MODEL_COLORS.get(label.split(" ")[0], NEUTRAL)


def marker(label: str) -> str:
    """The marker of a model label, by its family (``IR-kl`` → IR's)."""
    return MODEL_MARKERS.get(label.split("-")[0].split(" ")[0], "o")


def clip_floor(values: Sequence[float], floor: float = FLOOR) -> list[float]:
    """``values`` raised to ``floor``, for a log axis."""
    return [max(v, floor) for v in values]


def log_errors(
    means: Sequence[float], stds: Sequence[float], floor: float = FLOOR
) -> list[list[float]]:
    """Asymmetric error bars ``[lower, upper]`` for a log axis: ``mean ± std`` with the lower
    end kept at or above ``floor``."""
    shown = clip_floor(means, floor)
    lower = [s - max(m - d, floor) for s, m, d in zip(shown, means, stds, strict=True)]
    upper = [max(m + d, floor) - s for s, m, d in zip(shown, means, stds, strict=True)]
    return [[max(v, 0.0) for v in lower], [max(v, 0.0) for v in upper]]


def line_handles(ax: Any) -> tuple[list[Any], list[str]]:
    """The legend entries of ``ax`` with each error-bar plot reduced to its data line: a
    legend shows a model's line and marker, never the bars (which one seed does not draw)."""
    from matplotlib.container import ErrorbarContainer

    handles, labels = ax.get_legend_handles_labels()
    return [h.lines[0] if isinstance(h, ErrorbarContainer) else h for h in handles], labels
