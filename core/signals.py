"""The entry signal of SPEC-signals.md (VWAP pullback reclaim, long only) and rule 5.

At the close of bar i (confirmation) with P = i - 1 (pullback, the previous bar PRESENT):
1. close_{P-1} > VWAP_{P-1}; 2. low_P <= VWAP_P * (1 + band_bps/10000);
3. close_i > VWAP_i and close_i > open_i; 4. P and i each start in an entry window;
5. no entry filled and no stop-buy pending for this symbol in this session.

Rules 1-4 depend on bars only: `candidates` (batch) and `SignalState` (incremental) compute
them, proven equal by the tests; warm-up sessions never have a candidate ("no trade").
Rule 5 depends on execution, so it is NOT decided here: an `EntryGate` holds it and the
execution layer drives it. A backtester reproduces the spec's "Order of work at each bar"
like this (`simulate_session` below is the reference loop of steps 2 and 4):

    for bar in session:
        1. exits of an open position (never on its fill bar)
        2. if a stop-buy works: event = order.on(bar)   (core.entry, core.fills rules)
              FILLED  -> size it (`size_entry`): a trade -> gate.filled(),
                         no trade (R <= 0 or qty < 1) -> gate.consumed()
              EXPIRED -> gate.expired()   (after its `stop_valid_bars`-th bar)
        3. the flatten
        4. update = radar.on_bar(bar); if update.signal: place it, gate.placed()

`update.signal` is the candidate filtered by the gate as it stands at step 4, so a new
signal may fire on the bar where the previous stop-buy expired or was consumed.

Readings: P is the previous bar PRESENT (missing bars are not filled) and rule 1 reads the
one before it; windows are [from, to) on bar START clock times; rule 2 compares the float
low with `VWAP * band_factor`, `band_factor = 1 + band_bps / 10000` computed first; rule 3's
`close > open` is exact. `max_entries_per_session` counts FILLED entries (an open position
does not itself block a second entry when the limit is above 1). A stop-buy still working
when the session's bars run out never fills (`open_at_close`); none is cancelled at the
flatten time (with the default windows its 3 bars always end before 15:50).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
from numpy.typing import NDArray

from core.calendar import TradingSession
from core.domain import Regime, Symbol
from core.entry import CTX as _CTX
from core.entry import EntrySizing as EntrySizing  # re-exported: moved to core.entry
from core.entry import StopBuyOrder as StopBuyOrder
from core.entry import StopBuyProposal as StopBuyProposal
from core.entry import size_entry as size_entry
from core.event_calendar import EventCalendar
from core.indicators import (
    DailyLevels,
    IndicatorArrays,
    IndicatorState,
    compute_indicators,
    daily_levels,
    seconds_of,
)
from core.marketdata.bar import Bar
from core.marketdata.block import SessionBlock
from core.marketdata.loader import I64, PRICE_SCALE
from core.marketdata.sessions import DailyBars, SessionBars, from_ns, price, ticks, to_ns
from core.params import SignalParams
from core.regime import Evidence, EvidenceState, RegimeArrays, evaluate_regime, regime_of

_SCALE = float(PRICE_SCALE)
_DSCALE = Decimal(PRICE_SCALE)
_ONE, _BPS = Decimal(1), Decimal(10_000)


def window_seconds(params: SignalParams) -> tuple[tuple[int, int], ...]:
    return tuple((seconds_of(a), seconds_of(b)) for a, b in params.entry_windows)


def in_windows(clock: I64, params: SignalParams) -> NDArray[np.bool_]:
    inside = np.zeros(clock.shape, dtype=bool)
    for start, end in window_seconds(params):
        inside |= (clock >= start) & (clock < end)
    return inside


def candidates(
    block: SessionBlock, ind: IndicatorArrays, warm_up: NDArray[np.bool_], params: SignalParams
) -> NDArray[np.bool_]:
    """(S, B): bars i where rules 1-4 hold (the confirmation bars), warm-up excluded."""
    rows, width = block.shape
    out = np.zeros((rows, width), dtype=bool)
    if width < 3:
        return out
    low = block.low / _SCALE
    win = in_windows(ind.clock, params)
    rule1 = ind.above[:, :-2]
    rule2 = low[:, 1:-1] <= ind.vwap[:, 1:-1] * params.band_factor
    rule3 = ind.above[:, 2:] & (block.close[:, 2:] > block.open[:, 2:])
    rule4 = win[:, 1:-1] & win[:, 2:]
    out[:, 2:] = rule1 & rule2 & rule3 & rule4 & block.valid[:, 2:]
    out[warm_up] = False
    return out


class SignalState:
    """Rules 1-4, one bar at a time (keeps the two previous bars it needs)."""

    __slots__ = ("_p_above", "_p_low", "_p_vwap", "_p_win", "_pp_above", "_windows", "band")

    def __init__(self, params: SignalParams) -> None:
        self._windows = window_seconds(params)
        self.band = params.band_factor
        self._pp_above: bool | None = None  # bar P - 1
        self._p_above: bool | None = None  # bar P
        self._p_low = 0.0
        self._p_vwap = 0.0
        self._p_win = False

    def update(
        self,
        clock: int,
        open_ticks: int,
        low_ticks: int,
        close_ticks: int,
        above: bool,
        vwap: float,
    ) -> bool:
        """Feed bar i (after its indicators); True when bar i confirms a candidate."""
        win = any(start <= clock < end for start, end in self._windows)
        hit = (
            self._pp_above is True
            and self._p_low <= self._p_vwap * self.band
            and above
            and close_ticks > open_ticks
            and self._p_win
            and win
        )
        self._pp_above, self._p_above = self._p_above, above
        self._p_low, self._p_vwap, self._p_win = low_ticks / _SCALE, vwap, win
        return hit


def trigger_and_stop(high_i: int, low_p: int, params: SignalParams) -> tuple[Decimal, Decimal]:
    """Exact decimal levels from ten-thousandths prices (`//` is exact integer division)."""
    c = _CTX
    trigger = c.add(c.divide(Decimal(high_i), _DSCALE), params.tick)
    factor = c.subtract(_ONE, c.divide(params.stop_offset_bps, _BPS))
    raw = c.multiply(c.divide(Decimal(low_p), _DSCALE), factor)
    stop = c.multiply(c.divide_int(raw, params.tick), params.tick)
    return trigger, stop


class EntryGate:
    """Rule 5 for one symbol and session, driven by the execution layer.

    Allows a signal while no stop-buy is pending and fewer than `max_entries_per_session`
    entries have filled. Transitions: placed (-> pending); filled / expired / consumed
    (pending -> not pending; filled also counts an entry).
    """

    __slots__ = ("entries_filled", "max_entries", "pending")

    def __init__(self, max_entries: int = 1) -> None:
        self.max_entries = max_entries
        self.entries_filled = 0
        self.pending = False

    @property
    def allows(self) -> bool:
        return not self.pending and self.entries_filled < self.max_entries

    def placed(self) -> None:
        if not self.allows:
            raise RuntimeError("a stop-buy was placed while rule 5 forbids a new entry")
        self.pending = True

    def _resolve(self) -> None:
        if not self.pending:
            raise RuntimeError("no stop-buy is pending")
        self.pending = False

    def filled(self) -> None:
        self._resolve()
        self.entries_filled += 1

    def expired(self) -> None:
        self._resolve()

    def consumed(self) -> None:
        """Filled in price but not a trade (R <= 0 or qty < 1): the session may signal again."""
        self._resolve()


@dataclass(frozen=True, slots=True)
class SignalRecord:
    """A signal that rule 5 allowed, and what its stop-buy did in the simulation."""

    proposal: StopBuyProposal
    regime: Regime | None  # the label at bar i
    outcome: str  # filled | expired | no_trade (consumed) | open_at_close
    fill_index: int | None = None
    fill_time: datetime | None = None
    sizing: EntrySizing | None = None


def _time(session: TradingSession, open_ns: int, ns: int) -> datetime:
    # New York wall time from the open: a regular session never spans a DST switch.
    return session.open + timedelta(microseconds=(ns - open_ns) // 1000)


def block_bar(block: SessionBlock, s: int, k: int) -> Bar:
    """Bar k of session s as the exact `Bar` the fill rules (`core.fills`) read."""
    session = block.sessions[s]
    return Bar(
        Symbol(block.symbol),
        _time(session, int(block.open_ns[s]), int(block.start_ns[s, k])),
        timedelta(microseconds=int(block.bar_ns[s]) // 1000),
        price(int(block.open[s, k])),
        price(int(block.high[s, k])),
        price(int(block.low[s, k])),
        price(int(block.close[s, k])),
        int(block.volume[s, k]),
    )


def simulate_session(
    block: SessionBlock,
    s: int,
    cand: NDArray[np.bool_] | Sequence[int],
    labels: NDArray[np.int8],
    params: SignalParams,
) -> list[SignalRecord]:
    """Steps 2 and 4 of the spec's order of work over one session (row s of a block).

    Every candidate that the gate allows becomes a stop-buy working over the next
    `stop_valid_bars` bars; the bar where it fills, expires or is consumed may itself
    confirm the next signal. A stop-buy still working at the session's last bar is
    `open_at_close` (it never filled).
    """
    n = int(block.lengths[s])
    session, open_ns = block.sessions[s], int(block.open_ns[s])
    starts, highs, lows = block.start_ns[s], block.high[s], block.low[s]
    if isinstance(cand, np.ndarray):
        cand = np.flatnonzero(cand[:n]).tolist()
    gate = EntryGate(params.max_entries_per_session)
    records: list[SignalRecord] = []
    free_from = 0  # the first bar whose close may confirm a new signal
    for i in cand:
        if i < free_from or not gate.allows:
            continue
        trigger, stop = trigger_and_stop(int(highs[i]), int(lows[i - 1]), params)
        proposal = StopBuyProposal(
            block.symbol,
            _time(session, open_ns, int(starts[i])),
            _time(session, open_ns, int(starts[i - 1])),
            i,
            trigger,
            stop,
        )
        gate.placed()
        order = StopBuyOrder(proposal, params.stop_valid_bars)
        record = SignalRecord(proposal, regime_of(int(labels[i])), "open_at_close")
        free_from = n
        for j in range(i + 1, n):
            event = order.on(block_bar(block, s, j))
            if event == StopBuyOrder.WORKING:
                continue
            free_from = j
            if event == StopBuyOrder.EXPIRED:
                gate.expired()
                record = SignalRecord(proposal, record.regime, "expired")
                break
            assert isinstance(event, Decimal)
            sizing = size_entry(event, stop, params)
            when = _time(session, open_ns, int(starts[j]))
            if sizing is None:
                gate.consumed()
                record = SignalRecord(proposal, record.regime, "no_trade", j, when)
            else:
                gate.filled()
                record = SignalRecord(proposal, record.regime, "filled", j, when, sizing)
            break
        records.append(record)
    return records


# --- the pipeline: batch over a block, incremental per bar ------------------------------


@dataclass(frozen=True, slots=True)
class Reading:
    """Everything computed at the close of one bar; equal in the batch and live forms."""

    vwap: float
    evidence: Evidence
    label: Regime | None
    candidate: bool


@dataclass(frozen=True, slots=True, eq=False)
class BlockEvaluation:
    block: SessionBlock
    levels: list[DailyLevels]
    indicators: IndicatorArrays
    regime: RegimeArrays
    candidates: NDArray[np.bool_]

    def reading(self, s: int, k: int) -> Reading:
        return Reading(
            float(self.indicators.vwap[s, k]),
            self.regime.evidence(s, k),
            regime_of(int(self.regime.label[s, k])),
            bool(self.candidates[s, k]),
        )

    def day_label(self, s: int) -> Regime | None:
        return regime_of(int(self.regime.label[s, int(self.block.lengths[s]) - 1]))

    def signals(self, params: SignalParams) -> list[list[SignalRecord]]:
        """Per session, the signals rule 5 allows under the simulated execution."""
        rows, cols = np.nonzero(self.candidates)
        found: dict[int, list[int]] = {}
        for s, i in zip(rows.tolist(), cols.tolist(), strict=True):
            found.setdefault(s, []).append(i)
        return [
            simulate_session(self.block, s, found[s], self.regime.label[s], params)
            if s in found
            else []
            for s in range(len(self.block.lengths))
        ]


def evaluate_block(
    block: SessionBlock,
    levels: Sequence[DailyLevels],
    events: Sequence[bool],
    params: SignalParams,
) -> BlockEvaluation:
    """The batch form: indicators, regime and candidates of every bar of every session."""
    ind = compute_indicators(block, params)
    regime = evaluate_regime(block, ind, levels, events, params)
    return BlockEvaluation(
        block, list(levels), ind, regime, candidates(block, ind, regime.warm_up, params)
    )


def evaluate_sessions(
    sessions: Sequence[SessionBars],
    params: SignalParams,
    daily: DailyBars | None = None,
    events: EventCalendar | None = None,
) -> BlockEvaluation:
    """Batch-evaluate the sessions of one symbol; daily bars default to the sessions'."""
    block = SessionBlock.from_sessions(sessions)
    source = daily if daily is not None else block.daily()
    days = [s.day.toordinal() for s in sessions]
    levels = daily_levels(source, days, params.daily_lookback)
    flags = [events is not None and events.is_event_day(block.symbol, s.day) for s in sessions]
    return evaluate_block(block, levels, flags, params)


