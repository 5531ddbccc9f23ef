"""The accuracy–SI frontier of invariance learning: every way ginv knows to make the MLP
invariant, trained and selected alike and measured on the same test orbit.

Methods, one row per group × method × setting (:func:`methods`):

* ``DA``, ``WT``: the study's runs.
* ``IR-logit``, ``IR-kl``, ``IR-nlogit``, ``IR-jsd``: IR with each output loss, at the ν of
  ``frontier_nus_<loss>``.
* ``orbit-average``: the DA runs averaged over the orbit, exact by construction, ``|G|``
  forward passes.
* ``canonicalise``: the ``canon`` model, a learned pose picked by a small scorer, then the
  MLP; exact by construction, ``|G|`` scorer passes and one MLP pass.
* ``orbit``, ``orbit-wide``: the MLP with the orbit-structure regulariser
  (:mod:`ginv.regularizers.orbit_structure`) at the ``lr·ν`` of ``frontier_orbit_rates``;
  ``orbit-wide`` gives the first layer ``|G|·width`` units, the capacity of WT's first layer.
* ``IR-saliency``: the input-gradient penalty (:mod:`ginv.regularizers.saliency`).
* ``IR-distill``, ``IR-warmup``, ``IR-features``, ``IR-late``, ``IR-teacher``,
  ``IR-vicinal``: distillation towards the orbit-averaged prediction, the logit IR with a ν
  warm-up, scale-free IR on the penultimate features, the logit IR switched on halfway,
  distillation from the orbit-averaged DA run of the same seed (on logits, and on the mixed
  images too: ``IR-teacher-logit``, ``IR-teacher-vicinal``), the logit IR also on mixed
  images (:mod:`ginv.regularizers.distill`, ``.warmup``, ``.features``, ``.teacher``,
  ``.vicinal``), at ``frontier_nus_<name>``.

Each method says what it knows of the group (``uses``, :data:`ginv.regularizers.Uses`):
``inputs`` (DA and every IR: only ``g·x``), ``weights`` (the orbit structure), ``wrapper``
(orbit averaging, canonicalisation) or ``architecture`` (WT).

DA, every IR and the orbit structure are single-pass: one forward pass of an unconstrained
MLP. Every run uses the study's data, epochs and seeds and the trainer's
best-validation-accuracy epoch. A method's
**calibrated point** is, among its settings whose validation SI (mean over seeds) reaches
``si_target``, the one with the highest validation accuracy; where none does, the setting
with the highest validation SI, flagged. Test numbers never choose anything.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch

from ginv.data import dataset_label
from ginv.experiments import frontier_evidence, style
from ginv.experiments.drift import accuracy_and_di, drift_mismatch, drift_splits
from ginv.experiments.experiment import Experiment
from ginv.experiments.kinds import Kind
from ginv.experiments.methods import METHODS, Method, look, methods, reference
from ginv.experiments.results import Results, cells_over, error_bars, fmt, mean_std, over_seeds
from ginv.experiments.spec import Measure, Request, Sizes, Train
from ginv.experiments.table import family_metrics, test_settings
from ginv.flops import forward_flops
from ginv.groups import get_group

if TYPE_CHECKING:
    from pathlib import Path

    from ginv.experiments.config import StudyConfig
    from ginv.experiments.study import Study
    from ginv.runs import Run

COLUMNS = ("accuracy", "li", "di", "val_si", "si", "val_acc")
TIDY_COLUMNS = [
    "group", "method", "setting", *(f"{k}{s}" for k in COLUMNS for s in ("", "_std")),
    "inference_flops", "params", "single_pass", "uses", "n_seeds",
]  # fmt: skip
"""``frontier.csv``: one row per group × method × setting; means and stds over seeds;
``setting`` is ν (``lr·ν`` for the orbit methods), empty where a method has none;
``inference_flops`` per image; ``uses`` what the method knows of the group; ``val_acc`` is
what selects the calibrated point."""


def _cost(study: Study, run: Run, wrapper: str | None) -> tuple[float, int]:
    """Inference FLOPs per image and parameter count of a run's (wrapped) model."""
    model = run.model(torch.device("cpu"), wrapper)
    shape = tuple(study.data().test.images.shape[1:])
    return forward_flops(model, shape), sum(p.numel() for p in model.parameters())


