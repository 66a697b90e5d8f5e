"""The Broker protocol: what core asks of every broker (Alpaca, IBKR, SimBroker).

Core never imports an adapter; adapters implement this protocol and map their broker's
statuses, errors and capabilities onto the types here. Every method is a network call in
a real adapter, so every method is async and every failure is one of the typed errors
below (never a raw SDK exception).

Semantics that callers rely on:
- `submit` is idempotent only through `client_order_id`: the broker refuses a reused id
  (`DuplicateClientOrderId`), even after the first order is long gone.
- A timeout or 5xx on submit/replace is `AmbiguousOutcome`: the order may exist. Resolve
  it with `get_order_by_client_id`, never by resending blindly.
- `cancel` is a REQUEST. Returning means the broker took the request; the order is
  canceled only when a `canceled` event arrives or a query says so. A fill can win.
- `replace` returns the NEW order (new broker id, `replaces` -> old id), like Alpaca. It
  is also only a request: the old order may fill first (`order_replace_rejected`).
- `events()` is a live stream: events missed while disconnected are not replayed.
  Reconcile over the query methods after any gap.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from core.clock import ensure_aware
from core.domain import (
    AccountSnapshot,
    BrokerOrderId,
    ClientOrderId,
    Fill,
    OrderRequest,
    OrderSnapshot,
    Position,
    TimeInForce,
)

if TYPE_CHECKING:
    from core.capabilities import CapabilityMatrix


class BrokerEventKind(StrEnum):
    """Order-update kinds, named as Alpaca's trade_updates events (IBKR maps onto them)."""

    PENDING_NEW = "pending_new"
    NEW = "new"  # live at the venue
    ACCEPTED = "accepted"  # taken but waiting (market closed, queued for the open)
    PARTIAL_FILL = "partial_fill"
    FILL = "fill"
    PENDING_CANCEL = "pending_cancel"
    CANCELED = "canceled"
    EXPIRED = "expired"
    DONE_FOR_DAY = "done_for_day"
    REJECTED = "rejected"
    PENDING_REPLACE = "pending_replace"
    REPLACED = "replaced"
    ORDER_REPLACE_REJECTED = "order_replace_rejected"
    ORDER_CANCEL_REJECTED = "order_cancel_rejected"
    # Informational kinds: they change nothing in our lifecycle but are worth a log line.
    HELD = "held"
    STOPPED = "stopped"
    SUSPENDED = "suspended"
    CALCULATED = "calculated"
    RESTATED = "restated"
    # A bust or correction rewrites history; core treats it as a broker inconsistency and
    # reconciles (filled quantity never decreases in our model).
    TRADE_BUST = "trade_bust"
    TRADE_CORRECT = "trade_correct"

    @property
    def is_fill(self) -> bool:
        return self in (BrokerEventKind.PARTIAL_FILL, BrokerEventKind.FILL)


@dataclass(frozen=True, slots=True)
class BrokerEvent:
    """One order update from the broker's stream: the order as of the event, plus the
    execution for fill kinds (adapters derive per-execution deltas; see BROKERS.md)."""

    kind: BrokerEventKind
    order: OrderSnapshot
    timestamp: datetime
    fill: Fill | None = None

    def __post_init__(self) -> None:
        ensure_aware(self.timestamp)
        if self.fill is not None and self.fill.broker_order_id != self.order.broker_order_id:
            raise ValueError(
                f"fill {self.fill.execution_id} belongs to {self.fill.broker_order_id}, "
                f"not to {self.order.broker_order_id}"
            )


# --- errors ------------------------------------------------------------------------------


class BrokerError(Exception):
    """Base of every error a Broker raises."""


class OrderRejected(BrokerError):
    """The broker refused the order (or the replace). Nothing was placed."""

    def __init__(
        self,
        reason: str,
        code: str | None = None,
        *,
        client_order_id: ClientOrderId | None = None,
    ) -> None:
        super().__init__(reason if code is None else f"{reason} (code {code})")
        self.reason = reason
        self.code = code
        self.client_order_id = client_order_id


class DuplicateClientOrderId(OrderRejected):
    """Alpaca 422 40010001 "client_order_id must be unique". After an ambiguous submit this
    usually means the first attempt succeeded: look the order up by client id."""


class InsufficientQty(OrderRejected):
    """Shares are missing or reserved by another open sell (Alpaca 403 40310000)."""


class InsufficientBuyingPower(OrderRejected):
    """Not enough buying power for a buy (Alpaca 403 40310000)."""


