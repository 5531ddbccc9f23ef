"""Where the run cache's tasks run: in this process (:class:`LocalExecutor`) or as SLURM jobs
(:class:`ginv.cluster.slurm.SlurmExecutor`, through submitit).

The tasks (:mod:`ginv.runs.tasks`) leave their results in the run cache under ``OUT``; an
executor only decides where and when they run. Both executors run a task with the same code
(``task.run(cache)``), so they give the same files.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from ginv.runs import RunCache, Task


class Executor(ABC):
    """Runs tasks. :meth:`run` returns once every task is done (or raises one
    :class:`ginv.errors.GinvError`); :meth:`submit` only starts them, where that means
    something (SLURM), so that independent work runs while the driver goes on."""

    name = "local"
    #: whether tasks run elsewhere, so that submitting them early lets them run side by side
    submits_jobs = False
    #: whether the measures of a family go to a task of their own (else the driver measures)
    measures_as_jobs = False
    #: whether :meth:`run` may be called from several driver threads at once, each waiting
    #: for its own tasks (the study then runs independent ν searches side by side)
    concurrent = False

    def submit(self, cache: RunCache, tasks: Sequence[Task]) -> None:
        """Start ``tasks`` without waiting; the local executor runs them when asked to."""
        return None

    @abstractmethod
    def run(self, cache: RunCache, tasks: Sequence[Task]) -> None:
        """Run ``tasks`` (those not done yet) and return once every one is done."""

    def close(self) -> None:
        """Release what the executor holds (nothing for the local one)."""
        return None

    def abort(self) -> None:
        """Stop what runs at once, after an error or Ctrl-C in the driver (default: close)."""
        self.close()


class LocalExecutor(Executor):
    """Runs every task in this process, one after the other, as ginv always did."""

    def run(self, cache: RunCache, tasks: Sequence[Task]) -> None:
        """Run each task that is not done, in order, in this process."""
        for task in tasks:
            if not task.done(cache):
                task.run(cache)
