"""The search for ν (SPEC §4) as pure functions of the points measured so far.

A *point* is one trained IR model: its ν, validation SI (with standard error) and
validation accuracy. A point *passes* when its SI reaches the target and it is
*admissible*: its accuracy keeps at least ``min_accuracy_share`` of the best accuracy above
chance seen on the curve, so a model near chance (whose saliency can be trivially stable)
never decides ν.

``search`` drives the rounds through a caller's ``evaluate`` (which trains and measures);
``propose`` returns the next round of candidates, or nothing when the search is done;
``decide`` reads the choice off the points. The search, on a log scale:

* no point passes: extend upwards in steps of ×``resolution`` (×``grid_step`` when coarser)
  up to ``nu_max`` (SI may plateau or fall again, as T3's does, so every round looks
  further until the limit);
* the smallest passing ν has no miss below it: extend downwards in the same steps to
  ``nu_min``;
* else refine between the smallest passing ν and the largest miss below it until their
  ratio is at most ``resolution``, ``round_size`` log-spaced candidates a round.

The curve need not be monotone: the choice is always the smallest passing ν measured,
and its bracket is the largest measured miss below it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Point:
    """One calibration model: ν, validation SI ± standard error, validation accuracy."""

    nu: float
    si: float
    si_se: float
    val_acc: float
    epochs: int


@dataclass(frozen=True)
class SearchSpec:
    """What the search looks for and how finely."""

    target: float = 0.95
    resolution: float = 1.5
    round_size: int = 4
    grid_step: float = 3.0
    nu_min: float = 0.01
    nu_max: float = 3000.0
    num_classes: int = 9
    min_accuracy_share: float = 0.5
    max_rounds: int = 8


@dataclass(frozen=True)
class Decision:
    """The chosen ν, whether it reached the target, the bracket, and why, in words."""

    nu: float
    reached: bool
    miss_below: float | None
    reason: str


ROUNDING = 2e-3  # ratios of ν rounded to three digits are off by up to this much


def round_nu(nu: float) -> float:
    """ν to three significant digits: run names and cache keys stay readable and stable."""
    return float(f"{nu:.3g}")


def admissible(point: Point, points: Sequence[Point], spec: SearchSpec) -> bool:
    """Whether ``point`` keeps ``min_accuracy_share`` of the curve's best accuracy above chance."""
    chance = 1.0 / spec.num_classes
    best = max(p.val_acc for p in points)
    # the most accurate model stays admissible even when the whole curve is at chance
    return point.val_acc >= best or point.val_acc - chance >= spec.min_accuracy_share * (
        best - chance
    )


def passes(point: Point, points: Sequence[Point], spec: SearchSpec) -> bool:
    return point.si >= spec.target and admissible(point, points, spec)


def log_between(low: float, high: float, count: int) -> list[float]:
    """``count`` values strictly between ``low`` and ``high``, equally spaced on log ν."""
    ratio = (high / low) ** (1.0 / (count + 1))
    return [round_nu(low * ratio ** (i + 1)) for i in range(count)]


def _fresh(values: Sequence[float], points: Sequence[Point]) -> list[float]:
    seen = {p.nu for p in points}
    out: list[float] = []
    for v in values:
        if v not in seen and v not in out:
            out.append(v)
    return sorted(out)


def propose(points: Sequence[Point], spec: SearchSpec) -> list[float]:
    """The next round of candidate ν (empty when the search is done)."""
    if not points:
        raise ValueError("propose needs at least one measured point; start from a grid")
    ordered = sorted(points, key=lambda p: p.nu)
    passing = [p for p in ordered if passes(p, ordered, spec)]
    # extend in steps of the resolution, so that a crossing within reach of one round needs
    # no refinement round after it (the pre-search, whose resolution is coarse, uses its grid)
    step = min(spec.resolution, spec.grid_step)
    if not passing:
        top = ordered[-1].nu
        ups = [round_nu(top * step ** (i + 1)) for i in range(spec.round_size)]
        return _fresh([v for v in ups if v <= spec.nu_max * (1 + 1e-9)], ordered)
    best = passing[0]
    below = [p for p in ordered if p.nu < best.nu]
    if not below:
        downs = [round_nu(best.nu / step ** (i + 1)) for i in range(spec.round_size)]
        return _fresh([v for v in downs if v >= spec.nu_min * (1 - 1e-9)], ordered)
    miss = below[-1]
    if best.nu / miss.nu <= spec.resolution * (1 + ROUNDING):
        return []
    # as many log-spaced candidates as reach the resolution, at most a round's worth
    needed = math.ceil(math.log(best.nu / miss.nu) / math.log(spec.resolution)) - 1
    return _fresh(log_between(miss.nu, best.nu, max(1, min(spec.round_size, needed))), ordered)


