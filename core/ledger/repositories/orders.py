"""Orders, their events, fills and protection links: the queries the order engine needs.

The ledger records; it does not decide. Which transition is legal belongs to the order
state machine (core.orders); `OrderRepository.transition` only applies one and writes
its `order_events` row in the same transaction, so history and state cannot drift.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from core.domain import (
    TERMINAL_STATUSES,
    Fill,
    OrderRequest,
    OrderRole,
    OrderSnapshot,
    OrderStatus,
    OrderType,
)
from core.ledger.models import FillRow, OrderEventRow, OrderRow, ProtectionLinkRow
from core.ledger.repositories.base import Repository
from core.ledger.types import EventSource, ProtectionKind, ProtectionStatus, to_money

_TERMINAL = tuple(TERMINAL_STATUSES)
STOP_LEVEL = "stop_level"  # order event: a trailing stop's level as the broker reported it


def _opt_money(value: Decimal | None) -> Decimal | None:
    return None if value is None else to_money(value)


class OrderEventRepository(Repository[OrderEventRow]):
    row_type = OrderEventRow

    def record(
        self,
        order_id: int,
        *,
        kind: str,
        source: EventSource,
        from_status: OrderStatus | None = None,
        to_status: OrderStatus | None = None,
        detail: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> OrderEventRow:
        return self.add(
            OrderEventRow(
                order_id=order_id,
                at=self._at(at),
                kind=kind,
                source=source,
                from_status=from_status,
                to_status=to_status,
                detail=detail,
            )
        )

    def for_order(self, order_id: int) -> Sequence[OrderEventRow]:
        stmt = (
            select(OrderEventRow)
            .where(OrderEventRow.order_id == order_id)
            .order_by(OrderEventRow.at, OrderEventRow.id)
        )
        return self._session.scalars(stmt).all()


class OrderRepository(Repository[OrderRow]):
    row_type = OrderRow

    def record_intent(
        self,
        request: OrderRequest,
        *,
        account_id: int,
        role: OrderRole,
        draft_id: int | None = None,
        parent_order_id: int | None = None,
        replaces_order_id: int | None = None,
        order_ref: str | None = None,
        at: datetime | None = None,
    ) -> OrderRow:
        """Write an order intent (PENDING_SUBMIT) and its "intent" event, before any broker call.

        A duplicate `client_order_id` raises IntegrityError: look it up first
        (`by_client_order_id`) when a retry may have written it already.
        """
        moment = self._at(at)
        order = self.add(
            OrderRow(
                account_id=account_id,
                draft_id=draft_id,
                client_order_id=request.client_order_id,
                symbol=request.symbol,
                side=request.side,
                order_type=request.order_type,
                time_in_force=request.time_in_force,
                qty=request.qty,
                limit_price=request.limit_price,
                stop_price=request.stop_price,
                trail_percent=request.trail_percent,
                extended_hours=request.extended_hours,
                role=role,
                status=OrderStatus.PENDING_SUBMIT,
                parent_order_id=parent_order_id,
                replaces_order_id=replaces_order_id,
                order_ref=order_ref,
                created_at=moment,
                updated_at=moment,
            )
        )
        self._session.add(
            OrderEventRow(
                order_id=order.id,
                at=moment,
                kind="intent",
                source=EventSource.ENGINE,
                from_status=None,
                to_status=OrderStatus.PENDING_SUBMIT,
            )
        )
        self._session.flush()
        return order

    def transition(
        self,
        order: OrderRow,
        to_status: OrderStatus,
        *,
        kind: str,
        source: EventSource,
        detail: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> OrderEventRow:
        """Set the status (closing the order if terminal) and record the event."""
        moment = self._at(at)
        from_status = order.status
        order.status = to_status
        order.updated_at = moment
        if to_status in TERMINAL_STATUSES and order.closed_at is None:
            order.closed_at = moment
        event = OrderEventRow(
            order_id=order.id,
            at=moment,
            kind=kind,
            source=source,
            from_status=from_status,
            to_status=to_status,
            detail=detail,
        )
        self._session.add(event)
        self._session.flush()
        return event

    def note_stop_level(
        self, order: OrderRow, snapshot: OrderSnapshot, *, source: EventSource
    ) -> bool:
        """Keep a trailing stop's level and high-water mark as the broker reported them
        (`orders.stop_price`, `orders.hwm`) and their history (a `stop_level` event, which
        the report draws). Nothing is written when the broker reported no level or the
        same one. No flush: this rides on the caller's unit of work (the fill path)."""
        if order.order_type is not OrderType.TRAILING_STOP or snapshot.stop_price is None:
            return False
        stop, hwm = to_money(snapshot.stop_price), _opt_money(snapshot.hwm)
        if stop == order.stop_price and (hwm is None or hwm == order.hwm):
            return False
        order.stop_price = stop
        if hwm is not None:
            order.hwm = hwm
        detail = {"stop_price": str(stop), "hwm": None if hwm is None else str(hwm)}
        self._session.add(
            OrderEventRow(
                order_id=order.id,
                at=self._at(None),
                kind=STOP_LEVEL,
                source=source,
                detail=detail,
            )
        )
        return True

    def by_client_order_id(self, client_order_id: str) -> OrderRow | None:
        stmt = select(OrderRow).where(OrderRow.client_order_id == client_order_id)
        return self._session.scalars(stmt).one_or_none()

    def by_broker_order_id(self, broker_order_id: str) -> OrderRow | None:
        stmt = select(OrderRow).where(OrderRow.broker_order_id == broker_order_id)
        return self._session.scalars(stmt).one_or_none()

    def by_order_ref(self, order_ref: str) -> Sequence[OrderRow]:
        stmt = select(OrderRow).where(OrderRow.order_ref == order_ref).order_by(OrderRow.id)
        return self._session.scalars(stmt).all()

    def open_orders(
        self,
        account_id: int,
        *,
        symbol: str | None = None,
        role: OrderRole | None = None,
    ) -> Sequence[OrderRow]:
        """Non-terminal orders (PENDING_SUBMIT included), oldest first."""
        stmt = select(OrderRow).where(
            OrderRow.account_id == account_id, OrderRow.status.not_in(_TERMINAL)
        )
        if symbol is not None:
            stmt = stmt.where(OrderRow.symbol == symbol)
        if role is not None:
            stmt = stmt.where(OrderRow.role == role)
        return self._session.scalars(stmt.order_by(OrderRow.id)).all()

    def by_role(
        self,
        account_id: int,
        role: OrderRole,
        statuses: Iterable[OrderStatus] | None = None,
    ) -> Sequence[OrderRow]:
        stmt = select(OrderRow).where(OrderRow.account_id == account_id, OrderRow.role == role)
        if statuses is not None:
            stmt = stmt.where(OrderRow.status.in_(tuple(statuses)))
        return self._session.scalars(stmt.order_by(OrderRow.id)).all()

    def by_status(self, account_id: int, statuses: Iterable[OrderStatus]) -> Sequence[OrderRow]:
        stmt = select(OrderRow).where(
            OrderRow.account_id == account_id, OrderRow.status.in_(tuple(statuses))
        )
        return self._session.scalars(stmt.order_by(OrderRow.id)).all()

    def for_draft(self, draft_id: int) -> Sequence[OrderRow]:
        stmt = select(OrderRow).where(OrderRow.draft_id == draft_id).order_by(OrderRow.id)
        return self._session.scalars(stmt).all()

    def children(self, parent_order_id: int) -> Sequence[OrderRow]:
        """Orders attached to (or replacing into) a parent, oldest first."""
        stmt = (
            select(OrderRow)
            .where(OrderRow.parent_order_id == parent_order_id)
            .order_by(OrderRow.id)
        )
        return self._session.scalars(stmt).all()

    def replacement_of(self, order_id: int) -> OrderRow | None:
        """The newest order that replaced `order_id`, if any."""
        stmt = (
            select(OrderRow)
            .where(OrderRow.replaces_order_id == order_id)
            .order_by(OrderRow.id.desc())
            .limit(1)
        )
        return self._session.scalars(stmt).first()

    def between(self, account_id: int, start: datetime, end: datetime) -> Sequence[OrderRow]:
        """Orders created in [start, end), oldest first (day reports)."""
        stmt = (
            select(OrderRow)
            .where(
                OrderRow.account_id == account_id,
                OrderRow.created_at >= start,
                OrderRow.created_at < end,
            )
            .order_by(OrderRow.id)
        )
        return self._session.scalars(stmt).all()


