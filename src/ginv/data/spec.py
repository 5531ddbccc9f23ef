"""What a dataset is, as the models and the planner see it: :class:`DataSpec`."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ginv.errors import GinvError
from ginv.groups import Group

Stat = float | tuple[float, ...]
"""A normalisation statistic: one float for a one-channel dataset (as MNIST's are recorded),
else one float per channel."""


def per_channel(stat: Stat, channels: int) -> tuple[float, ...]:
    """``stat`` as one float per channel (a float is every channel's)."""
    values = (float(stat),) * channels if isinstance(stat, int | float) else tuple(stat)
    if len(values) != channels:
        raise GinvError(f"{len(values)} statistics given for {channels} channels")
    return values


@dataclass(frozen=True)
class DataSpec:
    """A Transforming dataset's shape, classes and normalisation.

    ``shape`` is the transformed canvas ``(C, H, W)`` the models see, ``source_shape`` the
    source images ``(C, h, w)`` before zero-padding (``H = h + 2·pad``), ``num_classes`` the
    number of classes (labels ``0 … num_classes − 1``), ``mean`` and ``std`` the training
    split's per-channel statistics of the padded ``[0, 1]`` pixels.

    Example:
        >>> spec = DataSpec("mnist", (1, 36, 36), (1, 28, 28), 9, (0.08,), (0.25,))
        >>> spec.channels, spec.pad
        (1, 4)
    """

    name: str
    shape: tuple[int, int, int]
    source_shape: tuple[int, int, int]
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def channels(self) -> int:
        """The number of image channels, ``shape[0]``."""
        return self.shape[0]

    @property
    def pad(self) -> int:
        """The zero border on each side: ``(H − h) / 2``."""
        return (self.shape[1] - self.source_shape[1]) // 2

    def describe(self) -> str:
        """One line: ``mnist: 1×28×28 images on a 1×36×36 canvas, 9 classes, mean …, std …``."""
        shape = "×".join(map(str, self.shape))
        source = "×".join(map(str, self.source_shape))
        mean = ", ".join(f"{m:.4f}" for m in self.mean)
        std = ", ".join(f"{s:.4f}" for s in self.std)
        return (
            f"{self.name}: {source} images on a {shape} canvas, {self.num_classes} classes, "
            f"mean ({mean}), std ({std})"
        )


def canvas_shape(source_shape: tuple[int, int, int], pad: int) -> tuple[int, int, int]:
    """The canvas of source images ``(C, h, w)`` zero-padded by ``pad`` on every side: the
    study's rule (MNIST's 28 padded by 4 to 36, on which R4 and T3 both act), for any size.

    Example:
        >>> canvas_shape((3, 28, 28), 4)
        (3, 36, 36)
    """
    c, h, w = source_shape
    return (c, h + 2 * pad, w + 2 * pad)


def _acts(group: Group, shape: tuple[int, int, int]) -> str | None:
    try:
        group.orbit(torch.zeros(1, *shape))
    except GinvError as e:
        return str(e)
    return None


def check_group_acts(group: Group, spec: DataSpec) -> None:
    """Raise a :class:`~ginv.errors.GinvError` unless ``group`` acts on ``spec``'s canvas;
    the message names image sides (square, same padding) on which it would.

    Example:
        >>> from ginv.groups import get_group
        >>> check_group_acts(get_group("T3"), DataSpec("d", (1, 36, 36), (1, 28, 28), 9,
        ...                  (0.1,), (0.3,)))
    """
    problem = _acts(group, spec.shape)
    if problem is None:
        return
    c, h, w = spec.source_shape
    pad = spec.pad
    side = max(h, w)
    good = [
        s
        for s in range(max(1, side - 12), side + 13)
        if _acts(group, canvas_shape((c, s, s), pad)) is None
    ]
    hint = (
        f"image sides that would work with padding {pad}: {', '.join(map(str, good[:8]))}"
        if good
        else "no nearby square size works"
    )
    raise GinvError(
        f"{group.name} cannot act on {spec.name}'s {spec.shape[1]}×{spec.shape[2]} canvas "
        f"({h}×{w} images padded by {pad}): {problem}; {hint}"
    )
