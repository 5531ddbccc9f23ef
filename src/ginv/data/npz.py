"""A dataset in one ``.npz`` file: arrays ``x_train``, ``y_train``, ``x_test``, ``y_test``.

Images and labels as :mod:`ginv.data.arrays` says (layouts, dtypes, splits, identity). The
file is read with ``allow_pickle=False``: an object array is refused, never unpickled.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ginv.data.arrays import (
    as_images,
    as_labels,
    content_hash,
    file_cache_problem,
    label_of,
    split_given,
)
from ginv.data.idx import DataFileError
from ginv.data.source import RawSplits, Source, SplitSettings

KEYS = ("x_train", "y_train", "x_test", "y_test")


class NpzSource(Source):
    """The ``.npz`` file at ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = "npz-" + label_of(path)
        self.label = label_of(path)

    @classmethod
    def open(cls, text: str) -> Source | None:
        """The registry's opener: a path ending in ``.npz`` (which must be a file)."""
        if not text.lower().endswith(".npz"):
            return None
        path = Path(text).expanduser()
        if not path.is_file():
            raise DataFileError(f"{path}: no such .npz file")
        return cls(path)

    def sha256(self) -> str:
        """The sha256 of the dataset's content (memoised by file size and time)."""
        return content_hash(self.path, lambda: [self.path])

    def identity(self) -> str:
        return f"npz:{self.sha256()}"

    def key_content(self) -> dict[str, Any]:
        return {"dataset": "npz", "sha256": self.sha256()}

    def read(self) -> dict[str, np.ndarray]:
        """The four arrays, checked to be present and pickle-free."""
        try:
            with np.load(self.path, allow_pickle=False) as npz:
                missing = [k for k in KEYS if k not in npz.files]
                if missing:
                    raise DataFileError(
                        f"{self.path}: missing arrays {', '.join(missing)} (a dataset .npz holds "
                        f"{', '.join(KEYS)})"
                    )
                return {k: npz[k] for k in KEYS}
        except DataFileError:
            raise
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
            reason = "holds object (pickled) arrays" if "pickle" in str(e) else f"unreadable ({e})"
            raise DataFileError(f"{self.path}: not a dataset .npz: {reason}") from None

    def build(self, cfg: SplitSettings, data_dir: Path | None, cache_dir: Path) -> RawSplits:
        arrays = self.read()
        where = str(self.path)
        xt = as_images(arrays["x_train"], f"{where} x_train")
        xs = as_images(arrays["x_test"], f"{where} x_test")
        yt = as_labels(arrays["y_train"], len(xt), f"{where} y_train")
        ys = as_labels(arrays["y_test"], len(xs), f"{where} y_test")
        sources = {"npz": f"file: {self.path}"}
        return split_given(cfg, (xt, yt), (xs, ys), sources, where)

    def recheck(self, data_dir: Path | None, cache_dir: Path) -> dict[str, str] | None:
        return {"npz": f"file: {self.path}"}  # its content hash is in the cache's key

    def cache_problem(self, raw: RawSplits, cfg: SplitSettings) -> str | None:
        return file_cache_problem(raw)
