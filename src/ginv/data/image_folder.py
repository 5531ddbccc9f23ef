"""A dataset in an image folder, torchvision's ImageFolder layout:
``ROOT/train/<class>/*.png`` and ``ROOT/test/<class>/*.png``.

Class index = position of the class folder's name among the training split's class folders,
sorted. Images are decoded with Pillow; all must have one size and one mode: ``L`` (one
channel), ``RGB`` (three) or ``RGBA`` (four); other modes (palette ``P``, …) are read as
``RGB``. Every file in a class folder must be an image (hidden files, ``.*``, are skipped);
an empty class folder is an error. Splits and identity: :mod:`ginv.data.arrays`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ginv.data.arrays import content_hash, file_cache_problem, label_of, split_given
from ginv.data.idx import DataFileError
from ginv.data.source import RawSplits, Source, SplitSettings

SPLITS = ("train", "test")
MODES = {"L": "L", "RGB": "RGB", "RGBA": "RGBA"}


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


class ImageFolderSource(Source):
    """The image folder at ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.name = "folder-" + label_of(root)
        self.label = label_of(root)

    @classmethod
    def open(cls, text: str) -> Source | None:
        """The registry's opener: a folder holding ``train`` and ``test`` folders."""
        root = Path(text).expanduser()
        if not root.is_dir():
            return None
        missing = [s for s in SPLITS if not (root / s).is_dir()]
        if missing:
            raise DataFileError(
                f"{root}: an image-folder dataset needs {' and '.join(f'{s}/' for s in missing)} "
                "(ROOT/train/<class>/*.png, ROOT/test/<class>/*.png)"
            )
        return cls(root)

    def _files(self) -> list[Path]:
        return [
            f for s in SPLITS for c in _visible(self.root / s) if c.is_dir() for f in _visible(c)
        ]

    def sha256(self) -> str:
        """The sha256 of the dataset's content (memoised by file size and time)."""
        return content_hash(self.root, self._files)

    def identity(self) -> str:
        return f"imagefolder:{self.sha256()}"

    def key_content(self) -> dict[str, Any]:
        return {"dataset": "imagefolder", "sha256": self.sha256()}

    def classes(self) -> list[str]:
        """The class names, sorted: class index ``i`` is ``classes()[i]``."""
        names = [c.name for c in _visible(self.root / "train") if c.is_dir()]
        if not names:
            raise DataFileError(f"{self.root / 'train'}: no class folders")
        return names

    def _read_split(self, split: str, classes: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        from PIL import Image, UnidentifiedImageError

        folder = self.root / split
        images: list[np.ndarray] = []
        labels: list[int] = []
        first: tuple[str, tuple[int, int], Path] | None = None
        for entry in _visible(folder):
            if not entry.is_dir():
                raise DataFileError(f"{entry}: not a class folder (expected {folder}/<class>/)")
            if entry.name not in classes:
                raise DataFileError(
                    f"{entry}: class {entry.name!r} is not among the training classes"
                )
            files = _visible(entry)
            if not files:
                raise DataFileError(f"{entry}: empty class folder")
            for path in files:
                try:
                    with Image.open(path) as img:
                        img.load()
                        mode = MODES.get(img.mode, "RGB")
                        array = np.asarray(img.convert(mode), dtype=np.uint8)
                        size = img.size
                except (UnidentifiedImageError, OSError, ValueError) as e:
                    raise DataFileError(f"{path}: not an image Pillow can read ({e})") from None
                if first is None:
                    first = (mode, size, path)
                elif (mode, size) != first[:2]:
                    raise DataFileError(
                        f"{path}: {size[0]}×{size[1]} {mode}, but {first[2]} is "
                        f"{first[1][0]}×{first[1][1]} {first[0]}: all images need one size and mode"
                    )
                images.append(array if array.ndim == 3 else array[:, :, None])
                labels.append(classes.index(entry.name))
        if not images:
            raise DataFileError(f"{folder}: no images")
        x = torch.from_numpy(np.ascontiguousarray(np.stack(images).transpose(0, 3, 1, 2)))
        return x, torch.tensor(labels, dtype=torch.int64)

    def build(self, cfg: SplitSettings, data_dir: Path | None, cache_dir: Path) -> RawSplits:
        classes = self.classes()
        train = self._read_split("train", classes)
        test = self._read_split("test", classes)
        sources = {"folder": f"folder: {self.root}"}
        return split_given(cfg, train, test, sources, str(self.root))

    def recheck(self, data_dir: Path | None, cache_dir: Path) -> dict[str, str] | None:
        return {"folder": f"folder: {self.root}"}

    def cache_problem(self, raw: RawSplits, cfg: SplitSettings) -> str | None:
        return file_cache_problem(raw)
