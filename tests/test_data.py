"""IDX reading, checksums, file resolution, downloads and the Transforming splits."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch
from conftest import idx_bytes, write_idx

from ginv.data import (
    DataConfig,
    DataFileError,
    Split,
    TransformingDataset,
    download,
    drift_split,
    find_file,
    load_transforming,
    pair_by_class,
    parse_idx,
    read_idx,
    training_stats,
)
from ginv.data import idx as idx_module

NAMES = idx_module.FILE_NAMES


def test_parse_idx_round_trip_and_errors() -> None:
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    data = idx_bytes(array)
    assert torch.equal(parse_idx(data), torch.from_numpy(array))
    with pytest.raises(DataFileError, match="truncated"):
        parse_idx(data[:-1], "f")
    with pytest.raises(DataFileError, match="magic"):
        parse_idx(b"\x01\x02\x08\x01" + data[4:], "f")


def test_read_idx_checks_the_decompressed_checksum(tmp_path: Path) -> None:
    array = np.random.default_rng(0).integers(0, 255, (5, 28, 28), dtype=np.uint8)
    data = write_idx(tmp_path / "a.gz", array)
    good = hashlib.sha256(data).hexdigest()
    assert torch.equal(read_idx(tmp_path / "a.gz", good), torch.from_numpy(array))
    write_idx(tmp_path / "raw", array, compress=False)
    assert torch.equal(read_idx(tmp_path / "raw", good), torch.from_numpy(array))
    with pytest.raises(DataFileError, match=r"a\.gz: checksum mismatch"):
        read_idx(tmp_path / "a.gz", "0" * 64)
    (tmp_path / "cut.gz").write_bytes((tmp_path / "a.gz").read_bytes()[:200])
    with pytest.raises(DataFileError, match=r"cut\.gz: corrupt or truncated"):
        read_idx(tmp_path / "cut.gz", good)


def fake_source(
    folder: Path, monkeypatch: pytest.MonkeyPatch, n_train: int = 300, n_test: int = 100
) -> dict[str, bytes]:
    """Writes a tiny MNIST-like dataset and registers its checksums as the known ones
    (and hides the real data directory, whose files no longer match them)."""
    monkeypatch.delenv("GINV_DATA_DIR", raising=False)
    rng = np.random.default_rng(1)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.arange(n_train, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": np.arange(n_test, dtype=np.uint8) % 10,
    }
    blobs = {}
    for name, array in arrays.items():
        blobs[name] = write_idx(folder / "mnist" / f"{name}.gz", array)
        monkeypatch.setitem(
            idx_module.KNOWN_SHA256["mnist"], name, hashlib.sha256(blobs[name]).hexdigest()
        )
    return blobs


def test_find_file_prefers_the_data_dir_and_rejects_corrupt_copies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_source(tmp_path / "data", monkeypatch)
    found = find_file(
        "mnist", NAMES[0], tmp_path / "data", tmp_path / "cache", allow_download=False
    )
    assert found.origin == "data-dir"
    target = tmp_path / "data" / "mnist" / f"{NAMES[1]}.gz"
    target.write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x02ab"))
    with pytest.raises(DataFileError, match=NAMES[1]):
        find_file("mnist", NAMES[1], tmp_path / "data", tmp_path / "cache", allow_download=False)
    with pytest.raises(DataFileError, match="does not exist"):
        find_file("mnist", NAMES[0], tmp_path / "nowhere", tmp_path / "cache")
    with pytest.raises(DataFileError, match="downloads are off"):
        find_file("mnist", NAMES[0], None, tmp_path / "empty", allow_download=False)


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A file server on 127.0.0.1 serving ``tmp_path / 'www'``."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_download_from_local_mirrors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, http_root: tuple[Path, str]
) -> None:
    root, url = http_root
    fake_source(root / "good", monkeypatch)
    name = NAMES[0]
    # mirror "bad" serves a corrupted copy, "missing" serves nothing, "good" the real file
    good_gz = (root / "good" / "mnist" / f"{name}.gz").read_bytes()
    (root / "bad").mkdir()
    (root / "bad" / f"{name}.gz").write_bytes(good_gz[:-40] + bytes(40))
    mirrors = [f"{url}/bad/", f"{url}/missing/", f"{url}/good/mnist/"]
    cache = tmp_path / "cache"
    found = find_file("mnist", name, None, cache, mirrors=mirrors)
    assert found.origin == "download"
    assert found.path == cache / "mnist" / f"{name}.gz"
    assert [p.name for p in (cache / "mnist").iterdir()] == [f"{name}.gz"]
    # the second time it comes from the cache, no server needed
    assert find_file("mnist", name, None, cache, allow_download=False).origin == "cache"
    # only a corrupted mirror: an error naming the file, and nothing left behind
    cache2 = tmp_path / "cache2"
    with pytest.raises(DataFileError, match=f"mnist/{name}: not found locally"):
        find_file("mnist", name, None, cache2, mirrors=[f"{url}/bad/"])
    assert not any(cache2.rglob("*")) or all(p.is_dir() for p in cache2.rglob("*"))


class _FaultyMirror(http.server.BaseHTTPRequestHandler):
    """``/good/F`` serves ``files[F]``; ``/truncated/F`` announces more bytes than it sends;
    ``/trickle/F`` sends a byte every 50 ms; ``/huge/F`` announces a gigabyte."""

    files: ClassVar[dict[str, bytes]] = {}
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.seen.append(self.path)
        kind, _, name = self.path.strip("/").partition("/")
        body = self.files.get(name, b"")
        self.send_response(200 if body else 404)
        length = {"truncated": len(body) + 1000, "huge": 10**9}.get(kind, len(body))
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if kind == "good":
            self.wfile.write(body)
        elif kind == "truncated":
            self.wfile.write(body[: len(body) // 2])
        elif kind == "trickle":
            for byte in body[:400]:  # 20 s at most, far beyond the test's deadline
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.05)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def faulty_mirror(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A 127.0.0.1 server whose mirrors misbehave as :class:`_FaultyMirror` describes."""
    monkeypatch.setattr(_FaultyMirror, "files", {}), monkeypatch.setattr(_FaultyMirror, "seen", [])
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FaultyMirror)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = NAMES[1]
    fake_source(tmp_path / "src", monkeypatch)
    _FaultyMirror.files[f"{name}.gz"] = (tmp_path / "src" / "mnist" / f"{name}.gz").read_bytes()
    return name


