"""The GPU path's scriptable parts: the plan as JSON, the per-phase rates of
``scripts/phase-rates.py``, ``scripts/compare-tables.py`` on hand-made tables, the TF32
settings in the environment record, and ``scripts/gpu-paper.sh``'s syntax."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from ginv.experiments import profile
from ginv.experiments.plan import Plan, PlanRow, make_plan, plan_record

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name.replace("-", "_"), SCRIPTS / name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


compare_tables = _script("compare-tables.py")
phase_rates = _script("phase-rates.py")


# --- the plan as JSON ---------------------------------------------------------------------


def test_per_experiment_flops_sum_the_rows_and_count_shared_work_once(real_data_dir: Path) -> None:
    c = profile("smoke", ["groups=R4", "seeds=0"])
    names = ["table", "spectral", "prop31"]
    plan = make_plan(names, c, probe=False, data_dir=real_data_dir)
    by = plan.by_experiment(names)
    assert list(by) == names and by["prop31"] == 0.0  # no training, no rows: still a phase
    for name in names:
        assert by[name] == sum(r.flops for r in plan.rows if r.experiment == name)
    assert sum(by.values()) == plan.flops
    # the spectral experiment's logit IR is the table's: alone it counts it, after it not
    alone = make_plan(["spectral"], c, probe=False, data_dir=real_data_dir).by_experiment()
    assert alone["spectral"] > by["spectral"]
    assert alone["spectral"] - by["spectral"] <= by["table"]


def test_plan_record_is_json_with_rates_and_rows() -> None:
    plan = Plan([PlanRow("table", "R4", "DA", 1, 3, 2e12), PlanRow("tsne", "R4", "x", flops=1e12),
                 PlanRow("table", "R4", "WT", 1, 3, 3e12)], 1e12, 5e11, "cuda:0")  # fmt: skip
    record = json.loads(json.dumps(plan_record(plan, ["table", "tsne", "drift"], "paper")))
    assert record["experiments"] == {"table": 5e12, "tsne": 1e12, "drift": 0.0}
    assert (record["flops"], record["floor_seconds"], record["estimate_seconds"]) == (6e12, 6, 12)
    assert record["matmul_rate"] == 1e12 and record["device"] == "cuda:0"
    assert [r["item"] for r in record["rows"]] == ["DA", "x", "WT"]
    unprobed = plan_record(Plan(plan.rows), ["table"], "smoke")
    assert unprobed["floor_seconds"] is None and unprobed["estimate_seconds"] is None


def test_cli_plan_json_writes_the_record(tmp_path: Path, real_data_dir: Path) -> None:
    path = tmp_path / "deep" / "plan.json"
    args = ["reproduce", "table", "--profile", "smoke", "--set", "groups=R4"]
    done = subprocess.run([sys.executable, "-m", "ginv.cli", *args, "--plan-json", str(path),
                           "--out", str(tmp_path / "out"), "--data-dir", str(real_data_dir)],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "total:" in done.stdout and not (tmp_path / "out").exists()  # --plan implied
    record = json.loads(path.read_text())
    assert record["profile"] == "smoke" and list(record["experiments"]) == ["table"]
    assert record["experiments"]["table"] == record["flops"] > 0 and record["matmul_rate"] > 0


# --- phase rates ----------------------------------------------------------------------------


def test_phase_rates_divide_the_plans_flops_by_the_wall_time() -> None:
    plan = {"device": "cuda:0", "matmul_rate": 1e12,
            "experiments": {"table": 2e12, "tsne": 0.0, "drift": 1e12}}  # fmt: skip
    rows = phase_rates.phase_rows(plan, {"table": 4.0, "tsne": 2.0})
    assert rows[0] == ("table", 4.0, 2e12, 5e11, 0.5)
    assert rows[1] == ("tsne", 2.0, 0.0, 0.0, 0.0)
    assert rows[2] == ("drift", None, 1e12, None, None)  # not run: no time, no rate
    assert rows[3] == ("total", 6.0, 2e12, 2e12 / 6, 2e12 / 6 / 1e12)  # the timed phases only
    text = phase_rates.format_phases(plan, {"table": 4.0})
    line = next(x for x in text.splitlines() if x.startswith("table"))
    assert line.split() == ["table", "4.0", "2.000", "500.0", "50.0"]


def test_phase_rates_cli_refuses_what_is_not_a_plan(tmp_path: Path) -> None:
    (tmp_path / "plan.json").write_text('{"rows": []}')
    (tmp_path / "summary.json").write_text('{"table": 1.0}')
    run = [sys.executable, str(SCRIPTS / "phase-rates.py")]
    done = subprocess.run([*run, str(tmp_path / "plan.json"), str(tmp_path / "summary.json")],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 2 and "not a plan record" in done.stderr
    done = subprocess.run([*run, str(tmp_path / "absent.json"), str(tmp_path / "summary.json")],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 2 and "unreadable" in done.stderr and "Traceback" not in done.stderr


# --- comparing tables -------------------------------------------------------------------------

HEADER = "group,model,loss,nu,n_seeds,accuracy,accuracy_std,li,li_std,di,di_std,si,si_std,val_si,val_si_std,si_target_reached"
ROWS = {
    "WT": "R4,WT,,,4,0.950,0.01,1e-16,0,6e-18,0,1.0,0,,,",
    "DA": "R4,DA,,,4,0.940,0.01,9e-05,0,9e-06,0,0.40,0,,,",
    "IR": "R4,IR,logit,3.0,4,0.930,0.01,1e-05,0,1e-06,0,0.96,0,0.955,0,True",
}


def _table(path: Path, **changes: str) -> Path:
    """The reference table with ``changes`` (``DA="…"``: that row's CSV line; ``""`` drops it)."""
    rows = {**ROWS, **changes}
    path.write_text("\n".join([HEADER, *(r for r in rows.values() if r)]) + "\n")
    return path


def _compare(a: Path, b: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPTS / "compare-tables.py"), str(a), str(b),
                           *options], capture_output=True, text=True)  # fmt: skip


