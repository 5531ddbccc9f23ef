"""Experiment 4: under drift ``D(β)`` from the study's data (Transforming-MNIST) to
``drift_target`` (-FMNIST), DI and the accuracy ratio ``Acc(D(β)) / Acc(D1)`` against β for
DA, WT and IR, each group. A target of another image shape or number of classes cannot be
mixed in: the experiment is then skipped with a note (:func:`drift_mismatch`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from ginv.data import Split, dataset_label, drift_split
from ginv.data.drift import DriftMode
from ginv.experiments import style
from ginv.experiments.experiment import Experiment
from ginv.experiments.kinds import Kind
from ginv.experiments.results import Results, cells_over, error_bars, fmt, mean_std, over_seeds
from ginv.experiments.spec import Measure, Request, Sizes
from ginv.experiments.table import family_requests
from ginv.measures import measure

if TYPE_CHECKING:
    from pathlib import Path

    from ginv.experiments.config import StudyConfig
    from ginv.experiments.study import Study

KINDS = (Kind.DA, Kind.WT, Kind.IR)


def accuracy_and_di(model, images, labels, group) -> tuple[float, float]:
    """Orbit accuracy and DI of ``model`` on one drifted split (``measure`` does the work)."""
    report = measure(model, images, labels, group, metrics=("accuracy", "di"))
    return report.metrics["accuracy"], report.metrics["di"]


def drift_mismatch(study: Study) -> str | None:
    """Why the study's data cannot drift to ``drift_target`` (image shape or classes differ,
    e.g. 3-channel Colour-Digits to FMNIST), or None when it can."""
    c = study.config
    d1, d2 = study.data(c.dataset).spec, study.data(c.drift_target).spec
    if d1.shape == d2.shape and d1.num_classes == d2.num_classes:
        return None
    return (
        f"drift skipped: {dataset_label(c.dataset)} ({'×'.join(map(str, d1.shape))}, "
        f"{d1.num_classes} classes) cannot blend with the drift target "
        f"{dataset_label(c.drift_target)} ({'×'.join(map(str, d2.shape))}, {d2.num_classes} "
        "classes): set drift_target to a dataset of the same shape and classes"
    )


def drift_splits(study: Study) -> dict[float, Split]:
    """The drifted test set D(β) for each β of ``drift_betas``: the study's data drifting
    to ``drift_target``."""
    c = study.config
    d1, d2 = study.data(c.dataset), study.data(c.drift_target)
    mode = cast(DriftMode, c.drift_mode)  # one of DRIFT_MODES, checked by the config
    return {b: drift_split(d1, d2, b, mode, samples=c.drift_samples or None)
            for b in c.drift_betas}  # fmt: skip


def work(c: StudyConfig, group: str, sizes: Sizes) -> list[Request]:
    """DA, WT and IR, each measured on every drifted test set."""
    requests: list[Request] = []
    for kind in KINDS:
        requests += family_requests(c, group, kind, c.reg)
        n = (c.drift_samples or sizes.test) * len(c.drift_betas)
        requests.append(Measure(f"{kind} drift measures", c.model_of(kind), len(c.seeds), n, 0))
    return requests


def run(study: Study, folder: Path) -> Results:
    """Accuracy and DI of DA, WT and IR on test sets drifting from the study's data to
    ``drift_target``, D(β) for each β of ``drift_betas``."""
    c = study.config
    results = Results(
        "drift", "Invariance under distribution drift",
        f"D(β) = (1−β)·D1 + β·D2 from Transforming-{dataset_label(c.dataset)} (D1) to "
        f"Transforming-{dataset_label(c.drift_target)} (D2), "
        f"'{c.drift_mode}' reading, {c.drift_samples or 'all'} test samples; {over_seeds(c.seeds)}.",
    )  # fmt: skip
    mismatch = drift_mismatch(study)
    if mismatch is not None:
        results.data = {"mode": c.drift_mode, "curves": {}, "skipped": mismatch}
        results.notes.append(mismatch)
        return results
    splits = drift_splits(study)
    rows, curves = [], {}
    for group_name in c.groups:
        group = study.group(group_name)
        for kind in KINDS:
            study.say(f"drift {group_name} {kind}")
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
                        di[0],
                        di[1],
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
        ["group", "model", "beta", "acc_ratio", "acc_ratio_std", "di", "di_std"],
        rows,
    )
    fig = _plot(
        c.groups,
        curves,
        f"drift β (0: {dataset_label(c.dataset).upper()}, 1: {dataset_label(c.drift_target).upper()})",
    )
    results.add_figure(
        folder,
        "drift",
        fig,
        f"DI (top, log axis; values below {style.FLOOR:g}, exact zeros included, drawn at "
        f"{style.FLOOR:g}, dotted line) and accuracy ratio (bottom) against the drift β; "
        f"{over_seeds(c.seeds)}; {error_bars(len(c.seeds))}.",
    )
    n = len(c.seeds)
    summary = [
        [
            g,
            k,
            fmt(*curves[f"{g}/{k}"][-1][1:3], n=n, single=""),
            fmt(*curves[f"{g}/{k}"][-1][3:5], n=n, single=""),
        ]
        for g in c.groups
        for k in KINDS
    ]
    results.add_table(
        folder,
        "drift-summary",
        f"At β = {c.drift_betas[-1]:g}{cells_over(n)}",
        ["group", "model", "acc ratio", "DI"],
        summary,
        tidy=(
            ["group", "model", "beta", "acc_ratio", "acc_ratio_std", "di", "di_std"],
            [[g, k, *curves[f"{g}/{k}"][-1]] for g in c.groups for k in KINDS],
        ),
    )
    return results


@style.styled
def _plot(groups, curves, xlabel: str = "drift β"):
    """DI (log axis: WT and IR sit many decades below DA) above the accuracy ratio, one column
    per group; each curve is ``(β, ratio, ratio std, DI, DI std)`` per β."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(groups), figsize=(style.PAGE, 3.6), sharex=True,
                             sharey="row", squeeze=False)  # fmt: skip
    for j, group_name in enumerate(groups):
        top, bottom = axes[0, j], axes[1, j]
        for kind in ("WT", "DA", "IR"):  # the legend's order in every figure
            curve = curves[f"{group_name}/{kind}"]
            betas = [p[0] for p in curve]
            line = {"color": style.color(kind), "marker": style.marker(kind), "label": kind}
            di, di_std = [p[3] for p in curve], [p[4] for p in curve]
            ratio_std = [p[2] for p in curve]
            # one seed has no spread: plain lines, so the legend shows no error-bar glyphs
            top.errorbar(
                betas,
                style.clip_floor(di),
                style.log_errors(di, di_std) if any(di_std) else None,
                **line,
            )
            bottom.errorbar(betas, [p[1] for p in curve], ratio_std if any(ratio_std) else None,
                            **line)  # fmt: skip
        top.set_yscale("log")
        top.axhline(style.FLOOR, color=style.NEUTRAL, lw=0.6, ls=":")
        top.set_title(group_name)
        bottom.axhline(1.0, color=style.NEUTRAL, lw=0.6, ls=":")
        bottom.set_xlabel(xlabel)
    axes[0, 0].set_ylabel("DI (log)")
    axes[1, 0].set_ylabel("Acc(D(β)) / Acc(D(0))")
    fig.legend(*style.line_handles(axes[0, 0]), loc="upper center", ncol=3,
               bbox_to_anchor=(0.5, 1.02))  # fmt: skip
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig


EXPERIMENT = Experiment("drift", "Invariance under distribution drift", run, work)
