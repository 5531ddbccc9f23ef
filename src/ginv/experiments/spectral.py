"""Experiment 5: spectral decay — ``σmax(J)`` of the input–logit Jacobian for DA and
for IR with each invariance loss (ν calibrated to SI ≥ target), each group."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ginv.experiments import style
from ginv.experiments.experiment import Experiment
from ginv.experiments.kinds import Kind
from ginv.experiments.results import Results, cells_over, error_bars, fmt, mean_std, over_seeds
from ginv.experiments.spec import Measure, Request, Sizes
from ginv.experiments.table import family_requests

if TYPE_CHECKING:
    from pathlib import Path

    from ginv.experiments.config import StudyConfig
    from ginv.experiments.study import Study


TIDY_COLUMNS = ["group", "model", "loss", "nu", "n_seeds", "sigma_max_j", "sigma_max_j_std",
                "spread_over_inputs"]  # fmt: skip


def work(c: StudyConfig, group: str, sizes: Sizes) -> list[Request]:
    """DA and IR with each spectral loss, and their input Jacobians on the test split."""
    n = c.sensitivity_samples or sizes.test
    requests = family_requests(c, group, Kind.DA, c.reg)
    requests.append(Measure("DA σmax(J)", "mlp", len(c.seeds), 0, 0, n, job=True))
    for loss in c.spectral_losses:
        requests += family_requests(c, group, Kind.IR, loss)
        requests.append(Measure(f"IR-{loss} σmax(J)", "mlp", len(c.seeds), 0, 0, n, job=True))
    return requests


def run(study: Study, folder: Path) -> Results:
    """σmax of the input–logit Jacobian (and of each weight matrix) of DA and of IR with
    each spectral loss at its calibrated ν."""
    c = study.config
    results = Results(
        "spectral", "Spectral decay: sensitivity of DA and IR models",
        "σmax of the input–logit Jacobian per test input (mean over inputs, then "
        f"{over_seeds(c.seeds)}), and σmax of each weight matrix. IR losses: "
        f"{', '.join(c.spectral_losses)}.",
    )  # fmt: skip
    rows, weight_rows, bars, tidy = [], [], {}, []
    seeds: dict[tuple[str, str], list[int]] = {}  # what the bars are over, for the caption
    for group_name in c.groups:
        group = study.group(group_name)
        variants = [(Kind.DA, None)] + [(Kind.IR, loss) for loss in c.spectral_losses]
        for kind, loss in variants:
            label = str(kind) if loss is None else f"{kind}-{loss}"
            study.say(f"spectral {group_name} {label}")
            nu = 0.0
            if loss:
                runs, cal = study.ir_family(group_name, loss)
                nu = cal["chosen_nu"]
            else:
                runs = study.family(group_name, kind)
            sigmas, spreads = [], []
            settings = study.measure_settings(
                group, ("sensitivity",), samples=c.sensitivity_samples
            )
            measured = study.measure_runs(runs, settings)
            for r, m in zip(runs, measured, strict=True):
                sigmas.append(m["metrics"]["sensitivity"])
                spreads.append(m["std_over_samples"]["sensitivity"])
                for layer, s in m["weight_sigma_max"].items():
                    weight_rows.append([group_name, label, r.config.seed, layer, round(s, 5)])
            mean, std = mean_std(sigmas)
            bars[(group_name, label)] = (mean, std)
            seeds[(group_name, label)] = [r.config.seed for r in runs]
            spread = sum(spreads) / len(spreads)
            tidy.append([group_name, label, loss or "", nu if loss else "", len(runs), mean, std,
                         spread])  # fmt: skip
            rows.append(
                [
                    group_name,
                    label,
                    f"{nu:g}" if loss else "–",
                    fmt(mean, std, len(runs), single=""),
                    fmt(spread),
                ]
            )
    results.add_table(
        folder,
        "spectral",
        f"σmax(J) per test input{cells_over(len(c.seeds))}",
        ["group", "model", "ν", "σmax(J) (seeds)", "spread over inputs"],
        rows,
        tidy=(TIDY_COLUMNS, tidy),
    )
    results.add_csv(
        folder, "weights", ["group", "model", "seed", "layer", "sigma_max"], weight_rows
    )
    labels = ["DA"] + [f"IR-{loss}" for loss in c.spectral_losses]
    fig = _plot(c.groups, labels, bars)
    results.add_figure(
        folder,
        "spectral",
        fig,
        f"Mean σmax(J) over test inputs; {error_bars(min(len(v) for v in seeds.values()))}.",
    )
    results.data = {f"{g}/{lab}": list(v) for (g, lab), v in bars.items()}
    return results


@style.styled
def _plot(groups, labels, bars):
    """Groups along x, one bar per model (DA, then IR per loss) in that model's colour."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(style.COLUMN, 2.3))
    width = 0.8 / len(labels)
    for k, label in enumerate(labels):
        xs = [j + (k - (len(labels) - 1) / 2) * width for j in range(len(groups))]
        stds = [bars[(g, label)][1] for g in groups]
        ax.bar(xs, [bars[(g, label)][0] for g in groups], width,
               yerr=stds if any(stds) else None, color=style.color(label),
               label=label, ecolor="black", error_kw={"lw": 0.6})  # fmt: skip
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylabel("mean σmax(J) over test inputs")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(labels),
              columnspacing=1.0, handlelength=1.2)  # fmt: skip
    fig.tight_layout()
    return fig


EXPERIMENT = Experiment("spectral", "Spectral decay: sensitivity of DA and IR models", run, work)