class FillRepository(Repository[FillRow]):
    row_type = FillRow

    def add_if_new(self, order_id: int, fill: Fill) -> bool:
        """Record a fill unless its execution id was seen before; True if it was new."""
        row = FillRow(
            order_id=order_id,
            execution_id=fill.execution_id,
            symbol=fill.symbol,
            side=fill.side,
            qty=fill.qty,
            price=fill.price,
            commission=fill.commission,
            at=fill.timestamp,
        )
        _, inserted = self._insert_unique(row, lambda: self.by_execution_id(fill.execution_id))
        return inserted

    def by_execution_id(self, execution_id: str) -> FillRow | None:
        stmt = select(FillRow).where(FillRow.execution_id == execution_id)
        return self._session.scalars(stmt).one_or_none()

    def for_order(self, order_id: int) -> Sequence[FillRow]:
        stmt = select(FillRow).where(FillRow.order_id == order_id).order_by(FillRow.at, FillRow.id)
        return self._session.scalars(stmt).all()

    def filled_qty(self, order_id: int) -> Decimal:
        """Sum of recorded fills (computed in Python: exact on every backend)."""
        return sum((fill.qty for fill in self.for_order(order_id)), Decimal(0))

    def for_account_between(
        self, account_id: int, start: datetime, end: datetime, symbol: str | None = None
    ) -> Sequence[FillRow]:
        """Fills executed in [start, end), in execution order."""
        stmt = (
            select(FillRow)
            .join(OrderRow, OrderRow.id == FillRow.order_id)
            .where(OrderRow.account_id == account_id, FillRow.at >= start, FillRow.at < end)
        )
        if symbol is not None:
            stmt = stmt.where(FillRow.symbol == symbol)
        return self._session.scalars(stmt.order_by(FillRow.at, FillRow.id)).all()


