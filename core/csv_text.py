"""How numbers are written in the CSV outputs (`signals`, `backtest`), per the spec:
prices rounded to 4 decimals halves up, everything else unrounded.

One module so that `regime_daily.csv` is byte for byte the same from both commands.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

_FOUR = Decimal("0.0001")

# regime_daily.csv, the spec's exact columns (written by `signals` and `backtest`).
REGIME_COLUMNS = (
    "date",
    "symbol",
    "regime",
    "cross_count",
    "pct_above",
    "range_atr",
    "or_width_atr",
    "early_volume_ratio",
    "gap_pct",
    "atr20",
    "ma20",
    "close_vs_ma20",
)


def price_text(value: Decimal | float | None) -> str:
    """4 decimals, halves up; floats are taken at their shortest decimal form (`repr`),
    so 1.23455 becomes 1.2346. Undefined values are empty cells."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    exact = value if isinstance(value, Decimal) else Decimal(repr(value))
    return str(exact.quantize(_FOUR, rounding=ROUND_HALF_UP))


def number_text(value: float | int | Fraction | Decimal | None) -> str:
    """Unrounded: the shortest round-trip float (a Fraction or Decimal: the float nearest
    to it). Undefined values are empty cells."""
    if value is None:
        return ""
    if isinstance(value, Fraction | Decimal):
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    return repr(value)


def decimal_text(value: Decimal) -> str:
    """An exact decimal in full, plain notation, without trailing zeros."""
    if value == 0:
        return "0"
    return format(value.normalize(), "f")