def decide(points: Sequence[Point], spec: SearchSpec) -> Decision:
    """The smallest passing ν; if none passes, the admissible point of highest SI (never one
    near chance accuracy), flagged as not reached."""
    if not points:
        raise ValueError("decide needs at least one measured point")
    ordered = sorted(points, key=lambda p: p.nu)
    passing = [p for p in ordered if passes(p, ordered, spec)]
    if passing:
        best = passing[0]
        below = [p for p in ordered if p.nu < best.nu]
        miss = below[-1].nu if below else None
        if miss is None:
            why = f"SI {best.si:.3f} ≥ {spec.target} at the smallest ν tried"
        else:
            why = (
                f"smallest ν with SI ≥ {spec.target} (SI {best.si:.3f} ± {best.si_se:.3f}); "
                f"ν = {miss:g} below it misses (ratio {best.nu / miss:.2f})"
            )
        return Decision(best.nu, True, miss, why)
    fine = [p for p in ordered if admissible(p, ordered, spec)]
    best = max(fine, key=lambda p: (p.si, -p.nu))
    why = (
        f"no ν up to {ordered[-1].nu:g} reached SI ≥ {spec.target}; chose the highest SI "
        f"({best.si:.3f}) among models keeping ≥ {spec.min_accuracy_share:.0%} of the best "
        f"accuracy above chance (val accuracy {best.val_acc:.3f})"
    )
    return Decision(best.nu, False, None, why)


def first_round(presearch: Sequence[Point], spec: SearchSpec) -> list[float]:
    """Full-length candidates from a short pre-search: the pre-search's bracket around its
    choice, filled to ``round_size`` log-spaced values (both ends included)."""
    decision = decide(presearch, spec)
    if decision.reached and decision.miss_below is not None:
        low, high = decision.miss_below, decision.nu
    else:  # no bracket: look a grid step either side of the proposal
        low = max(spec.nu_min, decision.nu / spec.grid_step)
        high = min(spec.nu_max, decision.nu * spec.grid_step)
    if spec.round_size <= 1 or high <= low:
        return [round_nu(decision.nu)]
    inner = log_between(low, high, spec.round_size - 2) if spec.round_size > 2 else []
    return sorted({round_nu(low), *inner, round_nu(high)})


def search_grid(spec: SearchSpec, grid: Sequence[float]) -> list[float]:
    """The pre-search's first round: the grid, within ``[nu_min, nu_max]``."""
    return sorted(
        {round_nu(v) for v in grid if spec.nu_min * (1 - 1e-9) <= v <= spec.nu_max * (1 + 1e-9)}
    )


@dataclass(frozen=True)
class SearchResult:
    """The decision, the points of each stage, and how many full-length rounds it took."""

    decision: Decision
    presearch: list[Point]
    points: list[Point]
    rounds: int
    resolved: bool


Evaluate = Callable[[list[float], bool], list[Point]]


def search(
    evaluate: Evaluate, spec: SearchSpec, grid: Sequence[float], presearch: bool = True
) -> SearchResult:
    """Run the search. ``evaluate(nus, final)`` trains one round of candidates (as the final
    models when ``final``, else as short pre-search runs) and returns their points."""
    candidates = search_grid(spec, grid)
    early: list[Point] = []
    if presearch:
        coarse = replace(spec, resolution=spec.grid_step**1.5)  # the grid's own spacing
        for _ in range(spec.max_rounds):
            if not candidates:
                break
            early += evaluate(candidates, False)
            candidates = propose(early, coarse)
        candidates = first_round(early, spec)
    points: list[Point] = []
    rounds = 0
    while candidates and rounds < spec.max_rounds:
        points += evaluate(candidates, True)
        candidates = propose(points, spec)
        rounds += 1
    return SearchResult(decide(points, spec), early, points, rounds, not candidates)
