"""A model from outside ginv for any image shape: an MLP with BatchNorm made by a factory,
``--model tests.plugins.bn_mlp:build`` (its WT twin: ``wt-tests.plugins.bn_mlp:build``).

It follows the :class:`ginv.models.base.Network` contract (``first`` a linear layer on the
flattened image, ``body``, ``head``), and holds BatchNorm buffers. The docs' Colour-Digits
table trains it.
"""

from __future__ import annotations

from torch import Tensor, nn

from ginv.models.base import Network


class BNMLP(Network):
    """Linear → ReLU, then ``depth − 1`` blocks Linear → BatchNorm → ReLU, → linear head."""

    default_width = 128
    default_depth = 3

    def __init__(self, in_features: int, width: int, depth: int, num_classes: int) -> None:
        super().__init__()
        self.first = nn.Linear(in_features, width)
        self.blocks = nn.Sequential(*(
            nn.Sequential(nn.Linear(width, width, bias=False), nn.BatchNorm1d(width), nn.ReLU())
            for _ in range(depth - 1)
        ))  # fmt: skip
        self.head = nn.Linear(width, num_classes)

    @classmethod
    def build(cls, in_shape, width, depth, num_classes, first_width=0) -> BNMLP:
        c, h, w = in_shape
        return cls(c * h * w, width, depth, num_classes)

    def body(self, h: Tensor) -> Tensor:
        return self.blocks(h)


def build(in_shape: tuple[int, ...], num_classes: int) -> BNMLP:
    """The factory: an MLP with BatchNorm for images ``(C, H, W)``, ``num_classes`` logits."""
    return BNMLP.build(in_shape, BNMLP.default_width, BNMLP.default_depth, num_classes)
