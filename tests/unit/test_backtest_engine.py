"""The backtest engine's fill rules on hand-made sessions; fast form == literal replay.

VWAP is pinned at 100 by a heavy first bar (later bars trade 0 volume), so the signal is
exact: P-1 closes above VWAP, P touches it, i reclaims with a rising bar. trigger 100.46,
stop 99.99 (100.05 x 0.9995 rounded down), entry at 100.46 x 1.0003 = 100.490138.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.backtest.engine import execute_block, replay_session
from core.backtest.model import ExitReason, TradeRow
from core.marketdata.block import SessionBlock
from core.marketdata.sessions import SessionBars
from core.params import SignalParams
from core.signals import evaluate_block
from tests.kit.market import DAY, HALF_DAY, labelled_levels, make_session

D = Decimal
P = SignalParams()
HALF = SignalParams(exit_model="half_1r")
HEAVY = ("100", "100", "100", "100", 1_000_000)
SETUP = [
    ("100.50", "100.60", "100.40", "100.50", 0),  # P - 1 (09:49): close above VWAP
    ("100.40", "100.45", "100.05", "100.20", 0),  # P (09:50): low 100.05 <= 100.10
    ("100.20", "100.45", "100.15", "100.40", 0),  # i (09:51): rising, above VWAP
]
ENTRY = D("100.46") * D("1.0003")
R = ENTRY - D("99.99")
QTY = 62  # min(max(2, floor(100 / R)), floor(6250 / ENTRY)) = min(199, 62)
SELL = D("0.9997")
LAST = ("101", "101", "101", "101", 0)  # 15:54: the flatten bar (1-minute bars)


def run(
    rows: list[tuple[str, str, str, str, int]],
    offsets: list[int],
    params: SignalParams = P,
    *,
    day: date = DAY,
    minutes: int = 1,
) -> list[TradeRow]:
    """Both forms over one session; they must agree."""
    session = make_session(rows, offsets=offsets, day=day, minutes=minutes)
    return _both(session, params)


def _both(session: SessionBars, params: SignalParams) -> list[TradeRow]:
    levels = labelled_levels()
    ev = evaluate_block(SessionBlock.from_sessions([session]), [levels], [False], params)
    fast = execute_block(ev, params)
    assert fast == replay_session(session, levels, False, params)
    return fast


def session_after(
    bars: list[tuple[str, str, str, str, int]], tail: bool = True
) -> tuple[list[tuple[str, str, str, str, int]], list[int]]:
    """HEAVY at 09:30, the setup at 09:49-09:51, `bars` from 09:52 on, then 15:54, 15:59."""
    rows = [HEAVY, *SETUP, *bars]
    offsets = [0, 19, 20, 21] + [22 + k for k in range(len(bars))]
    if tail:
        rows += [LAST, LAST]
        offsets += [384, 389]
    return rows, offsets


def hm(row_time: object) -> str:
    return f"{row_time:%H:%M}"


def test_fill_at_the_trigger_then_flatten_at_the_1554_bar_close() -> None:
    [row] = run(*session_after([("100.40", "100.50", "100.30", "100.45", 0)]))
    assert (hm(row.signal_time), hm(row.entry_time), row.entry_price) == ("09:51", "09:52", ENTRY)
    assert (row.stop, row.risk, row.qty) == (D("99.99"), R, QTY)
    assert (hm(row.exit_time), row.exit_reason, row.exit_price) == (
        "15:54",
        ExitReason.FLATTEN,
        D("101") * SELL,
    )
    assert row.pnl == (D("101") * SELL - ENTRY) * QTY and row.fees == 0


def test_a_gap_through_the_trigger_fills_at_the_open() -> None:
    [row] = run(*session_after([("100.60", "100.70", "100.55", "100.65", 0)]))
    assert row.entry_price == D("100.60") * D("1.0003")


def test_no_exit_on_the_fill_bar_and_the_trail_starts_at_the_entry_price() -> None:
    rows = [
        ("100.40", "100.50", "99.00", "100.45", 0),  # fill bar: low far below any level
        ("100.45", "102.00", "100.30", "101.90", 0),  # j+1: level 100.49 x 0.992 = 99.686
        ("101.90", "101.95", "100.19", "100.30", 0),  # j+2: level 102 x 0.992 = 101.184
    ]
    [row] = run(*session_after(rows))
    assert hm(row.exit_time) == "09:54" and row.exit_reason is ExitReason.TRAIL
    assert row.exit_price == D("101.184") * SELL  # min(open 101.90, level)


def test_a_bar_cannot_raise_its_own_trail_level() -> None:
    rows = [
        ("100.40", "100.50", "100.30", "100.45", 0),  # fill
        ("100.45", "103.00", "100.00", "102.90", 0),  # low 100.00 > 99.686 (not 102.176)
    ]
    [row] = run(*session_after(rows))  # the 103 high counts from the next bar on: 15:54
    assert (hm(row.exit_time), row.exit_reason) == ("15:54", ExitReason.TRAIL)
    assert row.exit_price == D("101") * SELL  # gapped below 102.176: at the open


def test_a_gap_below_the_trail_fills_at_the_open() -> None:
    rows = [
        ("100.40", "100.50", "100.30", "100.45", 0),
        ("99.00", "99.10", "98.90", "99.05", 0),
    ]
    [row] = run(*session_after(rows))
    assert (row.exit_reason, row.exit_price) == (ExitReason.TRAIL, D("99.00") * SELL)


def test_half_1r_stop_and_target_on_one_bar_stops_the_whole_position() -> None:
    rows = [
        ("100.40", "100.50", "100.30", "100.45", 0),
        ("100.50", "101.50", "99.90", "100.00", 0),  # reaches 99.99 and 100.990276
    ]
    [row] = run(*session_after(rows), HALF)
    assert (row.exit_reason, row.qty, row.exit_price) == (ExitReason.STOP, QTY, D("99.99") * SELL)


def test_half_1r_target_then_breakeven_from_the_next_bar() -> None:
    rows = [
        ("100.40", "100.50", "100.30", "100.45", 0),
        ("100.60", "101.10", "100.40", "100.70", 0),  # target; low < entry: not yet live
        ("100.70", "100.80", "100.45", "100.50", 0),  # breakeven at the entry price
    ]
    target, rest = run(*session_after(rows), HALF)
    assert (target.exit_reason, target.qty, hm(target.exit_time)) == ("target", 31, "09:53")
    assert target.exit_price == (ENTRY + R) * SELL
    assert (rest.exit_reason, rest.qty, hm(rest.exit_time)) == ("breakeven", 31, "09:54")
    assert rest.exit_price == ENTRY * SELL
    assert target.entry_time == rest.entry_time and target.leg == 0 and rest.leg == 1


def test_half_1r_target_on_the_flatten_bar_comes_before_the_flatten_row() -> None:
    rows, offsets = session_after([("100.40", "100.50", "100.30", "100.45", 0)], tail=False)
    rows += [("101.50", "101.60", "101.40", "101.45", 0)]  # 15:54: target, then flatten
    offsets += [384]
    target, rest = run(rows, offsets, HALF)
    assert [(r.exit_reason.value, hm(r.exit_time)) for r in (target, rest)] == [
        ("target", "15:54"),
        ("flatten", "15:54"),
    ]
    assert target.exit_price == D("101.50") * SELL and rest.exit_price == D("101.45") * SELL


def test_half_day_flatten_is_the_bar_ending_at_1255() -> None:
    rows, offsets = session_after([("100.40", "100.50", "100.30", "100.45", 0)], tail=False)
    rows += [LAST, LAST, LAST]
    offsets += [203, 204, 209]  # 12:53, 12:54 (ends 12:55), 12:59
    [row] = run(rows, offsets, day=HALF_DAY)
    assert (hm(row.exit_time), row.exit_reason) == ("12:54", ExitReason.FLATTEN)
    # 5-minute bars: P-1 09:40... no: P and i must start in the window; P 09:45, i 09:50
    rows5 = [HEAVY, *SETUP, ("100.40", "100.50", "100.30", "100.45", 0), LAST, LAST, LAST]
    [row5] = run(rows5, [0, 2, 3, 4, 5, 39, 40, 41], day=HALF_DAY, minutes=5)
    assert (hm(row5.entry_time), hm(row5.exit_time)) == ("09:55", "12:50")


def test_an_untriggered_stop_buy_expires_after_its_third_bar_and_a_new_signal_fires_there() -> None:
    never = ("100.30", "100.40", "100.05", "100.35", 0)  # below 100.46, in the band
    rising = ("100.20", "100.45", "100.15", "100.40", 0)  # 3rd bar: expiry AND a new signal
    fill = ("100.40", "100.50", "100.30", "100.45", 0)
    [row] = run(*session_after([never, never, rising, fill]))
    assert (hm(row.signal_time), hm(row.entry_time)) == ("09:54", "09:55")


def test_no_trade_when_the_cap_leaves_less_than_one_share() -> None:
    params = SignalParams(equity=D(300))  # 25 % of 300 = 75 < one share at 100.49
    assert run(*session_after([("100.40", "100.50", "100.30", "100.45", 0)]), params) == []


SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def sessions(draw: st.DrawFn) -> tuple[SessionBars, SignalParams]:
    """Random walks around a pinned VWAP, so signals, fills and exits all happen."""
    minutes = draw(st.sampled_from([1, 5]))
    day = draw(st.sampled_from([DAY, HALF_DAY]))
    slots = (210 if day == HALF_DAY else 390) // minutes
    keep = draw(st.lists(st.booleans(), min_size=slots - 1, max_size=slots - 1))
    offsets = [0] + [k + 1 for k in range(slots - 1) if keep[k] or draw(st.booleans())]
    rows = [HEAVY]
    price = 10_000
    for _ in offsets[1:]:
        o = price
        c = max(9_970, min(10_060, o + draw(st.integers(-12, 12))))  # near VWAP: signals
        h = max(o, c) + draw(st.integers(0, 8))
        lo = min(o, c) - draw(st.integers(0, 8))
        rows.append((*(f"{x / 100:.2f}" for x in (o, h, lo, c)), 0))  # type: ignore[arg-type]
        price = c
    session = make_session(rows, offsets=offsets, day=day, minutes=minutes)
    params = SignalParams(
        exit_model=draw(st.sampled_from(["trail", "half_1r"])),
        trail_pct=draw(st.sampled_from([D("0.05"), D("0.2"), D("0.8")])),
        max_entries_per_session=draw(st.sampled_from([1, 3])),
        stop_valid_bars=draw(st.sampled_from([1, 3])),
        entry_windows=draw(
            st.sampled_from([(("09:45", "11:00"), ("13:30", "15:30")), (("09:30", "16:00"),)])
        ),
    )
    return session, params


@SETTINGS
@given(sessions())
def test_fast_form_equals_the_literal_order_of_work(case: tuple[SessionBars, SignalParams]) -> None:
    session, params = case
    _both(session, params)
