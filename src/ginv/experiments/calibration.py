"""The record of a ν calibration: ``calibration/nu-*.json``, its figure and its report section.

The search itself is :mod:`ginv.experiments.nu_search`; :meth:`Study.calibrate` feeds it
trained runs. Each curve point carries ``nu``, ``si``, ``si_se`` (standard error over
validation samples), ``val_acc``, the ``epochs`` and ``seed`` of the run behind it and its
``stage`` (``presearch``: short runs that propose where to look; ``final``: runs trained
exactly as the final models, which alone decide ν). The record states its ``reading`` of
"reached" (:data:`~ginv.experiments.nu_search.READING`), the chosen ν's ``predicted_si``
(the final seed mean), the ``margin`` below it and ``noise_sd`` (the spread between runs
behind it), the ``calibration_seeds``; once the family is trained, its ``members`` and
``final_si`` / ``final_reached`` (the seed mean, and whether it reached the target).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ginv.data import dataset_label
from ginv.experiments.results import Results, cells_over, fmt_over, mean_std, save_figure
from ginv.experiments.style import PAGE, styled
from ginv.io import atomic_write_json
from ginv.records import read_cache


def calibration_path(folder: Path, dataset: str, group: str, loss: str) -> Path:
    """The record of one calibration: ``folder/nu-<dataset>-<group>-<loss>.json``, the
    dataset by its label (a file's stem, never its path)."""
    return folder / f"nu-{dataset_label(dataset)}-{group}-{loss}.json"


def write_calibration(folder: Path, record: dict[str, Any], figure: bool = True) -> None:
    """Write the record and (with ``figure``) its figure; both are rewritten on every call, so
    a kill between the two leaves nothing stale behind once the calibration is asked for
    again."""
    path = calibration_path(folder, record["dataset"], record["group"], record["loss"])
    atomic_write_json(record, path)
    if figure:
        save_figure(_plot(record), path.with_suffix(""))


@styled
def _plot(cal: dict[str, Any]):
    import matplotlib.pyplot as plt

    target = cal["settings"]["target"]
    fig, (ax_si, ax_acc) = plt.subplots(1, 2, figsize=(PAGE, 3.0), sharex=True)
    for stage, style in (("presearch", {"alpha": 0.45, "mfc": "none"}), ("final", {})):
        pts = sorted((p for p in cal["curve"] if p["stage"] == stage), key=lambda p: p["nu"])
        if not pts:
            continue
        nus = [p["nu"] for p in pts]
        epochs = pts[0]["epochs"]
        label = f"{'pre-search' if stage == 'presearch' else 'search'}, {epochs} epoch{'s' * (epochs > 1)}"
        ax_si.errorbar(nus, [p["si"] for p in pts], yerr=[2 * p["si_se"] for p in pts],
                       fmt="o-", ms=4, lw=1, capsize=2, label=label, color="C0", **style)  # fmt: skip
        ax_acc.plot(nus, [p["val_acc"] for p in pts], "s-", ms=4, lw=1, color="C1", **style)
    members = cal.get("members", [])
    if members:  # hollow rings around the points they sit on, which stay visible inside
        ax_si.plot([cal["chosen_nu"]] * len(members), [m["val_si"] for m in members], "o",
                   mfc="none", mec="k", mew=0.9, ms=9, ls="none", label="final members")  # fmt: skip
    ax_si.axhline(target, color="grey", lw=0.8, ls=":", label=f"target {target}")
    ax_si.plot([], [], color="C3", lw=0.8, label=f"chosen ν = {cal['chosen_nu']:g}")
    for ax in (ax_si, ax_acc):
        ax.axvline(cal["chosen_nu"], color="C3", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("ν")
    ax_si.set_ylim(0, 1.02)  # the target must show
    ax_acc.set_ylim(*_data_range([p["val_acc"] for p in cal["curve"]]
                                 + [m["val_acc"] for m in members]))  # fmt: skip
    ax_si.set_ylabel("validation SI (± 2 s.e.)")
    ax_acc.set_ylabel("validation orbit accuracy")
    fig.legend(*ax_si.get_legend_handles_labels(), loc="lower center", ncol=5, fontsize=7,
               frameon=False)  # fmt: skip
    status = "" if cal["reached"] else " — target NOT reached"
    fig.suptitle(f"ν calibration, {cal['group']}, {cal['loss']} loss{status}", fontsize=9)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


def _data_range(values: list[float], pad: float = 0.08, least: float = 0.02) -> tuple[float, float]:
    """Axis limits around ``values``: their range widened by ``pad`` of itself on each side
    (at least ``least`` in all, for a flat curve), kept within ``[0, 1]``."""
    lo, hi = min(values), max(values)
    margin = max(pad * (hi - lo), (least - (hi - lo)) / 2, 0.0)
    return max(0.0, lo - margin), min(1.0, hi + margin)


def calibration_results(folder: Path, target: float) -> Results:
    """A report section with every calibration record in ``folder``."""
    results = Results(
        "calibration", "ν calibration",
        f"Each IR loss's ν is the smallest at which the final models' validation SI, mean over "
        f"seeds, reaches {target} with the stated confidence (margin from the spread between "
        "training runs), among runs trained exactly as the final models (same epochs, same "
        "selection); a short pre-search proposes where to look. The runs at the chosen ν are "
        "final models.",
    )  # fmt: skip
    rows, members, summary, tidy = [], [], [], []
    for path in sorted(folder.glob("nu-*.json")):
        cal = read_cache(path, "calibration")  # damaged: moved aside (a warning), searched again
        if cal is None:
            continue
        for p in sorted(cal["curve"], key=lambda p: (p["stage"] != "presearch", p["nu"])):
            rows.append([cal["group"], cal["loss"], p["stage"], p["epochs"], p["nu"],
                         round(p["val_acc"], 4), round(p["si"], 4), round(p["si_se"], 4)])  # fmt: skip
        for m in cal.get("members", []):
            members.append([cal["group"], cal["loss"], cal["chosen_nu"], m["seed"],
                            round(m["val_acc"], 4), round(m["val_si"], 4),
                            round(m["val_si_se"], 4), m["reached"]])  # fmt: skip
        verdict = "reached" if cal["reached"] else "NOT reached"
        finals = cal.get("members", [])
        si = [m["val_si"] for m in finals]
        acc = [m["val_acc"] for m in finals]
        points = sum(p["stage"] == "final" for p in cal["curve"])
        summary.append([cal["group"], cal["loss"], f"{cal['chosen_nu']:g}",
                        fmt_over(si, single="") if si else "–",
                        fmt_over(acc, single="") if acc else "–",
                        "yes" if cal["reached"] else "NO", points])  # fmt: skip
        tidy.append([cal["group"], cal["loss"], cal["chosen_nu"], len(finals),
                     *(mean_std(si) if si else ("", "")), *(mean_std(acc) if acc else ("", "")),
                     cal["reached"], points])  # fmt: skip
        results.figures.append(
            {"png": f"{path.stem}.png", "pdf": f"{path.stem}.pdf",
             "caption": f"{cal['group']}, {cal['loss']}: ν = {cal['chosen_nu']:g}, target "
                        f"{verdict}. {cal['reason']}."}
        )  # fmt: skip
        if not cal["reached"]:
            results.notes.append(f"{cal['group']} / {cal['loss']}: {cal['reason']}.")
        missed = [m["seed"] for m in cal.get("members", []) if not m["reached"]]
        if missed:
            results.notes.append(
                f"{cal['group']} / {cal['loss']}: at ν = {cal['chosen_nu']:g} the final members "
                f"of seed{'s' * (len(missed) > 1)} {', '.join(map(str, missed))} have "
                f"validation SI below {target}."
            )
    # the chosen ν per group and loss is printed; every point of every search is in its CSV
    # (dozens of rows, which the figures show)
    results.add_table(
        folder, "calibration", "The chosen ν per group and IR loss; val SI and accuracy of the "
        "final models at it (validation orbit); every search point is in curves.csv"
        + cells_over(min((t[3] for t in tidy), default=2)),
        ["group", "loss", "chosen ν", "val SI", "val accuracy", "target reached",
         "search points"], summary,
        tidy=(["group", "loss", "nu", "n_seeds", "val_si", "val_si_std", "val_acc",
               "val_acc_std", "reached", "search_points"], tidy),
    )  # fmt: skip
    results.add_csv(
        folder, "curves", ["group", "loss", "stage", "epochs", "nu", "val_acc", "si", "si_se"], rows
    )
    if members:
        results.add_csv(
            folder, "members",
            ["group", "loss", "nu", "seed", "val_acc", "val_si", "val_si_se", "reached"], members,
        )  # fmt: skip
    return results
