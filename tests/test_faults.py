"""Faults and bad input: atomic and durable writes, kills, full disks, closed pipes, crafted
files and out-of-range sizes. Each is one clear line, loses nothing and runs no planted code."""

from __future__ import annotations

import base64
import errno
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import synthetic_dataset

from ginv import io as checkpoint
from ginv.cli import main
from ginv.errors import GinvError
from ginv.io import atomic_write_text
from ginv.training import TrainConfig, Trainer

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TOY = dict(epochs=2, batch_size=32, depth=2, width=16, n_train=256, n_val=64)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()
    return child.pid


def test_atomic_writes_sync_the_file_before_the_rename_and_the_folder_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        calls.append("fsync folder" if os.path.isdir(f"/proc/self/fd/{fd}") else "fsync file")
        real_fsync(fd)

    monkeypatch.setattr(checkpoint.os, "fsync", fsync)
    monkeypatch.setattr(
        checkpoint.os, "replace", lambda a, b: calls.append("rename") or real_replace(a, b)
    )
    atomic_write_text("new", tmp_path / "f.txt")
    assert calls == ["fsync file", "rename", "fsync folder"]
    assert (tmp_path / "f.txt").read_text() == "new" and os.listdir(tmp_path) == ["f.txt"]


def test_a_full_disk_is_one_line_and_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "f.txt").write_text("old")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint.os, "fsync", full)
    with pytest.raises(GinvError) as error:
        atomic_write_text("new", tmp_path / "f.txt")
    assert str(error.value) == f"cannot write {tmp_path / 'f.txt'}: No space left on device"
    assert (tmp_path / "f.txt").read_text() == "old" and os.listdir(tmp_path) == ["f.txt"]


def test_temporaries_of_killed_writers_are_removed_live_ones_kept(tmp_path: Path) -> None:
    dead = tmp_path / f".model.pt.{_dead_pid()}.tmp"
    live = tmp_path / f".model.pt.{os.getppid()}.tmp"  # a process that is running
    other = tmp_path / ".notes.txt"
    for f in (dead, live, other):
        f.write_text("x")
    atomic_write_text("new", tmp_path / "run.json")
    assert sorted(os.listdir(tmp_path)) == sorted([live.name, other.name, "run.json"])


def test_batch_checkpoints_left_by_a_kill_are_removed_once_their_runs_are_done(
    tmp_path: Path,
) -> None:
    from ginv.experiments import profile
    from ginv.experiments.study import Study

    study = Study(profile("smoke"), tmp_path, device="cpu", progress=False)
    study.cache._data["mnist"] = synthetic_dataset()
    configs = [TrainConfig(seed=s, **TOY) for s in (0, 1)]
    # a kill after the results, before the clean-up: the batch folder stays, with a temporary
    left = tmp_path / "runs" / "_batch-killed"
    Trainer(
        configs,
        study.data(),
        left,
        "cpu",
        False,
        member_dirs=[study.cache.run_dir(c) for c in configs],
    ).fit()
    (left / f".checkpoint-x.pt.{_dead_pid()}.tmp").write_text("x")
    # a batch of which one member has no results yet is kept: it can resume
    pending = tmp_path / "runs" / "_batch-pending"
    extra = TrainConfig(seed=2, **TOY)
    Trainer([configs[0], extra], study.data(), pending, "cpu", False,
            member_dirs=[tmp_path / "elsewhere", study.cache.run_dir(extra)]).fit()  # fmt: skip
    (study.cache.run_dir(extra) / "run.json").unlink()
    runs = study.runs(configs)
    assert [r.config for r in runs] == configs
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == sorted(
        ["_batch-pending", "index.csv", *(c.key() for c in configs), extra.key()]
    )
    study.runs([extra])  # trains it, then removes its batch and the one it finished
    assert not any(p.name.startswith("_batch-") for p in (tmp_path / "runs").iterdir())


# --- ginv report: only the results folder's own PNGs are embedded -----------------------
def _results_folder(tmp_path: Path, figure: dict | None = None, **changes) -> Path:
    out = tmp_path / "results"
    (out / "table").mkdir(parents=True)
    (out / "table" / "t.png").write_bytes(PNG_MAGIC + b"a real enough image")
    results = {
        "experiment": "table", "title": "T", "description": "d", "tables": [], "notes": [],
        "figures": [figure or {"png": "t.png", "pdf": "t.pdf", "caption": "c"}], "files": [],
    }  # fmt: skip
    (out / "table" / "results.json").write_text(json.dumps({**results, **changes}))
    return out


