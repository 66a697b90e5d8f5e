"""IB statuses, error codes and ib_async objects mapped onto core's types."""

from __future__ import annotations

import sys
from decimal import Decimal

import pytest
from ib_async import AccountValue, ContractDetails

from brokers.ibkr import IbkrConfig
from brokers.ibkr.contracts import ContractBook
from brokers.ibkr.mapping import (
    IB_STATUS,
    IbError,
    IbErrorClass,
    account_from_summary,
    build_order,
    classify_error,
    dec,
    order_type_from_ib,
    price,
    qty,
    rejection_for,
    split_exec_id,
)
from core.broker import (
    BrokerEventKind,
    InsufficientBuyingPower,
    OrderRejected,
    UnsupportedOrder,
)
from core.domain import OrderStatus, OrderType, Side, TickRounding, TimeInForce
from tests.kit.brokers import make_request, ny

S = OrderStatus
K = BrokerEventKind
D = Decimal


def test_every_ib_status_has_a_status_and_an_event_kind() -> None:
    assert dict(IB_STATUS) == {
        "ApiPending": (S.SUBMITTED, K.PENDING_NEW),
        "PendingSubmit": (S.SUBMITTED, K.PENDING_NEW),
        "PreSubmitted": (S.ACCEPTED, K.ACCEPTED),
        "Submitted": (S.ACCEPTED, K.NEW),
        "PendingCancel": (S.PENDING_CANCEL, K.PENDING_CANCEL),
        "ApiCancelled": (S.CANCELED, K.CANCELED),
        "Cancelled": (S.CANCELED, K.CANCELED),
        "Filled": (S.FILLED, K.FILL),
        "Inactive": (S.REJECTED, K.REJECTED),
    }
    assert "ValidationError" not in IB_STATUS  # ib_async's own invention


@pytest.mark.parametrize(
    ("code", "text", "kind"),
    [
        (100, "Max rate of messages per second has been exceeded", IbErrorClass.PACING),
        (110, "The price does not conform", IbErrorClass.OFF_TICK),
        (201, "Order rejected - reason:", IbErrorClass.REJECTED),
        (202, "Order Canceled - reason:", IbErrorClass.CANCELED),
        (
            10147,
            "OrderId 5 that needs to be cancelled is not found.",
            IbErrorClass.CANCEL_TARGET_MISSING,
        ),
        (10148, "cannot be cancelled, state: Filled", IbErrorClass.NOT_CANCELABLE),
        (
            161,
            "Cancel attempted when order is not in a cancellable state",
            IbErrorClass.NOT_CANCELABLE,
        ),
        (1100, "Connectivity lost", IbErrorClass.CONNECTIVITY_LOST),
        (1101, "restored - data lost", IbErrorClass.RESTORED_DATA_LOST),
        (1102, "restored - data maintained", IbErrorClass.RESTORED),
        (2109, "Outside Regular Trading Hours is ignored", IbErrorClass.OUTSIDE_RTH_IGNORED),
        (2104, "Market data farm connection is OK", IbErrorClass.WARNING),
        (
            162,
            "Historical Market Data Service error message:pacing violation",
            IbErrorClass.HISTORICAL_PACING,
        ),
        (999, "something new", IbErrorClass.OTHER),
    ],
)
def test_error_codes(code: int, text: str, kind: IbErrorClass) -> None:
    assert classify_error(code, text) is kind


def test_rejections_are_typed_with_the_reason() -> None:
    def reject(code: int, text: str) -> OrderRejected:
        return rejection_for(IbError(5, code, text, ny(10)))

    plain = reject(201, "Order rejected - reason:The contract is not available for trading")
    assert type(plain) is OrderRejected
    assert (plain.reason, plain.code) == ("The contract is not available for trading", "201")
    margin = reject(201, "Order rejected - reason:Your Equity with Loan Value is insufficient")
    assert isinstance(margin, InsufficientBuyingPower)
    assert isinstance(
        reject(110, "The price does not conform to the minimum price variation"), UnsupportedOrder
    )
    assert reject(202, "Order Canceled - reason:").reason == "Order Canceled - reason:"


def test_numbers_become_exact_decimals() -> None:
    assert (
        dec(100.05) == D("100.05") and dec(sys.float_info.max) is None and dec(float("nan")) is None
    )
    assert str(qty(10.0)) == "10" and qty(None) == 0 and qty(2.5) == D("2.5")
    assert price(0.0) is None and price(12.3456) == D("12.3456")


