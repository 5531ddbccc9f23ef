"""Experiment 1 (SPEC §6): WT, DA and IR for each group — accuracy, LI, DI, SI, mean ± std
over seeds, measured on the test orbit."""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.pyplot as plt

from ginv.experiments.results import Results, fmt, mean_std

if TYPE_CHECKING:
    from ginv.experiments.study import Study

COLUMNS = [("accuracy", "accuracy"), ("li", "LI"), ("di", "DI"), ("si", "SI")]


def family_metrics(study: Study, group_name: str, kind: str) -> dict[str, list[float]]:
    """Each measure of one model kind, one value per seed."""
    c = study.config
    group = study.group(group_name)
    values: dict[str, list[float]] = {k: [] for k, _ in COLUMNS}
    for run in study.family(group_name, kind):
        m = study.measure_run(
            run, group, ("accuracy", "di", "li", "si"),
            samples=c.test_samples, si_samples=c.si_samples,
        )  # fmt: skip
        for k, _ in COLUMNS:
            values[k].append(m["metrics"][k])
    return values


def run(study: Study, folder) -> Results:
    c = study.config
    results = Results(
        "table", "Genuine invariance of WT, DA and IR",
        f"Transforming-{c.dataset.upper()} test orbit; mean ± std over seeds {list(c.seeds)}. "
        f"IR uses the {c.reg} invariance loss with ν calibrated to validation SI ≥ {c.si_target}.",
    )  # fmt: skip
    rows, data = [], {}
    for group_name in c.groups:
        nu = study.calibrate(group_name, c.reg)["chosen_nu"]
        for kind in ("WT", "DA", "IR"):
            study.status.set_postfix_str(f"table {group_name} {kind}")
            values = family_metrics(study, group_name, kind)
            data[f"{group_name}/{kind}"] = values
            label = f"IR (ν={nu:g})" if kind == "IR" else kind
            rows.append([group_name, label, *(fmt(*mean_std(values[k])) for k, _ in COLUMNS)])
    results.add_table(
        folder,
        "table",
        "Accuracy and invariance on the test orbit",
        ["group", "model", *(n for _, n in COLUMNS)],
        rows,
    )
    results.data = data
    results.add_figure(
        folder, "table", _plot(c.groups, data), "Mean ± std over seeds of each measure."
    )
    return results


def _plot(groups, data):
    fig, axes = plt.subplots(1, len(COLUMNS), figsize=(3.0 * len(COLUMNS), 3))
    kinds = ("WT", "DA", "IR")
    width = 0.8 / len(groups)
    for ax, (key, name) in zip(axes, COLUMNS, strict=True):
        for j, group_name in enumerate(groups):
            stats = [mean_std(data[f"{group_name}/{k}"][key]) for k in kinds]
            xs = [i + (j - (len(groups) - 1) / 2) * width for i in range(len(kinds))]
            ax.bar(xs, [s[0] for s in stats], width, yerr=[s[1] for s in stats], label=group_name)
        ax.set_xticks(range(len(kinds)), kinds)
        ax.set_title(name)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(groups), fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    return fig
