"""The stability run: how many day labels change when one regime threshold moves.

Each of `trend_pct`, `trend_max_crosses`, `trend_min_range_atr` is moved by
-`stability_step_pct` % and +`stability_step_pct` % (x0.9 / x1.1 by default), one at a
time, and the day labels are recomputed from the unchanged evidence at each session's
last bar (the thresholds only enter the label rules). `changed_share` is the share of
post-warm-up (date, symbol) labels of the run that differ.

Reading "compared as written": the moved value is computed in decimal from the value as
written (0.75 x 0.9 = 0.675, 4 x 1.1 = 4.4, never 4.4000000000000004) and then compared
with the float evidence; the moved value is not validated (0.95 x 1.1 = 1.045 simply
means no trend_up label).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

import numpy as np

from core.backtest.run import RegimeDay
from core.params import SignalParams
from core.regime import CODE, label_codes

THRESHOLDS = ("trend_pct", "trend_max_crosses", "trend_min_range_atr")
STABILITY_COLUMNS = ("threshold", "direction", "changed_share")


@dataclass(frozen=True, slots=True)
class StabilityRow:
    threshold: str
    direction: str  # "-10%" / "+10%"
    value: float  # the moved threshold
    changed: int
    total: int

    @property
    def changed_share(self) -> Fraction | None:
        return Fraction(self.changed, self.total) if self.total else None


def moved(value: float, step_pct: float, sign: int) -> float:
    factor = 1 + sign * Decimal(repr(step_pct)) / 100
    return float(Decimal(repr(value)) * factor)


def relabel(days: Sequence[RegimeDay], params: SignalParams) -> np.ndarray:
    """Day label codes under `params` from the evidence at each session's last bar."""
    if not days:
        return np.zeros(0, dtype=np.int8)
    return label_codes(
        np.asarray([d.evidence.event for d in days], dtype=bool),
        np.asarray([d.forming for d in days], dtype=bool),
        np.asarray([d.evidence.pct_above for d in days], dtype=np.float64),
        np.asarray([d.evidence.cross_count for d in days], dtype=np.int64),
        np.asarray([d.range_atr for d in days], dtype=np.float64),
        params,
    )


def stability(days: Sequence[RegimeDay], params: SignalParams) -> list[StabilityRow]:
    base = np.asarray([CODE[d.label] for d in days], dtype=np.int8)
    step = params.stability_step_pct
    rows = []
    for name in THRESHOLDS:
        for sign in (-1, +1):
            value = moved(float(getattr(params, name)), step, sign)
            # model_copy: no validation, the moved value is used as it is
            changed = relabel(days, params.model_copy(update={name: value}))
            rows.append(
                StabilityRow(
                    name,
                    f"{'-' if sign < 0 else '+'}{step:g}%",
                    value,
                    int((changed != base).sum()),
                    len(days),
                )
            )
    return rows
