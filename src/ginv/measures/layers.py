"""Layer-wise equivariance: how each named module's features move under the group, read by
forward hooks on the orbit.

Per layer ``h`` (a module's output), sample ``x`` and element ``g ≠ e``:

* equivariance error ``‖h(g·x) − ρ(g)·h(x)‖² / (‖h(x)‖² + eps)``,
* invariance error ``‖h(g·x) − h(x)‖² / (‖h(x)‖² + eps)`` (ρ trivial),

averaged. ρ is chosen per layer from the feature's shape (:func:`layer_action`): trivial on
vectors ``(D,)``; the group's spatial action on maps ``(C, H, W)`` when the group acts on
that grid (rotations and flips of square maps; a translation by the group's shift at the
map's scale, i.e. ``size/n`` of the map); the permutation of the group axis for lifted
features (a module with ``group_axis``, e.g. WT's ``first.lifted`` before its pool, whose
``(B, |G|, …)`` features move as ``h(g'·x)[:, g] = h(x)[:, g∘g']``); a user's
``actions={"layer": fn}`` with ``fn(g, h) = ρ(g)·h``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ginv.errors import GinvError
from ginv.groups import Group, GroupShapeError
from ginv.measures.data import batches
from ginv.measures.layer_report import LayerReport
from ginv.measures.memory import samples_per_pass
from ginv.measures.saliency import DEFAULT_BUDGET_MB, blur

EPS = 1e-12
Action = Callable[[int, Tensor], Tensor]
"""``ρ(g)·h`` of features ``h`` ``(N, ...)``, for element ``g``."""


def layer_action(
    group: Group, feature: Tensor, image_shape: Sequence[int], module: nn.Module | None = None
) -> tuple[str, Action | None, bool]:
    """The action ρ on a layer's features ``(N, ...)`` from their shape: ``(kind, ρ, exact)``.

    ``kind`` is ``group axis`` (``module.group_axis`` set), ``trivial`` (vectors),
    ``spatial`` (``(C, H, W)`` maps on which the group acts) or ``none`` (ρ is then None).
    ``exact`` is False where the spatial action is not the input's action seen at the map's
    stride (the stride does not divide it; see :func:`commutes_with_stride`) or the group
    is inexact.

    Example: ``layer_action(R4(), torch.zeros(2, 8, 6, 6), (1, 12, 12))[0] == "spatial"``.
    """
    axis = getattr(module, "group_axis", None)
    if isinstance(axis, int):
        n = len(group)
        if feature.dim() <= axis or feature.shape[axis] != n:
            return "none", None, False
        perms = {g: [group.compose(k, g) for k in group.elements] for g in group.elements}
        return (
            "group axis",
            (lambda g, h: h.index_select(axis, h.new_tensor(perms[g]).long())),
            True,
        )
    if feature.dim() == 2:
        return "trivial", (lambda g, h: h), True
    if feature.dim() == 4:
        h, w = feature.shape[-2:]
        try:
            for g in group.elements:
                group.act(g, feature.new_zeros(1, 1, h, w))
        except GroupShapeError:
            return "none", None, False
        exact = bool(getattr(group, "exact", True)) and commutes_with_stride(
            group, (int(image_shape[-2]), int(image_shape[-1])), (h, w)
        )
        return "spatial", group.act, exact
    return "none", None, False


def commutes_with_stride(group: Group, image: tuple[int, int], grid: tuple[int, int]) -> bool:
    """Whether the group's action on ``grid`` maps is its action on ``image``-sized inputs
    seen at the map's stride: for some offset, subsampling the input commutes with every
    element (a shift by 12 pixels at stride 4 is 3 map pixels; at stride 5 no action fits).

    Example: ``commutes_with_stride(T3(), (36, 36), (9, 9))`` is True.
    """
    (h, w), (hh, ww) = image, grid
    if h % hh or w % ww:
        return False
    sh, sw = h // hh, w // ww
    pixels = torch.arange(h * w, dtype=torch.float64).view(1, 1, h, w)
    for oh, ow in itertools.product(range(sh), range(sw)):
        sub = pixels[..., oh::sh, ow::sw]
        if tuple(sub.shape[-2:]) != (hh, ww):
            continue
        if all(
            torch.equal(group.act(g, pixels)[..., oh::sh, ow::sw], group.act(g, sub))
            for g in group.elements
        ):
            return True
    return False


def layer_equivariance(
    model: nn.Module,
    data: Tensor | np.ndarray | Iterable,
    group: Group,
    layers: Sequence[str] | str = "all",
    actions: Mapping[str, Action] | None = None,
    batch_size: int = 256,
    memory_budget_mb: int = DEFAULT_BUDGET_MB,
    eps: float = EPS,
) -> LayerReport:
    """Equivariance and invariance errors at the named modules of ``model`` (module docstring).

    Args:
        model: an ``nn.Module`` (put in eval mode for the call, then restored).
        data: images ``(N, C, H, W)`` (tensor or NumPy array), or an iterable of batches
            (``(images, labels)`` pairs or bare image batches), as ``ginv.measure`` takes them.
        group: the group; for an inexact one (``Rotations(8)``) the report adds the
            interpolation floor beside the values.
        layers: ``"all"`` (every module ``forward`` calls that returns a tensor) or names
            from ``model.named_modules()``; a module called k > 1 times per forward is
            measured at every call, as ``name#1`` … ``name#k``.
        actions: ``{"layer": fn}``, ``fn(g, h) = ρ(g)·h`` on features ``(N, ...)``, in place
            of the action chosen from the shape (:func:`layer_action`).
        batch_size: samples per batch cut from tensors; the orbit of each goes through in
            passes that keep the hooked features within ``memory_budget_mb`` MiB.
        eps: added to ``‖h(x)‖²`` in the normalisation.

    Returns:
        A :class:`~ginv.measures.layer_report.LayerReport`.

    Example::

        report = layer_equivariance(cnn, x, R4())
        print(report.table()); report["conv1"]["equivariance"]
    """
    if not isinstance(model, nn.Module):
        raise GinvError(f"layer_equivariance needs an nn.Module, got {type(model).__name__}")
    modules = dict(model.named_modules())
    names = _layer_names(layers, modules)
    actions = dict(actions or {})
    for name in actions:
        if name not in modules and name.split("#")[0] not in modules:
            raise GinvError(f"actions: no layer named {name!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise GinvError(f"batch_size must be a positive integer, got {batch_size!r}")
    stream, _ = batches(data, None, batch_size, need_labels=False)
    seen: dict[str, list[object]] = {}

    def hook(name: str) -> Callable[[nn.Module, object, object], None]:
        def record(module: nn.Module, inputs: object, output: object) -> None:
            seen.setdefault(name, []).append(
                output.detach() if isinstance(output, Tensor) else output
            )

        return record

    handles = [modules[name].register_forward_hook(hook(name)) for name in names]
    was_training = model.training
    model.eval()
    plan: dict[str, tuple[str, int, str, Action | None, bool]] | None = None
    sums: dict[str, Tensor] = {}
    n_samples = 0
    try:
        with torch.no_grad():
            for x, _ in stream:
                if not len(x):
                    continue
                if plan is None:
                    plan, chunk = _plan(model, x, group, names, modules, actions, seen,
                                        layers == "all", memory_budget_mb, batch_size)  # fmt: skip
                for start in range(0, len(x), chunk):
                    part = x[start : start + chunk]
                    seen.clear()
                    model(group.orbit(part))
                    for key, (name, call, _, rho, _) in plan.items():
                        calls = seen.get(name, [])
                        if len(calls) <= call or not isinstance(calls[call], Tensor):
                            raise GinvError(
                                f"layer {key!r} is not called the same way on every batch"
                            )
                        out = calls[call]
                        assert isinstance(out, Tensor)
                        errors = _errors(
                            out.reshape(len(group), len(part), *out.shape[1:]), rho, eps
                        )
                        if not group.exact:
                            errors = torch.cat([errors, _floor(part, out, group, eps)])
                        sums[key] = sums.get(key, 0) + errors
                n_samples += len(x)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    if plan is None:
        raise GinvError("no images to measure")
    count = max(len(group) - 1, 1) * n_samples
    report = LayerReport(group.name, n_samples, exact_group=bool(group.exact))
    for key, (_, _, kind, rho, exact) in plan.items():
        values = (sums[key] / count).tolist()
        row: dict[str, object] = {"action": kind, "exact_action": exact,
               "equivariance": values[0] if rho is not None else float("nan"),
               "invariance": values[1], "li": values[2]}  # fmt: skip
        if not group.exact:
            row["floor_equivariance"], row["floor_invariance"] = values[3], values[4]
        row["samples"] = float(n_samples)
        report.layers[key] = row
    return report


def _layer_names(layers: Sequence[str] | str, modules: dict[str, nn.Module]) -> list[str]:
    if layers == "all":
        return [name for name in modules if name]
    if isinstance(layers, str):
        layers = [n.strip() for n in layers.split(",") if n.strip()]
    if not layers:
        raise GinvError("name at least one layer (or layers='all')")
    unknown = [name for name in layers if name not in modules]
    if unknown:
        known = ", ".join(repr(n) for n in modules if n)
        raise GinvError(f"no layer named {unknown[0]!r} (the model has: {known})")
    return list(dict.fromkeys(layers))


def _plan(model, x, group, names, modules, actions, seen, optional, budget_mb, batch_size):
    """From one sample's forward: the calls to measure, their actions, and the samples per
    pass that keep the orbit's features within the budget."""
    seen.clear()
    model(x[:1])
    plan: dict[str, tuple[str, int, str, Action | None, bool]] = {}
    feature_bytes = x[0].numel() * x.element_size() * 3
    for name in names:
        calls = seen.get(name, [])
        tensors = [c for c in calls if isinstance(c, Tensor)]
        if optional and (not calls or len(tensors) < len(calls)):
            continue  # 'all': modules forward does not call, or that return no tensor
        if not calls:
            raise GinvError(f"layer {name!r} is not called in the model's forward")
        if len(tensors) < len(calls):
            raise GinvError(f"layer {name!r} returns {type(calls[0]).__name__}, not a tensor")
        for i, out in enumerate(tensors):
            key = name if len(tensors) == 1 else f"{name}#{i + 1}"
            assert isinstance(out, Tensor)
            feature_bytes += 3 * out.numel() * out.element_size()
            user = actions.get(key, actions.get(name))
            if user is not None:
                plan[key] = (name, i, "user", user, True)
            else:
                plan[key] = (name, i, *layer_action(group, out, tuple(x.shape[1:]), modules[name]))
    if not plan:
        raise GinvError("none of the layers returns a tensor in the model's forward")
    chunk = samples_per_pass(budget_mb, len(group) * feature_bytes, batch_size)
    return plan, chunk


