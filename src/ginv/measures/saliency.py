"""Saliency maps by integrated gradients, and saliency invariance similarity SI.

``m(x)``: absolute integrated gradients of the target logit from a constant baseline,
then every value below ``threshold × max`` of that map set to zero, then a Gaussian
filter. SI is the cosine similarity of ``m(x)`` and ``g⁻¹ m(g·x)``, realigned *before*
the filter (zero padding does not commute with cyclic shifts).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ginv.errors import GinvError
from ginv.groups import Group
from ginv.measures.memory import Footprint, probe, samples_per_pass

DEFAULT_BUDGET_MB = 256
"""Working memory, in MiB, that a measure may use beyond its inputs and outputs."""

Rule = Literal[
    "gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid"
]
RULES: tuple[str, ...] = Rule.__args__  # type: ignore[attr-defined]
Classifier = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class SaliencyConfig:
    """Settings of the saliency map; defaults are the study's."""

    steps: int = 50
    rule: str = "gausslegendre"
    baseline: float = 0.0  # value of the constant baseline image in the model's input space
    target: str = "label"  # 'label' or 'predicted' (each image's own prediction)
    threshold: float = 0.9
    blur_size: int = 3
    blur_sigma: float = 1.0

    def validate(self) -> SaliencyConfig:
        """Refuse settings outside their ranges (one GinvError); return the config.

        Example: ``SaliencyConfig(steps=0).validate()`` raises."""
        if self.rule not in RULES:
            raise GinvError(f"unknown quadrature rule {self.rule!r} (known: {', '.join(RULES)})")
        if self.steps < (2 if self.rule == "riemann_trapezoid" else 1):
            raise GinvError(f"too few integration steps: {self.steps}")
        if self.target not in ("label", "predicted"):
            raise GinvError(f"saliency target must be 'label' or 'predicted', got {self.target!r}")
        if not 0 <= self.threshold <= 1:
            raise GinvError(f"threshold must lie in [0, 1], got {self.threshold}")
        if self.blur_size < 1 or self.blur_size % 2 == 0 or self.blur_sigma <= 0:
            raise GinvError("the blur needs an odd size ≥ 1 and σ > 0")
        return self


HELP = {
    "steps": "integration steps of integrated gradients",
    "rule": "quadrature rule: " + ", ".join(RULES),
    "baseline": "value of the constant baseline image",
    "target": "the logit explained: label or predicted",
    "threshold": "values below this fraction of the map's maximum are zeroed",
    "blur_size": "side of the Gaussian filter (odd; 1: none)",
    "blur_sigma": "σ of the Gaussian filter",
}
"""One line of help per :class:`SaliencyConfig` field (``ginv measure``'s flags)."""


def quadrature(steps: int, rule: str = "gausslegendre") -> tuple[Tensor, Tensor]:
    """Nodes ``α_k`` in [0, 1] and weights ``w_k`` with ``∫₀¹ φ ≈ Σ w_k φ(α_k)``."""
    if rule == "gausslegendre":
        nodes, gl_weights = np.polynomial.legendre.leggauss(steps)
        return torch.from_numpy((nodes + 1) / 2), torch.from_numpy(gl_weights / 2)
    k = torch.arange(steps, dtype=torch.float64)
    uniform = torch.full((steps,), 1.0 / steps, dtype=torch.float64)
    if rule == "riemann_left":
        return k / steps, uniform
    if rule == "riemann_right":
        return (k + 1) / steps, uniform
    if rule == "riemann_middle":
        return (k + 0.5) / steps, uniform
    if rule == "riemann_trapezoid":
        weights = torch.full((steps,), 1.0 / (steps - 1), dtype=torch.float64)
        weights[[0, -1]] /= 2
        return k / (steps - 1), weights
    raise GinvError(f"unknown quadrature rule {rule!r} (known: {', '.join(RULES)})")


def constant_baseline(value: float, like: Tensor) -> Tensor:
    """The constant image ``value`` shaped like one input ``(C, H, W)``."""
    return torch.full_like(like[0], value)


