"""The units of work that fill the run cache, and the body of a job that runs one.

A *task* leaves its results in the run cache under ``OUT``: a :class:`TrainTask` trains one
batch (runs that differ only in seed and ν, trained together as one batched model) and a
:class:`MeasureTask` measures a family's runs. A task is done when its files exist, whoever
wrote them; so a driver never needs to remember what a job did, a restarted driver sees what
is finished, and a job that is killed and run again resumes from the trainer's last
checkpoint. Every executor runs a task with the same code (:meth:`Task.run` on a
:class:`RunCache`), so all give the same files.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ginv.groups import get_group
from ginv.io import load_torch_file, stable_hash
from ginv.measures import SaliencyConfig
from ginv.measures.saliency import DEFAULT_BUDGET_MB
from ginv.runs.cache import MeasureSettings, RunCache, batch_key
from ginv.training.config import TrainConfig


class Task(Protocol):
    """What an executor runs: ``key`` names it (its job record, its lock), ``label`` is for
    people; ``done`` reads the cache, ``run`` fills it."""

    kind: str

    @property
    def key(self) -> str:
        """A name unique to the task's work: its job record's and its lock's name."""
        ...

    @property
    def label(self) -> str:
        """What the task does, for people (progress bars, job names, logs)."""
        ...

    def done(self, cache: RunCache) -> bool:
        """Whether the task's files are in ``cache``, whoever wrote them."""
        ...

    def run(self, cache: RunCache) -> None:
        """Do the work into ``cache``; safe to run again after a kill."""
        ...


@dataclass(frozen=True)
class TrainTask(Task):
    """Train ``configs`` (batchable with each other) into the run cache."""

    configs: tuple[TrainConfig, ...]
    kind = "train"

    @property
    def key(self) -> str:
        return f"train-{batch_key(self.configs)}"

    @property
    def label(self) -> str:
        return f"{self.configs[0].family} ×{len(self.configs)}"

    def done(self, cache: RunCache) -> bool:
        return all(cache.finished(c) for c in self.configs)

    def run(self, cache: RunCache) -> None:
        cache.train_batch(self.configs)

    def resume_point(self, cache: RunCache) -> str:
        """Where the training starts: from scratch, or a checkpoint's epoch (for a job's log:
        a resubmitted job says that it resumed)."""
        key = batch_key([c for c in self.configs if not cache.finished(c)])
        path = cache.out / "runs" / f"_batch-{key}" / f"checkpoint-{key}.pt"
        if not path.is_file():
            return "training from the start"
        try:
            epoch = int(load_torch_file(path, "cpu", mmap=True)["epoch"])
        except Exception:  # damaged: the trainer names it when it loads the checkpoint
            return f"a checkpoint is at {path}"
        return f"resuming from epoch {epoch} ({path})"


def training_tasks(cache: RunCache, configs: Sequence[TrainConfig]) -> list[TrainTask]:
    """The batches that ``configs`` still need: the missing runs, those that differ only in
    seed and ν together, in the order given."""
    # each once: two experiments' (or methods') runs may coincide
    missing = [c for c in dict.fromkeys(configs) if not cache.finished(c)]
    tasks = []
    while missing:
        batch = [c for c in missing if c.batchable_with(missing[0])]
        missing = [c for c in missing if not c.batchable_with(missing[0])]
        tasks.append(TrainTask(tuple(batch)))
    return tasks


