"""``measure``: every invariance measure of a classifier on a group's test orbit, as one report."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ginv.errors import GinvError
from ginv.groups import PermutationGroup
from ginv.measures.orbit import non_identity_mean, orbit_logits, orbit_values
from ginv.measures.saliency import SaliencyConfig, aligned_orbit_maps, saliency_similarity
from ginv.measures.sensitivity import jacobian_spectral_norm, weight_spectral_norms
from ginv.training.checkpoint import atomic_write_json

METRICS = ("accuracy", "di", "li", "si", "sensitivity")
Classifier = Callable[[Tensor], Tensor]


@dataclass
class MeasureReport:
    """Means over samples and non-identity elements, per-element means, spreads, timings."""

    group: str
    n_samples: int
    metrics: dict[str, float] = field(default_factory=dict)
    per_element: dict[str, list[float]] = field(default_factory=dict)
    std_over_samples: dict[str, float] = field(default_factory=dict)
    subsets: dict[str, int] = field(default_factory=dict)
    weight_sigma_max: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    per_sample: dict[str, Tensor] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("per_sample")
        return data

    def write_json(self, path: Path | str) -> None:
        """Write the report (without per-sample tensors) atomically."""
        atomic_write_json(self.to_dict(), Path(path))

    def table(self) -> str:
        """A plain-text table: measure, value, spread over samples, samples used, seconds."""
        names = {
            "accuracy": "accuracy (orbit)",
            "di": "DI  KL(u_x‖q_gx)",
            "li": "LI  ½‖f(x)−f(gx)‖²",
            "si": "SI  cos(m(x), g⁻¹m(gx))",
            "sigma_j": "σmax(J) per input",
        }
        lines = [f"{'measure':<26}{'mean':>12}{'std':>12}{'samples':>10}{'seconds':>10}"]
        for key, label in names.items():
            if key in self.metrics:
                std = self.std_over_samples.get(key, float("nan"))
                n = self.subsets.get(key, self.n_samples)
                timer = {"sigma_j": "sensitivity", "si": "si"}.get(key, "orbit")
                sec = self.seconds.get(timer, float("nan"))
                lines.append(
                    f"{label:<26}{self.metrics[key]:>12.6g}{std:>12.4g}{n:>10}{sec:>10.2f}"
                )
        return "\n".join(lines)


def _std(values: Tensor) -> float:
    """Standard deviation over samples (0 for a single sample)."""
    return float(values.std()) if values.numel() > 1 else 0.0


def measure(
    model: Classifier,
    images: Tensor,
    labels: Tensor,
    group: PermutationGroup,
    metrics: Sequence[str] = METRICS,
    saliency: SaliencyConfig = SaliencyConfig(),
    si_subset: int | None = None,
    sensitivity_subset: int | None = None,
    batch_size: int = 1024,
    sensitivity_method: str = "exact",
    progress: bool = False,
) -> MeasureReport:
    """Measure ``model`` on the ``group`` orbit of ``(images, labels)``.

    ``metrics`` ⊆ {accuracy, di, li, si, sensitivity}; SI and sensitivity may use the
    first ``si_subset`` / ``sensitivity_subset`` samples. Works for any function from image
    batches to logits; an ``nn.Module`` is put in eval mode for the call.
    """
    if isinstance(metrics, str):  # "si" is one measure, not the letters s and i
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    unknown = set(metrics) - set(METRICS)
    if unknown or not metrics:
        raise GinvError(
            f"unknown measures: {', '.join(sorted(unknown)) or 'none named'} "
            f"(known: {', '.join(METRICS)})"
        )
    for what, n in (("si_subset", si_subset), ("sensitivity_subset", sensitivity_subset),
                    ("batch_size", batch_size)):  # fmt: skip
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise GinvError(f"{what} must be a whole number ≥ 1 (None: all samples), got {n!r}")
    if sensitivity_method not in ("exact", "power"):
        raise GinvError(
            f"sensitivity method must be 'exact' or 'power', got {sensitivity_method!r}"
        )
    saliency.validate()
    report = MeasureReport(group.name, len(images), settings={"saliency": asdict(saliency)})
    was_training = isinstance(model, nn.Module) and model.training
    if isinstance(model, nn.Module):
        model.eval()
    bar = tqdm(disable=True)
    try:
        # after eval(): a probe in training mode would move batch-norm statistics
        _check_inputs(model, images, labels, group)
        n_si = min(si_subset or len(images), len(images))
        n_sens = min(sensitivity_subset or len(images), len(images))
        orbit_wanted = bool({"accuracy", "di", "li"} & set(metrics))
        work = (len(images) if orbit_wanted else 0) + (n_si if "si" in metrics else 0)
        work += n_sens if "sensitivity" in metrics else 0
        bar = tqdm(
            total=work,
            disable=not progress,
            unit="sample",
            desc=f"measure on {group.name}",
            leave=False,
        )
        if orbit_wanted:
            _orbit_measures(model, images, labels, group, batch_size, report, bar, metrics)
        if "si" in metrics:
            _si(model, images[:n_si], labels[:n_si], group, saliency, batch_size, report, bar)
        if "sensitivity" in metrics:
            _sensitivity(model, images[:n_sens], batch_size, sensitivity_method, report, bar)
    finally:
        bar.close()
        if isinstance(model, nn.Module):
            model.train(was_training)
    return report


def _check_inputs(
    model: Classifier, images: Tensor, labels: Tensor, group: PermutationGroup
) -> None:
    """Refuse, in one line, inputs whose measures would be a traceback or silently wrong:
    non-tensors, non-finite pixels, labels that are not class indices of the model's logits."""
    if not isinstance(images, Tensor) or not isinstance(labels, Tensor):
        raise GinvError("images and labels must be torch tensors")
    if images.dim() != 4 or labels.dim() != 1 or len(images) != len(labels) or len(images) == 0:
        raise GinvError(
            f"need images (N, C, H, W) and labels (N,) with N ≥ 1, got {tuple(images.shape)} "
            f"and {tuple(labels.shape)}"
        )
    if not images.is_floating_point() or not torch.isfinite(images).all():
        raise GinvError("images must be floating point and finite (no NaN or inf pixels)")
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise GinvError(f"labels must be integer class indices, got {labels.dtype}")
    orbit = group.orbit(images[:1])  # images the group cannot act on: its own error
    try:
        with torch.no_grad():
            out = model(orbit)
    except RuntimeError as e:  # e.g. images of another size than the model's input
        raise GinvError(f"the model fails on these images: {str(e).splitlines()[0]}") from None
    if not isinstance(out, Tensor) or out.dim() != 2 or out.shape[0] != len(orbit):
        shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise GinvError(
            f"the model must return logits (B, K) for B images, got {shape} for {len(orbit)}"
        )
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= out.shape[1]:
        raise GinvError(f"labels must lie in [0, {out.shape[1] - 1}], got {low} to {high}")


