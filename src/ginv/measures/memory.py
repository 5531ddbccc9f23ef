"""Working memory of a classifier's passes, probed on one image, and chunk sizes that fit a budget.

The probe runs the model with gradients to its input on 1 and then 2 copies of an image and
counts the distinct storages that autograd saves for backward: their difference is what one
more image adds (parameters and other batch-independent tensors cancel). It works on any
device and for any function of tensors, an ``nn.Module`` or not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ginv.errors import GinvError

Classifier = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class Footprint:
    """Bytes per image: the input, and the activations a forward pass keeps for backward
    (at least the input's size); ``classes`` is the number K of logits."""

    input_bytes: int
    activation_bytes: int
    classes: int

    def forward(self) -> int:
        """A forward pass without gradients: the input, a copy of it, its activations."""
        return 2 * self.input_bytes + self.activation_bytes

    def backward(self) -> int:
        """A forward and backward pass to the input: input and its gradient, the activations,
        their gradients and the backward's temporaries (measured ≈ one more set on CPU)."""
        return 2 * self.input_bytes + 3 * self.activation_bytes


def check_logits(logits: object, n: int) -> Tensor:
    """Refuse model outputs that are not one row of logits per image, ``(n, K)``."""
    if not isinstance(logits, Tensor):
        raise GinvError(
            f"the model returned a {type(logits).__name__}, not a tensor of logits (N, K); "
            "wrap it to return the logits only, e.g. lambda x: model(x)[0]"
        )
    if logits.dim() != 2 or len(logits) != n:
        raise GinvError(
            f"the model returned shape {tuple(logits.shape)} for {n} image(s); "
            f"expected logits of shape ({n}, K)"
        )
    return logits


def probe(model: Classifier, images: Tensor) -> Footprint:
    """The :class:`Footprint` of ``model`` on images like ``images[0]``; also checks that
    the model returns logits ``(N, K)``."""
    saved = []
    for n in (1, 2):
        x = images[:1].expand(n, *images.shape[1:]).clone().requires_grad_(True)
        saved.append(_saved_bytes(model, x))
    input_bytes = images[0].numel() * images.element_size()
    return Footprint(input_bytes, max(saved[1][0] - saved[0][0], input_bytes), saved[0][1])


def _saved_bytes(model: Classifier, x: Tensor) -> tuple[int, int]:
    storages: dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        try:
            out = model(x)
        except RuntimeError as e:  # e.g. images of another size than the model's input
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise GinvError(f"the model fails on these images: {first}") from None
        logits = check_logits(out, len(x))
    return sum(storages.values()) + logits.numel() * logits.element_size(), logits.shape[1]


def samples_per_pass(budget_mb: int, sample_bytes: int, cap: int) -> int:
    """As many samples as fit ``budget_mb`` MiB at ``sample_bytes`` each; at least 1, at most
    ``cap``."""
    return max(1, min(cap, (budget_mb << 20) // max(1, sample_bytes)))
