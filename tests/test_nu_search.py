"""The ν search on synthetic SI curves: no data, no training, the search alone."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest

from ginv.experiments.nu_search import (
    Point,
    SearchSpec,
    decide,
    first_round,
    log_between,
    propose,
    search,
)

GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
SPEC = SearchSpec(target=0.95, resolution=1.5, round_size=4, nu_min=0.01, nu_max=3000.0)

Curve = Callable[[float, bool], tuple[float, float]]  # (ν, final) -> (SI, accuracy)


def logistic(centre: float, width: float = 1.0, top: float = 0.99) -> Curve:
    """SI rising from 0.3 to ``top`` around ``centre`` (log scale); accuracy falling slowly."""

    def curve(nu: float, final: bool) -> tuple[float, float]:
        z = (math.log(nu) - math.log(centre)) / width
        return 0.3 + (top - 0.3) / (1 + math.exp(-z)), 0.95 - 0.05 * math.log10(1 + nu)

    return curve


def run(curve: Curve, spec: SearchSpec = SPEC, presearch: bool = True):
    rounds: list[tuple[bool, list[float]]] = []

    def evaluate(nus: list[float], final: bool) -> list[Point]:
        rounds.append((final, list(nus)))
        return [Point(nu, *_si_acc(curve, nu, final), epochs=300 if final else 50) for nu in nus]

    return search(evaluate, spec, GRID, presearch), rounds


def _si_acc(curve: Curve, nu: float, final: bool) -> tuple[float, float, float]:
    si, acc = curve(nu, final)
    return si, 0.004, acc


def check_bracket(result, curve: Curve, spec: SearchSpec = SPEC) -> None:
    """The decision's invariants, read off the points themselves."""
    d = result.decision
    chosen = next(p for p in result.points if p.nu == d.nu)
    assert chosen.epochs == 300  # decided by a full-length run
    if d.reached:
        assert chosen.si >= spec.target
        assert all(p.si < spec.target for p in result.points if p.nu < d.nu)
        if d.miss_below is not None:
            assert d.nu / d.miss_below <= spec.resolution * (1 + 2e-3)


def test_monotone_curve_is_bracketed_to_the_resolution() -> None:
    curve = logistic(centre=7.0)
    result, rounds = run(curve)
    check_bracket(result, curve)
    d = result.decision
    assert d.reached and result.resolved
    # the true crossing lies inside the final bracket
    crossing = next(nu for nu in (10 ** (k / 1000) for k in range(-2000, 4000))
                    if curve(nu, True)[0] >= 0.95)  # fmt: skip
    assert d.miss_below < crossing <= d.nu
    assert all(len(nus) <= SPEC.round_size for final, nus in rounds if final)
    assert [p.nu for p in result.presearch][: len(GRID)] == list(GRID)


def test_full_length_runs_needing_a_smaller_nu_move_the_choice_down() -> None:
    """Longer training reaches the target at a smaller ν (as seen at paper scale): the
    pre-search's choice is only a proposal, the full-length runs decide."""

    def curve(nu: float, final: bool) -> tuple[float, float]:
        return logistic(centre=2.0 if final else 20.0)(nu, final)

    result, _ = run(curve)
    check_bracket(result, curve)
    pre = decide(result.presearch, SPEC).nu
    assert result.decision.reached and result.decision.nu < pre / 3


def test_noisy_curve_keeps_the_bracket_invariants() -> None:
    for seed in range(20):
        rng = random.Random(seed)
        noise: dict[tuple[float, bool], float] = {}

        def curve(nu: float, final: bool, rng=rng, noise=noise) -> tuple[float, float]:
            si, acc = logistic(centre=5.0)(nu, final)
            return si + noise.setdefault((nu, final), rng.gauss(0, 0.01)), acc

        result, _ = run(curve)
        check_bracket(result, curve)
        assert result.decision.reached


def test_plateau_below_the_target_is_crossed_upwards() -> None:
    def curve(nu: float, final: bool) -> tuple[float, float]:
        si = 0.88 if nu < 10 else 0.90 if nu < 250 else 0.96
        return si, 0.95 - 0.02 * math.log10(1 + nu)

    result, _ = run(curve)
    check_bracket(result, curve)
    d = result.decision
    assert d.reached and 250 <= d.nu <= 250 * 1.5 and d.miss_below < 250


