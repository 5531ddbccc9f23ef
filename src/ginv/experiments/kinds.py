"""The study's model families: one enum, so that no experiment spells them as strings."""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    """A family of the study (the paper's Table 1): the same MLP trained three ways.

    A ``StrEnum``: ``Kind.DA == "DA"``, and it is written to JSON and CSV as its name, so
    records from before the enum read the same.
    """

    WT = "WT"
    """Invariant weight-tying: the MLP's first layer tied over the group (exact)."""
    DA = "DA"
    """Data augmentation: the MLP trained on random group elements of every image."""
    IR = "IR"
    """Invariance regularisation: DA plus ν times an invariance loss over the orbit."""


TABLE_KINDS = (Kind.WT, Kind.DA, Kind.IR)
"""The families of the table, in its order."""