class ProtectionLinkRepository(Repository[ProtectionLinkRow]):
    row_type = ProtectionLinkRow

    def link(
        self,
        entry_order_id: int,
        protection_order_id: int,
        *,
        protected_qty: Decimal,
        kind: ProtectionKind,
        at: datetime | None = None,
    ) -> ProtectionLinkRow:
        """Link an entry to its protection; linking the same pair again returns the link
        (the reconciler's `link_missing` and the protection path can both get there)."""
        existing = self._session.scalars(
            select(ProtectionLinkRow).where(
                ProtectionLinkRow.entry_order_id == entry_order_id,
                ProtectionLinkRow.protection_order_id == protection_order_id,
            )
        ).first()
        if existing is not None:
            return existing
        moment = self._at(at)
        return self.add(
            ProtectionLinkRow(
                entry_order_id=entry_order_id,
                protection_order_id=protection_order_id,
                protected_qty=protected_qty,
                kind=kind,
                status=ProtectionStatus.ACTIVE,
                created_at=moment,
                updated_at=moment,
            )
        )

    def set_status(
        self, link: ProtectionLinkRow, status: ProtectionStatus, at: datetime | None = None
    ) -> None:
        link.status = status
        link.updated_at = self._at(at)
        self._session.flush()

    def active_for_entry(self, entry_order_id: int) -> Sequence[ProtectionLinkRow]:
        stmt = select(ProtectionLinkRow).where(
            ProtectionLinkRow.entry_order_id == entry_order_id,
            ProtectionLinkRow.status == ProtectionStatus.ACTIVE,
        )
        return self._session.scalars(stmt.order_by(ProtectionLinkRow.id)).all()

    def for_protection_order(self, protection_order_id: int) -> Sequence[ProtectionLinkRow]:
        stmt = select(ProtectionLinkRow).where(
            ProtectionLinkRow.protection_order_id == protection_order_id
        )
        return self._session.scalars(stmt.order_by(ProtectionLinkRow.id)).all()

    def active_for_symbol(self, account_id: int, symbol: str) -> Sequence[ProtectionLinkRow]:
        return self._active(account_id, symbol)

    def active_for_account(self, account_id: int) -> Sequence[ProtectionLinkRow]:
        return self._active(account_id, None)

    def _active(self, account_id: int, symbol: str | None) -> Sequence[ProtectionLinkRow]:
        stmt = (
            select(ProtectionLinkRow)
            .join(OrderRow, OrderRow.id == ProtectionLinkRow.entry_order_id)
            .where(
                OrderRow.account_id == account_id,
                ProtectionLinkRow.status == ProtectionStatus.ACTIVE,
            )
        )
        if symbol is not None:
            stmt = stmt.where(OrderRow.symbol == symbol)
        return self._session.scalars(stmt.order_by(ProtectionLinkRow.id)).all()
