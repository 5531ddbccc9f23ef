"""Training: typed run configurations and the batched, resumable trainer."""

from ginv.training.config import REGULARIZERS, TrainConfig
from ginv.training.trainer import (
    Trainer,
    TrainingDiverged,
    load_run,
    model_args,
    model_for,
    orbit_accuracy,
    resolve_device,
)

__all__ = [
    "REGULARIZERS",
    "TrainConfig",
    "Trainer",
    "TrainingDiverged",
    "load_run",
    "model_args",
    "model_for",
    "orbit_accuracy",
    "resolve_device",
]
