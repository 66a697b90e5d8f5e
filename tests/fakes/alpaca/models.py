"""State of the fake broker: orders, executions, positions, and the API error type."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

ZERO = Decimal(0)

OPEN_STATUSES = frozenset(
    {
        "new",
        "partially_filled",
        "accepted",
        "pending_new",
        "pending_cancel",
        "pending_replace",
        "held",
        "accepted_for_bidding",
        "calculated",
        "done_for_day",
        "stopped",
    }
)
"""Statuses `GET /v2/orders?status=open` returns (everything not yet final)."""

# Statuses in which the order can trade (pending_cancel / pending_replace still can:
# the venue may fill it before the cancel or replace lands).
WORKING_STATUSES = frozenset({"new", "partially_filled", "pending_cancel", "pending_replace"})

ASSET_NAMESPACE = uuid.UUID("b0b6dd9d-8b9b-48a9-ba46-b9d54906e415")


class AlpacaAPIError(Exception):
    """An error answered as `{"code": <8 digits>, "message": ...}` with an HTTP status."""

    def __init__(
        self, status: int, code: int, message: str, extra: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        return {**self.extra, "code": self.code, "message": self.message}


def not_found(message: str = "order not found") -> AlpacaAPIError:
    return AlpacaAPIError(404, 40410000, message)


def unprocessable(message: str, code: int = 42210000) -> AlpacaAPIError:
    return AlpacaAPIError(422, code, message)


def forbidden(message: str, extra: dict[str, Any] | None = None) -> AlpacaAPIError:
    return AlpacaAPIError(403, 40310000, message, extra)


def asset_id_for(symbol: str) -> str:
    """A stable asset id per symbol (Alpaca's are random uuids; ours are uuid5)."""
    return str(uuid.uuid5(ASSET_NAMESPACE, symbol.upper()))


@dataclass
class FakeOrder:
    id: str
    client_order_id: str
    symbol: str
    side: str  # "buy" | "sell"
    type: str  # market | limit | stop | stop_limit | trailing_stop
    time_in_force: str
    qty: Decimal
    extended_hours: bool
    created_at: datetime
    status: str
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    trail_percent: Decimal | None = None
    trail_price: Decimal | None = None
    hwm: Decimal | None = None
    position_intent: str | None = None
    filled_qty: Decimal = ZERO
    filled_notional: Decimal = ZERO
    updated_at: datetime | None = None
    submitted_at: datetime | None = None
    filled_at: datetime | None = None
    expired_at: datetime | None = None
    canceled_at: datetime | None = None
    failed_at: datetime | None = None
    replaced_at: datetime | None = None
    replaced_by: str | None = None
    replaces: str | None = None
    triggered: bool = False
    """A stop / stop_limit / trailing_stop whose trigger was hit (now market / limit)."""
    expires_at: datetime | None = None
    """When a `day` order expires (its session's close, or 20:00 ET if extended)."""
    live: bool = False
    """Acknowledged by the venue (was `new`): only live orders can trade."""
    cancel_requested: bool = False
    replacement_id: str | None = None
    """While pending_replace: the id of the order that will replace this one."""

    @property
    def asset_id(self) -> str:
        return asset_id_for(self.symbol)

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.filled_qty

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def can_trade(self) -> bool:
        return self.status in WORKING_STATUSES

    @property
    def filled_avg_price(self) -> Decimal | None:
        if self.filled_qty == 0:
            return None
        return self.filled_notional / self.filled_qty

    def touch(self, now: datetime) -> None:
        self.updated_at = now


@dataclass(frozen=True)
class Execution:
    id: str
    order_id: str
    symbol: str
    side: str
    qty: Decimal
    price: Decimal
    timestamp: datetime
    cum_qty: Decimal
    leaves_qty: Decimal
    order_status: str  # "partially_filled" | "filled"

    @property
    def is_partial(self) -> bool:
        return self.order_status != "filled"


@dataclass
class PositionState:
    symbol: str
    qty: Decimal = ZERO  # signed: negative is short
    cost_basis: Decimal = ZERO  # signed, qty * avg entry

    @property
    def avg_entry_price(self) -> Decimal:
        if self.qty == 0:
            return ZERO
        return self.cost_basis / self.qty


@dataclass
class TradeEventRecord:
    """One trade_updates event, as emitted (before any stream fault is applied)."""

    event: str
    timestamp: datetime
    order: dict[str, Any]
    execution_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    price: Decimal | None = None
    qty: Decimal | None = None
    position_qty: Decimal | None = None