def _misses(out: str) -> list[list[str]]:
    return [line.split()[1:] for line in out.splitlines() if line.startswith("MISS")]


def test_tables_within_the_tolerances_agree(tmp_path: Path) -> None:
    a = _table(tmp_path / "a.csv")
    b = _table(
        tmp_path / "b.csv",
        # accuracy −0.009, SI +0.019, LI ×2.9, DI ÷2.9, WT's LI and DI in float32 rounding
        WT="R4,WT,,,4,0.941,0.5,9e-7,9,1e-10,0,0.99999,0,,,",
        DA="R4,DA,,,4,0.949,0.01,2.61e-04,0,3.1034e-06,0,0.419,0,,,",
        IR="R4,IR,logit,6.6,4,0.930,0.01,1e-05,0,1e-06,0,0.96,0,0.974,0,False",  # ν ×2.2
    )
    done = _compare(a, b)
    assert done.returncode == 0, done.stdout
    assert not _misses(done.stdout) and "0 miss" in done.stdout
    # the same call in-process: every judged cell has a verdict, std and flags are not judged
    verdicts = list(
        compare_tables.compare(
            compare_tables.read_table(a), compare_tables.read_table(b), compare_tables.Tolerances()
        )
    )
    assert all(v.ok for v in verdicts)
    assert {v.column for v in verdicts} == {"n_seeds", "accuracy", "si", "val_si", "li", "di", "nu"}


