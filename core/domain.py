"""Domain value types: money, prices, quantities, ids, orders and fills.

Everything here is immutable. Money, prices and quantities are `Decimal`; a float is
refused at the boundary because it would silently carry binary rounding into the books.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum
from typing import NewType

from core.clock import ensure_aware

# Distinct id types: a client order id (ours, deterministic) must never be passed where the
# broker's order id is expected, and vice versa.
ClientOrderId = NewType("ClientOrderId", str)
BrokerOrderId = NewType("BrokerOrderId", str)
ExecutionId = NewType("ExecutionId", str)
DraftId = NewType("DraftId", int)
IntentId = NewType("IntentId", int)
AccountName = NewType("AccountName", str)
Symbol = NewType("Symbol", str)

PENNY = Decimal("0.01")
SUB_PENNY = Decimal("0.0001")
ONE_DOLLAR = Decimal("1")
ZERO = Decimal("0")


class MoneyError(ValueError):
    """A value cannot be used as a price, quantity or amount of money."""


def to_decimal(value: Decimal | int | str) -> Decimal:
    """Exact conversion; floats are refused (convert them with `Decimal(str(x))` knowingly)."""
    if isinstance(value, (bool, float)):
        raise MoneyError(f"refusing float/bool {value!r}: money and prices are Decimal")
    try:
        result = value if isinstance(value, Decimal) else Decimal(value)
    except (InvalidOperation, ValueError) as exc:
        raise MoneyError(f"not a number: {value!r}") from exc
    if not result.is_finite():
        raise MoneyError(f"not a finite number: {value!r}")
    return result


def tick_size(price: Decimal) -> Decimal:
    """US equities: 0.01 at or above $1, 0.0001 below (sub-penny is rejected above $1)."""
    return PENNY if price >= ONE_DOLLAR else SUB_PENNY


class TickRounding(StrEnum):
    NEAREST = "nearest"
    DOWN = "down"
    UP = "up"


_ROUNDING = {
    TickRounding.NEAREST: ROUND_HALF_UP,
    TickRounding.DOWN: ROUND_FLOOR,
    TickRounding.UP: ROUND_CEILING,
}


def round_to_tick(price: Decimal, mode: TickRounding = TickRounding.NEAREST) -> Decimal:
    """Round a price to the tick that applies to it.

    For a sell stop below the market, round DOWN (never tighter than asked); for a buy
    stop above the market, round UP.
    """
    price = to_decimal(price)
    tick = tick_size(price)
    rounded = (price / tick).quantize(Decimal(1), rounding=_ROUNDING[mode]) * tick
    # Rounding can cross the $1 boundary (0.99995 -> 1.0000): re-quantize with the new tick.
    return rounded.quantize(tick_size(rounded), rounding=_ROUNDING[mode])


def is_on_tick(price: Decimal) -> bool:
    return price == price.quantize(tick_size(price), rounding=ROUND_FLOOR)


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"
    TRAILING_STOP = "trailing_stop"


class TimeInForce(StrEnum):
    DAY = "day"
    GTC = "gtc"


class OrderStatus(StrEnum):
    """Our order lifecycle (DESIGN.md section 3); adapters map broker statuses onto it."""

    PENDING_SUBMIT = "pending_submit"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    PENDING_CANCEL = "pending_cancel"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    REPLACED = "replaced"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES

    @property
    def is_working(self) -> bool:
        return not self.is_terminal and self is not OrderStatus.PENDING_SUBMIT


TERMINAL_STATUSES = frozenset(
    {
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.REJECTED,
        OrderStatus.EXPIRED,
        OrderStatus.REPLACED,
    }
)


class OrderRole(StrEnum):
    """Why an order exists; protection logic depends on it."""

    ENTRY = "entry"
    PROTECTION = "protection"
    EXIT = "exit"
    FLATTEN = "flatten"
    EXTERNAL = "external"


class Regime(StrEnum):
    FORMING = "forming"
    TREND_UP = "trend_up"
    TREND_DOWN = "trend_down"
    RANGE = "range"
    EVENT = "event"


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """What we ask a broker to place."""

    client_order_id: ClientOrderId
    symbol: Symbol
    side: Side
    qty: Decimal
    order_type: OrderType
    time_in_force: TimeInForce = TimeInForce.DAY
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    trail_percent: Decimal | None = None
    extended_hours: bool = False

    def __post_init__(self) -> None:
        if self.qty <= 0:
            raise MoneyError(f"order quantity must be positive, got {self.qty}")
        needs_stop = self.order_type in (OrderType.STOP, OrderType.STOP_LIMIT)
        needs_limit = self.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
        if needs_stop and self.stop_price is None:
            raise MoneyError(f"{self.order_type} order needs a stop price")
        if needs_limit and self.limit_price is None:
            raise MoneyError(f"{self.order_type} order needs a limit price")
        if self.order_type is OrderType.TRAILING_STOP and self.trail_percent is None:
            raise MoneyError("trailing stop needs a trail percent")
        if self.trail_percent is not None and not (0 < self.trail_percent < 100):
            raise MoneyError(f"trail percent must be in (0, 100), got {self.trail_percent}")
        for name in ("limit_price", "stop_price"):
            price = getattr(self, name)
            if price is not None and (price <= 0 or not is_on_tick(price)):
                raise MoneyError(f"{name} {price} is not a positive price on the tick")


@dataclass(frozen=True, slots=True)
class OrderSnapshot:
    """The broker's view of one order at one instant."""

    broker_order_id: BrokerOrderId
    client_order_id: ClientOrderId
    symbol: Symbol
    side: Side
    qty: Decimal
    order_type: OrderType
    time_in_force: TimeInForce
    status: OrderStatus
    filled_qty: Decimal = ZERO
    avg_fill_price: Decimal | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    trail_percent: Decimal | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    reject_reason: str | None = None
    replaced_by: BrokerOrderId | None = None
    replaces: BrokerOrderId | None = None
    raw_status: str | None = None
    # A trailing stop's high-water mark as the broker reports it (Alpaca `hwm`); its
    # current level is `stop_price` (Alpaca `stop_price`, IBKR `trailStopPrice`).
    hwm: Decimal | None = None

    @property
    def remaining_qty(self) -> Decimal:
        return self.qty - self.filled_qty


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution. `execution_id` is unique forever; duplicates are dropped."""

    execution_id: ExecutionId
    broker_order_id: BrokerOrderId
    client_order_id: ClientOrderId
    symbol: Symbol
    side: Side
    qty: Decimal
    price: Decimal
    timestamp: datetime
    commission: Decimal = ZERO

    def __post_init__(self) -> None:
        ensure_aware(self.timestamp)
        if self.qty <= 0:
            raise MoneyError(f"fill quantity must be positive, got {self.qty}")
        if self.price <= 0:
            raise MoneyError(f"fill price must be positive, got {self.price}")


@dataclass(frozen=True, slots=True)
class Position:
    """A broker position. Negative qty is short (Centaur never opens shorts)."""

    symbol: Symbol
    qty: Decimal
    avg_entry_price: Decimal
    market_price: Decimal | None = None

    @property
    def market_value(self) -> Decimal | None:
        return None if self.market_price is None else self.market_price * self.qty


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    account_id: str
    equity: Decimal
    cash: Decimal
    buying_power: Decimal
    currency: str = "USD"
    status: str = "active"
    extra: dict[str, str] = field(default_factory=dict)
