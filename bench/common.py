"""Helpers shared by the benchmarks: data, timing, and this machine's matmul rate."""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch

from ginv.data import DataConfig, Split, TransformingDataset, load_transforming


def bench_data(n_train: int = 10_000) -> TransformingDataset:
    """Transforming-MNIST when ``GINV_DATA_DIR`` is set, else random data of the same shape."""
    if os.environ.get("GINV_DATA_DIR"):
        return load_transforming("mnist")
    print("GINV_DATA_DIR unset: benchmarking on random data of the same shape")
    g = torch.Generator().manual_seed(0)

    def split(n: int) -> Split:
        return Split(torch.randn(n, 1, 36, 36, generator=g), torch.randint(9, (n,), generator=g))

    return TransformingDataset(DataConfig(), split(n_train), split(2000), split(2000), 0.0, 1.0, 9)


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (0: torch's own choice)"
    )


def use_threads(n: int) -> None:
    """One thread by default: on a shared machine a multi-threaded small op waits at its
    barrier for a descheduled thread, which slows many-small-op jobs tens of times and a big
    matmul hardly, so timings and shares would measure the neighbours, not the code."""
    if n:
        torch.set_num_threads(n)


def median_time(fn: Callable[[], object], repeats: int = 5) -> float:
    """Median seconds of ``repeats`` timed calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_gflops(n: int = 2048, repeats: int = 9) -> float:
    """Dense float32 ``n×n`` matmul rate of this machine, in GFLOP/s."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n**3 / median_time(lambda: torch.mm(a, b), repeats) / 1e9