def test_a_body_cut_short_moves_on_to_the_next_mirror(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, faulty_mirror: str
) -> None:
    name = _serve(tmp_path, monkeypatch)
    mirrors = [f"{faulty_mirror}/truncated/", f"{faulty_mirror}/good/"]
    dest = download("mnist", name, tmp_path / "cache" / f"{name}.gz", mirrors, retries=2)
    assert dest.read_bytes() == _FaultyMirror.files[f"{name}.gz"]
    assert _FaultyMirror.seen == [f"/truncated/{name}.gz"] * 2 + [f"/good/{name}.gz"]
    assert [p.name for p in dest.parent.iterdir()] == [f"{name}.gz"]


def test_a_trickling_mirror_hits_the_download_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, faulty_mirror: str
) -> None:
    name = _serve(tmp_path, monkeypatch)
    mirrors = [f"{faulty_mirror}/trickle/", f"{faulty_mirror}/good/"]
    start = time.monotonic()
    dest = download("mnist", name, tmp_path / f"{name}.gz", mirrors, retries=1, max_seconds=1.0)
    assert time.monotonic() - start < 5 and dest.is_file()
    with pytest.raises(DataFileError, match="not complete after 1 s"):
        download("mnist", name, tmp_path / "x.gz", mirrors[:1], retries=1, max_seconds=1.0)
    assert not (tmp_path / "x.gz").exists()


