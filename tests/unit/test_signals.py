"""The entry signal, its stop-buy levels, rule 5 (EntryGate) and the simulated stop-buy."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.domain import Regime
from core.marketdata.block import SessionBlock
from core.params import SignalParams
from core.signals import (
    EntryGate,
    StopBuyOrder,
    StopBuyProposal,
    evaluate_block,
    size_entry,
    trigger_and_stop,
)
from tests.kit.market import WARM_UP, labelled_levels, make_session

P = SignalParams()
HEAVY = ("100", "100", "100", "100", 1_000_000)  # pins VWAP at 100 (later bars: volume 0)


def _evaluate(rows, offsets, params=P, levels=None):  # type: ignore[no-untyped-def]
    session = make_session(rows, offsets=offsets)
    block = SessionBlock.from_sessions([session])
    return evaluate_block(block, [levels or labelled_levels()], [False], params)


def _setup(p_minute: int, extra=()):  # type: ignore[no-untyped-def]
    """P-1 above VWAP, P touching it, i reclaiming: i = P + 1 minute."""
    rows = [
        HEAVY,
        ("100.50", "100.60", "100.40", "100.50", 0),  # P - 1: close above VWAP
        ("100.40", "100.45", "100.05", "100.20", 0),  # P: low 100.05 <= 100 * 1.001
        ("100.20", "100.45", "100.15", "100.40", 0),  # i: rising, above VWAP
        *extra,
    ]
    offsets = [0, p_minute - 1, p_minute, p_minute + 1] + [
        p_minute + 2 + k for k in range(len(extra))
    ]
    return rows, offsets


def test_the_pullback_reclaim_fires_and_proposes_exact_levels() -> None:
    ev = _evaluate(*_setup(20))  # P 09:50, i 09:51
    assert ev.candidates[0].tolist() == [False, False, False, True]
    [record] = ev.signals(P)[0]
    assert record.proposal.trigger == Decimal("100.46")
    assert record.proposal.stop == Decimal("99.99")  # 100.05 * 0.9995 = 99.999975 -> down
    assert record.proposal.signal_time.strftime("%H:%M") == "09:51"
    assert record.proposal.pullback_time.strftime("%H:%M") == "09:50"
    assert record.regime is Regime.FORMING
    assert record.outcome == "open_at_close"


@pytest.mark.parametrize(
    ("p_minute", "fires"),
    [(14, False), (15, True), (88, True), (89, False), (239, False), (240, True), (358, True)],
)
def test_p_and_i_must_both_start_in_an_entry_window(p_minute: int, fires: bool) -> None:
    # minute 15 = 09:45; 89 -> i at 11:00; 240 = 13:30; 358 -> i at 15:29
    assert bool(_evaluate(*_setup(p_minute)).candidates[0, 3]) is fires


def test_no_candidate_in_warm_up() -> None:
    assert not _evaluate(*_setup(20), levels=WARM_UP).candidates.any()


def test_band_and_rising_bar_conditions() -> None:
    rows, offsets = _setup(20)
    rows[2] = ("100.40", "100.45", "100.11", "100.20", 0)  # low above 100 * 1.001
    assert not _evaluate(rows, offsets).candidates.any()
    rows, offsets = _setup(20)
    rows[3] = ("100.50", "100.55", "100.15", "100.40", 0)  # close < open
    assert not _evaluate(rows, offsets).candidates.any()


def test_stop_rounds_down_to_the_tick_and_trigger_is_exact() -> None:
    trigger, stop = trigger_and_stop(1_002_500, 1_000_100, P)  # high 100.25, low 100.01
    assert trigger == Decimal("100.26")
    assert stop == Decimal("99.95")  # 100.01 * 0.9995 = 99.959995
    _, exact = trigger_and_stop(1_002_500, 1_000_000, P)  # 100 * 0.9995 = 99.95 exactly
    assert exact == Decimal("99.95")


def test_entry_gate_transitions() -> None:
    gate = EntryGate(1)
    assert gate.allows
    gate.placed()
    assert not gate.allows
    with pytest.raises(RuntimeError):
        gate.placed()
    gate.expired()
    assert gate.allows
    gate.placed()
    gate.consumed()
    assert gate.allows
    gate.placed()
    gate.filled()
    assert not gate.allows and gate.entries_filled == 1
    with pytest.raises(RuntimeError):
        gate.filled()


def _proposal(trigger: str = "100.46") -> StopBuyProposal:
    ev = _evaluate(*_setup(20))
    proposal = ev.signals(P)[0][0].proposal
    return StopBuyProposal(
        proposal.symbol,
        proposal.signal_time,
        proposal.pullback_time,
        proposal.signal_index,
        Decimal(trigger),
        proposal.stop,
    )


def test_stop_buy_fills_at_open_or_trigger_and_expires_after_its_third_bar() -> None:
    order = StopBuyOrder(_proposal(), 3)
    assert order.on_bar(Decimal("100.30"), Decimal("100.45")) == StopBuyOrder.WORKING
    assert order.on_bar(Decimal("100.50"), Decimal("100.60")) == Decimal("100.50")  # gap over
    order = StopBuyOrder(_proposal(), 3)
    assert order.on_bar(Decimal("100.30"), Decimal("100.46")) == Decimal("100.46")
    order = StopBuyOrder(_proposal(), 3)
    for _ in range(2):
        assert order.on_bar(Decimal("100"), Decimal("100.1")) == StopBuyOrder.WORKING
    assert order.on_bar(Decimal("100"), Decimal("100.1")) == StopBuyOrder.EXPIRED


def test_sizing_follows_the_spec_readings() -> None:
    sizing = size_entry(Decimal("100.26"), Decimal("99.95"), P)
    assert sizing is not None
    assert sizing.entry_price == Decimal("100.26") * Decimal("1.0003")
    assert sizing.risk_per_share == sizing.entry_price - Decimal("99.95")
    assert sizing.qty == min(
        max(2, int(100 / sizing.risk_per_share)), int(6250 / sizing.entry_price)
    )
    wide = size_entry(Decimal("100"), Decimal("40"), P)
    assert wide is not None and wide.qty == 2  # floor(100 / 60) = 1 -> at least 2
    assert size_entry(Decimal("7000"), Decimal("6999"), P) is None  # cap: 6250 / 7002 < 1
    assert size_entry(Decimal("99"), Decimal("99.5"), P) is None  # R <= 0


def test_a_new_signal_may_fire_on_the_bar_where_the_stop_buy_expired() -> None:
    never = ("100.30", "100.40", "100.05", "100.35", 0)  # below the 100.46 trigger, in band
    rising = ("100.20", "100.45", "100.15", "100.40", 0)  # a reclaim again
    rows, offsets = _setup(20, extra=[never, never, rising])
    ev = _evaluate(rows, offsets)
    first, second = ev.signals(P)[0]
    assert first.outcome == "expired"
    assert second.proposal.signal_index == first.proposal.signal_index + 3


def test_after_a_fill_the_session_signals_no_more() -> None:
    fill = ("100.50", "100.60", "100.05", "100.55", 0)  # high >= 100.46
    rising = ("100.20", "100.45", "100.15", "100.40", 0)
    rows, offsets = _setup(20, extra=[fill, ("100.30", "100.40", "100.05", "100.35", 0), rising])
    ev = _evaluate(rows, offsets)
    assert ev.candidates[0].tolist() == [False, False, False, True, False, True, True]
    [record] = ev.signals(P)[0]
    assert record.outcome == "filled"
    assert record.sizing is not None and record.fill_index == 4
    two = P.model_copy(update={"max_entries_per_session": 2})
    assert len(_evaluate(rows, offsets, two).signals(two)[0]) == 2
