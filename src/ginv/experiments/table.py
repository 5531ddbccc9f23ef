"""Experiment 1: WT, DA and IR for each group — accuracy, LI, DI, SI, mean ± std
over seeds, measured on the test orbit."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ginv.data import dataset_label
from ginv.experiments import style
from ginv.experiments.experiment import Experiment
from ginv.experiments.kinds import TABLE_KINDS, Kind
from ginv.experiments.nu_search import reached as target_reached
from ginv.experiments.results import (
    Results,
    cells_over,
    error_bars,
    fmt,
    fmt_over,
    fmt_values,
    mean_std,
    over_seeds,
)
from ginv.experiments.spec import CalibratedIR, Measure, Request, Sizes, Train

if TYPE_CHECKING:
    from pathlib import Path

    from ginv.experiments.config import StudyConfig
    from ginv.experiments.study import Study
    from ginv.runs import MeasureSettings, Run

COLUMNS = [("accuracy", "accuracy"), ("li", "LI"), ("di", "DI"), ("si", "SI")]


MEASURES = ("accuracy", "di", "li", "si")


def test_settings(study: Study, group: str, wrapper: str | None = None) -> MeasureSettings:
    """The table's measures on the study's test orbit (inside ``wrapper`` if given)."""
    c = study.config
    return study.measure_settings(
        group, MEASURES, samples=c.test_samples, si_samples=c.si_samples, wrapper=wrapper
    )


def family_metrics(
    study: Study, group_name: str, runs: list[Run], wrapper: str | None = None
) -> dict[str, list[float]]:
    """Each measure of one model family (inside ``wrapper`` if given) on the test orbit, one
    value per seed."""
    values: dict[str, list[float]] = {k: [] for k, _ in COLUMNS}
    values["si_se"] = []
    # one job for the family where the executor measures in jobs
    measured = study.measure_runs(runs, test_settings(study, group_name, wrapper))
    for m in measured:
        for k, _ in COLUMNS:
            values[k].append(m["metrics"][k])
        values["si_se"].append(m["std_over_samples"]["si"] / math.sqrt(m["subsets"]["si"]))
    return values


TIDY_COLUMNS = [
    "group", "model", "loss", "nu", "n_seeds", *(f"{k}{s}" for k, _ in COLUMNS for s in ("", "_std")),
    "val_si", "val_si_std", "si_target_reached",
]  # fmt: skip
"""``table.csv``: one number per cell (empty where a column does not apply: ν, val SI of WT
and DA), mean and std over seeds in columns of their own."""


def tidy_row(record: dict[str, Any]) -> list[Any]:
    """One line of ``table.csv`` from one record of ``results.json``'s ``data.rows``."""
    ir = record["model"] == Kind.IR
    val_si = mean_std(record["val_si_per_seed"]) if ir else ("", "")
    return [
        record["group"], record["model"], record.get("loss", ""), record.get("nu", ""),
        len(record["seeds"]), *(record[f"{k}{s}"] for k, _ in COLUMNS for s in ("", "_std")),
        *val_si, record["si_target_reached"] if ir else "",
    ]  # fmt: skip


def summary_lines(records: list[dict[str, Any]]) -> list[str]:
    """The main table for a terminal: group, model, accuracy, LI, DI, SI, val SI (mean ± std
    over seeds), from ``results.json``'s ``data.rows``."""
    head = ["group", "model", "accuracy", "LI", "DI", "SI", "val SI"]
    lines = [head]
    for r in records:
        model = r["model"]
        if model == Kind.IR:
            model = f"IR ν={r['nu']:g}" + ("" if r["si_target_reached"] else " (missed)")
        n = len(r["seeds"])
        val = fmt_over(r["val_si_per_seed"], single="") if "val_si_per_seed" in r else ""
        cells = (fmt(r[k], r[f"{k}_std"], n, single="") for k, _ in COLUMNS)
        lines.append([r["group"], model, *cells, val])
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return ["  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip()
            for line in lines]  # fmt: skip


