"""Calibrating ν (SPEC §4): the smallest ν on a log scale whose validation SI reaches the target.

The grid trains as one batched model; SI and accuracy are measured on the validation orbit.
While no ν reaches the target, the search extends the grid upwards (1-3-10 steps, four values
a round, one batched model each) up to ``nu_max``: the invariance losses live on different
scales (a KL is far smaller than a squared logit distance). If still no ν reaches the
target, the results say so and the ν with the highest SI is used.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt

from ginv.experiments.results import Results, save_figure
from ginv.training.checkpoint import atomic_write_json

if TYPE_CHECKING:
    from ginv.experiments.study import Study


def choose_nu(curve: list[dict[str, float]], target: float) -> tuple[float, bool]:
    """The smallest ν with SI ≥ target, and whether one exists (else the ν of highest SI)."""
    reached = [p for p in curve if p["si"] >= target]
    if reached:
        return min(p["nu"] for p in reached), True
    return max(curve, key=lambda p: p["si"])["nu"], False


def next_log_values(above: float, count: int, limit: float) -> list[float]:
    """The next ``count`` values of the 1-3-10 log scale above ``above``, up to ``limit``."""
    values: list[float] = []
    decade = 10.0 ** math.floor(math.log10(above))
    while len(values) < count:
        for mantissa in (1.0, 3.0):
            v = float(f"{mantissa * decade:.6g}")
            if v > above * (1 + 1e-9) and len(values) < count:
                values.append(v)
        decade *= 10
    return [v for v in values if v <= limit * (1 + 1e-9)]


def _measure_grid(
    study: Study, group_name: str, loss: str, nus: list[float]
) -> list[dict[str, float]]:
    c = study.config
    group = study.group(group_name)
    configs = [
        study.train_config(group_name, "IR", c.calibration_seed, loss, nu, c.calibration_epochs)
        for nu in nus
    ]
    curve = []
    for nu, run in zip(nus, study.runs(configs), strict=True):
        m = study.measure_run(
            run, group, ("accuracy", "si"), split="val",
            samples=c.calibration_val_samples, si_samples=c.calibration_val_samples,
        )  # fmt: skip
        curve.append({"nu": nu, "val_acc": m["metrics"]["accuracy"], "si": m["metrics"]["si"]})
    return curve


def calibrate(study: Study, group_name: str, loss: str) -> dict[str, Any]:
    c = study.config
    folder = study.out / "calibration"
    path = folder / f"nu-{c.dataset}-{group_name}-{loss}.json"
    settings = {
        "grid": list(c.nu_grid), "nu_max": c.nu_max, "target": c.si_target,
        "epochs": c.calibration_epochs,
        "seed": c.calibration_seed, "val_samples": c.calibration_val_samples,
        "steps": c.ig_steps, "rule": c.ig_rule,
    }  # fmt: skip
    if path.is_file():
        cached = json.loads(path.read_text())
        if cached.get("settings") == settings:
            return cached
    curve = _measure_grid(study, group_name, loss, sorted(c.nu_grid))
    while not choose_nu(curve, c.si_target)[1]:
        extension = next_log_values(curve[-1]["nu"], 4, c.nu_max)
        if not extension:
            break
        curve += _measure_grid(study, group_name, loss, extension)
    chosen, reached = choose_nu(curve, c.si_target)
    result = {
        "group": group_name, "loss": loss, "curve": curve, "chosen_nu": chosen,
        "reached": reached, "settings": settings,
    }  # fmt: skip
    atomic_write_json(result, path)
    _plot(study, result)
    return result


def _plot(study: Study, cal: dict[str, Any]) -> None:
    c = study.config
    folder = study.out / "calibration"
    name = f"nu-{c.dataset}-{cal['group']}-{cal['loss']}"
    nus = [p["nu"] for p in cal["curve"]]
    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.plot(nus, [p["si"] for p in cal["curve"]], "o-", label="SI (validation)")
    ax.plot(nus, [p["val_acc"] for p in cal["curve"]], "s--", label="accuracy (validation orbit)")
    ax.axhline(c.si_target, color="grey", lw=0.8, ls=":", label=f"target SI = {c.si_target}")
    ax.axvline(cal["chosen_nu"], color="C3", lw=0.8, label=f"chosen ν = {cal['chosen_nu']:g}")
    ax.set_xscale("log")
    ax.set_xlabel("ν")
    ax.set_ylim(0, 1.02)
    status = "" if cal["reached"] else " — target NOT reached"
    ax.set_title(f"ν calibration, {cal['group']}, {cal['loss']} loss{status}", fontsize=9)
    ax.legend(fontsize=7)
    save_figure(fig, folder / name)


def calibration_results(study: Study) -> Results:
    """A report section with every calibration curve made so far."""
    folder = study.out / "calibration"
    results = Results(
        "calibration", "ν calibration",
        f"Each IR loss's ν is the smallest on the grid whose saliency invariance similarity "
        f"on the validation orbit reaches {study.config.si_target}.",
    )  # fmt: skip
    rows = []
    for path in sorted(folder.glob("nu-*.json")):
        cal = json.loads(path.read_text())
        for p in cal["curve"]:
            rows.append(
                [cal["group"], cal["loss"], p["nu"], round(p["val_acc"], 4), round(p["si"], 4)]
            )
        results.figures.append(
            {"png": f"{path.stem}.png", "pdf": f"{path.stem}.pdf",
             "caption": f"{cal['group']}, {cal['loss']}: chosen ν = {cal['chosen_nu']:g}"
                        + ("" if cal["reached"] else " (target not reached: highest SI used)")}
        )  # fmt: skip
        if not cal["reached"]:
            results.notes.append(
                f"{cal['group']} / {cal['loss']}: no ν on the grid reached SI ≥ "
                f"{study.config.si_target}; ν = {cal['chosen_nu']:g} (highest SI) was used."
            )
    results.add_table(
        folder,
        "curves",
        "Calibration curves (validation)",
        ["group", "loss", "ν", "val acc", "SI"],
        rows,
    )
    return results
