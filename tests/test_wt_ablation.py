"""WT's ablation (`ginv reproduce wt-ablation`): the protocol's WT and DA shared with the
table, each variant trained as it says, exactly invariant, its selection read from run.json."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import run_ginv

from ginv.errors import GinvError
from ginv.experiments import profile

SMOKE = ["--profile", "smoke", "--set", "groups=R4", "--workers", "1", "--quiet"]


def _run(args: list[str]) -> subprocess.CompletedProcess:
    return run_ginv(args)


def test_wt_ablation_trains_each_variant_beside_the_tables_wt(
    tmp_path: Path, real_data_dir: Path
) -> None:
    out = tmp_path / "study"
    table = _run(["reproduce", "table", *SMOKE, "--out", str(out)])
    assert table.returncode == 0, table.stderr
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/run.json")}
    variants = "wt_variants=pool=max+lr=0.002,epochs=5"
    done = _run(["reproduce", "wt-ablation", *SMOKE, "--set", variants, "--out", str(out)])
    assert done.returncode == 0, done.stderr
    # the protocol's WT and DA are the table's runs and measures: nothing retrained
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    rows = json.loads((out / "wt-ablation" / "results.json").read_text())["data"]["rows"]
    by = {(r["model"], r["variant"]): r for r in rows}
    assert list(by) == [("WT", "protocol"), ("DA", "protocol"), ("WT", "pool=max+lr=0.002"),
                        ("WT", "epochs=5")]  # fmt: skip
    tables = json.loads((out / "table" / "results.json").read_text())["data"]["rows"]
    wt = next(r for r in tables if r["model"] == "WT")
    assert by["WT", "protocol"]["accuracy"] == wt["accuracy"]
    # each variant's runs carry its settings, and every WT variant is exactly invariant
    runs = [json.loads(p.read_text()) for p in out.glob("runs/*/run.json")]
    mine = {(r["config"]["pool"], r["config"]["lr"], r["config"]["epochs"]): r for r in runs
            if r["config"]["model"] == "wt"}  # fmt: skip
    smoke = profile("smoke")
    assert set(mine) == {
        ("mean", smoke.train.lr, 3),
        ("max", 0.002, 3),
        ("mean", smoke.train.lr, 5),
    }
    for key, row in (
        (("max", 0.002, 3), "pool=max+lr=0.002"),
        (("mean", smoke.train.lr, 5), "epochs=5"),
    ):
        r, record = mine[key], by["WT", row]
        assert record["li"] < 1e-6 and record["di"] < 1e-6
        assert record["epochs"] == key[2] and len(r["history"]) == key[2]
        assert record["selected_epoch"] == r["selected_epoch"]
        assert record["val_acc_selected"] == pytest.approx(r["best_val_acc"])
        assert record["train_ce_last"] == pytest.approx(r["history"][-1]["ce"])
    assert (out / "wt-ablation" / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert "WT's accuracy gap" in (out / "report.md").read_text()


@pytest.mark.parametrize("variant", ["pool", "group=T3", "epochz=3", "pool=max+"])
def test_a_variant_that_is_not_a_training_setting_is_one_line(variant: str) -> None:
    with pytest.raises(GinvError, match="not key=value of a training setting"):
        profile("smoke", [f"wt_variants={variant}"])


def test_the_plan_counts_every_variant(real_data_dir: Path) -> None:
    done = _run(["reproduce", "wt-ablation", "--profile", "paper", "--plan",
                 "--set", "wt_variants=pool=max,epochs=100"])  # fmt: skip
    assert done.returncode == 0, done.stderr
    items = [
        line.split()[2:5] for line in done.stdout.splitlines() if line.startswith("wt-ablation")
    ]
    assert ["WT", "pool=max", "4"] in items and ["WT", "epochs=100", "4"] in items
    r4 = {" ".join(w[2:4]): w[5] for w in map(str.split, done.stdout.splitlines())
          if w[:2] == ["wt-ablation", "R4"] and w[4].isdigit()}  # fmt: skip
    assert r4["WT epochs=100"] == "400" and r4["WT pool=max"] == "1200"  # seeds × epochs