def test_non_monotone_curve_like_t3_finds_the_window() -> None:
    """SI rises to a plateau, passes the target in a window, then falls as accuracy collapses."""

    def curve(nu: float, final: bool) -> tuple[float, float]:
        if nu < 200:
            si = 0.88 + 0.01 * math.log10(1 + nu)
        elif nu < 500:
            si = 0.96
        else:
            si = 0.87
        acc = 0.95 if nu < 300 else 0.74 if nu < 1000 else 0.35
        return si, acc

    result, _ = run(curve)
    check_bracket(result, curve)
    d = result.decision
    assert d.reached and 200 <= d.nu < 500


def test_never_reaching_the_target_never_chooses_a_model_near_chance() -> None:
    def curve(nu: float, final: bool) -> tuple[float, float]:
        si = min(0.93, 0.5 + 0.05 * math.log10(nu * 100)) if nu < 1000 else 0.99
        acc = 0.9 if nu < 1000 else 0.12  # the highest SI comes at chance accuracy (1/9)
        return si, acc

    result, _ = run(curve)
    d = result.decision
    assert not d.reached
    chosen = next(p for p in result.points if p.nu == d.nu)
    assert chosen.val_acc == 0.9 and chosen.si == max(p.si for p in result.points if p.nu < 1000)
    assert "no ν up to" in d.reason and "accuracy" in d.reason
    assert max(p.nu for p in result.points) <= SPEC.nu_max


def test_target_reached_at_the_smallest_nu_needs_no_bracket() -> None:
    result, _ = run(lambda nu, final: (0.97, 0.9))
    assert result.decision.nu == SPEC.nu_min and result.decision.miss_below is None
    assert result.resolved


def test_round_limit_is_reported_as_unresolved() -> None:
    def curve(nu: float, final: bool) -> tuple[float, float]:  # full length needs a 10× smaller ν
        return logistic(centre=0.5 if final else 5.0)(nu, final)

    spec = SearchSpec(round_size=1, max_rounds=2)
    result, rounds = run(curve, spec)
    assert not result.resolved and sum(final for final, _ in rounds) == 2


def test_without_presearch_the_grid_is_the_first_full_round() -> None:
    result, rounds = run(logistic(centre=7.0), presearch=False)
    assert rounds[0] == (True, list(GRID))
    assert result.presearch == []
    check_bracket(result, logistic(centre=7.0))


def test_proposals_by_hand() -> None:
    def pts(*pairs: tuple[float, float]) -> list[Point]:
        return [Point(nu, si, 0.0, 0.9, 300) for nu, si in pairs]

    # bracket 10 → 30 (ratio 3): log-spaced fill, ratio 3^(1/3) ≈ 1.44 ≤ 1.5 in one round
    assert propose(pts((10, 0.9), (30, 0.96)), SPEC) == [14.4, 20.8]
    assert propose(pts((10, 0.9), (14.4, 0.96)), SPEC) == []  # resolved
    # steps of 1.5 rounded to three digits (4.44 → 6.67 is ×1.502) count as resolved
    assert propose(pts((4.44, 0.9), (6.67, 0.96)), SPEC) == []
    # extensions step by the resolution: a crossing within 1.5⁴ ≈ 5 needs no refinement after
    assert propose(pts((1, 0.96), (3, 0.97)), SPEC) == [0.198, 0.296, 0.444, 0.667]
    assert propose(pts((1, 0.5), (3, 0.6)), SPEC) == [4.5, 6.75, 10.1, 15.2]
    assert propose(pts((1000, 0.5), (3000, 0.6)), SPEC) == []  # nu_max: give up
    coarse = SearchSpec(resolution=5.2)  # the pre-search steps along its grid's ×3
    assert propose(pts((1, 0.5), (3, 0.6)), coarse) == [9.0, 27.0, 81.0, 243.0]
    assert log_between(1.0, 16.0, 3) == [2.0, 4.0, 8.0]
    pre = pts((3, 0.9), (10, 0.96))
    assert first_round(pre, SPEC) == [3.0, 4.48, 6.69, 10.0]
    with pytest.raises(ValueError):
        propose([], SPEC)