def _orbit_measures(model, images, labels, group, batch_size, report, bar, metrics) -> None:
    start = time.perf_counter()
    parts = []
    for i in range(0, len(images), batch_size):
        logits = orbit_logits(model, images[i : i + batch_size], group)
        parts.append(orbit_values(logits, labels[i : i + batch_size]))
        bar.update(len(logits[0]))
    correct = torch.cat([p.correct for p in parts], 1)
    values = {"di": torch.cat([p.di for p in parts], 1), "li": torch.cat([p.li for p in parts], 1)}
    if "accuracy" in metrics:
        report.metrics["accuracy"] = float(correct.mean())
        report.per_element["accuracy"] = correct.mean(1).tolist()
        report.per_sample["accuracy"] = correct.mean(0)
        report.std_over_samples["accuracy"] = _std(correct.mean(0))
    for key, v in values.items():
        if key in metrics:
            report.metrics[key] = non_identity_mean(v)
            report.per_element[key] = v.mean(1).tolist()
            report.per_sample[key] = v[1:].mean(0)
            report.std_over_samples[key] = _std(v[1:].mean(0))
    report.seconds["orbit"] = time.perf_counter() - start


def _si(model, images, labels, group, config, batch_size, report, bar) -> None:
    start = time.perf_counter()
    sims = []
    for i in range(0, len(images), batch_size):
        maps = aligned_orbit_maps(
            model, images[i : i + batch_size], labels[i : i + batch_size], group, config
        )
        sims.append(saliency_similarity(maps))
        bar.update(len(maps[0]))
    sim = torch.cat(sims, 1)
    report.metrics["si"] = non_identity_mean(sim)
    report.per_element["si"] = sim.mean(1).tolist()
    report.per_sample["si"] = sim[1:].mean(0)
    report.std_over_samples["si"] = _std(sim[1:].mean(0))
    report.subsets["si"] = len(images)
    report.seconds["si"] = time.perf_counter() - start


def _sensitivity(model, images, batch_size, method, report, bar) -> None:
    start = time.perf_counter()
    sigmas = []
    for i in range(0, len(images), batch_size):
        sigmas.append(jacobian_spectral_norm(model, images[i : i + batch_size], method))
        bar.update(len(sigmas[-1]))
    sigma = torch.cat(sigmas).double()
    report.metrics["sigma_j"] = float(sigma.mean())
    report.std_over_samples["sigma_j"] = _std(sigma)
    report.per_sample["sigma_j"] = sigma
    report.subsets["sigma_j"] = len(images)
    if isinstance(model, nn.Module):
        report.weight_sigma_max = weight_spectral_norms(model)
    report.seconds["sensitivity"] = time.perf_counter() - start
