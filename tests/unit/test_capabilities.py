"""The capability matrix is BROKERS.md's table, cell by cell."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.calendar import SessionPhase
from core.capabilities import (
    ALPACA,
    IBKR,
    MATRICES,
    SIM,
    Venue,
    check,
    check_price,
    matrix_for,
)
from core.domain import OrderType, TimeInForce
from tests.kit.brokers import make_request

M, L, ST, SL, TR = (
    OrderType.MARKET,
    OrderType.LIMIT,
    OrderType.STOP,
    OrderType.STOP_LIMIT,
    OrderType.TRAILING_STOP,
)
DAY, GTC = TimeInForce.DAY, TimeInForce.GTC
RTH, EXT, OVN = Venue.REGULAR, Venue.EXTENDED, Venue.OVERNIGHT

# BROKERS.md, "Capability matrix (US equities)": (order type, venue) -> allowed, for both
# day and gtc (every "only day/gtc" cell covers both of our time-in-force values).
ALPACA_TABLE = {
    (M, RTH): True, (M, EXT): False, (M, OVN): False,
    (L, RTH): True, (L, EXT): True, (L, OVN): True,
    (ST, RTH): True, (ST, EXT): False, (ST, OVN): False,
    (SL, RTH): True, (SL, EXT): False, (SL, OVN): False,
    (TR, RTH): True, (TR, EXT): False, (TR, OVN): False,
}  # fmt: skip
IBKR_TABLE = {
    (M, RTH): True, (M, EXT): False,
    (L, RTH): True, (L, EXT): True,
    (ST, RTH): True, (ST, EXT): True,
    (SL, RTH): True, (SL, EXT): True,
    (TR, RTH): True, (TR, EXT): False,  # "(unverified)" -> not relied on
}  # fmt: skip


@pytest.mark.parametrize("tif", [DAY, GTC])
@pytest.mark.parametrize(("cell", "allowed"), sorted(ALPACA_TABLE.items()))
def test_alpaca_cells_match_brokers_md(
    cell: tuple[OrderType, Venue], allowed: bool, tif: TimeInForce
) -> None:
    order_type, venue = cell
    assert ALPACA.cell(order_type, tif, venue).allowed is allowed
    assert SIM.cell(order_type, tif, venue).allowed is allowed  # sim = alpaca's rules


@pytest.mark.parametrize("tif", [DAY, GTC])
@pytest.mark.parametrize(("cell", "allowed"), sorted(IBKR_TABLE.items()))
def test_ibkr_cells_match_brokers_md(
    cell: tuple[OrderType, Venue], allowed: bool, tif: TimeInForce
) -> None:
    order_type, venue = cell
    assert IBKR.cell(order_type, tif, venue).allowed is allowed


def test_unverified_and_missing_cells_are_refused_with_the_reason() -> None:
    trail = IBKR.cell(TR, GTC, EXT)
    assert not trail.allowed and "unverified" in trail.reason
    overnight = IBKR.cell(L, DAY, OVN)  # IBKR has no overnight column in BROKERS.md
    assert not overnight.allowed and "unverified" in overnight.reason


def test_registry() -> None:
    assert set(MATRICES) == {"alpaca", "ibkr", "sim"}
    assert matrix_for("alpaca") is ALPACA
    with pytest.raises(KeyError):
        matrix_for("tradier")


@pytest.mark.parametrize("order_type", [M, ST, SL, TR])
@pytest.mark.parametrize("phase", [SessionPhase.PRE_MARKET, SessionPhase.AFTER_HOURS])
def test_alpaca_refuses_extended_hours_non_limit(
    order_type: OrderType, phase: SessionPhase
) -> None:
    verdict = check("alpaca", make_request(order_type, extended_hours=True), phase)
    assert not verdict.allowed
    assert "extended hours" in verdict.reason


def test_alpaca_validates_extended_flag_even_during_rth() -> None:
    verdict = check("alpaca", make_request(ST, extended_hours=True), SessionPhase.REGULAR)
    assert not verdict.allowed


@pytest.mark.parametrize("tif", [DAY, GTC])
def test_alpaca_extended_limit_day_or_gtc(tif: TimeInForce) -> None:
    request = make_request(L, time_in_force=tif, extended_hours=True)
    for phase in (SessionPhase.PRE_MARKET, SessionPhase.AFTER_HOURS, SessionPhase.OVERNIGHT):
        verdict = check("alpaca", request, phase)
        assert verdict.allowed and not verdict.queued, phase


def test_orders_placed_outside_rth_wait_for_the_open() -> None:
    # "market closed: no error, orders wait as accepted"
    for order_type in (M, L, ST, SL, TR):
        for phase in (SessionPhase.AFTER_HOURS, SessionPhase.OVERNIGHT, SessionPhase.CLOSED):
            verdict = check("alpaca", make_request(order_type, time_in_force=GTC), phase)
            assert verdict.allowed and verdict.queued, (order_type, phase)
    rth = check("alpaca", make_request(ST), SessionPhase.REGULAR)
    assert rth.allowed and not rth.queued


def test_ibkr_outside_rth() -> None:
    pre = SessionPhase.PRE_MARKET
    assert check("ibkr", make_request(ST, extended_hours=True), pre).allowed
    assert check("ibkr", make_request(SL, extended_hours=True), pre).allowed
    assert check("ibkr", make_request(L, extended_hours=True), pre).allowed
    market = check("ibkr", make_request(M, extended_hours=True), pre)
    assert not market.allowed and "2109" in market.reason
    assert not check("ibkr", make_request(TR, extended_hours=True), pre).allowed
    # No overnight venue: an outsideRth order placed overnight waits for the pre-market.
    overnight = check("ibkr", make_request(L, extended_hours=True), SessionPhase.OVERNIGHT)
    assert overnight.allowed and overnight.queued


def test_fractional_only_day_on_alpaca() -> None:
    rth = SessionPhase.REGULAR
    assert check("alpaca", make_request(M, qty="0.5"), rth).allowed
    gtc = check("alpaca", make_request(M, qty="1.5", time_in_force=GTC), rth)
    assert not gtc.allowed and "day" in gtc.reason
    assert not check("ibkr", make_request(M, qty="0.5"), rth).allowed


@pytest.mark.parametrize(
    ("price", "ok"),
    [("1.00", True), ("191.52", True), ("191.525", False), ("0.9999", True),
     ("0.99995", False), ("0", False), ("-1", False)],
)  # fmt: skip
def test_price_validity(price: str, ok: bool) -> None:
    assert check_price(Decimal(price)).allowed is ok


def test_check_reports_sub_penny_from_the_request() -> None:
    # OrderRequest itself refuses off-tick prices; a request built around that check (as
    # an adapter's replace might) is still caught here.
    request = make_request(L, limit_price="10.00")
    object.__setattr__(request, "limit_price", Decimal("10.001"))
    verdict = check("alpaca", request, SessionPhase.REGULAR)
    assert not verdict.allowed and "sub-penny" in verdict.reason


def test_matrix_check_method() -> None:
    assert ALPACA.check(make_request(TR), SessionPhase.REGULAR).allowed
