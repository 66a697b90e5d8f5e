"""How the order tracker writes order facts: fills, transitions with their events, intents.

The fill -> protection path writes, in one transaction and before the broker is called:
the fill, the entry's transition and its event, the protection intent and its event.
Through the repositories each of those is an ORM flush (they flush eagerly, to learn
ids), and the flushes were a third of the path's time. Here every new row is one
prepared Core INSERT; the order row itself is still changed through the ORM (its
`version` column guards against a stale writer) and reaches the database with the unit
of work's next flush, at the latest with its commit. Nothing is written outside the
caller's transaction, so all of it commits or rolls back together as before.

The functions mirror `OrderRepository.record_intent` and `.transition` and
`OrderEventRepository.record` column for column: the same values, the same timestamps
(the ledger clock, in UTC), the same version (1) for a new order.
tests/integration/test_engine_perf_writes.py compares the rows both ways write.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, insert

from core.domain import (
    TERMINAL_STATUSES,
    ClientOrderId,
    Fill,
    OrderRequest,
    OrderRole,
    OrderStatus,
)
from core.ledger import EventSource, FillRow, OrderEventRow, OrderRow, UnitOfWork
from core.ledger.types import to_money, to_utc
from core.order_views import OrderView
from core.orders import OrderModel, Transition

_ORDERS = cast(Table, OrderRow.__table__)
_INSERT_FILL = insert(cast(Table, FillRow.__table__))
_INSERT_EVENT = insert(cast(Table, OrderEventRow.__table__))
_INSERT_ORDER = insert(_ORDERS).returning(_ORDERS.c.id)


def _money(value: Decimal | None) -> Decimal | None:
    return None if value is None else to_money(value)


def add_fill(uow: UnitOfWork, row: OrderRow, fill: Fill) -> bool:
    """Record a fill. The order's model is rebuilt from its recorded fills and refuses
    a known execution id, and snapshots skip fills already in the ledger, so a plain
    insert suffices (the unique index still guards the impossible case)."""
    uow.session.connection().execute(
        _INSERT_FILL,
        {
            "created_at": uow.now(),
            "order_id": row.id,
            "execution_id": fill.execution_id,
            "symbol": fill.symbol,
            "side": fill.side,
            "qty": fill.qty,
            "price": fill.price,
            "commission": fill.commission,
            "at": fill.timestamp,
        },
    )
    return True


def record_event(
    uow: UnitOfWork,
    order_id: int,
    *,
    kind: str,
    source: EventSource,
    from_status: OrderStatus | None = None,
    to_status: OrderStatus | None = None,
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    """An `order_events` row (as `OrderEventRepository.record`)."""
    now = uow.now()
    uow.session.connection().execute(
        _INSERT_EVENT,
        {
            "created_at": now,
            "order_id": order_id,
            "at": now if at is None else to_utc(at),
            "kind": kind,
            "source": source,
            "from_status": from_status,
            "to_status": to_status,
            "detail": detail,
        },
    )


def apply_transition(
    uow: UnitOfWork,
    order: OrderRow,
    to_status: OrderStatus,
    *,
    kind: str,
    source: EventSource,
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    """Set the status (closing the order if terminal) and record the event (as
    `OrderRepository.transition`, minus its flush)."""
    moment = uow.now() if at is None else to_utc(at)
    from_status = order.status
    order.status = to_status
    order.updated_at = moment
    if to_status in TERMINAL_STATUSES and order.closed_at is None:
        order.closed_at = moment
    record_event(
        uow,
        order.id,
        kind=kind,
        source=source,
        from_status=from_status,
        to_status=to_status,
        detail=detail,
        at=moment,
    )


def insert_intent(
    uow: UnitOfWork,
    request: OrderRequest,
    *,
    account_id: int,
    role: OrderRole,
    draft_id: int | None = None,
    parent_order_id: int | None = None,
    replaces_order_id: int | None = None,
    order_ref: str | None = None,
) -> OrderView:
    """Write an order intent (PENDING_SUBMIT) and its "intent" event, before any broker
    call (as `OrderRepository.record_intent`); returns the new order's view."""
    moment = uow.now()
    view = OrderView(
        id=0,
        client_order_id=ClientOrderId(request.client_order_id),
        broker_order_id=None,
        symbol=request.symbol,
        side=request.side,
        order_type=request.order_type,
        time_in_force=request.time_in_force,
        qty=to_money(request.qty),
        filled_qty=Decimal(0),
        avg_fill_price=None,
        status=OrderStatus.PENDING_SUBMIT,
        role=role,
        draft_id=draft_id,
        parent_order_id=parent_order_id,
        replaces_order_id=replaces_order_id,
        stop_price=_money(request.stop_price),
        limit_price=_money(request.limit_price),
        trail_percent=_money(request.trail_percent),
        extended_hours=request.extended_hours,
        reject_reason=None,
        created_at=moment,
        submitted_at=None,
        closed_at=None,
    )
    values = {
        "created_at": moment,
        "updated_at": moment,
        "account_id": account_id,
        "draft_id": draft_id,
        "client_order_id": view.client_order_id,
        "broker_order_id": None,
        "symbol": view.symbol,
        "side": view.side,
        "order_type": view.order_type,
        "time_in_force": view.time_in_force,
        "qty": view.qty,
        "limit_price": view.limit_price,
        "stop_price": view.stop_price,
        "trail_percent": view.trail_percent,
        "extended_hours": view.extended_hours,
        "role": role,
        "status": view.status,
        "filled_qty": view.filled_qty,
        "parent_order_id": parent_order_id,
        "replaces_order_id": replaces_order_id,
        "order_ref": order_ref,
        "version": 1,  # what the ORM's version counter starts at
    }
    order_id = uow.session.connection().execute(_INSERT_ORDER, values).scalar_one()
    record_event(
        uow,
        order_id,
        kind="intent",
        source=EventSource.ENGINE,
        to_status=OrderStatus.PENDING_SUBMIT,
        at=moment,
    )
    return replace(view, id=order_id)


