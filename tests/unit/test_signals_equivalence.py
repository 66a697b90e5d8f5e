"""Live == batch, and no lookahead, for EVERY output (property tests over generated sessions).

- live (RadarState.on_bar, one bar at a time) equals batch (evaluate_block over the whole
  session) at every bar: VWAP, every evidence field, the label, the candidate flag;
- truncation invariance: the batch over bars[:t+1] gives, at every bar k <= t, exactly what
  the batch over the whole session gives (nothing at bar k depends on a later bar);
- signals: the live radar driven by the spec's order of work (StopBuyOrder + EntryGate)
  proposes exactly the batch simulation's signals, and truncation never changes a signal
  at or before the cut.
Equality is exact (==) for floats too: both forms do the same IEEE operations in the same
order, so no tolerance is needed.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.indicators import DailyLevels
from core.marketdata.block import SessionBlock
from core.marketdata.sessions import SessionBars
from core.params import SignalParams
from core.signals import (
    EntryGate,
    RadarState,
    StopBuyOrder,
    StopBuyProposal,
    evaluate_block,
    simulate_session,
    size_entry,
)
from tests.kit.market import DAY, HALF_DAY, make_session

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def sessions(draw: st.DrawFn) -> tuple[SessionBars, DailyLevels, bool, SignalParams]:
    minutes = draw(st.sampled_from([1, 5]))
    day = draw(st.sampled_from([DAY, HALF_DAY]))
    slots = (210 if day == HALF_DAY else 390) // minutes
    n = draw(st.integers(1, min(48, slots)))
    first = draw(st.integers(0, slots - n))
    # Mostly contiguous, sometimes with bars missing (they are not filled, SPEC).
    keep = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    offsets = [first + k for k in range(n) if keep[k] or k == 0]
    price = draw(st.integers(5_000, 20_000))  # cents
    rows = []
    for _ in offsets:
        o = price
        c = max(100, o + draw(st.integers(-30, 30)))
        h = max(o, c) + draw(st.integers(0, 12))
        lo = max(1, min(o, c) - draw(st.integers(0, 12)))
        vol = draw(st.sampled_from([0, 0, 1, 100, 2_500, 40_000, 1_000_000]))
        rows.append((*(f"{x / 100:.2f}" for x in (o, h, lo, c)), vol))
        price = c
    session = make_session(rows, day=day, minutes=minutes, offsets=offsets)  # type: ignore[arg-type]
    warm = draw(st.booleans()) and draw(st.booleans())
    atr = draw(st.sampled_from([0.0, 0.05, 0.37, 1.0, 2.5]))
    prev = draw(st.sampled_from([None, rows[0][0], "99.87"]))
    levels = (
        DailyLevels(None if prev is None else int(Decimal(str(prev)) * 10_000), None, None)
        if warm
        else DailyLevels(None if prev is None else int(Decimal(str(prev)) * 10_000), atr, 100.0)
    )
    params = SignalParams(
        band_bps=draw(st.sampled_from([0.0, 10.0, 25.0])),
        trend_max_crosses=draw(st.sampled_from([3.6, 4.0, 4.4])),
        trend_pct=draw(st.sampled_from([0.675, 0.75, 0.825])),
        trend_min_range_atr=draw(st.sampled_from([0.45, 0.5])),
        max_entries_per_session=draw(st.sampled_from([1, 2])),
        entry_windows=draw(
            st.sampled_from(
                [(("09:45", "11:00"), ("13:30", "15:30")), (("09:30", "16:00"),)]  # type: ignore[list-item]
            )
        ),
    )
    return session, levels, draw(st.booleans()), params


def _batch(session: SessionBars, levels: DailyLevels, event: bool, params: SignalParams):  # type: ignore[no-untyped-def]
    return evaluate_block(SessionBlock.from_sessions([session]), [levels], [event], params)


def _live_signals(
    session: SessionBars, levels: DailyLevels, event: bool, params: SignalParams
) -> tuple[list[object], list[StopBuyProposal]]:
    """The live radar driven by the spec's order of work (steps 2 and 4)."""
    radar = RadarState(session.symbol, session.session, levels, event, params)
    gate: EntryGate = radar.gate
    order: StopBuyOrder | None = None
    readings: list[object] = []
    proposed: list[StopBuyProposal] = []
    for bar in session.bars():
        if order is not None:
            outcome = order.on_bar(bar.open, bar.high)
            if isinstance(outcome, Decimal):
                sizing = size_entry(outcome, order.proposal.stop, params)
                gate.filled() if sizing is not None else gate.consumed()
                order = None
            elif outcome == StopBuyOrder.EXPIRED:
                gate.expired()
                order = None
        update = radar.on_bar(bar)
        readings.append(update.reading)
        if update.signal is not None:
            proposed.append(update.signal)
            gate.placed()
            order = StopBuyOrder(update.signal, params.stop_valid_bars)
    return readings, proposed


@SETTINGS
@given(sessions())
def test_live_equals_batch_at_every_bar(
    case: tuple[SessionBars, DailyLevels, bool, SignalParams],
) -> None:
    session, levels, event, params = case
    batch = _batch(session, levels, event, params)
    readings, proposed = _live_signals(session, levels, event, params)
    for k, reading in enumerate(readings):
        assert reading == batch.reading(0, k), f"bar {k}"
    simulated = simulate_session(batch.block, 0, batch.candidates[0], batch.regime.label[0], params)
    assert proposed == [r.proposal for r in simulated]


@SETTINGS
@given(sessions())
def test_truncation_never_changes_the_past(
    case: tuple[SessionBars, DailyLevels, bool, SignalParams],
) -> None:
    session, levels, event, params = case
    full = _batch(session, levels, event, params)
    full_signals = simulate_session(full.block, 0, full.candidates[0], full.regime.label[0], params)
    for t in range(len(session)):
        cut = _batch(session.head(t + 1), levels, event, params)
        for k in range(t + 1):
            assert cut.reading(0, k) == full.reading(0, k), f"cut {t}, bar {k}"
        assert cut.day_label(0) == full.reading(0, t).label
        cut_signals = simulate_session(cut.block, 0, cut.candidates[0], cut.regime.label[0], params)
        assert [r.proposal for r in cut_signals] == [
            r.proposal for r in full_signals if r.proposal.signal_index <= t
        ]


@SETTINGS
@given(sessions())
def test_opening_ranges_live_equal_batch(
    case: tuple[SessionBars, DailyLevels, bool, SignalParams],
) -> None:
    session, levels, event, params = case
    batch = _batch(session, levels, event, params)
    radar = RadarState(session.symbol, session.session, levels, event, params)
    for k, bar in enumerate(session.bars()):
        radar.on_bar(bar)
        for minutes, rng in batch.indicators.opening_ranges.items():
            live = radar.opening_range(minutes)
            if rng.defined[0, k]:
                assert live == (
                    Decimal(int(rng.high[0, k])) / 10_000,
                    Decimal(int(rng.low[0, k])) / 10_000,
                )
            else:
                assert live is None


def test_equal_floats_are_bit_identical() -> None:
    """The claim behind exact equality: cumulative sums are sequential in numpy too."""
    values = np.random.default_rng(1).random(500) * 1e6
    running = 0.0
    for k, x in enumerate(values.tolist()):
        running += x
        assert np.cumsum(values)[k] == running
