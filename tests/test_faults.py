"""Faults and bad input: atomic and durable writes, kills, full disks, closed pipes, crafted
files and out-of-range sizes. Each is one clear line, loses nothing and runs no planted code."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import synthetic_dataset

from ginv.errors import GinvError
from ginv.training import TrainConfig, Trainer, checkpoint
from ginv.training.checkpoint import atomic_write_text

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
