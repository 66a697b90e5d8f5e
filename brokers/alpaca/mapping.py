"""Alpaca JSON (the SDK's `raw_data=True` dicts) -> domain types.

We map dicts ourselves instead of using the SDK's pydantic models because those are
strict on enums: one status or event Alpaca adds tomorrow would raise inside the SDK and
lose the whole response. Here an unknown status is logged and mapped to a safe,
NON-terminal state (so reconcile looks at the order again), an unknown event becomes an
informational kind, and prices and quantities are `Decimal` built from the API's strings,
never through a float.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

from loguru import logger

from core.broker import BrokerError, BrokerEventKind
from core.clock import NEW_YORK
from core.domain import (
    ZERO,
    AccountSnapshot,
    BrokerOrderId,
    ClientOrderId,
    ExecutionId,
    Fill,
    OrderSnapshot,
    OrderStatus,
    OrderType,
    Position,
    Side,
    Symbol,
    TimeInForce,
)

S = OrderStatus
K = BrokerEventKind


class MappingError(BrokerError, ValueError):
    """An API object we cannot represent (missing id, unknown side or order type). A
    BrokerError, so callers that handle the protocol's errors handle this one too."""


# Alpaca status -> ours. A working status with filled_qty > 0 becomes PARTIALLY_FILLED
# (see `map_status`), so only the "nothing filled yet" reading is listed here.
STATUS_MAP: Mapping[str, OrderStatus] = MappingProxyType(
    {
        "pending_new": S.SUBMITTED,  # received by Alpaca, not yet acknowledged by the venue
        "pending_review": S.SUBMITTED,
        "accepted_for_bidding": S.SUBMITTED,
        "accepted": S.ACCEPTED,  # taken, waiting (market closed, queued for the open)
        "new": S.ACCEPTED,  # live at the venue
        "held": S.ACCEPTED,  # a waiting leg of an advanced order
        "pending_replace": S.ACCEPTED,  # unchanged until `replaced` or the replace fails
        "done_for_day": S.ACCEPTED,  # no more fills today; `expired` (or a new day) follows
        "stopped": S.ACCEPTED,  # a fill at a guaranteed price is coming
        "suspended": S.ACCEPTED,  # not tradable now; may resume
        "calculated": S.ACCEPTED,  # done for the day, settlement pending: not final yet
        "partially_filled": S.PARTIALLY_FILLED,
        "filled": S.FILLED,
        "pending_cancel": S.PENDING_CANCEL,
        "canceled": S.CANCELED,
        "expired": S.EXPIRED,
        "replaced": S.REPLACED,
        "rejected": S.REJECTED,
    }
)

# Anything we do not know must stay non-terminal: a terminal guess could drop protection
# of a position or forget a working order; a working guess only costs another look.
UNKNOWN_STATUS_FALLBACK = S.ACCEPTED

EVENT_MAP: Mapping[str, BrokerEventKind] = MappingProxyType({kind.value: kind for kind in K})
# An unknown event still carries the order as the broker sees it; RESTATED ("the order
# changed, look at it") is the informational kind that claims nothing more.
UNKNOWN_EVENT_FALLBACK = K.RESTATED

_ORDER_TYPES = {t.value: t for t in OrderType}
_TIFS = {t.value: t for t in TimeInForce}


# --- scalars -----------------------------------------------------------------------------


def dec(value: Any, field: str = "number") -> Decimal:
    """Exact Decimal from the API's string (or int). A float (the data API's JSON numbers)
    goes through `str`, which gives the shortest text that round-trips: the API's digits."""
    if isinstance(value, bool) or value is None:
        raise MappingError(f"{field}: expected a number, got {value!r}")
    try:
        result = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError) as exc:
        raise MappingError(f"{field}: not a number: {value!r}") from exc
    if not result.is_finite():
        raise MappingError(f"{field}: not a finite number: {value!r}")
    return result


def opt_dec(value: Any, field: str = "number") -> Decimal | None:
    return None if value is None or value == "" else dec(value, field)