def _row(
    study: Study, group: str, method: Method, setting: float, runs: list[Run]
) -> dict[str, Any]:
    values = family_metrics(study, group, runs, method.wrapper)
    points = [study.validation_point(r, method.wrapper) for r in runs]
    values["val_si"] = [p.si for p in points]
    values["val_acc"] = [p.val_acc for p in points]
    flops, params = _cost(study, runs[0], method.wrapper)
    row: dict[str, Any] = {
        "group": group, "method": method.name,
        "setting": None if math.isnan(setting) else setting,
        "setting_name": method.setting_name if method.settings else "",
        "seeds": [r.config.seed for r in runs], "per_seed": values,
        "inference_flops": flops, "params": params, "single_pass": method.single_pass,
        "uses": method.uses, "runs": [r.config.key() for r in runs],
    }  # fmt: skip
    for k in COLUMNS:
        row[k], row[f"{k}_std"] = mean_std(values[k])
    return row


def calibrated(rows: list[dict[str, Any]], target: float) -> dict[str, Any]:
    """One method's calibrated point among its rows (one per setting): the highest validation
    accuracy among those whose validation SI reaches ``target``, else the highest validation
    SI; ``reached`` says which."""
    reaching = [r for r in rows if r["val_si"] >= target]
    if reaching:
        return {**max(reaching, key=lambda r: r["val_acc"]), "reached": True}
    return {**max(rows, key=lambda r: r["val_si"]), "reached": False}


def _tidy(row: dict[str, Any]) -> list[Any]:
    setting = "" if row["setting"] is None else row["setting"]
    return [
        row["group"], row["method"], setting,
        *(row[f"{k}{s}"] for k in COLUMNS for s in ("", "_std")),
        row["inference_flops"], row["params"], row["single_pass"], row["uses"],
        len(row["seeds"]),
    ]  # fmt: skip


def _setting_label(row: dict[str, Any]) -> str:
    return "" if row["setting"] is None else f"{row['setting_name']}={row['setting']:g}"


def work(c: StudyConfig, group: str, sizes: Sizes) -> list[Request]:
    """Every method's runs over its settings and seeds, their test and validation measures,
    the drift measures of the calibrated points, and the evidence of the input-only ones
    (:mod:`ginv.experiments.frontier_evidence`)."""
    requests: list[Request] = []
    order = len(get_group(group))
    for m in methods(c):
        configs = tuple(t for ts in m.configs(c, group).values() for t in ts)
        settings = f"{len(m.values(c))} settings × " if m.settings else ""
        # a method that distils from other runs (IR-teacher) trains once they are finished
        upfront = not any(t.teacher for t in configs)
        requests.append(Train(m.name, configs, f"{settings}{len(c.seeds)} seeds", upfront))
        t = configs[0]
        copies = order if m.wrapper == "orbit-average" else 1
        requests += [
            Measure(f"{m.name} test + validation measures", t.model, len(configs),
                    sizes.test + sizes.val, (c.si_samples or sizes.test) + sizes.val,
                    first_width=t.first_width, copies=copies),
            Measure(f"{m.name} drift measures", t.model, len(c.seeds),
                    (c.drift_samples or sizes.test) * len(c.drift_betas), 0,
                    first_width=t.first_width, copies=copies),
        ]  # fmt: skip
    return requests + frontier_evidence.work(c, group, sizes)


