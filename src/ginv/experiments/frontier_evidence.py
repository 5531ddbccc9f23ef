"""Why each input-only method stops where it stops: the frontier's evidence.

At each ``inputs`` method's calibrated point (:func:`ginv.experiments.frontier.calibrated`),
per group:

* **sensitivity**: σmax(J) of the input–logit Jacobian, mean over test inputs, over the
  seeds (the measure of the spectral experiment, from the same cache);
* **where invariance is made**: the invariance error ``‖h(g·x) − h(x)‖² / ‖h(x)‖²`` of every
  layer, input to logits (:func:`ginv.experiments.layers.measure_layers`), first seed;
* **training curves**: validation accuracy and validation SI after every epoch. The first
  seed is trained again with ``track_si`` (``frontier_curve_samples`` validation images,
  the default saliency map): the same run, so the same weights and selected epoch, with SI
  in its history.

The runs are decided by the frontier's results, so none is submitted before it
(``Train(upfront=False)``); they train side by side as one submission.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ginv.errors import GinvError
from ginv.experiments import style
from ginv.experiments.methods import METHODS, Method, look, methods
from ginv.experiments.results import Results, cells_over, fmt, mean_std
from ginv.experiments.spec import Measure, Request, Sizes, Train

if TYPE_CHECKING:
    from pathlib import Path

    from ginv.experiments.config import StudyConfig
    from ginv.experiments.study import Study
    from ginv.runs import Run
    from ginv.training import TrainConfig

COLUMNS = [
    "group", "method", "setting", "uses", "params", "sigma_max_j", "sigma_max_j_std", "n_seeds",
    "selected_epoch", "selected_val_acc", "selected_val_si", "peak_val_si", "peak_val_si_epoch",
    "first_layer_invariance", "logits_invariance",
]  # fmt: skip
"""``frontier-evidence.csv``: one row per group × ``inputs`` method at its calibrated point;
σmax(J) over seeds; the rest from the first seed: the epoch the trainer selected (best
validation accuracy) with its validation accuracy and tracked SI, the highest tracked SI and
its epoch, and the invariance error after the first layer and at the logits."""
CURVE_COLUMNS = ["group", "method", "setting", "epoch", "val_acc", "val_si", "inv", "selected"]
LAYER_COLUMNS = ["group", "method", "setting", "layer", "module", "invariance", "floor"]


def evidence_methods(c: StudyConfig) -> list[Method]:
    """The frontier's methods that know the group only through ``g·x``."""
    return [m for m in methods(c) if m.uses == "inputs"]


def curve_config(c: StudyConfig, config: TrainConfig) -> TrainConfig:
    """``config`` trained again with its validation SI measured after every epoch."""
    return replace(config, track_si=min(c.frontier_curve_samples, config.n_val)).validate()


def work(c: StudyConfig, group: str, sizes: Sizes) -> list[Request]:
    """For ``--plan``: per ``inputs`` method, the curve run (its first setting stands for the
    calibrated one), SI on every epoch, and σmax(J) and the layers of its seeds."""
    requests: list[Request] = []
    n = c.sensitivity_samples or sizes.test
    for m in evidence_methods(c):
        t = next(iter(m.configs(c, group).values()))[0]
        requests += [
            Train(f"{m.name} training curves", (curve_config(c, t),),
                  "the calibrated setting, first seed, SI after every epoch", upfront=False),
            Measure(f"{m.name} training curves: SI per epoch", t.model, 1, 0,
                    curve_config(c, t).track_si * t.epochs, first_width=t.first_width),
            Measure(f"{m.name} σmax(J) and layers", t.model, len(c.seeds), c.layers_samples, 0,
                    n, first_width=t.first_width, job=True),
        ]  # fmt: skip
    return requests