def parse_ts(value: Any) -> datetime | None:
    """RFC 3339 (`Z`, offsets, nanoseconds) to aware UTC; None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    head, dot, rest = text.partition(".")
    if dot:  # datetime holds microseconds: keep 6 fractional digits, whatever follows
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[:digits][:6].ljust(6, '0')}{rest[digits:]}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        logger.warning("alpaca: unreadable timestamp {!r}", value)
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _required(data: Mapping[str, Any], key: str, what: str) -> str:
    value = data.get(key)
    if value is None or value == "":
        raise MappingError(f"{what} without {key}")
    return str(value)


# --- orders ------------------------------------------------------------------------------


_warned: set[str | None] = set()


def map_status(raw: str | None, filled_qty: Decimal = ZERO) -> OrderStatus:
    """Our status for Alpaca's; unknown strings are kept non-terminal and logged, as a
    warning the first time each (reconcile polls: the same order would flood the log)."""
    status = STATUS_MAP.get(raw or "")
    if status is None:
        log = logger.debug if raw in _warned else logger.warning
        _warned.add(raw)
        log(
            "alpaca: unknown order status {!r}: treated as working ({}), reconcile will look again",
            raw,
            UNKNOWN_STATUS_FALLBACK,
        )
        status = UNKNOWN_STATUS_FALLBACK
    if status in (S.SUBMITTED, S.ACCEPTED) and filled_qty > 0:
        return S.PARTIALLY_FILLED
    return status


def map_event(raw: str | None) -> BrokerEventKind:
    kind = EVENT_MAP.get(raw or "")
    if kind is None:
        logger.warning("alpaca: unknown trade_updates event {!r}: passed on as {}", raw, K.RESTATED)
        return UNKNOWN_EVENT_FALLBACK
    return kind


def _order_type(data: Mapping[str, Any]) -> OrderType:
    raw = data.get("type") or data.get("order_type")
    found = _ORDER_TYPES.get(str(raw))
    if found is None:
        raise MappingError(f"order {data.get('id')}: order type {raw!r} is not modelled")
    return found


def _tif(data: Mapping[str, Any]) -> TimeInForce:
    raw = str(data.get("time_in_force"))
    found = _TIFS.get(raw)
    if found is None:
        # opg/cls/ioc/fok (only on orders placed elsewhere) all end within the day.
        logger.warning("alpaca: order {} time_in_force {!r} read as day", data.get("id"), raw)
        return TimeInForce.DAY
    return found


def side_of(raw: Any, what: str) -> Side:
    try:
        return Side(str(raw))
    except ValueError:
        raise MappingError(f"{what}: side {raw!r} is not buy/sell") from None


def order_from_json(data: Mapping[str, Any]) -> OrderSnapshot:
    order_id = _required(data, "id", "order")
    filled = opt_dec(data.get("filled_qty"), "filled_qty") or ZERO
    qty = opt_dec(data.get("qty"), "qty")
    if qty is None:  # notional orders (never ours) have no qty until they fill
        qty = filled
    raw_status = data.get("status")
    return OrderSnapshot(
        broker_order_id=BrokerOrderId(order_id),
        client_order_id=ClientOrderId(str(data.get("client_order_id") or "")),
        symbol=Symbol(_required(data, "symbol", f"order {order_id}")),
        side=side_of(data.get("side"), f"order {order_id}"),
        qty=qty,
        order_type=_order_type(data),
        time_in_force=_tif(data),
        status=map_status(None if raw_status is None else str(raw_status), filled),
        filled_qty=filled,
        avg_fill_price=opt_dec(data.get("filled_avg_price"), "filled_avg_price"),
        limit_price=opt_dec(data.get("limit_price"), "limit_price"),
        stop_price=opt_dec(data.get("stop_price"), "stop_price"),
        trail_percent=opt_dec(data.get("trail_percent"), "trail_percent"),
        created_at=parse_ts(data.get("created_at")),
        updated_at=parse_ts(data.get("updated_at")),
        replaced_by=_opt_id(data.get("replaced_by")),
        replaces=_opt_id(data.get("replaces")),
        raw_status=None if raw_status is None else str(raw_status),
        # A trailing stop's high-water mark (None until it is active).
        hwm=opt_dec(data.get("hwm"), "hwm"),
    )


def _opt_id(value: Any) -> BrokerOrderId | None:
    return BrokerOrderId(str(value)) if value else None


# --- account, positions, fills -----------------------------------------------------------

_ACCOUNT_EXTRA = (
    "account_number",
    "portfolio_value",
    "long_market_value",
    "short_market_value",
    "daytrade_count",
    "daytrading_buying_power",
    "pattern_day_trader",
    "trading_blocked",
    "account_blocked",
    "trade_suspended_by_user",
    "shorting_enabled",
    "multiplier",
    "last_equity",
)


def account_from_json(data: Mapping[str, Any]) -> AccountSnapshot:
    return AccountSnapshot(
        account_id=_required(data, "id", "account"),
        equity=dec(data.get("equity"), "equity"),
        cash=dec(data.get("cash"), "cash"),
        buying_power=dec(data.get("buying_power"), "buying_power"),
        currency=str(data.get("currency") or "USD"),
        status=str(data.get("status") or "unknown").lower(),
        extra={k: str(data[k]) for k in _ACCOUNT_EXTRA if data.get(k) is not None},
    )


def position_from_json(data: Mapping[str, Any]) -> Position:
    symbol = _required(data, "symbol", "position")
    qty = dec(data.get("qty"), "qty")
    if str(data.get("side")) == "short" and qty > 0:
        qty = -qty  # the domain signs short positions
    return Position(
        symbol=Symbol(symbol),
        qty=qty,
        avg_entry_price=dec(data.get("avg_entry_price"), "avg_entry_price"),
        market_price=opt_dec(data.get("current_price"), "current_price"),
    )


def fill_identity(order_id: str, cum_qty: Decimal) -> ExecutionId:
    """The one identity of an execution, whether it came over trade_updates or as a FILL
    activity: the order's id and its cumulative filled quantity right after it.

    Both sources carry both (the activity's `order_id` / `cum_qty`; the event's order
    `id` / `filled_qty`), while nothing in Alpaca's docs or alpaca-py ties the stream's
    `execution_id` to the activity id. Every execution adds shares, so the cumulative
    quantity is strictly increasing per order: two executions of the same quantity, at
    the same price and in the same instant still get different identities."""
    oid = str(order_id).strip().lower()
    if not oid or cum_qty <= 0:
        raise MappingError(f"no fill identity for order {order_id!r} at cumulative {cum_qty}")
    cum = format(cum_qty.normalize(), "f")  # "20" from "20", "20.0" and "2E+1" alike
    return ExecutionId(f"alpaca:{oid}:{cum}")


def fill_from_activity(data: Mapping[str, Any], client_ids: Mapping[str, ClientOrderId]) -> Fill:
    """A FILL account activity. Activities carry the order id but not its client id:
    `client_ids` maps order id -> client id (unknown orders get an empty client id)."""
    activity_id = _required(data, "id", "fill activity")
    order_id = _required(data, "order_id", f"fill {activity_id}")
    stamp = parse_ts(data.get("transaction_time"))
    if stamp is None:
        raise MappingError(f"fill {activity_id} without a readable transaction_time")
    return Fill(
        execution_id=fill_identity(order_id, dec(data.get("cum_qty"), "cum_qty")),
        broker_order_id=BrokerOrderId(order_id),
        client_order_id=client_ids.get(order_id, ClientOrderId("")),
        symbol=Symbol(_required(data, "symbol", f"fill {activity_id}")),
        side=side_of(data.get("side"), f"fill {activity_id}"),
        qty=dec(data.get("qty"), "qty"),
        price=dec(data.get("price"), "price"),
        timestamp=stamp,
    )


# --- clock and calendar ------------------------------------------------------------------


def calendar_day_from_json(data: Mapping[str, Any]) -> tuple[date, datetime, datetime]:
    """`{"date": "2025-06-02", "open": "09:30", "close": "16:00"}` -> aware New York."""
    day = date.fromisoformat(_required(data, "date", "calendar day"))

    def at(key: str) -> datetime:
        text = _required(data, key, f"calendar {day}")
        return datetime.combine(day, time.fromisoformat(text), tzinfo=NEW_YORK)

    return day, at("open"), at("close")


__all__ = [
    "EVENT_MAP",
    "STATUS_MAP",
    "UNKNOWN_EVENT_FALLBACK",
    "UNKNOWN_STATUS_FALLBACK",
    "MappingError",
    "account_from_json",
    "calendar_day_from_json",
    "dec",
    "fill_from_activity",
    "fill_identity",
    "map_event",
    "map_status",
    "opt_dec",
    "order_from_json",
    "parse_ts",
    "position_from_json",
    "side_of",
]
