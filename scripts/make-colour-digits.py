#!/usr/bin/env python
"""Write Colour-Digits, a 3-channel dataset, from the MNIST IDX files, in both layouts that
``ginv --dataset`` reads: ``OUT/colour-digits.npz`` (``x_*`` as ``(N, 28, 28, 3)`` uint8)
and the image folder ``OUT/colour-digits/{train,test}/<class>/<i>.png``.

Each digit (classes 0–8; 9 is dropped as in Transforming-MNIST) is drawn in a random colour
on a background of another random colour: ``pixel = (1 − a)·bg + a·fg`` with ``a`` the MNIST
intensity. 28×28 images pad to a 36×36 canvas, on which R4 and T3 both act. Deterministic
from ``--seed``.

    GINV_DATA_DIR=/path/to/idx python scripts/make-colour-digits.py --out data/
    ginv data check --dataset data/colour-digits.npz --group T3
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

DROP_CLASS = 9


def colour_digits(
    images: np.ndarray, labels: np.ndarray, n: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` coloured digits ``(n, H, W, 3)`` uint8 and their labels from grey digits
    ``(N, H, W)`` uint8, drawn (without replacement) and coloured with ``seed``."""
    rng = np.random.default_rng(seed)
    keep = np.flatnonzero(labels != DROP_CLASS)
    if n > len(keep):
        raise SystemExit(f"make-colour-digits: {n} images asked for, {len(keep)} available")
    pick = rng.choice(keep, size=n, replace=False)
    alpha = images[pick].astype(np.float64)[..., None] / 255.0
    fg = rng.integers(0, 256, (n, 1, 1, 3)).astype(np.float64)
    bg = rng.integers(0, 256, (n, 1, 1, 3)).astype(np.float64)
    too_close = np.abs(fg - bg).sum(-1, keepdims=True) < 192  # keep the digit visible
    fg = np.where(too_close, 255.0 - bg, fg)
    pixels = np.rint((1.0 - alpha) * bg + alpha * fg).astype(np.uint8)
    return pixels, labels[pick].astype(np.int64)


def write(out: Path, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
          name: str = "colour-digits") -> tuple[Path, Path]:  # fmt: skip
    """Both layouts under ``out``: ``name.npz`` and the folder ``name/``; their paths."""
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    npz = out / f"{name}.npz"
    np.savez(npz, x_train=train[0], y_train=train[1], x_test=test[0], y_test=test[1])
    root = out / name
    for split, (x, y) in (("train", train), ("test", test)):
        for i, (image, label) in enumerate(zip(x, y, strict=True)):
            folder = root / split / str(int(label))
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image, "RGB").save(folder / f"{i:05d}.png")
    return npz, root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--data-dir", type=Path, help="folder with the MNIST IDX files "
                        "($GINV_DATA_DIR)")  # fmt: skip
    parser.add_argument("--n-train", type=int, default=3000)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from ginv.data import find_file, parse_idx
    from ginv.errors import GinvError

    try:
        parts = {}
        for split, prefix in (("train", "train"), ("test", "t10k")):
            x, y = (
                parse_idx(find_file("mnist", f"{prefix}-{kind}-ubyte", args.data_dir).data).numpy()
                for kind in ("images-idx3", "labels-idx1")
            )
            n = args.n_train if split == "train" else args.n_test
            parts[split] = colour_digits(x, y, n, args.seed + (split == "test"))
    except GinvError as e:
        print(f"make-colour-digits: error: {e}", file=sys.stderr)
        return 1
    npz, root = write(args.out, parts["train"], parts["test"])
    print(f"wrote {npz} and {root}/ ({args.n_train} train, {args.n_test} test, 28×28 RGB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
