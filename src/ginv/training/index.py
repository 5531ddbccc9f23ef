"""``index.csv``: a readable table of the runs in a folder of run folders.

The study's run cache names each run's folder by a hash of its settings
(``runs/3f9c…/run.json``); ``index.csv`` beside those folders says which is which: one row per
finished run, with its folder, cache key, readable name (e.g. ``mnist-R4-mlp-seed0``), family,
group, model, regularizer, ν, seed and its best validation accuracy. The trainer adds a run's
row when it writes the run's ``run.json``. Several writers (drivers, SLURM jobs) may finish
runs in one folder at once: the table is rewritten atomically under a lock
(:class:`ginv.locks.FileLock`), and a run finished again replaces its row.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ginv.io import atomic_write_text
from ginv.locks import FileLock

INDEX_NAME = "index.csv"
INDEX_COLUMNS = ("folder", "key", "name", "family", "group", "model", "reg", "nu", "seed",
                 "epochs", "selected_epoch", "best_val_acc")  # fmt: skip


def index_row(folder: Path, run: Mapping[str, Any]) -> dict[str, Any]:
    """The row of ``run`` (a ``run.json`` record) written in ``folder``."""
    from ginv.training.config import TrainConfig

    config = TrainConfig.from_dict(dict(run["config"]))
    return {
        "folder": Path(folder).name, "key": config.key(), "name": config.name,
        "family": config.family, "group": config.group, "model": config.model,
        "reg": config.reg, "nu": f"{config.nu:g}", "seed": config.seed,
        "epochs": run.get("epochs_trained", config.epochs),
        "selected_epoch": run.get("selected_epoch", ""),
        "best_val_acc": f"{float(run['best_val_acc']):.6g}" if "best_val_acc" in run else "",
    }  # fmt: skip


def read_index(path: Path) -> list[dict[str, str]]:
    """The rows of an ``index.csv`` (none if there is no file)."""
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def update_index(folder: Path, run: Mapping[str, Any]) -> Path:
    """Add (or replace) ``run``'s row in ``index.csv`` of ``folder``'s parent; return its path."""
    folder = Path(folder)
    path = folder.parent / INDEX_NAME
    row = index_row(folder, run)
    with FileLock(folder.parent / f".{INDEX_NAME}.lock"):
        rows = [r for r in read_index(path) if r.get("folder") != row["folder"]]
        rows.append({k: str(v) for k, v in row.items()})
        rows.sort(key=lambda r: (r.get("family", ""), r.get("name", ""), r.get("folder", "")))
        text = io.StringIO()
        writer = csv.DictWriter(text, INDEX_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(text.getvalue(), path)
    return path


__all__ = ["INDEX_COLUMNS", "INDEX_NAME", "index_row", "read_index", "update_index"]
