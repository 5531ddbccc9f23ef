"""Shared fixtures: small IDX files written by the tests, and the real data when available."""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest
import torch


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, give each worker its own share of the cores (CPU affinity, which
    the processes it starts inherit): two workers on two cores would otherwise each run a
    ``reproduce`` on two local workers (``--workers`` defaults to the cores), four training
    processes on two cores. With one core each, a test's ``reproduce`` runs its tasks
    in-process, as on a one-core machine; tests that ask for ``--workers 2`` still get two."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if not worker.startswith("gw") or count < 2 or not hasattr(os, "sched_setaffinity"):
        return
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) >= count:
        os.sched_setaffinity(0, cores[int(worker[2:]) % count :: count])


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``--dist loadgroup`` a test marked ``xdist_group`` must carry its group in its id
    (pytest-xdist's tag, which the scheduler reads); where a pytest release stops it from
    taking, the tests that share one SLURM cluster or one fixture would be spread over
    workers silently, so stop with one line instead.

    The end-to-end tests (``slow``) go first, the rest keep their order: xdist hands tests
    out in this order, so the last ones a worker takes are short, and neither core idles
    for long at the end waiting on the other's last long test (the SLURM group, the
    largest unit, goes first anyway)."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
    if not getattr(config.option, "loadgroup", False):
        return
    lost = [i.nodeid for i in items if i.get_closest_marker("xdist_group") and "@" not in i.nodeid]
    if lost:
        raise pytest.UsageError(
            f"--dist loadgroup does not group on pytest {pytest.__version__} ({lost[0]} has no "
            "@group in its id): install requirements.txt's pytest"
        )


def run_ginv(
    args: Sequence[str], env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``ginv ARGS`` run in this process (``ginv.cli.main``), with its exit status and what it
    printed, as ``subprocess.run(..., capture_output=True, text=True)`` returns them: the
    same command without a new interpreter importing torch (about 3 s a call). For what needs
    a process of its own (a signal, a kill, an interpreter's exit) the tests still start one.
    ``env`` replaces the environment for the call."""
    from ginv.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved = dict(os.environ)
    if env is not None:
        os.environ.clear()
        os.environ.update(env)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array in IDX format."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape
    )
    return header + array.astype(np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> bytes:
    data = idx_bytes(array)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if compress else data)
    return data


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Each test session gets its own cache folder, so no test reads a user's cache."""
    cache = tmp_path_factory.getbasetemp() / "ginv-cache"
    monkeypatch.setenv("GINV_CACHE_DIR", str(cache))


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    value = os.environ.get("GINV_DATA_DIR")
    if not value or not Path(value).is_dir():
        pytest.skip("GINV_DATA_DIR is unset: tests on the real MNIST files are skipped")
    return Path(value)


SMOKE_STUDY = "smoke-study"
"""The ``xdist_group`` of the tests that read :func:`smoke_study`: on one worker, it is made once."""


@pytest.fixture(scope="session")
def smoke_study(
    tmp_path_factory: pytest.TempPathFactory, real_data_dir: Path
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """``ginv reproduce all --profile smoke`` (one thread, in this process), its folder and
    what it printed: the end-to-end run that several tests read, made once per session (one
    local worker: everything in the driver, the reference of ``--workers 2``)."""
    out = tmp_path_factory.mktemp("smoke-study") / "study"
    argv = [
        "reproduce",
        "all",
        "--profile",
        "smoke",
        "--workers",
        "1",
        "--out",
        str(out),
        "--quiet",
    ]
    done = run_ginv(argv, {**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    return out, done


RESUME_SETTINGS = ["epochs=40", "n_train=2000"]
"""The smoke profile's settings of the kill-and-resume tests: long enough to be killed midway."""


@pytest.fixture(scope="session")
def resume_reference(tmp_path_factory: pytest.TempPathFactory, real_data_dir: Path) -> list:
    """R4's WT runs of seeds 0 and 1 under :data:`RESUME_SETTINGS`, trained without
    interruption at one thread (as a worker or a SLURM job trains): what a killed local worker
    and a cancelled SLURM job must resume to, to the byte. Made once per test run: the xdist
    workers share one run cache, whose run locks let the first worker train it while the
    other waits and then reads it (as two drivers on one ``--out`` do)."""
    from ginv.experiments import profile
    from ginv.experiments.study import Study

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # …/pytest-N/popen-gwK: pytest-N is this run's
        root = root.parent
    config = profile("smoke", RESUME_SETTINGS)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        study = Study(config, root / "resume-reference", device="cpu", progress=False)
        return study.runs([config.run("R4", "WT", seed) for seed in (0, 1)])
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)


def synthetic_dataset(
    n_train: int = 256, n_val: int = 64, size: int = 12, classes: int = 3, seed: int = 0
):
    """A learnable toy dataset: each class is a fixed random pattern plus noise."""
    from ginv.data import DataConfig, Split, TransformingDataset

    g = torch.Generator().manual_seed(seed)
    patterns = torch.randn(classes, 1, size, size, generator=g)

    def split(n: int) -> Split:
        labels = torch.arange(n) % classes
        images = patterns[labels] + 0.5 * torch.randn(n, 1, size, size, generator=g)
        return Split(images, labels)

    train, val = split(n_train), split(n_val)
    return TransformingDataset(DataConfig(), train, val, val, 0.0, 1.0, classes)
