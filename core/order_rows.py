"""Order rows and order models: adopting a broker order, rebuilding a model from the
ledger, the broker-wins override, recording a fill. Helpers of core.order_tracker."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from loguru import logger

from core.broker import BrokerEventKind
from core.domain import (
    BrokerOrderId,
    ClientOrderId,
    Fill,
    OrderRole,
    OrderSnapshot,
    OrderStatus,
)
from core.ledger import EventSource, FillRow, OrderRow, UnitOfWork
from core.orders import OrderModel, Transition

K = BrokerEventKind
S = OrderStatus
CLIENT_ID_COLUMN = 128  # orders.client_order_id (migration 0002); Alpaca allows 128
NEVER_REACHED = "never reached the broker"
# A snapshot status and the stream event kind that reports it.
STATUS_KIND: dict[OrderStatus, BrokerEventKind] = {
    S.SUBMITTED: K.PENDING_NEW,
    S.ACCEPTED: K.NEW,
    S.PARTIALLY_FILLED: K.PARTIAL_FILL,
    S.FILLED: K.FILL,
    S.PENDING_CANCEL: K.PENDING_CANCEL,
    S.CANCELED: K.CANCELED,
    S.EXPIRED: K.EXPIRED,
    S.REJECTED: K.REJECTED,
    S.REPLACED: K.REPLACED,
}


def fill_from_row(row_fill: object, order: OrderRow) -> Fill:
    assert isinstance(row_fill, FillRow)
    return Fill(
        execution_id=row_fill.execution_id,  # type: ignore[arg-type]
        broker_order_id=BrokerOrderId(order.broker_order_id or ""),
        client_order_id=ClientOrderId(order.client_order_id),
        symbol=row_fill.symbol,  # type: ignore[arg-type]
        side=row_fill.side,
        qty=row_fill.qty,
        price=row_fill.price,
        timestamp=row_fill.at,
        commission=row_fill.commission,
    )


def adopt_row(
    uow: UnitOfWork, account_id: int, snapshot: OrderSnapshot, source: EventSource, now: datetime
) -> OrderRow | None:
    """An order we did not place (broker UI, another tool) or a broker replacement."""
    if len(snapshot.client_order_id) > CLIENT_ID_COLUMN:
        logger.error("cannot adopt order {}: client id too long", snapshot.broker_order_id)
        return None
    role, parent = OrderRole.EXTERNAL, None
    if snapshot.replaces is not None:
        old = uow.orders.by_broker_order_id(snapshot.replaces)
        if old is not None:
            role, parent = old.role, old.parent_order_id
    row = uow.add(
        OrderRow(
            account_id=account_id,
            client_order_id=snapshot.client_order_id,
            broker_order_id=snapshot.broker_order_id,
            symbol=snapshot.symbol,
            side=snapshot.side,
            order_type=snapshot.order_type,
            time_in_force=snapshot.time_in_force,
            qty=snapshot.qty,
            limit_price=snapshot.limit_price,
            stop_price=snapshot.stop_price,
            trail_percent=snapshot.trail_percent,
            role=role,
            status=S.SUBMITTED,
            filled_qty=Decimal(0),
            parent_order_id=parent,
            submitted_at=snapshot.created_at or now,
            created_at=snapshot.created_at or now,
            updated_at=now,
        )
    )
    uow.order_events.record(
        row.id,
        kind="adopted",
        source=source,
        to_status=S.SUBMITTED,
        detail={"broker_order_id": snapshot.broker_order_id, "role": role.value},
        at=now,
    )
    return row


def rebuild_model(uow: UnitOfWork, row: OrderRow) -> OrderModel:
    """The order's model in its recorded status with its recorded fills."""
    model = OrderModel.restore(
        client_order_id=ClientOrderId(row.client_order_id),
        symbol=row.symbol,  # type: ignore[arg-type]
        side=row.side,
        qty=row.qty,
        status=row.status,
        broker_order_id=BrokerOrderId(row.broker_order_id) if row.broker_order_id else None,
        fills=[fill_from_row(fill_row, row) for fill_row in uow.fills.for_order(row.id)],
    )
    model.reject_reason = row.reject_reason
    return model


def override_transition(
    row: OrderRow, target: OrderStatus, cause: str, at: datetime
) -> list[Transition]:
    """The broker wins: a transition to its status that the table could not make."""
    if target in (S.PENDING_SUBMIT, S.SUBMITTED) or target is row.status:
        return []
    logger.warning(
        "order {}: broker says {}, ledger had {}", row.client_order_id, target, row.status
    )
    return [
        Transition(
            client_order_id=ClientOrderId(row.client_order_id),
            broker_order_id=BrokerOrderId(row.broker_order_id) if row.broker_order_id else None,
            from_status=row.status,
            to_status=target,
            cause=cause,
            at=at,
        )
    ]


def add_fill(uow: UnitOfWork, row: OrderRow, fill: Fill) -> bool:
    """Record a fill. The order's model is rebuilt from its recorded fills and refuses
    a known execution id, and snapshots skip fills already in the ledger, so a plain
    insert suffices (this is the fill -> protection hot path; the unique index still
    guards the impossible case)."""
    uow.session.add(
        FillRow(
            order_id=row.id,
            execution_id=fill.execution_id,
            symbol=fill.symbol,
            side=fill.side,
            qty=fill.qty,
            price=fill.price,
            commission=fill.commission,
            at=fill.timestamp,
        )
    )
    return True


__all__ = [
    "CLIENT_ID_COLUMN",
    "NEVER_REACHED",
    "STATUS_KIND",
    "add_fill",
    "adopt_row",
    "fill_from_row",
    "override_transition",
    "rebuild_model",
]
