#!/usr/bin/env python3
"""Per phase (each experiment of a ``reproduce`` run): its wall time, its FLOPs and the rate.

    python3 scripts/phase-rates.py PLAN_JSON OUT/summary.json

``PLAN_JSON`` is ``ginv reproduce … --plan --plan-json PLAN_JSON``'s record, written before
the run into the same ``OUT`` (runs already there are counted as free, as the run skips
them): its per-experiment FLOPs (work several experiments share counted under the first,
which does it) and the device's fp32 matmul rate it probed. ``summary.json`` holds each
experiment's wall seconds. The rate is FLOPs ÷ wall time, and its share of the matmul rate.
Pure Python (``json``); exit 2 on unreadable input.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def _load(path: str) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        print(f"error: {path}: unreadable ({e})", file=sys.stderr)
        raise SystemExit(2) from None


def phase_rows(
    plan: Mapping[str, Any], summary: Mapping[str, float]
) -> list[tuple[str, float | None, float, float | None, float | None]]:
    """``(phase, seconds, FLOPs, FLOP/s, share of the matmul rate)`` per experiment of the
    plan, in its order, then ``total``; seconds (and the rates) are ``None`` for a phase the
    summary lacks, a rate is ``None`` at 0 seconds.

    Example: 2e12 FLOPs in 4 s on a 1e12 FLOP/s device: ``("table", 4.0, 2e12, 5e11, 0.5)``."""
    matmul = float(plan.get("matmul_rate") or 0.0)

    def row(name: str, seconds: float | None, flops: float):
        rate = flops / seconds if seconds else None
        share = rate / matmul if rate is not None and matmul else None
        return name, seconds, flops, rate, share

    rows = []
    for name, flops in plan["experiments"].items():
        seconds = summary.get(name)
        rows.append(row(name, None if seconds is None else float(seconds), float(flops)))
    timed = [r for r in rows if r[1] is not None]
    total = row("total", sum(r[1] for r in timed) if timed else None, sum(r[2] for r in timed))
    return [*rows, total]


def format_phases(plan: Mapping[str, Any], summary: Mapping[str, float]) -> str:
    """The table of :func:`phase_rows`, headed by the device and its matmul rate."""

    def num(x: float | None, fmt: str) -> str:
        return "—" if x is None or not math.isfinite(x) else format(x, fmt)

    lines = [
        f"device {plan.get('device', '?')}: fp32 matmul {plan.get('matmul_rate', 0) / 1e9:.0f} "
        "GFLOP/s (probed by the plan); FLOPs from the plan, wall time from summary.json",
        f"{'phase':<12}{'wall s':>10}{'TFLOP':>10}{'GFLOP/s':>10}{'% matmul':>10}",
    ]
    for name, seconds, flops, rate, share in phase_rows(plan, summary):
        pct = None if share is None else 100 * share
        lines.append(
            f"{name:<12}{num(seconds, '.1f'):>10}{flops / 1e12:>10.3f}"
            f"{num(None if rate is None else rate / 1e9, '.1f'):>10}{num(pct, '.1f'):>10}"
        )
    lines.append("total: the phases summary.json times (not the report and the set-up around them)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print(__doc__.split("\n\n")[1].strip(), file=sys.stderr)
        return 2
    plan, summary = _load(args[0]), _load(args[1])
    if not isinstance(plan, dict) or not isinstance(plan.get("experiments"), dict):
        print(f"error: {args[0]}: not a plan record (no 'experiments')", file=sys.stderr)
        return 2
    if not isinstance(summary, dict):
        print(f"error: {args[1]}: not a summary record", file=sys.stderr)
        return 2
    print(format_phases(plan, summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
