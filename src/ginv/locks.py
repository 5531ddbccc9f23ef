"""Exclusive file locks that many drivers and SLURM jobs share, on one machine or over NFS.

The locks are POSIX record locks (``fcntl.lockf``, i.e. ``fcntl(F_SETLK)``), not ``flock``:
NFS (v3 through lockd, v4 natively) and the parallel file systems of clusters implement
POSIX locks across machines, and Linux's NFS client emulates ``flock`` with them anyway;
taking one also makes the NFS client revalidate its cached view of the file. Their catch is
that they belong to a process, not to a file descriptor: closing *any* descriptor of the file
releases the process's lock, and a process never conflicts with itself. So a process opens
each lock file once, through :class:`FileLock`, and never nests two locks on one file.
The kernel (or the NFS server's lock manager) drops the lock of a process that dies, however
it dies (``scancel``, SIGKILL, a lost node), so a lock never outlives its holder.
A lock file is deleted by its holder when it releases the lock, so that a finished run
leaves no empty lock files. Deleting a file that another process has open, waiting for the
lock, could let two processes each hold "the" lock on two different files; so, after taking
the lock, :meth:`FileLock.acquire` checks that the path still names the file it locked
(``fstat`` of the descriptor against ``stat`` of the path) and starts again if not, and
:meth:`FileLock.release` deletes the path *while still holding* the lock. Whoever then
gets the lock on the deleted file sees that it is no longer at the path and retries on a
fresh one.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from ginv.errors import GinvError


class FileLock:
    """An exclusive lock on ``path`` (created if missing), held between :meth:`acquire` and
    :meth:`release`, or inside ``with``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def acquire(self, blocking: bool = True) -> bool:
        """Take the lock, waiting for it when ``blocking``; return whether it is held."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path}: lock already held by this object")
        while True:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # O_NOFOLLOW: a lock file planted as a link must not make ginv create files
                # wherever it points (outside OUT)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
            except FileNotFoundError:
                continue  # the folder went between mkdir and open: make it again
            except OSError as e:
                if e.errno == errno.ELOOP:
                    raise GinvError(
                        f"{self.path}: a symbolic link, not a lock file; refused"
                    ) from None
                raise GinvError(
                    f"cannot open the lock file {self.path}: {e.strerror or e}"
                ) from None
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except OSError as e:
                os.close(fd)
                if e.errno in (errno.EAGAIN, errno.EACCES) and not blocking:
                    return False
                raise GinvError(f"cannot lock {self.path}: {e.strerror or e}") from None
            if self._still_at_path(fd):
                self._fd = fd
                return True
            os.close(fd)  # its holder deleted it before letting go: lock the path's new file

    def _still_at_path(self, fd: int) -> bool:
        try:
            here, there = os.fstat(fd), os.stat(self.path)
        except FileNotFoundError:
            return False
        return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)

    def release(self) -> None:
        """Let go of the lock (the file is deleted first, while still held); a no-op when
        not held."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):  # still held: a waiter will see it gone, retry
                self.path.unlink()
            with contextlib.suppress(OSError):
                fcntl.lockf(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@contextlib.contextmanager
def locked(paths: Sequence[Path], on_wait: Callable[[Path], None] | None = None) -> Iterator[None]:
    """Hold the locks on all ``paths``, taken in sorted order (so that two processes wanting
    overlapping sets cannot deadlock); ``on_wait(path)`` is called before waiting for one that
    another process holds."""
    held: list[FileLock] = []
    try:
        for path in sorted(set(map(Path, paths))):
            lock = FileLock(path)
            if not lock.acquire(blocking=False):
                if on_wait is not None:
                    on_wait(path)
                lock.acquire()
            held.append(lock)
        yield
    finally:
        for lock in reversed(held):
            lock.release()


@contextlib.contextmanager
def try_locked(path: Path) -> Iterator[bool]:
    """Hold the lock on ``path`` if it is free; yield whether it is held (never waits)."""
    lock = FileLock(path)
    got = lock.acquire(blocking=False)
    try:
        yield got
    finally:
        lock.release()
