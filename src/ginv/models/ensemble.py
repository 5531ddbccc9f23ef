"""Several members of one architecture as one batched model (stacked weights, ``torch.func``).

Member ``m`` holds its own weights; a forward call maps inputs ``(M, B, ...)``, or a
batch ``(B, ...)`` shared by every member, to outputs ``(M, B, ...)``. The gradient of a
sum of per-member losses reaches each member's weights alone, and Adam is elementwise,
so Adam on the stacked tensors is Adam on each member.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from ginv.errors import GinvError


class Ensemble(nn.Module):
    """``M`` copies of one architecture with stacked parameters ``(M, *shape)``."""

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise GinvError("an ensemble needs at least one member")
        buffers = [name for name, _ in members[0].named_buffers()]
        if buffers:
            raise GinvError(
                f"{type(members[0]).__name__} holds buffers ({', '.join(buffers[:3])}), which "
                "batched members do not support: use a buffer-free layer (e.g. GroupNorm, not "
                "BatchNorm)"
            )
        params, _ = stack_module_state(list(members))
        # A weightless template (kept out of the module tree): the weights live in `stacked`.
        self._template = [copy.deepcopy(members[0]).to("meta")]
        self.names = list(params)
        self.stacked = nn.ParameterList(nn.Parameter(params[k].detach()) for k in self.names)

    def train(self, mode: bool = True) -> Ensemble:
        """Set training mode here and on the template, which runs every member but is not a
        submodule: a member that behaves differently in training (a canonicaliser's relaxed
        argmax) would otherwise always run as the member it was when the ensemble was made."""
        super().train(mode)
        self._template[0].train(mode)
        return self

    @property
    def size(self) -> int:
        return self.stacked[0].shape[0]

    def weights(self) -> dict[str, Tensor]:
        """Stacked weights by the member's parameter names."""
        return dict(zip(self.names, self.stacked, strict=True))

    def forward(self, x: Tensor, shared_input: bool = False) -> Tensor:
        """Logits ``(M, B, K)`` of inputs ``(M, B, ...)``, or of one batch ``(B, ...)`` for all."""
        template = self._template[0]

        def one(params: dict[str, Tensor], inp: Tensor) -> Tensor:
            return functional_call(template, params, (inp,))

        return vmap(one, in_dims=(0, None if shared_input else 0))(self.weights(), x)

    def member_state(self, i: int) -> dict[str, Tensor]:
        """Member ``i``'s ``state_dict``."""
        return {k: v[i].detach().clone() for k, v in self.weights().items()}

    def load_member_state(self, i: int, state: dict[str, Tensor]) -> None:
        for k, v in self.weights().items():
            v.data[i].copy_(state[k])
