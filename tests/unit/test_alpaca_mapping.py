"""Alpaca mapping tables: statuses, events, errors; exact Decimals; fill derivation."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgpack
import pytest
import requests
from alpaca.common.exceptions import APIError

from brokers.alpaca.errors import (
    ApiAnswer,
    AuthenticationFailed,
    ConnectionFailed,
    Op,
    is_transient,
    map_answer,
    map_exception,
    retry_after_seconds,
)
from brokers.alpaca.mapping import (
    STATUS_MAP,
    account_from_json,
    dec,
    fill_identity,
    map_event,
    map_status,
    order_from_json,
    parse_ts,
    position_from_json,
)
from brokers.alpaca.marketdata import bar_from_json, price, timeframe_size
from brokers.alpaca.recorder import csv_line
from brokers.alpaca.stream import FillTracker, event_from_frame
from brokers.alpaca.transport import RetryPolicy
from core.broker import (
    AmbiguousOutcome,
    BrokerError,
    BrokerEventKind,
    BrokerUnavailable,
    DuplicateClientOrderId,
    InsufficientBuyingPower,
    InsufficientQty,
    NotCancelable,
    NotFound,
    NotReplaceable,
    OrderRejected,
    RateLimited,
    UnsupportedOrder,
    WashTradeRejected,
)
from core.clock import SimClock
from core.domain import OrderStatus, OrderType, Side, TimeInForce

S = OrderStatus
K = BrokerEventKind
NOW = datetime(2025, 6, 2, 14, 0, tzinfo=UTC)

ALPACA_STATUSES = {
    "new": S.ACCEPTED,
    "partially_filled": S.PARTIALLY_FILLED,
    "filled": S.FILLED,
    "done_for_day": S.ACCEPTED,
    "canceled": S.CANCELED,
    "expired": S.EXPIRED,
    "replaced": S.REPLACED,
    "pending_cancel": S.PENDING_CANCEL,
    "pending_replace": S.ACCEPTED,
    "accepted": S.ACCEPTED,
    "pending_new": S.SUBMITTED,
    "accepted_for_bidding": S.SUBMITTED,
    "stopped": S.ACCEPTED,
    "rejected": S.REJECTED,
    "suspended": S.ACCEPTED,
    "calculated": S.ACCEPTED,
    "held": S.ACCEPTED,
    "pending_review": S.SUBMITTED,
}


def order(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "61e69015-8549-4bfd-b9c3-01e75843f47d",
        "client_order_id": "entry-1",
        "created_at": "2025-06-02T14:00:00.123456789Z",
        "updated_at": "2025-06-02T14:00:01Z",
        "symbol": "AAPL",
        "qty": "10",
        "filled_qty": "0",
        "filled_avg_price": None,
        "type": "stop",
        "side": "buy",
        "time_in_force": "day",
        "stop_price": "191.52",
        "limit_price": None,
        "trail_percent": None,
        "status": "new",
    }
    return {**base, **fields}


@pytest.mark.parametrize(("raw", "expected"), sorted(ALPACA_STATUSES.items()))
def test_every_documented_status(raw: str, expected: OrderStatus) -> None:
    assert map_status(raw) is expected


def test_the_table_covers_every_documented_status_and_working_fills_are_partial() -> None:
    assert set(STATUS_MAP) == set(ALPACA_STATUSES)
    for raw in ("new", "pending_replace", "done_for_day", "held", "accepted"):
        assert map_status(raw, Decimal(3)) is S.PARTIALLY_FILLED
    assert map_status("filled", Decimal(10)) is S.FILLED
    assert map_status("canceled", Decimal(3)) is S.CANCELED  # a terminal ending stays


@pytest.mark.parametrize("raw", ["pending_quantum_review", "", None, "NEW"])
def test_unknown_statuses_stay_working(raw: str | None) -> None:
    status = map_status(raw)
    assert status is S.ACCEPTED and status.is_working and not status.is_terminal
    assert map_status(raw, Decimal(1)) is S.PARTIALLY_FILLED


def test_events_map_by_name_and_unknown_ones_are_informational() -> None:
    for kind in K:
        assert map_event(kind.value) is kind
    assert map_event("order_teleported") is K.RESTATED and not K.RESTATED.is_fill


def test_decimals_come_exactly_from_the_api_strings() -> None:
    assert dec("191.5234") == Decimal("191.5234") and str(dec("191.5234")) == "191.5234"
    assert dec(191.5234) == Decimal("191.5234")  # a float only via its shortest repr
    assert dec(10) == Decimal(10)
    for bad in (None, True, "abc", "NaN", "Infinity"):
        with pytest.raises(ValueError):
            dec(bad)
    assert price(191.52339999) == Decimal("191.5234") and price("1.5") == Decimal("1.5000")


def test_order_json_maps_to_a_snapshot() -> None:
    snap = order_from_json(
        order(status="partially_filled", filled_qty="4", filled_avg_price="191.5234")
    )
    assert (snap.status, snap.raw_status, snap.filled_qty) == (  # type: ignore[comparison-overlap]
        S.PARTIALLY_FILLED,
        "partially_filled",
        4,
    )
    assert snap.avg_fill_price == Decimal("191.5234") and snap.stop_price == Decimal("191.52")
    assert (snap.order_type, snap.side, snap.time_in_force) == (
        OrderType.STOP,
        Side.BUY,
        TimeInForce.DAY,
    )
    assert snap.created_at == datetime(2025, 6, 2, 14, 0, 0, 123456, tzinfo=UTC)
    trailing = order_from_json(
        order(type="trailing_stop", trail_percent="0.8", stop_price="189.99")
    )
    assert trailing.trail_percent == Decimal("0.8") and trailing.stop_price == Decimal("189.99")
    assert order_from_json(order(time_in_force="opg")).time_in_force is TimeInForce.DAY
    with pytest.raises(ValueError):
        order_from_json(order(type="mleg"))
    with pytest.raises(ValueError):
        order_from_json(order(side="sell_short"))


def test_account_position_and_timestamps() -> None:
    account = account_from_json(
        {"id": "a", "status": "ACTIVE", "equity": "1000.5", "cash": "10", "buying_power": "2000"}
    )
    assert (account.equity, account.status) == (Decimal("1000.5"), "active")
    short = position_from_json(
        {"symbol": "MU", "qty": "5", "side": "short", "avg_entry_price": "90.1"}
    )
    assert short.qty == Decimal(-5) and short.market_price is None
    assert parse_ts("2025-06-02T10:00:00-04:00") == NOW
    assert parse_ts("2025-06-02T14:00:00.5Z") == NOW + timedelta(milliseconds=500)
    assert parse_ts("garbage") is None and parse_ts(None) is None
    # One execution, the same identity from the stream (filled_qty) and REST (cum_qty).
    oid = "2FBC8A04-FFA7-4659-AE1F-D28D31EA40FF"
    assert fill_identity(oid, Decimal("20")) == fill_identity(oid.lower(), Decimal("20.00"))
    assert fill_identity(oid, Decimal("20")) == f"alpaca:{oid.lower()}:20"
    assert fill_identity(oid, Decimal("0.5")) != fill_identity(oid, Decimal("5"))


def answer(status: int | None, code: int | None, message: str, **headers: str) -> ApiAnswer:
    return ApiAnswer(status, code, message, headers)


ERRORS = [
    (Op.SUBMIT, 422, 40010001, "client_order_id must be unique", DuplicateClientOrderId),
    (Op.SUBMIT, 403, 40310000, "insufficient buying power", InsufficientBuyingPower),
    (
        Op.SUBMIT,
        403,
        40310000,
        "insufficient qty available for order (requested: 10, available: 0)",
        InsufficientQty,
    ),
    (
        Op.SUBMIT,
        403,
        40310000,
        "potential wash trade detected. use complex orders",
        WashTradeRejected,
    ),
    (
        Op.SUBMIT,
        422,
        42210000,
        "potential wash trade detected. use complex orders",
        WashTradeRejected,
    ),
    (Op.SUBMIT, 422, 42210000, "invalid stop_price 1.001. sub-penny increment", UnsupportedOrder),
    (Op.SUBMIT, 422, 40010001, "stop orders are not eligible for extended hours", UnsupportedOrder),
    (Op.SUBMIT, 403, 40310000, "account is restricted", OrderRejected),
    (Op.READ, 404, 40410000, "order not found", NotFound),
    (Op.CANCEL, 422, 42210000, 'order is already in "filled" state', NotCancelable),
    (Op.REPLACE, 422, 42210000, 'order is already in "pending_cancel" state', NotReplaceable),
    (
        Op.REPLACE,
        422,
        42210000,
        "unable to replace order, order isn't sent to exchange yet",
        NotReplaceable,
    ),
    (Op.REPLACE, 403, 40310000, "unable to replace order, no change requested", OrderRejected),
    (Op.READ, 401, 40110000, "request is not authorized", AuthenticationFailed),
    (Op.READ, 403, None, "forbidden.", AuthenticationFailed),
    (Op.SUBMIT, 500, 50010000, "internal server error", AmbiguousOutcome),
    (Op.SUBMIT, 504, None, "gateway answered HTTP 504 (html page)", AmbiguousOutcome),
    (Op.READ, 429, 42910000, "rate limit exceeded", RateLimited),
    (Op.READ, 422, 40010001, "invalid status", BrokerError),
]


@pytest.mark.parametrize(("op", "status", "code", "message", "expected"), ERRORS)
def test_error_table(
    op: Op, status: int, code: int | None, message: str, expected: type[BrokerError]
) -> None:
    error = map_answer(answer(status, code, message), op, NOW)
    assert type(error) is expected
    if isinstance(error, OrderRejected):
        assert error.reason == message and error.code == (None if code is None else str(code))


def test_rate_limit_headers_are_honoured_when_plausible() -> None:
    reset = str(int(NOW.timestamp()) + 7)
    limited = map_answer(answer(429, 42910000, "x", **{"X-RateLimit-Reset": reset}), Op.READ, NOW)
    assert isinstance(limited, RateLimited) and limited.retry_after == 7
    assert retry_after_seconds({"Retry-After": "3"}, NOW) == 3
    far = str(int(NOW.timestamp()) + 3600)  # clocks disagree: do not wait an hour
    assert retry_after_seconds({"X-RateLimit-Reset": far}, NOW) is None
    assert retry_after_seconds({"X-RateLimit-Reset": "soon"}, NOW) is None
    policy = RetryPolicy(backoff_base=0.5, backoff_max=8, rate_limit_max_wait=30)
    assert policy.backoff(1, RateLimited("x", 7.0)) == 7
    assert 0.25 <= policy.backoff(1) <= 0.5 and 4 <= policy.backoff(9) <= 8


def api_error(status: int, body: str, headers: dict[str, str] | None = None) -> APIError:
    response = requests.Response()
    response.status_code = status
    response._content = body.encode()
    response.headers.update(headers or {})
    return APIError(body, requests.HTTPError(response=response))  # type: ignore[no-untyped-call]


def test_sdk_and_transport_exceptions_become_typed_errors() -> None:
    body = json.dumps({"code": 40010001, "message": "client_order_id must be unique"})
    duplicate = map_exception(api_error(422, body), Op.SUBMIT, NOW, "cid-9")  # type: ignore[arg-type]
    assert isinstance(duplicate, DuplicateClientOrderId) and duplicate.client_order_id == "cid-9"
    gateway = map_exception(api_error(504, "<html><h1>504</h1></html>"), Op.SUBMIT, NOW)
    assert isinstance(gateway, AmbiguousOutcome) and is_transient(gateway)
    timeout = map_exception(requests.ReadTimeout("read timed out"), Op.SUBMIT, NOW)
    assert isinstance(timeout, AmbiguousOutcome)
    reset = map_exception(requests.ConnectionError("aborted"), Op.SUBMIT, NOW)
    assert isinstance(reset, ConnectionFailed) and isinstance(reset, BrokerUnavailable)
    assert is_transient(reset)
    auth = map_exception(api_error(401, '{"code":40110000,"message":"no"}'), Op.READ, NOW)
    assert isinstance(auth, BrokerUnavailable) and not is_transient(auth)
    odd = map_exception(ValueError("Expecting value"), Op.SUBMIT, NOW)
    assert isinstance(odd, AmbiguousOutcome)


def frame(event: str, filled: str, qty: str | None, execution: str, **extra: Any) -> dict[str, Any]:
    status = "filled" if filled == "10" else "partially_filled"
    data = {
        "event": event,
        "execution_id": execution,
        "timestamp": "2025-06-02T14:01:00Z",
        "price": "191.5234",
        "order": order(status=status, filled_qty=filled, filled_avg_price="191.5"),
        **extra,
    }
    if qty is not None:
        data["qty"] = qty
    return data


def fills(frames: list[dict[str, Any]]) -> list[tuple[str, Decimal] | None]:
    tracker, clock = FillTracker(), SimClock(NOW)
    out: list[tuple[str, Decimal] | None] = []
    for data in frames:
        event = event_from_frame(data, tracker, clock)
        out.append(
            None
            if event is None or event.fill is None
            else (event.fill.execution_id, event.fill.qty)
        )
    return out


def fid(cum: str) -> str:
    """The fill's identity: the order's id and its filled quantity after the execution."""
    return fill_identity(str(order()["id"]), Decimal(cum))


def test_fills_per_execution_deduplicated_and_price_exact() -> None:
    a = frame("partial_fill", "4", "4", "e1")
    assert fills([a, a, frame("fill", "10", "6", "e2")]) == [
        (fid("4"), Decimal(4)),
        None,  # the same execution twice: dropped whole
        (fid("10"), Decimal(6)),
    ]
    # The same execution again under another execution_id: still one fill.
    assert fills([a, frame("partial_fill", "4", "4", "e1-again")]) == [(fid("4"), Decimal(4)), None]
    event = event_from_frame(a, FillTracker(), SimClock(NOW))
    assert event is not None and event.fill is not None
    assert event.fill.price == Decimal("191.5234") and event.timestamp == NOW + timedelta(minutes=1)


def test_cumulative_qty_missing_and_late_executions() -> None:
    cumulative = [frame("partial_fill", "4", "4", "e1"), frame("fill", "10", "10", "e2")]
    assert fills(cumulative) == [(fid("4"), Decimal(4)), (fid("10"), Decimal(6))]
    missed = [frame("partial_fill", "8", "4", "e2"), frame("fill", "10", "2", "e3")]
    # e1 (cumulative 4) is left to REST, whose activity gets identity fid("4")
    assert fills(missed) == [(fid("8"), Decimal(4)), (fid("10"), Decimal(2))]
    late = [frame("partial_fill", "8", "4", "e2"), frame("partial_fill", "4", "4", "e1")]
    assert fills(late) == [(fid("8"), Decimal(4)), (fid("4"), Decimal(4))]
    no_qty = [frame("partial_fill", "4", None, "e1"), frame("fill", "10", None, "e2")]
    assert fills(no_qty) == [(fid("4"), Decimal(4)), (fid("10"), Decimal(6))]
    # An order that says nothing filled cannot name the execution: left to REST.
    assert fills([frame("partial_fill", "0", "4", "e1")]) == [None]


def test_unknown_event_keeps_its_order_and_non_fill_events_carry_no_fill() -> None:
    event = event_from_frame(
        {"event": "order_teleported", "order": order(status="weird")}, FillTracker(), SimClock(NOW)
    )
    assert event is not None and event.kind is K.RESTATED and event.fill is None
    assert event.order.raw_status == "weird" and event.timestamp == NOW  # no time: the clock's


def test_bars_from_stream_and_rest_are_on_the_grid() -> None:
    stamp = msgpack.Timestamp.from_datetime(NOW)
    bar = bar_from_json(
        "AAPL",
        {
            "T": "b",
            "S": "AAPL",
            "o": 191.5234,
            "h": 192.0,
            "l": 191.1,
            "c": 191.75,
            "v": 1200,
            "t": stamp,
        },
    )
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (
        Decimal("191.5234"),
        Decimal("192.0000"),
        Decimal("191.1000"),
        Decimal("191.7500"),
        1200,
    )
    assert bar.start == NOW and bar.size == timedelta(minutes=1)
    rest = bar_from_json(
        "AAPL", {"t": "2025-06-02T14:00:00Z", "o": 1, "h": 1, "l": 1, "c": 1, "v": 5}
    )
    assert rest.start == NOW and rest.open == Decimal("1.0000")
    assert csv_line(bar) == "2025-06-02T10:00:00-04:00,191.5234,192.0000,191.1000,191.7500,1200\n"
    assert timeframe_size("5Min") == timedelta(minutes=5) and timeframe_size("1Day") == timedelta(
        days=1
    )
    with pytest.raises(ValueError):
        timeframe_size("1Week")