def collect(
    study: Study,
    best: dict[tuple[str, str], dict[str, Any]],
    trained: dict[tuple[str, str, float | None], list[Run]],
) -> list[dict[str, Any]]:
    """The evidence of every ``inputs`` method's calibrated point: one dict per group ×
    method with its row of :data:`COLUMNS`, its ``curve`` and its ``layers``."""
    from ginv.experiments.layers import measure_layers  # the layers experiment's stages

    c = study.config
    picked = [(g, name, r) for (g, name), r in best.items() if METHODS[name].uses == "inputs"]
    runs = {(g, name): trained[(g, name, r["setting"])] for g, name, r in picked}
    study.say(f"frontier evidence: {len(picked)} training curves")
    curves = study.runs([curve_config(c, runs[(g, name)][0].config) for g, name, _ in picked])
    found = []
    for (g, name, r), curve_run in zip(picked, curves, strict=True):
        study.say(f"frontier evidence {g} {name}")
        group = study.group(g)
        settings = study.measure_settings(group, ("sensitivity",), samples=c.sensitivity_samples)
        sigmas = [
            m["metrics"]["sensitivity"] for m in study.measure_runs(runs[(g, name)], settings)
        ]
        first = runs[(g, name)][0]
        images = study.data().test.images[: c.layers_samples].to(study.device)
        try:
            layers = measure_layers(first.model(study.device), images, group,
                                    first.config.model, c.memory_budget_mb)  # fmt: skip
        except GinvError:  # a factory's model, whose layers ginv cannot name: no layer rows
            layers = []
        inv = {x["layer"]: x["invariance"] for x in layers if x["layer"] not in ("input", "canon")}
        sigma, sigma_std = mean_std(sigmas)
        history = curve_run.record["history"]
        selected = curve_run.record["selected_epoch"]
        peak = max(history, key=lambda h: h["val_si"])
        row = {
            "group": g, "method": name, "setting": r["setting"], "uses": r["uses"],
            "params": r["params"], "sigma_max_j": sigma, "sigma_max_j_std": sigma_std,
            "n_seeds": len(sigmas), "selected_epoch": selected,
            "selected_val_acc": history[selected - 1]["val_acc"],
            "selected_val_si": history[selected - 1]["val_si"],
            "peak_val_si": peak["val_si"], "peak_val_si_epoch": peak["epoch"],
            "first_layer_invariance": next(iter(inv.values()), None),
            "logits_invariance": inv.get("logits"),
        }  # fmt: skip
        found.append({"row": row, "curve": history, "layers": layers,
                      "setting_name": r["setting_name"]})  # fmt: skip
    return found


def _error(value: float | None) -> str:
    return "–" if value is None else f"{value:.3g}"


def _label(e: dict[str, Any]) -> str:
    setting = e["row"]["setting"]
    return "" if setting is None else f"{e['setting_name']}={setting:g}"


def add(results: Results, folder: Path, c: StudyConfig, found: list[dict[str, Any]]) -> None:
    """The evidence's table, its curves and layers as CSV, its figure and a note per method."""
    if not found:
        return
    results.add_table(
        folder, "frontier-evidence",
        f"Each input-only method at its calibrated point: σmax(J) of the input–logit "
        f"Jacobian{cells_over(len(c.seeds))}; from the first seed's training curve "
        f"(validation SI on {c.frontier_curve_samples} images after every epoch), SI at the "
        "epoch selected by validation accuracy and the highest SI reached; the invariance "
        "error after the first layer and at the logits.",
        ["group", "method", "setting", "params", "σmax(J)", "selected epoch", "val acc %",
         "val SI then", "peak val SI (epoch)", "first layer inv.", "logits inv."],
        [[r["group"], r["method"], _label(e), f"{r['params']:,}",
          fmt(r["sigma_max_j"], r["sigma_max_j_std"], r["n_seeds"], single=""),
          str(r["selected_epoch"]), fmt(100 * r["selected_val_acc"]), fmt(r["selected_val_si"]),
          f"{fmt(r['peak_val_si'])} ({r['peak_val_si_epoch']})",
          _error(r["first_layer_invariance"]), _error(r["logits_invariance"])]
         for e in found for r in [e["row"]]],
        tidy=(COLUMNS, [[e["row"][k] for k in COLUMNS] for e in found]),
    )  # fmt: skip
    results.add_csv(folder, "frontier-curves", CURVE_COLUMNS, [
        [e["row"]["group"], e["row"]["method"], e["row"]["setting"], h["epoch"], h["val_acc"],
         h["val_si"], h["inv"], h["epoch"] == e["row"]["selected_epoch"]]
        for e in found for h in e["curve"]
    ])  # fmt: skip
    results.add_csv(folder, "frontier-layers", LAYER_COLUMNS, [
        [e["row"]["group"], e["row"]["method"], e["row"]["setting"], x["layer"], x["module"],
         x["invariance"], x["floor"]]
        for e in found for x in e["layers"]
    ])  # fmt: skip
    results.finishing("the evidence's notes", lambda: results.notes.extend(notes(found)))
    results.finishing("the evidence's figure", lambda: results.add_figure(
        folder, "frontier-evidence", _plot(found, c.si_target),
        f"Each input-only method at its calibrated point, first seed. Left: validation "
        f"accuracy after every epoch; middle: validation SI after every epoch (on "
        f"{c.frontier_curve_samples} images; dashed: the target {c.si_target:g}), the "
        "selected epoch marked; right: the invariance error of every layer, first to logits "
        f"(log axis, values below {style.FLOOR:g} drawn at {style.FLOOR:g}).",
    ))  # fmt: skip


