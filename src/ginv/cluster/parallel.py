"""``--workers N``: the run cache's tasks in N worker processes on this machine.

The same tasks as the SLURM executor (:class:`ginv.runs.TrainTask`, :class:`ginv.runs.MeasureTask`)
run through the same body (:func:`ginv.runs.run_task` on a :class:`ginv.runs.CacheSpec`), each in
a worker of a :class:`concurrent.futures.ProcessPoolExecutor` started with ``spawn`` (a fresh
interpreter: no copied torch thread pools or locks) and set to ``threads`` torch threads. Like
SLURM it takes every task known up front (``submits_jobs``), so the study's independent
families train side by side, and measures a family in a task of its own.

Faults:

- a worker that dies (SIGKILL, out of memory) breaks the pool; the executor starts a new one
  and runs the unfinished tasks again, which resume from the trainer's last checkpoint
  (``runs/_batch-<key>/checkpoint-*.pt``). A pool breakage counts against every task in flight
  then; a task broken more than ``max_retries`` times is one :class:`GinvError` line;
- a :class:`GinvError` raised in a task comes back as its message (pickled as text) and is
  raised in the driver, one line naming the task;
- Ctrl-C in the driver kills every worker (they ignore SIGINT themselves, so that none is left
  half-way through a file while the driver decides) and propagates ``KeyboardInterrupt``
  (the command line's exit status 130).

Order: the executor hands a worker a task only when one is free (at most ``workers`` in the
pool), and then the first task that some driver thread waits for (:meth:`ParallelExecutor.run`)
before any handed over ahead of time (:meth:`~ParallelExecutor.submit`, the study's
pre-submission). A ν search's next round, the critical path, so starts on the next free
worker instead of queueing behind every family known up front (which made a run take the
families' time plus the searches' instead of the longer of the two, what ``--plan`` assumes).

Workers write their output (the ``ginv job: …`` lines, warnings) to ``OUT/workers/<pid>.log``.
Floats are those of an in-process run with the same torch thread count, so ``table.csv`` is
byte-identical to ``--workers 1`` at the same ``--threads-per-job``.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ginv.cluster.executor import Executor
from ginv.errors import GinvError
from ginv.progress import tqdm
from ginv.runs import CacheSpec, RunCache, Task, run_task


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


@dataclass(frozen=True)
class WorkerConfig:
    """How the local executor runs tasks: ``workers`` processes (0: the machine's cores divided
    by ``threads``, at least 1; 1: in the driver's own process, one task after the other) with
    ``threads`` torch threads each, and how often a task whose worker died is run again."""

    workers: int = 0
    threads: int = 1
    max_retries: int = 2

    @property
    def job_threads(self) -> int:
        """Torch threads in each worker."""
        return self.threads

    def resolved_workers(self) -> int:
        """``workers``, or ``available_cores() // threads`` (at least 1) for 0.

        Example: ``WorkerConfig(0, 1).resolved_workers()`` is 2 on a 2-core machine."""
        return self.workers or max(1, available_cores() // self.threads)

    def validate(self) -> WorkerConfig:
        """One :class:`GinvError` line for a bad setting; ``self`` otherwise."""
        if self.workers < 0:
            raise GinvError(f"--workers must be ≥ 0 (0: cores ÷ threads), got {self.workers}")
        if self.threads < 1:
            raise GinvError(f"--threads-per-job must be ≥ 1, got {self.threads}")
        if self.max_retries < 0:
            raise GinvError(f"max_retries must be ≥ 0, got {self.max_retries}")
        return self


def _start_worker(threads: int, log_dir: str, plugins: tuple[str, ...]) -> None:
    """A worker's set-up: its own log file, the driver's plugins, ``threads`` torch threads,
    and SIGINT ignored (the driver stops the workers on Ctrl-C)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.makedirs(log_dir, exist_ok=True)
    log = os.open(
        os.path.join(log_dir, f"{os.getpid()}.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND
    )
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)
    if plugins:
        from ginv.plugins import load_plugins

        load_plugins(plugins)


def _work(spec: CacheSpec, task: Task) -> str | None:
    """Run ``task``; ``None`` when done, else the message of the :class:`GinvError` it raised
    (text pickles whatever the error held)."""
    try:
        run_task(spec, task)
    except GinvError as e:
        return str(e) or type(e).__name__
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return None


def _pids(pool: ProcessPoolExecutor | None) -> list[int]:
    # the pool keeps its processes private; killing them is the only way to stop a running task
    processes = getattr(pool, "_processes", None) or {}
    return [p.pid for p in list(processes.values()) if p.pid is not None]


@dataclass
class _Live:
    task: Task
    future: Future[str | None]
    attempt: int


class ParallelExecutor(Executor):
    """Runs tasks in ``config.resolved_workers()`` worker processes (see the module's
    description). ``started`` counts the tasks handed to a worker, retries included."""

    name = "parallel"
    work = staticmethod(_work)  # what a worker runs a task with: (CacheSpec, Task) -> message
    submits_jobs = True
    measures_as_jobs = True
    concurrent = True  # one lock guards the pool and the live tasks

    def __init__(self, config: WorkerConfig, out: Path, progress: bool = True) -> None:
        from ginv.plugins import plugin_names

        self.config = config.validate()
        self.workers = config.resolved_workers()
        self.out = Path(out)
        self.progress = progress
        self.plugins = tuple(plugin_names(sys.argv[1:]))
        self.live: dict[str, _Live] = {}
        self.attempts: dict[str, int] = {}
        self.waited: dict[str, int] = {}  # task key: how many run() calls wait for it
        # handed over, not yet given to a worker (in the order they came), with their cache
        self.pending: dict[str, tuple[RunCache, Task]] = {}
        self.started = 0
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.RLock()
        self._generation = 0  # abort() counts up: a run() begun before an abort raises
        self._bar: Any = None  # one line over every task handed over, all threads'
        # guards the bar alone, and is never held while waiting: a future's done-callback (in
        # the pool's own thread, which shutdown() waits for) takes it
        self._bar_lock = threading.Lock()

    def _spec(self, cache: RunCache) -> CacheSpec:
        return CacheSpec.of(cache, self.config.threads)

    def pool(self) -> ProcessPoolExecutor:
        """The worker processes (spawned on first use, again after a worker died)."""
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(self.config.threads, str(self.out / "workers"), self.plugins),
            )  # fmt: skip
        return self._pool

    def worker_pids(self) -> list[int]:
        """The process ids of the running workers (for a test that kills one)."""
        return _pids(self._pool)

    def submit(self, cache: RunCache, tasks: Sequence[Task]) -> None:
        """Queue what is neither done, queued nor running; start what free workers can take."""
        with self._lock:
            new = 0
            for task in tasks:
                known = task.key in self.live or task.key in self.pending
                if not known and not task.done(cache):
                    self.pending[task.key] = (cache, task)
                    new += 1
            self._dispatch()
            self._show(new=new)

    def _show(self, new: int = 0, finished: int = 0) -> None:
        """The jobs line: tasks finished of every task handed over (those of all the threads
        waiting, and those handed over ahead), with how many run and wait for a worker."""
        with self._bar_lock:
            if self._bar is None:
                self._bar = tqdm(total=0, desc=f"{self.workers} workers", unit="job",
                                 disable=not self.progress)  # fmt: skip
            running = sum(not live.future.done() for live in list(self.live.values()))
            self._bar.set_postfix_str(f"running {running}, queued {len(self.pending)}",
                                      refresh=False)  # fmt: skip
            if new:
                self._bar.total += new
                self._bar.refresh()
            if finished:
                self._bar.update(finished)

    def _counted(self, future: Future[str | None]) -> None:
        """A task's future is done: one more job on the line, unless its worker died (it runs
        again) or the workers were stopped."""
        if future.cancelled() or isinstance(future.exception(), BrokenProcessPool):
            return
        self._show(finished=1)

    def _dispatch(self) -> None:
        """Give each free worker the first queued task a :meth:`run` waits for, else the first
        queued one."""
        busy = sum(not live.future.done() for live in self.live.values())
        while self.pending and busy < self.workers:
            waited = [k for k in self.pending if k in self.waited]
            cache, task = self.pending.pop(waited[0] if waited else next(iter(self.pending)))
            self._start(cache, task)
            busy += 1

    def _start(self, cache: RunCache, task: Task) -> None:
        attempt = self.attempts.get(task.key, 0) + 1
        self.attempts[task.key] = attempt
        try:
            future = self.pool().submit(self.work, self._spec(cache), task)
        except BrokenProcessPool:  # a worker died since this thread last looked
            self._recover(cache)
            future = self.pool().submit(self.work, self._spec(cache), task)
        self.live[task.key] = _Live(task, future, attempt)
        self.started += 1
        future.add_done_callback(self._counted)

    def run(self, cache: RunCache, tasks: Sequence[Task]) -> None:
        """Start what is not done nor running and wait until every task of ``tasks`` is done.
        Several threads may wait at once, each for its own tasks (:attr:`concurrent`)."""
        generation = self._generation
        todo = {t.key: t for t in tasks if not t.done(cache)}
        mine = list(todo)
        try:
            with self._lock:
                for key in mine:
                    self.waited[key] = self.waited.get(key, 0) + 1
                self.submit(cache, list(todo.values()))
            while todo:
                with self._lock:
                    self._check_aborted(generation)
                    # a task another thread finished (and popped) is done; any other, queued
                    self.submit(cache, [t for k, t in todo.items()
                                        if k not in self.live and k not in self.pending])  # fmt: skip
                    self._dispatch()
                    waiting = {self.live[k].future: k for k in todo if k in self.live}
                    queued = [k for k in todo if k in self.pending]
                    # any task ending frees a worker for one of ours still queued
                    others = [live.future for k, live in self.live.items()
                              if k not in todo and not live.future.done()] if queued else []  # fmt: skip
                for key in [k for k in todo if k not in waiting.values() and k not in queued]:
                    del todo[key]  # counted by the thread that finished it
                finished, _ = wait([*waiting, *others], timeout=1.0, return_when=FIRST_COMPLETED)
                finished = {f for f in finished if f in waiting}
                if not finished:
                    continue
                with self._lock:
                    self._check_aborted(generation)
                    broken = [f for f in finished if isinstance(f.exception(), BrokenProcessPool)]
                    if broken:
                        # unless another thread has already started their tasks again
                        if any(self._current(waiting[f], f) for f in broken):
                            self._recover(cache)
                        continue
                    for future in finished:
                        key = waiting[future]
                        live = self.live.get(key)
                        if live is not None and live.future is not future:
                            continue  # started again after a breakage: wait for that one
                        if live is not None:
                            self._finish(cache, self.live.pop(key))
                        del todo[key]  # finished here, or by another thread waiting for it
        except BaseException:  # Ctrl-C, or one task's error: the others stop too
            self.abort()
            raise
        finally:
            with self._lock:
                for key in mine:
                    self.waited[key] = self.waited.get(key, 1) - 1
                    if self.waited[key] <= 0:
                        del self.waited[key]

    def _current(self, key: str, future: Future[str | None]) -> bool:
        live = self.live.get(key)
        return live is not None and live.future is future

    def _check_aborted(self, generation: int) -> None:
        if generation != self._generation:
            raise GinvError("the workers were stopped (another task failed, or Ctrl-C)")

    def _finish(self, cache: RunCache, live: _Live) -> None:
        """Raise the task's error, if any: its :class:`GinvError` as one line; a bug's
        exception as it came (with the worker's traceback)."""
        error = live.future.exception()
        if error is not None:
            raise error
        message = live.future.result()
        if message is not None:
            raise GinvError(f"{live.task.label}: {message}")
        if not live.task.done(cache):
            raise GinvError(f"{live.task.label}: a worker returned without its files")

    def _recover(self, cache: RunCache) -> None:
        """A worker died and took the pool: a fresh pool, and every task it had not finished
        run again (resuming from its checkpoint), each a bounded number of times."""
        broken = self.live
        self.live = {}
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool = None
        for key, live in broken.items():
            if live.future.done() and not isinstance(live.future.exception(), BrokenProcessPool):
                self._finish(cache, live)  # ended before the breakage: raises its error
                self.live[key] = live
                continue
            if live.task.done(cache):
                self.live[key] = live
                continue
            if live.attempt > self.config.max_retries:
                raise GinvError(
                    f"{live.task.label}: its worker died {live.attempt} times (max_retries "
                    f"{self.config.max_retries}); the workers' logs: {self.out / 'workers'}"
                )
            self._start(cache, live.task)

    def abort(self) -> None:
        """Kill every worker now (Ctrl-C, an error): their tasks resume from checkpoints on the
        next run."""
        with self._lock:
            self._generation += 1  # every run() still waiting raises
            pool, self._pool = self._pool, None
            if pool is None:
                return
            for pid in _pids(pool):
                with contextlib.suppress(ProcessLookupError):  # it died on its own
                    os.kill(pid, signal.SIGKILL)
            # not waited for: the pool's feeder thread can block for good on a pipe whose
            # readers were just killed; the killed processes need nothing more
            pool.shutdown(wait=False, cancel_futures=True)
            self.live.clear()
            self.pending.clear()

    def close(self) -> None:
        """Stop the workers once the running tasks are done; drop the queued ones (handed over
        ahead, never waited for: nothing needs them)."""
        with self._lock:
            self.pending.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        with self._bar_lock:
            if self._bar is not None:
                self._bar.close()
                self._bar = None
