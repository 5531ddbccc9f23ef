"""Progress bars that suit both a terminal and a log file.

Every progress bar in ginv is made by :func:`tqdm`, a drop-in for ``tqdm.auto.tqdm``:

- on a terminal (stderr is a TTY) it *is* ``tqdm.auto.tqdm``: bars redrawn in place;
- otherwise (stderr redirected to a file or a pipe, a SLURM log) it writes **one plain line
  per finished step** and never a ``\\r`` redraw. A transient bar (``leave=False``) made
  while another is open (a training run's epochs inside ``ginv reproduce``'s experiments)
  is left out unless the verbosity is :data:`VERBOSE`, while a lasting one (an executor's
  jobs: one line per finished job) shows; a bar whose description or postfix changes
  without a step writes a line at most every :data:`HEARTBEAT_S` seconds, so that a long
  step still shows what it is doing.

The verbosity (:func:`set_verbosity`; ``ginv --quiet`` / ``--verbose``) applies to every bar:
:data:`QUIET` disables them all, :data:`VERBOSE` shows nested bars in logs too.
"""

from __future__ import annotations

import os
import sys
import time
import weakref
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from tqdm.auto import tqdm as _terminal_tqdm

QUIET, NORMAL, VERBOSE = 0, 1, 2
HEARTBEAT_S = 30.0  # a log line for a change of description or postfix, at most this often

_verbosity = NORMAL
_open_bars: weakref.WeakSet[LineProgress] = weakref.WeakSet()  # the enabled, unclosed ones


def set_verbosity(level: int) -> None:
    """Set the verbosity of every bar made from now on: :data:`QUIET`, :data:`NORMAL` or
    :data:`VERBOSE`."""
    global _verbosity
    if level not in (QUIET, NORMAL, VERBOSE):
        raise ValueError(f"verbosity must be {QUIET}, {NORMAL} or {VERBOSE}, got {level!r}")
    _verbosity = level


def verbosity() -> int:
    """The verbosity that :func:`set_verbosity` last set (:data:`NORMAL` by default)."""
    return _verbosity


def is_terminal(stream: TextIO | None = None) -> bool:
    """Whether ``stream`` (default ``sys.stderr``) is a terminal. ``GINV_PROGRESS=lines``
    (or ``=bars``) forces the answer, e.g. to see log lines in a terminal."""
    forced = os.environ.get("GINV_PROGRESS", "").strip().lower()
    if forced in ("lines", "bars"):
        return forced == "bars"
    stream = stream if stream is not None else sys.stderr
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _seconds(s: float) -> str:
    s = int(s)
    return (
        f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
        if s >= 3600
        else f"{s // 60:02d}:{s % 60:02d}"
    )


