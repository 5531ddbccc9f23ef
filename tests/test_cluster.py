"""Executors and the shared run cache (ginv.cluster): locks, settings, concurrent local
drivers, and, on a SLURM cluster that answers (`scripts/slurm-local.sh start`), study runs as
SLURM jobs: byte-identical to local ones, resumed after `scancel`, shared by two drivers, and
picked up by a driver killed and restarted."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import RESUME_SETTINGS

from ginv.cluster import SlurmConfig
from ginv.errors import GinvError
from ginv.locks import FileLock, try_locked

HERE = Path(__file__).parent
GINV = [sys.executable, "-m", "ginv.cli"]
COUNTED = [sys.executable, str(HERE / "_count_training.py")]
# The smoke table for one group and one full-length ν round: small enough for a test, every
# kind of job included (families, the ν pre-search and search, the family measures).
SMOKE_R4 = ["reproduce", "table", "--profile", "smoke", "--set", "groups=R4",
            "--set", "nu_max_rounds=1", "--quiet"]  # fmt: skip
ON_SLURM = ["--executor", "slurm", "--slurm", "poll_s=0.5"]


def _env(**extra: str) -> dict[str, str]:
    # one torch thread in the driver, as in every job (cpus_per_job=1): identical floats
    return {**os.environ, "OMP_NUM_THREADS": "1", **extra}


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*GINV, *argv], capture_output=True, text=True, env=_env(), **kwargs)


# --- always: locks, settings, errors ---------------------------------------------------------
_HOLDER = """
import sys, time
from ginv.locks import FileLock
with FileLock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_a_file_lock_excludes_other_processes_and_dies_with_its_holder(tmp_path: Path) -> None:
    path = tmp_path / "locks" / "run-x.lock"
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(path), "60"],
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    with try_locked(path) as held:
        assert not held
    holder.send_signal(signal.SIGKILL)  # as scancel's SIGKILL: the kernel drops the lock
    holder.wait()
    with try_locked(path) as held:
        assert held
    with FileLock(path) as lock:
        assert lock.held
    assert not path.exists()  # the holder deletes its lock file as it releases it


_COUNTER = """
import sys
from pathlib import Path
from ginv.locks import FileLock
lock, counter = Path(sys.argv[1]), Path(sys.argv[2])
for _ in range(int(sys.argv[3])):
    with FileLock(lock):  # an unguarded read-modify-write: a split lock would lose counts
        n = int(counter.read_text() or 0)
        counter.write_text(str(n + 1))
"""


def test_lock_files_are_deleted_on_release_and_the_lock_stays_exclusive(tmp_path: Path) -> None:
    lock, counter = tmp_path / "locks" / "c.lock", tmp_path / "counter"
    counter.write_text("0")
    workers = [subprocess.Popen([sys.executable, "-c", _COUNTER, str(lock), str(counter), "150"])
               for _ in range(4)]  # fmt: skip
    assert all(w.wait(timeout=120) == 0 for w in workers)
    assert counter.read_text() == "600"
    assert not lock.exists() and list(lock.parent.iterdir()) == []


def test_slurm_settings_are_typed_and_checked() -> None:
    config = SlurmConfig().with_overrides(
        ["partition=gpu", "gpus_per_job=1", "cpus-per-job=8", "mem_gb=32", "time_min=600",
         "measure_jobs=false", "sbatch.account=abc", "sbatch.exclusive=true"]
    )  # fmt: skip
    assert (config.partition, config.gpus_per_job, config.cpus_per_job) == ("gpu", 1, 8)
    assert config.mem_gb == 32.0 and config.measure_jobs is False and config.job_threads == 8
    assert dict(config.sbatch) == {"account": "abc", "exclusive": "true"}
    d = SlurmConfig()
    assert (d.partition, d.gpus_per_job, d.cpus_per_job, d.job_threads) == ("", 0, 1, 1)
    for bad, message in (("cpus_per_job=0", "cpus_per_job must be ≥ 1"),
                         ("mem_gb=x", "cannot read 'x' as float"),
                         ("partion=gpu", "known key"), ("sbatch.Bad Option=1", "sbatch option"),
                         ("measure_jobs=maybe", "expected true or false")):  # fmt: skip
        with pytest.raises(GinvError, match=message):
            SlurmConfig().with_overrides([bad])


def test_executor_errors_are_one_line(tmp_path: Path) -> None:
    cases = [
        (["--slurm", "cpus_per_job=2"], "--slurm settings need --executor slurm"),
        (["--executor", "slurm", "--slurm", "max_retries=-1"], "max_retries must be ≥ 0"),
    ]
    for extra, message in cases:
        done = _run([*SMOKE_R4, "--out", str(tmp_path / "x"), *extra])
        assert done.returncode == 2 and message in done.stderr, done.stderr
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    # no sinfo on the PATH: no cluster answers, said in one line, before any work
    env = {**_env(), "PATH": str(tmp_path / "empty")}
    done = subprocess.run([*GINV, *SMOKE_R4, "--out", str(tmp_path / "y"), "--executor", "slurm"],
                          capture_output=True, text=True, env=env)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr == "ginv: error: no SLURM cluster answers (sinfo: command not found)\n"