def run(study: Study, folder: Path) -> Results:
    """Train every method at every setting, measure it on the test orbit, pick each method's
    calibrated point on the validation orbit, and draw the frontier and its drift curves."""
    c = study.config
    target = c.si_target
    results = Results(
        "frontier", "The accuracy–SI frontier of invariance learning",
        f"Every method trained on the same data ({c.train.n_train} samples, {c.epochs} epochs, "
        f"seeds {', '.join(map(str, c.seeds))}, best-validation epoch) and measured on the same "
        f"test orbit ({c.test_samples or 'all'} samples; SI on {c.si_samples or 'all'}); "
        f"{over_seeds(c.seeds)}. The calibrated point of a method is its setting of highest validation accuracy "
        f"among those whose validation SI reaches {target}; the test set chooses nothing.",
    )  # fmt: skip
    rows: list[dict[str, Any]] = []
    # (group, method, setting: None where it has none) → the finished runs over the seeds
    trained: dict[tuple[str, str, float | None], list[Run]] = {}
    for group in c.groups:
        plan = {m.name: m.configs(c, group) for m in methods(c)}
        study.say(f"frontier {group}: training")
        # all at once, so that every method's settings and seeds train as one batched model;
        # then the runs that distil from those (their teachers: DA's runs)
        every = [cfg for per in plan.values() for cfgs in per.values() for cfg in cfgs]
        study.runs([cfg for cfg in every if not cfg.teacher])
        study.runs([cfg for cfg in every if cfg.teacher])
        for m in methods(c):  # with SLURM, every family's test measures as jobs at once
            for setting, configs in plan[m.name].items():
                runs = study.runs(configs)  # finished above: read from the cache
                trained[(group, m.name, None if math.isnan(setting) else setting)] = runs
                study.submit_measures(runs, test_settings(study, group, m.wrapper))
        for m in methods(c):
            for setting in plan[m.name]:
                study.say(f"frontier {group} {m.name} {setting:g}")
                key = None if math.isnan(setting) else setting
                rows.append(_row(study, group, m, setting, trained[(group, m.name, key)]))
    best = {
        (g, m.name): calibrated([r for r in rows if r["group"] == g and r["method"] == m.name], target)
        for g in c.groups for m in methods(c)
    }  # fmt: skip
    drift = _drift(study, best, trained)
    evidence = frontier_evidence.collect(study, best, trained)
    printed, tidy = _calibrated_table(c.groups, best)
    results.add_table(
        folder, "frontier-table",
        f"Each method at its calibrated point (validation SI ≥ {target}, else its highest); "
        f"gap: accuracy minus DA's, in points (same size: minus DA at the method's capacity, "
        f"DA-wide for the -wide methods); FLOPs per image at inference{cells_over(len(c.seeds))}.",
        ["group", "method", "setting", "accuracy %", "gap to DA", "gap, same size", "SI",
         "val SI", "LI", "params",
         "MFLOP", "single pass", "uses", "val SI ≥ target"],
        printed, tidy=(CALIBRATED_COLUMNS, tidy),
    )  # fmt: skip
    results.add_table(
        folder, "frontier", "Every method and setting (means over seeds)",
        ["group", "method", "setting", "accuracy %", "SI", "val SI", "LI", "DI"],
        [[r["group"], r["method"], _setting_label(r), fmt(100 * r["accuracy"]), fmt(r["si"]),
          fmt(r["val_si"]), fmt(r["li"]), fmt(r["di"])] for r in rows],
        tidy=(TIDY_COLUMNS, [_tidy(r) for r in rows]),
    )  # fmt: skip
    results.add_csv(
        folder, "frontier-drift", ["group", "method", "beta", "acc_ratio", "acc_ratio_std",
                                   "di", "di_std"],
        [[g, m, *p] for (g, m), curve in drift.items() for p in curve],
    )  # fmt: skip
    results.data = {
        "rows": rows,
        "calibrated": [best[k] for k in best],
        "drift": {f"{g}/{m}": curve for (g, m), curve in drift.items()},
        "goal": _goal(c.groups, best),
        "evidence": [e["row"] for e in evidence],
    }
    # the tables are written: nothing below may lose them
    results.finishing("the notes", lambda: results.notes.extend(_notes(c.groups, best, target)))
    results.finishing("the figures", lambda: _figures(results, folder, c, rows, drift, target))
    frontier_evidence.add(results, folder, c, evidence)
    return results


def _figures(results: Results, folder: Path, c: StudyConfig, rows, drift, target: float) -> None:
    results.add_figure(
        folder, "frontier", _plot_frontier(c.groups, rows, target),
        f"Test orbit accuracy against test SI per group (below: zoomed on SI ≥ "
        f"{target - 0.1:g}): each method's settings joined in order of strength, "
        f"{over_seeds(c.seeds)}; {error_bars(len(c.seeds))}; the dashed line is SI = {target}. Hollow markers: the wrappers, which "
        "take more than one pass.",
    )  # fmt: skip
    if not drift:  # no drift target for this dataset (the drift experiment's note says so)
        return
    results.add_figure(
        folder, "frontier-drift", _plot_drift(c.groups, drift, [m.name for m in methods(c)]),
        f"DI under drift D(β) ({dataset_label(c.dataset)} → {dataset_label(c.drift_target)}, "
        f"'{c.drift_mode}') of each method at its "
        f"calibrated point, {'mean over seeds (stds in frontier-drift.csv)' if len(c.seeds) > 1 else over_seeds(c.seeds)}; log axis, values "
        f"below {style.FLOOR:g} (exact zeros) drawn at {style.FLOOR:g}.",
    )  # fmt: skip


