"""The fill rules of SPEC-signals.md "Simulated execution" and "Readings"."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from core.domain import Side
from core.fills import (
    ALPACA_FRICTION,
    IBKR_FRICTION,
    NO_FRICTION,
    ExitKind,
    FrictionProfile,
    TrailingStop,
    first_exit,
    limit_buy_fill,
    limit_sell_fill,
    marketable_limit_fill,
    stop_buy_fill,
    stop_limit_fill,
    stop_sell_fill,
    trailing_level,
)
from core.marketdata.bar import Bar
from tests.kit.brokers import make_bar, ny

D = Decimal


def bar(o: str, h: str, l: str, c: str, minute: int = 0) -> Bar:  # noqa: E741
    return make_bar(ny(10, minute), o, h, l, c)


# --- stop-buy --------------------------------------------------------------------------


def test_stop_buy_not_reached() -> None:
    assert stop_buy_fill(bar("100.00", "100.04", "99.90", "100.00"), D("100.05")) is None


def test_stop_buy_touch_fills_at_trigger() -> None:
    assert stop_buy_fill(bar("100.00", "100.05", "99.90", "100.01"), D("100.05")) == D("100.05")


def test_stop_buy_gap_through_trigger_fills_at_open() -> None:
    assert stop_buy_fill(bar("100.30", "100.50", "100.20", "100.40"), D("100.05")) == D("100.30")


# --- stop / limit sells ----------------------------------------------------------------


def test_stop_sell_touch_and_gap() -> None:
    assert stop_sell_fill(bar("100.00", "100.10", "99.50", "99.60"), D("99.50")) == D("99.50")
    assert stop_sell_fill(bar("99.00", "99.20", "98.80", "99.10"), D("99.50")) == D("99.00")
    assert stop_sell_fill(bar("100.00", "100.10", "99.51", "99.60"), D("99.50")) is None


def test_limit_sell_touch_and_gap() -> None:
    assert limit_sell_fill(bar("100.00", "101.00", "99.90", "100.50"), D("101.00")) == D("101.00")
    assert limit_sell_fill(bar("101.50", "101.80", "101.40", "101.60"), D("101.00")) == D("101.50")
    assert limit_sell_fill(bar("100.00", "100.99", "99.90", "100.50"), D("101.00")) is None


def test_limit_buy_mirror() -> None:
    assert limit_buy_fill(bar("100.00", "100.10", "99.00", "99.50"), D("99.00")) == D("99.00")
    assert limit_buy_fill(bar("98.00", "98.50", "97.90", "98.10"), D("99.00")) == D("98.00")
    assert limit_buy_fill(bar("100.00", "100.10", "99.01", "99.50"), D("99.00")) is None


def test_marketable_limit() -> None:
    assert marketable_limit_fill(Side.BUY, D("100.00"), D("99.90")) == D("99.90")
    assert marketable_limit_fill(Side.BUY, D("100.00"), D("100.01")) is None
    assert marketable_limit_fill(Side.SELL, D("100.00"), D("100.01")) == D("100.01")


def test_stop_limit_within_and_through_the_limit() -> None:
    within = stop_limit_fill(
        Side.BUY, bar("100.00", "100.20", "99.90", "100.1"), D("100.05"), D("100.10")
    )
    assert within.triggered and within.price == D("100.05")
    gapped = stop_limit_fill(
        Side.BUY, bar("100.30", "100.40", "100.20", "100.3"), D("100.05"), D("100.10")
    )
    assert gapped.triggered and gapped.price is None  # works on as a limit from the next bar
    idle = stop_limit_fill(
        Side.BUY, bar("100.00", "100.04", "99.90", "100"), D("100.05"), D("100.10")
    )
    assert not idle.triggered


# --- stop first ------------------------------------------------------------------------


def test_one_bar_reaching_stop_and_limit_takes_the_stop() -> None:
    wide = bar("100.00", "102.00", "98.00", "101.00")
    assert first_exit(wide, D("99.00"), D("101.00")) == first_exit(wide, D("99.00"), None)
    taken = first_exit(wide, D("99.00"), D("101.00"))
    assert taken is not None and taken.kind is ExitKind.STOP and taken.price == D("99.00")
    target = first_exit(bar("100.00", "102.00", "99.50", "101.00"), D("99.00"), D("101.00"))
    assert target is not None and target.kind is ExitKind.LIMIT and target.price == D("101.00")
    assert first_exit(bar("100.00", "100.50", "99.50", "100.0"), D("99.00"), D("101.00")) is None


# --- exact decimal levels --------------------------------------------------------------


def test_levels_compare_exactly() -> None:
    # 0.1 + 0.2 style float errors would make either comparison flip.
    level = D("100.10") * (1 - D("0.8") / 100)  # 99.2992 exactly
    assert level == D("99.29920")
    touching = bar("99.50", "99.60", "99.2992", "99.40")
    assert stop_sell_fill(touching, level) == D("99.2992")
    assert stop_sell_fill(bar("99.50", "99.60", "99.2993", "99.40"), level) is None


# --- trailing --------------------------------------------------------------------------


def test_trailing_level_formula() -> None:
    assert trailing_level(D("191.52"), D("0.8")) == D("191.52") * D("0.992")
    assert trailing_level(D("50"), D("2"), Side.BUY) == D("51.00")


def test_trailing_hwm_excludes_the_fill_bar_and_the_current_bar() -> None:
    """Entry on bar j at 100.00 (booked). Bar j's own high (105) must never raise hwm:
    the caller only starts the trail after the fill bar. Bar k's high does not raise its
    own level either."""
    entry = D("100.00")
    trail = TrailingStop(Side.SELL, D("1"), entry)  # level 99.00
    bars = [
        bar("100.00", "102.00", "99.50", "101.50", 1),  # j+1: level 99.00, no exit; hwm -> 102
        bar("101.50", "101.60", "101.00", "101.20", 2),  # j+2: level 100.98, no exit (low 101)
        bar("101.20", "101.30", "100.90", "101.00", 3),  # j+3: low 100.90 <= 100.98 -> exit
    ]
    assert trail.check(bars[0]) is None
    trail = trail.after(bars[0])
    assert trail.mark == D("102.00") and trail.level == D("100.98")
    assert trail.check(bars[1]) is None
    trail = trail.after(bars[1])
    assert trail.mark == D("102.00")  # 101.60 is below the mark
    assert trail.check(bars[2]) == D("100.98")


def test_trailing_bar_cannot_raise_its_own_level() -> None:
    trail = TrailingStop(Side.SELL, D("1"), D("100.00"))
    # This bar rallies to 110 and then falls to 99.5: with its own high it would exit at
    # 108.90; by the spec its level is still 99.00 and the low of 99.50 does not reach it.
    spike = bar("100.00", "110.00", "99.50", "100.00")
    assert trail.check(spike) is None
    assert trail.after(spike).level == D("108.90")


def test_trailing_gap_down_fills_at_open() -> None:
    trail = TrailingStop(Side.SELL, D("1"), D("100.00"))
    assert trail.check(bar("98.00", "98.50", "97.50", "98.20")) == D("98.00")


# --- friction --------------------------------------------------------------------------


def test_friction_arithmetic_is_exact() -> None:
    # spread 2 bps, slippage 2 bps -> 3 bps adverse
    assert ALPACA_FRICTION.fill_price(Side.BUY, D("191.52")) == D("191.577456")
    assert ALPACA_FRICTION.fill_price(Side.SELL, D("191.52")) == D("191.462544")
    assert NO_FRICTION.fill_price(Side.BUY, D("191.52")) == D("191.52")
    odd = FrictionProfile("odd", spread_bps=D("3"), slippage_bps=D("0.5"))
    assert odd.fill_price(Side.BUY, D("10")) == D("10.002")


def test_alpaca_has_no_commission() -> None:
    assert ALPACA_FRICTION.order_commission(D(100)) == 0
    assert ALPACA_FRICTION.fill_commission(D(50), D(50)) == 0


def test_ibkr_per_share_with_order_minimum() -> None:
    assert IBKR_FRICTION.order_commission(D(40)) == D("1.00")  # 0.20 -> minimum
    assert IBKR_FRICTION.order_commission(D(200)) == D("1.000")
    assert IBKR_FRICTION.order_commission(D(1000)) == D("5.000")
    # The minimum is per order: partial fills of one order share it.
    first = IBKR_FRICTION.fill_commission(D(0), D(40))
    second = IBKR_FRICTION.fill_commission(D(40), D(160))
    third = IBKR_FRICTION.fill_commission(D(200), D(100))
    assert (first, second, third) == (D("1.00"), D("0.000"), D("0.500"))
    assert first + second + third == IBKR_FRICTION.order_commission(D(300))


@given(
    chunks=st.lists(st.integers(min_value=1, max_value=500), min_size=1, max_size=8),
)
def test_partial_commissions_sum_to_the_order_commission(chunks: list[int]) -> None:
    filled = D(0)
    total = D(0)
    for chunk in chunks:
        total += IBKR_FRICTION.fill_commission(filled, D(chunk))
        filled += chunk
    assert total == IBKR_FRICTION.order_commission(filled)


@given(
    open_=st.decimals(min_value=1, max_value=500, places=2),
    spread=st.decimals(min_value=0, max_value=5, places=2),
    trigger=st.decimals(min_value=1, max_value=500, places=2),
)
def test_stop_buy_never_fills_below_trigger_or_open(
    open_: Decimal, spread: Decimal, trigger: Decimal
) -> None:
    high = open_ + spread
    b = make_bar(ny(10), open_, high, open_, open_)
    price = stop_buy_fill(b, trigger)
    if high < trigger:
        assert price is None
    else:
        assert price is not None and price >= trigger and price >= open_ and price <= high
