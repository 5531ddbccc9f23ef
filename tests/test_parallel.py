"""Local worker processes (``--workers N``, ginv.cluster.parallel): the same table as one
process, a killed worker's task resumed from its checkpoint to the same weights, a worker's
GinvError as one line in the driver, and Ctrl-C stopping every worker with status 130."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import RESUME_SETTINGS, SMOKE_STUDY, run_ginv

from ginv.errors import GinvError

GINV = [sys.executable, "-m", "ginv.cli"]
SMOKE = ["reproduce", "table", "--profile", "smoke", "--quiet", "--threads-per-job", "1"]
# one batched WT training long enough to be killed half-way (as tests/test_cluster.py's)
LONG = RESUME_SETTINGS


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*GINV, *argv], capture_output=True, text=True, env=_env(), timeout=900)


def test_worker_settings_are_checked_and_default_to_cores_over_threads() -> None:
    from ginv.cluster import LocalExecutor, ParallelExecutor, WorkerConfig, make_executor
    from ginv.cluster.parallel import available_cores

    assert WorkerConfig().resolved_workers() == max(1, available_cores())
    assert WorkerConfig(0, threads=available_cores() + 1).resolved_workers() == 1
    assert WorkerConfig(3, threads=8).resolved_workers() == 3
    for bad in (WorkerConfig(-1), WorkerConfig(2, 0), WorkerConfig(2, 1, -1)):
        with pytest.raises(GinvError):
            bad.validate()
    out = Path("unused")
    assert type(make_executor("local", out, workers=WorkerConfig(1))) is LocalExecutor
    two = make_executor("local", out, workers=WorkerConfig(2), progress=False)
    assert isinstance(two, ParallelExecutor) and two.workers == 2 and two.submits_jobs
    assert make_executor("parallel", out, workers=WorkerConfig(1)).workers == 1  # type: ignore[attr-defined]


def test_a_worker_s_ginv_error_is_one_line_in_the_driver(
    tmp_path: Path, real_data_dir: Path
) -> None:
    from ginv.cluster import ParallelExecutor, WorkerConfig
    from ginv.experiments import profile
    from ginv.runs import RunCache, TrainTask, batch_key

    config = profile("smoke", [])
    configs = (config.run("R4", "WT", 0),)
    key = batch_key(configs)
    checkpoint = tmp_path / "runs" / f"_batch-{key}" / f"checkpoint-{key}.pt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"not a checkpoint")
    executor = ParallelExecutor(WorkerConfig(1), tmp_path, progress=False)
    try:
        with pytest.raises(GinvError) as raised:
            executor.run(RunCache(tmp_path, real_data_dir, "cpu"), [TrainTask(configs)])
    finally:
        executor.close()
    message = str(raised.value)
    assert message.startswith(f"{configs[0].family} ×1: ") and "not a torch file" in message
    assert "\n" not in message


_DRIVER = """
import sys
from pathlib import Path
from ginv.cluster import ParallelExecutor, WorkerConfig
from ginv.experiments import profile
from ginv.experiments.study import Study

out = Path(sys.argv[1])
config = profile("smoke", {long})
executor = ParallelExecutor(WorkerConfig(workers=2), out, progress=False)
study = Study(config, out, device="cpu", progress=False, executor=executor)
try:
    study.runs([config.run("R4", "WT", seed) for seed in (0, 1)])
finally:
    executor.close()
print("started", executor.started)
""".replace("{long}", repr(LONG))


def _training_worker(out: Path, deadline: float) -> int:
    """The pid of the worker training in ``out`` (its log is ``OUT/workers/<pid>.log``), once
    the training's first checkpoint is written."""
    while time.time() < deadline:
        if list(out.glob("runs/_batch-*/checkpoint-*.pt")):
            for log in (out / "workers").glob("*.log"):
                if "training from the start" in log.read_text():
                    return int(log.stem)
        time.sleep(0.05)
    raise AssertionError("no checkpoint was written")


