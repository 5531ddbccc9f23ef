"""``--executor slurm``: every task is a SLURM job submitted through submitit.

The driver submits a job per task that is not done, waits for them with one progress bar over
the jobs and their states, and reads nothing back from a job but the files it leaves in the
run cache. Each task's job is recorded in ``OUT/slurm/jobs/<task key>.json`` (job id,
attempt, log paths), written atomically under the task's lock, so that

- a second driver on the same ``OUT`` attaches to the job already queued instead of
  submitting another, and a driver killed and restarted with the same command picks up the
  finished jobs and resubmits only what is missing;
- a job that leaves the queue without the task's files (cancelled, preempted, timed out, its
  node lost) is resubmitted, up to ``max_retries`` times, and resumes from the trainer's last
  checkpoint; then one :class:`GinvError` names the job and its log. A job whose Python code
  raised (a diverged training, a bad file) is not retried: its error is the error.

Jobs are also submitit ``Checkpointable``: SLURM's warning signal before the time limit makes
submitit requeue the job itself (same job id), which then resumes likewise. Each job gets its
own folder, ``OUT/slurm/<job id>/``, with submitit's batch script, pickles and the logs
``<job id>_0_log.out`` / ``.err``. Job states come from ``squeue`` (and ``sacct`` where
accounting is on): a test cluster without accounting works.
"""

from __future__ import annotations

import getpass
import importlib.util
import os
import shlex
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ginv.cluster.config import SlurmConfig
from ginv.cluster.executor import Executor
from ginv.errors import GinvError
from ginv.io import atomic_write_json
from ginv.locks import FileLock
from ginv.progress import tqdm
from ginv.records import read_cache
from ginv.runs import CacheSpec, RunCache, Task, run_task

#: States of a job that is still in the scheduler's hands (it may yet finish the task).
ACTIVE = frozenset(
    ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD",
     "REQUEUE_FED", "RESIZING", "SUSPENDED", "STAGE_OUT", "SIGNALING", "RESV_DEL_HOLD")
)  # fmt: skip
SETTLE_S = 3.0  # how long a job's files may take to show after it ends (shared file systems)