@pytest.mark.slow
def test_plan_says_how_many_jobs(tmp_path: Path) -> None:
    done = _run(["reproduce", "table", "--profile", "paper", "--plan", "--out", str(tmp_path)])
    assert done.returncode == 0, done.stderr
    found = re.search(r"with --executor slurm: (\d+) jobs.*; (\d+) of them", done.stdout)
    assert found, done.stdout
    # per group: WT, DA, pre-search, 2 ν rounds, the other seeds of IR, 3 family measures
    assert (int(found.group(1)), int(found.group(2))) == (2 * 9, 2 * 3)


def test_another_machine_s_temporaries_are_left_alone(tmp_path: Path) -> None:
    from ginv.io import atomic_write_text

    theirs = tmp_path / ".run.json.1@othermachine.tmp"  # pid 1 here means nothing there
    theirs.write_text("x")
    atomic_write_text("{}", tmp_path / "run.json")
    assert theirs.is_file() and not list(tmp_path.glob(f".*{os.getpid()}*.tmp"))


@pytest.mark.slow
def test_two_local_drivers_on_one_out_both_finish_training_nothing_twice(
    tmp_path: Path, real_data_dir: Path
) -> None:
    out, log = tmp_path / "out", tmp_path / "trained.log"
    # in-process drivers (--workers 1): the counting wrapper patches training in its process
    argv = [*COUNTED, *SMOKE_R4, "--workers", "1", "--out", str(out)]
    drivers = [subprocess.Popen(argv, env=_env(GINV_TRAINED_LOG=str(log)), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for _ in range(2)]  # fmt: skip
    finished = [d.communicate(timeout=600) for d in drivers]
    assert [d.returncode for d in drivers] == [0, 0], [e for _, e in finished]
    trained = Counter(line.split(" ", 1)[1] for line in log.read_text().splitlines())
    assert trained and max(trained.values()) == 1, trained
    assert len({line.split()[0] for line in log.read_text().splitlines()}) >= 1
    tables = [o.split("main table", 1)[1] for o, _ in finished]
    assert tables[0] == tables[1]
    assert not list((out / "runs").glob("_batch-*"))  # cleaned once every member finished


# --- on a SLURM cluster ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def slurm() -> None:
    try:
        from ginv.cluster.slurm import cluster_answers

        cluster_answers()
    except GinvError as e:
        pytest.skip(f"{e}: start one with scripts/slurm-local.sh start")
    pytest.importorskip("submitit", reason="submitit is not installed (ginv[cluster])")


@pytest.fixture(scope="module")
def local_table(tmp_path_factory: pytest.TempPathFactory, real_data_dir: Path) -> bytes:
    out = tmp_path_factory.mktemp("local")
    done = _run([*SMOKE_R4, "--out", str(out)])
    assert done.returncode == 0, done.stderr
    return (out / "table" / "table.csv").read_bytes()


def _jobs(out: Path) -> tuple[list[dict], list[str]]:
    """The job registry (one record per task) and the job folders submitit made."""
    records = [json.loads(p.read_text()) for p in (out / "slurm" / "jobs").glob("*.json")]
    folders = [p.name for p in (out / "slurm").iterdir() if p.name.isdigit()]
    return records, folders


@pytest.mark.slurm
@pytest.mark.xdist_group("slurm")  # one local cluster: its tests on one xdist worker
def test_a_job_cancelled_mid_training_is_resubmitted_and_resumes(
    slurm: None, tmp_path: Path, resume_reference: list
) -> None:
    from ginv.cluster.slurm import job_states
    from ginv.experiments import profile
    from ginv.experiments.study import Study
    from ginv.io import load_torch_file

    config = profile("smoke", RESUME_SETTINGS)
    whole = resume_reference  # uninterrupted, at one thread as the job
    configs = [run.config for run in whole]
    out = tmp_path / "slurm"
    driver = subprocess.Popen(
        [sys.executable, "-c", _DRIVER, str(out)], env=_env(), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.time() + 240
    while time.time() < deadline and not list(out.glob("runs/_batch-*/checkpoint-*.pt")):
        time.sleep(0.05)
    (record,) = _jobs(out)[0]
    assert job_states([record["job_id"]])[record["job_id"]] == "RUNNING"
    subprocess.run(["scancel", record["job_id"]], check=True)
    stdout, stderr = driver.communicate(timeout=300)
    assert driver.returncode == 0, stderr
    assert stdout.strip() == "submitted 2"  # the first job and its resubmission
    (record2,) = _jobs(out)[0]
    assert record2["attempt"] == 2 and record2["job_id"] != record["job_id"]
    assert sorted(_jobs(out)[1]) == sorted([record["job_id"], record2["job_id"]])
    assert job_states([record["job_id"]])[record["job_id"]] == "CANCELLED"
    log = Path(record2["stdout"]).read_text()
    resumed_at = re.search(r"resuming from epoch (\d+)", log)
    assert resumed_at and 1 <= int(resumed_at.group(1)) < 40, log
    assert "done" in log
    # the rerun resumed: the same history (but the wall times) and the same weights
    resumed = Study(config, out, device="cpu", progress=False).cache.finished_runs(configs)
    for a, b in zip(whole, resumed, strict=True):
        strip = [{k: v for k, v in h.items() if k != "seconds"} for h in a.record["history"]]
        assert [
            {k: v for k, v in h.items() if k != "seconds"} for h in b.record["history"]
        ] == strip
        wa, wb = load_torch_file(a.folder / "model.pt"), load_torch_file(b.folder / "model.pt")
        assert all(bool((wa[k] == wb[k]).all()) for k in wa)


_DRIVER = """
import sys
from pathlib import Path
from ginv.cluster import SlurmConfig
from ginv.cluster.slurm import SlurmExecutor
from ginv.experiments import profile
from ginv.experiments.study import Study

out = Path(sys.argv[1])
config = profile("smoke", {settings})
executor = SlurmExecutor(SlurmConfig(poll_s=0.5), out, progress=False)
study = Study(config, out, device="cpu", progress=False, executor=executor)
study.runs([config.run("R4", "WT", seed) for seed in (0, 1)])
print("submitted", executor.submitted)
""".replace("{settings}", repr(RESUME_SETTINGS))


@pytest.mark.slurm
@pytest.mark.xdist_group("slurm")  # one local cluster: its tests on one xdist worker
def test_two_slurm_drivers_at_once_share_the_jobs_to_the_local_table(
    slurm: None, local_table: bytes, tmp_path: Path
) -> None:
    """Two drivers on one OUT, at once: each task is one job (submitted once, by either),
    every job logs under ``OUT/slurm/<job id>``, and the table is the local one byte for byte."""
    argv = [*GINV, *SMOKE_R4, "--out", str(tmp_path), *ON_SLURM]
    drivers = [subprocess.Popen(argv, env=_env(), text=True, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE) for _ in range(2)]  # fmt: skip
    finished = [d.communicate(timeout=600) for d in drivers]
    assert [d.returncode for d in drivers] == [0, 0], [e for _, e in finished]
    assert finished[0][0].split("main table", 1)[1] == finished[1][0].split("main table", 1)[1]
    assert (tmp_path / "table" / "table.csv").read_bytes() == local_table
    records, folders = _jobs(tmp_path)
    assert {r["kind"] for r in records} == {"train", "measure"}
    assert sorted(r["job_id"] for r in records) == sorted(folders)  # no task submitted twice
    assert all(r["attempt"] == 1 for r in records)
    for r in records:  # each job has its own log folder under OUT/slurm
        assert Path(r["stderr"]).parent == tmp_path / "slurm" / r["job_id"]
    assert "slurm" in json.loads((tmp_path / "environment.json").read_text())["executor"]


@pytest.mark.slurm
@pytest.mark.xdist_group("slurm")  # one local cluster: its tests on one xdist worker
def test_a_killed_driver_restarted_resubmits_only_missing_jobs(
    slurm: None, local_table: bytes, tmp_path: Path
) -> None:
    argv = [*GINV, *SMOKE_R4, "--out", str(tmp_path), *ON_SLURM]
    driver = subprocess.Popen(argv, env=_env(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 240
    while time.time() < deadline and len(list(tmp_path.glob("runs/*/run.json"))) < 3:
        time.sleep(0.1)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    before, _ = _jobs(tmp_path)
    assert not (tmp_path / "table" / "table.csv").exists(), "killed before the end"
    done = subprocess.run(argv, env=_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "table" / "table.csv").read_bytes() == local_table
    records, folders = _jobs(tmp_path)
    assert sorted(r["job_id"] for r in records) == sorted(folders)  # none submitted twice
    assert all(r["attempt"] == 1 for r in records)
    assert {r["job_id"] for r in before} <= {r["job_id"] for r in records}


@pytest.mark.slurm
@pytest.mark.xdist_group("slurm")  # one local cluster: its tests on one xdist worker
def test_a_job_whose_code_raises_is_one_error_naming_it_and_its_log(
    slurm: None, tmp_path: Path, real_data_dir: Path
) -> None:
    from ginv.cluster.slurm import SlurmExecutor
    from ginv.experiments import profile
    from ginv.experiments.study import Study

    config = profile("smoke", ["n_train=20000"])  # more than the split holds: the job raises
    executor = SlurmExecutor(SlurmConfig(poll_s=0.5), tmp_path, progress=False)
    study = Study(config, tmp_path, device="cpu", progress=False, executor=executor)
    with pytest.raises(GinvError) as error:
        study.runs([config.run("R4", "DA", 0)])
    (record,) = _jobs(tmp_path)[0]
    message = str(error.value)
    assert message.startswith(f"SLURM job {record['job_id']} (mnist-R4-mlp ×1) failed: ")
    assert "n_train = 20000, but the split holds only 10000 samples" in message
    assert message.endswith(f"its log: {record['stderr']}") and record["attempt"] == 1
    assert "\n" not in message
