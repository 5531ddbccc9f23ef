"""``measure``: every invariance measure of a classifier on a group's test orbit, as one report.

The data stream through in batches (a tensor is cut into ``batch_size`` samples, an iterable
such as a ``DataLoader`` gives its own), each batch in passes sized to a working-memory
budget from a probe of the model, and every pass's summary is merged into the report.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ginv.errors import GinvError
from ginv.groups import Group
from ginv.io import atomic_write_json
from ginv.measures.memory import Footprint, probe, samples_per_pass
from ginv.measures.orbit import orbit_logits, orbit_values
from ginv.measures.saliency import (
    DEFAULT_BUDGET_MB,
    SaliencyConfig,
    _aligned_orbit_maps,
    check_baseline,
    constant_baseline,
    saliency_similarity,
    si_sample_bytes,
)
from ginv.measures.sensitivity import (
    jacobian_spectral_norm,
    sensitivity_sample_bytes,
    weight_spectral_norms,
)
from ginv.progress import tqdm

METRICS = ("accuracy", "di", "li", "si", "sensitivity")
LEGACY_NAMES = {"sigma_j": "sensitivity"}
"""Measure names of older reports, read as today's."""
ORBIT_METRICS = ("accuracy", "di", "li")
Classifier = Callable[[Tensor], Tensor]
Batches = Iterable[tuple[Tensor, Tensor]]


