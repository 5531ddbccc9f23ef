"""``ginv reproduce … --plan``: what a reproduction will train and measure, its FLOPs, the
matmul floor on this device and an estimate, before anything is spent.

Work is counted per experiment and model family from exact FLOP counts of the real models
(:mod:`ginv.flops`): a member-epoch is ``n_train`` training steps per sample plus one
forward pass over the validation orbit; measures count forward passes over the test orbit
and ``steps`` input gradients per orbit image for SI. Runs and measures that several
experiments share (or that ``OUT`` already holds) are counted once (or not at all). The ν
search adapts to what it finds, so its rounds are an assumption, said in the plan.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ginv.data import DataConfig, data_spec
from ginv.experiments.config import StudyConfig
from ginv.experiments.kinds import Kind
from ginv.experiments.nu_search import deciding_seeds
from ginv.experiments.registry import get_experiment
from ginv.experiments.spec import CalibratedIR, Measure, Request, Sizes, Train
from ginv.flops import count_flops, forward_flops, input_gradient_flops
from ginv.groups import PermutationGroup, get_group
from ginv.models import Ensemble, build_model
from ginv.models.base import Pool
from ginv.regularizers import get_regularizer
from ginv.training import TrainConfig

ASSUMED_FINAL_ROUNDS = 2  # a first bracket from the pre-search, then one refinement
# the device probe's model only (the costs take the data's shape and classes: data_spec)
PROBE_CLASSES = 9
PROBE_SHAPE = (1, 36, 36)


@dataclass
class PlanRow:
    experiment: str
    group: str
    item: str
    runs: int = 0
    member_epochs: int = 0
    flops: float = 0.0
    note: str = ""
    jobs: int = 0  # SLURM jobs with --executor slurm
    upfront: bool = False  # known before any result: submitted at the start
    chain: str = ""  # rows of one chain run one after the other ("": a chain of its own)


@dataclass
class Plan:
    rows: list[PlanRow] = field(default_factory=list)
    matmul_rate: float = 0.0  # FLOP/s
    achieved_rate: float = 0.0  # FLOP/s of a real training step
    device: str = "cpu"

    @property
    def flops(self) -> float:
        """The work of every row, in FLOPs."""
        return sum(r.flops for r in self.rows)

    @property
    def jobs(self) -> int:
        """SLURM jobs with ``--executor slurm``."""
        return sum(r.jobs for r in self.rows)

    @property
    def upfront_jobs(self) -> int:
        """The jobs known before any result, submitted at the start."""
        return sum(r.jobs for r in self.rows if r.upfront)

    @property
    def floor_seconds(self) -> float:
        """FLOPs ÷ the matmul rate: no run can be faster on this device."""
        return self.flops / self.matmul_rate

    @property
    def estimate_seconds(self) -> float:
        """FLOPs ÷ the rate a real batched training step reached."""
        return self.flops / self.achieved_rate

    def by_experiment(self, names: Sequence[str] = ()) -> dict[str, float]:
        """FLOPs per experiment, the sum of its rows (work several experiments share is
        counted under the first that needs it, as the run does it first); ``names`` come
        first, with 0 when they have no row.

        Example: rows ``table`` 2, ``tsne`` 1, ``table`` 3 give ``{"table": 5, "tsne": 1}``."""
        flops = dict.fromkeys(names, 0.0)
        for r in self.rows:
            flops[r.experiment] = flops.get(r.experiment, 0.0) + r.flops
        return flops

    def chains(self) -> list[list[float]]:
        """The work as chains of tasks, in seconds at the achieved rate (each worker assumed
        to reach it: a core each): a task runs on one worker, the tasks of a chain one after
        the other. A ν search (its pre-search, its rounds, their validation SI, then the
        family's other seeds) is one chain; every other row (a WT or DA family, a family's
        measures) is a chain of its own tasks (``jobs``, at least one)."""
        chains: dict[str, list[float]] = {}
        for i, r in enumerate(self.rows):
            if r.flops == 0:
                continue
            parts = max(1, r.jobs)
            chains.setdefault(r.chain or f"row {i}", []).extend(
                [r.flops / parts / self.achieved_rate] * parts
            )
        return list(chains.values())

    def estimate_with(self, workers: int) -> float:
        """The wall time of the work on ``workers`` workers: a list schedule of :meth:`chains`
        that gives a free worker the ready task of the chain with the most work left (the
        critical path first). One worker gives :attr:`estimate_seconds`; many give the longest
        chain.

        Example: chains ``[[3, 3], [2], [2]]`` take 6 s on 2 workers and 10 s on 1."""
        return schedule(self.chains(), workers)


def schedule(chains: Sequence[Sequence[float]], workers: int) -> float:
    """The makespan of ``chains`` (each a sequence of task durations run in order) on
    ``workers`` workers, longest remaining chain first whenever a worker is free."""
    left = [list(c) for c in chains if c]
    ready_at = [0.0] * len(left)  # when each chain's next task may start
    free = [0.0] * max(1, workers)  # when each worker is free
    end = 0.0
    while left:
        w = min(range(len(free)), key=free.__getitem__)
        now = free[w]
        ready = [i for i in range(len(left)) if left[i] and ready_at[i] <= now]
        if not ready:  # every chain waits for a running task: idle until the first is ready
            free[w] = min(ready_at[i] for i in range(len(left)) if left[i])
            continue
        i = max(ready, key=lambda j: sum(left[j]))
        free[w] = ready_at[i] = now + left[i].pop(0)
        end = max(end, free[w])
        if not any(left):
            break
    return end


class _Costs:
    """FLOPs per sample of the models of one group, each counted once: a training step of a
    run's config (its regulariser included), a forward pass, an input gradient."""

    def __init__(self, group: str, pool: str, shape: tuple[int, ...], num_classes: int) -> None:
        self.group = get_group(group)
        self.shape, self.num_classes = shape, num_classes
        self.order = len(self.group)
        self.pool: Pool = "max" if pool == "max" else "mean"
        self._models: dict[tuple[str, int], nn.Module] = {}
        self._cache: dict[tuple[str, ...], float] = {}

    def model(self, kind: str, first_width: int = 0) -> nn.Module:
        key = (kind, first_width)
        if key not in self._models:
            self._models[key] = build_model(kind, self.group, self.shape, pool=self.pool,
                                            num_classes=self.num_classes, first_width=first_width)  # fmt: skip
        return self._models[key]

    def train(self, config: TrainConfig) -> float:
        """One training step per sample of ``config``'s run, its regulariser's work included."""
        key = ("train", config.model, str(config.first_width), config.reg)
        if key not in self._cache:
            self._cache[key] = _step_flops(self.model(config.model, config.first_width),
                                           self.group, config.reg, self.shape)  # fmt: skip
        return self._cache[key]

    def __call__(self, kind: str, what: str, first_width: int = 0) -> float:
        """``forward`` or ``input_grad`` FLOPs per image of model ``kind``."""
        key = (kind, what, str(first_width))
        if key not in self._cache:
            model = self.model(kind, first_width)
            self._cache[key] = {
                "forward": lambda: forward_flops(model, self.shape),
                "input_grad": lambda: input_gradient_flops(model, self.shape),
            }[what]()
        return self._cache[key]