def notes(found: list[dict[str, Any]]) -> list[str]:
    """Per method, where its curve and its layers leave it, beside DA's sensitivity."""
    da = {e["row"]["group"]: e["row"]["sigma_max_j"] for e in found if e["row"]["method"] == "DA"}
    out = []
    for e in found:
        r = e["row"]
        ratio = f" ({r['sigma_max_j'] / da[r['group']]:.2g}× DA's)" if r["group"] in da else ""
        out.append(
            f"{r['group']} {r['method']}{' ' + _label(e) if _label(e) else ''}: σmax(J) "
            f"{fmt(r['sigma_max_j'])}{ratio}; validation SI {fmt(e['curve'][0]['val_si'])} "
            f"after epoch 1, {fmt(r['selected_val_si'])} at the selected epoch "
            f"{r['selected_epoch']}, at most {fmt(r['peak_val_si'])} (epoch "
            f"{r['peak_val_si_epoch']})"
            + ("" if r["logits_invariance"] is None else
               f"; invariance error {_error(r['first_layer_invariance'])} after the first "
               f"layer, {_error(r['logits_invariance'])} at the logits")
            + "."
        )  # fmt: skip
    return out


@style.styled
def _plot(found: list[dict[str, Any]], target: float):
    """Rows: groups; columns: validation accuracy and SI against the epoch, and the
    invariance error layer by layer; one line per method, in the frontier's looks."""
    import matplotlib.pyplot as plt

    groups = list(dict.fromkeys(e["row"]["group"] for e in found))
    fig, axes = plt.subplots(len(groups), 3, figsize=(style.PAGE, 2.3 * len(groups) + 0.4),
                             squeeze=False)  # fmt: skip
    for row, g in zip(axes, groups, strict=True):
        for e in (e for e in found if e["row"]["group"] == g):
            name, history = e["row"]["method"], e["curve"]
            color, mark, line = look(name)
            epochs = [h["epoch"] for h in history]
            sel = e["row"]["selected_epoch"] - 1
            for ax, key in ((row[0], "val_acc"), (row[1], "val_si")):
                scale = 100 if key == "val_acc" else 1
                ax.plot(epochs, [scale * h[key] for h in history], color=color, ls=line, lw=0.9,
                        marker=mark, markevery=[sel], ms=4, label=name)  # fmt: skip
            layers = [x for x in e["layers"] if x["layer"] != "input"]
            row[2].plot([x["layer"] for x in layers],
                        style.clip_floor([x["invariance"] for x in layers]), color=color,
                        marker=mark, ls=line, lw=0.9, ms=3, label=name)  # fmt: skip
        row[1].axhline(target, color=style.NEUTRAL, lw=0.7, ls="--")
        row[2].set_yscale("log")
        row[0].set_ylabel(f"{g}\nval. orbit accuracy (%)")
        row[1].set_ylabel("validation SI")
        row[2].set_ylabel("invariance error (log)")
        row[2].tick_params(axis="x", labelrotation=45)
    for ax in axes[-1, :2]:
        ax.set_xlabel("epoch")
    axes[-1, 2].set_xlabel("layer")
    fig.legend(*style.line_handles(axes[0, 0]), loc="lower center", ncol=5,
               bbox_to_anchor=(0.5, 1.0))  # fmt: skip
    fig.tight_layout()
    return fig
