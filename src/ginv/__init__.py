"""ginv: measure and learn genuine group invariance in PyTorch classifiers."""

from ginv import testing
from ginv.errors import GinvError
from ginv.groups import D4, R4, T3, FlipH, FlipV, PermutationGroup, Tn, get_group
from ginv.losses import invariance_loss
from ginv.measures import MeasureReport, SaliencyConfig, measure

__version__ = "0.1.0"

__all__ = [
    "D4",
    "R4",
    "T3",
    "FlipH",
    "FlipV",
    "GinvError",
    "MeasureReport",
    "PermutationGroup",
    "SaliencyConfig",
    "Tn",
    "get_group",
    "invariance_loss",
    "measure",
    "testing",
]