def _step_flops(
    model: nn.Module, group: PermutationGroup, reg: str, shape: tuple[int, ...], batch: int = 2
) -> float:
    """FLOPs per sample of one training step as the trainer takes it (an ensemble of one)."""
    ensemble = Ensemble([model])
    regularizer = None if reg == "none" else get_regularizer(reg, group)
    if regularizer is not None and regularizer.needs_teacher:
        # counted with a teacher of the student's architecture (the frontier's: DA's MLP)
        regularizer.teacher = Ensemble([copy.deepcopy(model)]).requires_grad_(False)
    images = batch * (len(group) if regularizer is not None and regularizer.needs_orbit else 1)
    x = torch.zeros(1, images, *shape)
    y = torch.zeros(1, batch, dtype=torch.long)

    def step() -> None:
        if regularizer is None:
            logits, penalty = ensemble(x), torch.zeros(1)
        else:
            logits, penalty = regularizer(ensemble, x, y)
        (F.cross_entropy(logits.flatten(0, 1), y.flatten()) + penalty.sum()).backward()

    return count_flops(step) / batch


def _probe_rates(
    device: torch.device, windows: int = 5, seconds: float = 0.1
) -> tuple[float, float]:
    """This device's fp32 matmul rate, and the rate a real batched MLP training step reaches:
    each the best of ``windows`` alternating short windows, since other work only slows a
    window down and the rates move from moment to moment."""

    def rate(fn, flops: float) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            fn()
            n += 1
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return n * flops / (time.perf_counter() - start)

    a = torch.randn(2048, 2048, device=device)
    model = build_model("mlp", get_group("R4"), PROBE_SHAPE, num_classes=PROBE_CLASSES).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(512, *PROBE_SHAPE, device=device)
    y = torch.randint(PROBE_CLASSES, (512,), device=device)

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step_flops = count_flops(step)  # also the warm-up
    matmul, real = 0.0, 0.0
    for _ in range(windows):
        matmul = max(matmul, rate(lambda: a @ a, 2 * 2048**3))
        real = max(real, rate(step, step_flops))
    return matmul, real


