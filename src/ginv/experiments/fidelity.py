"""Fidelity: the paper's Table 1 beside this run's, and each of the paper's
qualitative claims with whether this run supports it.

The paper's numbers are for comparison only; the protocol is the one docs/study.md states, never tuned to them.
Each claim is judged by a stated numeric reading, so a reader can disagree with the
reading but not with the arithmetic. Claims whose experiment did not run are "not run".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ginv.experiments.results import Results, cells_over, fmt, fmt_values
from ginv.records import read_record

# The paper's Table 1: Transforming-MNIST, mean ± std over 4 seeds (accuracy in %).
PAPER_TABLE: dict[tuple[str, str], dict[str, tuple[float, float]]] = {
    ("R4", "WT"): {"accuracy": (94.6, 0.1), "li": (0.0, 0.0), "di": (0.0, 0.0), "si": (1.0, 0.0)},
    ("R4", "DA"): {"accuracy": (94.0, 0.5), "li": (98.6, 5.4), "di": (0.3, 0.1), "si": (0.17, 0.04)},
    ("R4", "IR"): {"accuracy": (87.9, 0.8), "li": (0.02, 0.0), "di": (0.0, 0.0), "si": (0.95, 0.03)},
    ("T3", "WT"): {"accuracy": (96.6, 0.1), "li": (0.0, 0.0), "di": (0.0, 0.0), "si": (1.0, 0.0)},
    ("T3", "DA"): {"accuracy": (96.2, 0.2), "li": (50.8, 6.8), "di": (0.1, 0.0), "si": (0.57, 0.08)},
    ("T3", "IR"): {"accuracy": (93.1, 0.1), "li": (0.01, 0.0), "di": (0.0, 0.0), "si": (0.95, 0.07)},
}  # fmt: skip
MEASURES = ("accuracy", "li", "di", "si")
EXACT = 1e-6  # LI, DI below this and SI above 1 − this count as exact (float rounding)
NEAR = 0.02  # "nearly as accurate": within two accuracy points


def _load(out: Path, name: str) -> dict[str, Any] | None:
    path = out / name / "results.json"
    return read_record(path, "results") if path.is_file() else None


def _paper(mean: float, std: float) -> str:
    """The paper's numbers as it prints them (their precision is the paper's)."""
    return f"{mean:g} ± {std:g}"


def table_rows(table: dict[str, Any]) -> list[list[Any]]:
    """:func:`table_tidy` for reading: the paper, ginv (mean ± std over its seeds), and
    ginv − paper."""
    seeds = {(r["group"], r["model"]): len(r["seeds"]) for r in table["data"]["rows"]
             if "seeds" in r}  # fmt: skip
    return [[g, model, m, _paper(p, p_std), fmt(ours, ours_std, seeds.get((g, model)), single=""),
             fmt(diff, signed=True)]
            for g, model, m, p, p_std, ours, ours_std, diff in table_tidy(table)]  # fmt: skip


def table_tidy(table: dict[str, Any]) -> list[list[Any]]:
    """:func:`table_rows` as numbers: paper and ginv mean and std, and their difference."""
    rows = []
    for r in table["data"]["rows"]:
        paper = PAPER_TABLE.get((r["group"], r["model"]))
        if paper is None:
            continue
        for m in MEASURES:
            scale = 100.0 if m == "accuracy" else 1.0  # the paper gives accuracy in %
            p_mean, p_std = paper[m]
            rows.append([r["group"], r["model"], m, p_mean, p_std, scale * r[m],
                         scale * r[f"{m}_std"], scale * r[m] - p_mean])  # fmt: skip
    return rows


def claims(table: dict[str, Any] | None, drift: dict[str, Any] | None,
           spectral: dict[str, Any] | None) -> list[list[str]]:  # fmt: skip
    """Each of the paper's claims, per group: supported / not supported / not run, and why."""
    out: list[list[str]] = []
    rows = {(r["group"], r["model"]): r for r in table["data"]["rows"]} if table else {}
    groups = sorted({g for g, _ in rows}) or ["–"]
    for g in groups:
        if not rows:
            break
        wt, da, ir = rows[(g, "WT")], rows[(g, "DA")], rows[(g, "IR")]
        ok = abs(da["accuracy"] - wt["accuracy"]) <= NEAR and da["li"] > 100 * ir["li"]
        ok = ok and da["si"] < ir["si"] - 0.1
        out.append([g, "1. DA keeps accuracy with high LI and low SI", _verdict(ok),
                    f"DA accuracy {fmt(da['accuracy'])} vs WT {fmt(wt['accuracy'])} (within {NEAR}?); "
                    f"LI {fmt(da['li'])} vs IR {fmt(ir['li'])} (> 100×?); SI {fmt(da['si'])} vs IR "
                    f"{fmt(ir['si'])}"])  # fmt: skip
        exact = wt["li"] < EXACT and wt["di"] < EXACT and wt["si"] > 1 - EXACT
        out.append([g, "2a. WT is exactly invariant", _verdict(exact),
                    f"LI {fmt(wt['li'])}, DI {fmt(wt['di'])}, 1 − SI {fmt(1 - wt['si'])}"])  # fmt: skip
        best = max(rows[(g, k)]["accuracy"] for k in ("WT", "DA", "IR"))
        out.append([g, "2b. WT is the most accurate", _verdict(wt["accuracy"] >= best),
                    f"WT {fmt(wt['accuracy'])}, DA {fmt(da['accuracy'])}, IR {fmt(ir['accuracy'])}"])  # fmt: skip
        ok = bool(ir.get("si_target_reached")) and ir["li"] < 0.01 * da["li"]
        ok = ok and ir["accuracy"] < da["accuracy"]
        out.append([g, "3. IR is near-exact (seed-mean val SI ≥ target) at an accuracy cost",
                    _verdict(ok),
                    f"val SI per seed {fmt_values(ir.get('val_si_per_seed', []))}, test "
                    f"SI {fmt(ir['si'])}; LI {fmt(ir['li'])} vs DA {fmt(da['li'])}; accuracy cost "
                    f"{fmt(100 * (da['accuracy'] - ir['accuracy']))} points"])  # fmt: skip
    curves = drift["data"]["curves"] if drift else {}  # (β, ratio, ratio std, DI, DI std) per β
    for g in groups:
        if f"{g}/DA" not in curves:
            continue
        da, wt, ir = (curves[f"{g}/{k}"] for k in ("DA", "WT", "IR"))
        first = next(p for p in da if p[0] > 0)  # the smallest drift
        ok = first[3] > da[0][3] and da[-1][3] > 2 * da[0][3]
        ok = ok and max(wt[-1][3], ir[-1][3]) < 0.1 * da[-1][3]
        out.append([g, "4. Under drift DA's DI rises at once while WT and IR stay low",
                    _verdict(ok),
                    f"DA DI {fmt(da[0][3])} at β=0, {fmt(first[3])} at β={first[0]:g}, "
                    f"{fmt(da[-1][3])} at β={da[-1][0]:g}; WT {fmt(wt[-1][3])}, IR "
                    f"{fmt(ir[-1][3])} at β={da[-1][0]:g}"])  # fmt: skip
    sigmas = spectral["data"] if spectral else {}
    for g in groups:
        bars = {k.split("/", 1)[1]: v for k, v in sigmas.items() if k.startswith(g + "/")}
        if "DA" not in bars:
            continue
        irs = {k: v[0] for k, v in bars.items() if k.startswith("IR-")}
        ok = bool(irs) and all(v < bars["DA"][0] for v in irs.values())
        out.append([g, "5. Every IR loss lowers σmax(J) below DA's", _verdict(ok),
                    f"DA {fmt(bars['DA'][0])}; "
                    + ", ".join(f"{k} {fmt(v)}" for k, v in irs.items())])  # fmt: skip
    return out


