"""Which code produced a result: the git commit of ginv's source tree, when it has one.

A results folder records it at run time (``environment.json``'s ``commit``), so a report
rebuilt later, at another commit, still says which code computed its numbers.
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

__all__ = ["source_commit", "source_state"]

_HERE = Path(__file__).resolve().parent


def _git(*args: str) -> str | None:
    try:
        return subprocess.run(
            ["git", *args], cwd=_HERE, capture_output=True, check=True, text=True, timeout=5
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None


def source_commit() -> str | None:
    """The git commit of ginv's source tree, when ginv runs from a git checkout; else None.

    Only a checkout that tracks this very file counts, not some repository that happens to
    hold a site-packages folder."""
    if _git("ls-files", "--error-unmatch", Path(__file__).name) is None:
        return None
    head = _git("rev-parse", "HEAD")
    return head.strip() or None if head else None


@functools.cache
def source_state() -> str | None:
    """:func:`source_commit`, with ``+ uncommitted changes`` when tracked files under
    ``src/`` differ from it; None outside a git checkout. Read once per process, at the
    first call (``reproduce`` calls it as it starts), so that a checkout moved on during a
    long run does not relabel it.

    Example:
        >>> state = source_state()  # e.g. '84f4bec…', or None for an installed wheel
    """
    commit = source_commit()
    if commit is None:
        return None
    changed = _git("status", "--porcelain", "--untracked-files=no", "--", str(_HERE))
    return commit + (" + uncommitted changes" if changed and changed.strip() else "")
