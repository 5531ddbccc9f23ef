#!/usr/bin/env python3
"""The study's table as the docs print it, made from a results folder (never typed by hand).

    python3 scripts/docs-table.py OUT            # OUT: a `ginv reproduce table` folder

Prints Markdown: a provenance line (the commit that computed the results, from
``environment.json``; the profile, seeds and wall time), then one table per group, each
measure as ``mean ± std over seeds`` with the paper's Table 1 beside it in brackets, the IR
row naming its loss and chosen ν, and a line per IR row with its validation SI per seed, the
seed mean the ν search decides on, and whether it reached the target. ``docs/study.md``'s
paper-profile section is this script's output; the tests run it on a smoke folder.

Exit 2, with one line, when OUT is not a readable results folder.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ginv.errors import GinvError
from ginv.experiments.fidelity import PAPER_TABLE
from ginv.records import read_record
from ginv.reports.numbers import fmt

MEASURES = (("accuracy", "accuracy %"), ("li", "LI"), ("di", "DI"), ("si", "SI"))


def _cell(row: dict[str, Any], measure: str, n: int) -> str:
    scale = 100.0 if measure == "accuracy" else 1.0  # the paper prints accuracy in %
    ours = fmt(row[measure] * scale, row[f"{measure}_std"] * scale, n, single="")
    paper = PAPER_TABLE.get((row["group"], row["model"]), {}).get(measure)
    return f"{ours} ({paper[0]:g} ± {paper[1]:g})" if paper else ours


def _label(row: dict[str, Any]) -> str:
    if row["model"] != "IR":
        return str(row["model"])
    return f"IR, {row.get('loss', 'logit')}, ν = {fmt(row['nu'])}"


def _seeds_line(row: dict[str, Any], target: float) -> str:
    per_seed = ", ".join(fmt(v) for v in row["val_si_per_seed"])
    verdict = "reached" if row["si_target_reached"] else "**missed**"
    return (f"{row['group']} IR validation SI per seed: {per_seed} (mean {fmt(row['val_si'])}; "
            f"target {target:g} {verdict})")  # fmt: skip


def docs_table(out: Path) -> str:
    """The Markdown for ``out`` (see the module docstring)."""
    table = read_record(out / "table" / "results.json", "results")
    config = read_record(out / "config.json", "config")
    env = read_record(out / "environment.json", "environment")
    wall = read_record(out / "summary.json", "summary").get("table")
    rows = table.get("data", {}).get("rows", [])
    if not rows:
        raise GinvError(f"{out / 'table' / 'results.json'}: no table rows")
    seeds = config.get("seeds", [])
    made = str(env.get("commit") or "")
    commit = f"git commit `{made[:12]}`{made[40:]}" if made else "an unrecorded commit"
    parts = [
        f"<!-- made by scripts/docs-table.py from a results folder; do not edit by hand -->\n"
        f"Results computed at {commit} with profile "
        f"`{config.get('profile')}`, seeds {', '.join(map(str, seeds))}, on {env.get('device')} "
        f"({env.get('executor', 'local')})"
        + (f"; wall time {wall / 60:.1f} min." if isinstance(wall, float | int) else ".")
    ]
    groups = list(dict.fromkeys(r["group"] for r in rows))
    for group in groups:
        lines = [f"| {group} | " + " | ".join(f"{name} (paper)" for _, name in MEASURES) + " |",
                 "|---" * (len(MEASURES) + 1) + "|"]  # fmt: skip
        notes = []
        for row in (r for r in rows if r["group"] == group):
            n = len(row.get("seeds", seeds))
            lines.append(f"| {_label(row)} | "
                         + " | ".join(_cell(row, m, n) for m, _ in MEASURES) + " |")  # fmt: skip
            if "val_si_per_seed" in row:
                notes.append(_seeds_line(row, float(config.get("si_target", 0.95))))
        parts.append("\n".join(lines) + ("\n\n" + "\n".join(notes) if notes else ""))
    return "\n\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, help="a `ginv reproduce table` results folder")
    args = parser.parse_args(argv)
    try:
        sys.stdout.write(docs_table(args.out))
    except (GinvError, KeyError, TypeError) as e:
        print(f"error: {args.out}: not a complete table results folder ({e})", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
