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


def fmt(mean: float, std: float, digits: int = 4) -> str:
    return f"{mean:.{digits}g} ± {std:.2g}"
