"""Running the study's work elsewhere: executors (local, or SLURM jobs through submitit), the
tasks they run, their settings, and the file locks that let many drivers and jobs share one
run cache. Importing this package needs nothing beyond ginv's core; ``--executor slurm``
needs ``pip install 'ginv[cluster]'`` (submitit)."""

from ginv.cluster.config import SlurmConfig
from ginv.cluster.executor import (
    EXECUTORS,
    Executor,
    LocalExecutor,
    MeasureTask,
    TrainTask,
    batch_key,
    make_executor,
)
from ginv.cluster.locks import FileLock, locked, try_locked

__all__ = [
    "EXECUTORS",
    "Executor",
    "FileLock",
    "LocalExecutor",
    "MeasureTask",
    "SlurmConfig",
    "TrainTask",
    "batch_key",
    "locked",
    "make_executor",
    "try_locked",
]
