"""Running the run cache's tasks (:mod:`ginv.runs`) elsewhere: executors (local, or SLURM
jobs through submitit) and their settings. Importing this package needs nothing beyond ginv's core; ``--executor slurm``
needs ``pip install 'ginv[cluster]'`` (submitit); ``--workers N`` runs tasks in N local worker
processes (:mod:`ginv.cluster.parallel`)."""

from pathlib import Path

from ginv.cluster.config import SlurmConfig
from ginv.cluster.executor import Executor, LocalExecutor
from ginv.cluster.parallel import ParallelExecutor, WorkerConfig
from ginv.errors import GinvError

EXECUTORS = ("local", "parallel", "slurm")

__all__ = [
    "EXECUTORS",
    "Executor",
    "LocalExecutor",
    "ParallelExecutor",
    "SlurmConfig",
    "WorkerConfig",
    "make_executor",
]


def make_executor(
    name: str, out: Path, slurm: SlurmConfig | None = None, progress: bool = True,
    workers: WorkerConfig | None = None,
) -> Executor:  # fmt: skip
    """``local`` (in this process with one worker, else :class:`ParallelExecutor` with
    ``workers.resolved_workers()`` processes), ``parallel`` (worker processes even for one
    worker) or ``slurm`` (which needs submitit, ``pip install 'ginv[cluster]'``, and a cluster
    that answers); anything else is one :class:`GinvError` line.

    Example: ``make_executor("local", out, workers=WorkerConfig(workers=1))`` is today's
    in-process :class:`LocalExecutor`."""
    workers = (workers or WorkerConfig()).validate()
    if name == "local" and workers.resolved_workers() == 1:
        return LocalExecutor()
    if name in ("local", "parallel"):
        return ParallelExecutor(workers, out, progress)
    if name == "slurm":
        from ginv.cluster.slurm import SlurmExecutor

        return SlurmExecutor(slurm or SlurmConfig(), out, progress)
    raise GinvError(f"unknown executor {name!r} (known: {', '.join(EXECUTORS)})")