def test_execution_ids_split_into_base_and_revision() -> None:
    assert split_exec_id("0000e0d5.6553ba64.01.01") == ("0000e0d5.6553ba64.01", 1)
    assert split_exec_id("0000e0d5.6553ba64.01.0a") == ("0000e0d5.6553ba64.01", 10)
    assert split_exec_id("plain") == ("plain", 0)


def test_requests_become_tagged_ib_orders() -> None:
    stop = build_order(make_request(OrderType.STOP, client_order_id="c-9", stop_price="100.05"), 7)
    assert (stop.orderId, stop.orderType, stop.action, stop.orderRef) == (7, "STP", "BUY", "c-9")
    assert (stop.auxPrice, stop.tif, stop.transmit, stop.outsideRth) == (
        D("100.05"),
        "DAY",
        True,
        False,
    )
    trail = build_order(
        make_request(
            OrderType.TRAILING_STOP,
            side=Side.SELL,
            trail_percent="1.5",
            time_in_force=TimeInForce.GTC,
        ),
        8,
        transmit=True,
        parent_id=7,
    )
    assert (trail.orderType, trail.trailingPercent, trail.parentId, trail.tif) == (
        "TRAIL",
        D("1.5"),
        7,
        "GTC",
    )
    limit = build_order(make_request(OrderType.STOP_LIMIT, extended_hours=True), 9, account="DU1")
    assert (limit.orderType, limit.lmtPrice, limit.outsideRth, limit.account) == (
        "STP LMT",
        D("100.50"),
        True,
        "DU1",
    )
    with pytest.raises(UnsupportedOrder, match="fractional"):
        build_order(make_request(OrderType.LIMIT, qty="1.5"), 10)


def test_ib_order_types_map_back() -> None:
    assert [order_type_from_ib(t) for t in ("MKT", "LMT", "STP", "STP LMT", "TRAIL")] == list(
        OrderType
    )
    assert order_type_from_ib("TRAIL LIMIT") is OrderType.TRAILING_STOP
    assert order_type_from_ib("REL", has_limit=True) is OrderType.LIMIT


def test_account_summary() -> None:
    values = [
        AccountValue("DU1", "NetLiquidation", "100000.50", "USD", ""),
        AccountValue("DU1", "TotalCashValue", "1000", "BASE", ""),
        AccountValue("DU1", "TotalCashValue", "60000.25", "USD", ""),
        AccountValue("DU1", "BuyingPower", "240001", "USD", ""),
        AccountValue("DU1", "DayTradesRemaining", "3", "", ""),
        AccountValue("DU2", "NetLiquidation", "5", "USD", ""),
    ]
    account = account_from_summary(values, "DU1")
    assert (account.equity, account.cash, account.buying_power) == (
        D("100000.50"),
        D("60000.25"),
        D(240001),
    )
    assert account.extra == {"DayTradesRemaining": "3"}
    with pytest.raises(ValueError, match="bp"):
        account_from_summary(values[:3], "DU1")


async def test_ticks_and_rounding() -> None:
    async def details(contract: object) -> list[ContractDetails]:
        from ib_async import Stock

        return [ContractDetails(contract=Stock("BRK", "SMART", "USD", conId=1), minTick=0.05)]

    book = ContractBook(details)
    await book.resolve("BRK")
    assert book.tick_for("BRK", D("500")) == D("0.05") and book.tick_for("BRK", D("0.5")) == D(
        "0.0001"
    )
    assert book.round_price("BRK", D("500.03"), TickRounding.DOWN) == D("500.00")
    assert book.round_price("BRK", D("500.03"), TickRounding.UP) == D("500.05")
    assert book.round_price("BRK", D("500.03")) == D("500.05")
    assert book.round_price("XYZ", D("0.123456"), TickRounding.DOWN) == D("0.1234")
    with pytest.raises(UnsupportedOrder, match="110"):
        book.check_prices("BRK", D("500.01"))


def test_config() -> None:
    config = IbkrConfig.from_env({"IBKR_HOST": "gw", "IBKR_PORT": "4001", "IBKR_CLIENT_ID": "3"})
    assert (config.host, config.port, config.client_id) == ("gw", 4001, 3)
    with pytest.raises(ValueError, match="pacing_burst"):
        IbkrConfig(pacing_burst=3)
