"""Order rows and order models: finding an order's row, adopting a broker order, the
models kept per order and rebuilt from the ledger, the broker-wins override. Helpers of
core.order_tracker (its writes of fills, events and intents are in core.order_writes)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from loguru import logger
from sqlalchemy import bindparam, select

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
from core.order_views import OrderView
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


# Built once: the stream's every event looks its order up (the fill -> stop hot path).
_BY_CLIENT_ID = select(OrderRow).where(OrderRow.client_order_id == bindparam("id"))
_BY_BROKER_ID = select(OrderRow).where(OrderRow.broker_order_id == bindparam("id"))


def find_row(
    uow: UnitOfWork, client_order_id: str, broker_order_id: str | None = None
) -> OrderRow | None:
    """The order's row by client order id, else by broker order id."""
    row = uow.session.scalars(_BY_CLIENT_ID, {"id": client_order_id}).one_or_none()
    if row is None and broker_order_id is not None:
        row = uow.session.scalars(_BY_BROKER_ID, {"id": broker_order_id}).one_or_none()
    return row


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


class OrderModels:
    """The tracker's state machine per order (by client order id): the cached one while
    it still matches its row, else rebuilt from the ledger."""

    def __init__(self) -> None:
        self._models: dict[str, OrderModel] = {}

    def of(self, uow: UnitOfWork, row: OrderRow) -> OrderModel:
        cached = self._models.get(row.client_order_id)
        if (
            cached is not None
            and cached.status is row.status
            and cached.filled_qty == row.filled_qty
            and cached.qty == row.qty
        ):
            return cached
        model = rebuild_model(uow, row)
        self._models[row.client_order_id] = model
        return model

    def forced(self, uow: UnitOfWork, row: OrderRow, status: OrderStatus) -> OrderModel:
        """A model in `status`, which the table could not reach (the broker wins)."""
        self.drop(row.client_order_id)
        model = self.of(uow, row)
        model.force_status(status)
        return model

    def put(self, client_order_id: str, model: OrderModel) -> None:
        self._models[client_order_id] = model

    def drop(self, client_order_id: str) -> None:
        self._models.pop(client_order_id, None)

    def settle(self, view: OrderView) -> None:
        """After a commit: a cached model that disagrees with the order is dropped."""
        model = self._models.get(view.client_order_id)
        if model is not None and (
            model.status is not view.status or model.filled_qty != view.filled_qty
        ):
            self.drop(view.client_order_id)

    def clear(self) -> None:
        self._models.clear()


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


__all__ = [
    "CLIENT_ID_COLUMN",
    "NEVER_REACHED",
    "STATUS_KIND",
    "OrderModels",
    "adopt_row",
    "fill_from_row",
    "find_row",
    "override_transition",
    "rebuild_model",
]