@pytest.mark.parametrize(
    ("png", "message"),
    [
        ("/etc/hostname", "lies outside"),
        ("../../../../../../etc/hostname", "lies outside"),
        ("link.png", "lies outside"),  # a link inside the folder to a file outside it
        ("text.png", "not a PNG image"),
        (None, "'figures[0].png' must be text, got NoneType"),
    ],
)
def test_report_embeds_only_pngs_inside_the_results_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture, png: str | None, message: str
) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(PNG_MAGIC + b"SECRET")
    out = _results_folder(tmp_path, {"png": png, "pdf": "t.pdf", "caption": "c"})
    (out / "table" / "link.png").symlink_to(secret)
    (out / "table" / "text.png").write_text("SECRET, not an image")
    assert main(["report", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ginv: error:") and message in err and err.count("\n") == 1
    assert not (out / "report.html").exists() and not (out / "report.md").exists()


def test_report_embeds_its_own_png(tmp_path: Path) -> None:
    out = _results_folder(tmp_path)
    assert main(["report", str(out)]) == 0
    data = base64.b64encode(PNG_MAGIC + b"a real enough image").decode()
    assert data in (out / "report.html").read_text()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"title": None}, "'title' must be text, got NoneType"),
        ({"tables": [{"caption": "c"}]}, "'tables[0].columns' is missing"),
        ({"notes": "one note"}, "'notes' must be a list, got str"),
        ({"experiment": "../.."}, None),  # ignored: paths come from the folder
    ],
)
def test_report_of_a_malformed_results_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture, changes: dict, message: str | None
) -> None:
    out = _results_folder(tmp_path, **changes)
    if message is None:
        assert main(["report", str(out)]) == 0
        assert "![c](table/t.png)" in (out / "report.md").read_text()
        return
    assert main(["report", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{out / 'table' / 'results.json'}: {message}" in err and err.count("\n") == 1
    (out / "table" / "results.json").write_text(json.dumps({"title": "T"}))
    (out / "summary.json").write_text('{"table": "slow"}')
    assert main(["report", str(out)]) == 2


def test_a_full_disk_in_the_cli_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    out = _results_folder(tmp_path)

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint.os, "fsync", full)
    assert main(["report", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == f"ginv: error: cannot write {out / 'report.md'}: No space left on device\n"
    assert sorted(os.listdir(out)) == ["table"]


def test_any_os_error_reaching_the_cli_is_one_line_naming_the_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import ginv.cli

    def unreadable(args: object) -> int:
        raise PermissionError(errno.EACCES, "Permission denied", "/data/x.json")

    monkeypatch.setattr(ginv.cli, "_report", unreadable)
    assert main(["report", "somewhere"]) == 2
    assert capsys.readouterr().err == "ginv: error: /data/x.json: Permission denied\n"


# --- sizes, seeds, devices ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("configs", "message"),
    [
        ([dict(seed=0), dict(seed=0)], "two runs would write to"),
        ([dict(reg="logit", nu=0.1), dict(reg="logit", nu=0.1000001)], "-nu0.1-seed0"),
        ([dict(n_train=257)], "n_train = 257, but the split holds only 256 samples"),
        ([dict(n_val=65)], "n_val = 65, but the split holds only 64 samples"),
        ([dict(seed=2**63)], "seed must be in [0, 2⁶³)"),
        ([dict(seed=-1)], "seed must be in [0, 2⁶³)"),
        ([dict(split_seed=-1)], "split seed must be in [0, 2⁶³)"),
    ],
)
def test_trainer_refuses_runs_that_would_be_recorded_wrongly(
    tmp_path: Path, configs: list[dict], message: str
) -> None:
    with pytest.raises(GinvError, match=re.escape(message)):
        Trainer([TrainConfig(**{**TOY, **c}) for c in configs], synthetic_dataset(), tmp_path)
    assert not any(tmp_path.iterdir())


def test_split_head_refuses_sizes_that_would_mean_something_else() -> None:
    split = synthetic_dataset().train
    assert len(split.head(None)) == len(split) and len(split.head(3)) == 3
    for n in (0, -5, len(split) + 1):
        with pytest.raises(GinvError, match=f"asked for {n} samples of a split of 256"):
            split.head(n)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--subset", "0"], "--subset must be ≥ 1"),
        (["--subset", "-5"], "--subset must be ≥ 1"),
        (["--si-subset", "-1"], "--si-subset must be ≥ 1"),
        (["--sensitivity-subset", "0"], "--sensitivity-subset must be ≥ 1"),
        (["--si-subset", "999999", "--subset", "10"], "--si-subset 999999 is larger than the data"),
        (["--out", "."], "is a folder; name the JSON file"),
        (["--device", "meta"], "unknown device 'meta'"),
    ],
)
def test_bad_measure_arguments_fail_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, argv: list[str], message: str
) -> None:
    import ginv.training

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(ginv.training, "load_run", lambda *a: pytest.fail("loaded the run"))
    assert main(["measure", "--checkpoint", str(tmp_path / "run"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ginv: error:") and message in err and err.count("\n") == 1


@pytest.mark.parametrize("device", ["meta", "xpu", "mps", "cpu:1", "cuda:7", "CPU", ""])
def test_only_devices_ginv_runs_on_are_accepted(device: str) -> None:
    from ginv.training import resolve_device

    if device == "mps" and torch.backends.mps.is_available():
        pytest.skip("mps is available here")
    with pytest.raises(GinvError, match="device"):
        resolve_device(device)
    assert resolve_device("cpu") == torch.device("cpu")


TRAIN = ["train", "--epochs", "30", "--n-train", "256", "--n-val", "64", "--depth", "1",
         "--width", "8"]  # fmt: skip


def test_a_closed_output_pipe_neither_stops_the_work_nor_passes_for_success(
    tmp_path: Path, real_data_dir: Path
) -> None:
    """``ginv train ... 2>&1 | head -c 20``: training finishes and writes its run, and the
    status is 141 (as for a process killed by SIGPIPE), never 0."""
    cmd = [sys.executable, "-m", "ginv.cli", *TRAIN, "--out", str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    assert proc.stdout is not None
    assert proc.stdout.read(20)  # the progress bar has started: the work lies ahead
    proc.stdout.close()
    assert proc.wait(timeout=300) == 141
    run = json.loads((tmp_path / "mnist-R4-mlp-seed0" / "run.json").read_text())
    assert run["epochs_trained"] == 30 and (tmp_path / "mnist-R4-mlp-seed0" / "model.pt").is_file()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--seeds", "0,1,0"], "two runs would write to"),
        (["--reg", "logit", "--nu", "0.1,0.1000001"], "-nu0.1-seed0"),
        (["--n-train", "10001"], "n_train = 10001, but the split holds only 10000"),
        (["--seeds", str(2**63)], "seed must be in [0, 2⁶³)"),
        (["--split-seed", "-1"], "split seed must be in [0, 2⁶³)"),
        (["--device", "xpu"], "unknown device 'xpu'"),
    ],
)
def test_bad_train_runs_are_one_line_and_write_nothing(
    tmp_path: Path, real_data_dir: Path, capsys, argv: list[str], message: str
) -> None:
    assert main([*TRAIN, "--quiet", "--out", str(tmp_path / "runs"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ginv: error:") and message in err and err.count("\n") == 1
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


# --- ginv.measure misuse: one line, before any work ---------------------------------------
def _measure_misuse() -> dict:
    from ginv.models.mlp import MLP

    model = MLP(144, 16, 2, num_classes=9)
    x, y = torch.randn(6, 1, 12, 12), torch.arange(6) % 9
    return {
        "label past the logits": (
            (model, x, y + 9),
            {},
            "labels must lie in [0, 9) for a model with 9 logits, got 9..14",
        ),
        "negative label": (
            (model, x, y - 1),
            {},
            "labels must lie in [0, 9) for a model with 9 logits, got -1..4",
        ),
        "float labels": ((model, x, y.float()), {}, "labels must be integer class indices"),
        "labels (N, 1)": ((model, x, y[:, None]), {}, "labels must have shape (N,), got (6, 1)"),
        "NaN pixel": ((model, x.index_fill(0, torch.tensor([2]), torch.nan), y), {}, "finite"),
        "uint8 images": ((model, x.to(torch.uint8), y), {}, "uint8"),
        "no class axis": ((lambda t: t.flatten(1).sum(1), x, y), {}, "expected logits of shape"),
        "wrong input size": ((model, torch.randn(6, 1, 8, 8), y), {}, "the model fails on these"),
        "si_subset 0": ((model, x, y), {"si_subset": 0}, "si_subset must be a whole number ≥ 1"),
        "negative subset": ((model, x, y), {"sensitivity_subset": -2}, "sensitivity_subset must"),
        "batch size 0": ((model, x, y), {"batch_size": 0}, "batch_size must be"),
        "unknown method": ((model, x, y), {"sensitivity_method": "svd"}, "sensitivity method"),
    }


@pytest.mark.parametrize("case", list(_measure_misuse()))
def test_measure_refuses_misuse_in_one_line(case: str) -> None:
    from ginv.groups import R4
    from ginv.measures import measure

    args, kwargs, message = _measure_misuse()[case]
    calls = []
    model = args[0]
    counted = lambda t: calls.append(len(t)) or model(t)  # noqa: E731
    with pytest.raises(GinvError, match=re.escape(message)):
        measure(counted, *args[1:], R4(), **kwargs)
    # probes of one image (its logits, its footprint) at most: nothing is measured
    assert max(calls, default=0) <= 4 and sum(calls) <= 8


def test_measure_reads_a_metric_name_as_one_metric() -> None:
    from ginv.groups import R4
    from ginv.measures import measure
    from ginv.models.mlp import MLP

    report = measure(
        MLP(144, 16, 2, num_classes=9), torch.randn(4, 1, 12, 12), torch.arange(4), R4(), "si"
    )
    assert set(report.metrics) == {"si"}


# --- beyond the list ----------------------------------------------------------------------
def test_calibrate_checks_every_group_and_loss_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from ginv.experiments.study import Study

    monkeypatch.setattr(Study, "calibrate", lambda *a: pytest.fail("calibrated"))
    for flag, names, message in (("--group", "R4,Q9", "unknown group"),
                                 ("--loss", "logit,l2", "unknown loss 'l2'")):  # fmt: skip
        argv = ["calibrate", flag, names, "--profile", "smoke", "--out", str(tmp_path)]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("ginv: error:") and message in err and err.count("\n") == 1


def test_a_damaged_file_of_ginv_s_own_is_one_line_naming_it(tmp_path: Path) -> None:
    from ginv.experiments import profile
    from ginv.experiments.study import Study
    from ginv.groups import R4

    study = Study(profile("smoke"), tmp_path, device="cpu", progress=False)
    study.cache._data["mnist"] = synthetic_dataset()
    (run,) = study.runs([TrainConfig(**TOY)])
    study.cache.measure_run(run, study.measure_settings(R4(), ("accuracy",)))
    (cached,) = run.folder.glob("measure-*.json")
    first = json.loads(cached.read_text())
    cached.write_text('{"metrics": ')  # a cache: moved aside and measured again (ginv.records)
    again = study.cache.measure_run(run, study.measure_settings(R4(), ("accuracy",)))
    assert again["metrics"] == first["metrics"] == json.loads(cached.read_text())["metrics"]
    assert cached.with_name(cached.name + ".damaged").read_text() == '{"metrics": '
    (run.folder / "run.json").write_bytes(b"\xff")
    with pytest.raises(GinvError, match=re.escape(f"{run.folder / 'run.json'}: unreadable")):
        study.runs([TrainConfig(**TOY)])


def test_no_measure_named_and_study_seeds_past_2_63_are_one_line(capsys) -> None:
    from ginv.experiments import profile
    from ginv.groups import R4
    from ginv.measures import measure
    from ginv.models.mlp import MLP

    x, y = torch.randn(4, 1, 12, 12), torch.arange(4)
    with pytest.raises(GinvError, match="no measures asked for"):
        measure(MLP(144, 16, 2, num_classes=9), x, y, R4(), metrics=())
    assert main(["measure", "--checkpoint", "nowhere", "--metrics", ",,"]) == 2
    assert "no measures asked for" in capsys.readouterr().err
    with pytest.raises(GinvError, match=re.escape("seeds must be distinct and in [0, 2⁶³)")):
        profile("smoke", [f"seeds=0,{2**63}"])
    with pytest.raises(GinvError, match="calibration_seed must be in"):
        profile("smoke", ["calibration_seed=-1"])