@pytest.mark.slow
def test_a_killed_worker_s_task_resumes_from_its_checkpoint_to_the_same_run(
    tmp_path: Path, resume_reference: list
) -> None:
    from ginv.io import load_torch_file
    from ginv.runs import RunCache

    whole = resume_reference  # uninterrupted, at one thread as each worker
    configs = [run.config for run in whole]
    out = tmp_path / "killed"
    driver = subprocess.Popen([sys.executable, "-c", _DRIVER, str(out)], env=_env(), text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    victim = _training_worker(out, time.time() + 300)
    os.kill(victim, signal.SIGKILL)
    stdout, stderr = driver.communicate(timeout=600)
    assert driver.returncode == 0, stderr
    assert stdout.strip() == "started 2"  # the task and its rerun
    reruns = [p.read_text() for p in (out / "workers").glob("*.log") if "resuming" in p.read_text()]
    assert len(reruns) == 1 and "done" in reruns[0], reruns
    epoch = int(reruns[0].split("resuming from epoch ")[1].split()[0])
    assert 1 <= epoch < 40
    resumed = RunCache(out, device="cpu").finished_runs(configs)
    for a, b in zip(whole, resumed, strict=True):
        strip = [{k: v for k, v in h.items() if k != "seconds"} for h in a.record["history"]]
        assert [
            {k: v for k, v in h.items() if k != "seconds"} for h in b.record["history"]
        ] == strip
        wa, wb = load_torch_file(a.folder / "model.pt"), load_torch_file(b.folder / "model.pt")
        assert all(bool((wa[k] == wb[k]).all()) for k in wa)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (killed, not yet reaped by its exited parent's init) counts as gone
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.is_file() and stat.read_text().split(") ")[-1].startswith("Z"))


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_ctrl_c_stops_every_worker_and_exits_130(tmp_path: Path, real_data_dir: Path) -> None:
    argv = [*GINV, *SMOKE, "--workers", "2", "--out", str(tmp_path)]
    argv += [a for s in LONG for a in ("--set", s)]
    # with SIGINT at its default, as a terminal's foreground command has it: a test run
    # started in the background by a script (`.ci/run &`) inherits SIGINT ignored, and a
    # Python started so keeps ignoring it, which Ctrl-C cannot reach either
    driver = subprocess.Popen(argv, env=_env(), text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, preexec_fn=_default_sigint)  # fmt: skip
    _training_worker(tmp_path, time.time() + 300)
    workers = [int(p.stem) for p in (tmp_path / "workers").glob("*.log")]
    assert len(workers) == 2
    driver.send_signal(signal.SIGINT)
    try:
        driver.wait(timeout=60)  # the process itself, apart from who else holds its pipes
    except subprocess.TimeoutExpired:
        driver.send_signal(signal.SIGUSR1)  # every thread's stack (faulthandler), for the report
        time.sleep(3)
        driver.kill()
        _, stderr = driver.communicate(timeout=60)
        pytest.fail(f"the driver had not exited 60 s after SIGINT; its threads:\n{stderr}")
    try:
        _, stderr = driver.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        held = subprocess.run(["ps", "-eo", "pid,ppid,stat,etime,args"], capture_output=True,
                              text=True).stdout  # fmt: skip
        pytest.fail(f"the driver exited {driver.returncode}, but its output pipes stayed open "
                    f"60 s (a process it started holds them):\n{held}")  # fmt: skip
    assert driver.returncode == 130, stderr
    # (multiprocessing's resource tracker may add a warning about the killed workers' queues)
    assert "ginv: interrupted" in stderr.splitlines() and "Traceback" not in stderr, stderr
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers)


def test_the_schedule_of_chains_is_the_hand_computed_makespan() -> None:
    from ginv.experiments.plan import schedule

    assert schedule([[3, 3], [2], [2]], 1) == 10
    assert schedule([[3, 3], [2], [2]], 2) == 6  # the chain of 6 on one worker, 2 + 2 beside
    assert schedule([[3, 3], [2], [2]], 5) == 6  # no more than the longest chain
    assert schedule([[1, 1, 1], [1, 1, 1], [3]], 2) == 5  # the chain of 3 waits: 9 / 2 ≤ 5
    assert schedule([], 2) == 0


