"""The contract of a group: what the measures, the wrappers and the training accept.

A group is any object with the attributes and methods of :class:`Group` (a
:class:`typing.Protocol`, checked structurally: no base class to inherit).
:class:`~ginv.groups.PermutationGroup` (exact pixel permutations),
:class:`~ginv.groups.Rotations` (interpolated rotations, inexact unless n divides 4) and
:func:`~ginv.groups.from_transform` (a group from a function on batches) implement it.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor

from ginv.errors import GinvError


class GroupShapeError(GinvError):
    """An image shape on which a group cannot act."""


_SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def power_name(name: str, k: int) -> str:
    """``name`` raised to ``k`` as element names write it: ``id`` (k = 0), ``rot90``,
    ``rot90²``.

    Example:
        >>> power_name("t", 3)
        't³'
    """
    if k == 0:
        return "id"
    return name + (str(k).translate(_SUPERSCRIPTS) if k > 1 else "")


@runtime_checkable
class Group(Protocol):
    """A finite group acting on image batches ``(..., C, H, W)``.

    Contract: ``elements`` is ``[0, …, |G| − 1]`` with 0 the identity; ``element_names`` names
    them in that order (``id`` first); ``compose(g, h)`` is the index of ``g∘h`` (apply ``h``
    first) and ``inverse(g)`` that of ``g⁻¹``; ``act(g, x)`` is ``g·x`` for one element or a
    LongTensor of elements shaped ``x.shape[:-3]``, ``act_inverse(g, x)`` is ``g⁻¹·x``;
    ``orbit(x)`` of a batch ``(B, C, H, W)`` is the ``|G|·B`` images element-major
    (``orbit(x)[g·B + b] = g·x[b]``). ``exact`` says whether ``act`` is a group action
    exactly (``g·(h·x) = (g∘h)·x`` bit for bit); reports made with an inexact one say so.

    Example — a user's group, the identity and the left–right mirror, used as any other:
        >>> import torch
        >>> class Mirror:
        ...     name, exact, elements, element_names = "Mirror", True, [0, 1], ["id", "flip"]
        ...     def __len__(self): return 2
        ...     def compose(self, g, h): return (g + h) % 2
        ...     def inverse(self, g): return g
        ...     def act(self, g, x): return x.flip(-1) if g == 1 else x
        ...     def act_inverse(self, g, x): return self.act(g, x)
        ...     def orbit(self, x): return torch.cat([x, x.flip(-1)])
        >>> isinstance(Mirror(), Group)
        True
    """

    name: str
    exact: bool

    @property
    def elements(self) -> list[int]:
        """Element indices ``0 … |G|−1``, the identity first."""
        ...

    @property
    def element_names(self) -> list[str]:
        """One name per element, in element order (``id`` first)."""
        ...

    def __len__(self) -> int: ...

    def compose(self, g: int, h: int) -> int:
        """The index of ``g∘h`` (``h`` applied first)."""
        ...

    def inverse(self, g: int) -> int:
        """The index of ``g⁻¹``."""
        ...

    def act(self, g: int | Tensor, x: Tensor) -> Tensor:
        """``g·x`` for a batch ``x`` ``(B, C, H, W)``: one element for all, or one per image
        (``g`` a ``(B,)`` tensor of indices)."""
        ...

    def act_inverse(self, g: int | Tensor, x: Tensor) -> Tensor:
        """``g⁻¹·x``, as :meth:`act`."""
        ...

    def orbit(self, x: Tensor) -> Tensor:
        """Every ``g·x``: ``(|G|·B, C, H, W)``, element-major (``orbit[g·B + i] = g·x[i]``)."""
        ...
