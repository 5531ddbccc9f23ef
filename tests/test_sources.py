"""File dataset sources (.npz, image folder), the source registry, the canvas check, and
`ginv data check` / `ginv train` on a 3-channel dataset made by scripts/make-colour-digits.py."""

from __future__ import annotations

import importlib.util
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_ginv

from ginv.data import (
    SOURCES,
    DataConfig,
    DataFileError,
    data_spec,
    dataset_identity,
    get_source,
    load_transforming,
)
from ginv.errors import GinvError
from ginv.training import TrainConfig

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("make_colour_digits",
                                                  ROOT / "scripts" / "make-colour-digits.py")  # fmt: skip
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _grey_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-like grey 28×28 images: class k is a bar at row 2k, plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    images = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
    for i, k in enumerate(labels):
        images[i, 2 * k + 4 : 2 * k + 7, 6:22] = 255
    return images, labels


@pytest.fixture(scope="module")
def colour(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny Colour-Digits in both layouts, built by the script from generated digits."""
    script = _script()
    out = tmp_path_factory.mktemp("colour")
    x, y = _grey_digits(200, 0)
    xs, ys = _grey_digits(60, 1)
    train = script.colour_digits(x, y, 120, seed=0)
    test = script.colour_digits(xs, ys, 40, seed=1)
    return script.write(out, train, test)


def test_every_registered_source_kind_is_tried(colour: tuple[Path, Path]) -> None:
    npz, folder = colour
    opened = {k: get_source(text) for k, text in
              (("mnist", "mnist"), ("fmnist", "fmnist"), ("npz", str(npz)),
               ("imagefolder", str(folder)))}  # fmt: skip
    assert set(opened) == set(SOURCES)
    assert opened["fmnist"].name == "fashion-mnist"
    # a file's identity is its content, not its path
    assert dataset_identity(str(npz)).startswith("npz:")
    assert dataset_identity(str(folder)).startswith("imagefolder:")


@pytest.mark.parametrize("layout", ["npz", "folder"])
def test_colour_digits_load_with_per_channel_stats(
    colour: tuple[Path, Path], layout: str, tmp_path: Path
) -> None:
    path = colour[0] if layout == "npz" else colour[1]
    ds = load_transforming(DataConfig(str(path)), cache_dir=tmp_path)
    spec = ds.spec
    assert spec.shape == (3, 36, 36) and spec.source_shape == (3, 28, 28)
    assert spec.num_classes == 9 and len(spec.mean) == 3
    # validation: min(n_val, 120 // 5) from train, the rest is train; test whole
    assert (len(ds.train), len(ds.val), len(ds.test)) == (96, 24, 40)
    # per-channel normalisation: each channel of the training split has mean 0, std 1
    x = ds.train.images.double()
    assert torch.allclose(x.mean((0, 2, 3)), torch.zeros(3, dtype=x.dtype), atol=1e-5)
    assert torch.allclose(x.std((0, 2, 3)), torch.ones(3, dtype=x.dtype), atol=1e-4)
    # the padding is black in pixel space
    assert torch.allclose(ds.to_pixels(ds.test.images)[..., :4, :], torch.zeros(1), atol=1e-5)
    again = load_transforming(DataConfig(str(path)), cache_dir=tmp_path)  # from the cache
    assert torch.equal(again.train.images, ds.train.images)
    assert data_spec(str(path), "T3", cache_dir=tmp_path) == spec


def test_both_layouts_give_the_same_pixels(colour: tuple[Path, Path], tmp_path: Path) -> None:
    """The test split (taken whole) holds the same images and labels in both layouts (in
    another order: a folder lists its files by class; the validation draw differs too)."""
    a = load_transforming(str(colour[0]), cache_dir=tmp_path)
    b = load_transforming(str(colour[1]), cache_dir=tmp_path)

    def content(ds):
        pixels = ds.to_pixels(ds.test.images).double().flatten(1)
        return sorted(
            zip((pixels * 255).round().sum(1).tolist(), ds.test.labels.tolist(), strict=True)
        )

    assert content(a) == content(b)


def _npz(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [((30, 12, 12), np.uint8), ((30, 12, 12, 3), np.uint8), ((30, 3, 12, 12), np.float32),
     ((30, 12, 12, 1), np.float64)],
)  # fmt: skip
def test_npz_layouts_and_dtypes(tmp_path: Path, shape: tuple[int, ...], dtype: type) -> None:
    rng = np.random.default_rng(0)
    x = rng.random(shape) if dtype != np.uint8 else rng.integers(0, 256, shape)
    x = x.astype(dtype)
    y = np.arange(30) % 3
    path = _npz(tmp_path / "d.npz", x_train=x, y_train=y, x_test=x[:9], y_test=y[:9])
    ds = load_transforming(str(path), cache_dir=tmp_path)
    channels = 3 if 3 in shape[1:2] + shape[-1:] else 1
    assert ds.spec.shape == (channels, 20, 20) and ds.num_classes == 3
    # pixel values survive: the centre of the first validation... compare one test image
    first = torch.from_numpy(np.asarray(x[:9], dtype=np.float64))
    if first.dim() == 3:
        first = first.unsqueeze(1)
    elif first.shape[-1] in (1, 3) and first.shape[1] == 12:
        first = first.permute(0, 3, 1, 2)
    if dtype == np.uint8:
        first = first / 255.0
    pixels = ds.to_pixels(ds.test.images)[..., 4:16, 4:16].double()
    # the test split is shuffled: match each image to a source one
    for img in pixels:
        assert torch.isclose(first, img, atol=1e-5).flatten(1).all(1).any()


def test_moving_a_file_keeps_the_run_key_changing_it_does_not(tmp_path: Path) -> None:
    x = np.random.default_rng(0).integers(0, 256, (20, 12, 12)).astype(np.uint8)
    y = np.arange(20) % 2
    a = _npz(tmp_path / "a.npz", x_train=x, y_train=y, x_test=x, y_test=y)
    (tmp_path / "moved").mkdir()
    b = a.rename(tmp_path / "moved" / "a.npz")
    c = _npz(tmp_path / "c.npz", x_train=x[::-1], y_train=y, x_test=x, y_test=y)
    key = TrainConfig(dataset=str(b)).key()
    assert key == TrainConfig(dataset=str(tmp_path / "moved" / ".." / "moved" / "a.npz")).key()
    assert key != TrainConfig(dataset=str(c)).key()
    assert TrainConfig(dataset=str(b)).name == "a-R4-mlp-seed0"
    assert TrainConfig().key() == "0ba9145f49efa1e5"  # the named datasets' keys are unchanged


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    x = np.zeros((10, 8, 8), np.uint8)
    y = np.arange(10) % 2
    cases: dict[str, tuple[Path, str]] = {}
    cases["missing keys"] = (_npz(tmp_path / "m.npz", x_train=x, y_train=y), "missing arrays")
    obj = np.empty(10, dtype=object)
    cases["pickled"] = (
        _npz(tmp_path / "p.npz", x_train=x, y_train=obj, x_test=x, y_test=y),
        "pickled",
    )
    cases["lengths"] = (
        _npz(tmp_path / "l.npz", x_train=x, y_train=y[:5], x_test=x, y_test=y),
        "labels shaped",
    )
    cases["dims"] = (
        _npz(tmp_path / "d.npz", x_train=x[0], y_train=y, x_test=x, y_test=y),
        "dimensions",
    )
    cases["range"] = (
        _npz(tmp_path / "r.npz", x_train=x, y_train=y, x_test=x, y_test=y + 5),
        "out of range",
    )
    cases["negative"] = (
        _npz(tmp_path / "n.npz", x_train=x, y_train=y - 1, x_test=x, y_test=y),
        "out of range",
    )
    cases["float range"] = (
        _npz(tmp_path / "f.npz", x_train=x + 2.0, y_train=y, x_test=x, y_test=y),
        "[0, 1]",
    )
    ambiguous = np.zeros((10, 3, 4, 3), np.uint8)
    cases["ambiguous"] = (_npz(tmp_path / "a.npz", x_train=ambiguous, y_train=y,
                               x_test=ambiguous, y_test=y), "channel axis")  # fmt: skip
    (tmp_path / "junk.npz").write_bytes(pickle.dumps({"x_train": 1}))
    cases["not npz"] = (tmp_path / "junk.npz", "not a dataset .npz")
    empty = tmp_path / "empty"
    (empty / "train" / "a").mkdir(parents=True)
    (empty / "train" / "b").mkdir()
    (empty / "test" / "a").mkdir(parents=True)
    cases["empty class"] = (empty, "empty class folder")
    junk = tmp_path / "junk"
    (junk / "train" / "a").mkdir(parents=True)
    (junk / "test" / "a").mkdir(parents=True)
    (junk / "train" / "a" / "x.png").write_text("not an image")
    (junk / "test" / "a" / "x.png").write_text("not an image")
    cases["non-image"] = (junk, "not an image")
    half = tmp_path / "half"
    (half / "train" / "a").mkdir(parents=True)
    cases["no test"] = (half, "needs test/")
    return cases


def test_bad_inputs_are_one_line_errors(tmp_path: Path) -> None:
    for i, (what, (path, message)) in enumerate(_bad_inputs(tmp_path).items()):
        with pytest.raises(DataFileError, match=message) as info:
            load_transforming(str(path), cache_dir=tmp_path / "cache")
        assert "\n" not in str(info.value), what
        argv = ["data", "check", "--dataset", str(path)]
        # the first case in a process of its own, as a user runs it; the others in this one
        result = (
            subprocess.run([sys.executable, "-m", "ginv.cli", *argv], capture_output=True,
                           text=True, cwd=tmp_path)
            if i == 0 else run_ginv(argv)
        )  # fmt: skip
        assert result.returncode != 0, what
        assert len(result.stderr.strip().splitlines()) == 1, (what, result.stderr)
        assert "Traceback" not in result.stderr


def test_a_group_that_cannot_act_names_sizes_that_work(tmp_path: Path) -> None:
    x = np.zeros((20, 24, 24), np.uint8)
    y = np.arange(20) % 2
    path = _npz(tmp_path / "s24.npz", x_train=x, y_train=y, x_test=x, y_test=y)
    assert data_spec(str(path), "R4", cache_dir=tmp_path).shape == (1, 32, 32)
    with pytest.raises(GinvError, match=r"T3 cannot act .* 32×32 canvas .*would work .*: .*25"):
        data_spec(str(path), "T3", cache_dir=tmp_path)


def test_cli_data_check_and_train_on_colour_digits(
    colour: tuple[Path, Path], tmp_path: Path
) -> None:
    npz, folder = colour
    for path in (npz, folder):
        result = run_ginv(["data", "check", "--dataset", str(path), "--group", "T3"])
        assert result.returncode == 0, result.stderr
        assert "3×28×28 images on a 3×36×36 canvas, 9 classes" in result.stdout
    result = subprocess.run(
        [sys.executable, "-m", "ginv.cli", "train", "--dataset", str(npz), "--model", "wt",
         "--group", "R4", "--epochs", "1", "--n-train", "64", "--n-val", "16", "--width", "8",
         "--depth", "1", "--out", str(tmp_path / "runs"), "--quiet", "--device", "cpu"],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    runs = list((tmp_path / "runs").glob("colour-digits-R4-wt-seed0/run.json"))
    assert runs, list((tmp_path / "runs").rglob("*"))