CALIBRATED_COLUMNS = [*TIDY_COLUMNS, "gap_to_da_points", "gap_same_size_points", "val_si_reached"]
"""``frontier-table.csv``: the calibrated points; ``gap_to_da_points`` against the MLP's DA,
``gap_same_size_points`` against DA of the method's own capacity (``DA-wide`` for the wide
methods; empty where that DA was not run)."""


def _same_size_gap(g: str, r: dict[str, Any], best: dict[Any, dict[str, Any]]) -> float | None:
    """Accuracy minus that of DA at the method's capacity, in points (None: not run)."""
    ref = best.get((g, reference(METHODS[r["method"]])))
    return None if ref is None else 100 * (r["accuracy"] - ref["accuracy"])


def _calibrated_table(groups, best) -> tuple[list[list[Any]], list[list[Any]]]:
    """The calibrated points as printed rows and as ``frontier-table.csv`` rows."""
    printed, tidy = [], []
    for g in groups:
        da = best[(g, "DA")]["accuracy"]
        for (group, _), r in best.items():
            if group != g:
                continue
            gap = 100 * (r["accuracy"] - da)
            same = _same_size_gap(g, r, best)
            n = len(r["seeds"])
            printed.append([
                g, r["method"], _setting_label(r), fmt(100 * r["accuracy"], 100 * r["accuracy_std"], n, single=""),
                fmt(gap, signed=True), "" if same is None else fmt(same, signed=True),
                fmt(r["si"]), fmt(r["val_si"]), fmt(r["li"]),
                f"{r['params']:,}", fmt(r["inference_flops"] / 1e6),
                "yes" if r["single_pass"] else "no", r["uses"], "yes" if r["reached"] else "no",
            ])  # fmt: skip
            tidy.append([*_tidy(r), gap, "" if same is None else same, r["reached"]])
    return printed, tidy


def _goal(groups, best) -> dict[str, Any]:
    """Per group, the single-pass method closest to DA with validation SI ≥ target, and
    whether it is within one point of DA's test accuracy (the issue's goal)."""
    goal = {}
    for g in groups:
        da = best[(g, "DA")]["accuracy"]
        reached = [r for (group, _), r in best.items()
                   if group == g and r["single_pass"] and r["reached"]]  # fmt: skip
        top = max(reached, key=lambda r: r["accuracy"]) if reached else None
        goal[g] = None if top is None else {
            "method": top["method"], "setting": top["setting"],
            "gap_points": 100 * (top["accuracy"] - da), "met": 100 * (top["accuracy"] - da) >= -1,
        }  # fmt: skip
    return goal


def _setting_text(top: dict[str, Any]) -> str:
    """`` (ν = 3)`` after a method's name; nothing for a method without settings (DA)."""
    if top["setting"] is None:
        return ""
    return f" ({METHODS[top['method']].setting_name} = {top['setting']:g})"


def _notes(groups, best, target) -> list[str]:
    notes = []
    for g, top in _goal(groups, best).items():
        if top is None:
            notes.append(f"{g}: no single-pass method reaches validation SI ≥ {target}.")
        else:
            verdict = "the goal is met" if top["met"] else "more than 1 point below DA"
            notes.append(
                f"{g}: the best single-pass method at validation SI ≥ {target} is {top['method']}"
                f"{_setting_text(top)}, {fmt(top['gap_points'], signed=True)} points from DA: {verdict}."
            )
    for (g, name), r in best.items():
        if METHODS[name].exact:
            notes.append(
                f"{g} {name} (exact by construction): LI {fmt(r['li'])}, DI {fmt(r['di'])}, "
                f"1 − SI {fmt(1 - r['si'])}."
            )
    return notes