@dataclass(frozen=True)
class MeasureTask(Task):
    """Measure the finished runs ``configs`` with one :class:`MeasureSettings`.

    The group travels by name, so that a task pickles for a job; :meth:`settings` rebuilds the
    settings (the group from :func:`ginv.groups.get_group`'s cache)."""

    configs: tuple[TrainConfig, ...]
    group: str
    metrics: tuple[str, ...]
    split: str = "test"
    samples: int = 0
    si_samples: int = 0
    sensitivity_samples: int = 0
    wrapper: str | None = None
    saliency: SaliencyConfig = field(default_factory=SaliencyConfig)
    memory_budget_mb: int = DEFAULT_BUDGET_MB
    kind = "measure"

    @classmethod
    def of(cls, configs: Sequence[TrainConfig], settings: MeasureSettings) -> MeasureTask:
        """The task that measures ``configs``' runs with ``settings``."""
        return cls(
            tuple(configs), settings.group.name, tuple(settings.metrics), settings.split,
            settings.samples, settings.si_samples, settings.sensitivity_samples,
            settings.wrapper, settings.saliency, settings.memory_budget_mb,
        )  # fmt: skip

    def settings(self) -> MeasureSettings:
        """The task's :class:`MeasureSettings` (its group rebuilt by name)."""
        return MeasureSettings(
            get_group(self.group), self.metrics, self.split, self.samples, self.si_samples,
            self.sensitivity_samples, self.saliency, self.wrapper, self.memory_budget_mb,
        )  # fmt: skip

    @property
    def key(self) -> str:
        # the measure files' settings but the saliency (a job's key predates it there)
        settings = {k: v for k, v in self.settings().record().items() if k != "saliency"}
        return f"measure-{stable_hash([[c.key() for c in self.configs], settings], 12)}"

    @property
    def label(self) -> str:
        return f"measure {self.configs[0].family} ×{len(self.configs)}"

    def done(self, cache: RunCache) -> bool:
        settings = self.settings()
        return all(cache.measure_path(c, settings).is_file() for c in self.configs)

    def run(self, cache: RunCache) -> None:
        settings = self.settings()
        for run in cache.finished_runs(self.configs):
            cache.measure_run(run, settings)


PASSED_ENV = ("GINV_DATA_DIR", "GINV_CACHE_DIR")
"""What a job's or worker's environment must carry, whatever the site exports."""


@dataclass(frozen=True)
class CacheSpec:
    """What a job needs to rebuild the :class:`RunCache`: plain paths and settings. ``env`` is
    set in the job's environment first (the data and cache folders), ``threads`` is torch's
    thread count there; ``progress`` whether the job logs its steps (one line per epoch in
    its log file, :mod:`ginv.progress`)."""

    out: str
    data_dir: str | None
    device: str | None
    threads: int
    env: tuple[tuple[str, str], ...] = ()
    factories: tuple[str, ...] = ()  # model factories the driver was given (--model, --set)
    progress: bool = True

    @classmethod
    def of(cls, cache: RunCache, threads: int) -> CacheSpec:
        """The spec of ``cache`` for a job or worker with ``threads`` torch threads: its paths
        made absolute, the :data:`PASSED_ENV` variables set here, the factories loaded here."""
        from ginv.models.factory import loaded_factories

        env = tuple((k, os.environ[k]) for k in PASSED_ENV if k in os.environ)
        data_dir = str(Path(cache.data_dir).resolve()) if cache.data_dir else None
        return cls(str(cache.out.resolve()), data_dir, cache.device_name, threads, env,
                   loaded_factories(), cache.progress)  # fmt: skip

    def cache(self) -> RunCache:
        """The run cache the spec describes; its bars write lines (a job's log is a file)."""
        return RunCache(
            Path(self.out), Path(self.data_dir) if self.data_dir else None, self.device,
            progress=self.progress,
        )  # fmt: skip


def run_task(spec: CacheSpec, task: Task) -> str:
    """The body of every job: rebuild the cache from ``spec`` and run ``task`` in it. Safe to
    run again after a kill: the trainer resumes from its checkpoint, and a task another writer
    finished is skipped."""
    import torch

    from ginv.models.factory import load_factory

    os.environ.update(dict(spec.env))
    torch.set_num_threads(spec.threads)
    for name in spec.factories:  # named by the user to the driver, never read from a file
        load_factory(name)
    cache = spec.cache()
    if task.done(cache):
        print(f"ginv job: {task.label} was finished by another writer", flush=True)
        return task.key
    if isinstance(task, TrainTask):
        print(f"ginv job: {task.label}; {task.resume_point(cache)}", flush=True)
    task.run(cache)
    print(f"ginv job: {task.label} done", flush=True)
    return task.key