@dataclass(frozen=True, slots=True)
class RadarUpdate:
    symbol: str
    index: int  # bar index in the session (bars present)
    bar: Bar
    vwap: float
    evidence: Evidence
    label: Regime | None  # None during warm-up
    announce: bool  # the label differs from the last one announced this session
    candidate: bool  # rules 1-4 hold at this bar (warm-up excluded)
    signal: StopBuyProposal | None  # the candidate, if rule 5 (the gate) allows it now

    @property
    def reading(self) -> Reading:
        return Reading(self.vwap, self.evidence, self.label, self.candidate)


class RadarState:
    """The live form for one symbol and session: feed closed bars in order with `on_bar`."""

    __slots__ = (
        "_announced",
        "_bar_ns",
        "_close_ns",
        "_ev",
        "_ind",
        "_last_ns",
        "_open_ns",
        "_p_low",
        "_sig",
        "gate",
        "levels",
        "params",
        "session",
        "symbol",
    )

    def __init__(
        self,
        symbol: str,
        session: TradingSession,
        levels: DailyLevels,
        event: bool,
        params: SignalParams,
        gate: EntryGate | None = None,
    ) -> None:
        self.symbol, self.session, self.levels, self.params = symbol, session, levels, params
        self.gate = gate or EntryGate(params.max_entries_per_session)
        self._ind = IndicatorState(session, params)
        self._ev = EvidenceState(session, levels, event, params)
        self._sig = SignalState(params)
        self._open_ns, self._close_ns = to_ns(session.open), to_ns(session.close)
        self._announced: Regime | None = None
        self._last_ns: int | None = None
        self._bar_ns: dict[object, int] = {}
        self._p_low = 0

    def opening_range(self, minutes: int) -> tuple[Decimal, Decimal] | None:
        """(high, low) of OR_N once it is defined, else None."""
        if not self._ind.or_defined.get(minutes):
            return None
        return price(self._ind.or_high[minutes]), price(self._ind.or_low[minutes])

    def on_bar(self, bar: Bar) -> RadarUpdate:
        start_ns = to_ns(bar.start)
        bar_ns = self._bar_ns.get(bar.size)
        if bar_ns is None:
            bar_ns = self._bar_ns[bar.size] = bar.size // timedelta(microseconds=1) * 1000
        if not (self._open_ns <= start_ns and start_ns + bar_ns <= self._close_ns):
            raise ValueError(
                f"{self.symbol} bar {bar.start.isoformat()} is outside {self.session.day}"
            )
        if self._last_ns is not None and start_ns <= self._last_ns:
            raise ValueError(f"{self.symbol} bar {bar.start.isoformat()} is not after the last bar")
        prev_ns, self._last_ns = self._last_ns, start_ns
        o, h, lo, c = ticks(bar.open), ticks(bar.high), ticks(bar.low), ticks(bar.close)
        ind = self._ind
        ind.update(start_ns, bar_ns, h, lo, c, bar.volume)
        evidence, label = self._ev.update(ind, start_ns, bar_ns, o)
        index = ind.bar_count - 1
        hit = self._sig.update(ind.clock, o, lo, c, ind.above, ind.vwap)
        candidate = hit and not self.levels.warm_up
        signal = None
        if candidate and self.gate.allows:
            trigger, stop = trigger_and_stop(h, self._p_low, self.params)
            assert prev_ns is not None  # a candidate needs i >= 2
            pullback = from_ns(prev_ns).astimezone(bar.start.tzinfo)
            signal = StopBuyProposal(self.symbol, bar.start, pullback, index, trigger, stop)
        self._p_low = lo
        announce = label is not None and label is not self._announced
        if announce:
            self._announced = label
        return RadarUpdate(
            self.symbol, index, bar, ind.vwap, evidence, label, announce, candidate, signal
        )
