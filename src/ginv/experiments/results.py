"""How an experiment leaves its results: CSV and JSON numbers, PNG and PDF figures, and a
``results.json`` that the report reads (title, tables, figures, notes, settings)."""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ginv.errors import warn_once
from ginv.experiments import style
from ginv.io import atomic_write, atomic_write_json, atomic_write_text
from ginv.reports.numbers import fmt, fmt_values

__all__ = ["Results", "Table", "cells_over", "error_bars", "fmt", "fmt_over", "fmt_values", "mean_std",
           "over_seeds", "save_figure", "write_csv"]  # fmt: skip

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass
class Table:
    caption: str
    columns: list[str]
    rows: list[list[Any]]
    csv: str = ""  # file name, relative to the experiment folder


@dataclass
class Results:
    """What an experiment reports."""

    experiment: str
    title: str
    description: str
    tables: list[Table] = field(default_factory=list)
    figures: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    passed: bool | None = None

    def finishing(self, what: str, step: Callable[[], None]) -> None:
        """Run ``step`` (notes, a figure: made from results already in the tables); if it
        fails, the tables stay and ``results.json`` is still written, with a note and a
        warning naming the failure, rather than throwing the finished results away."""
        try:
            step()
        except Exception as e:  # any bug here must not cost the results
            text = f"{what} could not be made ({type(e).__name__}: {str(e)[:200]})"
            self.notes.append(f"{text}; the tables above are complete.")
            warn_once(f"{self.experiment}: {text}")

    def add_csv(self, folder: Path, name: str, columns: list[str], rows: list[list[Any]]) -> None:
        """A data file that the report links to but does not print."""
        write_csv(folder / f"{name}.csv", columns, rows)
        self.files.append(f"{name}.csv")

    def add_table(
        self,
        folder: Path,
        name: str,
        caption: str,
        columns: list[str],
        rows: list[list[Any]],
        tidy: tuple[list[str], list[list[Any]]] | None = None,
    ) -> None:
        """A table the report prints (``columns``, ``rows``: formatted for reading) and its
        ``name.csv``: ``tidy`` (ASCII column names, one number per cell, mean and std in
        columns of their own) where the printed cells are formatted (``0.95 ± 0.01``), else
        the printed rows themselves."""
        csv_columns, csv_rows = tidy if tidy is not None else (columns, rows)
        write_csv(folder / f"{name}.csv", csv_columns, csv_rows)
        self.tables.append(Table(caption, columns, rows, f"{name}.csv"))
        self.files.append(f"{name}.csv")

    def add_figure(self, folder: Path, name: str, fig: Figure, caption: str) -> None:
        """A figure the report shows: ``name.png`` and ``name.pdf`` in ``folder``."""
        save_figure(fig, folder / name)
        self.figures.append({"png": f"{name}.png", "pdf": f"{name}.pdf", "caption": caption})

    def write(
        self, folder: Path, config: dict[str, Any], seconds: float, order: int | None = None
    ) -> None:
        """``folder/results.json``: what the report shows of this experiment; ``order`` is its
        place among the report's sections (the registry's order), ``config`` the settings
        it ran under, ``seconds`` its wall time."""
        atomic_write_json(
            {
                "experiment": self.experiment, "title": self.title,
                "description": self.description,
                "tables": [t.__dict__ for t in self.tables], "figures": self.figures,
                "notes": self.notes, "data": self.data, "files": self.files,
                "passed": self.passed,
                "config": config, "seconds": seconds, "order": order,
            },
            folder / "results.json",
        )  # fmt: skip


def write_csv(path: Path, columns: list[str], rows: list[list[Any]]) -> None:
    """``path`` as CSV (a header, then ``rows``), written atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    writer.writerows(rows)
    atomic_write_text(buffer.getvalue(), path)


def save_figure(fig: Figure, stem: Path) -> None:
    """``stem.png`` and ``stem.pdf``, each written atomically."""
    import matplotlib.pyplot as plt

    try:
        for ext in ("png", "pdf"):
            atomic_write(stem.with_suffix(f".{ext}"), functools.partial(_savefig, fig, ext))
    finally:
        plt.close(fig)


def _savefig(fig: Figure, ext: str, handle: IO[bytes]) -> None:
    with style.context():  # the shared style's save settings (PDF fonts), see style.py
        fig.savefig(handle, format=ext, dpi=200 if ext == "png" else None, bbox_inches="tight")


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and (sample) standard deviation; std 0 for a single value."""
    n = len(values)
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    return mean, var**0.5


def fmt_over(values: list[float], single: str = " (n = 1)") -> str:
    """Values over seeds printed as their mean and std by :func:`fmt` (the value and
    ``single`` for one value).

    Example:
        >>> fmt_over([0.95, 0.96])
        '0.9550 ± 0.0071'
    """
    return fmt(*mean_std(values), n=len(values), single=single)


def over_seeds(seeds: list[int] | tuple[int, ...]) -> str:
    """What a mean is over, for a caption: ``mean ± std over seeds 0, 1`` or, for one seed,
    ``seed 0 only (n = 1, no spread)``."""
    if len(seeds) == 1:
        return f"seed {seeds[0]} only (n = 1, no spread)"
    return f"mean ± std over seeds {', '.join(map(str, seeds))}"


def cells_over(n: int) -> str:
    """What a table's caption says of its cells: nothing for several seeds (their cells read
    ``mean ± std``), else that the cells, of one seed, have no ± (they are printed with
    ``single=""``)."""
    return "" if n > 1 else " (one seed: values without ± std)"


def error_bars(n: int, what: str = "std over seeds") -> str:
    """The part of a caption about error bars: ``error bars: <what>`` where there are
    several seeds, else that one seed draws none."""
    return f"error bars: {what}" if n > 1 else "one seed, so no error bars"
