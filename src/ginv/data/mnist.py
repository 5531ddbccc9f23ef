"""The IDX sources: MNIST and Fashion-MNIST, the study's Transforming-MNIST / -FMNIST.

Official train and test pooled, class ``drop_class`` (9) dropped, disjoint splits of
``n_train`` / ``n_test`` / ``n_val`` drawn with ``split_seed``. The files are
found and verified by :mod:`ginv.data.sources`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ginv.data.idx import FILE_NAMES, KNOWN_SHA256, DataFileError, parse_idx
from ginv.data.source import RawSplits, Source, SplitSettings, check_split_tensors
from ginv.data.sources import check_file, find_file

SOURCE_SHAPE = (28, 28)  # MNIST's and Fashion-MNIST's images
LABELS = 10  # classes in the IDX files, before drop_class is dropped


def load_pooled(
    dataset: str, data_dir: Path | str | None = None, cache_dir: Path | str | None = None
) -> tuple[Tensor, Tensor, dict[str, str]]:
    """Official train and test pooled: uint8 images ``(70000, 28, 28)``, labels, sources."""
    from ginv.data.source import get_source

    src = get_source(dataset).name
    if src not in KNOWN_SHA256:
        raise DataFileError(f"{dataset!r} is not an IDX dataset (known: {', '.join(KNOWN_SHA256)})")
    images: list[Tensor] = []
    labels: list[Tensor] = []
    sources: dict[str, str] = {}
    for part in ("train", "t10k"):
        for kind, out in (("images-idx3", images), ("labels-idx1", labels)):
            name = f"{part}-{kind}-ubyte"
            found = find_file(src, name, data_dir, cache_dir)
            out.append(parse_idx(found.data, str(found.path)))
            sources[name] = f"{found.origin}: {found.path}"
    return torch.cat(images), torch.cat(labels).long(), sources


def draw_splits(
    cfg: SplitSettings, images: Tensor, labels: Tensor
) -> dict[str, tuple[Tensor, Tensor]]:
    """The study's disjoint train / test / val splits of the pooled data, ``drop_class`` out."""
    keep = labels != cfg.drop_class
    images, labels = images[keep], labels[keep]
    needed = cfg.n_train + cfg.n_test + cfg.n_val
    if needed > len(labels):
        raise DataFileError(f"{cfg.dataset}: {needed} samples requested, {len(labels)} available")
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(cfg.split_seed))
    bounds = {
        "train": (0, cfg.n_train),
        "test": (cfg.n_train, cfg.n_train + cfg.n_test),
        "val": (cfg.n_train + cfg.n_test, needed),
    }
    return {k: (images[order[a:b]], labels[order[a:b]]) for k, (a, b) in bounds.items()}


class IdxSource(Source):
    """MNIST (``name='mnist'``) or Fashion-MNIST (``'fashion-mnist'``) from verified IDX files,
    opened by any of ``aliases``."""

    def __init__(self, name: str, aliases: tuple[str, ...]) -> None:
        self.name = name
        self.aliases = aliases
        self.label = aliases[0]
        self._dataset = aliases[0]

    @classmethod
    def opener(cls, name: str, aliases: tuple[str, ...]) -> Any:
        """The registry's opener: this source for any of ``aliases`` (any case)."""

        def open_(text: str) -> Source | None:
            if text.lower() not in aliases:
                return None
            source = cls(name, aliases)
            source._dataset = text
            return source

        return open_

    def identity(self) -> str:
        return self._dataset  # as given: the keys of the study's runs hold it so

    def key_content(self) -> dict[str, Any]:
        return {"dataset": self.name, "sha256": KNOWN_SHA256[self.name]}

    def build(self, cfg: SplitSettings, data_dir: Path | None, cache_dir: Path) -> RawSplits:
        images, labels, sources = load_pooled(self.name, data_dir, cache_dir)
        splits = draw_splits(cfg, images, labels)
        raw: RawSplits = {k: {"images": x, "labels": y} for k, (x, y) in splits.items()}
        raw["sources"] = sources
        return raw

    def recheck(self, data_dir: Path | None, cache_dir: Path) -> dict[str, str] | None:
        if data_dir is None:
            return None
        return {n: check_file(self.name, n, data_dir, cache_dir) for n in FILE_NAMES}

    def cache_problem(self, raw: RawSplits, cfg: SplitSettings) -> str | None:
        for k, n in (("train", cfg.n_train), ("test", cfg.n_test), ("val", cfg.n_val)):
            part = raw.get(k)
            x, y = (
                (part.get("images"), part.get("labels")) if isinstance(part, dict) else (None, None)
            )
            if not isinstance(x, Tensor) or x.dtype != torch.uint8 or x.shape != (n, *SOURCE_SHAPE):
                return f"has no {k} images of shape {n}×28×28 uint8"
            if not isinstance(y, Tensor) or y.dtype != torch.int64 or y.shape != (n,):
                return f"has no {k} labels of shape {n} int64"
            if ((y < 0) | (y >= LABELS) | (y == cfg.drop_class)).any():
                return f"has {k} labels out of range"
        return check_split_tensors(raw)
