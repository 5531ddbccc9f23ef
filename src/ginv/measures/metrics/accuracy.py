"""Orbit accuracy: ``mean[argmax f(g·x) = y]`` over the whole orbit, identity included."""

from __future__ import annotations

from torch import Tensor

from ginv.measures.base import OrbitMeasure


class Accuracy(OrbitMeasure):
    """Whether each orbit image is classified correctly, ``(|G|, n)`` of 0 and 1.

    Example: ``ginv.measure(model, x, y, ginv.R4(), metrics="accuracy").accuracy``.
    """

    name = "accuracy"
    label = "accuracy (orbit)"
    includes_identity = True

    def from_orbit(self, logits: Tensor, labels: Tensor) -> Tensor:
        """``[argmax_k f(g·x)_k = y]`` per element and sample."""
        return (logits.double().argmax(-1) == labels).double()