@dataclass
class MeasureReport:
    """Per measure: the mean over samples (and the non-identity elements, but for accuracy,
    which is over the whole orbit), its spread over samples, the samples used; per element
    (named in ``elements``, identity first) the mean and spread over samples; timings."""

    group: str
    n_samples: int
    elements: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    per_element: dict[str, list[float]] = field(default_factory=dict)
    per_element_std: dict[str, list[float]] = field(default_factory=dict)
    std_over_samples: dict[str, float] = field(default_factory=dict)
    subsets: dict[str, int] = field(default_factory=dict)
    """Samples each measure used."""
    weight_sigma_max: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    per_sample: dict[str, Tensor] = field(default_factory=dict, repr=False)
    layers: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per-layer invariance (:func:`ginv.measures.layer_invariance`) where measured."""
    exact_group: bool = True
    """False when the group acts by interpolation (e.g. ``Rotations(8)``): then ``g·x`` is
    only approximately a group action, and nonzero LI/DI/SI partly measure interpolation."""

    def to_dict(self) -> dict[str, Any]:
        """The report without per-sample tensors; non-finite numbers become ``None``."""
        data = asdict(self)
        data.pop("per_sample")
        return _finite_or_none(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MeasureReport:
        """A report from :meth:`to_dict` or its JSON, older ones included (``sigma_j`` is read
        as ``sensitivity``); keys it does not know are ignored."""
        known = {f.name for f in fields(cls)} - {"per_sample"}
        kwargs = {k: v for k, v in data.items() if k in known}
        for key in ("metrics", "per_element", "per_element_std", "std_over_samples", "subsets"):
            kwargs[key] = {LEGACY_NAMES.get(k, k): v for k, v in kwargs.get(key, {}).items()}
        report = cls(**kwargs)
        for key in report.metrics:
            report.subsets.setdefault(key, report.n_samples)
        return report

    def write_json(self, path: Path | str) -> None:
        """Write the report (without per-sample tensors) atomically; ``null`` for non-finite
        numbers, never a bare ``NaN``."""
        atomic_write_json(self.to_dict(), Path(path))

    @staticmethod
    def merge(a: MeasureReport, b: MeasureReport) -> MeasureReport:
        """The report of ``a``'s samples and ``b``'s together: means weighted by samples,
        spreads pooled (Chan et al.); a measure missing from one counts as 0 samples there."""
        if (a.group, a.elements, a.settings) != (b.group, b.elements, b.settings):
            raise GinvError(
                f"cannot merge reports of different groups or settings ({a.group}, {b.group})"
            )
        out = MeasureReport(a.group, a.n_samples + b.n_samples, list(a.elements))
        out.settings = a.settings
        out.exact_group = a.exact_group and b.exact_group
        out.layers = _merge_layers(a.layers, b.layers)
        out.weight_sigma_max = a.weight_sigma_max or b.weight_sigma_max
        out.seconds = {
            k: a.seconds.get(k, 0.0) + b.seconds.get(k, 0.0) for k in a.seconds | b.seconds
        }
        for key in [*a.metrics, *(k for k in b.metrics if k not in a.metrics)]:
            if key not in a.metrics or key not in b.metrics:
                one = a if key in a.metrics else b
                _copy_measure(one, out, key)
                continue
            na, nb = a.subsets[key], b.subsets[key]
            mean, std = _pooled(
                na,
                a.metrics[key],
                a.std_over_samples[key],
                nb,
                b.metrics[key],
                b.std_over_samples[key],
            )
            out.metrics[key], out.std_over_samples[key] = float(mean), float(std)
            out.subsets[key] = na + nb
            if key in a.per_element_std and key in b.per_element_std:
                mean, std = _pooled(
                    na,
                    a.per_element[key],
                    a.per_element_std[key],
                    nb,
                    b.per_element[key],
                    b.per_element_std[key],
                )
                out.per_element[key], out.per_element_std[key] = mean.tolist(), std.tolist()
            if key in a.per_sample and key in b.per_sample:
                out.per_sample[key] = torch.cat([a.per_sample[key], b.per_sample[key]])
        return out

    def rows(self) -> list[dict[str, Any]]:
        """The tidy table: one row per measure and element (``mean``: the measure's mean),
        with columns measure, element, value, std, samples."""
        rows = []
        for key, value in self.metrics.items():
            n = self.subsets.get(key, self.n_samples)
            rows.append(
                dict(
                    measure=key,
                    element="mean",
                    value=value,
                    std=self.std_over_samples.get(key),
                    samples=n,
                )
            )
            for name, v, s in zip(
                self.elements,
                self.per_element.get(key, []),
                self.per_element_std.get(key, []),
                strict=False,
            ):
                rows.append(dict(measure=key, element=name, value=v, std=s, samples=n))
        return _finite_or_none(rows)

    def to_dataframe(self) -> Any:
        """:meth:`rows` as a ``pandas.DataFrame`` (pandas is optional)."""
        try:
            import pandas
        except ImportError:
            raise GinvError(
                "to_dataframe needs pandas (pip install pandas); write_csv writes the same table"
            ) from None
        return pandas.DataFrame(self.rows(), columns=list(CSV_COLUMNS))

    def write_csv(self, path: Path | str) -> None:
        """Write :meth:`rows` as CSV (UTF-8); empty cells for missing or non-finite values."""
        text = io.StringIO()
        writer = csv.DictWriter(text, CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows())
        Path(path).write_text(text.getvalue(), encoding="utf-8")

    def table(self) -> str:
        """A plain-text table: measure, value, spread over samples, samples used, seconds."""
        names = {
            "accuracy": "accuracy (orbit)",
            "di": "DI  KL(u_x‖q_gx)",
            "li": "LI  ½‖f(x)−f(gx)‖²",
            "si": "SI  cos(m(x), g⁻¹m(gx))",
            "sensitivity": "σmax(J) per input",
        }
        lines = [f"{'measure':<26}{'mean':>12}{'std':>12}{'samples':>10}{'seconds':>10}"]
        for key, label in names.items():
            if key in self.metrics:
                std = self.std_over_samples.get(key, float("nan"))
                n = self.subsets.get(key, self.n_samples)
                timer = key if key in ("si", "sensitivity") else "orbit"
                sec = self.seconds.get(timer, float("nan"))
                lines.append(
                    f"{label:<26}{self.metrics[key]:>12.6g}{std:>12.4g}{n:>10}{sec:>10.2f}"
                )
        if not self.exact_group:
            lines.append(
                f"note: {self.group} is an inexact group (interpolated action); "
                "measures include interpolation error"
            )
        return "\n".join(lines)


def _merge_layers(
    a: dict[str, dict[str, float]], b: dict[str, dict[str, float]]
) -> dict[str, dict[str, float]]:
    """Per-layer values of two reports, as means weighted by their samples."""
    out = {}
    for name in [*a, *(n for n in b if n not in a)]:
        if name not in a or name not in b:
            out[name] = dict(a.get(name) or b[name])
            continue
        na, nb = a[name]["samples"], b[name]["samples"]
        row = {k: (na * a[name][k] + nb * b[name][k]) / (na + nb) for k in a[name] if k in b[name]}
        out[name] = {**row, "samples": na + nb}
    return out


CSV_COLUMNS = ("measure", "element", "value", "std", "samples")


def _finite_or_none(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite_or_none(v) for v in obj]
    return obj


def _pooled(na: int, ma: Any, sa: Any, nb: int, mb: Any, sb: Any) -> tuple[Tensor, Tensor]:
    """Mean and sample standard deviation of two groups of ``na`` and ``nb`` samples."""
    ma, sa, mb, sb = (torch.as_tensor(v, dtype=torch.float64) for v in (ma, sa, mb, sb))
    n = na + nb
    delta = mb - ma
    m2 = sa**2 * (na - 1) + sb**2 * (nb - 1) + delta**2 * (na * nb / n)
    return ma + delta * (nb / n), (m2 / (n - 1)).sqrt() if n > 1 else torch.zeros_like(m2)


def _copy_measure(src: MeasureReport, dst: MeasureReport, key: str) -> None:
    dst.metrics[key] = src.metrics[key]
    dst.std_over_samples[key] = src.std_over_samples[key]
    dst.subsets[key] = src.subsets[key]
    for part in ("per_element", "per_element_std", "per_sample"):
        if key in getattr(src, part):
            getattr(dst, part)[key] = getattr(src, part)[key]


def _summary(report: MeasureReport, key: str, values: Tensor) -> MeasureReport:
    """A report of one measure on one pass, from per element and sample values ``(|G|, n)``
    (or per sample ``(n,)``); refuses non-finite values."""
    values = values.detach().double().cpu()
    bad = int((~torch.isfinite(values)).sum())
    if bad:
        raise GinvError(
            f"{key}: {bad} non-finite value(s) (the model's logits or gradients overflow?); "
            "not averaging them into a report"
        )
    part = MeasureReport(report.group, 0, report.elements, settings=report.settings)
    part.exact_group = report.exact_group
    if values.dim() == 2:
        per_sample = values.mean(0) if key == "accuracy" else values[1:].mean(0)
        part.per_element[key] = values.mean(1).tolist()
        part.per_element_std[key] = _std(values, 1).tolist()
    else:
        per_sample = values
    part.metrics[key] = float(per_sample.mean())
    part.std_over_samples[key] = float(_std(per_sample, 0))
    part.subsets[key] = len(per_sample)
    part.per_sample[key] = per_sample
    return part


def _std(values: Tensor, dim: int) -> Tensor:
    """Sample standard deviation along ``dim`` (0 for a single sample)."""
    if values.shape[dim] > 1:
        return values.std(dim)
    return torch.zeros_like(values.select(dim, 0))


def measure(
    model: Classifier,
    images: Tensor | np.ndarray | Batches,
    labels: Tensor | np.ndarray | None,
    group: Group,
    metrics: Sequence[str] | str = METRICS,
    saliency: SaliencyConfig = SaliencyConfig(),
    si_subset: int | None = None,
    sensitivity_subset: int | None = None,
    batch_size: int = 1024,
    sensitivity_method: str = "exact",
    memory_budget_mb: int = DEFAULT_BUDGET_MB,
    progress: bool = False,
) -> MeasureReport:
    """Measure ``model`` on the ``group`` orbit of ``(images, labels)`` (tensors or NumPy
    arrays), or of the ``(images, labels)`` batches of an iterable such as a ``DataLoader``
    (then ``labels=None``).

    ``metrics`` ⊆ {accuracy, di, li, si, sensitivity}, or one name; SI and sensitivity may use
    the first ``si_subset`` / ``sensitivity_subset`` samples. At most ``batch_size`` samples
    go through the model at once, fewer where their passes (the model's activations included,
    probed on one image) would exceed ``memory_budget_mb`` MiB. Works for any function from
    image batches ``(N, C, H, W)`` to logits ``(N, K)``; an ``nn.Module`` is put in eval mode
    for the call. The data pass once, so any iterable will do.
    """
    wanted = _check_metrics(metrics)
    for name, value in (("batch_size", batch_size), ("memory_budget_mb", memory_budget_mb)):
        if not isinstance(value, int) or value <= 0:
            raise GinvError(f"{name} must be a positive integer, got {value!r}")
    for name, subset in (("si_subset", si_subset), ("sensitivity_subset", sensitivity_subset)):
        if subset is not None and (not isinstance(subset, int) or subset < 1):
            raise GinvError(
                f"{name} must be a whole number ≥ 1 (None: every sample), got {subset!r}"
            )
    if sensitivity_method not in ("exact", "power"):
        raise GinvError(
            f"sensitivity method must be 'exact' or 'power', got {sensitivity_method!r}"
        )
    saliency.validate()
    batches, total = _batches(images, labels, batch_size)
    settings = {"saliency": asdict(saliency)}
    budgets = _Passes(group, saliency, sensitivity_method, memory_budget_mb, batch_size)
    limits = {"si": si_subset or math.inf, "sensitivity": sensitivity_subset or math.inf}
    report = MeasureReport(group.name, 0, group.element_names, settings=settings)
    report.exact_group = bool(getattr(group, "exact", True))
    per_sample: dict[str, list[Tensor]] = {}  # gathered once at the end, not at every merge
    was_training = isinstance(model, nn.Module) and model.training
    if isinstance(model, nn.Module):
        model.eval()
    bar = tqdm(
        total=total,
        disable=not progress,
        unit="sample",
        desc=f"measure on {group.name}",
        leave=False,
    )
    try:
        for x, y in batches:
            budgets.fit(model, x, y)
            if set(ORBIT_METRICS) & wanted:
                report = _orbit(model, x, y, group, wanted, budgets, report, per_sample)
            for key in ("si", "sensitivity"):
                take = int(min(len(x), limits[key] - report.subsets.get(key, 0)))
                if key in wanted and take > 0:
                    measure_pass = _si if key == "si" else _sensitivity
                    report = measure_pass(model, x[:take], y[:take], budgets, report, per_sample)
            report.n_samples += len(x)
            bar.update(len(x))
        if report.n_samples == 0:
            raise GinvError("no images to measure")
        report.per_sample = {k: torch.cat(v) for k, v in per_sample.items()}
        if "sensitivity" in wanted and isinstance(model, nn.Module):
            report.weight_sigma_max = weight_spectral_norms(model)
    finally:
        bar.close()
        if isinstance(model, nn.Module):
            model.train(was_training)
    return report


def _check_metrics(metrics: Sequence[str] | str) -> set[str]:
    wanted = {metrics} if isinstance(metrics, str) else set(metrics)
    unknown = wanted - set(METRICS)
    if unknown:
        raise GinvError(
            f"unknown measures: {', '.join(sorted(unknown))} (known: {', '.join(METRICS)})"
        )
    if not wanted:
        raise GinvError(f"no measures asked for (known: {', '.join(METRICS)})")
    return wanted


def _batches(
    images: Tensor | np.ndarray | Batches, labels: Tensor | np.ndarray | None, batch_size: int
) -> tuple[Iterator[tuple[Tensor, Tensor]], int | None]:
    """Checked ``(images, labels)`` batches, and the number of samples when known."""
    if isinstance(images, Tensor | np.ndarray):
        if labels is None:
            raise GinvError(
                "labels are missing: pass labels with images, or labels=None with "
                "an iterable of (images, labels) batches"
            )
        if len(images) != len(labels):
            raise GinvError(
                f"need as many labels as images, got {len(images)} images and {len(labels)} labels"
            )
        cuts = range(0, len(images), batch_size)
        return (
            _check_batch(images[i : i + batch_size], labels[i : i + batch_size]) for i in cuts
        ), len(images)
    if labels is not None:
        raise GinvError(
            "labels must be None when images is an iterable of (images, labels) batches"
        )
    if not isinstance(images, Iterable):
        raise GinvError(
            f"images must be a tensor, an array or an iterable of batches, got {type(images).__name__}"
        )
    dataset = getattr(images, "dataset", None)
    total = len(dataset) if hasattr(dataset, "__len__") else None  # type: ignore[arg-type]
    return (_check_batch(*_pair(batch)) for batch in images), total


def _pair(batch: Any) -> tuple[Any, Any]:
    if isinstance(batch, Sequence) and len(batch) == 2:
        return batch[0], batch[1]
    raise GinvError(f"each batch must be a pair (images, labels), got {type(batch).__name__}")


def _check_batch(images: Any, labels: Any) -> tuple[Tensor, Tensor]:
    """Images ``(N, C, H, W)`` of finite floats and integer labels ``(N,)``; NumPy arrays are
    converted."""
    x = torch.as_tensor(images) if isinstance(images, np.ndarray) else images
    y = torch.as_tensor(labels) if isinstance(labels, np.ndarray) else labels
    if not isinstance(x, Tensor) or not isinstance(y, Tensor):
        raise GinvError(
            f"images and labels must be tensors or arrays, got {type(x).__name__} and {type(y).__name__}"
        )
    if not x.is_floating_point():
        raise GinvError(
            f"images must be floating point, got {x.dtype}; convert and normalise "
            "them as the model was trained (e.g. images.float() / 255)"
        )
    if x.dim() != 4:
        raise GinvError(f"images must be a batch (N, C, H, W), got shape {tuple(x.shape)}")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise GinvError(f"labels must be integer class indices, got {y.dtype}")
    if y.dim() != 1:
        raise GinvError(
            f"labels must have shape (N,), got {tuple(y.shape)}; e.g. labels.view(-1) for (N, 1)"
        )
    if len(x) != len(y):
        raise GinvError(f"need as many labels as images, got {len(x)} images and {len(y)} labels")
    if not bool(torch.isfinite(x).all()):
        raise GinvError(f"images contain {int((~torch.isfinite(x)).sum())} non-finite value(s)")
    return x, y.to(x.device, torch.long)


class _Passes:
    """Samples per pass of each measure, from the model's footprint on the first batch."""

    def __init__(self, group, saliency, sensitivity_method, budget_mb, batch_size) -> None:
        self.group, self.saliency, self.method = group, saliency, sensitivity_method
        self.budget_mb, self.batch_size = budget_mb, batch_size
        self.footprint: Footprint | None = None
        self.baseline: Tensor | None = None

    def fit(self, model: Classifier, x: Tensor, y: Tensor) -> None:
        if self.footprint is None and len(x):
            self.footprint = probe(model, x)
            self.baseline = constant_baseline(self.saliency.baseline, x)
            check_baseline(self.baseline, self.group)
        k = self.footprint.classes if self.footprint else 0
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= k):
            raise GinvError(
                f"labels must lie in [0, {k}) for a model with {k} logits, "
                f"got {int(y.min())}..{int(y.max())}"
            )

    def chunk(self, key: str) -> int:
        assert self.footprint is not None
        fp, order = self.footprint, len(self.group)
        sample_bytes = {
            "orbit": order * (fp.forward() + fp.input_bytes),  # the orbit's two copies, its pass
            "si": si_sample_bytes(fp, self.group, self.saliency),
            "sensitivity": sensitivity_sample_bytes(fp, self.method),
        }[key]
        return samples_per_pass(self.budget_mb, sample_bytes, self.batch_size)


