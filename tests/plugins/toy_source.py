"""A toy data source registered from outside ginv: one file, one registry call.

``--dataset stripes`` is a generated two-channel dataset of 16×16 images: class k has its
stripes k+1 pixels apart, in channel k % 2, plus noise; made from a seed, so nothing is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ginv.data.arrays import split_given
from ginv.data.source import SOURCES, SourceKind, register_source

CLASSES, SIDE = 3, 16


def _images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % CLASSES
    x = torch.zeros(n, 2, SIDE, SIDE)
    cols = torch.arange(SIDE)
    for k in range(CLASSES):  # a loop over classes, not samples
        rows = labels == k
        x[rows, k % 2] = ((cols % (k + 2)) == 0).float().expand(SIDE, SIDE)
    x = (0.8 * x + 0.2 * torch.rand(n, 2, SIDE, SIDE, generator=g)).clamp(0, 1)
    return (x * 255).to(torch.uint8), labels


class Stripes:
    name = label = "stripes"

    def identity(self) -> str:
        return "stripes"

    def key_content(self) -> dict[str, Any]:
        return {"dataset": "stripes", "version": 1}

    def build(self, cfg, data_dir: Path | None, cache_dir: Path):
        sources = {"stripes": "generated (tests/plugins/toy_source.py)"}
        return split_given(cfg, _images(600, 0), _images(200, 1), sources, "stripes")

    def recheck(self, data_dir: Path | None, cache_dir: Path) -> dict[str, str]:
        return {"stripes": "generated (tests/plugins/toy_source.py)"}

    def cache_problem(self, raw, cfg) -> str | None:
        return None


if "stripes" not in SOURCES:
    register_source(SourceKind("stripes", "generated stripes (a test plugin)",
                               lambda text: Stripes() if text == "stripes" else None))  # fmt: skip
