"""Transforming datasets: any source's splits on a zero-padded canvas, normalised.

A :class:`~ginv.data.source.Source` gives the raw splits: for Transforming-MNIST and
-FMNIST, MNIST (or Fashion-MNIST) train and test pooled, class 9 dropped, disjoint splits
of 10,000 train / 50,000 test / 2,000 validation drawn with a fixed split seed
(:mod:`ginv.data.mnist`); for a file dataset its own splits (:mod:`ginv.data.arrays`).
Images are zero-padded by ``pad`` on every side (28×28 → 36×36, on which R4 and T3 both
act), normalised with the training split's per-channel mean and standard deviation (one
float for a one-channel dataset), and described by a :class:`~ginv.data.DataSpec`.
Built splits are cached on disk as uint8 (float32 for a float file dataset).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from torch import Tensor

from ginv.data.source import RawSplits, Source, get_source
from ginv.data.sources import default_cache_dir, default_data_dir
from ginv.data.spec import DataSpec, Stat, check_group_acts, per_channel
from ginv.errors import GinvError, warn_once
from ginv.groups import Group, get_group
from ginv.io import atomic_torch_save, short_hash, stable_hash


def source_name(dataset: str) -> str:
    """The source behind a dataset name, alias or path: 'mnist' or 'fashion-mnist' for the
    IDX datasets, ``npz-STEM`` / ``folder-NAME`` for a file dataset."""
    return get_source(dataset).name


@dataclass(frozen=True)
class DataConfig:
    """How a Transforming dataset is built; defaults are the study's. ``dataset`` is a
    registered name or a path (:func:`~ginv.data.source.get_source`); ``pad`` the zero
    border around each image (the canvas rule: :func:`~ginv.data.spec.canvas_shape`);
    ``n_train``, ``n_test`` and ``drop_class`` are the IDX sources' split protocol, ``n_val``
    every source's validation size (a file dataset: at most a fifth of its training file)."""

    dataset: str = "mnist"
    n_train: int = 10_000
    n_test: int = 50_000
    n_val: int = 2_000
    split_seed: int = 0
    pad: int = 4
    drop_class: int = 9

    def key(self) -> str:
        """A short hash of everything that determines the splits."""
        return stable_hash({**asdict(self), **get_source(self.dataset).key_content()})


@dataclass
class Split:
    """Images ``(N, C, H, W)`` float (normalised) and labels ``(N,)`` long."""

    images: Tensor
    labels: Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: torch.device | str) -> Split:
        """The split on ``device``."""
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
    with (the training split's, unless loaded with another dataset's statistics): floats for
    a one-channel dataset, one float per channel otherwise. :attr:`spec` describes it."""

    config: DataConfig
    train: Split
    test: Split
    val: Split
    mean: Stat
    std: Stat
    num_classes: int
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def spec(self) -> DataSpec:
        """Shape, source shape, classes and per-channel statistics of this dataset."""
        c, h, w = (int(n) for n in self.train.images.shape[1:])
        pad = self.config.pad
        return DataSpec(
            self.config.dataset, (c, h, w), (c, h - 2 * pad, w - 2 * pad), self.num_classes,
            per_channel(self.mean, c), per_channel(self.std, c),
        )  # fmt: skip

    def _channels(self, stat: Stat, like: Tensor) -> float | Tensor:
        if isinstance(stat, int | float):
            return stat
        return torch.tensor(stat, dtype=like.dtype, device=like.device).view(-1, 1, 1)

    def to(self, device: torch.device | str) -> TransformingDataset:
        """Every split on ``device``."""
        return replace(
            self, train=self.train.to(device), test=self.test.to(device), val=self.val.to(device)
        )

    def to_pixels(self, images: Tensor) -> Tensor:
        """Undo the normalisation: images back in [0, 1] pixel space."""
        return images * self._channels(self.std, images) + self._channels(self.mean, images)

    def normalise(self, pixels: Tensor) -> Tensor:
        """``(pixels − mean) / std`` per channel, with the training split's statistics."""
        return (pixels - self._channels(self.mean, pixels)) / self._channels(self.std, pixels)

    @property
    def black(self) -> float:
        """A black pixel in the normalised space: the saliency baseline option ``black``
        (one value: one-channel datasets only)."""
        if not isinstance(self.mean, int | float) or not isinstance(self.std, int | float):
            raise GinvError("a black baseline is one value per channel here: use baseline zero")
        return -self.mean / self.std


