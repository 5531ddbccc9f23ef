"""Numbers as people read them: every number a table, caption or note prints goes through
:func:`fmt`, so that it shows the precision it has and no more.

The tidy CSV files keep full precision; only printed cells are formatted here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

SIGNIFICANT = 3
"""Significant digits of a number whose precision is not known."""
STD_SIGNIFICANT = 2
"""Significant digits of a standard deviation (or error); its mean is rounded to match."""
MAX_PLACES = 6
"""Decimal places beyond which a tiny spread is printed on its own (``1.00 ± 1.9e-11``)."""
FIXED = (1e-3, 1e5)
"""Magnitudes in ``[low, high)`` print in fixed notation, others in scientific notation."""


def _exponent(x: float) -> int:
    """``floor(log10(|x|))`` for ``x ≠ 0``, exact at powers of ten."""
    return int(f"{x:e}".split("e")[1])


def _fixed(x: float) -> bool:
    return FIXED[0] <= abs(x) < FIXED[1]


def _plain(x: float, signed: bool) -> str:
    """One number to :data:`SIGNIFICANT` digits (trailing zeros kept: they are digits)."""
    sign = "+" if signed and x >= 0 else ""
    if isinstance(x, int) and not isinstance(x, bool):
        return f"{sign}{x}"  # a count is exact
    if not math.isfinite(x):
        return f"{sign}{x}"
    if x == 0:
        return f"{sign}0"
    rounded = float(f"{x:.{SIGNIFICANT - 1}e}")  # its decade after rounding: 0.09999 → 0.100
    if _fixed(rounded):
        # never round the integer part away: 1234.5 reads "1234", not "1.23e+03"
        decimals = max(0, SIGNIFICANT - 1 - _exponent(rounded))
        return f"{sign}{x:.{decimals}f}"
    return f"{sign}{x:.{SIGNIFICANT - 1}e}"


def fmt(
    value: float,
    std: float | None = None,
    n: int | None = None,
    signed: bool = False,
    single: str = " (n = 1)",
) -> str:
    """``value`` printed to its precision.

    * no ``std``: :data:`SIGNIFICANT` (3) significant digits, trailing zeros kept; fixed
      notation for magnitudes in ``[1e-3, 1e5)`` (the integer part is never rounded),
      scientific otherwise; integers exactly.
    * ``n == 1`` (one seed: no spread to show): the value alone, then ``single``
      (`` (n = 1)``; a table whose caption says it is over one seed passes ``""``).
    * ``std > 0``: the std to 2 significant digits and the mean rounded to the same decimal
      place, ``mean ± std``; when the larger of ``|mean|`` and ``std`` lies outside
      ``[1e-3, 1e5)``, both as mantissas of that one's power of ten, ``(m ± s)e-05``.
    * a std below a millionth of the mean that would need more than :data:`MAX_PLACES`
      decimals (an exact model's SI, ``0.99999999998 ± 1.9e-11``): the mean by the rule above and the
      std in scientific notation, ``1.00 ± 1.9e-11``.
    * ``std == 0`` with several values (they agree exactly): the value, then ``± 0``.
    * ``signed``: a ``+`` before non-negative values (a difference).

    Args:
        value: the number (a mean where ``std`` is given).
        std: its standard deviation or standard error, if known.
        n: how many values the mean is over, if known.
        signed: print ``+`` before a non-negative value.
        single: what follows the value where ``n == 1``.

    Returns:
        The text.

    Example:
        >>> fmt(0.95312, 0.0061)
        '0.9531 ± 0.0061'
        >>> fmt(1.01e-16, 0.0, n=1)
        '1.01e-16 (n = 1)'
        >>> fmt(1.36e-5, 2.1e-6)
        '(1.36 ± 0.21)e-05'
        >>> fmt(0.10093597179694691)
        '0.101'
        >>> fmt(0.9999999999795194, 1.9379808226779705e-11)
        '1.00 ± 1.9e-11'
    """
    if n == 1:
        return f"{_plain(value, signed)}{single}"
    if std is None or not math.isfinite(std) or not math.isfinite(value):
        return _plain(value, signed)
    if std == 0:
        return f"{_plain(value, signed)} ± 0"
    std = float(f"{abs(std):.{STD_SIGNIFICANT - 1}e}")  # rounded first: 0.0996 → 0.10
    decimals = STD_SIGNIFICANT - 1 - _exponent(std)
    sign = "+" if signed and value >= 0 else ""
    big = max(abs(value), std)
    if _fixed(big) and decimals > MAX_PLACES and std < 1e-6 * abs(value):
        return f"{_plain(value, signed)} ± {std:.{STD_SIGNIFICANT - 1}e}"
    if _fixed(big):
        places = max(decimals, 0)
        mean = round(value, decimals)  # to the std's decimal place, tens and up included
        return f"{sign}{mean:.{places}f} ± {std:.{places}f}"
    power = _exponent(big)
    places = max(decimals + power, 0)
    scale = 10.0**power
    return f"({sign}{value / scale:.{places}f} ± {std / scale:.{places}f})e{power:+03d}"


def fmt_values(values: Iterable[float]) -> str:
    """Several values (per seed, say), each by :func:`fmt`, comma-separated.

    Example:
        >>> fmt_values([0.10093597179694691, 0.12745523671354858])
        '0.101, 0.127'
    """
    return ", ".join(fmt(v) for v in values)
