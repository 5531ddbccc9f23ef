"""Running the run cache's tasks (:mod:`ginv.runs`) elsewhere: executors (local, or SLURM
jobs through submitit) and their settings. Importing this package needs nothing beyond ginv's core; ``--executor slurm``
needs ``pip install 'ginv[cluster]'`` (submitit)."""

from pathlib import Path

from ginv.cluster.config import SlurmConfig
from ginv.cluster.executor import Executor, LocalExecutor
from ginv.errors import GinvError

EXECUTORS = ("local", "slurm")

__all__ = [
    "EXECUTORS",
    "Executor",
    "LocalExecutor",
    "SlurmConfig",
    "make_executor",
]


def make_executor(
    name: str, out: Path, slurm: SlurmConfig | None = None, progress: bool = True
) -> Executor:
    """``local`` or ``slurm`` (which needs submitit, ``pip install 'ginv[cluster]'``, and a
    cluster that answers); anything else is one :class:`GinvError` line."""
    if name == "local":
        return LocalExecutor()
    if name == "slurm":
        from ginv.cluster.slurm import SlurmExecutor

        return SlurmExecutor(slurm or SlurmConfig(), out, progress)
    raise GinvError(f"unknown executor {name!r} (known: {', '.join(EXECUTORS)})")
