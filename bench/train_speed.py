"""Training speed of the six families (DA, WT, IR × R4, T3) against naive PyTorch loops.

Per family and group, three jobs run in the same process: a naive PyTorch loop of that
family, ginv's ``Trainer`` with one member, and with four members trained as one batched
model. Each job's rate is the exact FLOP count of its training steps (``ginv.flops``,
validation excluded) over its epoch time, as a share of this machine's dense float32 matmul
rate. That rate drifts from run to run and minute to minute (other processes, clocks), so
the matmul probe is interleaved with the jobs (probe, job, probe, job, …): each timed epoch
is set against the mean of the probes either side of it, and rows report medians over
rounds; ratios to the naive loop are taken within a round, whose jobs ran back to back.

``mm share`` says where the rest goes: each job's epoch is run once under a dispatch mode
that records every matrix product (forward and backward, after ``vmap``'s batching) with
its operands' shapes and strides, the products are replayed alone on random operands laid
out the same, and their time is set over the epoch's. ``% matmul`` over ``mm share`` is the
rate of the job's own products against the 2048² probe, the job's ceiling were everything
else free.

With ``--compile``, each ginv job also runs with its batched loss (the forward pass and
the regulariser; autograd's backward of it is compiled with it) under ``torch.compile``
(inductor, the system C++ compiler; ``TORCHINDUCTOR_CACHE_DIR`` defaults to a folder in the
temporary directory): ``comp ×M`` rows, whose ``× eager`` compares them with the eager job
of the same members in the same round. Compilation happens in the warm-up epoch.

    python bench/train_speed.py [--rounds 3] [--n-train 5000] [--families DA,WT,IR] [--threads 1]
                                [--compile]
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from common import add_threads_option, bench_data, median_time, use_threads
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.data import DataLoader, Dataset

from ginv.data import Split, TransformingDataset
from ginv.flops import train_step_flops
from ginv.training import TrainConfig, Trainer

BATCH, LR, WIDTH, DEPTH, NU = 512, 8e-4, 128, 5, 1.0
FAMILIES: dict[str, dict[str, Any]] = {
    "DA": {"model": "mlp"},
    "WT": {"model": "wt"},
    "IR": {"model": "mlp", "reg": "logit", "nu": NU},
}

# --- the naive way, in plain PyTorch (group actions by torch.rot90 / torch.roll) ----------

Action = Callable[[Tensor, int], Tensor]


def naive_action(group: str) -> tuple[Action, int]:
    """``(act, |G|)``: element ``k`` of R4 rotates by k·90°, of T3 rolls by k·W/3 along x."""
    if group == "R4":
        return (lambda x, k: torch.rot90(x, k, dims=(-2, -1))), 4
    if group == "T3":
        return (lambda x, k: torch.roll(x, k * x.shape[-1] // 3, dims=-1)), 3
    raise ValueError(f"no naive action for {group}")


class AugmentingDataset(Dataset):
    """One random group element per sample, drawn and applied in ``__getitem__``."""

    def __init__(self, split: Split, act: Action, order: int) -> None:
        self.images, self.labels, self.act, self.order = split.images, split.labels, act, order

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return self.act(self.images[i], int(torch.randint(self.order, ()))), self.labels[i]


def naive_layers(first: int) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Linear(first, WIDTH), nn.ReLU()]
    for _ in range(DEPTH - 1):
        layers += [nn.Linear(WIDTH, WIDTH), nn.ReLU()]
    return layers


class NaiveWT(nn.Module):
    """WT as written from its definition: the first layer on each ``g·x`` in a Python loop."""

    def __init__(self, act: Action, order: int) -> None:
        super().__init__()
        self.act, self.order = act, order
        self.first = nn.Linear(36 * 36, WIDTH)
        self.rest = nn.Sequential(*naive_layers(WIDTH)[2:], nn.Linear(WIDTH, 9))

    def forward(self, x: Tensor) -> Tensor:
        hs = [torch.relu(self.first(self.act(x, k).flatten(1))) for k in range(self.order)]
        return self.rest(torch.stack(hs).mean(0))


@dataclass
class NaiveLoop:
    """One family's naive training loop: DataLoader, nn.Module, Adam."""

    family: str
    split: Split
    group: str

    def __post_init__(self) -> None:
        torch.manual_seed(0)
        self.act, self.order = naive_action(self.group)
        if self.family == "WT":
            self.model: nn.Module = NaiveWT(self.act, self.order)
        else:
            self.model = nn.Sequential(nn.Flatten(), *naive_layers(36 * 36), nn.Linear(WIDTH, 9))
        self.opt = torch.optim.Adam(self.model.parameters(), lr=LR)
        data = AugmentingDataset(self.split, self.act, self.order)
        self.loader = DataLoader(data, batch_size=BATCH, shuffle=True)

    def images_per_sample(self) -> int:
        return self.order if self.family == "IR" else 1

    def epoch(self) -> None:
        for x, y in self.loader:
            if self.family == "IR":  # the orbit of every batch, then ce + ν·½‖f(x) − f(h·x)‖²
                orbit = torch.cat([self.act(x, k) for k in range(self.order)])
                logits = self.model(orbit).view(self.order, len(x), -1)
                inv = 0.5 * (logits[1:] - logits[:1]).pow(2).sum(-1).mean()
                loss = F.cross_entropy(logits[0], y) + NU * inv
            else:
                loss = F.cross_entropy(self.model(x), y)
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()


