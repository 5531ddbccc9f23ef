"""Finite groups acting on image batches, and the registry of named groups.

:class:`Group` is the contract (a :class:`typing.Protocol`: any object with its methods is a
group). :class:`PermutationGroup` acts by exact pixel permutations (the study's R4, T3, …),
:class:`Rotations` by interpolated rotations, :func:`from_transform` turns a function on
batches into a cyclic group. :data:`GROUPS` maps a name to a factory: ``ginv train --group``
accepts its names (and ``Tn``/``Tny``); :func:`get_group` returns one object per name.
Adding a named group is one new file (or one factory) and one :data:`GROUPS` line
(or :func:`register_group`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Literal, overload

from ginv.errors import GinvError
from ginv.groups.base import Group, GroupShapeError, power_name
from ginv.groups.permutation import (
    D4,
    R4,
    T3,
    FlipH,
    FlipV,
    PermutationGroup,
    PixelMap,
    Tn,
    Word,
    cyclic_shift,
    flip_horizontal,
    flip_vertical,
    rotation90,
)
from ginv.groups.rotations import Rotations
from ginv.groups.transform import Transform, TransformGroup, from_transform

GROUPS: dict[str, Callable[[], PermutationGroup]] = {
    "R4": R4,
    "T3": T3,
    "D4": D4,
    "FlipH": FlipH,
    "FlipV": FlipV,
}
"""The named pixel-permutation groups, by name: what ``--group`` offers (with Tn, Tny)."""


def register_group(name: str, factory: Callable[[], PermutationGroup]) -> None:
    """Add a named group to :data:`GROUPS` (``ginv train --group NAME`` then accepts it).

    Args:
        name: the group's name; one already registered is an error.
        factory: a function of no arguments returning the group.

    Example:
        >>> import torch
        >>> transpose = lambda h, w: torch.arange(h * w).view(h, w).T.flatten()
        >>> register_group("Transpose", lambda: PermutationGroup("Transpose", [transpose]))
        >>> len(get_group("Transpose"))
        2
        >>> _ = GROUPS.pop("Transpose"); _cached_group.cache_clear()
    """
    if name in GROUPS:
        raise GinvError(f"group {name!r} is registered already")
    GROUPS[name] = factory
    _cached_group.cache_clear()


@functools.cache
def _cached_group(name: str, interpolated: bool) -> Group:
    if name.startswith("Rot") and name[3:].isdigit():
        if not interpolated:
            raise GinvError(
                f"{name} rotates by interpolation, not by pixel permutation: it can be "
                "measured (get_group(name, interpolated=True), ginv measure --group) but not "
                "weight-tied or trained on"
            )
        return Rotations(int(name[3:]))
    if name in GROUPS:
        return GROUPS[name]()
    if name.startswith("T") and name[1:].rstrip("y").isdigit():
        axis = "y" if name.endswith("y") else "x"
        return Tn(int(name[1:].rstrip("y")), axis)
    known = ", ".join([*GROUPS, "Tn", "Tny", "Rot<n>"])
    raise GinvError(f"unknown group {name!r} (known: {known})")


@overload
def get_group(name: str, interpolated: Literal[False] = False) -> PermutationGroup: ...
@overload
def get_group(name: str, interpolated: bool) -> Group: ...
def get_group(name: str, interpolated: bool = False) -> Group:
    """A group by name: R4, T3, D4, FlipH, FlipV (:data:`GROUPS`), Tn / Tny (n cyclic shifts
    on x / y), or, with ``interpolated=True`` (for measuring only: no pixel permutations to
    weight-tie), Rot<n>: :class:`Rotations` ``(n)``, inexact unless n divides 4.

    Built once per name: every call with the same arguments returns the same object (whose
    permutation tables are then computed once per image size for the whole process).

    Args:
        name: the group's name.
        interpolated: allow the interpolated rotations ``Rot<n>``.

    Returns:
        The group; an unknown name is a :class:`~ginv.errors.GinvError` listing the known ones.

    Example:
        >>> get_group("R4").element_names
        ['id', 'rot90', 'rot90²', 'rot90³']
        >>> get_group("T3") is get_group("T3")
        True
    """
    return _cached_group(name, bool(interpolated))


__all__ = [
    "D4",
    "GROUPS",
    "R4",
    "T3",
    "FlipH",
    "FlipV",
    "Group",
    "GroupShapeError",
    "PermutationGroup",
    "PixelMap",
    "Rotations",
    "Tn",
    "Transform",
    "TransformGroup",
    "Word",
    "cyclic_shift",
    "flip_horizontal",
    "flip_vertical",
    "from_transform",
    "get_group",
    "power_name",
    "register_group",
    "rotation90",
]