def family_requests(
    c: StudyConfig, group: str, kind: Kind, loss: str, item: str = ""
) -> list[Request]:
    """The requests of one family of the study: WT and DA over the seeds, IR calibrated."""
    if kind is Kind.IR:
        return [CalibratedIR(loss)]
    return [Train(item or kind, tuple(c.run(group, kind, s) for s in c.seeds))]


def test_measures(c: StudyConfig, group: str, kind: Kind, sizes: Sizes) -> Measure:
    """The cost of :func:`test_settings` on one family (counted once however many
    experiments read it)."""
    return Measure(f"{kind} test measures", c.model_of(kind), len(c.seeds), sizes.test,
                   c.si_samples or sizes.test, shared=f"table/{group}/{kind}", job=True)  # fmt: skip


def work(c: StudyConfig, group: str, sizes: Sizes) -> list[Request]:
    """The three families of the table and their test measures."""
    requests: list[Request] = []
    for kind in TABLE_KINDS:
        requests += family_requests(c, group, kind, c.reg)
        requests.append(test_measures(c, group, kind, sizes))
    return requests


def run(study: Study, folder: Path) -> Results:
    """Train (or find) WT, DA and IR at its calibrated ν for every group, measure them on the
    test orbit, and tabulate accuracy, LI, DI and SI over the seeds."""
    c = study.config
    results = Results(
        "table", "Genuine invariance of WT, DA and IR",
        f"Transforming-{dataset_label(c.dataset).upper()} test orbit ({c.test_samples or 'all'} samples; SI "
        f"on {c.si_samples or 'all'}); {over_seeds(c.seeds)}. IR uses the "
        f"{c.reg} invariance loss, ν chosen as the smallest whose final models' validation "
        f"SI, mean over seeds, reaches {c.si_target} with {c.nu_confidence:.0%} confidence; "
        f"val SI is the final IR models' validation SI.",
    )  # fmt: skip
    rows, records = [], []
    # Every family first, its measures submitted as it is ready: with SLURM, measure jobs run
    # beside the next families' training; locally this only reorders the same work.
    families: dict[tuple[str, str], tuple[list[Run], dict[str, Any]]] = {}
    for group_name in c.groups:
        for kind in TABLE_KINDS:
            study.say(f"table {group_name} {kind}")
            if kind is Kind.IR:
                families[group_name, kind] = study.ir_family(group_name, c.reg)
            else:
                families[group_name, kind] = (study.family(group_name, kind), {})
            study.submit_measures(families[group_name, kind][0], test_settings(study, group_name))
    for group_name in c.groups:
        for kind in TABLE_KINDS:
            study.say(f"table {group_name} {kind}")
            record: dict[str, Any] = {"group": group_name, "model": kind}
            if kind is Kind.IR:
                runs, cal = families[group_name, kind]
                val_si = [m["val_si"] for m in cal["members"]]
                reached = target_reached(val_si, c.si_target)  # nu_search.READING
                record |= {
                    "loss": c.reg, "nu": cal["chosen_nu"], "val_si": mean_std(val_si)[0],
                    "val_si_per_seed": val_si, "si_target_reached": reached,
                }  # fmt: skip
                label = f"IR (ν={cal['chosen_nu']:g})" + ("" if reached else " [target missed]")
            else:
                runs, label = families[group_name, kind][0], kind
            values = family_metrics(study, group_name, runs)
            record |= {"seeds": [r.config.seed for r in runs], "per_seed": values}
            for k, _ in COLUMNS:
                record[k], record[f"{k}_std"] = mean_std(values[k])
            records.append(record)
            val = fmt_over(record["val_si_per_seed"], single="") if kind is Kind.IR else ""
            rows.append(
                [group_name, label, *(fmt_over(values[k], single="") for k, _ in COLUMNS), val]
            )
    missed = [r for r in records if r.get("si_target_reached") is False]
    results.description += (
        " Every IR row reached the validation SI target (its mean over seeds)."
        if not missed
        else " Not every IR row reached the validation SI target (its mean over seeds): see "
        "the flagged rows."
    )
    if missed:
        results.notes.append(
            "Validation SI target missed (mean over seeds) for: "
            + ", ".join(
                f"{r['group']} IR (val SI per seed: {fmt_values(r['val_si_per_seed'])})"
                for r in missed
            )
        )
    results.add_table(
        folder, "table", "Accuracy and invariance on the test orbit; val SI on the validation "
        f"orbit{cells_over(len(c.seeds))}",
        ["group", "model", *(n for _, n in COLUMNS), "val SI"], rows,
        tidy=(TIDY_COLUMNS, [tidy_row(r) for r in records]),
    )  # fmt: skip
    results.data = {"rows": records}
    data = {f"{r['group']}/{r['model']}": r["per_seed"] for r in records}
    results.add_figure(
        folder,
        "table",
        _plot(c.groups, data),
        f"{'Mean' if len(c.seeds) > 1 else 'Value'} of each measure over "
        f"{len(c.seeds)} seed{'s' * (len(c.seeds) > 1)}; {error_bars(len(c.seeds))}. "
        f"LI and DI on log axes: values below "
        f"{style.FLOOR:g}, exact zeros included, are drawn at {style.FLOOR:g} (dotted line).",
    )
    return results