@pytest.mark.parametrize(
    ("row", "line", "column"),
    [
        ("DA", "R4,DA,,,4,0.929,0.01,9e-05,0,9e-06,0,0.40,0,,,", "accuracy"),  # |Δ| 0.011
        ("DA", "R4,DA,,,4,0.940,0.01,9e-05,0,9e-06,0,0.421,0,,,", "si"),  # |Δ| 0.021
        ("IR", "R4,IR,logit,3.0,4,0.930,0.01,1e-05,0,1e-06,0,0.96,0,0.93,0,False", "val_si"),
        ("DA", "R4,DA,,,4,0.940,0.01,2.8e-04,0,9e-06,0,0.40,0,,,", "li"),  # ×3.1
        ("DA", "R4,DA,,,4,0.940,0.01,9e-05,0,2.9e-06,0,0.40,0,,,", "di"),  # ÷3.1
        # WT's exact 1e-16 against 2e-6: not both below the floor, and far beyond the factor
        ("WT", "R4,WT,,,4,0.950,0.01,2e-06,0,6e-18,0,1.0,0,,,", "li"),
        ("IR", "R4,IR,logit,6.9,4,0.930,0.01,1e-05,0,1e-06,0,0.96,0,0.955,0,True", "nu"),  # ×2.3
        ("IR", "R4,IR,logit,,4,0.930,0.01,1e-05,0,1e-06,0,0.96,0,0.955,0,True", "nu"),  # empty
        ("DA", "R4,DA,,,2,0.940,0.01,9e-05,0,9e-06,0,0.40,0,,,", "n_seeds"),
        ("DA", "", "row"),  # in one table only
    ],
)
def test_each_kind_of_miss_is_named_and_fails(tmp_path: Path, row: str, line: str,
                                              column: str) -> None:  # fmt: skip
    a = _table(tmp_path / "a.csv")
    b = _table(tmp_path / "b.csv", **{row: line})
    done = _compare(a, b)
    assert done.returncode == 1, done.stdout
    misses = _misses(done.stdout)
    assert len(misses) == 1 and misses[0][1] == row and column in misses[0]
    assert _compare(b, a).returncode == 1  # symmetric
    # a looser tolerance of that kind lets the numeric misses pass
    loosen = {"accuracy": ["--accuracy", "0.02"], "si": ["--si", "0.05"],
              "val_si": ["--si", "0.05"], "li": ["--factor", "4", "--floor", "1e-5"],
              "di": ["--factor", "4"], "nu": ["--nu-factor", "2.5"]}  # fmt: skip
    if column in loosen and line.split(",")[3 if column == "nu" else 0]:
        assert _compare(a, b, *loosen[column]).returncode == 0


def test_unreadable_tables_exit_2_with_one_line(tmp_path: Path) -> None:
    a = _table(tmp_path / "a.csv")
    (tmp_path / "bad.csv").write_text("group,model\nR4,DA\n")
    done = _compare(a, tmp_path / "bad.csv")
    assert done.returncode == 2 and "no column" in done.stderr and "Traceback" not in done.stderr
    (tmp_path / "nan.csv").write_text(
        "\n".join([HEADER, ROWS["WT"], ROWS["DA"].replace("0.940", "nan"), ROWS["IR"]])
    )
    done = _compare(a, tmp_path / "nan.csv")
    assert done.returncode == 2 and "not finite" in done.stderr
    assert _compare(a, tmp_path / "absent.csv").returncode == 2


# --- the environment record and the script ------------------------------------------------------


def test_the_environment_records_the_tf32_settings_and_leaves_them_alone() -> None:
    from ginv.experiments.reproduce import environment

    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
              torch.get_float32_matmul_precision())  # fmt: skip
    env = environment(torch.device("cpu"))
    assert env["float32_matmul_precision"] == before[2]
    assert env["cuda.matmul.allow_tf32"] == str(before[0])
    assert env["cudnn.allow_tf32"] == str(before[1])
    torch.set_float32_matmul_precision("high")  # the user's opt-in, recorded as set
    try:
        env = environment(torch.device("cpu"))
        assert env["float32_matmul_precision"] == "high"
        assert env["cuda.matmul.allow_tf32"] == "True"
    finally:
        torch.set_float32_matmul_precision(before[2])
    assert torch.backends.cuda.matmul.allow_tf32 == before[0]


def test_gpu_paper_script_parses() -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash")
    done = subprocess.run(
        [bash, "-n", str(SCRIPTS / "gpu-paper.sh")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