def test_the_plan_estimates_one_worker_and_n_workers_along_the_chains() -> None:
    from ginv.experiments import profile
    from ginv.experiments.plan import make_plan

    plan = make_plan(["table"], profile("paper", []), probe=False)
    plan.matmul_rate = plan.achieved_rate = 1e12
    chains = plan.chains()
    assert sum(map(sum, chains)) == pytest.approx(plan.estimate_seconds)
    assert plan.estimate_with(1) == pytest.approx(plan.estimate_seconds)
    longest = max(map(sum, chains))
    # per group and loss one ν search: pre-search, 2 rounds, validation SI, family
    assert sorted(len(c) for c in chains)[-2:] == [5, 5]
    two = plan.estimate_with(2)
    assert max(longest, plan.estimate_seconds / 2) <= two + 1e-9 < plan.estimate_seconds
    assert plan.estimate_with(100) == pytest.approx(longest)


@pytest.mark.slow
@pytest.mark.xdist_group(SMOKE_STUDY)  # on the worker that holds the smoke study
def test_two_workers_run_the_nu_searches_side_by_side_to_the_one_process_table_byte_for_byte(
    smoke_study: tuple[Path, subprocess.CompletedProcess],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``ginv reproduce table --workers 2``: R4's and T3's ν searches are in flight at once
    (each waits at a barrier for the other: one after the other, the first would time out
    there), both workers take tasks, and ``table.csv`` is ``--workers 1``'s byte for byte
    (the smoke study's, whose ``reproduce all`` ran with one worker, in the driver)."""
    from ginv.experiments.study import Study

    one = smoke_study[0]
    assert not (one / "workers").exists()  # --workers 1 runs in the driver

    barrier = threading.Barrier(2, timeout=300)
    real = Study._search
    searched = []

    def search(self: Study, group: str, loss: str):
        searched.append((group, threading.current_thread().name.startswith("nu-search")))
        barrier.wait()
        return real(self, group, loss)

    monkeypatch.setattr(Study, "_search", search)
    two = tmp_path / "two-workers"
    done = run_ginv([*SMOKE, "--workers", "2", "--out", str(two)], _env())
    assert done.returncode == 0, done.stderr
    assert sorted(searched) == [("R4", True), ("T3", True)]  # each once, in its own thread
    table = (two / "table" / "table.csv").read_bytes()
    assert table == (one / "table" / "table.csv").read_bytes()
    logs = list((two / "workers").glob("*.log"))
    assert len(logs) == 2  # both workers took tasks
    assert all("done" in p.read_text() for p in logs)


@dataclass(frozen=True)
class _Sleep:
    """A task that takes ``seconds`` and leaves ``<key>.done`` holding the order it ended in."""

    name: str
    seconds: float = 0.4
    kind: str = "sleep"

    @property
    def key(self) -> str:
        return self.name

    @property
    def label(self) -> str:
        return f"sleep {self.name}"

    def done(self, cache) -> bool:
        return (Path(cache.out) / f"{self.name}.done").exists()


def _sleep_work(spec, task: _Sleep) -> None:
    time.sleep(task.seconds)
    out = Path(spec.out)
    order = len(list(out.glob("*.done")))  # one worker: no two tasks end at once
    (out / f"{task.name}.done").write_text(str(order))


def test_a_waited_task_goes_before_the_tasks_handed_over_ahead(tmp_path: Path) -> None:
    """The critical path first: six tasks handed over ahead of time (the study's
    pre-submission), then one that a driver waits for, on one worker. In the order they came
    it would end seventh; it ends second, after the one the free worker took at once, and
    the six still run, each started once."""
    from ginv.cluster import ParallelExecutor, WorkerConfig
    from ginv.runs import RunCache

    class Sleeping(ParallelExecutor):
        work = staticmethod(_sleep_work)

    cache = RunCache(tmp_path, None, "cpu", False)
    executor = Sleeping(WorkerConfig(workers=1), tmp_path, progress=False)
    ahead = [_Sleep(f"ahead{i}") for i in range(6)]
    try:
        executor.submit(cache, ahead)
        executor.run(cache, [_Sleep("waited")])
        assert len(executor.live) == 1 and len(executor.pending) == 5  # one worker, one task
        assert int((tmp_path / "waited.done").read_text()) == 1
        executor.run(cache, ahead)
    finally:
        executor.close()
    assert all(t.done(cache) for t in ahead)
    assert executor.started == 7 and not executor.waited
    ends = sorted(
        int((tmp_path / f"{t.name}.done").read_text()) for t in [*ahead, _Sleep("waited")]
    )
    assert ends == list(range(7))