def make_plan(
    names: Sequence[str], config: StudyConfig, out: Path | None = None,
    device: torch.device | None = None, probe: bool = True, data_dir: Path | None = None,
) -> Plan:  # fmt: skip
    """The work of ``reproduce names`` under ``config``, less what ``out`` already holds: each
    experiment's declared requests (:mod:`ginv.experiments.spec`), counted once where several
    experiments share them. Costs are counted on the data's image shape and classes
    (:func:`ginv.data.data_spec`, read from ``data_dir``)."""
    c = config
    device = device or torch.device("cpu")
    data = DataConfig(c.dataset)
    spec = data_spec(data, None, data_dir)
    sizes = Sizes(c.test_samples or data.n_test, min(c.train.n_val, data.n_val))
    counter = _Counter(c, sizes, out, spec.shape, spec.num_classes)
    for name in names:
        experiment = get_experiment(name)
        for group in c.groups:
            for request in experiment.work(c, group, sizes):
                counter.add(name, group, request)
    plan = Plan(counter.rows, device=str(device))
    if probe:
        plan.matmul_rate, plan.achieved_rate = _probe_rates(device)
    return plan


class _Counter:
    """The plan's rows, request by request: runs in ``out`` or counted before are free."""

    def __init__(self, config: StudyConfig, sizes: Sizes, out: Path | None,
                 shape: tuple[int, ...], num_classes: int) -> None:  # fmt: skip
        self.c, self.sizes, self.out = config, sizes, out
        self.shape, self.num_classes = shape, num_classes
        self.rows: list[PlanRow] = []
        self.seen: set[str] = set()
        self._costs: dict[str, _Costs] = {}

    def costs(self, group: str) -> _Costs:
        if group not in self._costs:
            self._costs[group] = _Costs(group, self.c.train.pool, self.shape, self.num_classes)
        return self._costs[group]

    def done(self, config: TrainConfig) -> bool:
        return self.out is not None and (self.out / "runs" / config.key() / "run.json").is_file()

    def add(self, exp: str, group: str, request: Request) -> None:
        if isinstance(request, Train):
            self.train(exp, group, request)
        elif isinstance(request, CalibratedIR):
            self.calibrated(exp, group, request.loss)
        else:
            self.measure(exp, group, request)

    def training(self, exp: str, group: str, item: str, template: TrainConfig, runs: int,
                 note: str = "", cached: int = 0, jobs: int = 1,
                 upfront: bool = False, chain: str = "") -> None:  # fmt: skip
        c, costs = self.c, self.costs(group)
        forward = costs(template.model, "forward", template.first_width)
        per_epoch = c.train.n_train * costs.train(template) + self.sizes.val * costs.order * forward
        epochs = runs * template.epochs
        extra = f"{cached} cached or shared" if cached else ""
        self.rows.append(PlanRow(exp, group, item, runs, epochs, epochs * per_epoch,
                                 "; ".join(x for x in (note, extra) if x),
                                 jobs if runs else 0, upfront, chain))  # fmt: skip

    def train(self, exp: str, group: str, request: Train) -> None:
        """Runs known in advance (or, not ``upfront``, runs that stand for those results
        will decide: none of them can be found cached)."""
        configs = request.configs
        if not request.upfront:
            self.training(exp, group, request.item, configs[0], len(configs), request.note)
            return
        todo = [t for t in configs if t.key() not in self.seen and not self.done(t)]
        self.seen.update(t.key() for t in configs)
        if configs:
            self.training(exp, group, request.item, configs[0], len(todo), request.note,
                          len(configs) - len(todo), upfront=True)  # fmt: skip

    def calibrated(self, exp: str, group: str, loss: str) -> None:
        """The ν search (its rounds assumed), then the family's other seeds."""
        if f"IR/{group}/{loss}" in self.seen:  # the ν search and family of another experiment
            return
        self.seen.add(f"IR/{group}/{loss}")
        c, tc = self.c, self.c.run
        grid = len(c.nu_grid)
        presearch = 0 < c.presearch_epochs < c.epochs
        rounds = ASSUMED_FINAL_ROUNDS if presearch else ASSUMED_FINAL_ROUNDS + 1
        seeds = deciding_seeds(c.calibration_seed, c.seeds, c.nu_seeds)
        final = ((c.nu_round if presearch else grid) + (rounds - 1) * c.nu_round) * len(seeds)
        label = f"{Kind.IR}-{loss}"
        # the ν values are not known before the search, so nothing can be found cached
        template = tc(group, Kind.IR, c.calibration_seed, loss, 1.0)
        chain = f"IR/{group}/{loss}"  # each stage waits for the one before: one after the other
        if presearch:
            short = tc(group, Kind.IR, c.calibration_seed, loss, 1.0, c.presearch_epochs)
            self.training(exp, group, f"{label} ν pre-search", short, grid, f"grid of {grid}",
                          upfront=True, chain=chain)  # fmt: skip
        self.training(exp, group, f"{label} ν search", template, final,
                      f"{rounds} rounds assumed", jobs=rounds, chain=chain)  # fmt: skip
        n_val = self.sizes.val
        self.measure(exp, group, Measure(f"{label} ν search: validation SI", c.model_of(Kind.IR),
                                         (grid if presearch else 0) + final, n_val, n_val))  # fmt: skip
        self.rows[-1].chain = chain
        others = sum(s not in seeds for s in c.seeds)
        self.training(exp, group, f"{label} family", tc(group, Kind.IR, 0, loss, 1.0), others,
                      f"seeds {seeds} come from the ν search", chain=chain)  # fmt: skip

    def measure(self, exp: str, group: str, m: Measure) -> None:
        if m.shared and m.shared in self.seen:
            return
        self.seen.add(m.shared)
        costs = self.costs(group)
        fwd = m.copies * costs(m.model, "forward", m.first_width)
        grad = m.copies * costs(m.model, "input_grad", m.first_width)
        per_model = (m.orbit * costs.order * fwd
                     + m.si * costs.order * self.c.saliency.steps * grad
                     + m.sensitivity * (fwd + costs.num_classes * (grad - fwd)))  # fmt: skip
        self.rows.append(PlanRow(exp, group, m.item, m.models, 0, m.models * per_model,
                                 jobs=int(m.job and m.models > 0)))  # fmt: skip


