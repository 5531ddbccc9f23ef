"""``measure``: every registered invariance measure of a classifier on a group's orbit, as one
report.

The data stream through in batches (a tensor is cut into ``batch_size`` samples, an iterable
such as a ``DataLoader`` gives its own), each batch in passes sized to a working-memory
budget from a probe of the model, and every pass's summary is merged into the report. The
loop knows no measure by name: it asks each :class:`~ginv.measures.base.Measure` of the
registry for its memory per sample and its values, and evaluates the orbit logits once per
pass for all the orbit measures asked for.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict

import numpy as np
import torch
from torch import Tensor, nn

from ginv.errors import GinvError
from ginv.groups import Group
from ginv.measures.base import Classifier, Measure, OrbitMeasure, Setting
from ginv.measures.data import Batches, batches
from ginv.measures.memory import probe, samples_per_pass
from ginv.measures.orbit import orbit_logits
from ginv.measures.registry import METRICS, measures_named
from ginv.measures.report import MeasureReport
from ginv.measures.saliency import (
    DEFAULT_BUDGET_MB,
    SaliencyConfig,
    check_baseline,
    constant_baseline,
)
from ginv.measures.sensitivity import weight_spectral_norms
from ginv.progress import tqdm

SENSITIVITY_METHODS = ("exact", "power")


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

    Per measure, the mean over samples and ``g ≠ e`` (accuracy: over the whole orbit) of its
    values, e.g. LI ``½‖f(x) − f(g·x)‖²``; see :data:`ginv.measures.MEASURES`.

    Args:
        model: any function from image batches ``(N, C, H, W)`` to logits ``(N, K)``; an
            ``nn.Module`` is put in eval mode for the call.
        images: the images (a tensor or NumPy array), or an iterable of
            ``(images, labels)`` batches such as a ``DataLoader``.
        labels: the labels, or ``None`` with an iterable of batches.
        group: the group whose orbit is measured.
        metrics: registered measure names ⊆ :data:`~ginv.measures.MEASURES` (default the
            built-in accuracy, di, li, si, sensitivity), or one name.
        saliency: the saliency map's settings (SI).
        si_subset: SI on the first N samples only (at most the data's size).
        sensitivity_subset: σmax(J) on the first N samples only (at most the data's size).
        batch_size: at most this many samples go through the model at once, fewer where
            their passes (the model's activations included, probed on one image) would
            exceed ``memory_budget_mb`` MiB.
        sensitivity_method: ``'exact'`` Jacobian or ``'power'`` iteration.
        progress: show a progress bar.

    Returns:
        A :class:`~ginv.measures.report.MeasureReport`. The data pass once, so any iterable
        will do. Misuse is one :class:`~ginv.errors.GinvError`, before any work.

    Example::

        report = ginv.measure(model, x, y, ginv.R4(), metrics=("li", "si"), si_subset=100)
        report.li, report.si
    """
    wanted = measures_named(metrics)
    for name, value in (("batch_size", batch_size), ("memory_budget_mb", memory_budget_mb)):
        if not isinstance(value, int) or value <= 0:
            raise GinvError(f"{name} must be a positive integer, got {value!r}")
    limits = {"si": si_subset, "sensitivity": sensitivity_subset}
    for key, subset in limits.items():
        if subset is not None and (not isinstance(subset, int) or subset < 1):
            raise GinvError(
                f"{key}_subset must be a whole number ≥ 1 (None: every sample), got {subset!r}"
            )
    if sensitivity_method not in SENSITIVITY_METHODS:
        raise GinvError(
            f"sensitivity method must be 'exact' or 'power', got {sensitivity_method!r}"
        )
    saliency.validate()
    stream, total = batches(images, labels, batch_size)
    for key, subset in limits.items():
        if subset is not None and total is not None and subset > total:
            raise GinvError(f"{key}_subset={subset} is larger than the data ({total} samples)")
    settings = {"saliency": asdict(saliency)}
    report = MeasureReport(group.name, 0, group.element_names, settings=settings)
    report.exact_group = bool(getattr(group, "exact", True))
    per_sample: dict[str, list[Tensor]] = {}  # gathered once at the end, not at every merge
    was_training = isinstance(model, nn.Module) and model.training
    if isinstance(model, nn.Module):
        model.eval()
    bar = tqdm(
        total=total, disable=not progress, unit="sample", desc=f"measure on {group.name}",
        leave=False, mininterval=5.0,  # many quick batches: a line every few seconds in a log
    )  # fmt: skip
    setting: Setting | None = None
    orbit = [m for m in wanted if isinstance(m, OrbitMeasure)]
    others = [m for m in wanted if not isinstance(m, OrbitMeasure)]
    try:
        for x, y in stream:
            if setting is None and len(x):
                setting = _setting(model, x, group, saliency, sensitivity_method, memory_budget_mb)
                for m in wanted:
                    m.check(model, x, y, setting)
            _check_labels(y, setting.footprint.classes if setting else 0)
            if setting is not None and orbit:
                report = _orbit(model, x, y, orbit, setting, report, per_sample)
            for m in others:
                limit = limits.get(m.name) or math.inf
                take = int(min(len(x), limit - report.subsets.get(m.name, 0)))
                if setting is not None and take > 0:
                    report = _pass(model, x[:take], y[:take], m, setting, report, per_sample)
            report.n_samples += len(x)
            bar.update(len(x))
        if report.n_samples == 0:
            raise GinvError("no images to measure")
        for key, subset in limits.items():
            if subset is not None and subset > report.n_samples:
                raise GinvError(
                    f"{key}_subset={subset} is larger than the data ({report.n_samples} samples)"
                )
        report.per_sample = {k: torch.cat(v) for k, v in per_sample.items()}
        if any(m.name == "sensitivity" for m in wanted) and isinstance(model, nn.Module):
            report.weight_sigma_max = weight_spectral_norms(model)
    finally:
        bar.close()
        if isinstance(model, nn.Module):
            model.train(was_training)
    return report


