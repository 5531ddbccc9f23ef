"""WT's accuracy gap: its training curves beside DA's, and WT trained otherwise than the
protocol says, as an ablation beside the protocol's row (which stays the protocol's).

Each variant in ``wt_variants`` changes WT's training settings (``pool=max``: max instead of
mean pooling over the group; ``epochs=100``; ``lr=0.0002``; several joined by ``+``), every
other setting the study's. Every model keeps its best-validation epoch, as the protocol's
do. The table gives the test accuracy (and LI, DI: every variant is exactly invariant),
the selected epoch and, at that epoch and at the last, the validation accuracy and the
training cross-entropy: a model that fits its training orbit early and then stops
improving on validation selects an early epoch with a training loss far below the
validation error. Not in ``reproduce all``: ``ginv reproduce wt-ablation``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ginv.experiments import style
from ginv.experiments.experiment import Experiment
from ginv.experiments.kinds import Kind
from ginv.experiments.results import Results, cells_over, fmt, fmt_over, mean_std, over_seeds
from ginv.experiments.spec import Measure, Request, Sizes, Train
from ginv.experiments.table import family_metrics, family_requests, test_measures

if TYPE_CHECKING:
    from pathlib import Path

    from ginv.experiments.config import StudyConfig
    from ginv.experiments.study import Study
    from ginv.runs import Run
    from ginv.training import TrainConfig

MEASURES = ("accuracy", "li", "di")  # a variant's: forward passes only (every WT has SI 1)
PROTOCOL = "protocol"
TIDY_COLUMNS = ["group", "model", "variant", "n_seeds", "accuracy", "accuracy_std", "li", "di",
                "selected_epoch", "epochs", "val_acc_selected", "val_acc_last",
                "train_ce_selected", "train_ce_last"]  # fmt: skip


def variant_configs(c: StudyConfig, group: str, variant: str) -> tuple[TrainConfig, ...]:
    """WT's runs over the study's seeds with ``variant``'s overrides (``key=value``, several
    joined by ``+``) applied to the study's training settings."""
    changed = c.with_overrides(variant.split("+"))
    return tuple(changed.run(group, Kind.WT, s) for s in c.seeds)


def work(c: StudyConfig, group: str, sizes: Sizes) -> list[Request]:
    """WT and DA as the table trains them, each WT variant, and their test measures."""
    requests: list[Request] = []
    for kind in (Kind.WT, Kind.DA):  # as the table trains and measures them
        requests += family_requests(c, group, kind, c.reg)
        requests.append(test_measures(c, group, kind, sizes))
    for variant in c.wt_variants:
        requests.append(Train(f"WT {variant}", variant_configs(c, group, variant)))
        requests.append(Measure(f"WT {variant} test accuracy", c.model_of(Kind.WT),
                                len(c.seeds), sizes.test, job=True))  # fmt: skip
    return requests


def curve(run: Run) -> dict[str, Any]:
    """One run's history read for the ablation: per-epoch validation accuracy and training
    cross-entropy, the selected epoch and the values at it and at the last epoch."""
    history = run.record.get("history") or []
    epochs = [int(h["epoch"]) for h in history]
    val = [float(h["val_acc"]) for h in history]
    ce = [float(h["ce"]) for h in history]
    selected = int(run.record["selected_epoch"])
    at = epochs.index(selected) if selected in epochs else len(epochs) - 1
    return {"epochs": epochs, "val_acc": val, "ce": ce, "selected": selected,
            "val_selected": val[at], "val_last": val[-1], "ce_selected": ce[at], "ce_last": ce[-1]}  # fmt: skip


