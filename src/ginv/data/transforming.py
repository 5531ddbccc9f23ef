"""Transforming-MNIST and Transforming-FMNIST (SPEC §2).

MNIST (or Fashion-MNIST) train and test pooled, class 9 dropped, disjoint splits
of 10,000 train / 50,000 test / 2,000 validation drawn with a fixed split seed,
zero-padded from 28×28 to 36×36, normalised with the training split's scalar
mean and standard deviation. Built splits are cached on disk as uint8.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from torch import Tensor

from ginv.data.idx import FILE_NAMES, KNOWN_SHA256, DataFileError, parse_idx
from ginv.data.sources import check_file, default_cache_dir, default_data_dir, find_file
from ginv.errors import GinvError, warn_once
from ginv.io import atomic_torch_save, short_hash, stable_hash

ALIASES = {"mnist": "mnist", "fmnist": "fashion-mnist", "fashion-mnist": "fashion-mnist"}


def source_name(dataset: str) -> str:
    """The source dataset ('mnist' or 'fashion-mnist') behind a dataset name or alias."""
    try:
        return ALIASES[dataset.lower()]
    except KeyError:
        raise DataFileError(
            f"unknown dataset {dataset!r} (known: {', '.join(sorted(ALIASES))})"
        ) from None


@dataclass(frozen=True)
class DataConfig:
    """How a Transforming dataset is built; defaults are the study's."""

    dataset: str = "mnist"
    n_train: int = 10_000
    n_test: int = 50_000
    n_val: int = 2_000
    split_seed: int = 0
    pad: int = 4
    drop_class: int = 9

    def key(self) -> str:
        """A short hash of everything that determines the splits."""
        content = {**asdict(self), "dataset": source_name(self.dataset)}
        content["sha256"] = KNOWN_SHA256[content["dataset"]]
        return stable_hash(content)


@dataclass
class Split:
    """Images ``(N, 1, H, W)`` float (normalised) and labels ``(N,)`` long."""

    images: Tensor
    labels: Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: torch.device | str) -> Split:
        return Split(self.images.to(device), self.labels.to(device))

    def head(self, n: int | None) -> Split:
        """The first ``n`` samples (splits are already in random order); ``None``: all of them.
        ``n`` ≤ 0, or more samples than the split holds, is a :class:`GinvError`."""
        if n is None:
            return self
        if not 1 <= n <= len(self):
            raise GinvError(
                f"asked for {n} samples of a split of {len(self)} (use 1 to {len(self)})"
            )
        return Split(self.images[:n], self.labels[:n])


@dataclass
class TransformingDataset:
    """The three splits of a Transforming dataset plus the ``mean``/``std`` they are normalised
    with (the training split's, unless loaded with another dataset's statistics)."""

    config: DataConfig
    train: Split
    test: Split
    val: Split
    mean: float
    std: float
    num_classes: int
    sources: dict[str, str] = field(default_factory=dict)

    def to(self, device: torch.device | str) -> TransformingDataset:
        return replace(
            self, train=self.train.to(device), test=self.test.to(device), val=self.val.to(device)
        )

    def to_pixels(self, images: Tensor) -> Tensor:
        """Undo the normalisation: images back in [0, 1] pixel space."""
        return images * self.std + self.mean

    def normalise(self, pixels: Tensor) -> Tensor:
        return (pixels - self.mean) / self.std

    @property
    def black(self) -> float:
        """A black pixel in the normalised space: the saliency baseline option ``black``."""
        return -self.mean / self.std


def load_pooled(
    dataset: str, data_dir: Path | str | None = None, cache_dir: Path | str | None = None
) -> tuple[Tensor, Tensor, dict[str, str]]:
    """Official train and test pooled: uint8 images ``(70000, 28, 28)``, labels, sources."""
    src = source_name(dataset)
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


def _draw_splits(
    cfg: DataConfig, images: Tensor, labels: Tensor
) -> dict[str, tuple[Tensor, Tensor]]:
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


# Bumped whenever the cache's content changes meaning; with torch's version (the splits come
# from torch.randperm, whose stream a new torch may change) it is part of the cache's name.
CACHE_FORMAT = 2
SOURCE_SHAPE = (28, 28)  # MNIST's and Fashion-MNIST's images


def _cache_path(cfg: DataConfig, cache_dir: Path) -> Path:
    key = short_hash(f"{cfg.key()} format {CACHE_FORMAT} torch {torch.__version__}")
    return cache_dir / "splits" / f"transforming-{source_name(cfg.dataset)}-{key}.pt"


def _digest(raw: dict) -> str:
    """sha256 of every split's images and labels, with their shapes and dtypes."""
    h = hashlib.sha256()
    for k in ("train", "test", "val"):
        for t in (raw[k]["images"], raw[k]["labels"]):
            h.update(f"{k} {tuple(t.shape)} {t.dtype};".encode())
            h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()