def check_baseline(baseline: Tensor, group: Group) -> None:
    """Refuse a baseline that some group element moves: SI would then measure the baseline."""
    moved = [
        g for g in group.elements if not torch.equal(group.act(g, baseline[None]), baseline[None])
    ]
    if moved:
        raise GinvError(
            f"the saliency baseline is moved by {group.name} element {moved[0]}; "
            "use a baseline every group element fixes (a constant image)"
        )


def integrated_gradients(
    model: Classifier,
    images: Tensor,
    targets: Tensor,
    baseline: Tensor,
    steps: int = 50,
    rule: str = "gausslegendre",
    memory_budget_mb: int = DEFAULT_BUDGET_MB,
) -> Tensor:
    """``(x − b) ⊙ Σ_k w_k ∇_x f_t(b + α_k (x − b))``: signed attributions, shape of ``images``.
    Path points, their gradients and the model's activations (probed) fit ``memory_budget_mb``."""
    points = (memory_budget_mb << 20) // probe(model, images).backward()
    return _integrated_gradients(model, images, targets, baseline, steps, rule, points)


def _integrated_gradients(
    model: Classifier,
    images: Tensor,
    targets: Tensor,
    baseline: Tensor,
    steps: int,
    rule: str,
    points_per_pass: int,
) -> Tensor:
    """Batched over samples × steps, ``points_per_pass`` path points at a time: whole samples
    when they fit, else one sample's steps in groups."""
    alphas, weights = quadrature(steps, rule)
    alphas = alphas.to(images.device, images.dtype).view(-1, 1, *[1] * (images.dim() - 1))
    weights = weights.to(images.device, images.dtype)
    chunk = max(1, points_per_pass // steps)
    step_group = steps if points_per_pass >= steps else max(1, points_per_pass)
    out = torch.empty_like(images)
    for start in range(0, len(images), chunk):
        x, t = images[start : start + chunk], targets[start : start + chunk]
        delta = x - baseline
        total = torch.zeros_like(x)
        for k in range(0, steps, step_group):
            path = torch.addcmul(baseline, alphas[k : k + step_group], delta).requires_grad_(True)
            with torch.enable_grad():
                logits = model(path.flatten(0, 1))
                chosen = logits.gather(1, t.repeat(len(path)).unsqueeze(1))
                if not bool(torch.isfinite(chosen).all()):
                    raise GinvError("non-finite target logits on the integration path")
                (grads,) = torch.autograd.grad(chosen.sum(), path)
            total += torch.tensordot(weights[k : k + step_group], grads, dims=1)
        out[start : start + chunk] = delta * total
    return out


def gaussian_kernel(size: int = 3, sigma: float = 1.0) -> Tensor:
    """A normalised ``size×size`` Gaussian kernel."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    kernel = torch.outer(g, g)
    return kernel / kernel.sum()


def threshold_map(attributions: Tensor, fraction: float, inplace: bool = False) -> Tensor:
    """``|A|`` with every value below ``fraction × max`` of its own map (per image) set to 0."""
    m = attributions.abs_() if inplace else attributions.abs()
    peak = m.flatten(1).amax(1).view(-1, *[1] * (m.dim() - 1))
    return m.masked_fill_(m < fraction * peak, 0.0)


def blur(maps: Tensor, size: int = 3, sigma: float = 1.0) -> Tensor:
    """Gaussian filter per channel with zero padding, same size. A sum of shifted copies
    rather than ``conv2d``, whose im2col buffer would be ``size²`` times the maps."""
    if size == 1:
        return maps
    kernel = gaussian_kernel(size, sigma).tolist()
    h, w = maps.shape[-2:]
    padded = F.pad(maps, [size // 2] * 4)
    out = torch.zeros_like(maps)
    for i in range(size):
        for j in range(size):
            out.add_(padded[..., i : i + h, j : j + w], alpha=kernel[i][j])
    return out


def saliency_targets(model: Classifier, images: Tensor, labels: Tensor, target: str) -> Tensor:
    """The logit each map explains: the label, or (``'predicted'``) the model's prediction."""
    if target == "label":
        return labels
    with torch.no_grad():
        return model(images).argmax(-1)


def saliency_map(
    model: Classifier,
    images: Tensor,
    labels: Tensor,
    config: SaliencyConfig = SaliencyConfig(),
    memory_budget_mb: int = DEFAULT_BUDGET_MB,
) -> Tensor:
    """``m(x)``: thresholded absolute integrated gradients, then the Gaussian filter."""
    config.validate()
    baseline = constant_baseline(config.baseline, images)
    targets = saliency_targets(model, images, labels, config.target)
    points = (memory_budget_mb << 20) // probe(model, images).backward()
    attributions = _integrated_gradients(
        model, images, targets, baseline, config.steps, config.rule, points
    )
    return blur(threshold_map(attributions, config.threshold), config.blur_size, config.blur_sigma)


def aligned_orbit_maps(
    model: Classifier,
    images: Tensor,
    labels: Tensor,
    group: Group,
    config: SaliencyConfig = SaliencyConfig(),
    baseline: Tensor | None = None,
    memory_budget_mb: int = DEFAULT_BUDGET_MB,
) -> Tensor:
    """``g⁻¹ m(g·x)`` for every element and image, ``(|G|, N, C, H, W)``: thresholded maps
    realigned to ``x``'s orientation, then filtered. Path points, gradients, the model's
    activations and intermediate maps fit ``memory_budget_mb`` besides the output."""
    config.validate()
    base = baseline if baseline is not None else constant_baseline(config.baseline, images)
    check_baseline(base, group)
    footprint = probe(model, images)
    out = images.new_empty(len(group), *images.shape)
    chunk = samples_per_pass(
        memory_budget_mb, si_sample_bytes(footprint, group, config), len(images)
    )
    for start in range(0, len(images), chunk):
        out[:, start : start + chunk] = _aligned_orbit_maps(
            model, images[start : start + chunk], labels[start : start + chunk], group,
            config, base, footprint, memory_budget_mb,
        )  # fmt: skip
    return out


MAP_COPIES = 5
"""Image-sized buffers per orbit image besides the path: the orbit, its maps, the blur's
padded copy and output, the aligned map."""


def si_sample_bytes(footprint: Footprint, group: Group, config: SaliencyConfig) -> int:
    """Working memory of one sample's aligned orbit maps in one pass: every path point of every
    orbit image, with its forward and backward pass, and the maps."""
    per_image = config.steps * footprint.backward() + MAP_COPIES * footprint.input_bytes
    return len(group) * per_image


def _aligned_orbit_maps(
    model: Classifier,
    images: Tensor,
    labels: Tensor,
    group: Group,
    config: SaliencyConfig,
    baseline: Tensor,
    footprint: Footprint,
    memory_budget_mb: int,
) -> Tensor:
    """One pass: the orbit's maps, with integrated gradients in as many path points at a
    time as the budget leaves once the maps are counted."""
    order = len(group)
    maps_bytes = MAP_COPIES * order * len(images) * footprint.input_bytes
    points = max(1, ((memory_budget_mb << 20) - maps_bytes) // footprint.backward())
    orbit = group.orbit(images)
    targets = saliency_targets(model, orbit, labels.repeat(order), config.target)
    maps = _integrated_gradients(model, orbit, targets, baseline, config.steps, config.rule, points)
    del orbit
    maps = threshold_map(maps, config.threshold, inplace=True).view(order, *images.shape)
    for g in group.elements:
        maps[g] = group.act_inverse(g, maps[g])
    return blur(maps.flatten(0, 1), config.blur_size, config.blur_sigma).view_as(maps)


def saliency_similarity(maps: Tensor) -> Tensor:
    """Cosine similarity of ``m(x)`` with each realigned ``g⁻¹ m(g·x)``: ``(|G|, N)`` from
    aligned orbit maps ``(|G|, N, ...)`` (row 0 is 1 by construction; all-zero maps give 0)."""
    flat = maps.flatten(2).double()
    return F.cosine_similarity(flat[:1], flat, dim=-1, eps=1e-30)
