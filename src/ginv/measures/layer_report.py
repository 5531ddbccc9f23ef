"""The report of :func:`ginv.measures.layer_equivariance`: per layer, its equivariance and
invariance errors side by side, the action they were measured under, and, for an inexact
group, the interpolation floor."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ginv.errors import GinvError
from ginv.io import atomic_write_json

LAYER_COLUMNS = (
    "layer", "action", "exact_action", "equivariance", "invariance", "li",
    "floor_equivariance", "floor_invariance", "samples",
)  # fmt: skip
"""Columns of :meth:`LayerReport.rows` and of its CSV."""


@dataclass
class LayerReport:
    """Per layer (named as in ``model.named_modules()``, ``name#k`` for the k-th call of a
    module that ``forward`` calls more than once), over samples and ``g ≠ e``:

    * ``equivariance``: mean ``‖h(g·x) − ρ(g)·h(x)‖² / (‖h(x)‖² + eps)``, ρ the layer's
      action (``action``: ``trivial``, ``spatial``, ``group axis``, ``user``, or ``none``
      when no action fits the feature, then NaN);
    * ``invariance``: the same with ρ trivial; ``li``: mean ``½‖h(g·x) − h(x)‖²``;
    * ``exact_action``: False where the action only approximates the group's (a spatial
      action on a map whose stride does not divide the group's shift or rotation centre);
    * ``floor_equivariance`` / ``floor_invariance`` (inexact groups only): the errors of a
      model equivariant by construction in the continuum on the layer's grid (a Gaussian
      blur resampled to the map; the pixel sum for vectors): what interpolation alone gives;
    * ``samples``.

    Access: ``report["hidden.0"]["equivariance"]``, ``report.first.invariance`` is not
    possible for dotted names, so rows are dicts; ``report.layers``, ``report.to_dict()``.
    """

    group: str
    n_samples: int
    layers: dict[str, dict[str, Any]] = field(default_factory=dict)
    exact_group: bool = True

    def __getitem__(self, layer: str) -> dict[str, Any]:
        """The row of ``layer``: ``report["first"]["equivariance"]``."""
        if layer not in self.layers:
            raise KeyError(f"no layer {layer!r} in the report (it has: {', '.join(self.layers)})")
        return self.layers[layer]

    def __getattr__(self, name: str) -> dict[str, Any]:
        """The row of a layer whose name is an identifier: ``report.first``."""
        layers = self.__dict__.get("layers")
        if name.startswith("_") or layers is None or name not in layers:
            raise AttributeError(f"the report has no layer {name!r}")
        return layers[name]

    def __iter__(self):
        """The layer names, in the order the model calls them."""
        return iter(self.layers)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """``{layer: {"equivariance": …, "invariance": …, …}}``; non-finite numbers are None.

        Example: ``layer_equivariance(cnn, x, R4()).to_dict()["conv1"]["equivariance"]``.
        """
        return {
            name: {k: _finite_or_none(v) for k, v in row.items()}
            for name, row in self.layers.items()
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LayerReport:
        """A report from the JSON of :meth:`write_json` (None read as NaN)."""
        layers = {
            name: {k: math.nan if v is None else v for k, v in row.items()}
            for name, row in data.get("layers", {}).items()
        }
        return cls(data["group"], data["n_samples"], layers, data.get("exact_group", True))

    def write_json(self, path: Path | str) -> None:
        """Write ``{"group", "n_samples", "exact_group", "layers": to_dict()}`` atomically."""
        data = {"group": self.group, "n_samples": self.n_samples,
                "exact_group": self.exact_group, "layers": self.to_dict()}  # fmt: skip
        atomic_write_json(data, Path(path))

    def rows(self) -> list[dict[str, Any]]:
        """One row per layer with the columns :data:`LAYER_COLUMNS` (None where missing)."""
        return [
            {c: (name if c == "layer" else _finite_or_none(row.get(c))) for c in LAYER_COLUMNS}
            for name, row in self.layers.items()
        ]

    def write_csv(self, path: Path | str) -> None:
        """Write :meth:`rows` as CSV (UTF-8); empty cells for missing or non-finite values."""
        text = io.StringIO()
        writer = csv.DictWriter(text, LAYER_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows())
        Path(path).write_text(text.getvalue(), encoding="utf-8")

    def to_dataframe(self) -> Any:
        """:meth:`rows` as a ``pandas.DataFrame`` (pandas is optional)."""
        try:
            import pandas
        except ImportError:
            raise GinvError(
                "to_dataframe needs pandas (pip install pandas); write_csv writes the same table"
            ) from None
        return pandas.DataFrame(self.rows(), columns=list(LAYER_COLUMNS))

    def table(self) -> str:
        """A plain-text table: layer, action, equivariance and invariance error (and the
        interpolation floor for an inexact group); ``~`` marks an inexact action."""
        width = max(12, *(len(name) + 2 for name in self.layers)) if self.layers else 12
        floor = not self.exact_group
        head = f"{'layer':<{width}}{'action':<13}{'equivariance':>14}{'invariance':>14}"
        lines = [head + (f"{'floor eq.':>12}{'floor inv.':>12}" if floor else "")]
        for name, row in self.layers.items():
            mark = "" if row.get("exact_action", True) else "~"
            line = (
                f"{name:<{width}}{row['action'] + mark:<13}"
                f"{row['equivariance']:>14.6g}{row['invariance']:>14.6g}"
            )
            if floor:
                line += f"{row['floor_equivariance']:>12.4g}{row['floor_invariance']:>12.4g}"
            lines.append(line)
        lines.append("errors: ‖h(gx) − ρ(g)h(x)‖² / ‖h(x)‖², invariance with ρ trivial")
        if floor:
            lines.append(
                f"note: {self.group} is an inexact group (interpolated action); "
                "the floor is what interpolation alone gives"
            )
        return "\n".join(lines)


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