def _setting(
    model: Classifier, x: Tensor, group: Group, saliency: SaliencyConfig, method: str,
    budget_mb: int,
) -> Setting:  # fmt: skip
    """The model's footprint and the baseline, from the first batch."""
    footprint = probe(model, x)
    baseline = constant_baseline(saliency.baseline, x)
    check_baseline(baseline, group)
    return Setting(group, saliency, method, footprint, baseline, budget_mb)


def _check_labels(y: Tensor, k: int) -> None:
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= k):
        raise GinvError(
            f"labels must lie in [0, {k}) for a model with {k} logits, "
            f"got {int(y.min())}..{int(y.max())}"
        )


def _passes(n: int, chunk: int) -> Iterator[slice]:
    return (slice(i, i + chunk) for i in range(0, n, chunk))


def _chunk(measures: Sequence[Measure], setting: Setting, cap: int) -> int:
    """Samples per pass that fit the budget for every measure of the pass."""
    sample_bytes = max(m.sample_bytes(setting) for m in measures)
    return samples_per_pass(setting.budget_mb, sample_bytes, cap)


def _orbit(
    model: Classifier, x: Tensor, y: Tensor, measures: Sequence[OrbitMeasure], setting: Setting,
    report: MeasureReport, per_sample: dict[str, list[Tensor]],
) -> MeasureReport:  # fmt: skip
    """The orbit measures of one batch: the orbit logits once per pass, read by each."""
    start = time.perf_counter()
    group = setting.group
    for s in _passes(len(x), _chunk(measures, setting, len(x))):
        logits = orbit_logits(model, x[s], group)
        bad = ~torch.isfinite(logits).all(-1)
        if bool(bad.any()):
            g, i = (int(v) for v in bad.nonzero()[0])
            raise GinvError(
                f"the model returned non-finite logits for {int(bad.sum())} orbit image(s), first "
                f"for sample {report.n_samples + s.start + i} under {group.element_names[g]}"
            )
        for m in measures:
            report = _add(report, _summary(report, m, m.from_orbit(logits, y[s])), per_sample)
    report.seconds["orbit"] = report.seconds.get("orbit", 0.0) + time.perf_counter() - start
    return report


def _pass(
    model: Classifier, x: Tensor, y: Tensor, m: Measure, setting: Setting,
    report: MeasureReport, per_sample: dict[str, list[Tensor]],
) -> MeasureReport:  # fmt: skip
    """One measure on one batch, in passes that fit the budget."""
    start = time.perf_counter()
    for s in _passes(len(x), _chunk([m], setting, len(x))):
        report = _add(
            report, _summary(report, m, m.compute(model, x[s], y[s], setting)), per_sample
        )
    report.seconds[m.timer] = report.seconds.get(m.timer, 0.0) + time.perf_counter() - start
    return report


def _add(
    report: MeasureReport, part: MeasureReport, per_sample: dict[str, list[Tensor]]
) -> MeasureReport:
    """Merge one pass's summary into the report, keeping its per-sample values aside."""
    for key, values in part.per_sample.items():
        per_sample.setdefault(key, []).append(values)
    part.per_sample = {}
    return MeasureReport.merge(report, part)


def _summary(report: MeasureReport, m: Measure, values: Tensor) -> MeasureReport:
    """A report of one measure on one pass, from per element and sample values ``(|G|, n)``
    (or per sample ``(n,)``); refuses non-finite values."""
    key = m.name
    if not isinstance(values, Tensor) or values.dim() not in (1, 2):
        raise GinvError(f"{key}: compute must return a tensor (|G|, n) or (n,)")
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
        per_sample = values.mean(0) if m.includes_identity else values[1:].mean(0)
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
