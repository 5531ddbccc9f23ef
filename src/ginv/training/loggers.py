"""Where a training run's per-epoch metrics go, besides ``run.json``'s ``history``.

A logger is anything with ``log_metrics(step, metrics)`` and ``close()`` (:class:`Logger`);
the :class:`~ginv.training.Trainer` makes one per member, in the member's run folder, and
calls it once per epoch with that epoch's ``history`` entry (``loss``, ``ce``, ``inv``,
``val_acc``, ``seconds``; the step is the epoch). ``ginv train --logger NAME`` picks one
of :data:`LOGGERS`:

- ``csv`` (``ginv train``'s default): ``metrics.csv``, one row per epoch;
- ``tensorboard``: TensorBoard event files (``pip install "ginv[tensorboard]"``);
- ``wandb``: a Weights & Biases run, offline unless ``WANDB_MODE`` says otherwise
  (``pip install "ginv[wandb]"``; ``wandb sync`` uploads it later);
- ``none``: nothing besides ``run.json``.

A resumed run continues its logs: rows or events after the checkpoint's epoch (written
before a kill, after the last checkpoint) are dropped first.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ginv.errors import GinvError
from ginv.io import atomic_write_text


@runtime_checkable
class Logger(Protocol):
    """Receives a run's metrics, one call per step (epoch)."""

    def log_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        """Record ``metrics`` (name → value) at ``step`` (the epoch)."""
        ...

    def close(self) -> None:
        """Flush and release what the logger holds."""
        ...


class CSVLogger(Logger):
    """``metrics.csv`` in ``folder``: a ``step`` column then one per metric, one row per step.
    Rows after ``start_step`` already there (a kill after the last checkpoint) are dropped."""

    file_name = "metrics.csv"

    def __init__(self, folder: Path | str, start_step: int = 0) -> None:
        self.path = Path(folder) / self.file_name
        self._columns: list[str] | None = None
        if self.path.is_file():
            with self.path.open(newline="") as f:
                rows = list(csv.reader(f))
            if rows:
                self._columns = rows[0]
                kept = [r for r in rows[1:] if r and int(float(r[0])) <= start_step]
                self._rewrite([rows[0], *kept])

    def _rewrite(self, rows: list[list[str]]) -> None:
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(rows)
        atomic_write_text(text.getvalue(), self.path)

    def log_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        """Record ``metrics`` (name → value) at ``step`` (the epoch)."""
        new = self._columns is None
        if new:
            self._columns = ["step", *(k for k in metrics if k != "step")]
            self.path.parent.mkdir(parents=True, exist_ok=True)
        assert self._columns is not None
        row = [step, *(metrics.get(k, "") for k in self._columns[1:])]
        with self.path.open("a", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            if new:
                writer.writerow(self._columns)
            writer.writerow(row)

    def close(self) -> None:
        """Flush and release what the logger holds."""
        """Nothing held open: every row is written when logged."""


class TensorBoardLogger(Logger):
    """TensorBoard event files in ``folder`` through ``torch.utils.tensorboard``'s
    ``SummaryWriter``; one scalar per metric (tag ``train/loss``, ``val/val_acc``, …)."""

    def __init__(self, folder: Path | str, start_step: int = 0) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise GinvError(
                'the tensorboard logger needs TensorBoard: pip install "ginv[tensorboard]"'
            ) from None
        self.folder = Path(folder)
        # purge_step: events after the checkpoint's epoch, from a killed run, are dropped
        self.writer = SummaryWriter(
            log_dir=str(self.folder), purge_step=start_step + 1 if start_step else None
        )

    @staticmethod
    def tag(name: str) -> str:
        """TensorBoard's tag of a metric name: ``member/metric`` (``0/loss``)."""
        return f"val/{name}" if name.startswith("val_") else f"train/{name}"

    def log_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        for name, value in metrics.items():
            if name != "epoch":
                self.writer.add_scalar(self.tag(name), float(value), step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbLogger(Logger):
    """A Weights & Biases run in ``folder`` (``wandb/`` there), offline by default: set
    ``WANDB_MODE=online`` (and log in) to upload as it trains, or ``wandb sync`` it later."""

    def __init__(
        self,
        folder: Path | str,
        start_step: int = 0,
        name: str | None = None,
        config: Mapping[str, Any] | None = None,
        project: str | None = None,
    ) -> None:
        try:
            import wandb
        except ImportError:
            raise GinvError('the wandb logger needs wandb: pip install "ginv[wandb]"') from None
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            dir=str(self.folder),
            project=project or os.environ.get("WANDB_PROJECT", "ginv"),
            name=name,
            config=dict(config or {}),
            mode=os.environ.get("WANDB_MODE", "offline"),  # type: ignore[arg-type]
            reinit="create_new",
        )

    def log_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        self.run.log({k: float(v) for k, v in metrics.items() if k != "epoch"}, step=step)

    def close(self) -> None:
        self.run.finish()


class NullLogger(Logger):
    """Logs nothing."""

    def log_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        pass

    def close(self) -> None:
        pass


LoggerFactory = Callable[..., Logger]

LOGGERS: dict[str, LoggerFactory] = {
    "csv": CSVLogger,
    "tensorboard": TensorBoardLogger,
    "wandb": WandbLogger,
    "none": NullLogger,
}


def make_logger(
    kind: str,
    folder: Path | str,
    start_step: int = 0,
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
) -> Logger:
    """The logger ``kind`` (a name of :data:`LOGGERS`) writing in ``folder``, continuing
    after ``start_step``; ``name`` and ``config`` describe the run (wandb records them)."""
    if kind not in LOGGERS:
        raise GinvError(f"unknown logger {kind!r} (known: {', '.join(LOGGERS)})")
    if kind == "wandb":
        return WandbLogger(folder, start_step, name=name, config=config)
    if kind == "none":
        return NullLogger()
    return LOGGERS[kind](folder, start_step)


__all__ = [
    "LOGGERS",
    "CSVLogger",
    "Logger",
    "NullLogger",
    "TensorBoardLogger",
    "WandbLogger",
    "make_logger",
]
