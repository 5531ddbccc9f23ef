"""Reading IDX files (gzip-compressed or raw), checked against known checksums."""

from __future__ import annotations

import gzip
import hashlib
import io
import zlib
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ginv.errors import GinvError

# sha256 of the *decompressed* IDX bytes (the gzip containers differ between mirrors).
KNOWN_SHA256: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}
FILE_NAMES = tuple(KNOWN_SHA256["mnist"])

_DTYPES: dict[int, str] = {
    0x08: "u1",
    0x09: "i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}


class DataFileError(GinvError):
    """A data file that is missing, truncated, corrupt or not the expected one."""


# The largest file (Fashion-MNIST's training images) is 47 MB decompressed: a bigger file, or
# a gzip stream that inflates past this, is not one of ours and is refused before it fills memory.
MAX_IDX_BYTES = 64 << 20


def decompress(raw: bytes, name: str, limit: int = MAX_IDX_BYTES) -> bytes:
    """``raw`` itself, or its decompression when it is gzip (detected by the magic number);
    more than ``limit`` bytes either way is a :class:`DataFileError` naming ``name``."""
    if raw[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as stream:
                raw = stream.read(limit + 1)
        except (OSError, EOFError, zlib.error) as e:
            raise DataFileError(f"{name}: corrupt or truncated gzip data ({e})") from None
    if len(raw) > limit:
        raise DataFileError(f"{name}: more than {limit} bytes, too large for a dataset file")
    return raw


def read_bytes(path: Path, limit: int = MAX_IDX_BYTES) -> bytes:
    """The decompressed bytes of ``path`` (gzip detected by its magic number), at most ``limit``."""
    try:
        if path.stat().st_size > limit:
            raise DataFileError(f"{path}: more than {limit} bytes, too large for a dataset file")
        raw = path.read_bytes()
    except OSError as e:
        raise DataFileError(f"{path}: cannot read ({e.strerror})") from None
    return decompress(raw, str(path), limit)


def sha256(data: bytes) -> str:
    """The hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def verify(path: Path | str, data: bytes, expected_sha256: str | None) -> None:
    """Raise :class:`DataFileError` naming ``path`` unless ``data`` has the expected checksum."""
    if expected_sha256 is not None and sha256(data) != expected_sha256:
        raise DataFileError(
            f"{path}: checksum mismatch (sha256 of the decompressed bytes is not the known "
            "value; the file is corrupt, truncated or a different file)"
        )


def parse_idx(data: bytes, name: str = "<idx>") -> Tensor:
    """Parse IDX bytes: magic ``0 0 dtype ndim``, ``ndim`` big-endian sizes, then the array."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise DataFileError(f"{name}: not an IDX file (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataFileError(f"{name}: truncated IDX header")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_DTYPES[data[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise DataFileError(
            f"{name}: IDX body has {len(data) - header} bytes, header promises {expected} "
            "(truncated or corrupt file)"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return torch.from_numpy(array.astype(array.dtype.newbyteorder("="), copy=True))


def read_idx(path: Path, expected_sha256: str | None = None) -> Tensor:
    """Read one IDX file, verifying the checksum of its decompressed bytes when given."""
    data = read_bytes(path)
    verify(path, data, expected_sha256)
    return parse_idx(data, str(path))
