"""Per-layer invariance: LI of a model's intermediate features, read by forward hooks."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from ginv.errors import GinvError
from ginv.groups import Group

EPS = 1e-12


def layer_invariance(
    model: nn.Module,
    images: Tensor,
    group: Group,
    layers: Sequence[str],
    normalised: bool = True,
    batch_size: int = 256,
    eps: float = EPS,
) -> dict[str, dict[str, float]]:
    """LI at the named submodules of ``model`` (names as in ``model.named_modules()``).

    Per layer ``h`` (the module's output, flattened per image), over the samples and the
    elements ``g ≠ e``: ``li``, the mean of ``½‖h(x) − h(g·x)‖²``, and, if ``normalised``,
    ``li_normalised``, the mean of ``‖h(x) − h(g·x)‖² / (‖h(x)‖² + eps)``, comparable
    across layers of different widths and scales; ``samples``, the images used.

    Only **invariance** is measured: the features are compared as they are, i.e. under the
    trivial action of the group on every layer. A layer that is equivariant (its features
    move with ``g``, as a convolution's maps do) scores nonzero although it loses nothing.
    With an inexact group (``group.exact`` False) the values include interpolation error.
    """
    if not layers:
        raise GinvError("name at least one layer")
    modules = dict(model.named_modules())
    unknown = [name for name in layers if name not in modules]
    if unknown:
        known = ", ".join(repr(n) for n in modules if n)
        raise GinvError(f"no layer named {unknown[0]!r} (the model has: {known})")
    if images.dim() != 4 or len(images) == 0:
        raise GinvError(f"expected a non-empty batch (B, C, H, W), got {tuple(images.shape)}")
    order = len(group)
    seen: dict[str, Tensor] = {}

    def hook(name: str) -> Callable[[nn.Module, object, object], None]:
        def record(module: nn.Module, inputs: object, output: object) -> None:
            if not isinstance(output, Tensor):
                raise GinvError(f"layer {name!r} returns {type(output).__name__}, not a tensor")
            seen[name] = output.detach()

        return record

    handles = [modules[name].register_forward_hook(hook(name)) for name in layers]
    sums = {name: torch.zeros(2, dtype=torch.float64) for name in layers}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                x = images[start : start + batch_size]
                seen.clear()
                model(group.orbit(x))
                for name in layers:
                    if name not in seen:
                        raise GinvError(f"layer {name!r} is not called in the model's forward")
                    h = seen[name].reshape(order, len(x), -1).double()
                    sq = (h[1:] - h[:1]).pow(2).sum(-1)  # (|G|−1, B)
                    norm = h[0].pow(2).sum(-1)  # (B,)
                    sums[name] += torch.stack([0.5 * sq.sum(), (sq / (norm + eps)).sum()]).cpu()
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    count = max(order - 1, 1) * len(images)
    out: dict[str, dict[str, float]] = {}
    for name in layers:
        li, li_norm = (sums[name] / count).tolist()
        out[name] = {"li": li, "samples": float(len(images))}
        if normalised:
            out[name]["li_normalised"] = li_norm
    return out


def layer_table(values: dict[str, dict[str, float]]) -> str:
    """A plain-text table: layer, LI, normalised LI."""
    width = max(12, *(len(name) + 2 for name in values))
    lines = [f"{'layer':<{width}}{'LI':>12}{'LI/‖h‖²':>12}"]
    for name, row in values.items():
        norm = row.get("li_normalised", float("nan"))
        lines.append(f"{name:<{width}}{row['li']:>12.6g}{norm:>12.4g}")
    return "\n".join(lines)