# Bumped whenever the cache's content changes meaning; with torch's version (the splits come
# from torch.randperm, whose stream a new torch may change) it is part of the cache's name.
CACHE_FORMAT = 2


def _cache_path(cfg: DataConfig, cache_dir: Path, source: Source | None = None) -> Path:
    source = source or get_source(cfg.dataset)
    key = short_hash(f"{cfg.key()} format {CACHE_FORMAT} torch {torch.__version__}")
    return cache_dir / "splits" / f"transforming-{source.name}-{key}.pt"


def _digest(raw: dict) -> str:
    """sha256 of every split's images and labels, with their shapes and dtypes."""
    h = hashlib.sha256()
    for k in ("train", "test", "val"):
        for t in (raw[k]["images"], raw[k]["labels"]):
            h.update(f"{k} {tuple(t.shape)} {t.dtype};".encode())
            h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()


def _cache_problem(raw: object, cfg: DataConfig, source: Source) -> str | None:
    """What is wrong with a loaded split cache entry for ``cfg``, or None when it is sound."""
    if not isinstance(raw, dict) or raw.get("format") != CACHE_FORMAT:
        return "is not a split cache of this version"
    problem = source.cache_problem(raw, cfg)
    if problem is not None:
        return problem
    if not isinstance(raw.get("sources"), dict):
        return "has no sources"
    if raw.get("digest") != _digest(raw):
        return "does not match its content hash"
    return None


def _read_cache(path: Path, cfg: DataConfig, source: Source) -> dict | None:
    """The split cache entry at ``path``, or None (with a warning) when it cannot be trusted."""
    try:
        raw = torch.load(path, weights_only=True)
    except Exception as e:  # unreadable, truncated, planted: rebuilt, never trusted
        problem: str | None = f"is unreadable ({type(e).__name__})"
    else:
        problem = _cache_problem(raw, cfg, source)
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
    source = get_source(cfg.dataset)
    path = _cache_path(cfg, cache_dir, source)
    raw: RawSplits | None = _read_cache(path, cfg, source) if use_cache and path.is_file() else None
    if raw is not None:
        sources = source.recheck(data_dir, cache_dir)
        if sources is not None:
            raw["sources"] = sources
        return raw
    raw = source.build(cfg, data_dir, cache_dir)
    raw.update(format=CACHE_FORMAT, digest=_digest(raw))
    if use_cache:
        _write_cache(raw, path)
    return raw


def training_stats(
    config: DataConfig | str = "mnist",
    data_dir: Path | str | None = None,
    cache_dir: Path | str | None = None,
    use_cache: bool = True,
) -> tuple[Stat, Stat]:
    """``(mean, std)`` of the padded training split's [0, 1] pixels: the normalisation of
    every split of this dataset, and of any data fed to a model trained on it (floats for
    one channel, else one float per channel)."""
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
    stats: tuple[Stat, Stat] | None = None,
) -> TransformingDataset:
    """Transforming-MNIST (``'mnist'``), Transforming-FMNIST (``'fmnist'``) or a file
    dataset (a ``.npz`` or image-folder path), built once from the verified files and then
    loaded from the split cache. Normalised with ``stats = (mean, std)`` when given (another
    dataset's :func:`training_stats`, for a model trained there), else with this dataset's
    own training statistics.

    Example:
        >>> ds = load_transforming("mnist")  # doctest: +SKIP
        >>> ds.spec.shape, ds.spec.num_classes  # doctest: +SKIP
        ((1, 36, 36), 9)
    """
    cfg = DataConfig(dataset=config) if isinstance(config, str) else config
    raw = _load_splits(cfg, data_dir, cache_dir, use_cache)
    mean, std = stats if stats is not None else _padded_stats(raw["train"]["images"], cfg.pad)
    splits_out = {
        k: Split(_pad_normalise(raw[k]["images"], cfg.pad, mean, std), raw[k]["labels"])
        for k in ("train", "test", "val")
    }
    num_classes = int(raw.get("num_classes", int(raw["train"]["labels"].max()) + 1))
    ds = TransformingDataset(
        cfg, splits_out["train"], splits_out["test"], splits_out["val"],
        mean, std, num_classes, dict(raw.get("sources", {})),
    )  # fmt: skip
    return ds.to(device)


