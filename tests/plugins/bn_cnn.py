"""A model from outside ginv: a BatchNorm CNN made by a factory, ``--model tests.plugins.bn_cnn:build``.

``build(in_shape, num_classes)`` follows the :class:`ginv.models.base.Network` contract
(``first``, ``body``, ``head``), so its WT twin (``wt-tests.plugins.bn_cnn:build``) and
canonicalised twin exist too; ``plain`` returns an ``nn.Sequential``, which trains for DA
and IR but has no WT twin. Both hold BatchNorm buffers (running mean and variance).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ginv.models.base import Network


class BNCNN(Network):
    """3×3 convolution (stride 2) → ReLU → BatchNorm → 3×3 convolution (stride 2) →
    BatchNorm → ReLU → global mean → linear head."""

    default_width = 8
    default_depth = 2

    def __init__(self, in_channels: int, width: int, num_classes: int) -> None:
        super().__init__()
        self.first = nn.Conv2d(in_channels, width, 3, stride=2, padding=1)
        self.norm1 = nn.BatchNorm2d(width)
        # no bias before a BatchNorm: its gradient is 0 up to rounding, which Adam would amplify
        self.conv = nn.Conv2d(width, width, 3, stride=2, padding=1, bias=False)
        self.norm2 = nn.BatchNorm2d(width)
        self.head = nn.Linear(width, num_classes)

    @classmethod
    def build(cls, in_shape, width, depth, num_classes, first_width=0) -> BNCNN:
        return cls(in_shape[0], width, num_classes)

    def body(self, h: Tensor) -> Tensor:
        h = torch.relu(self.norm2(self.conv(self.norm1(h))))
        return h.mean((-2, -1))


def build(in_shape: tuple[int, ...], num_classes: int) -> BNCNN:
    """The factory: a BatchNorm CNN for images ``(C, H, W)`` with ``num_classes`` logits."""
    return BNCNN(in_shape[0], BNCNN.default_width, num_classes)


def plain(in_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """A BatchNorm CNN that is not a ginv Network (no WT twin)."""
    return nn.Sequential(
        nn.Conv2d(in_shape[0], 4, 3, stride=2, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, num_classes),
    )  # fmt: skip


not_a_model = 3  # a factory name that names no callable