def _run(command: list[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def cluster_answers() -> str:
    """The partitions ``sinfo`` lists; one :class:`GinvError` line when no cluster answers."""
    try:
        found = _run(["sinfo", "-h", "-o", "%P %a"], timeout=20)
    except FileNotFoundError:
        raise GinvError("no SLURM cluster answers (sinfo: command not found)") from None
    except subprocess.TimeoutExpired:
        raise GinvError("no SLURM cluster answers (sinfo: no reply in 20 s)") from None
    detail = (found.stderr.strip().splitlines() or [f"exit status {found.returncode}"])[-1]
    if found.returncode != 0:
        raise GinvError(f"no SLURM cluster answers (sinfo: {detail})")
    if not found.stdout.strip():
        raise GinvError("no SLURM cluster answers (sinfo: no partition)")
    return found.stdout.strip()


def job_states(job_ids: Sequence[str]) -> dict[str, str]:
    """The state of each job (``PENDING``, ``RUNNING``, ``COMPLETED``, ``CANCELLED``, …) from
    ``squeue``, which lists finished jobs for a while (``MinJobAge``), then ``sacct``; a job
    neither knows is ``UNKNOWN``."""
    wanted = set(job_ids)
    states: dict[str, str] = {}
    if not wanted:
        return states
    try:
        found = _run(["squeue", "-h", "-t", "all", "-u", getpass.getuser(), "-o", "%i|%T"])
        for line in found.stdout.splitlines():
            job, _, state = line.strip().partition("|")
            if job in wanted:
                states[job] = state.strip()
        rest = sorted(wanted - states.keys())
        if rest:
            found = _run(["sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", ",".join(rest)])
            for line in found.stdout.splitlines():
                job, _, state = line.strip().partition("|")
                if job in wanted and state:
                    states[job] = state.split()[0]  # "CANCELLED by 0"
    except (OSError, subprocess.TimeoutExpired):
        pass  # the scheduler is busy or gone: ask again at the next poll
    return {job: states.get(job, "UNKNOWN") for job in job_ids}


class GinvJob:
    """The callable of every job: :func:`run_task`. Its ``checkpoint`` makes it resumable for
    submitit: on SLURM's signal before the time limit (or a preemption), submitit requeues
    the job with the same arguments, and the rerun resumes from the trainer's checkpoint."""

    def __call__(self, spec: CacheSpec, task: Task) -> str:
        return run_task(spec, task)

    def checkpoint(self, spec: CacheSpec, task: Task) -> Any:
        """submitit's requeue hook: the same job again, which resumes from the checkpoint."""
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self, spec, task)


@dataclass
class _Job:
    task: Task
    job_id: str
    attempt: int
    stderr: str


class SlurmExecutor(Executor):
    """Runs tasks as SLURM jobs (see the module's description); ``submitted`` counts the jobs
    this driver submitted."""

    name = "slurm"
    submits_jobs = True

    def __init__(self, config: SlurmConfig, out: Path, progress: bool = True) -> None:
        if importlib.util.find_spec("submitit") is None:
            raise GinvError("--executor slurm needs submitit: pip install 'ginv[cluster]'")
        cluster_answers()
        self.config = config.validate()
        self.out = Path(out)
        self.folder = self.out / "slurm"
        self.progress = progress
        self.measures_as_jobs = config.measure_jobs
        self.live: dict[str, _Job] = {}
        self.submitted = 0

    # --- the job registry ---------------------------------------------------
    def _record_path(self, task: Task) -> Path:
        return self.folder / "jobs" / f"{task.key}.json"

    def _lock(self, task: Task) -> FileLock:
        return FileLock(self.out / "locks" / f"submit-{task.key}.lock")

    def submit(self, cache: RunCache, tasks: Sequence[Task]) -> None:
        """Submit a job per task that is not done and has none queued (see :meth:`_ensure`)."""
        for task in tasks:
            self._ensure(cache, task)

    def _ensure(self, cache: RunCache, task: Task) -> None:
        """Under the task's lock: nothing when it is done; else attach to its job if that is
        still queued or running (whoever submitted it); else judge the job that ended without
        the task's files (raise, or count a retry) and submit the next attempt. Retries are
        counted per driver run."""
        with self._lock(task):
            if task.done(cache):
                self.live.pop(task.key, None)
                return
            path = self._record_path(task)
            # a damaged record is moved aside (we hold the task's lock) and the task submitted
            # again: at worst a second job, which finds the run cache's files and stops
            record = read_cache(path, "slurm-job")
            attempt = 1
            if record is not None:
                job = _Job(task, record["job_id"], record["attempt"], record["stderr"])
                state = job_states([job.job_id])[job.job_id]
                if state in ACTIVE:
                    self.live[task.key] = job
                    return
                # A job this driver waited for is judged (its error raised, its retries
                # counted); one left by an earlier driver is just replaced: whatever stopped
                # it (a fixed error, a cancelled queue) gets a fresh set of retries.
                if task.key in self.live:
                    self._judge(job, state)
                    attempt = job.attempt + 1
            self.live[task.key] = self._submit(cache, task, attempt)

    def _judge(self, job: _Job, state: str) -> None:
        """Raise for a job that ended without its task's files: at once when its code raised,
        else when its retries are spent."""
        import submitit

        handle: Any = submitit.SlurmJob(folder=self.folder / "%j", job_id=job.job_id)
        if handle.paths.result_pickle.exists():
            failure = handle.exception()
            if failure is not None:
                # submitit's message holds the job's traceback between two rules of dashes;
                # its last line is the exception that the job raised
                parts = str(failure).split("-" * 22)
                trace = parts[1] if len(parts) >= 3 else str(failure)
                lines = [ln.strip() for ln in trace.splitlines() if ln.strip()] or ["an error"]
                raise GinvError(
                    f"SLURM job {job.job_id} ({job.task.label}) failed: {lines[-1][:300]}; "
                    f"its log: {job.stderr}"
                )
        if job.attempt > self.config.max_retries:
            raise GinvError(
                f"SLURM job {job.job_id} ({job.task.label}) ended {state} without finishing, "
                f"attempt {job.attempt} of {self.config.max_retries + 1} (max_retries "
                f"{self.config.max_retries}); its log: {job.stderr}"
            )

    def _submit(self, cache: RunCache, task: Task, attempt: int) -> _Job:
        import submitit

        c = self.config
        spec = CacheSpec.of(cache, c.job_threads)
        env = spec.env
        executor = submitit.SlurmExecutor(folder=self.folder / "%j", max_num_timeout=c.max_retries)
        extra: dict[str, Any] = {k: True if v.lower() == "true" else v for k, v in c.sbatch}
        params: dict[str, Any] = {
            "job_name": f"ginv-{task.kind}-{task.label.split()[-2]}",
            "time": c.time_min, "cpus_per_task": c.cpus_per_job, "mem": f"{round(c.mem_gb * 1024)}M",
            # the data and cache folders and the thread count, whatever the site exports
            "setup": [f"export {k}={shlex.quote(v)}" for k, v in env]
            + [f"export OMP_NUM_THREADS={c.job_threads}"],
            "additional_parameters": extra,
        }  # fmt: skip
        if c.partition:
            params["partition"] = c.partition
        if c.gpus_per_job:
            params["gpus_per_node"] = c.gpus_per_job
        try:
            executor.update_parameters(**params)
            handle = executor.submit(GinvJob(), spec, task)
        except (subprocess.CalledProcessError, submitit.core.utils.FailedJobError) as e:
            detail = getattr(e, "stderr", None) or str(e)
            if isinstance(detail, bytes):
                detail = detail.decode(errors="replace")
            lines = str(detail).strip().splitlines() or ["no reason given"]
            raise GinvError(f"sbatch refused the job for {task.label}: {lines[-1][:300]}") from None
        job = _Job(task, str(handle.job_id), attempt, str(handle.paths.stderr))
        atomic_write_json(
            {"job_id": job.job_id, "attempt": attempt, "task": task.label, "kind": task.kind,
             "stdout": str(handle.paths.stdout), "stderr": job.stderr,
             "submitted_at": time.time(), "by": f"{socket.gethostname()}:{os.getpid()}"},
            self._record_path(task),
        )  # fmt: skip
        self.submitted += 1
        return job

    # --- waiting --------------------------------------------------------------
    def run(self, cache: RunCache, tasks: Sequence[Task]) -> None:
        """Submit what is not done (or attach to its job) and wait until every task is done."""
        todo = {t.key: t for t in tasks if not t.done(cache)}
        self.submit(cache, list(todo.values()))
        bar = tqdm(total=len(todo), desc="slurm jobs", unit="job",
                   disable=not self.progress)  # fmt: skip
        ended: dict[str, float] = {}
        try:
            while todo:
                pending = {k: self.live[k] for k in todo if k in self.live}
                states = job_states([j.job_id for j in pending.values()])
                for key, task in list(todo.items()):
                    job = self.live.get(key)
                    if job is None or task.done(cache):
                        del todo[key]
                        self.live.pop(key, None)
                        bar.update(1)
                        continue
                    if states.get(job.job_id, "UNKNOWN") in ACTIVE:
                        continue
                    first = ended.setdefault(key, time.monotonic())
                    if time.monotonic() - first >= SETTLE_S:  # its files had time to show
                        del ended[key]
                        self._ensure(cache, task)  # raises, or resubmits / attaches
                counts = Counter(states.get(j.job_id, "UNKNOWN") for k, j in self.live.items()
                                 if k in todo)  # fmt: skip
                bar.set_postfix_str(", ".join(f"{s} {n}" for s, n in sorted(counts.items())))
                if todo:
                    time.sleep(self.config.poll_s)
        finally:
            bar.close()
