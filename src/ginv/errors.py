"""The one exception type that the command line turns into a one-line error, and warnings."""

from __future__ import annotations

import contextlib
import sys


class GinvError(Exception):
    """A user-facing error: bad input, a missing or corrupt file, an impossible setting."""


_warned: set[str] = set()


def warn_once(message: str) -> None:
    """Print ``ginv: warning: message`` on stderr, once per message and process: for a fault
    that ginv works around (an optional cache it cannot use), never one that changes results."""
    if message in _warned:
        return
    _warned.add(message)
    with contextlib.suppress(OSError, ValueError):  # a closed stderr must not stop the work
        print(f"ginv: warning: {message}", file=sys.stderr, flush=True)