class WashTradeRejected(OrderRejected):
    """Opposite-side order on a symbol with a working order (Alpaca "potential wash trade
    detected. use complex orders")."""


class UnsupportedOrder(OrderRejected):
    """The broker does not take this order type / time in force / session combination, or
    the price is off the tick (Alpaca 422 validation). `core.capabilities.check` predicts
    these; seeing one means a caller skipped the check or the matrix is out of date."""


class NotFound(BrokerError):
    """No such order (Alpaca 404 40410000)."""


class RateLimited(BrokerError):
    """Too many requests (HTTP 429 / IBKR pacing). Retry after `retry_after` seconds."""

    def __init__(self, message: str = "rate limited", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AmbiguousOutcome(BrokerError):
    """Timeout or 5xx: the request may or may not have taken effect. For a submit, look
    the order up by client_order_id before doing anything else; never resend blindly."""

    def __init__(self, message: str, *, client_order_id: ClientOrderId | None = None) -> None:
        super().__init__(message)
        self.client_order_id = client_order_id


class BrokerUnavailable(BrokerError):
    """The broker cannot be reached (connection refused, gateway down, auth lost)."""


class NotCancelable(BrokerError):
    """The order can no longer be canceled (Alpaca 422 `order is already in "filled"
    state`): it is terminal. Query it to learn how it ended."""


class NotReplaceable(BrokerError):
    """The order cannot be replaced now (terminal, or accepted/pending_new/pending_cancel/
    pending_replace on Alpaca). Cancel and resubmit instead, or retry later."""


class BrokerInconsistency(BrokerError):
    """The broker told us something impossible (a fill beyond the order quantity, a trade
    bust, a terminal order changing its ending). Stop trusting the cache and reconcile."""


# --- the protocol ------------------------------------------------------------------------


@runtime_checkable
class Broker(Protocol):
    """One broker account. See the module docstring for the semantics callers rely on."""

    @property
    def name(self) -> str:
        """Adapter name, also the key into the capability matrix ("alpaca", "ibkr", "sim")."""
        ...

    @property
    def capabilities(self) -> CapabilityMatrix: ...

    async def submit(self, request: OrderRequest) -> OrderSnapshot: ...

    async def cancel(self, broker_order_id: BrokerOrderId) -> None:
        """Request a cancel. Raises NotFound, NotCancelable (already terminal)."""
        ...

    async def replace(
        self,
        broker_order_id: BrokerOrderId,
        *,
        qty: Decimal | None = None,
        stop_price: Decimal | None = None,
        limit_price: Decimal | None = None,
        trail_percent: Decimal | None = None,
        time_in_force: TimeInForce | None = None,
        client_order_id: ClientOrderId | None = None,
    ) -> OrderSnapshot:
        """Request a replace; returns the NEW order. Raises NotReplaceable, NotFound,
        OrderRejected (e.g. unchanged body), DuplicateClientOrderId, AmbiguousOutcome."""
        ...

    async def get_order(self, broker_order_id: BrokerOrderId) -> OrderSnapshot:
        """Raises NotFound."""
        ...

    async def get_order_by_client_id(
        self, client_order_id: ClientOrderId
    ) -> OrderSnapshot | None: ...

    async def list_orders(
        self, *, open_only: bool, since: datetime | None = None, limit: int = 500
    ) -> list[OrderSnapshot]:
        """Newest first. `since` filters on creation time (Alpaca's `after`)."""
        ...

    async def positions(self) -> list[Position]: ...

    async def account(self) -> AccountSnapshot: ...

    async def fills_since(self, since: datetime) -> list[Fill]:
        """Executions with timestamp >= since, oldest first."""
        ...

    def events(self) -> AsyncIterator[BrokerEvent]:
        """A new subscription to the order-update stream, starting now. Each call gets its
        own iterator; it ends when the broker is closed."""
        ...

    async def close(self) -> None: ...


__all__ = [
    "AmbiguousOutcome",
    "Broker",
    "BrokerError",
    "BrokerEvent",
    "BrokerEventKind",
    "BrokerInconsistency",
    "BrokerUnavailable",
    "DuplicateClientOrderId",
    "InsufficientBuyingPower",
    "InsufficientQty",
    "NotCancelable",
    "NotFound",
    "NotReplaceable",
    "OrderRejected",
    "RateLimited",
    "UnsupportedOrder",
    "WashTradeRejected",
]