def _cache_problem(raw: object, cfg: DataConfig) -> str | None:
    """What is wrong with a loaded split cache entry for ``cfg``, or None when it is sound."""
    if not isinstance(raw, dict) or raw.get("format") != CACHE_FORMAT:
        return "is not a split cache of this version"
    for k, n in (("train", cfg.n_train), ("test", cfg.n_test), ("val", cfg.n_val)):
        part = raw.get(k)
        x, y = (part.get("images"), part.get("labels")) if isinstance(part, dict) else (None, None)
        if not isinstance(x, Tensor) or x.dtype != torch.uint8 or x.shape != (n, *SOURCE_SHAPE):
            return f"has no {k} images of shape {n}×28×28 uint8"
        if not isinstance(y, Tensor) or y.dtype != torch.int64 or y.shape != (n,):
            return f"has no {k} labels of shape {n} int64"
        if ((y < 0) | (y > 9) | (y == cfg.drop_class)).any():
            return f"has {k} labels out of range"
    if not isinstance(raw.get("sources"), dict):
        return "has no sources"
    if raw.get("digest") != _digest(raw):
        return "does not match its content hash"
    return None


def _read_cache(path: Path, cfg: DataConfig) -> dict | None:
    """The split cache entry at ``path``, or None (with a warning) when it cannot be trusted."""
    try:
        raw = torch.load(path, weights_only=True)
    except Exception as e:  # unreadable, truncated, planted: rebuilt, never trusted
        problem: str | None = f"is unreadable ({type(e).__name__})"
    else:
        problem = _cache_problem(raw, cfg)
    if problem is None:
        return raw
    warn_once(f"split cache {path} {problem}; rebuilding it")
    return None


def _write_cache(raw: dict, path: Path) -> None:

    try:
        atomic_torch_save(raw, path)
    except GinvError as e:  # the cache only saves time
        warn_once(f"split cache not saved, the splits are rebuilt on every load ({e})")


def _load_splits(
    cfg: DataConfig, data_dir: Path | str | None, cache_dir: Path | str | None, use_cache: bool
) -> dict:
    """The uint8 splits and sources of ``cfg``: from the split cache when it passes its checks,
    else built (and cached). A data directory that is named, by argument or
    ``$GINV_DATA_DIR``, is checked even then: a warm cache must not hide that it is broken."""
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    path = _cache_path(cfg, cache_dir)
    raw = _read_cache(path, cfg) if use_cache and path.is_file() else None
    if raw is not None:
        if data_dir is not None:
            src = source_name(cfg.dataset)
            raw["sources"] = {n: check_file(src, n, data_dir, cache_dir) for n in FILE_NAMES}
        return raw
    images, labels, sources = load_pooled(cfg.dataset, data_dir, cache_dir)
    splits = _draw_splits(cfg, images, labels)
    raw = {k: {"images": x, "labels": y} for k, (x, y) in splits.items()}
    raw.update(format=CACHE_FORMAT, sources=sources, digest=_digest(raw))
    if use_cache:
        _write_cache(raw, path)
    return raw


def training_stats(
    config: DataConfig | str = "mnist",
    data_dir: Path | str | None = None,
    cache_dir: Path | str | None = None,
    use_cache: bool = True,
) -> tuple[float, float]:
    """``(mean, std)`` of the padded training split's [0, 1] pixels: the normalisation of
    every split of this dataset, and of any data fed to a model trained on it."""
    cfg = DataConfig(dataset=config) if isinstance(config, str) else config
    return _padded_stats(
        _load_splits(cfg, data_dir, cache_dir, use_cache)["train"]["images"], cfg.pad
    )


def load_transforming(
    config: DataConfig | str = "mnist",
    data_dir: Path | str | None = None,
    cache_dir: Path | str | None = None,
    device: torch.device | str = "cpu",
    use_cache: bool = True,
    stats: tuple[float, float] | None = None,
) -> TransformingDataset:
    """Transforming-MNIST (``'mnist'``) or Transforming-FMNIST (``'fmnist'``), built once
    from the verified IDX files and then loaded from the split cache. Normalised with
    ``stats = (mean, std)`` when given (another dataset's :func:`training_stats`, for a model
    trained there), else with this dataset's own training statistics."""
    cfg = DataConfig(dataset=config) if isinstance(config, str) else config
    raw = _load_splits(cfg, data_dir, cache_dir, use_cache)
    mean, std = stats if stats is not None else _padded_stats(raw["train"]["images"], cfg.pad)
    splits_out = {
        k: Split(_pad_normalise(raw[k]["images"], cfg.pad, mean, std), raw[k]["labels"])
        for k in ("train", "test", "val")
    }
    num_classes = int(raw["train"]["labels"].max()) + 1
    ds = TransformingDataset(
        cfg, splits_out["train"], splits_out["test"], splits_out["val"],
        mean, std, num_classes, dict(raw.get("sources", {})),
    )  # fmt: skip
    return ds.to(device)


def _padded_stats(images: Tensor, pad: int) -> tuple[float, float]:
    """Mean and standard deviation of the [0, 1] pixels after zero-padding by ``pad``."""
    n, h, w = images.shape
    count = n * (h + 2 * pad) * (w + 2 * pad)
    pixels = images.double() / 255.0
    mean = float(pixels.sum()) / count
    var = (float((pixels * pixels).sum()) - count * mean * mean) / (count - 1)
    return mean, var**0.5


def _pad_normalise(images: Tensor, pad: int, mean: float, std: float) -> Tensor:
    """uint8 ``(N, H, W)`` → normalised float ``(N, 1, H + 2·pad, W + 2·pad)``, zero-padded
    in pixel space (so the padding holds ``-mean/std``)."""
    n, h, w = images.shape
    out = torch.full((n, 1, h + 2 * pad, w + 2 * pad), -mean / std)
    out[:, 0, pad : pad + h, pad : pad + w] = images.float() * (1.0 / (255.0 * std)) - mean / std
    return out