def _verdict(ok: bool) -> str:
    return "supported" if ok else "NOT supported"


def fidelity_results(out: Path, profile: str) -> Results | None:
    """The section, or None when the table has not run."""
    table = _load(out, "table")
    if table is None or "rows" not in table.get("data", {}):
        return None
    results = Results(
        "fidelity", "Fidelity to the paper",
        "The paper's Table 1 beside this run's, measure by measure, and each of the "
        "paper's claims with the reading that judges it. The protocol is ginv's (The study, in the docs); differences "
        "are reported, not tuned away.",
    )  # fmt: skip
    if profile != "paper":
        results.notes.append(
            f"This is the {profile} profile: fewer epochs, seeds or samples than the paper's, so "
            "differences from the paper's numbers are expected."
        )
    results.add_table(
        out / "fidelity", "table1", "Table 1: the paper beside ginv (accuracy in %)"
        + cells_over(min((len(r["seeds"]) for r in table["data"]["rows"]), default=2)),
        ["group", "model", "measure", "paper", "ginv", "ginv − paper"], table_rows(table),
        tidy=(["group", "model", "measure", "paper", "paper_std", "ginv", "ginv_std",
               "ginv_minus_paper"], table_tidy(table)),
    )  # fmt: skip
    verdicts = claims(table, _load(out, "drift"), _load(out, "spectral"))
    results.add_table(
        out / "fidelity", "claims", "The paper's claims in this run",
        ["group", "claim", "verdict", "reading"], verdicts,
    )  # fmt: skip
    results.data = {"claims": verdicts}
    return results