def write_transitions(
    uow: UnitOfWork,
    row: OrderRow,
    model: OrderModel,
    transitions: Iterable[Transition],
    source: EventSource,
) -> tuple[Fill, ...]:
    """Record an order's transitions (their fills, events and the row's new figures) in
    the caller's unit of work; returns the fills that were new."""
    transitions = list(transitions)
    new_fills = [t.fill for t in transitions if t.fill is not None and add_fill(uow, row, t.fill)]
    if model.filled_qty > row.filled_qty or new_fills:
        row.filled_qty = model.filled_qty
        row.avg_fill_price = model.avg_fill_price
    if model.reject_reason and not row.reject_reason:
        row.reject_reason = model.reject_reason
    for transition in transitions:
        fill = transition.fill
        detail = None
        if fill is not None:
            detail = {"execution_id": fill.execution_id, "qty": fill.qty, "price": fill.price}
        if row.broker_order_id is None and transition.broker_order_id is not None:
            row.broker_order_id = transition.broker_order_id
        if transition.changes_status:
            apply_transition(
                uow,
                row,
                transition.to_status,
                kind=transition.cause,
                source=source,
                detail=detail,
                at=transition.at,
            )
        else:
            record_event(
                uow,
                row.id,
                kind=transition.cause,
                source=source,
                from_status=transition.from_status,
                to_status=transition.to_status,
                detail=detail,
                at=transition.at,
            )
    if model.broker_order_id is not None and row.broker_order_id is None:
        row.broker_order_id = model.broker_order_id
    uow.flush()  # the order row's UPDATE (its version checked) in the same transaction
    return tuple(new_fills)


__all__ = [
    "add_fill",
    "apply_transition",
    "insert_intent",
    "record_event",
    "write_transitions",
]