# --- jobs, probes, rounds ---------------------------------------------------------------


@dataclass
class Job:
    """One timed training epoch of ``members`` models; ``flops`` is that epoch's step FLOPs."""

    impl: str
    members: int
    epoch: Callable[[], object]
    flops: float
    seconds: list[float] = field(default_factory=list)
    share: list[float] = field(default_factory=list)  # of the surrounding probes' matmul rate
    speedup: list[float] = field(default_factory=list)  # naive s/member-epoch over ours
    eager: Job | None = None  # a compiled job's eager twin
    over_eager: list[float] = field(default_factory=list)  # the twin's seconds over ours
    matmul_seconds: float = 0.0  # its epoch's products alone (matmul_replay)


def probe(n: int = 2048, repeats: int = 3) -> float:
    """This machine's dense float32 matmul rate now, in GFLOP/s (median of a few calls)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n**3 / median_time(lambda: torch.mm(a, b), repeats) / 1e9


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def family_jobs(
    family: str, group: str, data: TransformingDataset, n: int, tmp: str, compile: bool = False
) -> list[Job]:
    shape = tuple(data.train.images.shape[1:])
    naive = NaiveLoop(family, data.train.head(n), group)
    jobs = [
        Job(
            "naive",
            1,
            naive.epoch,
            n * train_step_flops(naive.model, shape, naive.images_per_sample()),
        )
    ]
    ips = naive.order if family == "IR" else 1
    for members in (1, 4):
        configs = [
            TrainConfig(group=group, seed=s, n_train=n, **FAMILIES[family]) for s in range(members)
        ]
        trainer = Trainer(configs, data, f"{tmp}/{family}{group}{members}", "cpu", progress=False)
        flops = members * n * train_step_flops(trainer.template, shape, ips)
        jobs.append(Job(f"ginv ×{members}", members, trainer.train_epoch, flops))
        if compile:
            twin = Trainer(configs, data, f"{tmp}/{family}{group}{members}c", "cpu", progress=False)
            # the instance's _loss, compiled: the same step as the eager job's, traced once
            twin._loss = torch.compile(twin._loss)  # type: ignore[method-assign]
            jobs.append(Job(f"comp ×{members}", members, twin.train_epoch, flops, eager=jobs[-1]))
    return jobs


def run_rounds(jobs: list[Job], rounds: int, probes: list[float]) -> None:
    """A warm-up epoch each, then ``rounds`` × (probe, job, probe, job, …, probe)."""
    for job in jobs:
        job.epoch()
        job.matmul_seconds = matmul_replay(job.epoch)
    for _ in range(rounds):
        before = probe()
        probes.append(before)
        for job in jobs:
            seconds = timed(job.epoch)
            after = probe()
            probes.append(after)
            job.seconds.append(seconds)
            job.share.append(job.flops / seconds / 1e9 / ((before + after) / 2))
            before = after
        naive = jobs[0].seconds[-1]
        for job in jobs:
            job.speedup.append(naive / (job.seconds[-1] / job.members))
            if job.eager is not None:
                job.over_eager.append(job.eager.seconds[-1] / job.seconds[-1])


_ATEN = torch.ops.aten
MATMULS = {_ATEN.mm.default, _ATEN.bmm.default, _ATEN.addmm.default, _ATEN.baddbmm.default}


class MatmulCalls(TorchDispatchMode):
    """Counts every matrix product run under it (forward and backward, after ``vmap``'s
    batching), by operator and its operands' shapes and strides."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[tuple[Any, tuple[Any, ...]]] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        if func in MATMULS:
            layout = tuple((tuple(a.shape), a.stride()) if isinstance(a, Tensor) else a
                           for a in args)  # fmt: skip
            self.calls[(func, layout)] += 1
        return func(*args, **(kwargs or {}))