def test_downloads_and_decompression_are_capped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, faulty_mirror: str
) -> None:
    name = _serve(tmp_path, monkeypatch)
    with pytest.raises(DataFileError, match="announces 1000000000 bytes, more than the"):
        download("mnist", name, tmp_path / "x.gz", [f"{faulty_mirror}/huge/"], retries=1)
    bomb = gzip.compress(bytes(idx_module.MAX_IDX_BYTES + 1), compresslevel=1)
    _FaultyMirror.files[f"{name}.gz"] = bomb  # 65 KB that inflate past the cap
    with pytest.raises(DataFileError, match="too large for a dataset file"):
        download("mnist", name, tmp_path / "x.gz", [f"{faulty_mirror}/good/"], retries=1)
    (tmp_path / "data" / "mnist").mkdir(parents=True)
    (tmp_path / "data" / "mnist" / f"{name}.gz").write_bytes(bomb)
    with pytest.raises(DataFileError, match="too large for a dataset file"):
        find_file("mnist", name, tmp_path / "data", tmp_path / "cache", allow_download=False)


def test_default_mirrors_prefer_https() -> None:
    from ginv.data.sources import MIRRORS

    for mirrors in MIRRORS.values():
        schemes = [m.split("://")[0] for m in mirrors]
        assert schemes == sorted(schemes, key=lambda s: s != "https"), mirrors


def test_transforming_splits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_source(tmp_path / "data", monkeypatch)
    cfg = DataConfig("mnist", n_train=120, n_test=200, n_val=30, split_seed=3)
    ds = load_transforming(cfg, tmp_path / "data", tmp_path / "cache")
    assert (len(ds.train), len(ds.test), len(ds.val)) == (120, 200, 30)
    assert ds.train.images.shape == (120, 1, 36, 36) and ds.train.images.dtype == torch.float32
    assert ds.num_classes == 9
    for split in (ds.train, ds.test, ds.val):
        assert int(split.labels.max()) <= 8
    # the padding is the pixel value 0 after normalisation
    border = ds.to_pixels(ds.test.images)[..., :4, :]
    assert torch.allclose(border, torch.zeros_like(border), atol=1e-6)
    assert abs(float(ds.train.images.double().mean())) < 1e-5
    assert abs(float(ds.train.images.double().std()) - 1) < 1e-4
    # disjoint splits: random images are unique, so compare them as rows
    rows = torch.cat([s.images.flatten(1) for s in (ds.train, ds.test, ds.val)])
    assert len(torch.unique(rows, dim=0)) == 350
    # the cache gives identical tensors without the source files, unless a data directory
    # is named: then a warm cache must not hide that its files are gone
    for f in (tmp_path / "data" / "mnist").iterdir():
        f.unlink()
    again = load_transforming(cfg, None, tmp_path / "cache")
    assert torch.equal(again.test.images, ds.test.images)
    with pytest.raises(DataFileError, match=f"{NAMES[0]}: not found in {tmp_path / 'data'}"):
        load_transforming(cfg, tmp_path / "data", tmp_path / "cache")


