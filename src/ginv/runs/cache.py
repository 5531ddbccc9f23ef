"""Training runs and their measures, cached in one folder and shared by many writers.

Every run is stored under ``OUT/runs/<key>``, ``key`` the hash of its :class:`TrainConfig`;
finished runs are reused and interrupted ones resume from their checkpoint, so a killed
driver restarted with the same command loses at most the current epoch.

Many writers share the cache: drivers on one ``OUT``, and the jobs of :mod:`ginv.cluster`. A
run is finished when its ``run.json`` exists (written atomically, after ``model.pt``),
whoever wrote it. Training takes a lock per member run (``OUT/locks/run-<key>.lock``) and
re-checks ``run.json`` under it, so nothing is trained twice; the batch's folder
``_batch-<key>`` is locked too while it is trained in, and is removed only by a writer holding
that lock once every member has its ``run.json``. Each measure is cached in its run's folder
under the hash of its :class:`MeasureSettings`, computed under a lock and re-checked under it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ginv.data import DataConfig, TransformingDataset, load_transforming
from ginv.errors import GinvError
from ginv.groups import Group, get_group
from ginv.io import atomic_write_json, short_hash, stable_hash
from ginv.locks import FileLock, locked, try_locked
from ginv.measures import SaliencyConfig, measure
from ginv.measures.saliency import DEFAULT_BUDGET_MB
from ginv.models import OrbitAverage
from ginv.records import read_cache, read_record
from ginv.training import TrainConfig, Trainer, load_run, resolve_device
from ginv.training.trainer import remove_finished_checkpoints

POST_HOC: dict[str, Callable[[nn.Module, Any], nn.Module]] = {
    "orbit-average": OrbitAverage,
}
"""Wrappers put around a trained run's model when it is measured (not trained inside them)."""


def batch_key(configs: Sequence[TrainConfig]) -> str:
    """The name of a batch (its ``_batch-<key>`` folder, checkpoint and lock): a hash of its
    members' run keys, in order."""
    return short_hash("".join(c.key() for c in configs), 12)


@dataclass(frozen=True)
class MeasureSettings:
    """What :meth:`RunCache.measure_run` measures: ``metrics`` on the ``group`` orbit of the
    first ``samples`` images of ``split`` (0: all), SI and sensitivity on the first
    ``si_samples`` / ``sensitivity_samples`` of those (0: all), inside ``wrapper`` (a
    :data:`POST_HOC` name) if given. ``memory_budget_mb`` changes how the work is batched,
    never its result, so it is not part of :meth:`key`."""

    group: Group
    metrics: tuple[str, ...]
    split: str = "test"
    samples: int = 0
    si_samples: int = 0
    sensitivity_samples: int = 0
    saliency: SaliencyConfig = field(default_factory=SaliencyConfig)
    wrapper: str | None = None
    memory_budget_mb: int = DEFAULT_BUDGET_MB

    def record(self) -> dict[str, Any]:
        """The settings as stored beside the measures (``settings_key``) and hashed."""
        settings = {
            "group": self.group.name, "metrics": list(self.metrics), "split": self.split,
            "samples": self.samples, "si_samples": self.si_samples,
            "sensitivity_samples": self.sensitivity_samples, "saliency": asdict(self.saliency),
        }  # fmt: skip
        if self.wrapper is not None:  # added only when set: every earlier key stays valid
            settings["wrapper"] = self.wrapper
        return settings

    def key(self) -> str:
        """The measure file's name: ``measure-<key>.json`` in the run's folder."""
        return stable_hash(self.record(), 12)


@dataclass
class Run:
    """A finished training run: its config, folder and ``run.json`` record."""

    config: TrainConfig
    folder: Path
    record: dict[str, Any]

    def model(self, device: torch.device, wrapper: str | None = None) -> nn.Module:
        """The selected model, inside ``wrapper`` (a name of :data:`POST_HOC`) if given."""
        model = load_run(self.folder, device)[0]
        if wrapper is None:
            return model
        return POST_HOC[wrapper](model, get_group(self.config.group)).to(device).eval()


def _quiet(text: str) -> None:
    return None


