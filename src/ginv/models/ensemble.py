"""Several members of one architecture as one batched model (stacked weights, ``torch.func``).

Member ``m`` holds its own weights; a forward call maps inputs ``(M, B, ...)``, or a
batch ``(B, ...)`` shared by every member, to outputs ``(M, B, ...)``. The gradient of a
sum of per-member losses reaches each member's weights alone, and Adam is elementwise,
so Adam on the stacked tensors is Adam on each member.

Buffers (BatchNorm's running statistics) are stacked too, ``(M, *shape)``, and handed to
each member's call with its weights: under ``vmap`` a member normalises by the statistics
of its own batch and updates its own slice of the running statistics in place, exactly as
it would alone (``tests/test_factory_models.py`` trains both ways and compares).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from ginv.errors import GinvError
from ginv.models.base import Network


class _StackedLinear(nn.Linear):
    """``nn.Linear`` on a batch ``(B, in)`` computed as ``(W xᵀ + b)ᵀ``: the same function, the
    weight's gradient in the weight's own layout. Under ``vmap``, ``x Wᵀ``'s weight gradient
    is the batched product ``xᵀ g``, ``(in, out)`` per member, which autograd then copies into
    the ``(out, in)`` weight; ``W xᵀ``'s is ``gᵀ x``, ``(out, in)`` already. A batched MLP's
    training step is 12–15 % faster on a CPU for it; unbatched, PyTorch's own layout is the
    faster one, so only the ensemble's batched template uses this."""

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2:
            return super().forward(x)
        if self.bias is None:
            return torch.mm(self.weight, x.mT).mT
        return torch.addmm(self.bias.unsqueeze(-1), self.weight, x.mT).mT


class Ensemble(nn.Module):
    """``M`` copies of one architecture with stacked parameters ``(M, *shape)``."""

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise GinvError("an ensemble needs at least one member")
        params, buffers = stack_module_state(list(members))
        # Weightless templates (kept out of the module tree): the weights live in `stacked`.
        # [0] runs every member under vmap, [1] is the member as built, for one member's
        # calls (member()). In ginv's own architectures [0]'s linear layers are
        # _StackedLinear; another model's code may .view() a layer's output, which the
        # transposed layout can refuse, so it keeps PyTorch's.
        plain = copy.deepcopy(members[0]).to("meta")
        batched = copy.deepcopy(plain)
        if isinstance(batched, Network):
            for module in batched.modules():
                if type(module) is nn.Linear:
                    module.__class__ = _StackedLinear
        self._template = [batched, plain]
        self.names = list(params)
        self.stacked = nn.ParameterList(nn.Parameter(params[k].detach()) for k in self.names)
        # Buffers as this module's own (state_dict, .to(device)); a buffer-free model adds none,
        # so its checkpoints keep their keys.
        self.buffer_names = list(buffers)
        for j, name in enumerate(self.buffer_names):
            self.register_buffer(f"member_buffer_{j}", buffers[name].detach().clone())

    def train(self, mode: bool = True) -> Ensemble:
        """Set training mode here and on the template, which runs every member but is not a
        submodule: a member that behaves differently in training (a canonicaliser's relaxed
        argmax) would otherwise always run as the member it was when the ensemble was made."""
        super().train(mode)
        for template in self._template:
            template.train(mode)
        return self

    @property
    def size(self) -> int:
        """The number of members."""
        return self.stacked[0].shape[0]

    def weights(self) -> dict[str, Tensor]:
        """Stacked weights by the member's parameter names."""
        return dict(zip(self.names, self.stacked, strict=True))

    def stacked_buffers(self) -> dict[str, Tensor]:
        """Stacked buffers ``(M, *shape)`` by the member's buffer names (none for most models)."""
        return {
            name: getattr(self, f"member_buffer_{j}") for j, name in enumerate(self.buffer_names)
        }

    def forward(self, x: Tensor, shared_input: bool = False) -> Tensor:
        """Logits ``(M, B, K)`` of inputs ``(M, B, ...)``, or of one batch ``(B, ...)`` for all."""
        template = self._template[0]

        def one(params: dict[str, Tensor], buffers: dict[str, Tensor], inp: Tensor) -> Tensor:
            return functional_call(template, (params, buffers), (inp,))

        in_dims = (0, 0, None if shared_input else 0)
        return vmap(one, in_dims=in_dims)(self.weights(), self.stacked_buffers(), x)

    def member(self, i: int) -> Callable[[Tensor], Tensor]:
        """Member ``i`` as a function from image batches ``(B, ...)`` to logits ``(B, K)``,
        on the ensemble's own weights (no copy: gradients flow to them), e.g. for
        :func:`ginv.measure`: ``measure(ensemble.member(0), x, y, group, metrics="si")``."""
        if not 0 <= i < self.size:
            raise GinvError(f"member {i} of an ensemble of {self.size}")
        template = self._template[1]
        params = {k: v[i] for k, v in self.weights().items()}
        buffers = {k: v[i] for k, v in self.stacked_buffers().items()}
        return lambda x: functional_call(template, (params, buffers), (x,))

    def member_state(self, i: int) -> dict[str, Tensor]:
        """Member ``i``'s ``state_dict`` (weights and buffers)."""
        state = {**self.weights(), **self.stacked_buffers()}
        return {k: v[i].detach().clone() for k, v in state.items()}

    def load_member_state(self, i: int, state: dict[str, Tensor]) -> None:
        """Copy one member's weights and buffers (a plain model's state dict) into slot ``i``."""
        for k, v in {**self.weights(), **self.stacked_buffers()}.items():
            v.data[i].copy_(state[k])