def _errors(h: Tensor, rho: Action | None, eps: float) -> Tensor:
    """Sums over samples and ``g ≠ e`` of the normalised equivariance and invariance errors
    and of ``½‖h(g·x) − h(x)‖²``, from orbit features ``(|G|, N, ...)``."""
    h = h.double()
    ref = h[0]
    norm = ref.flatten(1).pow(2).sum(-1) + eps
    inv = (h[1:] - ref).flatten(2).pow(2).sum(-1)  # (|G|−1, N)
    if rho is None:
        eq = torch.zeros_like(inv)
    else:
        moved = torch.stack([rho(g, ref) for g in range(1, len(h))]) if len(h) > 1 else h[1:]
        eq = (h[1:] - moved).flatten(2).pow(2).sum(-1)
    return torch.stack([(eq / norm).sum(), (inv / norm).sum(), 0.5 * inv.sum()]).cpu()


def _floor(x: Tensor, out: Tensor, group: Group, eps: float) -> Tensor:
    """Equivariance and invariance sums of a reference equivariant in the continuum, for an
    inexact group: a Gaussian blur resampled to the layer's map, or the pixel sum for other
    features, on the orbit of ``x`` (``group.orbit`` interpolates)."""
    orbit = group.orbit(x.double())
    spatial = out.dim() == 4 and out.shape[-1] == out.shape[-2]
    if spatial:
        ref = F.adaptive_avg_pool2d(
            blur(orbit.sum(1, keepdim=True)), (int(out.shape[-2]), int(out.shape[-1]))
        )
        rho: Action = group.act
    else:
        ref = orbit.flatten(1).sum(-1, keepdim=True)
        rho = lambda g, h: h  # noqa: E731 - the trivial action
    return _errors(ref.view(len(group), len(x), *ref.shape[1:]), rho, eps)[:2]


