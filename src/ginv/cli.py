"""The ``ginv`` command line. Every failure is one line on stderr and a non-zero exit."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ginv.errors import GinvError


def _data_check(args: argparse.Namespace) -> int:
    from ginv.data import DataFileError, find_file, load_transforming
    from ginv.data.idx import FILE_NAMES

    failed = False
    for dataset, source in (("mnist", "mnist"), ("fmnist", "fashion-mnist")):
        print(f"{dataset} ({source})")
        ok = True
        for name in FILE_NAMES:
            try:
                found = find_file(source, name, args.data_dir, args.cache_dir)
                print(f"  {name:<26} checksum ok   {found.origin}: {found.path}")
            except DataFileError as e:
                print(f"  {name:<26} FAILED        {e}")
                ok = False
        if ok:
            ds = load_transforming(dataset, args.data_dir, args.cache_dir)
            shape = "×".join(map(str, ds.train.images.shape[1:]))
            print(
                f"  splits train/test/val {len(ds.train)}/{len(ds.test)}/{len(ds.val)}, "
                f"images {shape}, {ds.num_classes} classes, "
                f"train mean {float(ds.train.images.mean()):+.4f} "
                f"std {float(ds.train.images.std()):.4f}"
            )
        failed |= not ok
    print("data check: " + ("FAILED" if failed else "all files verified"))
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ginv", description="Measure and learn genuine group invariance."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="dataset files and splits")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    check = data_sub.add_parser("check", help="verify the dataset files and build the splits")
    check.add_argument("--data-dir", type=Path, help="folder with the IDX files ($GINV_DATA_DIR)")
    check.add_argument("--cache-dir", type=Path, help="cache folder ($GINV_CACHE_DIR)")
    check.set_defaults(func=_data_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except GinvError as e:
        print(f"ginv: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ginv: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