def test_splits_normalised_with_another_datasets_statistics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``stats`` replaces the normalisation only: the same pixels, another mean and std."""
    fake_source(tmp_path / "data", monkeypatch)
    cfg = DataConfig("mnist", n_train=120, n_test=200, n_val=30)
    own = load_transforming(cfg, tmp_path / "data", tmp_path / "cache")
    assert training_stats(cfg, tmp_path / "data", tmp_path / "cache") == (own.mean, own.std)
    other = load_transforming(cfg, tmp_path / "data", tmp_path / "cache", stats=(0.25, 2.0))
    assert (other.mean, other.std) == (0.25, 2.0)
    assert torch.allclose(
        other.test.images, (own.to_pixels(own.test.images) - 0.25) / 2.0, atol=1e-6
    )


def test_too_many_samples_and_unknown_dataset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_source(tmp_path / "data", monkeypatch)  # 400 images, 361 once class 9 is dropped
    with pytest.raises(DataFileError, match="mnist: 362 samples requested, 361 available"):
        load_transforming(DataConfig("mnist", 300, 52, 10), tmp_path / "data", tmp_path / "c")
    assert len(load_transforming(DataConfig("mnist", 300, 51, 10), tmp_path / "data").test) == 51
    with pytest.raises(DataFileError, match="unknown dataset"):
        load_transforming("cifar", tmp_path, tmp_path)


def tiny_dataset(seed: int, mean: float, std: float) -> TransformingDataset:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(40) % 9
    images = torch.randn(40, 1, 6, 6, generator=g)
    split = Split(images, labels)
    return TransformingDataset(DataConfig(), split, split, split, mean, std, 9)


def test_drift_blend_and_mixture() -> None:
    d1, d2 = tiny_dataset(0, 0.1, 0.3), tiny_dataset(1, 0.3, 0.4)
    partner = pair_by_class(d1.test.labels, d2.test.labels, seed=0)
    assert torch.equal(d2.test.labels[partner], d1.test.labels)
    s0 = drift_split(d1, d2, 0.0)
    assert torch.allclose(s0.images, d1.test.images, atol=1e-6)
    assert torch.equal(s0.labels, d1.test.labels)
    s1 = drift_split(d1, d2, 1.0)
    assert torch.allclose(d1.to_pixels(s1.images), d2.to_pixels(d2.test.images[partner]), atol=1e-6)
    half = drift_split(d1, d2, 0.5)
    expected = 0.5 * d1.to_pixels(d1.test.images) + 0.5 * d2.to_pixels(d2.test.images[partner])
    assert torch.allclose(d1.to_pixels(half.images), expected, atol=1e-6)
    mix = drift_split(d1, d2, 0.5, mode="mixture")
    from_d2 = torch.isclose(mix.images, s1.images, atol=1e-6).flatten(1).all(1)
    from_d1 = torch.isclose(mix.images, s0.images, atol=1e-6).flatten(1).all(1)
    assert bool((from_d1 | from_d2).all()) and 5 < int(from_d2.sum()) < 35
    with pytest.raises(Exception, match="β"):
        drift_split(d1, d2, 1.5)


def test_real_transforming_mnist(real_data_dir: Path) -> None:
    ds = load_transforming("mnist", real_data_dir)
    assert (len(ds.train), len(ds.test), len(ds.val)) == (10_000, 50_000, 2_000)
    assert ds.train.images.shape[1:] == (1, 36, 36) and ds.num_classes == 9
    assert set(ds.test.labels.unique().tolist()) == set(range(9))
    assert abs(float(ds.train.images.mean())) < 1e-4
    assert abs(float(ds.train.images.std()) - 1) < 1e-4


@pytest.mark.slow
def test_cli_data_check_reports_a_corrupt_file(tmp_path: Path, real_data_dir: Path) -> None:
    copy = tmp_path / "data"
    for src in ("mnist", "fashion-mnist"):
        (copy / src).mkdir(parents=True)
        for f in (real_data_dir / src).iterdir():
            (copy / src / f.name).symlink_to(f)
    bad = copy / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz"
    bad.unlink()
    data = gzip.decompress((real_data_dir / "fashion-mnist" / bad.name).read_bytes())
    bad.write_bytes(gzip.compress(data[:-1] + b"\x07"))
    cmd = [sys.executable, "-m", "ginv.cli", "data", "check", "--data-dir", str(copy)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode != 0
    assert "Traceback" not in run.stderr + run.stdout
    assert "t10k-labels-idx1-ubyte.gz: checksum mismatch" in run.stdout


def _cache_file(cache: Path) -> Path:
    (path,) = (cache / "splits").glob("transforming-mnist-*.pt")
    return path


def _resave(change):
    def corrupt(path: Path) -> None:
        raw = torch.load(path, weights_only=True)
        change(raw)
        torch.save(raw, path)

    return corrupt


def _swap_labels(raw: dict) -> None:
    raw["train"]["labels"] = raw["train"]["labels"].roll(1)  # in range, counts unchanged


def _directory(path: Path) -> None:
    path.unlink()
    (path / "inside").mkdir(parents=True)


CACHE_DAMAGE = {
    "altered labels": (_resave(_swap_labels), "does not match its content hash"),
    "wrong shape": (_resave(lambda r: r["val"].update(images=r["val"]["images"][:-1])), "shape"),
    "NaN images": (
        _resave(lambda r: r["test"].update(images=r["test"]["images"].float() * torch.nan)),
        "uint8",
    ),
    "label 9": (_resave(lambda r: r["val"]["labels"].fill_(9)), "labels out of range"),
    "missing key": (_resave(lambda r: r.pop("test")), "no test images"),
    "not a dict": (lambda p: torch.save([1, 2], p), "not a split cache"),
    "garbage": (lambda p: p.write_bytes(b"not torch"), "unreadable"),
    "old format": (_resave(lambda r: r.pop("format")), "not a split cache of this version"),
    "a directory in the way": (_directory, None),
}


@pytest.mark.parametrize("damage", CACHE_DAMAGE)
def test_a_damaged_split_cache_is_rebuilt_never_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, damage: str
) -> None:
    fake_source(tmp_path / "data", monkeypatch)
    cfg = DataConfig("mnist", n_train=120, n_test=200, n_val=30)
    fresh = load_transforming(cfg, tmp_path / "data", tmp_path / "cache")
    corrupt, message = CACHE_DAMAGE[damage]
    corrupt(_cache_file(tmp_path / "cache"))
    capsys.readouterr()
    again = load_transforming(cfg, tmp_path / "data", tmp_path / "cache")
    for k in ("train", "test", "val"):
        assert torch.equal(getattr(again, k).labels, getattr(fresh, k).labels)
        assert torch.equal(getattr(again, k).images, getattr(fresh, k).images)
    err = capsys.readouterr().err
    assert err.startswith("ginv: warning:") and "Traceback" not in err
    if message is not None:  # rebuilt and saved again: the next load is silent
        assert message in err and "rebuilding it" in err
        load_transforming(cfg, tmp_path / "data", tmp_path / "cache")
        assert capsys.readouterr().err == ""
    else:
        assert "split cache not saved" in err


def test_a_warm_cache_still_checks_the_named_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_source(tmp_path / "data", monkeypatch)
    cfg = DataConfig("mnist", n_train=120, n_test=200, n_val=30)
    load_transforming(cfg, tmp_path / "data", tmp_path / "cache")
    # unchanged files are checked by size and mtime, not read again
    reads = []
    real_read = idx_module.read_bytes
    monkeypatch.setattr(
        "ginv.data.sources.read_bytes", lambda p, *a: reads.append(p) or real_read(p, *a)
    )
    load_transforming(cfg, tmp_path / "data", tmp_path / "cache")
    assert reads == []
    # a corrupted file is read and refused, though the cache is warm
    bad = tmp_path / "data" / "mnist" / f"{NAMES[3]}.gz"
    data = gzip.decompress(bad.read_bytes())
    bad.write_bytes(gzip.compress(data[:-1] + bytes([(data[-1] + 1) % 9])))
    with pytest.raises(DataFileError, match=f"{NAMES[3]}.gz: checksum mismatch"):
        load_transforming(cfg, tmp_path / "data", tmp_path / "cache")
    with pytest.raises(DataFileError, match="data directory does not exist"):
        training_stats(cfg, tmp_path / "nowhere", tmp_path / "cache")
    monkeypatch.setenv("GINV_DATA_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(DataFileError, match="data directory does not exist"):
        load_transforming(cfg, None, tmp_path / "cache")


def test_the_cache_key_covers_its_format_and_torch_version(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from ginv.data import transforming

    cfg = DataConfig("mnist")
    path = transforming._cache_path(cfg, tmp_path)
    monkeypatch.setattr(torch, "__version__", "9.9.9")
    assert transforming._cache_path(cfg, tmp_path) != path
    monkeypatch.undo()
    monkeypatch.setattr(transforming, "CACHE_FORMAT", transforming.CACHE_FORMAT + 1)
    assert transforming._cache_path(cfg, tmp_path) != path


def test_an_unwritable_cache_is_a_warning_not_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    fake_source(tmp_path / "data", monkeypatch)
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("GINV_CACHE_DIR", str(blocked / "cache"))  # below a file: unwritable
    cfg = DataConfig("mnist", n_train=120, n_test=200, n_val=30)
    ds = load_transforming(cfg, tmp_path / "data")
    assert len(ds.train) == 120
    err = capsys.readouterr().err
    assert "ginv: warning:" in err and "Traceback" not in err
    assert all(line.startswith("ginv: warning:") for line in err.splitlines())