def layer_invariance(
    model: nn.Module,
    images: Tensor | np.ndarray | Iterable,
    group: Group,
    layers: Sequence[str],
    normalised: bool = True,
    batch_size: int = 256,
    eps: float = EPS,
) -> dict[str, dict[str, float]]:
    """LI at the named submodules of ``model``: the invariance part of
    :func:`layer_equivariance`, in the older dict form (kept for compatibility).

    Per layer ``h`` (flattened per image), over the samples and ``g ≠ e``: ``li``, the mean
    of ``½‖h(x) − h(g·x)‖²``, and, if ``normalised``, ``li_normalised``, the mean of
    ``‖h(x) − h(g·x)‖² / (‖h(x)‖² + eps)``; ``samples``. Features are compared under the
    trivial action: an equivariant layer scores nonzero (use :func:`layer_equivariance`).

    Example: ``layer_invariance(model, x, R4(), ["first"])["first"]["li"]``.
    """
    if isinstance(layers, str) or not layers:
        raise GinvError("name at least one layer")
    report = layer_equivariance(model, images, group, list(layers), batch_size=batch_size, eps=eps)
    out: dict[str, dict[str, float]] = {}
    for name, row in report.layers.items():
        out[name] = {"li": row["li"], "samples": row["samples"]}
        if normalised:
            out[name]["li_normalised"] = row["invariance"]
    return out


def layer_table(values: Mapping[str, Mapping[str, float]]) -> str:
    """A plain-text table of :func:`layer_invariance`'s values: layer, LI, normalised LI.

    Example: ``print(layer_table(layer_invariance(model, x, R4(), ["first"])))``.
    """
    width = max(12, *(len(name) + 2 for name in values))
    lines = [f"{'layer':<{width}}{'LI':>12}{'LI/‖h‖²':>12}"]
    for name, row in values.items():
        norm = row.get("li_normalised", float("nan"))
        lines.append(f"{name:<{width}}{row['li']:>12.6g}{norm:>12.4g}")
    return "\n".join(lines)
