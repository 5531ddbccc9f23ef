"""The data seam: what a dataset source provides (:class:`Source`), and the registry of
sources (:data:`SOURCES`) that ``--dataset`` resolves a name or a path through.

A source turns a dataset string (``mnist``, ``colour.npz``, ``digits/``) into raw splits:
uint8 (or float in ``[0, 1]``) images ``(N, H, W)`` or ``(N, C, H, W)`` and int64 labels,
``train``, ``test`` and ``val``, plus a content hash for the caches.
:mod:`ginv.data.transforming` pads, normalises and caches them, whatever the source.
Adding a source is one new file (a class with the methods below) and one
:func:`register_source` line in :mod:`ginv.data.registry`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor

from ginv.data.idx import DataFileError
from ginv.errors import GinvError

RawSplits = dict[str, Any]
"""``{"train": {"images", "labels"}, "test": …, "val": …, "sources": {name: origin}}`` and
optionally ``"num_classes"``: the split cache's content."""


class SplitSettings(Protocol):
    """What a source reads of a :class:`~ginv.data.DataConfig`: the dataset string and the
    split protocol (a protocol here, so that sources need not import the config's module)."""

    @property
    def dataset(self) -> str:
        """The dataset string (a name or a path)."""
        ...

    @property
    def n_train(self) -> int:
        """Training images (IDX sources)."""
        ...

    @property
    def n_test(self) -> int:
        """Test images (IDX sources)."""
        ...

    @property
    def n_val(self) -> int:
        """Validation images."""
        ...

    @property
    def split_seed(self) -> int:
        """The seed of the split draw."""
        ...

    @property
    def drop_class(self) -> int:
        """The class the IDX sources leave out."""
        ...


class Source(Protocol):
    """One dataset's files, found, verified and split.

    ``name`` names the split cache file (``mnist``, ``fashion-mnist``, a file's stem);
    ``label`` is the dataset in run names (``mnist``; a file's stem). ``identity()`` is what
    a run-cache key records for it: the dataset string itself for a named source (so keys
    of mnist/fmnist runs never change), ``KIND:sha256`` of the content for a file (so a moved
    file keeps its runs, a changed one does not). ``key_content()`` is what
    :meth:`~ginv.data.DataConfig.key` hashes besides the split settings. ``build`` reads the
    files and draws the splits; ``recheck`` verifies the files behind a warm split cache and
    says where they are (None: nothing to recheck); ``cache_problem`` says what is wrong
    with a cached entry, or None."""

    name: str
    label: str

    def identity(self) -> str:
        """What a run-cache key records for the dataset (see the class docstring)."""
        ...

    def key_content(self) -> dict[str, Any]:
        """What the split cache's key hashes besides the split settings."""
        ...

    def build(self, cfg: SplitSettings, data_dir: Path | None, cache_dir: Path) -> RawSplits:
        """Read the files (found in ``data_dir`` or ``cache_dir``) and draw the splits."""
        ...

    def recheck(self, data_dir: Path | None, cache_dir: Path) -> dict[str, str] | None:
        """Verify the files behind a warm split cache; where they are (None: no files)."""
        ...

    def cache_problem(self, raw: RawSplits, cfg: SplitSettings) -> str | None:
        """What is wrong with a cached entry ``raw`` for ``cfg``, or None."""
        ...


Opener = Callable[[str], Source | None]
"""A source kind's opener: the source a dataset string names, or None when not this kind's."""


@dataclass(frozen=True)
class SourceKind:
    """A registered kind of source: ``name`` (``mnist``, ``npz``), ``help`` (what
    ``--dataset`` says of it) and ``open``."""

    name: str
    help: str
    open: Opener


SOURCES: dict[str, SourceKind] = {}
"""Every kind of dataset source by name, in the order a dataset string is tried on them:
the choice list of ``--dataset``."""


def register_source(kind: SourceKind) -> None:
    """Add a kind of source to :data:`SOURCES` (tried after those registered before it).

    Example:
        >>> register_source(SourceKind("none", "never opens", lambda text: None))
        >>> _ = SOURCES.pop("none")
    """
    if kind.name in SOURCES:
        raise GinvError(f"dataset source {kind.name!r} is registered already")
    SOURCES[kind.name] = kind


def get_source(dataset: str) -> Source:
    """The source a dataset string names: a registered name (``mnist``, ``fmnist``) or a
    path that a registered kind opens (a ``.npz`` file, an image folder).

    Example:
        >>> get_source("fmnist").name
        'fashion-mnist'
    """
    # SOURCES is filled by ginv.data.registry, which the package imports before any module
    for kind in SOURCES.values():
        source = kind.open(dataset)
        if source is not None:
            return source
    kinds = "; ".join(f"{k.name}: {k.help}" for k in SOURCES.values())
    raise DataFileError(f"unknown dataset {dataset!r} (known: {kinds})")


def dataset_identity(dataset: str) -> str:
    """What a run-cache key records for ``dataset``: :meth:`Source.identity` (the string
    itself for a name no source opens: validating the config is where that is refused).

    Example:
        >>> dataset_identity("mnist")
        'mnist'
    """
    try:
        return get_source(dataset).identity()
    except GinvError:
        return dataset


def dataset_label(dataset: str) -> str:
    """The dataset in run names: the string itself for a named source, a file's label
    (its stem).

    Example:
        >>> dataset_label("fmnist")
        'fmnist'
    """
    try:
        source = get_source(dataset)
    except GinvError:
        return dataset
    return dataset if source.identity() == dataset else source.label


def check_split_tensors(raw: RawSplits) -> str | None:
    """The checks every cached entry must pass whatever its source: three splits of images
    (uint8 or float32, ``(N, H, W)`` or ``(N, C, H, W)``) and as many int64 labels."""
    for k in ("train", "test", "val"):
        part = raw.get(k)
        x, y = (part.get("images"), part.get("labels")) if isinstance(part, dict) else (None, None)
        if (
            not isinstance(x, Tensor)
            or x.dtype not in (torch.uint8, torch.float32)
            or x.dim() not in (3, 4)
        ):
            return f"has no {k} images"
        if not isinstance(y, Tensor) or y.dtype != torch.int64 or y.shape != (len(x),):
            return f"has no {k} labels of shape {len(x)} int64"
    return None
