"""Running the run cache's tasks (:mod:`ginv.runs`) elsewhere: executors (local, or SLURM
jobs through submitit) and their settings. Importing this package needs nothing beyond ginv's core; ``--executor slurm``
needs ``pip install 'ginv[cluster]'`` (submitit)."""

from ginv.cluster.config import SlurmConfig
from ginv.cluster.executor import EXECUTORS, Executor, LocalExecutor, make_executor

__all__ = [
    "EXECUTORS",
    "Executor",
    "LocalExecutor",
    "SlurmConfig",
    "make_executor",
]
