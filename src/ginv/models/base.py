"""The model contract, and the weight-tied (WT) wrapper that makes any architecture invariant.

A ginv architecture is a :class:`Network`: a first layer ``first`` (an ``nn.Linear`` on the
flattened image or an ``nn.Conv2d``) followed by a ReLU, a body, and a linear ``head``;
``features`` is the input of the head. Its WT twin is the same network with ``first``
wrapped in :class:`WeightTied`: one mechanism for every architecture.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ginv.errors import GinvError
from ginv.groups import PermutationGroup

Pool = Literal["mean", "max"]


class Lifted(nn.Identity):
    """Marks lifted features ``(B, |G|, ...)``, one per orbit image, before a pool: hooks
    (:func:`ginv.measures.layer_equivariance`) read the group axis from ``group_axis``."""

    group_axis = 1


class WeightTied(nn.Module):
    """``h(x) = pool_g relu(L(g·x))``: a first layer ``L`` and its ReLU applied to every image
    of the orbit of ``x`` with the same weights, then pooled (mean or max) over the group.

    **Exact invariance, for any** ``L``: ``h`` is a symmetric function of the multiset
    ``{g·x : g ∈ G}``, and ``{g·(g'·x)}_g = {g·x}_g`` for every ``g' ∈ G`` (``g ↦ g∘g'`` is a
    bijection of the group). So ``h(g'·x)`` pools the very same tensors as ``h(x)``, only in
    another order, and everything computed from ``h`` (the rest of the network) is invariant.
    Nothing is asked of ``L``: it need not commute with the action (a strided, padded
    convolution does not commute with a rotation, and no pooling *of one feature map over
    transformed copies of it* is used). The pooled feature map is kept whole, in the frame
    of the input, and handed to the body as is. Mean pooling sums the same terms in another
    order, so it is invariant up to float rounding (~1e-7 relative in float32); max pooling
    is bitwise invariant.

    * ``nn.Linear``: ``[W P_g]_g`` stacked as one ``(in, |G|·width)`` matrix whose columns are
      gathered from ``W`` (a permutation of the input is one of ``W``'s columns), so ``x`` is
      multiplied once and its orbit is never built.
    * ``nn.Conv2d``: the convolution of the ``|G|·B`` orbit images (``group.orbit``).

    The wrapped layer's parameters become this module's ``weight`` and ``bias``, so a WT
    model's ``state_dict`` has the keys of its plain twin (``first.weight``, ``first.bias``)
    and a weight-tied model holds no buffers (:class:`~ginv.models.Ensemble` needs none).

    Argument order, the same for every wrapper in ginv: the wrapped module first, then the
    group (``WeightTied(layer, group)``, ``OrbitAverage(model, group)``,
    ``Canonicaliser(model, group, scorer)``, ``weight_tied(model, group)``), as escnn's and
    equiadapt's wrappers take them.
    """

    def __init__(self, first: nn.Module, group: PermutationGroup, pool: Pool = "mean") -> None:
        super().__init__()
        if pool not in ("mean", "max"):
            raise GinvError(f"pool must be 'mean' or 'max', got {pool!r}")
        if not isinstance(first, nn.Linear | nn.Conv2d):
            raise GinvError(
                f"WeightTied wraps an nn.Linear or nn.Conv2d first layer, not {type(first).__name__}"
            )
        self.group = group
        self.pool = pool
        self.weight = first.weight
        self.bias = first.bias
        self.kind: Literal["linear", "conv"] = "linear" if isinstance(first, nn.Linear) else "conv"
        self.conv: dict[str, Any] = {}
        if isinstance(first, nn.Conv2d):
            if first.padding_mode != "zeros" or isinstance(first.padding, str):
                raise GinvError("WeightTied supports Conv2d with numeric zero padding only")
            self.conv = dict(stride=first.stride, padding=first.padding,
                             dilation=first.dilation, groups=first.groups)  # fmt: skip
        self.lifted = Lifted()  # the pre-pool features, for hooks; no parameters
        # Gather indices by image shape and device: plain tensors, not buffers.
        self._tied_index: dict[tuple[int, int, int, str], Tensor] = {}

    @property
    def out_features(self) -> int:
        """Units of the layer (its weight's first axis)."""
        return int(self.weight.shape[0])

    def tied_index(self, x: Tensor) -> Tensor:
        """``(C·H·W, |G|)`` indices with ``W[:, index[:, g]] x = W (g·x)`` for images like ``x``:
        as ``(g·x).flat[i] = x.flat[p_g[i]]``, column ``j`` of ``W P_g`` is ``W[:, p_g⁻¹[j]]``."""
        c, h, w = x.shape[-3:]
        key = (c, h, w, str(x.device))
        if key not in self._tied_index:
            perms = self.group.permutations(x)  # (|G|, H·W) on x's device
            inverse = perms[[self.group.inverse(g) for g in self.group.elements]]
            channels = torch.arange(c, device=x.device).view(c, 1, 1) * (h * w)
            index = (inverse.t().unsqueeze(0) + channels).flatten(0, 1)
            # Contiguous: a gather's output takes its index's layout, and forward views it as rows.
            self._tied_index[key] = index.contiguous()
        return self._tied_index[key]

    def _pool(self, h: Tensor) -> Tensor:
        """Pool ``(B, |G|, ...)`` over the group."""
        return h.mean(1) if self.pool == "mean" else h.amax(1)

    def forward(self, x: Tensor) -> Tensor:
        """``pool_g relu(L(g·x))`` of images ``(B, C, H, W)``."""
        n, width = len(self.group), self.out_features
        if self.kind == "linear":
            # Row gather of the (in, width) transpose straight into the (in, |G|·width) layout
            # that the matmul and its weight gradient use as they are: no permute copies.
            stacked = self.weight.t().contiguous()[self.tied_index(x)].view(-1, n * width)
            bias = self.bias.repeat(n) if self.bias is not None else None
            flat = x.flatten(1)
            h = flat @ stacked if bias is None else torch.addmm(bias, flat, stacked)
            return self._pool(self.lifted(torch.relu(h).view(-1, n, width)))
        b = x.shape[0]
        h = torch.relu(F.conv2d(self.group.orbit(x), self.weight, self.bias, **self.conv))
        return self._pool(self.lifted(h.view(n, b, *h.shape[1:]).transpose(0, 1)))


class Network(nn.Module, ABC):
    """The contract of a ginv architecture (see the module docstring).

    A subclass sets ``first`` (``nn.Linear`` on the flattened image, or ``nn.Conv2d``) and
    ``head`` (``nn.Linear``), defines ``body`` (from the first layer's activations to the
    penultimate features), ``default_width`` and ``default_depth``, and ``build``, which
    makes one from the image shape ``(C, H, W)``, ``width``, ``depth``, ``num_classes`` and
    ``first_width``.
    Registered in :data:`ginv.models.ARCHITECTURES`, it trains as ``--model NAME`` and its
    WT twin (:func:`weight_tied`) as ``--model wt-NAME``.
    """

    first: nn.Module
    head: nn.Linear
    default_width: ClassVar[int]
    default_depth: ClassVar[int]

    @classmethod
    @abstractmethod
    def build(
        cls, in_shape: tuple[int, ...], width: int, depth: int, num_classes: int,
        first_width: int = 0,
    ) -> Network:  # fmt: skip
        """One network for images of ``in_shape`` ``(C, H, W)``; ``first_width`` is the first
        layer's units or channels (0: the architecture's choice from ``width``)."""

    @property
    def weight_tied(self) -> bool:
        """Whether the first layer is tied over a group (the model is WT's)."""
        return isinstance(self.first, WeightTied)

    def embed(self, x: Tensor) -> Tensor:
        """The first layer and its ReLU, ``relu(L(x))``; ``pool_g relu(L(g·x))`` when WT."""
        if isinstance(self.first, WeightTied):
            return self.first(x)
        return torch.relu(self.first(x.flatten(1) if isinstance(self.first, nn.Linear) else x))

    @abstractmethod
    def body(self, h: Tensor) -> Tensor:
        """From :meth:`embed`'s output to the penultimate features."""

    def features(self, x: Tensor) -> Tensor:
        """The penultimate representation ``(B, width)`` (the input of the head)."""
        return self.body(self.embed(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def weight_tied(model: Network, group: PermutationGroup, pool: Pool = "mean") -> Network:
    """``model`` made exactly ``group``-invariant: its first layer wrapped in
    :class:`WeightTied` (in place; the weights and their initialisation are kept)."""
    if model.weight_tied:
        raise GinvError("the model is weight-tied already")
    model.first = WeightTied(model.first, group, pool)
    return model
