"""``key=value`` settings as the command line writes them (``--set``, ``--slurm``)."""

from __future__ import annotations

BOOLEANS = {
    "true": True, "yes": True, "on": True, "1": True,
    "false": False, "no": False, "off": False, "0": False,
}  # fmt: skip
"""The words a yes/no setting reads (``bool("false")`` would be True)."""


def parse_bool(text: str) -> bool:
    """``text`` as a yes/no setting; anything but :data:`BOOLEANS` is a ``ValueError``.

    Example:
        >>> parse_bool("False"), parse_bool("yes")
        (False, True)
    """
    try:
        return BOOLEANS[text.strip().lower()]
    except KeyError:
        raise ValueError(f"expected true or false, got {text!r}") from None
