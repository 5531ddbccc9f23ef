"""A small convolutional classifier: strided 3×3 convolutions, global average pool, linear head."""

from __future__ import annotations

import itertools

import torch
from torch import Tensor, nn

from ginv.errors import GinvError
from ginv.models.base import Network


class CNN(Network):
    """``depth`` 3×3 convolutions of stride 2 (padding 1) with ReLU, channels doubling up to
    ``width`` (the default 16 → 32 → 64), a global average pool and a linear head. No
    normalisation layer, hence no buffers: members train batched in an
    :class:`~ginv.models.Ensemble`. ``features`` is the pooled ``width``-vector.
    ``in_channels`` and ``num_classes`` are the data's. The default on 1×36×36 images (36 → 18 → 9 → 5 pixels, 9 classes) has 23,881 parameters.
    ``first_width`` (0: as the doubling gives) sets the first convolution's channels."""

    default_width = 64
    default_depth = 3

    def __init__(
        self,
        in_channels: int,
        width: int = 64,
        depth: int = 3,
        *,
        num_classes: int,
        first_width: int = 0,
    ) -> None:
        super().__init__()
        if depth < 1 or width < 1 or first_width < 0:
            raise GinvError(f"a CNN needs depth ≥ 1 and width ≥ 1, got {depth} and {width}")
        channels = [max(1, width >> (depth - 1 - i)) for i in range(depth)]
        channels[0] = first_width or channels[0]
        self.first = nn.Conv2d(in_channels, channels[0], 3, stride=2, padding=1)
        self.hidden = nn.ModuleList(
            nn.Conv2d(a, b, 3, stride=2, padding=1) for a, b in itertools.pairwise(channels)
        )
        self.head = nn.Linear(width, num_classes)

    @classmethod
    def build(
        cls, in_shape: tuple[int, ...], width: int, depth: int, num_classes: int,
        first_width: int = 0,
    ) -> CNN:  # fmt: skip
        if len(in_shape) != 3:
            raise GinvError(f"a CNN needs images shaped (C, H, W), got {tuple(in_shape)}")
        return cls(in_shape[0], width, depth, num_classes=num_classes, first_width=first_width)

    def body(self, h: Tensor) -> Tensor:
        for conv in self.hidden:
            h = torch.relu(conv(h))
        return h.mean((-2, -1))