def _add(
    report: MeasureReport, part: MeasureReport, per_sample: dict[str, list[Tensor]]
) -> MeasureReport:
    """Merge one pass's summary into the report, keeping its per-sample values aside."""
    for key, values in part.per_sample.items():
        per_sample.setdefault(key, []).append(values)
    part.per_sample = {}
    return MeasureReport.merge(report, part)


def _passes(n: int, chunk: int) -> Iterator[slice]:
    return (slice(i, i + chunk) for i in range(0, n, chunk))


def _orbit(model, x, y, group, wanted, budgets, report, per_sample) -> MeasureReport:
    start = time.perf_counter()
    for s in _passes(len(x), budgets.chunk("orbit")):
        logits = orbit_logits(model, x[s], group)
        bad = ~torch.isfinite(logits).all(-1)
        if bool(bad.any()):
            g, i = (int(v) for v in bad.nonzero()[0])
            raise GinvError(
                f"the model returned non-finite logits for {int(bad.sum())} orbit image(s), first "
                f"for sample {report.n_samples + s.start + i} under {group.element_names[g]}"
            )
        values = orbit_values(logits, y[s])
        for key, v in (("accuracy", values.correct), ("di", values.di), ("li", values.li)):
            if key in wanted:
                report = _add(report, _summary(report, key, v), per_sample)
    report.seconds["orbit"] = report.seconds.get("orbit", 0.0) + time.perf_counter() - start
    return report


def _si(model, x, y, budgets, report, per_sample) -> MeasureReport:
    start = time.perf_counter()
    for s in _passes(len(x), budgets.chunk("si")):
        maps = _aligned_orbit_maps(
            model,
            x[s],
            y[s],
            budgets.group,
            budgets.saliency,
            budgets.baseline,
            budgets.footprint,
            budgets.budget_mb,
        )
        report = _add(report, _summary(report, "si", saliency_similarity(maps)), per_sample)
    report.seconds["si"] = report.seconds.get("si", 0.0) + time.perf_counter() - start
    return report


def _sensitivity(model, x, y, budgets, report, per_sample) -> MeasureReport:
    start = time.perf_counter()
    chunk = budgets.chunk("sensitivity")
    sigma = jacobian_spectral_norm(model, x, budgets.method, chunk=chunk)
    report = _add(report, _summary(report, "sensitivity", sigma), per_sample)
    report.seconds["sensitivity"] = (
        report.seconds.get("sensitivity", 0.0) + time.perf_counter() - start
    )
    return report