def _operand(a: Any) -> Any:
    """A random tensor laid out as a recorded operand ``(shape, stride)`` (a transposed or
    broadcast view stays one: its layout sets the product's speed); anything else as is."""
    if not (isinstance(a, tuple) and len(a) == 2 and isinstance(a[0], tuple)):
        return a
    shape, stride = a
    size = 1 + sum((n - 1) * st for n, st in zip(shape, stride, strict=True))
    return torch.randn(size).as_strided(shape, stride)


def matmul_replay(epoch: Callable[[], object]) -> float:
    """Seconds the matrix products of one ``epoch()`` take alone: every mm, bmm, addmm and
    baddbmm it ran called again on random operands of the same shapes and strides, each
    distinct call timed and counted as often as the epoch made it. The epoch's time beyond
    this is what is not its own products at their own sizes (which run below the 2048²
    probe's rate when small)."""
    recorder = MatmulCalls()
    with recorder:
        epoch()
    total = 0.0
    for (op, layout), count in recorder.calls.items():
        total += count * median_time(functools.partial(op, *map(_operand, layout)), 3)
    return total


def rows(jobs: list[Job]) -> Iterator[tuple[str, int, float, float, float, float, float, str]]:
    for job in jobs:
        seconds = statistics.median(job.seconds)
        yield (
            job.impl,
            job.members,
            seconds / job.members,
            job.flops / seconds / 1e9,
            100 * statistics.median(job.share),
            100 * job.matmul_seconds / seconds,
            statistics.median(job.speedup),
            f"{statistics.median(job.over_eager):8.2f}×" if job.over_eager else "",
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="timed epochs per job")
    parser.add_argument("--n-train", type=int, default=5000, help="training samples")
    parser.add_argument("--families", default="DA,WT,IR")
    parser.add_argument("--groups", default="R4,T3")
    parser.add_argument("--compile", action="store_true",
                        help="also time each ginv job with its loss under torch.compile")  # fmt: skip
    add_threads_option(parser)
    args = parser.parse_args()
    use_threads(args.threads)
    if args.compile:
        os.environ.setdefault(
            "TORCHINDUCTOR_CACHE_DIR", os.path.join(tempfile.gettempdir(), "ginv-inductor")
        )
    data = bench_data(args.n_train)
    n = min(args.n_train, len(data.train))
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {n} training samples, "
        f"batch {BATCH}, {args.rounds} timed epochs per job (after one warm-up)"
    )
    header = f"{'family':7}{'group':6}{'impl':9}{'members':>8}{'s/member-ep':>12}"
    header += f"{'GFLOP/s':>9}{'% matmul':>9}{'mm share':>9}{'× naive':>9}"
    header += f"{'× eager':>9}" * args.compile
    print(header)
    probes: list[float] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for family in args.families.split(","):
            for group in args.groups.split(","):
                jobs = family_jobs(family, group, data, n, tmp, args.compile)
                run_rounds(jobs, args.rounds, probes)
                for impl, members, sec, rate, share, mm, speedup, over_eager in rows(jobs):
                    print(
                        f"{family:7}{group:6}{impl:9}{members:8d}{sec:12.3f}"
                        f"{rate:9.1f}{share:8.0f}%{mm:8.0f}%{speedup:8.2f}×{over_eager}",
                        flush=True,
                    )
    print(
        f"dense float32 matmul (2048²), {len(probes)} interleaved probes: median "
        f"{statistics.median(probes):.0f} GFLOP/s, range {min(probes):.0f}–{max(probes):.0f}"
    )
    print(
        "% matmul: step FLOPs (ginv.flops) per second over the mean of the probes either side; "
        "mm share: the epoch's matrix products replayed alone at their shapes and strides, over its time; "
        "× naive: naive s/member-epoch over the row's, same round"
        + ("; × eager: the eager ginv job's over the compiled one's, same round" * args.compile)
        + f". {time.perf_counter() - start:.0f} s"
    )


if __name__ == "__main__":
    main()