def data_spec(
    config: DataConfig | str = "mnist",
    group: Group | str | None = None,
    data_dir: Path | str | None = None,
    cache_dir: Path | str | None = None,
) -> DataSpec:
    """The :class:`~ginv.data.DataSpec` of a dataset (from the split cache once built: no
    training, no normalised copies), checked against ``group`` when given: a group that
    cannot act on the canvas is a :class:`~ginv.errors.GinvError` naming sizes that work.

    Example:
        >>> data_spec("mnist", "T3").shape  # doctest: +SKIP
        (1, 36, 36)
    """
    cfg = DataConfig(dataset=config) if isinstance(config, str) else config
    raw = _load_splits(cfg, data_dir, cache_dir, use_cache=True)
    images = raw["train"]["images"]
    c = 1 if images.dim() == 3 else int(images.shape[1])
    h, w = (int(n) for n in images.shape[-2:])
    mean, std = _padded_stats(images, cfg.pad)
    num_classes = int(raw.get("num_classes", int(raw["train"]["labels"].max()) + 1))
    spec = DataSpec(
        cfg.dataset, (c, h + 2 * cfg.pad, w + 2 * cfg.pad), (c, h, w), num_classes,
        per_channel(mean, c), per_channel(std, c),
    )  # fmt: skip
    if group is not None:
        check_group_acts(get_group(group) if isinstance(group, str) else group, spec)
    return spec


def _scale(images: Tensor) -> float:
    """What a stored pixel is divided by to lie in [0, 1]: 255 for uint8, 1 for float."""
    return 255.0 if images.dtype == torch.uint8 else 1.0


def _padded_stats(images: Tensor, pad: int) -> tuple[Stat, Stat]:
    """Per-channel mean and standard deviation of the [0, 1] pixels after zero-padding by
    ``pad``: floats for ``(N, H, W)`` or one-channel images, tuples otherwise."""
    if images.dim() == 3:
        return _channel_stats(images, pad)
    if images.shape[1] == 1:
        return _channel_stats(images[:, 0], pad)
    stats = [_channel_stats(images[:, c], pad) for c in range(images.shape[1])]
    return tuple(m for m, _ in stats), tuple(s for _, s in stats)


def _channel_stats(images: Tensor, pad: int) -> tuple[float, float]:
    """Mean and standard deviation of one channel's [0, 1] pixels ``(N, H, W)``, padded."""
    n, h, w = images.shape
    count = n * (h + 2 * pad) * (w + 2 * pad)
    pixels = images.double() / _scale(images)
    mean = float(pixels.sum()) / count
    var = (float((pixels * pixels).sum()) - count * mean * mean) / (count - 1)
    return mean, var**0.5


def _pad_normalise(images: Tensor, pad: int, mean: Stat, std: Stat) -> Tensor:
    """uint8 (or float) ``(N, H, W)`` or ``(N, C, H, W)`` → normalised float
    ``(N, C, H + 2·pad, W + 2·pad)``, zero-padded in pixel space (so the padding holds
    ``-mean/std``, per channel)."""
    if images.dim() == 3:
        images = images.unsqueeze(1)
    n, c, h, w = images.shape
    means, stds = per_channel(mean, c), per_channel(std, c)
    scale = _scale(images)
    out = torch.empty(n, c, h + 2 * pad, w + 2 * pad)
    for k, (m, s) in enumerate(zip(means, stds, strict=True)):
        out[:, k] = -m / s
        out[:, k, pad : pad + h, pad : pad + w] = images[:, k].float() * (1.0 / (scale * s)) - m / s
    return out
