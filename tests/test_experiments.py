"""The study: settings, ν choice, Proposition 3.1, and `reproduce all --profile smoke` end to end."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import SMOKE_STUDY, run_ginv

from ginv.errors import GinvError
from ginv.experiments import profile
from ginv.experiments.prop31 import check
from ginv.experiments.registry import study_experiments
from ginv.groups import get_group
from ginv.reports.numbers import fmt

GINV = [sys.executable, "-m", "ginv.cli"]

ROOT = Path(__file__).resolve().parents[1]


def test_profiles_and_typed_overrides() -> None:
    quick = profile("quick")
    assert (quick.epochs, quick.seeds, quick.si_samples) == (50, (0, 1), 2000)
    paper = profile("paper")
    assert (paper.epochs, paper.seeds, paper.test_samples, paper.si_samples) == (
        300,
        (0, 1, 2, 3),
        0,
        10_000,
    )
    assert 0 < paper.presearch_epochs < paper.epochs and paper.nu_resolution == 1.5
    # the study holds a TrainConfig: its training defaults are TrainConfig's, one source
    from ginv.training import TrainConfig

    assert paper.train == TrainConfig(epochs=300) and quick.train == TrainConfig(epochs=50)
    tuned = profile("quick", ["lr=0.003", "wt_pool=max", "n-train=500"]).train
    assert (tuned.lr, tuned.pool, tuned.n_train) == (0.003, "max", 500)
    assert profile("quick", ["lr=0.003"]).run("R4", "DA", 1).lr == 0.003
    changed = profile(
        "smoke", ["epochs=7", "groups=R4", "nu_grid=0.5,5", "si_target=0.9", "drift-mode=mixture"]
    )
    assert (changed.epochs, changed.groups, changed.nu_grid) == (7, ("R4",), (0.5, 5.0))
    assert (changed.si_target, changed.drift_mode) == (0.9, "mixture")
    with pytest.raises(GinvError, match="known key"):
        profile("quick", ["epoch=3"])
    with pytest.raises(GinvError, match="cannot read"):
        profile("quick", ["epochs=many"])
    with pytest.raises(GinvError, match="unknown profile"):
        profile("huge")
    # every value is range-checked before any work starts
    for bad, match in [
        ("groups=", "at least one group"), ("groups=R5", "R5"), ("seeds=", "seeds"),
        ("seeds=0,0", "distinct"), ("nu_grid=0", "nu_grid"), ("si_target=nan", "finite"),
        ("si_target=1.5", "si_target"), ("prop31_step=0", "prop31"), ("prop31_time=-1", "prop31"),
        ("prop31_samples=0", "prop31"), ("nu_resolution=1", "nu_resolution"),
        ("reg=l2", "unknown invariance loss 'l2'"), ("drift_betas=1.5", "drift_betas"), ("lr=inf", "finite"),
        ("frontier_nus_logit=", "settings grids"), ("frontier_nus_kl=-1", "settings grids"),
        ("frontier_orbit_rates=", "frontier_orbit_rates"),
        ("frontier_orbit_rates=1.5", "frontier_orbit_rates"),
        ("frontier_methods=WT", "include DA"), ("frontier_methods=DA,foo", "frontier_methods"),
    ]:  # fmt: skip
        with pytest.raises(GinvError, match=match):
            profile("quick", [bad])


def test_proposition_3_1_holds_numerically() -> None:
    for samples in (1, 50):
        r = check(dim=12, outputs=4, samples=samples, time=2.0, step=1e-3)
        assert r["max_gd_error"] < 1e-2
        assert r["largest_sigma_increase"] <= 1e-12
        assert r["sigma_max"][-1] < r["sigma_max"][0]
    # σmax is checked on the iterates, so a step past the stable range 2/‖Σ‖ is caught
    # (on the closed form W(0)·exp(−Σt) it could never increase)
    unstable = check(dim=12, outputs=4, samples=50, time=25.0, step=2.5)
    assert unstable["largest_sigma_increase"] > 1.0


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return run_ginv(args, env)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_tidy_csv(path: Path) -> list[dict[str, str]]:
    """A data file loads as numbers: ASCII names without spaces, and a column whose first
    value is a number holds only numbers (or nothing, where it does not apply)."""
    with open(path, newline="", encoding="utf-8") as handle:
        header, *rows = list(csv.reader(handle))
    assert rows, path
    assert all(h.isascii() and h.isidentifier() for h in header), (path, header)
    for i, column in enumerate(header):
        cells = [row[i] for row in rows if row[i] != ""]
        assert all("±" not in c for c in cells), (path, column)
        if cells and _is_float(cells[0]):
            assert all(_is_float(c) for c in cells), (path, column)
    return [dict(zip(header, row, strict=True)) for row in rows]


def _check_outputs(out: Path) -> dict:
    for name in (*study_experiments(), "fidelity", "calibration"):
        results = json.loads((out / name / "results.json").read_text())
        for f in results["files"]:
            _check_tidy_csv(out / name / f)
    for row in _check_tidy_csv(out / "table" / "table.csv"):
        for measure in ("accuracy", "li", "di", "si"):
            float(row[measure]), float(row[f"{measure}_std"])
        for fig in results["figures"]:
            assert (out / name / fig["png"]).read_bytes()[:4] == b"\x89PNG"
            assert (out / name / fig["pdf"]).read_bytes()[:4] == b"%PDF"
    assert "<img src='data:image/png;base64," in (out / "report.html").read_text()
    assert "## Proposition 3.1" in (out / "report.md").read_text()
    for name in ("config.json", "environment.json", "summary.json"):
        json.loads((out / name).read_text())
    return json.loads((out / "prop31" / "results.json").read_text())


@pytest.mark.slow
@pytest.mark.xdist_group(SMOKE_STUDY)  # on the worker that holds the smoke study
def test_reproduce_all_smoke_end_to_end(
    smoke_study: tuple[Path, subprocess.CompletedProcess],
) -> None:
    out, done = smoke_study
    assert "total" in done.stdout
    # the main table in the terminal: a header, then WT, DA, IR per group
    main = done.stdout.split("main table", 1)[1].splitlines()[1:8]
    assert main[0].split() == ["group", "model", "accuracy", "LI", "DI", "SI", "val", "SI"]
    assert [line.split()[:2] for line in main[1:4]] == [["R4", "WT"], ["R4", "DA"], ["R4", "IR"]]
    prop = _check_outputs(out)
    assert prop["passed"] is True
    table = json.loads((out / "table" / "results.json").read_text())
    models = [row[1].split(" ")[0] for row in table["tables"][0]["rows"]]
    assert models == ["WT", "DA", "IR"] * 2
    rows = {(r["group"], r["model"]): r for r in table["data"]["rows"]}
    assert rows[("R4", "WT")]["si"] == pytest.approx(1.0, abs=1e-6)
    assert rows[("T3", "WT")]["li"] == pytest.approx(0.0, abs=1e-9)
    smoke = profile("smoke")
    for group in ("R4", "T3"):
        ir = rows[(group, "IR")]
        cal = json.loads((out / "calibration" / f"nu-mnist-{group}-logit.json").read_text())
        assert ir["nu"] == cal["chosen_nu"]
        assert ir["val_si_per_seed"] == [m["val_si"] for m in cal["members"]]
        assert ir["val_si"] == pytest.approx(sum(ir["val_si_per_seed"]) / len(smoke.seeds))
        # the reading of "reached" (nu_search.READING): the mean over the final seeds
        mean = sum(ir["val_si_per_seed"]) / len(ir["val_si_per_seed"])
        assert ir["si_target_reached"] == (mean >= smoke.si_target) == cal["final_reached"]
        assert cal["reading"] == "seed-mean" and cal["calibration_seeds"] == [0]
        (deciding,) = [p for p in cal["curve"] if p["stage"] == "final" and p["nu"] == ir["nu"]]
        assert deciding["epochs"] == smoke.epochs
        # the deciding run is the seed-0 final member: the same validation SI
        assert deciding["si"] == ir["val_si_per_seed"][smoke.seeds.index(smoke.calibration_seed)]
    fidelity = json.loads((out / "fidelity" / "results.json").read_text())
    assert [c[1][:2] for c in fidelity["data"]["claims"] if c[0] == "R4"] == [
        "1.", "2a", "2b", "3.", "4.", "5."
    ]  # fmt: skip
    assert "Fidelity to the paper" in (out / "report.md").read_text()
    # the docs' table is made from such a folder by scripts/docs-table.py
    made = subprocess.run([sys.executable, str(ROOT / "scripts" / "docs-table.py"), str(out)],
                          capture_output=True, text=True)  # fmt: skip
    assert made.returncode == 0, made.stderr
    docs = made.stdout.splitlines()
    assert docs[1].startswith("Results computed at git commit `") and "profile `smoke`" in docs[1]
    r4 = docs.index("| R4 | accuracy % (paper) | LI (paper) | DI (paper) | SI (paper) |")
    assert [line.split(" | ")[0] for line in docs[r4 + 2 : r4 + 5]] == [
        "| WT",
        "| DA",
        "| IR, logit, ν = " + fmt(rows[("R4", "IR")]["nu"]),
    ]
    assert (
        docs[r4 + 2].split(" | ")[1]
        == fmt(100 * rows[("R4", "WT")]["accuracy"], n=1, single="") + " (94.6 ± 0.1)"
    )
    val = ", ".join(fmt(v) for v in rows[("R4", "IR")]["val_si_per_seed"])
    assert f"R4 IR validation SI per seed: {val} (mean " in made.stdout
    # a second run reuses every training run and every measure
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/*.json")}
    csv_before = (out / "table" / "table.csv").read_text()
    again = _run(["reproduce", "table", "--profile", "smoke", "--out", str(out), "--quiet"])
    assert again.returncode == 0, again.stderr
    assert {p: p.stat().st_mtime_ns for p in out.glob("runs/*/*.json")} == stamps
    assert (out / "table" / "table.csv").read_text() == csv_before


@pytest.mark.slow
def test_killed_reproduce_resumes_to_the_same_results(tmp_path: Path, real_data_dir: Path) -> None:
    args = [
        "reproduce",
        "table",
        "--profile",
        "smoke",
        "--set",
        "groups=R4",
        "--set",
        "epochs=40",
        "--set",
        "nu_max_rounds=1",
        "--quiet",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    assert _run([*args, "--out", str(tmp_path / "whole")], env=env).returncode == 0
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [*GINV, *args, "--out", str(killed)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while time.time() < deadline and not list(killed.glob("runs/_batch-*/checkpoint-*.pt")):
        time.sleep(0.02)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "table" / "results.json").exists(), "killed before the end"
    assert _run([*args, "--out", str(killed)], env=env).returncode == 0
    assert (killed / "table" / "table.csv").read_text() == (
        tmp_path / "whole" / "table" / "table.csv"
    ).read_text()


def test_bad_study_arguments_are_one_line_errors(tmp_path: Path) -> None:
    bad = _run(["reproduce", "table", "--set", "epochz=1", "--out", str(tmp_path)])
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "known key" in bad.stderr
    empty = _run(["report", str(tmp_path)])
    assert empty.returncode == 2 and "no experiment results" in empty.stderr


@pytest.mark.slow
def test_cli_calibrate_reports_the_chosen_nu(tmp_path: Path, real_data_dir: Path) -> None:
    args = [
        "calibrate",
        "--profile",
        "smoke",
        "--group",
        "T3",
        "--loss",
        "kl",
        "--out",
        str(tmp_path),
        "--quiet",
    ]
    done = _run(args)
    assert done.returncode == 0, done.stderr
    assert "T3 / kl: ν = " in done.stdout
    cal = json.loads((tmp_path / "calibration" / "nu-mnist-T3-kl.json").read_text())
    smoke = profile("smoke")
    pre = [p for p in cal["curve"] if p["stage"] == "presearch"]
    final = [p for p in cal["curve"] if p["stage"] == "final"]
    assert [p["nu"] for p in pre][:3] == [0.1, 1.0, 10.0]
    assert {p["epochs"] for p in pre} == {smoke.presearch_epochs}
    assert {p["epochs"] for p in final} == {smoke.epochs}
    for p in cal["curve"]:
        assert set(p) == {"nu", "si", "si_se", "val_acc", "epochs", "seed", "stage"}
        assert 0 <= p["si"] <= 1 and p["si_se"] > 0
    # the deciding point was trained for the study's epochs, and its seed-0 run is the final
    # member: asking for the family trains nothing new
    (deciding,) = [p for p in final if p["nu"] == cal["chosen_nu"]]
    assert deciding["epochs"] == smoke.epochs
    # the record states its reading and the noise behind the decision (one final seed: the
    # deciding run is the reading, so no margin)
    assert cal["reading"] == "seed-mean" and cal["calibration_seeds"] == [smoke.calibration_seed]
    assert cal["margin"] == 0 and cal["noise_sd"] == smoke.nu_noise_sd
    assert cal["predicted_si"] == deciding["si"]
    assert cal["settings"]["final_seeds"] == list(smoke.seeds)
    assert (tmp_path / "calibration" / "nu-mnist-T3-kl.png").is_file()
    runs = set((tmp_path / "runs").iterdir())
    # a kill between the record and its figure loses nothing: a rerun writes both again
    (tmp_path / "calibration" / "nu-mnist-T3-kl.png").unlink()
    again = _run(args)
    assert again.returncode == 0 and set((tmp_path / "runs").iterdir()) == runs
    assert (tmp_path / "calibration" / "nu-mnist-T3-kl.png").read_bytes()[:4] == b"\x89PNG"
    # any setting that reaches training gives new runs, never the old ν
    for change in ("lr=0.003", "n_train=200", "batch_size=64", "n_val=50"):
        before = set((tmp_path / "runs").iterdir())
        changed = _run([*args, "--set", change])
        assert changed.returncode == 0, changed.stderr
        new = set((tmp_path / "runs").iterdir()) - before
        assert new, change


def test_plan_prints_the_work_and_trains_nothing(tmp_path: Path) -> None:
    out = tmp_path / "planned"
    done = _run(["reproduce", "all", "--profile", "paper", "--plan", "--out", str(out)])
    assert done.returncode == 0, done.stderr
    assert not out.exists()
    text = done.stdout
    assert "fp32 matmul" in text and "floor" in text and "estimate" in text
    assert "IR-logit ν search" in text and "2 rounds assumed" in text
    total = next(line for line in text.splitlines() if line.startswith("total:"))
    assert "TFLOP" in total and "member-epochs" in total


def test_plan_counts_match_the_model_sizes() -> None:
    from ginv.experiments.plan import make_plan

    c = profile("smoke", ["groups=R4", "seeds=0,1", "nu_seeds=1"])
    plan = make_plan(["table"], c, probe=False)
    rows = {r.item: r for r in plan.rows}
    # DA: two seeds × epochs, each epoch n_train training steps + a forward pass over the
    # validation orbit; the MLP's matmul FLOPs per image by hand
    fwd = 2 * (1296 * 128 + 4 * 128 * 128 + 128 * 9)
    train = fwd + fwd + 2 * (4 * 128 * 128 + 128 * 9)
    assert rows["DA"].member_epochs == 2 * c.epochs
    assert rows["DA"].flops == 2 * c.epochs * (c.train.n_train * train + c.train.n_val * 4 * fwd)
    # IR trains on the orbit: four times DA's training step; the calibration seed is shared
    ir = rows["IR-logit family"]
    assert ir.runs == 1 and ir.flops == c.epochs * (
        c.train.n_train * 4 * train + c.train.n_val * 4 * fwd
    )
    assert rows["IR-logit ν pre-search"].runs == len(c.nu_grid)
    # with two seeds a ν candidate, the search's runs are both final members
    two = {r.item: r for r in make_plan(["table"], replace(c, nu_seeds=2), probe=False).rows}
    assert two["IR-logit family"].runs == 0
    assert two["IR-logit ν search"].runs == 2 * rows["IR-logit ν search"].runs


@pytest.mark.slow
def test_reproduce_frontier_smoke_writes_every_method_and_exact_wrappers(
    tmp_path: Path, real_data_dir: Path
) -> None:
    from ginv.experiments.frontier import CALIBRATED_COLUMNS, TIDY_COLUMNS
    from ginv.experiments.methods import methods

    out = tmp_path / "frontier"
    done = _run(["reproduce", "frontier", "--profile", "smoke", "--out", str(out), "--quiet"])
    assert done.returncode == 0, done.stderr
    smoke = profile("smoke")
    expected = {m.name: max(1, len(m.values(smoke))) for m in methods(smoke)}
    plain = {m.name for m in methods(smoke) if not m.settings}
    assert set(expected) >= {"DA", "WT", "IR-logit", "IR-kl", "IR-nlogit", "IR-jsd",
                             "orbit-average", "canonicalise", "orbit", "orbit-wide",
                             "IR-distill", "IR-warmup", "IR-features", "IR-late", "IR-teacher",
                             "IR-vicinal"}  # fmt: skip
    with open(out / "frontier" / "frontier.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == TIDY_COLUMNS
    for group in smoke.groups:
        mine = [r for r in rows if r["group"] == group]
        assert {m: sum(r["method"] == m for r in mine) for m in expected} == expected
    uses = {m.name: m.uses for m in methods(smoke)}
    for r in rows:  # every number parses; settings only where a method has them
        for k in TIDY_COLUMNS[3 : TIDY_COLUMNS.index("single_pass")]:
            float(r[k])
        assert (r["setting"] == "") == (r["method"] in plain)
        assert r["uses"] == uses[r["method"]]
    results = json.loads((out / "frontier" / "results.json").read_text())
    for f in results["files"]:
        _check_tidy_csv(out / "frontier" / f)
    calibrated = {(r["group"], r["method"]): r for r in results["data"]["calibrated"]}
    for group in smoke.groups:
        # exact by construction, measured by ginv's own measures: zero up to float64 round-off
        for name in ("orbit-average", "canonicalise", "WT"):
            r = calibrated[(group, name)]
            assert r["li"] <= 1e-12 and r["di"] <= 1e-12, (group, name)
            assert r["si"] == pytest.approx(1.0, abs=1e-12) and r["val_si"] >= 1 - 1e-12
        assert calibrated[(group, "orbit-average")]["li"] == 0.0  # a mean of sorted values
        # orbit structure at lr·ν = 1 is projected every step: exactly invariant
        full = [r for r in results["data"]["rows"]
                if r["group"] == group and r["method"] == "orbit" and r["setting"] == 1.0]  # fmt: skip
        assert full and full[0]["li"] <= 1e-12
        da = calibrated[(group, "DA")]
        assert calibrated[(group, "orbit-average")]["inference_flops"] == pytest.approx(
            len(get_group(group)) * da["inference_flops"], rel=0.01
        )
        assert calibrated[(group, "orbit")]["params"] == da["params"] == 233_225
    with open(out / "frontier" / "frontier-table.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == CALIBRATED_COLUMNS
    assert len(table) == len(smoke.groups) * len(expected)
    assert all(float(r["gap_to_da_points"]) == 0 for r in table if r["method"] == "DA")
    with open(out / "frontier" / "frontier-drift.csv", newline="") as f:
        drift = list(csv.DictReader(f))
    assert len(drift) == len(smoke.groups) * len(expected) * len(smoke.drift_betas)
    for name in ("frontier.png", "frontier-drift.png", "frontier-evidence.png"):
        assert (out / "frontier" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "accuracy–SI frontier" in (out / "report.md").read_text()
    # the evidence: every input-only method at its calibrated point, its curve the same run
    inputs = [m.name for m in methods(smoke) if m.uses == "inputs"]
    with open(out / "frontier" / "frontier-evidence.csv", newline="") as f:
        evidence = list(csv.DictReader(f))
    assert [(r["group"], r["method"]) for r in evidence] == [
        (g, m) for g in smoke.groups for m in inputs
    ]
    with open(out / "frontier" / "frontier-curves.csv", newline="") as f:
        curves = list(csv.DictReader(f))
    for r in evidence:
        assert float(r["sigma_max_j"]) > 0 and 0 <= float(r["selected_val_si"]) <= 1
        mine = [c for c in curves if (c["group"], c["method"]) == (r["group"], r["method"])]
        assert [int(c["epoch"]) for c in mine] == list(range(1, smoke.epochs + 1))
        assert max(float(c["val_si"]) for c in mine) == float(r["peak_val_si"])
        # retrained with SI tracked, the calibrated run itself: same validation accuracies
        cal = calibrated[(r["group"], r["method"])]
        record = json.loads((out / "runs" / cal["runs"][0] / "run.json").read_text())
        assert [float(c["val_acc"]) for c in mine] == [h["val_acc"] for h in record["history"]]
        assert int(r["selected_epoch"]) == record["selected_epoch"]
    with open(out / "frontier" / "frontier-layers.csv", newline="") as f:
        layers = list(csv.DictReader(f))
    assert {(r["group"], r["method"]) for r in layers} == {(g, m) for g in smoke.groups
                                                          for m in inputs}  # fmt: skip
    assert all(r["layer"] != "logits" or float(r["invariance"]) > 0 for r in layers)


def test_frontier_methods_say_what_they_know_of_the_group() -> None:
    from ginv.experiments.methods import methods
    from ginv.regularizers import USES, regularizer_class

    c = profile("smoke")
    every = {m.name: m for m in methods(c)}
    assert {n: m.uses for n, m in every.items() if m.uses != "inputs"} == {
        "WT": "architecture", "orbit-average": "wrapper", "canonicalise": "wrapper",
        "orbit": "weights", "orbit-wide": "weights",
    }  # fmt: skip
    for m in every.values():
        assert m.uses in USES
        for configs in m.configs(c, "R4").values():
            reg = configs[0].reg
            if reg != "none":  # a regularised method knows what its regulariser knows
                assert regularizer_class(reg).uses == m.uses, m.name


def test_plan_counts_the_frontier_methods_by_their_own_models() -> None:
    from ginv.experiments.plan import make_plan

    assert "frontier" not in study_experiments()  # `reproduce all` is the paper's study
    c = profile("smoke", ["groups=R4", "seeds=0,1", "frontier_orbit_rates=0.5,1"])
    rows = {r.item: r for r in make_plan(["frontier"], c, probe=False).rows}
    # orbit-wide: the MLP with 4·128 first-layer units, trained as DA (its step is decoupled)
    fwd = 2 * (1296 * 512 + 512 * 128 + 3 * 128 * 128 + 128 * 9)
    train = fwd + fwd + 2 * (512 * 128 + 3 * 128 * 128 + 128 * 9)
    wide = rows["orbit-wide"]
    assert wide.runs == 2 * 2 and wide.member_epochs == 4 * c.epochs
    assert wide.flops == 4 * c.epochs * (c.train.n_train * train + c.train.n_val * 4 * fwd)
    # saliency IR backpropagates through an input gradient of the orbit: dearer than IR
    per_run = {k: rows[k].flops / rows[k].runs for k in ("IR-logit", "IR-saliency", "DA")}
    assert per_run["IR-saliency"] > 2 * per_run["IR-logit"] > 2 * per_run["DA"]
    # orbit averaging measures |G| forward passes per image, and trains nothing of its own
    assert rows["orbit-average"].flops == 0  # its runs are DA's, counted once
    assert rows["orbit-average test + validation measures"].flops == pytest.approx(
        4 * rows["DA test + validation measures"].flops
    )
    # the evidence's curve runs are decided by the results: counted, never submitted before
    curves = rows["IR-logit training curves"]
    assert (curves.runs, curves.upfront) == (1, False)
    assert "orbit training curves" not in rows  # it knows the weights' action: no evidence
    item = "IR-logit training curves: SI per epoch"
    half = profile("smoke", ["groups=R4", "seeds=0,1", "frontier_orbit_rates=0.5,1",
                             f"frontier_curve_samples={c.frontier_curve_samples // 2}"])  # fmt: skip
    halved = {r.item: r for r in make_plan(["frontier"], half, probe=False).rows}[item]
    assert rows[item].flops == 2 * halved.flops > 0  # SI on that many images, every epoch


def test_every_input_only_method_has_a_twin_at_wt_s_capacity() -> None:
    """Capacity parity: each `inputs` method also runs with the first layer |G|·width wide
    (WT's and orbit-wide's), with the same settings, read against DA-wide."""
    from ginv.experiments.frontier import _same_size_gap
    from ginv.experiments.methods import METHODS, methods, reference

    quick = profile("quick")
    names = {m.name for m in methods(quick)}
    inputs = [m for m in METHODS.values() if m.uses == "inputs" and not m.twin]
    assert {"DA", "IR-logit", "IR-distill"} <= {m.name for m in inputs}
    for m in inputs:
        twin = METHODS[f"{m.name}-wide"]
        assert f"{m.name}-wide" in names and twin.uses == "inputs" and twin.twin
        assert reference(twin) == "DA-wide" and reference(m) == "DA"
        for (s, plain), (t, wide) in zip(m.configs(quick, "T3").items(),
                                         twin.configs(quick, "T3").items(), strict=True):  # fmt: skip
            assert s == t or (s != s and t != t)  # the same settings (nan: none)
            assert [c.first_width for c in wide] == [3 * c.width for c in plain]
            assert [c.nu for c in wide] == [c.nu for c in plain]
    assert not any(m.twin for m in methods(profile("smoke")))  # smoke: frontier_wide=False
    best = {("R4", "DA"): {"accuracy": 0.9}, ("R4", "DA-wide"): {"accuracy": 0.92}}
    assert _same_size_gap(
        "R4", {"method": "IR-logit-wide", "accuracy": 0.91}, best
    ) == pytest.approx(-1.0)
    assert _same_size_gap("R4", {"method": "IR-logit", "accuracy": 0.91}, best) == pytest.approx(
        1.0
    )
    assert _same_size_gap("T3", {"method": "IR-logit", "accuracy": 0.91}, best) is None


def test_yes_no_settings_read_false_as_false() -> None:
    assert profile("quick", ["frontier_wide=false"]).frontier_wide is False
    assert profile("quick", ["frontier_wide=Yes"]).frontier_wide is True
    with pytest.raises(GinvError, match="frontier_wide"):
        profile("quick", ["frontier_wide=maybe"])
