#!/usr/bin/env python3
"""Compare two runs' ``table.csv`` (e.g. a GPU run's with a CPU run's) cell by cell.

    python3 scripts/compare-tables.py CPU/table/table.csv GPU/table/table.csv [tolerances]

Rows are matched by ``(group, model, loss)``; every row must be in both tables and have the
same ``n_seeds``. A cell passes when (defaults, each an option):

- ``accuracy``: ``|a − b| ≤ 0.01`` (one point of accuracy);
- ``si``, ``val_si``: ``|a − b| ≤ 0.02`` (SI is read against a 0.95 target);
- ``li``, ``di``: both ``≤ 1e-6`` (exact invariance, WT's in float32 rounding), or within a
  factor of 3 (``max/min ≤ 3``): these are mean squared errors that span orders of magnitude
  and move with training noise;
- ``nu``: within a factor of 2.25 = one step of the ν search (its resolution, 1.5) × 1.5:
  a candidate that passes the SI target on one machine and misses it by a hair on the other
  moves the chosen ν by one step, the candidates' rounding and brackets by a little more.

Empty cells must be empty in both. ``*_std`` and ``si_target_reached`` are shown, not judged
(a spread over seeds, and a reading of ``val_si``, which is judged). It prints one line per
judged cell and exits 1 when any misses, 2 on unreadable input. Pure Python (``csv``).
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

KEY = ("group", "model", "loss")
ABSOLUTE = {"accuracy": "accuracy", "si": "si", "val_si": "si"}  # column → tolerance
FACTOR = ("li", "di")


@dataclass(frozen=True)
class Tolerances:
    """How far two tables' cells may differ (see the module docstring)."""

    accuracy: float = 0.01
    si: float = 0.02
    factor: float = 3.0
    floor: float = 1e-6
    nu_factor: float = 1.5 * 1.5


@dataclass(frozen=True)
class Verdict:
    row: str
    column: str
    a: str
    b: str
    ok: bool
    reason: str

    def line(self) -> str:
        mark = "ok  " if self.ok else "MISS"
        return f"{mark} {self.row:<16} {self.column:<10} {self.a:>12} {self.b:>12}  {self.reason}"


class TableError(Exception):
    """An unreadable or ill-formed table: one line, exit status 2."""


def read_table(path: Path) -> dict[tuple[str, ...], dict[str, str]]:
    """The rows of ``path`` by ``(group, model, loss)``."""
    try:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise TableError(f"{path}: unreadable ({e})") from None
    if not rows:
        raise TableError(f"{path}: no rows")
    missing = [k for k in (*KEY, "n_seeds") if k not in rows[0]]
    if missing:
        raise TableError(f"{path}: no column {', '.join(missing)}")
    table = {tuple(r[k] for k in KEY): r for r in rows}
    if len(table) < len(rows):
        raise TableError(f"{path}: a (group, model, loss) appears twice")
    return table


def _number(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise TableError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise TableError(f"{where}: {text!r} is not finite")
    return value


def _ratio(a: float, b: float) -> float:
    """``max/min`` of two magnitudes; infinite when one is 0 and the other not."""
    lo, hi = sorted((abs(a), abs(b)))
    return 1.0 if hi == 0 else math.inf if lo == 0 else hi / lo


def judge(column: str, a: float, b: float, tol: Tolerances) -> tuple[bool, str]:
    """Whether cells ``a`` and ``b`` of ``column`` agree within ``tol``, and why."""
    if column in ABSOLUTE:
        bound = tol.accuracy if ABSOLUTE[column] == "accuracy" else tol.si
        d = abs(a - b)
        return d <= bound, f"|Δ| {d:.4f} {'≤' if d <= bound else '>'} {bound:g}"
    if column in FACTOR:
        if abs(a) <= tol.floor and abs(b) <= tol.floor:
            return True, f"both ≤ {tol.floor:g}"
        r = _ratio(a, b)
        return r <= tol.factor, f"× {r:.3g} {'≤' if r <= tol.factor else '>'} {tol.factor:g}"
    if column == "nu":
        r = _ratio(a, b)
        return (
            r <= tol.nu_factor,
            f"× {r:.3g} {'≤' if r <= tol.nu_factor else '>'} {tol.nu_factor:g}",
        )
    raise ValueError(column)


def compare(
    a: dict[tuple[str, ...], dict[str, str]],
    b: dict[tuple[str, ...], dict[str, str]],
    tol: Tolerances,
) -> Iterator[Verdict]:
    """One verdict per judged cell of every row of either table, rows in ``a``'s order."""
    for key in [*a, *(k for k in b if k not in a)]:
        name = " ".join(k for k in key if k)
        if key not in a or key not in b:
            yield Verdict(name, "row", "present" if key in a else "absent",
                          "present" if key in b else "absent", False, "in one table only")  # fmt: skip
            continue
        ra, rb = a[key], b[key]
        same = ra["n_seeds"] == rb["n_seeds"]
        yield Verdict(name, "n_seeds", ra["n_seeds"], rb["n_seeds"], same,
                      "equal" if same else "differ")  # fmt: skip
        for column in (*ABSOLUTE, *FACTOR, "nu"):
            if column not in ra and column not in rb:
                continue
            x, y = ra.get(column, ""), rb.get(column, "")
            if not x and not y:
                continue
            if not x or not y:
                yield Verdict(name, column, x or "—", y or "—", False, "empty in one table")
                continue
            ok, reason = judge(column, _number(x, f"{name} {column}"),
                               _number(y, f"{name} {column}"), tol)  # fmt: skip
            yield Verdict(name, column, f"{float(x):.4g}", f"{float(y):.4g}", ok, reason)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the verdicts; 0 when every cell agrees, 1 on a miss, 2 on unreadable input."""
    t = Tolerances()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("a", type=Path, help="a table.csv (e.g. the CPU run's)")
    p.add_argument("b", type=Path, help="the table.csv to compare with it (e.g. the GPU run's)")
    p.add_argument("--accuracy", type=float, default=t.accuracy, help="absolute (%(default)s)")
    p.add_argument("--si", type=float, default=t.si, help="absolute, SI and val_si (%(default)s)")
    p.add_argument("--factor", type=float, default=t.factor, help="LI, DI: max/min (%(default)s)")
    p.add_argument("--floor", type=float, default=t.floor,
                   help="LI, DI: both at most this agree (%(default)s)")  # fmt: skip
    p.add_argument("--nu-factor", type=float, default=t.nu_factor, help="ν: max/min (%(default)s)")
    args = p.parse_args(argv)
    tol = Tolerances(args.accuracy, args.si, args.factor, args.floor, args.nu_factor)
    try:
        verdicts = list(compare(read_table(args.a), read_table(args.b), tol))
    except TableError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{'':4} {'row':<16} {'column':<10} {'a':>12} {'b':>12}  a = {args.a}, b = {args.b}")
    for v in verdicts:
        print(v.line())
    misses = sum(not v.ok for v in verdicts)
    print(f"{len(verdicts) - misses} of {len(verdicts)} cells agree; {misses} miss")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
