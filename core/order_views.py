"""Read-only views of orders (safe to keep after their unit of work) and the domain
events an order's transitions announce."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from core.domain import (
    BrokerOrderId,
    ClientOrderId,
    Fill,
    OrderRole,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from core.events import (
    DomainEvent,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderPartiallyFilled,
    OrderRejected,
)
from core.ledger import OrderRow
from core.orders import Transition

S = OrderStatus


@dataclass(frozen=True, slots=True)
class OrderView:
    id: int
    client_order_id: ClientOrderId
    broker_order_id: BrokerOrderId | None
    symbol: str
    side: Side
    order_type: OrderType
    time_in_force: TimeInForce
    qty: Decimal
    filled_qty: Decimal
    avg_fill_price: Decimal | None
    status: OrderStatus
    role: OrderRole
    draft_id: int | None
    parent_order_id: int | None
    replaces_order_id: int | None
    stop_price: Decimal | None
    limit_price: Decimal | None
    trail_percent: Decimal | None
    extended_hours: bool
    reject_reason: str | None
    created_at: datetime
    submitted_at: datetime | None
    closed_at: datetime | None

    @classmethod
    def of(cls, row: OrderRow) -> OrderView:
        return cls(
            id=row.id,
            client_order_id=ClientOrderId(row.client_order_id),
            broker_order_id=BrokerOrderId(row.broker_order_id) if row.broker_order_id else None,
            symbol=row.symbol,
            side=row.side,
            order_type=row.order_type,
            time_in_force=row.time_in_force,
            qty=row.qty,
            filled_qty=row.filled_qty,
            avg_fill_price=row.avg_fill_price,
            status=row.status,
            role=row.role,
            draft_id=row.draft_id,
            parent_order_id=row.parent_order_id,
            replaces_order_id=row.replaces_order_id,
            stop_price=row.stop_price,
            limit_price=row.limit_price,
            trail_percent=row.trail_percent,
            extended_hours=row.extended_hours,
            reject_reason=row.reject_reason,
            created_at=row.created_at,
            submitted_at=row.submitted_at,
            closed_at=row.closed_at,
        )

    @property
    def remaining_qty(self) -> Decimal:
        return self.qty - self.filled_qty

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    @property
    def is_live(self) -> bool:
        """Could still trade: sent or about to be (PENDING_SUBMIT counts: it may be out)."""
        return not self.status.is_terminal


@dataclass(frozen=True, slots=True)
class TrackOutcome:
    """What one tracker step did to one order."""

    order: OrderView
    previous: OrderStatus
    transitions: tuple[Transition, ...]
    new_fills: tuple[Fill, ...]
    adopted: bool = False
    staged: object | None = None  # what a fill hook prepared in the same transaction

    @property
    def changed(self) -> bool:
        return bool(self.transitions) or bool(self.new_fills) or self.adopted


def order_events_for(account: str, outcome: TrackOutcome) -> list[DomainEvent]:
    """One domain event per transition worth telling (the outbox de-duplicates)."""
    view = outcome.order
    filled = view.filled_qty - sum((f.qty for f in outcome.new_fills), Decimal(0))
    events: list[DomainEvent] = []
    for transition in outcome.transitions:
        if transition.fill is not None:
            filled += transition.fill.qty
        common = {
            "at": transition.at,
            "account": account,
            "client_order_id": view.client_order_id,
            "broker_order_id": view.broker_order_id,
            "symbol": view.symbol,
            "side": view.side,
            "role": view.role,
            "qty": view.qty,
            "filled_qty": max(filled, Decimal(0)),
            "avg_fill_price": view.avg_fill_price,
            "order_type": view.order_type,
            "stop_price": view.stop_price,
        }
        target = transition.to_status
        if transition.fill is not None or (target is S.FILLED and transition.changes_status):
            cls = OrderFilled if target is S.FILLED else OrderPartiallyFilled
            events.append(cls(**common))  # type: ignore[arg-type]
        elif not transition.changes_status:
            continue
        elif target is S.ACCEPTED:
            events.append(OrderAccepted(**common))  # type: ignore[arg-type]
        elif target in (S.CANCELED, S.EXPIRED):
            reason = "expired" if target is S.EXPIRED else None
            events.append(OrderCanceled(**common, reason=reason))  # type: ignore[arg-type]
        elif target is S.REJECTED:
            events.append(OrderRejected(**common, reason=view.reject_reason))  # type: ignore[arg-type]
    return events


__all__ = ["OrderView", "TrackOutcome", "order_events_for"]
