"""Printed numbers show their precision: hand-computed cases of :func:`ginv.reports.numbers.fmt`."""

from __future__ import annotations

import pytest

from ginv.experiments.results import error_bars, fmt_over, over_seeds
from ginv.reports.numbers import fmt, fmt_values


@pytest.mark.parametrize(
    ("args", "kwargs", "text"),
    [
        # std to 2 significant digits, the mean to the same decimal place
        ((0.95312, 0.0061), {}, "0.9531 ± 0.0061"),
        ((98.6, 5.4), {}, "98.6 ± 5.4"),
        ((0.5, 0.0996), {}, "0.50 ± 0.10"),  # the std rounds up a decade: 0.0996 → 0.10
        ((12345.0, 560.0), {}, "12340 ± 560"),  # the mean rounded to tens, like its std
        ((0.95312, 0.0061), {"n": 4}, "0.9531 ± 0.0061"),
        # outside [1e-3, 1e5): mantissas of the larger one's power of ten
        ((1.36e-5, 2.1e-6), {}, "(1.36 ± 0.21)e-05"),
        ((2.0e5, 1.5e4), {}, "(2.00 ± 0.15)e+05"),
        # one seed: no spread to show
        ((1.01e-16, 0.0), {"n": 1}, "1.01e-16 (n = 1)"),
        ((0.10093597179694691, 0.0), {"n": 1}, "0.101 (n = 1)"),
        # several seeds that agree exactly
        ((1.0, 0.0), {"n": 3}, "1.00 ± 0"),
        # no std known: 3 significant digits, trailing zeros kept, integer part never rounded
        ((0.10093597179694691,), {}, "0.101"),
        ((1.0,), {}, "1.00"),
        ((84.1234,), {}, "84.1"),
        ((1234.25,), {}, "1234"),
        ((0.00099,), {}, "9.90e-04"),
        ((-0.0999859,), {}, "-0.100"),  # rounding moves it up a decade: three digits still
        ((0.00099996,), {}, "0.00100"),
        ((1e5,), {}, "1.00e+05"),
        ((0.0,), {}, "0"),
        ((7,), {}, "7"),  # a count is exact
        ((float("nan"),), {}, "nan"),
        ((float("inf"), 0.1), {}, "inf"),
        # a difference
        ((0.0,), {"signed": True}, "+0"),
        ((-84.1,), {"signed": True}, "-84.1"),
        ((1.04e-16,), {"signed": True}, "+1.04e-16"),
        ((0.25, 0.013), {"signed": True}, "+0.250 ± 0.013"),
    ],
)
def test_fmt_hand_computed(args, kwargs, text: str) -> None:
    assert fmt(*args, **kwargs) == text


def test_lists_and_seed_means() -> None:
    assert fmt_values([0.10093597179694691, 0.12745523671354858]) == "0.101, 0.127"
    assert fmt_values([]) == ""
    # mean 0.955, sample std 0.00707…
    assert fmt_over([0.95, 0.96]) == "0.9550 ± 0.0071"
    assert fmt_over([0.12745523671354858]) == "0.127 (n = 1)"


def test_captions_mention_spread_only_with_several_seeds() -> None:
    assert over_seeds((0,)) == "seed 0 only (n = 1, no spread)"
    assert over_seeds((0, 1, 2)) == "mean ± std over seeds 0, 1, 2"
    assert error_bars(1) == "one seed, so no error bars"
    assert error_bars(4) == "error bars: std over seeds"


def test_an_exact_model_s_tiny_spread_is_printed_on_its_own() -> None:
    assert fmt(0.9999999999795194, 1.9379808226779705e-11) == "1.00 ± 1.9e-11"
    assert fmt(0.123456, 0.0000012) == "0.1234560 ± 0.0000012"  # a spread of its own size
