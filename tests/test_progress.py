"""Progress bars in logs (one line per finished step), --quiet / --verbose, and loggers."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ginv import progress

SRC = Path(__file__).resolve().parents[1] / "src"
TRAIN = ["train", "--epochs", "3", "--batch-size", "64", "--depth", "2", "--width", "16",
         "--n-train", "256", "--n-val", "64", "--seeds", "0,1"]  # fmt: skip


@pytest.fixture(autouse=True)
def _normal_verbosity():
    # a bar another test in this worker left open (a traceback pytest keeps can hold it)
    # would make every bar here a nested one
    progress._open_bars.clear()
    progress.set_verbosity(progress.NORMAL)  # another test may have left --quiet's
    yield
    progress.set_verbosity(progress.NORMAL)


def test_a_bar_in_a_log_is_one_line_per_step_and_nested_bars_show_only_when_verbose(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("GINV_PROGRESS", raising=False)
    log = io.StringIO()
    outer = progress.tqdm(total=3, desc="outer", unit="step", file=log)
    assert isinstance(outer, progress.LineProgress)
    inner = progress.tqdm(total=100, desc="inner", file=log, leave=False)
    inner.update(50)
    inner.close()
    for _ in range(3):
        outer.set_postfix_str("working")  # no step: no line (until the heartbeat)
        outer.update(1)
    outer.close()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert [line.split(" [")[0] for line in lines] == [f"outer: {i}/3 step" for i in (1, 2, 3)]
    assert all(line.endswith(" working") for line in lines)

    progress.set_verbosity(progress.VERBOSE)
    log = io.StringIO()
    with progress.tqdm(total=2, desc="outer", file=log) as outer:
        for _ in progress.tqdm(range(2), desc="inner", file=log, leave=False):
            pass
        outer.update(2)
    assert [line.split(" ")[0] for line in log.getvalue().splitlines()] == [
        "inner:", "inner:", "outer:"
    ]  # fmt: skip

    progress.set_verbosity(progress.QUIET)
    log = io.StringIO()
    bar = progress.tqdm(total=2, file=log)
    bar.update(2)
    bar.close()
    assert log.getvalue() == ""


def test_a_lasting_nested_bar_shows_in_a_log_and_the_heartbeat_only_says_something_new(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("GINV_PROGRESS", raising=False)
    log = io.StringIO()
    with progress.tqdm(total=1, desc="reproduce", file=log) as outer:
        jobs = progress.tqdm(total=2, desc="2 workers", unit="job", file=log)  # leave=True
        monkeypatch.setattr(progress, "HEARTBEAT_S", 0.0)
        jobs.set_postfix_str("running 2")  # new: a line
        jobs.set_postfix_str("running 2")  # the same again: none
        jobs.update(1)
        jobs.close()
        outer.update(1)
    lines = [re.sub(r" \[[^\]]*\]", "", line) for line in log.getvalue().splitlines()]
    assert lines == ["2 workers: 0/2 job running 2", "2 workers: 1/2 job running 2",
                     "reproduce: 1/1 it"]  # fmt: skip


def test_mininterval_spaces_the_lines_but_the_last_step_always_writes() -> None:
    log = io.StringIO()
    with progress.tqdm(total=3, desc="measure", file=log, mininterval=3600.0) as bar:
        for _ in range(3):
            bar.update(1)
    assert [line.split(" [")[0] for line in log.getvalue().splitlines()] == ["measure: 3/3 it"]


def test_a_resumed_bar_s_remaining_time_counts_only_the_steps_it_timed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = iter([0.0, 10.0, 10.0, 10.0])  # made at 0; one step done at 10 s
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    bar = progress.LineProgress(total=300, initial=150, file=io.StringIO())
    bar.n += 1
    assert bar.format_line() == "151/300 it [00:10<24:50]"  # 10 s a step, 149 to go


def test_a_finished_or_abandoned_loop_closes_its_bar() -> None:
    log = io.StringIO()
    done, left = (progress.tqdm(range(n), desc=d, file=log) for n, d in ((2, "a"), (5, "b")))
    for _ in done:
        pass
    for _ in left:
        break  # the loop's generator is dropped here, and its finally closes the bar
    assert done.disable and left.disable and not progress._open_bars  # both still referenced
    after = progress.tqdm(total=1, desc="after", file=log)
    assert not after.disable  # not taken for a bar nested in a leftover one
    after.close()


def test_a_terminal_gets_tqdm_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    from tqdm.auto import tqdm as terminal_tqdm

    monkeypatch.setenv("GINV_PROGRESS", "bars")
    bar = progress.tqdm(total=1, file=io.StringIO())
    assert isinstance(bar, terminal_tqdm)
    bar.close()
    with pytest.raises(ValueError):
        progress.set_verbosity(7)


def test_no_module_makes_a_bar_but_through_ginv_progress() -> None:
    for path in (SRC / "ginv").rglob("*.py"):
        if path.name != "progress.py":
            lines = path.read_text().splitlines()
            assert not [x for x in lines if x.startswith(("from tqdm", "import tqdm"))], path


def _ginv(args: list[str], **kwargs) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    env.pop("GINV_PROGRESS", None)
    return subprocess.run(
        [sys.executable, "-m", "ginv.cli", *args], env=env, capture_output=True, **kwargs
    )


@pytest.mark.slow
def test_ginv_train_with_stderr_to_a_pipe_writes_a_short_log_without_redraws(
    tmp_path: Path, real_data_dir: Path
) -> None:
    done = _ginv([*TRAIN, "--out", str(tmp_path / "runs")])
    assert done.returncode == 0, done.stderr.decode()
    log = done.stderr
    assert b"\r" not in log and 0 < len(log) < 1000, log
    assert log.decode().splitlines()[-1].startswith("mnist-R4-mlp ×2: 3/3 epoch")
    quiet = _ginv([*TRAIN, "--out", str(tmp_path / "quiet"), "--quiet"])
    assert quiet.returncode == 0 and quiet.stderr == b""
    both = _ginv([*TRAIN, "--out", str(tmp_path / "both"), "--quiet", "--verbose"])
    assert both.returncode == 2 and b"not allowed with argument" in both.stderr


# --- loggers: what the trainer logged, read back ---------------------------------------------
def _train_with(logger: str, out: Path, epochs: int = 3, resume: bool = False) -> list[dict]:
    from conftest import synthetic_dataset

    from ginv.training import TrainConfig, Trainer

    config = TrainConfig(epochs=epochs, batch_size=32, depth=2, width=16, n_train=256, n_val=64)
    trainer = Trainer([config], synthetic_dataset(), out, "cpu", progress=False, logger=logger)
    return trainer.fit(resume=resume)[0]["history"]


def test_the_csv_logger_writes_one_row_per_epoch_and_a_resume_continues_it(
    tmp_path: Path,
) -> None:
    import csv

    history = _train_with("csv", tmp_path, epochs=2)
    path = tmp_path / "mnist-R4-mlp-seed0" / "metrics.csv"
    with path.open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [1, 2]
    assert [float(r["loss"]) for r in rows] == pytest.approx([h["loss"] for h in history])
    assert set(rows[0]) == {"step", "epoch", "loss", "ce", "inv", "val_acc", "seconds"}
    # a row written after the last checkpoint (a kill) is dropped when the run resumes
    with path.open("a") as f:
        f.write("3,3,9,9,9,0,0\n")
    history = _train_with("csv", tmp_path, epochs=4, resume=True)
    with path.open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert [float(r["loss"]) for r in rows] == pytest.approx([h["loss"] for h in history])
    assert _train_with("none", tmp_path / "none") and not list(
        (tmp_path / "none").rglob("metrics.csv")
    )


def test_the_tensorboard_logger_writes_the_loss_of_every_epoch(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    history = _train_with("tensorboard", tmp_path)
    events = EventAccumulator(str(tmp_path / "mnist-R4-mlp-seed0"))
    events.Reload()
    assert {"train/loss", "train/ce", "val/val_acc"} <= set(events.Tags()["scalars"])
    loss = events.Scalars("train/loss")
    assert [e.step for e in loss] == [1, 2, 3]
    assert [e.value for e in loss] == pytest.approx([h["loss"] for h in history], rel=1e-6)


def test_the_wandb_logger_writes_an_offline_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    _train_with("wandb", tmp_path, epochs=2)
    runs = list((tmp_path / "mnist-R4-mlp-seed0" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb")), runs


def test_an_unknown_logger_is_one_error(tmp_path: Path) -> None:
    from ginv.errors import GinvError
    from ginv.training.loggers import make_logger

    with pytest.raises(GinvError, match="unknown logger 'mlflow'"):
        make_logger("mlflow", tmp_path)


def test_an_in_process_main_restores_the_verbosity(tmp_path: Path) -> None:
    from ginv.cli import main

    progress.set_verbosity(progress.NORMAL)
    # --quiet set for the call, a bad setting refused before any work
    assert main(["train", "--quiet", "--epochs", "-1", "--out", str(tmp_path)]) == 2
    assert progress.verbosity() == progress.NORMAL


def test_ginv_train_logs_the_tracked_si_to_tensorboard(tmp_path: Path, real_data_dir: Path) -> None:
    """From the command line: ``--logger tensorboard --track-si 8`` writes each epoch's
    validation SI as ``val/val_si``, the values of ``run.json``'s history."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from ginv.cli import main

    argv = ["train", "--epochs", "2", "--n-train", "256", "--n-val", "64", "--width", "16",
            "--depth", "2", "--reg", "logit", "--nu", "1", "--track-si", "8",
            "--logger", "tensorboard", "--quiet", "--out", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    folder = next(tmp_path.glob("*/run.json")).parent
    history = json.loads((folder / "run.json").read_text())["history"]
    events = EventAccumulator(str(folder))
    events.Reload()
    si = events.Scalars("val/val_si")
    assert [e.step for e in si] == [1, 2]
    assert [e.value for e in si] == pytest.approx([h["val_si"] for h in history], rel=1e-6)
    assert not (folder / "metrics.csv").exists()  # the logger asked for, not the default
