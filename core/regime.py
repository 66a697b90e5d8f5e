"""The regime classifier of SPEC-signals.md: evidence and label at the close of every bar.

Two forms, proven equal bar for bar by the tests: `evaluate_regime` (batch, numpy over a
`SessionBlock`) and `EvidenceState` (incremental, one bar at a time). The label at the
session's last bar is the day's label.

Readings:
- `cross_count` counts consecutive pairs (j-1, j) whose signs of close - VWAP are both
  non-zero and differ (`+, 0, -` counts 0);
- `pct_above` is n(close > VWAP) / (i + 1);
- `range_atr = (max high - min low) / ATR20`, `or_width_atr = (OR15 high - OR15 low) /
  ATR20`, both float (high and low are float64 of the decimal prices); with ATR20 == 0 the
  IEEE result (inf, or NaN for 0 / 0) is kept, so such a session can only be `range`;
- `early_volume_ratio` is undefined (None / NaN) while the volume so far is 0;
- `forming` while `bar start + bar size < open + forming_minutes`;
- `trend_down` uses `pct_above <= 1 - trend_pct` (float subtraction, as written);
- warm-up sessions (no ATR20) have evidence but no label (None, code -1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from core.calendar import TradingSession
from core.domain import Regime
from core.indicators import DailyLevels, IndicatorArrays, IndicatorState
from core.marketdata.block import F64, SessionBlock, minutes_ns
from core.marketdata.loader import I64, PRICE_SCALE
from core.marketdata.sessions import to_ns
from core.params import SignalParams

_SCALE = float(PRICE_SCALE)

NO_LABEL = -1
LABELS: tuple[Regime, ...] = (
    Regime.EVENT,
    Regime.FORMING,
    Regime.TREND_UP,
    Regime.TREND_DOWN,
    Regime.RANGE,
)
CODE = {regime: code for code, regime in enumerate(LABELS)}


def regime_of(code: int) -> Regime | None:
    return None if code < 0 else LABELS[code]


def _div(num: float, den: float) -> float:
    """IEEE division, as numpy does it (x / 0 -> +-inf, 0 / 0 -> NaN)."""
    if den != 0:
        return num / den
    return math.nan if num == 0 else math.copysign(math.inf, num)


def classify(
    event: bool,
    forming: bool,
    pct_above: float,
    cross_count: int,
    range_atr: float,
    params: SignalParams,
) -> Regime:
    """The label rules, first that applies (scalar form of `label_codes`)."""
    if event:
        return Regime.EVENT
    if forming:
        return Regime.FORMING
    quiet = cross_count <= params.trend_max_crosses and range_atr >= params.trend_min_range_atr
    if quiet and pct_above >= params.trend_pct:
        return Regime.TREND_UP
    if quiet and pct_above <= 1 - params.trend_pct:
        return Regime.TREND_DOWN
    return Regime.RANGE


def label_codes(
    event: NDArray[np.bool_],
    forming: NDArray[np.bool_],
    pct_above: F64,
    cross_count: I64,
    range_atr: F64,
    params: SignalParams,
) -> NDArray[np.int8]:
    """Vectorized `classify`, as label codes (index into LABELS)."""
    with np.errstate(invalid="ignore"):
        quiet = (cross_count <= params.trend_max_crosses) & (
            range_atr >= params.trend_min_range_atr
        )
        up = quiet & (pct_above >= params.trend_pct)
        down = quiet & (pct_above <= 1 - params.trend_pct)
    code = np.full(pct_above.shape, CODE[Regime.RANGE], dtype=np.int8)
    code[down] = CODE[Regime.TREND_DOWN]
    code[up] = CODE[Regime.TREND_UP]
    code[forming] = CODE[Regime.FORMING]
    code[np.broadcast_to(event, code.shape)] = CODE[Regime.EVENT]
    return code


@dataclass(frozen=True, slots=True)
class Evidence:
    """The regime evidence at the close of one bar (None = not defined yet)."""

    cross_count: int
    pct_above: float
    range_atr: float | None
    or_width_atr: float | None
    early_volume_ratio: float | None
    gap_pct: float | None
    event: bool


@dataclass(frozen=True, slots=True, eq=False)
class RegimeArrays:
    cross_count: I64  # (S, B)
    pct_above: F64
    range_atr: F64  # NaN during warm-up
    or_width_atr: F64  # NaN before OR15 exists (and during warm-up)
    early_volume_ratio: F64  # NaN while the volume so far is 0
    forming: NDArray[np.bool_]
    label: NDArray[np.int8]  # code; -1 during warm-up and in the padding
    gap_pct: F64  # (S,) NaN without a previous session
    event: NDArray[np.bool_]  # (S,)
    warm_up: NDArray[np.bool_]  # (S,)

    def evidence(self, s: int, k: int) -> Evidence:
        def opt(x: float) -> float | None:
            return None if math.isnan(x) else x

        return Evidence(
            cross_count=int(self.cross_count[s, k]),
            pct_above=float(self.pct_above[s, k]),
            range_atr=opt(float(self.range_atr[s, k])),
            or_width_atr=opt(float(self.or_width_atr[s, k])),
            early_volume_ratio=opt(float(self.early_volume_ratio[s, k])),
            gap_pct=opt(float(self.gap_pct[s])),
            event=bool(self.event[s]),
        )


def evaluate_regime(
    block: SessionBlock,
    ind: IndicatorArrays,
    levels: Sequence[DailyLevels],
    events: Sequence[bool],
    params: SignalParams,
) -> RegimeArrays:
    rows, width = block.shape
    nan = math.nan
    atr = np.asarray([nan if lv.atr20 is None else lv.atr20 for lv in levels], dtype=np.float64)
    prev = np.asarray(
        [nan if lv.prev_close is None else lv.prev_close / _SCALE for lv in levels],
        dtype=np.float64,
    )
    warm = np.isnan(atr)
    event = np.asarray(events, dtype=bool)

    flip = (ind.sign[:, 1:] != 0) & (ind.sign[:, :-1] != 0) & (ind.sign[:, 1:] != ind.sign[:, :-1])
    cross = np.zeros((rows, width), dtype=np.int64)
    cross[:, 1:] = np.cumsum(flip, axis=1)
    pct_above = np.cumsum(ind.above, axis=1) / np.arange(1, width + 1)

    with np.errstate(divide="ignore", invalid="ignore"):
        atr_col = atr[:, None]
        range_atr = (ind.high_max / _SCALE - ind.low_min / _SCALE) / atr_col
        width_or = ind.opening_ranges[params.or_width_minutes]
        or_width = (width_or.high / _SCALE - width_or.low / _SCALE) / atr_col
        or_width = np.where(width_or.defined & ~warm[:, None], or_width, nan)
        early = np.full((rows, width), nan)
        np.divide(ind.early_volume, ind.cum_volume, out=early, where=ind.cum_volume > 0)
        gap = (block.open[:, 0] / _SCALE - prev) / prev

    end_ns = block.start_ns + block.bar_ns[:, None]
    forming = end_ns < block.open_ns[:, None] + minutes_ns(params.forming_minutes)
    label = label_codes(event[:, None], forming, pct_above, cross, range_atr, params)
    label[warm] = NO_LABEL
    label[~block.valid] = NO_LABEL
    return RegimeArrays(
        cross_count=cross,
        pct_above=pct_above,
        range_atr=range_atr,
        or_width_atr=or_width,
        early_volume_ratio=early,
        forming=forming,
        label=label,
        gap_pct=gap,
        event=event,
        warm_up=warm,
    )


class EvidenceState:
    """Incremental evidence and label for one symbol and session (reads an IndicatorState)."""

    __slots__ = (
        "_atr",
        "_forming_end",
        "_prev_close",
        "_prev_sign",
        "cross_count",
        "event",
        "gap_pct",
        "n_above",
        "params",
    )

    def __init__(
        self, session: TradingSession, levels: DailyLevels, event: bool, params: SignalParams
    ) -> None:
        self.params = params
        self.event = event
        self._atr = levels.atr20
        self._prev_close = None if levels.prev_close is None else levels.prev_close / _SCALE
        self._forming_end = to_ns(session.open) + minutes_ns(params.forming_minutes)
        self._prev_sign = 0
        self.cross_count = 0
        self.n_above = 0
        self.gap_pct: float | None = None

    def update(
        self, ind: IndicatorState, start_ns: int, bar_ns: int, open_ticks: int
    ) -> tuple[Evidence, Regime | None]:
        """Call after `ind.update` for the same bar."""
        index = ind.bar_count - 1
        if index == 0 and self._prev_close is not None:
            self.gap_pct = (open_ticks / _SCALE - self._prev_close) / self._prev_close
        if index > 0 and ind.sign != 0 and self._prev_sign != 0 and ind.sign != self._prev_sign:
            self.cross_count += 1
        self._prev_sign = ind.sign
        self.n_above += ind.above
        pct_above = self.n_above / (index + 1)
        atr = self._atr
        range_atr = or_width = None
        if atr is not None:
            range_atr = _div(ind.high_max / _SCALE - ind.low_min / _SCALE, atr)
            n = self.params.or_width_minutes
            if ind.or_defined[n]:
                or_width = _div(ind.or_high[n] / _SCALE - ind.or_low[n] / _SCALE, atr)
        early = ind.early_volume / ind.cum_volume if ind.cum_volume > 0 else None
        evidence = Evidence(
            cross_count=self.cross_count,
            pct_above=pct_above,
            range_atr=None if range_atr is None or math.isnan(range_atr) else range_atr,
            or_width_atr=None if or_width is None or math.isnan(or_width) else or_width,
            early_volume_ratio=early,
            gap_pct=self.gap_pct,
            event=self.event,
        )
        if range_atr is None:
            return evidence, None
        forming = start_ns + bar_ns < self._forming_end
        label = classify(self.event, forming, pct_above, self.cross_count, range_atr, self.params)
        # (range_atr is used unnormalized: NaN compares False, exactly as in the batch form)
        return evidence, label
