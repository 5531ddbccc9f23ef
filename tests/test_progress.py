"""Progress bars in logs (one line per finished step), --quiet / --verbose, and loggers."""

from __future__ import annotations

import io
import os
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
