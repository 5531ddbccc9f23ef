"""The search for ν as pure functions of the points measured so far.

A *point* is one trained IR model, one seed at one ν: its validation SI (with ``si_se``, the
standard error over validation *images*) and validation accuracy. A *candidate* is the
points at one ν. A candidate *passes* when the target is reached in the sense of
:data:`READING`, with probability ``confidence``, and it is *admissible*: its accuracy
keeps at least ``min_accuracy_share`` of the best accuracy above chance seen on the curve,
so a model near chance (whose saliency can be trivially stable) never decides ν.

**Training noise.** Validation SI differs between training runs far more than between
validation images. At the paper's scale (R4, 300 epochs) four seeds at one ν spread from
0.945 to 0.959 (std 0.006) and neighbouring ν of one seed differ by up to 0.025, while
``si_se`` is about 0.002. One run per ν, read against ``si_se``, refines ν finer than that
noise and leaves the choice at the edge: at the chosen ν = 6.67 two of four seeds missed.

**The rule.** Each deciding (full-length) candidate trains ``seeds`` seeds: the
calibration seed, then the study's final seeds in order (:func:`deciding_seeds`), so they
are final members and train as one batched model with their round (runs that differ only
in seed and ν batch). With F final seeds, O of them among the candidate's n runs (their SI
*is* known: they are final members), m the mean of the n runs and σ̂ the spread between
runs, the final models' seed mean is predicted as

    predicted = (Σ known SI + (F − O)·m) / F,   sd = σ̂ · √((F − O) + (F − O)²/n) / F

(the unseen seeds' mean scatters by σ̂/√(F − O) around a mean known to σ̂/√n), and the
candidate passes when ``predicted − margin ≥ target`` with ``margin = z(confidence)·sd``.
When its runs cover every final seed the margin is 0: the reading is measured, not
predicted. σ̂ is the pooled standard deviation within ν of the full-length runs near the
target (seed means within :data:`NOISE_WINDOW`), shrunk towards the prior ``noise_sd``
(measured: 0.006) with the weight of ``noise_df`` degrees of freedom,
σ̂² = (df₀·σ₀² + SS) / (df₀ + df), so a few seeds cannot talk it down to nothing.

**Why seeds, not a smooth monotone fit of SI against log ν.** The curve is not monotone
where it matters (T3 plateaus and falls again; R4 wiggles by 0.025 between neighbouring
ν), so a monotone model would read a real dip as noise or bend its bound around it, and its
residual scatter mixes the wiggle with the noise. The seed mean at a ν is the very quantity
the table reports, its runs are reused as final models, the spread within ν estimates the
noise without a model of the curve, and batching makes the extra seeds cheap.

``search`` drives the rounds through a caller's ``evaluate`` (which trains and measures);
``propose`` returns the next round of candidates, or nothing when the search is done;
``decide`` reads the choice off the points. The search, on a log scale:

* no candidate passes: extend upwards in steps of ×``resolution`` (×``grid_step`` when
  coarser) up to ``nu_max`` (SI may plateau or fall again, as T3's does, so every round
  looks further until the limit);
* the smallest passing ν has no candidate below it: extend downwards in the same steps to
  ``nu_min``;
* else refine between the smallest passing ν and the largest miss below it until their
  ratio is at most ``resolution``, ``round_size`` log-spaced candidates a round.

The curve need not be monotone: the choice is always the smallest passing ν measured,
and its bracket is the largest measured miss below it. The short pre-search (one seed,
fewer epochs) only proposes where to look, so it reads SI against the target plainly.
With one final seed (or ``seeds`` covering them all) and no noise this is the search on
single runs of before.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from statistics import NormalDist, fmean

READING = "seed-mean"
"""What "the IR models reach the SI target" means, in the search, the calibration record,
the table and the paper's claims: the **mean over the study's final seeds** of the final IR
models' validation SI is at least ``si_target`` (the paper reports mean ± std over seeds).
Single seeds below the target are reported (``members`` of the calibration record, the
calibration report's notes), not counted as a miss. The search chooses ν so that this
holds with probability ``confidence`` under the between-run noise; see :func:`reached`."""

NOISE_WINDOW = 0.05
"""Candidates whose seed mean lies within this of the target estimate the noise between
runs: SI's spread shrinks as SI nears 1, so far-off candidates would misstate it there."""


def reached(values: Sequence[float], target: float) -> bool:
    """Whether the final models' validation SIs ``values`` (one per seed) reach ``target``
    in the sense of :data:`READING`: their mean does."""
    return bool(values) and fmean(values) >= target


@dataclass(frozen=True)
class Point:
    """One calibration model: ν, validation SI ± standard error over validation images,
    validation accuracy, its epochs and seed."""

    nu: float
    si: float
    si_se: float
    val_acc: float
    epochs: int
    seed: int = 0


@dataclass(frozen=True)
class SearchSpec:
    """What the search looks for, how finely, and how it reads training noise."""

    target: float = 0.95
    resolution: float = 1.5
    round_size: int = 4
    grid_step: float = 3.0
    nu_min: float = 0.01
    nu_max: float = 3000.0
    num_classes: int = 9
    min_accuracy_share: float = 0.5
    max_rounds: int = 8
    seeds: int = 2
    """Seeds each deciding candidate trains (the caller's ``evaluate`` trains them):
    :func:`deciding_seeds`."""
    final_seeds: tuple[int, ...] = (0,)
    """The study's seeds, whose validation SI mean is the reading (:data:`READING`)."""
    noise_sd: float = 0.006
    """Prior std of validation SI between training runs at one ν: R4, 300 epochs, four
    seeds at ν = 6.67 (0.953, 0.949, 0.945, 0.959)."""
    noise_df: float = 4.0
    """The prior's weight, in degrees of freedom, against the spread measured within ν."""
    confidence: float = 0.95
    """Probability with which the chosen ν's final seed mean reaches the target."""


@dataclass(frozen=True)
class Candidate:
    """The runs at one ν: their mean SI and accuracy, and the final seed mean they predict."""

    nu: float
    points: tuple[Point, ...]
    si: float
    val_acc: float
    predicted: float
    margin: float

    @property
    def lower(self) -> float:
        """The lower confidence bound on the final models' seed mean."""
        return self.predicted - self.margin


@dataclass(frozen=True)
class Decision:
    """The chosen ν, whether it reached the target, the bracket, and why, in words; the
    final seed mean it predicts, the margin below that and the noise estimate behind it."""

    nu: float
    reached: bool
    miss_below: float | None
    reason: str
    predicted: float = math.nan
    margin: float = 0.0
    noise_sd: float = 0.0


ROUNDING = 2e-3  # ratios of ν rounded to three digits are off by up to this much


def round_nu(nu: float) -> float:
    """ν to three significant digits: run names and cache keys stay readable and stable."""
    return float(f"{nu:.3g}")


def deciding_seeds(first: int, final_seeds: Sequence[int], count: int) -> list[int]:
    """The seeds a deciding candidate trains: ``first`` (the calibration seed), then the
    final seeds in order, ``count`` in all but never more than these (once a candidate's runs
    are every final member, its seed mean is measured and more runs change nothing)."""
    return list(dict.fromkeys([first, *final_seeds]))[: max(1, count)]


def _by_nu(points: Sequence[Point]) -> dict[float, list[Point]]:
    groups: dict[float, list[Point]] = {}
    for p in sorted(points, key=lambda p: (p.nu, p.seed)):
        groups.setdefault(p.nu, []).append(p)
    return groups


def noise(points: Sequence[Point], spec: SearchSpec) -> tuple[float, float]:
    """σ̂, the std of validation SI between runs at one ν, and its degrees of freedom: the
    spread within ν of the candidates near the target, pooled, shrunk towards the prior."""
    ss, df = 0.0, 0
    for group in _by_nu(points).values():
        values = [p.si for p in group]
        m = fmean(values)
        if len(values) > 1 and abs(m - spec.target) <= NOISE_WINDOW:
            ss += sum((v - m) ** 2 for v in values)
            df += len(values) - 1
    total = spec.noise_df + df
    if total <= 0:
        return spec.noise_sd, 0.0
    return math.sqrt((spec.noise_df * spec.noise_sd**2 + ss) / total), total


def candidates(points: Sequence[Point], spec: SearchSpec) -> list[Candidate]:
    """The points grouped by ν (in increasing ν), each with its predicted final seed mean
    and the margin below it (the module's docstring gives the formula)."""
    sigma, _ = noise(points, spec)
    z = NormalDist().inv_cdf(spec.confidence)
    final = set(spec.final_seeds)
    out = []
    for nu, group in _by_nu(points).items():
        values = [p.si for p in group]
        m = fmean(values)
        known = [p.si for p in group if p.seed in final]
        unseen = len(final) - len(known)
        predicted = (sum(known) + unseen * m) / len(final)
        sd = sigma * math.sqrt(unseen + unseen**2 / len(values)) / len(final)
        acc = fmean(p.val_acc for p in group)
        out.append(Candidate(nu, tuple(group), m, acc, predicted, z * sd if unseen else 0.0))
    return out


def admissible(point: Point | Candidate, points: Sequence[Point | Candidate],
               spec: SearchSpec) -> bool:  # fmt: skip
    """Whether ``point`` keeps ``min_accuracy_share`` of the curve's best accuracy above chance."""
    chance = 1.0 / spec.num_classes
    best = max(p.val_acc for p in points)
    # the most accurate model stays admissible even when the whole curve is at chance
    return point.val_acc >= best or point.val_acc - chance >= spec.min_accuracy_share * (
        best - chance
    )


def passes(c: Candidate, cands: Sequence[Candidate], spec: SearchSpec) -> bool:
    """Whether the candidate's bound on the final seed mean reaches the target, admissibly."""
    return c.lower >= spec.target and admissible(c, cands, spec)


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
    ordered = candidates(points, spec)
    passing = [c for c in ordered if passes(c, ordered, spec)]
    # extend in steps of the resolution, so that a crossing within reach of one round needs
    # no refinement round after it (the pre-search, whose resolution is coarse, uses its grid)
    step = min(spec.resolution, spec.grid_step)
    if not passing:
        top = ordered[-1].nu
        ups = [round_nu(top * step ** (i + 1)) for i in range(spec.round_size)]
        return _fresh([v for v in ups if v <= spec.nu_max * (1 + 1e-9)], points)
    best = passing[0]
    below = [c for c in ordered if c.nu < best.nu]
    if not below:
        downs = [round_nu(best.nu / step ** (i + 1)) for i in range(spec.round_size)]
        return _fresh([v for v in downs if v >= spec.nu_min * (1 - 1e-9)], points)
    miss = below[-1]
    if best.nu / miss.nu <= spec.resolution * (1 + ROUNDING):
        return []
    # as many log-spaced candidates as reach the resolution, at most a round's worth
    needed = math.ceil(math.log(best.nu / miss.nu) / math.log(spec.resolution)) - 1
    return _fresh(log_between(miss.nu, best.nu, max(1, min(spec.round_size, needed))), points)


def _seeds(c: Candidate) -> str:
    n = len(c.points)
    return f"{n} seed{'s' * (n > 1)}"


def decide(points: Sequence[Point], spec: SearchSpec) -> Decision:
    """The smallest passing ν; if none passes, the admissible candidate of highest predicted
    final seed mean (never one near chance accuracy), flagged as not reached."""
    if not points:
        raise ValueError("decide needs at least one measured point")
    sigma, _ = noise(points, spec)
    ordered = candidates(points, spec)
    passing = [c for c in ordered if passes(c, ordered, spec)]
    if passing:
        best = passing[0]
        below = [c for c in ordered if c.nu < best.nu]
        miss = below[-1].nu if below else None
        bound = (
            f"; final seed mean predicted {best.predicted:.3f} − margin {best.margin:.3f} "
            f"(σ between runs {sigma:.3f}, {spec.confidence:.0%} confidence)"
            if best.margin > 0
            else ""
        )
        if miss is None:
            why = (
                f"SI {best.si:.3f} ≥ {spec.target} at the smallest ν tried ({_seeds(best)}{bound})"
            )
        else:
            why = (
                f"smallest ν with SI ≥ {spec.target} (SI {best.si:.3f} over {_seeds(best)}, "
                f"± {best.points[0].si_se:.3f} over images{bound}); ν = {miss:g} below it "
                f"misses (ratio {best.nu / miss:.2f})"
            )
        return Decision(best.nu, True, miss, why, best.predicted, best.margin, sigma)
    fine = [c for c in ordered if admissible(c, ordered, spec)]
    best = max(fine, key=lambda c: (c.predicted, -c.nu))
    why = (
        f"no ν up to {ordered[-1].nu:g} reached SI ≥ {spec.target}; chose the highest SI "
        f"({best.si:.3f}) among models keeping ≥ {spec.min_accuracy_share:.0%} of the best "
        f"accuracy above chance (val accuracy {best.val_acc:.3f})"
    )
    return Decision(best.nu, False, None, why, best.predicted, best.margin, sigma)


def plain(spec: SearchSpec) -> SearchSpec:
    """``spec`` reading SI against the target with no margin (the pre-search's proposals)."""
    return replace(spec, confidence=0.5)


def first_round(presearch: Sequence[Point], spec: SearchSpec) -> list[float]:
    """Full-length candidates from a short pre-search: the pre-search's bracket around its
    choice (SI read plainly against the target), filled to ``round_size`` log-spaced values
    (both ends included)."""
    decision = decide(presearch, plain(spec))
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
    models, each with the seeds of :func:`deciding_seeds`, when ``final``; else as short
    one-seed pre-search runs) and returns their points, one per run."""
    nus = search_grid(spec, grid)
    early: list[Point] = []
    if presearch:
        coarse = replace(plain(spec), resolution=spec.grid_step**1.5)  # the grid's own spacing
        for _ in range(spec.max_rounds):
            if not nus:
                break
            early += evaluate(nus, False)
            nus = propose(early, coarse)
        nus = first_round(early, spec)
    points: list[Point] = []
    rounds = 0
    while nus and rounds < spec.max_rounds:
        points += evaluate(nus, True)
        nus = propose(points, spec)
        rounds += 1
    return SearchResult(decide(points, spec), early, points, rounds, not nus)
