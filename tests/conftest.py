"""Shared fixtures: small IDX files written by the tests, and the real data when available."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest
import torch


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array in IDX format."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape
    )
    return header + array.astype(np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> bytes:
    data = idx_bytes(array)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if compress else data)
    return data


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Each test session gets its own cache folder, so no test reads a user's cache."""
    cache = tmp_path_factory.getbasetemp() / "ginv-cache"
    monkeypatch.setenv("GINV_CACHE_DIR", str(cache))


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    value = os.environ.get("GINV_DATA_DIR")
    if not value or not Path(value).is_dir():
        pytest.skip("GINV_DATA_DIR is unset: tests on the real MNIST files are skipped")
    return Path(value)


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)


def synthetic_dataset(
    n_train: int = 256, n_val: int = 64, size: int = 12, classes: int = 3, seed: int = 0
):
    """A learnable toy dataset: each class is a fixed random pattern plus noise."""
    from ginv.data import DataConfig, Split, TransformingDataset

    g = torch.Generator().manual_seed(seed)
    patterns = torch.randn(classes, 1, size, size, generator=g)

    def split(n: int) -> Split:
        labels = torch.arange(n) % classes
        images = patterns[labels] + 0.5 * torch.randn(n, 1, size, size, generator=g)
        return Split(images, labels)

    train, val = split(n_train), split(n_val)
    return TransformingDataset(DataConfig(), train, val, val, 0.0, 1.0, classes)