def run(study: Study, folder: Path) -> Results:
    """Train (or find) WT, DA and every WT variant per group, measure their test accuracy,
    and tabulate and draw their curves."""
    c = study.config
    results = Results(
        "wt-ablation", "WT's accuracy gap: curves and ablations",
        f"WT as the protocol trains it, each variant ({', '.join(c.wt_variants) or 'none'}) "
        f"and DA for reference; test orbit ({c.test_samples or 'all'} samples), "
        f"{over_seeds(c.seeds)}. Every model keeps its best-validation epoch; the training "
        "cross-entropy is the epoch's mean over its (augmented, for DA) batches.",
    )  # fmt: skip
    rows, tidy, curves = [], [], {}
    for group_name in c.groups:
        families: list[tuple[str, str, list[Run]]] = [
            ("WT", PROTOCOL, study.family(group_name, Kind.WT)),
            ("DA", PROTOCOL, study.family(group_name, Kind.DA)),
        ]
        families += [("WT", v, study.runs(variant_configs(c, group_name, v)))
                     for v in c.wt_variants]  # fmt: skip
        settings = study.measure_settings(group_name, MEASURES, samples=c.test_samples)
        for model, variant, runs in families:
            study.say(f"wt-ablation {group_name} {model} {variant}")
            if variant == PROTOCOL:  # the table's measures, shared with it
                values = family_metrics(study, group_name, runs)
            else:
                measured = study.measure_runs(runs, settings)
                values = {k: [m["metrics"][k] for m in measured] for k in MEASURES}
            acc = values["accuracy"]
            li, di = mean_std(values["li"])[0], mean_std(values["di"])[0]
            per_run = [curve(r) for r in runs]
            curves[(group_name, model, variant)] = per_run
            got = {k: [p[k] for p in per_run] for k in per_run[0]}
            mean, std = mean_std(acc)
            tidy.append([group_name, model, variant, len(runs), mean, std, li, di,
                         mean_std(got["selected"])[0], runs[0].config.epochs,
                         mean_std(got["val_selected"])[0], mean_std(got["val_last"])[0],
                         mean_std(got["ce_selected"])[0], mean_std(got["ce_last"])[0]])  # fmt: skip
            rows.append([group_name, model, variant, fmt_over(acc, single=""), fmt(li), fmt(di),
                         ", ".join(str(e) for e in got["selected"]) + f" of {runs[0].config.epochs}",
                         fmt_over(got["val_selected"], single=""),
                         fmt_over(got["val_last"], single=""),
                         fmt_over(got["ce_selected"], single=""),
                         fmt_over(got["ce_last"], single="")])  # fmt: skip
    results.add_table(
        folder, "wt-ablation", f"WT's variants beside the protocol's WT and DA{cells_over(len(c.seeds))}",
        ["group", "model", "variant", "test accuracy", "LI", "DI", "selected epoch (per seed)",
         "val acc (selected)", "val acc (last)", "train CE (selected)", "train CE (last)"],
        rows, tidy=(TIDY_COLUMNS, tidy),
    )  # fmt: skip
    results.add_figure(
        folder, "curves", _plot(c.groups, curves),
        "Validation accuracy (top) and training cross-entropy (bottom, log scale) per epoch, "
        "mean over seeds; a dot marks each seed's selected (best-validation) epoch.",
    )  # fmt: skip
    results.data = {"rows": [dict(zip(TIDY_COLUMNS, r, strict=True)) for r in tidy]}
    return results


@style.styled
def _plot(groups, curves):
    """One column per group: validation accuracy above, training CE below, per family."""
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(2, len(groups), figsize=(style.COLUMN * len(groups), 4.2),
                             sharex="col", squeeze=False)  # fmt: skip
    for j, group in enumerate(groups):
        top, bottom = axes[0][j], axes[1][j]
        keys = [k for k in curves if k[0] == group]
        for i, key in enumerate(keys):
            per_run = curves[key]
            n = min(len(p["epochs"]) for p in per_run)
            epochs = per_run[0]["epochs"][:n]
            label = key[1] if key[2] == PROTOCOL else f"WT, {key[2]}"
            colour = style.color(key[1]) if key[2] == PROTOCOL else f"C{i}"
            for ax, k in ((top, "val_acc"), (bottom, "ce")):
                mean = np.mean([p[k][:n] for p in per_run], axis=0)
                ax.plot(epochs, mean, color=colour, lw=0.9, label=label)
                for p in per_run:
                    at = min(p["selected"], n) - 1
                    ax.plot([epochs[at]], [p[k][at]], "o", ms=2.5, color=colour)
        top.set_title(group)
        top.set_ylabel("validation accuracy")
        bottom.set_ylabel("training cross-entropy")
        bottom.set_yscale("log")
        bottom.set_xlabel("epoch")
        lows = [min(p["val_acc"][len(p["val_acc"]) // 10:] or p["val_acc"])
                for k, v in curves.items() if k[0] == group for p in v]  # fmt: skip
        top.set_ylim(max(0.0, min(lows) - 0.01), None)  # the end of the curves, not epoch 1
    axes[0][0].legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    return fig


def summary(data: dict[str, Any]) -> list[str]:
    """Per group and family: test accuracy and selected epoch, for the terminal."""
    return [f"{r['group']} {r['model']} {r['variant']}: accuracy {fmt(r['accuracy'], r['accuracy_std'], r['n_seeds'], single='')}, "
            f"selected epoch {r['selected_epoch']:.0f} of {r['epochs']}" for r in data.get("rows", [])]  # fmt: skip


EXPERIMENT = Experiment("wt-ablation", "WT's accuracy gap: curves and ablations", run, work,
                        in_all=False, summary=summary)  # fmt: skip