class RunCache:
    """The runs and measures under ``out``, on ``device`` (``None``/``"auto"``: CUDA when
    present), the data read from ``data_dir``.

    Example:
        >>> cache = RunCache(tmp, progress=False)  # doctest: +SKIP
        >>> (run,) = cache.runs([TrainConfig(group="R4", epochs=1)])  # doctest: +SKIP
    """

    def __init__(
        self,
        out: Path,
        data_dir: Path | None = None,
        device: str | None = None,
        progress: bool = True,
    ) -> None:
        self.out = Path(out)
        self.data_dir = data_dir
        self.device_name = device  # as asked: a SLURM job resolves "auto" on its own node
        self.device = resolve_device(device)
        self.progress = progress
        self.status: Callable[[str], None] = _quiet  # what the cache is doing, for a bar
        self._data: dict[str, TransformingDataset] = {}

    # --- data ------------------------------------------------------------
    def data(self, name: str) -> TransformingDataset:
        """Dataset ``name`` (a :class:`TrainConfig`'s ``dataset``), loaded once."""
        if name not in self._data:
            self._data[name] = load_transforming(
                DataConfig(name), self.data_dir, device=self.device
            )
        return self._data[name]

    # --- runs ------------------------------------------------------------
    def run_dir(self, config: TrainConfig) -> Path:
        """The folder of ``config``'s run: ``OUT/runs/<config.key()>``."""
        return self.out / "runs" / config.key()

    def lock_path(self, name: str) -> Path:
        """The lock file of ``name`` (``run-<key>``, ``batch-<key>``, ``measure-…``)."""
        return self.out / "locks" / f"{name}.lock"

    def finished(self, config: TrainConfig) -> bool:
        """Whether ``config``'s run is in the cache: its ``run.json``, the last file written."""
        return (self.run_dir(config) / "run.json").is_file()

    def finished_runs(self, configs: Sequence[TrainConfig]) -> list[Run]:
        """The cached runs of ``configs`` (each must be finished)."""
        return [Run(c, self.run_dir(c), read_record(self.run_dir(c) / "run.json", "run"))
                for c in configs]  # fmt: skip

    def train_batch(self, configs: Sequence[TrainConfig]) -> None:
        """Train the members of ``configs`` that are not finished, as one batched model, under
        their run locks (taken in order; ``run.json`` is re-checked under them, since another
        writer may have finished some) and the lock of the batch's folder."""

        def waiting(path: Path) -> None:
            self.status(f"waiting for another writer of {configs[0].family}")

        with locked([self.lock_path(f"run-{c.key()}") for c in configs], waiting):
            todo = [c for c in configs if not self.finished(c)]
            if not todo:
                return
            key = batch_key(todo)
            with FileLock(self.lock_path(f"batch-{key}")):
                self.status(f"training {todo[0].family} ×{len(todo)}")
                trainer = Trainer(
                    todo, self.data(todo[0].dataset), self.out / "runs" / f"_batch-{key}",
                    self.device, progress=self.progress,
                    member_dirs=[self.run_dir(c) for c in todo],
                    teacher_dirs=self.teacher_dirs(todo),
                )  # fmt: skip
                trainer.fit(resume=True)

    def teacher_dirs(self, configs: Sequence[TrainConfig]) -> list[Path] | None:
        """The folders of the members' teachers, runs of this cache (``OUT/runs/<teacher>``),
        each of which must be finished; None where no member has one."""
        if not any(c.teacher for c in configs):
            return None
        folders = [self.out / "runs" / c.teacher for c in configs]
        for c, folder in zip(configs, folders, strict=True):
            if not (folder / "run.json").is_file():
                raise GinvError(
                    f"{c.name}: its teacher, run {c.teacher}, is not trained in "
                    f"{self.out / 'runs'}: train it first"
                )
        return folders

    def clean_batches(self) -> None:
        """Remove each ``_batch-<key>`` folder whose members all have their ``run.json``,
        taking the folder's lock first: one that another writer trains in (or cleans) is left."""
        for folder in sorted((self.out / "runs").glob("_batch-*")):
            key = folder.name.removeprefix("_batch-")
            with try_locked(self.lock_path(f"batch-{key}")) as held:
                if held and folder.is_dir():
                    remove_finished_checkpoints([folder], self.run_dir)

    # --- measures --------------------------------------------------------
    def measure_path(self, config: TrainConfig, settings: MeasureSettings) -> Path:
        """Where :meth:`measure_run` caches ``settings``' measures of ``config``'s run."""
        return self.run_dir(config) / f"measure-{settings.key()}.json"

    def measure_run(self, run: Run, settings: MeasureSettings) -> dict[str, Any]:
        """:func:`ginv.measure` on a run (inside ``settings.wrapper`` if given), cached in the
        run's folder under the hash of ``settings`` and computed under a lock, so that two
        writers never measure the same thing twice."""
        key = settings.key()
        path = run.folder / f"measure-{key}.json"

        def holds(record: dict[str, Any]) -> str | None:
            missing = [m for m in settings.metrics
                       if not all(m in record[k] for k in ("metrics", "std_over_samples", "subsets"))]  # fmt: skip
            return f"no {', '.join(missing)} measured" if missing else None

        cached = read_cache(path, "measure", holds, move_aside=False)
        if cached is not None:
            return cached
        with FileLock(self.lock_path(f"measure-{run.config.key()}-{key}")):
            # measured by another writer meanwhile; a damaged record is moved aside, measured again
            cached = read_cache(path, "measure", holds)
            if cached is not None:
                return cached
            self.status(f"measuring {run.config.name}")
            data = getattr(self.data(run.config.dataset), settings.split)
            data = data.head(settings.samples or None)
            report = measure(
                run.model(self.device, settings.wrapper), data.images, data.labels,
                settings.group, settings.metrics, settings.saliency,
                si_subset=settings.si_samples or None,
                sensitivity_subset=settings.sensitivity_samples or None,
                memory_budget_mb=settings.memory_budget_mb, progress=self.progress,
            )  # fmt: skip
            result = {**report.to_dict(), "settings_key": settings.record()}
            atomic_write_json(result, path)
        return result