def _drift(study: Study, best, trained) -> dict[tuple[str, str], list[tuple[Any, ...]]]:
    """DI and the accuracy ratio against β of each method at its calibrated point."""
    c = study.config
    if drift_mismatch(study) is not None:
        return {}  # the note is the drift experiment's; the frontier draws no drift curves
    splits = drift_splits(study)
    curves = {}
    for (g, name), r in best.items():
        study.say(f"frontier drift {g} {name}")
        group = study.group(g)
        wrapper = METHODS[name].wrapper
        per_seed = []
        for run in trained[(g, name, r["setting"])]:
            model = run.model(study.device, wrapper)
            values = {
                b: accuracy_and_di(model, s.images, s.labels, group) for b, s in splits.items()
            }
            base = values[c.drift_betas[0]][0]
            per_seed.append({b: (acc / base, di) for b, (acc, di) in values.items()})
        curves[(g, name)] = [
            (b, *mean_std([p[b][0] for p in per_seed]), *mean_std([p[b][1] for p in per_seed]))
            for b in c.drift_betas
        ]
    return curves


@style.styled
def _plot_frontier(groups, rows, target):
    """Accuracy against SI per group: the whole range above, and below the range from
    ``target − 0.1`` up, where the methods that reach the target crowd together."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(groups), figsize=(style.PAGE, 5.0), squeeze=False)
    names = list(dict.fromkeys(r["method"] for r in rows))
    for j, g in enumerate(groups):
        for ax in axes[:, j]:
            for name in names:
                points = sorted((r for r in rows if r["group"] == g and r["method"] == name),
                                key=lambda r: r["setting"] or 0.0)  # fmt: skip
                color, mark, line = look(name)
                filled = points[0]["single_pass"] or name == Kind.WT
                ax.errorbar(
                    [p["si"] for p in points], [100 * p["accuracy"] for p in points],
                    xerr=[p["si_std"] for p in points],
                    yerr=[100 * p["accuracy_std"] for p in points], color=color, marker=mark,
                    ls=line, label=name, ms=5 if mark == "*" else 4,
                    mfc=color if filled else "white", lw=0.9, elinewidth=0.5,
                )  # fmt: skip
            ax.axvline(target, color=style.NEUTRAL, lw=0.7, ls="--")
        near = [100 * r["accuracy"] for r in rows if r["group"] == g and r["si"] >= target - 0.1]
        zoom = axes[1, j]
        zoom.set_xlim(target - 0.1, 1.005)
        if near:
            zoom.set_ylim(min(near) - 0.5, max(near) + 0.5)
        axes[0, j].set_title(g)
        zoom.set_xlabel("SI (test orbit)")
        zoom.set_title(f"{g}, SI ≥ {target - 0.1:g}")
    for ax in axes[:, 0]:
        ax.set_ylabel("test orbit accuracy (%)")
    return _legend_above(fig, axes[0, 0])


@style.styled
def _plot_drift(groups, curves, names):
    """DI against β at each method's calibrated point, means over seeds (on a log axis, error
    bars of seeds whose DI spans decades would hide the curves)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(groups), figsize=(style.PAGE, 2.6), squeeze=False,
                             sharey=True)  # fmt: skip
    for ax, g in zip(axes[0], groups, strict=True):
        for name in names:
            curve = curves[(g, name)]
            color, mark, line = look(name)
            ax.plot([p[0] for p in curve], style.clip_floor([p[3] for p in curve]),
                    color=color, marker=mark, ls=line, label=name, lw=0.9)  # fmt: skip
        ax.set_yscale("log")
        ax.axhline(style.FLOOR, color=style.NEUTRAL, lw=0.6, ls=":")
        ax.set_xlabel("drift β")
        ax.set_title(g)
    axes[0, 0].set_ylabel("DI (log)")
    return _legend_above(fig, axes[0, 0])


def _legend_above(fig, ax):
    """One legend for every panel, above them (the methods are the same in each)."""
    fig.legend(*style.line_handles(ax), loc="lower center", ncol=6,
               bbox_to_anchor=(0.5, 1.0))  # fmt: skip
    fig.tight_layout()
    return fig


EXPERIMENT = Experiment(
    "frontier", "The accuracy–SI frontier of invariance learning", run, work, in_all=False
)
