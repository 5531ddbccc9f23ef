"""The study: settings, ν choice, Proposition 3.1, and `reproduce all --profile smoke` end to end."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ginv.errors import GinvError
from ginv.experiments import profile
from ginv.experiments.calibration import choose_nu
from ginv.experiments.prop31 import check
from ginv.experiments.reproduce import EXPERIMENTS

GINV = [sys.executable, "-m", "ginv.cli"]


def test_profiles_and_typed_overrides() -> None:
    quick = profile("quick")
    assert (quick.epochs, quick.seeds, quick.si_samples) == (50, (0, 1), 2000)
    paper = profile("paper")
    assert (paper.epochs, paper.seeds, paper.test_samples, paper.si_samples) == (
        300,
        (0, 1, 2, 3),
        0,
        0,
    )
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


def test_choose_nu_takes_the_smallest_nu_reaching_the_target() -> None:
    curve = [{"nu": 0.1, "si": 0.5}, {"nu": 1.0, "si": 0.96}, {"nu": 10.0, "si": 0.99}]
    assert choose_nu(curve, 0.95) == (1.0, True)
    assert choose_nu(curve, 0.995) == (10.0, False)  # not reached: the highest SI, flagged


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


def _run(args: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*GINV, *args], capture_output=True, text=True, timeout=600, **kw)


def _check_outputs(out: Path) -> dict:
    for name in EXPERIMENTS:
        results = json.loads((out / name / "results.json").read_text())
        for f in results["files"]:
            with open(out / name / f) as handle:
                assert len(list(csv.reader(handle))) >= 2, f
        for fig in results["figures"]:
            assert (out / name / fig["png"]).read_bytes()[:4] == b"\x89PNG"
            assert (out / name / fig["pdf"]).read_bytes()[:4] == b"%PDF"
    assert "<img src='data:image/png;base64," in (out / "report.html").read_text()
    assert "## Proposition 3.1" in (out / "report.md").read_text()
    for name in ("config.json", "environment.json", "summary.json"):
        json.loads((out / name).read_text())
    return json.loads((out / "prop31" / "results.json").read_text())


def test_reproduce_all_smoke_end_to_end(tmp_path: Path, real_data_dir: Path) -> None:
    out = tmp_path / "study"
    done = _run(["reproduce", "all", "--profile", "smoke", "--out", str(out), "--quiet"])
    assert done.returncode == 0, done.stderr
    assert "total" in done.stdout
    prop = _check_outputs(out)
    assert prop["passed"] is True
    table = json.loads((out / "table" / "results.json").read_text())
    models = [row[1].split(" ")[0] for row in table["tables"][0]["rows"]]
    assert models == ["WT", "DA", "IR"] * 2
    assert table["data"]["R4/WT"]["si"][0] == pytest.approx(1.0, abs=1e-6)
    assert table["data"]["T3/WT"]["li"][0] == pytest.approx(0.0, abs=1e-9)
    # a second run reuses every training run and every measure
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/*.json")}
    csv_before = (out / "table" / "table.csv").read_text()
    again = _run(["reproduce", "table", "--profile", "smoke", "--out", str(out), "--quiet"])
    assert again.returncode == 0, again.stderr
    assert {p: p.stat().st_mtime_ns for p in out.glob("runs/*/*.json")} == stamps
    assert (out / "table" / "table.csv").read_text() == csv_before


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


def test_the_nu_search_extends_along_the_log_scale() -> None:
    from ginv.experiments.calibration import next_log_values

    assert next_log_values(30.0, 4, 3000.0) == [100.0, 300.0, 1000.0, 3000.0]
    assert next_log_values(0.3, 2, 3000.0) == [1.0, 3.0]
    assert next_log_values(1000.0, 4, 3000.0) == [3000.0]
    assert next_log_values(3000.0, 4, 3000.0) == []


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
    assert [p["nu"] for p in cal["curve"]][:3] == [0.1, 1.0, 10.0]
    assert cal["chosen_nu"] in [p["nu"] for p in cal["curve"]]
    assert (tmp_path / "calibration" / "nu-mnist-T3-kl.png").is_file()
