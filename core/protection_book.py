"""The ledger queries protection needs: what is held, what is covered, by which orders.

All synchronous and short (one unit of work each), so they are safe between awaits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select

from core.book import ledger_position
from core.domain import TERMINAL_STATUSES, ZERO, OrderRole, OrderStatus, OrderType, Side
from core.engine_context import EngineContext
from core.ledger import (
    OrderRow,
    ProtectionKind,
    ProtectionLinkRow,
    ProtectionStatus,
    UnitOfWork,
)
from core.order_views import OrderView

COVERING_LINKS = (ProtectionStatus.ACTIVE, ProtectionStatus.CLOSED)
TERMINAL = tuple(TERMINAL_STATUSES)


@dataclass(frozen=True, slots=True)
class EntryPlan:
    entry: OrderView
    uncovered: Decimal  # min(the entry's unlinked fills, the symbol's uncovered shares)
    trailing_ids: tuple[str, ...]  # client ids already used for this entry's trailing stops


class ProtectionBook:
    def __init__(self, ctx: EngineContext) -> None:
        self._ctx = ctx

    def order_by_id(self, order_id: int) -> OrderView | None:
        with self._ctx.ledger.unit_of_work(read_only=True) as uow:
            row = uow.orders.get(order_id)
            return None if row is None else OrderView.of(row)

    def require_order(self, order_id: int) -> OrderView:
        view = self.order_by_id(order_id)
        if view is None:
            raise LookupError(f"order id {order_id} is not in the ledger")
        return view

    def position(self, symbol: str) -> Decimal:
        with self._ctx.ledger.unit_of_work(read_only=True) as uow:
            return ledger_position(uow, self._ctx.account.row_id, symbol)

    def live_orders(
        self, symbol: str | None = None, *, side: Side | None = None, role: OrderRole | None = None
    ) -> list[OrderView]:
        """Non-terminal orders (PENDING_SUBMIT included: it may be at the broker)."""
        with self._ctx.ledger.unit_of_work(read_only=True) as uow:
            return self._live_in(uow, symbol, side, role)

    def _live_in(
        self, uow: UnitOfWork, symbol: str | None, side: Side | None, role: OrderRole | None
    ) -> list[OrderView]:
        rows = uow.orders.open_orders(
            self._ctx.account.row_id, symbol=symbol.upper() if symbol else None, role=role
        )
        return [OrderView.of(r) for r in rows if side is None or r.side is side]

    def symbol_uncovered(self, symbol: str) -> Decimal:
        """Long shares that no live sell order reserves."""
        with self._ctx.ledger.unit_of_work(read_only=True) as uow:
            return self._symbol_uncovered_in(uow, symbol)

    def _symbol_uncovered_in(self, uow: UnitOfWork, symbol: str) -> Decimal:
        held = ledger_position(uow, self._ctx.account.row_id, symbol)
        sells = self._live_in(uow, symbol, Side.SELL, None)
        reserved = sum((o.remaining_qty for o in sells), ZERO)
        return max(held - reserved, ZERO)

    def entry_uncovered(self, entry: OrderView) -> Decimal:
        with self._ctx.ledger.unit_of_work(read_only=True) as uow:
            return self._entry_uncovered_in(uow, entry)

    def _entry_uncovered_in(self, uow: UnitOfWork, entry: OrderView) -> Decimal:
        links = uow.session.scalars(
            select(ProtectionLinkRow).where(
                ProtectionLinkRow.entry_order_id == entry.id,
                ProtectionLinkRow.status.in_(COVERING_LINKS),
            )
        ).all()
        covered = sum((link.protected_qty for link in links), ZERO)
        return max(entry.filled_qty - covered, ZERO)

    def initial_stop(self, entry: OrderView) -> Decimal | None:
        with self._ctx.ledger.unit_of_work(read_only=True) as uow:
            return self._initial_stop_in(uow, entry)

    def _initial_stop_in(self, uow: UnitOfWork, entry: OrderView) -> Decimal | None:
        if entry.draft_id is None:
            return None
        draft = uow.drafts.get(entry.draft_id)
        return None if draft is None else draft.initial_stop

    def entry_plan(self, uow: UnitOfWork, entry: OrderView, id_prefix: str) -> EntryPlan:
        """What protecting one entry needs, with column-only queries in the caller's unit
        of work (the fill -> stop hot path). `entry` must be fresh (the tracker's view)."""
        account = self._ctx.account.row_id
        symbol = entry.symbol.upper()
        run = uow.session.execute
        covered = sum(
            (
                q
                for (q,) in run(
                    select(ProtectionLinkRow.protected_qty).where(
                        ProtectionLinkRow.entry_order_id == entry.id,
                        ProtectionLinkRow.status.in_(COVERING_LINKS),
                    )
                )
            ),
            ZERO,
        )
        held = ledger_position(uow, account, symbol)
        reserved = sum(
            (
                qty - filled
                for qty, filled in run(
                    select(OrderRow.qty, OrderRow.filled_qty).where(
                        OrderRow.account_id == account,
                        OrderRow.symbol == symbol,
                        OrderRow.side == Side.SELL,
                        OrderRow.status.not_in(TERMINAL),
                    )
                )
            ),
            ZERO,
        )
        pattern = id_prefix.replace("_", r"\_") + "%"
        ids = [
            cid
            for (cid,) in run(
                select(OrderRow.client_order_id).where(
                    OrderRow.client_order_id.like(pattern, escape="\\")
                )
            )
        ]
        uncovered = min(max(entry.filled_qty - covered, ZERO), max(held - reserved, ZERO))
        return EntryPlan(entry, uncovered, tuple(ids))

    def entries_with_fills(self, symbol: str) -> list[OrderView]:
        """Our entries in `symbol` with filled shares not linked to a protection, newest first."""
        with self._ctx.ledger.unit_of_work(read_only=True) as uow:
            rows = uow.session.scalars(
                select(OrderRow)
                .where(
                    OrderRow.account_id == self._ctx.account.row_id,
                    OrderRow.symbol == symbol.upper(),
                    OrderRow.role == OrderRole.ENTRY,
                )
                .order_by(OrderRow.id.desc())
                .limit(50)
            ).all()
            views = [OrderView.of(r) for r in rows if r.filled_qty > 0]
        return [v for v in views if self.entry_uncovered(v) > 0]

    def client_ids_with_prefix(self, id_prefix: str) -> list[str]:
        with self._ctx.ledger.unit_of_work(read_only=True) as uow:
            return list(
                uow.session.scalars(
                    select(OrderRow.client_order_id).where(
                        OrderRow.client_order_id.like(
                            id_prefix.replace("_", r"\_") + "%", escape="\\"
                        )
                    )
                ).all()
            )

    def set_link_status(self, protection_order_id: int, status: ProtectionStatus) -> None:
        with self._ctx.ledger.unit_of_work() as uow:
            for link in uow.protection_links.for_protection_order(protection_order_id):
                if link.status is ProtectionStatus.ACTIVE:
                    uow.protection_links.set_status(link, status)
            uow.commit()

    def links_for(self, protection_order_id: int) -> Sequence[tuple[int, Decimal]]:
        """(entry order id, protected qty) of a protection order's active links."""
        with self._ctx.ledger.unit_of_work(read_only=True) as uow:
            return [
                (link.entry_order_id, link.protected_qty)
                for link in uow.protection_links.for_protection_order(protection_order_id)
                if link.status is ProtectionStatus.ACTIVE
            ]

    def link_missing(self) -> int:
        """Live protection orders with an entry but no link (a crash between send and link):
        link them now. Returns how many were linked."""
        linked = 0
        with self._ctx.ledger.unit_of_work() as uow:
            rows = uow.orders.open_orders(self._ctx.account.row_id, role=OrderRole.PROTECTION)
            for row in rows:
                if row.parent_order_id is None or row.status is OrderStatus.PENDING_SUBMIT:
                    continue
                if uow.protection_links.for_protection_order(row.id):
                    continue
                kind = (
                    ProtectionKind.TRAILING
                    if row.order_type is OrderType.TRAILING_STOP
                    else ProtectionKind.STOP
                )
                uow.protection_links.link(
                    row.parent_order_id, row.id, protected_qty=row.qty, kind=kind
                )
                linked += 1
            uow.commit()
        return linked


__all__ = ["ProtectionBook"]
