"""The contract of a regulariser: ``ν·R(f)`` added to each member's cross-entropy."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Literal

import torch
from torch import Tensor

from ginv.groups import PermutationGroup
from ginv.models import Ensemble

Uses = Literal["inputs", "weights", "wrapper", "architecture"]
"""What a method needs to know of the group: ``inputs``, its action on images alone (DA, IR,
anything that only sees ``g·x``); ``weights``, its action on the parameters (the orbit
structure); ``wrapper``, a wrapper around the trained model (orbit averaging,
canonicalisation); ``architecture``, a tied architecture (WT)."""
USES: tuple[Uses, ...] = ("inputs", "weights", "wrapper", "architecture")


class Regularizer(ABC):
    """``R(f)`` for every member of a batched model, computed with the member's logits.

    The trainer hands it the augmented batch ``x̃`` as ``(M, B, C, H, W)``, or, when
    ``needs_orbit``, the orbit of it as ``(M, |G|·B, C, H, W)`` (element-major, identity
    first), and the labels ``(M, B)``. It returns the logits of ``x̃`` ``(M, B, K)``, which
    the cross-entropy uses, and the penalty ``(M,)``: one forward serves both.
    """

    needs_orbit: ClassVar[bool]
    architectures: ClassVar[tuple[str, ...] | None] = None
    """The architectures it applies to (None: every one)."""
    decoupled: ClassVar[bool] = False
    """Whether it acts through :meth:`after_step` rather than through the loss's gradient."""
    needs_teacher: ClassVar[bool] = False
    """Whether it reads a finished run, the teacher (``TrainConfig.teacher``), which the
    trainer loads and sets as :attr:`teacher`."""
    teacher: Ensemble | None = None
    """The members' teachers as one batched model, never trained (only where
    :attr:`needs_teacher`)."""
    uses: ClassVar[Uses]
    """What it knows of the group (:data:`Uses`): ``inputs`` where it sees only ``g·x``."""

    def __init__(self, group: PermutationGroup) -> None:
        self.group = group

    @abstractmethod
    def __call__(self, model: Ensemble, x: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """Logits of the augmented batch ``(M, B, K)`` and the penalty ``(M,)``."""

    def start_epoch(self, epoch: int, epochs: int) -> None:
        """Called by the trainer before each epoch, ``epoch`` counted from 0 of ``epochs``; a
        scheduled regulariser (a ν warm-up) reads the time here; the others ignore it."""
        return None

    def selectable(self, epoch: int, epochs: int) -> bool:
        """Whether the model after epoch ``epoch`` (from 0) may be the run's selected one; a
        warm-up excludes its epochs below full strength. The last epoch always may."""
        return True

    def after_step(self, model: Ensemble, rates: Tensor, image_shape: torch.Size) -> None:
        """Called after each optimiser step with ``lr·ν`` per member ``(M,)``; a decoupled
        regulariser moves the weights here; the others leave them alone."""
        return None

    def orbit_view(self, t: Tensor) -> Tensor:
        """``(M, |G|·B, ...)`` as ``(M, |G|, B, ...)``."""
        return t.view(t.shape[0], len(self.group), -1, *t.shape[2:])