class LineProgress:
    """The part of tqdm's interface ginv uses, written as one line per finished step.

    A line reads ``desc: n/total unit [elapsed<remaining] postfix``. ``disable=True`` makes
    every method a no-op; ``mininterval`` (seconds, 0 by default) spaces the lines of a bar
    with many quick steps."""

    def __init__(
        self,
        iterable: Iterable[Any] | None = None,
        desc: str | None = None,
        total: float | None = None,
        leave: bool | None = True,
        file: TextIO | None = None,
        disable: bool | None = False,
        unit: str = "it",
        initial: float = 0,
        postfix: Any = None,
        mininterval: float = 0.0,
        **_ignored: Any,
    ) -> None:
        self.iterable = iterable
        if total is None and iterable is not None:
            try:
                total = len(iterable)  # type: ignore[arg-type]
            except (TypeError, AttributeError):
                total = None
        self.total, self.n, self.unit, self.leave = total, initial, unit, leave
        self._initial = initial  # steps done before this bar (a resumed run): not in the rate
        self.desc = desc or ""
        self.postfix = ""
        self.disable = bool(disable)
        self.mininterval = float(mininterval)  # as tqdm's: seconds between lines, at least
        self._file = file
        self._start = self._last_line = time.monotonic()
        self._printed_n: float | None = None
        self._printed_text: tuple[str, str] | None = None
        if postfix is not None:
            self.set_postfix(postfix, refresh=False)
        if not self.disable:
            _open_bars.add(self)

    # --- tqdm's interface ---------------------------------------------------
    def __iter__(self) -> Iterator[Any]:
        if self.iterable is None:
            raise TypeError("this progress bar was made without an iterable")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:  # as tqdm does: a finished (or abandoned) loop closes its bar
            self.close()

    def __len__(self) -> int:
        return int(self.total or 0)

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: float = 1) -> bool | None:
        """Count ``n`` more steps done; a line is written when the count grows (at most every
        ``mininterval`` seconds, and always for the last step)."""
        if self.disable or not n:
            return None
        self.n += n
        last = self.total is not None and self.n >= self.total
        if last or time.monotonic() - self._last_line >= self.mininterval:
            self._write()
        return True

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        """Set the label (written with the next line)."""
        self.desc = desc or ""
        if refresh:
            self._heartbeat()

    set_description_str = set_description

    def set_postfix(
        self, ordered_dict: dict[str, Any] | None = None, refresh: bool = True, **kwargs: Any
    ) -> None:
        """Set the details after the count from keyword values (as tqdm does)."""
        items = {**(ordered_dict or {}), **kwargs}
        self.set_postfix_str(", ".join(f"{k}={v}" for k, v in items.items()), refresh)

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        """Set the details after the count (written with the next line, or the heartbeat)."""
        self.postfix = str(s)
        if refresh:
            self._heartbeat()

    def refresh(self, *args: Any, **kwargs: Any) -> None:
        """Nothing: a line is written when a step finishes (tqdm redraws here)."""
        self._heartbeat()

    def reset(self, total: float | None = None) -> None:
        """Start counting again from 0, towards ``total`` if given."""
        self.n, self._printed_n, self._start, self._initial = 0, None, time.monotonic(), 0
        if total is not None:
            self.total = total

    def clear(self, *args: Any, **kwargs: Any) -> None:
        """Nothing to clear: lines are never redrawn."""

    def close(self) -> None:
        """Write the last line if it was not written, once."""
        self.disable = True
        _open_bars.discard(self)

    def write(
        self, s: str, file: TextIO | None = None, end: str = "\n", nolock: bool = False
    ) -> None:
        """Write ``s`` on its own line (tqdm.write's contract)."""
        (file or self.file).write(s + end)

    # --- the lines --------------------------------------------------------
    @property
    def file(self) -> TextIO:
        """Where the lines go: standard error."""
        return self._file if self._file is not None else sys.stderr

    def format_line(self) -> str:
        """The line for the current state: label, count (of total), rate, details."""
        elapsed = time.monotonic() - self._start
        count = f"{self.n:g}/{self.total:g}" if self.total else f"{self.n:g}"
        timing = _seconds(elapsed)
        done = self.n - self._initial
        if self.total and done > 0 and self.n < self.total:
            timing += "<" + _seconds(elapsed / done * (self.total - self.n))
        line = f"{self.desc + ': ' if self.desc else ''}{count} {self.unit} [{timing}]"
        return f"{line} {self.postfix}" if self.postfix else line

    def _write(self) -> None:
        try:
            self.file.write(self.format_line() + "\n")
            self.file.flush()
        except (OSError, ValueError):
            self.disable = True  # a log that cannot be written is no reason to stop the work
        self._printed_n, self._last_line = self.n, time.monotonic()
        self._printed_text = (self.desc, self.postfix)

    def _heartbeat(self) -> None:
        if self.disable or (self.desc, self.postfix) == self._printed_text:
            return  # nothing new to say
        if time.monotonic() - self._last_line >= HEARTBEAT_S:
            self._write()


def tqdm(*args: Any, **kwargs: Any) -> Any:
    """A progress bar: ``tqdm.auto.tqdm`` on a terminal, :class:`LineProgress` otherwise
    (see the module's description); both take tqdm's arguments. The verbosity applies:
    :data:`QUIET` disables the bar, and in a log a transient bar (``leave=False``) nested in
    an open one shows only at :data:`VERBOSE`."""
    if _verbosity <= QUIET:
        kwargs["disable"] = True
    if is_terminal(kwargs.get("file")):
        return _terminal_tqdm(*args, **kwargs)
    if len(_open_bars) and _verbosity < VERBOSE and kwargs.get("leave") is False:
        kwargs["disable"] = True
    return LineProgress(*args, **kwargs)


__all__ = [
    "HEARTBEAT_S",
    "NORMAL",
    "QUIET",
    "VERBOSE",
    "LineProgress",
    "is_terminal",
    "set_verbosity",
    "tqdm",
    "verbosity",
]