PANELS = (("accuracy", "test orbit accuracy", False), ("li", "LI (log)", True),
          ("di", "DI (log)", True), ("si", "SI", False))  # fmt: skip


@style.styled
def _plot(groups, data):
    """One panel per measure; groups along x, one bar per model in the model's colour. LI and
    DI span many decades (WT ~1e-16, IR ~1e-3, DA ~10), so their axes are logarithmic, with
    values below :data:`style.FLOOR` (exact zeros) drawn at the floor."""
    import matplotlib.pyplot as plt

    kinds = TABLE_KINDS
    fig, axes = plt.subplots(1, len(PANELS), figsize=(style.PAGE, 1.9))
    width = 0.8 / len(kinds)
    for ax, (key, name, log) in zip(axes, PANELS, strict=True):
        for k, kind in enumerate(kinds):
            stats = [mean_std(data[f"{g}/{kind}"][key]) for g in groups]
            means, stds = [m for m, _ in stats], [s for _, s in stats]
            xs = [j + (k - (len(kinds) - 1) / 2) * width for j in range(len(groups))]
            bar = {"color": style.color(kind), "label": kind, "ecolor": "black",
                   "error_kw": {"lw": 0.6}}  # fmt: skip
            if log:
                bottom = style.FLOOR / 10  # an exact zero still shows as a one-decade stub
                shown = style.clip_floor(means)
                ax.bar(xs, [v - bottom for v in shown], width, bottom=bottom,
                       yerr=style.log_errors(means, stds) if any(stds) else None, **bar)  # fmt: skip
            else:
                ax.bar(xs, means, width, yerr=stds if any(stds) else None, **bar)
        ax.set_xticks(range(len(groups)), groups)
        ax.set_ylabel(name)
        if log:
            ax.set_yscale("log")
            ax.axhline(style.FLOOR, color=style.NEUTRAL, lw=0.6, ls=":")
            ax.set_ylim(bottom=style.FLOOR / 10)
        else:
            ax.set_ylim(0, 1.05)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="upper center", ncol=len(kinds),
               bbox_to_anchor=(0.5, 1.02))  # fmt: skip
    fig.tight_layout(rect=(0, 0, 1, 0.9), w_pad=1.0)
    return fig


def summary(data: dict[str, Any]) -> list[str]:
    """The main table, for the terminal after ``reproduce``."""
    return [
        "main table (test orbit; "
        + (
            "one seed, no ± std"
            if all(len(r["seeds"]) == 1 for r in data["rows"])
            else "mean ± std over seeds"
        )
        + "; val SI on the validation orbit):",
        *(f"  {line}" for line in summary_lines(data["rows"])),
    ]


EXPERIMENT = Experiment(
    "table", "Genuine invariance of WT, DA and IR", run, work,
    sections=("fidelity", "calibration"), summary=summary,
)  # fmt: skip
