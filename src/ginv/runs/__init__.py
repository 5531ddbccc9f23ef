"""The run cache: training runs and their measures stored under one folder, found again by
the hash of their settings, and the tasks that fill it.

This layer sits beneath the experiments and the executors: :mod:`ginv.cluster` runs its
tasks, :mod:`ginv.experiments` asks it for runs and measures, and it imports neither.
"""

from ginv.runs.cache import POST_HOC, MeasureSettings, Run, RunCache, batch_key
from ginv.runs.tasks import CacheSpec, MeasureTask, Task, TrainTask, run_task, training_tasks

__all__ = [
    "POST_HOC",
    "CacheSpec",
    "MeasureSettings",
    "MeasureTask",
    "Run",
    "RunCache",
    "Task",
    "TrainTask",
    "batch_key",
    "run_task",
    "training_tasks",
]
