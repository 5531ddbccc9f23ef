"""Experiment 4 (SPEC §6): under drift ``D(β)`` from Transforming-MNIST to -FMNIST, DI and the
accuracy ratio ``Acc(D(β)) / Acc(D1)`` against β for DA, WT and IR, each group."""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.pyplot as plt

from ginv.data import drift_split
from ginv.experiments.results import Results, mean_std
from ginv.measures import measure

if TYPE_CHECKING:
    from ginv.experiments.study import Study

KINDS = ("DA", "WT", "IR")


def accuracy_and_di(model, images, labels, group) -> tuple[float, float]:
    """Orbit accuracy and DI of ``model`` on one drifted split (``measure`` does the work)."""
    report = measure(model, images, labels, group, metrics=("accuracy", "di"))
    return report.metrics["accuracy"], report.metrics["di"]


def run(study: Study, folder) -> Results:
    c = study.config
    results = Results(
        "drift", "Invariance under distribution drift",
        f"D(β) = (1−β)·D1 + β·D2 from Transforming-MNIST (D1) to Transforming-FMNIST (D2), "
        f"'{c.drift_mode}' reading, {c.drift_samples or 'all'} test samples; mean ± std over seeds.",
    )  # fmt: skip
    d1, d2 = study.data(c.dataset), study.data(c.drift_target)
    splits = {}
    for beta in c.drift_betas:
        mode = c.drift_mode
        splits[beta] = drift_split(d1, d2, beta, mode, samples=c.drift_samples or None)
    rows, curves = [], {}
    for group_name in c.groups:
        group = study.group(group_name)
        for kind in KINDS:
            study.status.set_postfix_str(f"drift {group_name} {kind}")
            per_seed = []
            for r in study.family(group_name, kind):
                model = r.model(study.device)
                values = {
                    b: accuracy_and_di(model, s.images, s.labels, group) for b, s in splits.items()
                }
                base = values[c.drift_betas[0]][0]
                per_seed.append({b: (acc / base, di) for b, (acc, di) in values.items()})
            curve = []
            for b in c.drift_betas:
                ratio = mean_std([p[b][0] for p in per_seed])
                di = mean_std([p[b][1] for p in per_seed])
                curve.append((b, *ratio, *di))
                rows.append(
                    [
                        group_name,
                        kind,
                        b,
                        round(ratio[0], 4),
                        round(ratio[1], 4),
                        f"{di[0]:.4g}",
                        f"{di[1]:.2g}",
                    ]
                )
            curves[f"{group_name}/{kind}"] = curve
    results.data = {"mode": c.drift_mode, "curves": curves}
    results.notes.append(
        f"Drift reading: {c.drift_mode} (blend: pixel-wise blend of class-paired images; mixture: each sample from D2 with probability β)."
    )
    results.add_csv(
        folder,
        "drift",
        ["group", "model", "beta", "acc_ratio", "acc_ratio_std", "DI", "DI_std"],
        rows,
    )
    fig, axes = plt.subplots(2, len(c.groups), figsize=(4.2 * len(c.groups), 6), squeeze=False)
    for j, group_name in enumerate(c.groups):
        for kind in KINDS:
            curve = curves[f"{group_name}/{kind}"]
            betas = [p[0] for p in curve]
            axes[0, j].errorbar(
                betas, [p[3] for p in curve], [p[4] for p in curve], label=kind, marker="o", ms=3
            )
            axes[1, j].errorbar(
                betas, [p[1] for p in curve], [p[2] for p in curve], label=kind, marker="o", ms=3
            )
        axes[0, j].set_title(f"{group_name}: DI against β", fontsize=9)
        axes[1, j].set_title(f"{group_name}: Acc(D(β)) / Acc(D1)", fontsize=9)
        axes[1, j].set_xlabel("β")
        axes[0, j].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    results.add_figure(
        folder, "drift", fig, "DI (top) and accuracy ratio (bottom) against the drift β."
    )
    summary = [
        [g, k, f"{curves[f'{g}/{k}'][-1][1]:.3f}", f"{curves[f'{g}/{k}'][-1][3]:.3g}"]
        for g in c.groups
        for k in KINDS
    ]
    results.add_table(
        folder,
        "drift-summary",
        f"At β = {c.drift_betas[-1]}",
        ["group", "model", "acc ratio", "DI"],
        summary,
    )
    return results
