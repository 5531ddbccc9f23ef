"""The report of :func:`ginv.measures.measure`: per measure its mean, spread, per-element
values and samples; reports of parts merge into the report of the whole (pooled spreads);
JSON, tidy rows, CSV, a DataFrame and a plain-text table."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ginv.errors import GinvError
from ginv.io import atomic_write_json
from ginv.measures.registry import LEGACY_NAMES, MEASURES, METRICS

__all__ = ["CSV_COLUMNS", "LEGACY_NAMES", "METRICS", "MeasureReport"]


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
    layers: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per-layer equivariance and invariance (:func:`ginv.measures.layer_equivariance`) where
    measured."""
    exact_group: bool = True
    """False when the group acts by interpolation (e.g. ``Rotations(8)``): then ``g·x`` is
    only approximately a group action, and nonzero LI/DI/SI partly measure interpolation."""

    def __getattr__(self, name: str) -> float:
        """A measure's mean by attribute, ``report.li`` for ``report.metrics["li"]``."""
        metrics = self.__dict__.get("metrics")
        if name.startswith("_") or metrics is None or name not in metrics:
            known = ", ".join(metrics or ()) or "none"
            raise AttributeError(f"the report has no measure {name!r} (it has: {known})")
        return metrics[name]

    def __getitem__(self, name: str) -> float:
        """A measure's mean by name, ``report["li"]``."""
        if name not in self.metrics:
            known = ", ".join(self.metrics) or "none"
            raise KeyError(f"the report has no measure {name!r} (it has: {known})")
        return self.metrics[name]

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
        lines = [f"{'measure':<26}{'mean':>12}{'std':>12}{'samples':>10}{'seconds':>10}"]
        known = [m for m in MEASURES.values() if m.name in self.metrics]
        rows = [(m.name, m.label or m.name, m.timer) for m in known]
        rows += [(k, k, k) for k in self.metrics if k not in MEASURES]
        for key, label, timer in rows:
            std = self.std_over_samples.get(key, float("nan"))
            n = self.subsets.get(key, self.n_samples)
            sec = self.seconds.get(timer, float("nan"))
            lines.append(f"{label:<26}{self.metrics[key]:>12.6g}{std:>12.4g}{n:>10}{sec:>10.2f}")
        if not self.exact_group:
            lines.append(
                f"note: {self.group} is an inexact group (interpolated action); "
                "measures include interpolation error"
            )
        return "\n".join(lines)


def _merge_layers(
    a: dict[str, dict[str, Any]], b: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Per-layer values of two reports, as means weighted by their samples; entries that are
    not numbers (a layer's action) are kept from ``a``."""
    out = {}
    for name in [*a, *(n for n in b if n not in a)]:
        if name not in a or name not in b:
            out[name] = dict(a.get(name) or b[name])
            continue
        na, nb = a[name]["samples"], b[name]["samples"]
        row = {
            k: (na * a[name][k] + nb * b[name][k]) / (na + nb)
            if _number(a[name][k]) and _number(b[name][k])
            else a[name][k]
            for k in a[name]
            if k in b[name]
        }
        out[name] = {**row, "samples": na + nb}
    return out


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


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
