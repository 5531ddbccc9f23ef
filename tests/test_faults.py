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

from ginv.cli import main
from ginv.errors import GinvError
from ginv.training import TrainConfig, Trainer, checkpoint
from ginv.training.checkpoint import atomic_write_text

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
    study._data["mnist"] = synthetic_dataset()
    configs = [TrainConfig(seed=s, **TOY) for s in (0, 1)]
    # a kill after the results, before the clean-up: the batch folder stays, with a temporary
    left = tmp_path / "runs" / "_batch-killed"
    Trainer(
        configs, study.data(), left, "cpu", False, member_dirs=[study.run_dir(c) for c in configs]
    ).fit()
    (left / f".checkpoint-x.pt.{_dead_pid()}.tmp").write_text("x")
    # a batch of which one member has no results yet is kept: it can resume
    pending = tmp_path / "runs" / "_batch-pending"
    extra = TrainConfig(seed=2, **TOY)
    Trainer([configs[0], extra], study.data(), pending, "cpu", False,
            member_dirs=[tmp_path / "elsewhere", study.run_dir(extra)]).fit()  # fmt: skip
    (study.run_dir(extra) / "run.json").unlink()
    runs = study.runs(configs)
    assert [r.config for r in runs] == configs
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == sorted(
        ["_batch-pending", *(c.key() for c in configs), extra.key()]
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
        (None, "lies outside"),
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
        ({"title": None}, "'title' must be text"),
        ({"tables": [{"caption": "c"}]}, "each table needs"),
        ({"notes": "one note"}, "tables, figures, notes and files must be lists"),
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
