"""Where the study's work runs: in this process (:class:`LocalExecutor`) or as SLURM jobs
(:class:`ginv.cluster.slurm.SlurmExecutor`, through submitit).

The unit of work is a *task* that leaves its results in the run cache under ``OUT``: a
:class:`TrainTask` trains one batch (runs that differ only in seed and ν, trained together as
one batched model) and a :class:`MeasureTask` measures a family's runs. A task is done when
its files exist, whoever wrote them; so the driver never needs to remember what a job did,
a restarted driver sees what is finished, and a job that is killed and run again resumes from
the trainer's last checkpoint. Both executors run a task with the same code
(:meth:`TrainTask.run`, :meth:`MeasureTask.run`), so they give the same files.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ginv.io import short_hash, stable_hash
from ginv.training.config import TrainConfig

if TYPE_CHECKING:
    from ginv.cluster.config import SlurmConfig
    from ginv.experiments.study import Study

EXECUTORS = ("local", "slurm")


def batch_key(configs: Sequence[TrainConfig]) -> str:
    """The name of a batch (its ``_batch-<key>`` folder, checkpoint and lock): a hash of its
    members' run keys, in order."""
    return short_hash("".join(c.key() for c in configs), 12)


class Task(Protocol):
    kind: str

    @property
    def key(self) -> str: ...

    @property
    def label(self) -> str: ...

    def done(self, study: Study) -> bool: ...

    def run(self, study: Study) -> None: ...


@dataclass(frozen=True)
class TrainTask:
    """Train ``configs`` (batchable with each other) into the run cache."""

    configs: tuple[TrainConfig, ...]
    kind = "train"

    @property
    def key(self) -> str:
        return f"train-{batch_key(self.configs)}"

    @property
    def label(self) -> str:
        return f"{self.configs[0].family} ×{len(self.configs)}"

    def done(self, study: Study) -> bool:
        return all(study.finished(c) for c in self.configs)

    def run(self, study: Study) -> None:
        study.train_batch(self.configs)


@dataclass(frozen=True)
class MeasureTask:
    """Measure the finished runs ``configs`` with one setting of :meth:`Study.measure_run`."""

    configs: tuple[TrainConfig, ...]
    group: str
    metrics: tuple[str, ...]
    split: str = "test"
    samples: int = 0
    si_samples: int = 0
    sensitivity_samples: int = 0
    wrapper: str | None = None
    kind = "measure"

    @property
    def key(self) -> str:
        settings = {k: v for k, v in self.__dict__.items()
                    if k != "configs" and not (k == "wrapper" and v is None)}  # fmt: skip
        return f"measure-{stable_hash([[c.key() for c in self.configs], settings], 12)}"

    @property
    def label(self) -> str:
        return f"measure {self.configs[0].family} ×{len(self.configs)}"

    def _kwargs(self) -> dict[str, Any]:
        return {
            "split": self.split, "samples": self.samples, "si_samples": self.si_samples,
            "sensitivity_samples": self.sensitivity_samples, "wrapper": self.wrapper,
        }  # fmt: skip

    def done(self, study: Study) -> bool:
        group = study.group(self.group)
        return all(
            study.measure_path(c, group, self.metrics, **self._kwargs()).is_file()
            for c in self.configs
        )

    def run(self, study: Study) -> None:
        group = study.group(self.group)
        for run in study.finished_runs(self.configs):
            study.measure_run(run, group, self.metrics, **self._kwargs())


class Executor(ABC):
    """Runs tasks. :meth:`run` returns once every task is done (or raises one
    :class:`ginv.errors.GinvError`); :meth:`submit` only starts them, where that means
    something (SLURM), so that independent work runs while the driver goes on."""

    name = "local"
    #: whether tasks run elsewhere, so that submitting them early lets them run side by side
    submits_jobs = False
    #: whether the measures of a family go to a task of their own (else the driver measures)
    measures_as_jobs = False

    def submit(self, study: Study, tasks: Sequence[Task]) -> None:
        """Start ``tasks`` without waiting; the local executor runs them when asked to."""
        return None

    @abstractmethod
    def run(self, study: Study, tasks: Sequence[Task]) -> None:
        """Run ``tasks`` (those not done yet) and return once every one is done."""

    def close(self) -> None:
        """Release what the executor holds (nothing for the local one)."""
        return None


class LocalExecutor(Executor):
    """Runs every task in this process, one after the other, as ginv always did."""

    def run(self, study: Study, tasks: Sequence[Task]) -> None:
        for task in tasks:
            if not task.done(study):
                task.run(study)


@dataclass(frozen=True)
class JobSpec:
    """What a job needs to rebuild its :class:`Study`: plain settings and paths. ``env`` is
    set in the job's environment first (the data and cache folders), ``threads`` is torch's
    thread count there."""

    config: Any  # a StudyConfig
    out: str
    data_dir: str | None
    device: str | None
    threads: int
    env: tuple[tuple[str, str], ...] = ()


def run_task(spec: JobSpec, task: Task) -> str:
    """The body of every job: rebuild the study from ``spec`` and run ``task`` in it, with the
    local executor (a job never submits jobs). Safe to run again after a kill: the trainer
    resumes from its checkpoint, and a task another writer finished is skipped."""
    import torch

    from ginv.experiments.study import Study

    os.environ.update(dict(spec.env))
    torch.set_num_threads(spec.threads)
    study = Study(
        spec.config, Path(spec.out), Path(spec.data_dir) if spec.data_dir else None,
        spec.device, progress=False, executor=LocalExecutor(),
    )  # fmt: skip
    if task.done(study):
        print(f"ginv job: {task.label} was finished by another writer", flush=True)
        return task.key
    if isinstance(task, TrainTask):
        print(f"ginv job: {task.label}; {_resume_point(study, task)}", flush=True)
    task.run(study)
    print(f"ginv job: {task.label} done", flush=True)
    return task.key


def _resume_point(study: Study, task: TrainTask) -> str:
    """Where the training of ``task`` starts: from scratch, or a checkpoint's epoch (for the
    job's log: a resubmitted job says that it resumed)."""
    from ginv.io import load_torch_file

    key = batch_key([c for c in task.configs if not study.finished(c)])
    path = study.out / "runs" / f"_batch-{key}" / f"checkpoint-{key}.pt"
    if not path.is_file():
        return "training from the start"
    try:
        epoch = int(load_torch_file(path, "cpu", mmap=True)["epoch"])
    except Exception:  # damaged: the trainer names it when it loads the checkpoint
        return f"a checkpoint is at {path}"
    return f"resuming from epoch {epoch} ({path})"


def make_executor(
    name: str, out: Path, slurm: SlurmConfig | None = None, progress: bool = True
) -> Executor:
    """``local`` or ``slurm`` (which needs submitit, ``pip install 'ginv[cluster]'``, and a
    cluster that answers); anything else is one :class:`GinvError` line."""
    from ginv.errors import GinvError

    if name == "local":
        return LocalExecutor()
    if name == "slurm":
        from ginv.cluster.config import SlurmConfig
        from ginv.cluster.slurm import SlurmExecutor

        return SlurmExecutor(slurm or SlurmConfig(), out, progress)
    raise GinvError(f"unknown executor {name!r} (known: {', '.join(EXECUTORS)})")