def plan_record(plan: Plan, names: Sequence[str], profile: str) -> dict[str, object]:
    """The plan as JSON for scripts (``reproduce … --plan --plan-json FILE``): the device and
    its probed rates (FLOP/s), the total and per-experiment FLOPs (:meth:`Plan.by_experiment`,
    in the order the experiments run), the floor and estimate in seconds, and every row.

    Example: ``plan_record(plan, ["table"], "smoke")["experiments"]`` → ``{"table": 3.1e12}``."""
    return {
        "profile": profile,
        "device": plan.device,
        "matmul_rate": plan.matmul_rate,
        "achieved_rate": plan.achieved_rate,
        "flops": plan.flops,
        "floor_seconds": plan.floor_seconds if plan.matmul_rate else None,
        "estimate_seconds": plan.estimate_seconds if plan.achieved_rate else None,
        "experiments": plan.by_experiment(names),
        "rows": [asdict(r) for r in plan.rows],
    }


def _seconds(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h"


def format_plan(plan: Plan, workers: int = 1) -> str:
    """The plan as a table, with the floor and the estimate of every row and in total, and
    the estimate on one worker and on ``workers`` (:meth:`Plan.estimate_with`)."""
    mm, real = plan.matmul_rate, plan.achieved_rate
    w = max([34, *(len(r.item) for r in plan.rows)])
    lines = [
        f"device {plan.device}: fp32 matmul {mm / 1e9:.0f} GFLOP/s; a batched MLP training "
        f"step reached {real / 1e9:.0f} GFLOP/s ({100 * real / mm:.0f} %), used for the estimate",
        "",
        f"{'experiment':<10} {'group':<5} {'item':<{w}} {'runs':>5} {'member-ep':>9} "
        f"{'TFLOP':>9} {'floor':>9} {'estimate':>9} {'jobs':>4}  note",
    ]
    for r in plan.rows:
        if r.flops == 0:  # cached, or counted under an earlier experiment
            continue
        lines.append(
            f"{r.experiment:<10} {r.group:<5} {r.item:<{w}} {r.runs:>5} {r.member_epochs:>9} "
            f"{r.flops / 1e12:>9.2f} {_seconds(r.flops / mm):>9} {_seconds(r.flops / real):>9}"
            f" {r.jobs:>4}  {r.note}"
        )
    lines += [
        "",
        f"total: {plan.flops / 1e12:.1f} TFLOP, {sum(r.member_epochs for r in plan.rows)} "
        f"member-epochs; floor {_seconds(plan.floor_seconds)} (FLOPs ÷ matmul rate), "
        f"estimate {_seconds(plan.estimate_seconds)}",
        f"with --workers 1: {_seconds(plan.estimate_with(1))}"
        + (
            f"; with --workers {workers}: {_seconds(plan.estimate_with(workers))} (tasks side by "
            "side; each ν search's rounds and family one after the other: the longest such chain "
            f"takes {_seconds(max(map(sum, plan.chains()), default=0.0))})"
            if workers > 1
            else ""
        ),
        f"with --executor slurm: {plan.jobs} jobs, one per batched family, ν search round and "
        f"family's test measures; {plan.upfront_jobs} of them (the WT and DA families and the ν "
        "pre-searches) are submitted at once, the rest as the ν searches decide",
    ]
    return "\n".join(lines)
