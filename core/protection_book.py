"""The ledger queries protection needs: what is held, what is covered, by which orders.

All synchronous and short (one unit of work each), so they are safe between awaits.
Every query is indexed and bounded by what is live, never by the account's history:
- positions come from the account's incremental book (core.book_cache), not from a sum
  over every fill of the symbol;
- live orders are `status IN (the live statuses)`, a look-up in the (account, status)
  index (`NOT IN (terminal)` would walk every order the account ever had);
- client ids by prefix are a range of the unique index on SQLite (LIKE there is case-
  insensitive and cannot use it); PostgreSQL keeps the case-sensitive LIKE.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import bindparam, or_, select

from core.book_cache import shared_book
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
LIVE = tuple(s for s in OrderStatus if s not in TERMINAL_STATUSES)
_LINKS = ProtectionLinkRow.__table__.c
_ORDERS = OrderRow.__table__.c
# The hot path's statements, built once (Core: no ORM entity is loaded; equalities
# joined by OR rather than an expanding IN, which is re-rendered on every execution).
_COVERED = select(_LINKS.protected_qty).where(
    _LINKS.entry_order_id == bindparam("entry"),
    or_(*(_LINKS.status == s for s in COVERING_LINKS)),
)
# Live orders are found through the (account, status) index. Given `symbol = ?`, SQLite
# would rather take the (account, symbol) index: every order the symbol ever had. The
# symbol is therefore compared as `symbol || ''`, which no index serves.
_LIVE_ORDERS = select(
    _ORDERS.id, _ORDERS.side, _ORDERS.role, _ORDERS.qty, _ORDERS.filled_qty
).where(
    _ORDERS.account_id == bindparam("account"),
    or_(*(_ORDERS.status == s for s in LIVE)),
    (_ORDERS.symbol + "") == bindparam("symbol"),
)
_IDS_IN_RANGE = select(_ORDERS.client_order_id).where(
    _ORDERS.client_order_id >= bindparam("low"), _ORDERS.client_order_id < bindparam("high")
)


def ids_with_prefix(uow: UnitOfWork, id_prefix: str) -> list[str]:
    """Client ids that start with `id_prefix` (case-sensitive, as `next_attempt` reads
    them), in the caller's unit of work."""
    connection = uow.session.connection()
    if connection.dialect.name == "sqlite":
        # Byte order (BINARY collation): exactly the ids that start with the prefix.
        high = id_prefix[:-1] + chr(ord(id_prefix[-1]) + 1)
        rows = connection.execute(_IDS_IN_RANGE, {"low": id_prefix, "high": high})
    else:
        pattern = id_prefix.replace("_", r"\_") + "%"
        column = _ORDERS.client_order_id
        rows = connection.execute(select(column).where(column.like(pattern, escape="\\")))
    return list(rows.scalars())


@dataclass(frozen=True, slots=True)
class EntryPlan:
    entry: OrderView
    uncovered: Decimal  # min(the entry's unlinked fills, the symbol's uncovered shares)
    trailing_ids: tuple[str, ...]  # client ids already used for this entry's trailing stops
    # Our other entries of the symbol still working with nothing filled: at a broker that
    # refuses opposite-side orders they make the protective sell a wash trade.
    waiting_entries: tuple[int, ...] = ()


class ProtectionBook:
    def __init__(self, ctx: EngineContext) -> None:
        self._ctx = ctx
        self.books = shared_book(ctx.ledger, ctx.account.row_id)

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
        return self.books.position(symbol)

    def live_orders(
        self, symbol: str | None = None, *, side: Side | None = None, role: OrderRole | None = None
    ) -> list[OrderView]:
        """Non-terminal orders (PENDING_SUBMIT included: it may be at the broker)."""
        with self._ctx.ledger.unit_of_work(read_only=True) as uow:
            return self._live_in(uow, symbol, side, role)

    def _live_in(
        self, uow: UnitOfWork, symbol: str | None, side: Side | None, role: OrderRole | None
    ) -> list[OrderView]:
        stmt = select(OrderRow).where(
            OrderRow.account_id == self._ctx.account.row_id, OrderRow.status.in_(LIVE)
        )
        if symbol is not None:  # `|| ''`: through the status index (see _LIVE_ORDERS)
            stmt = stmt.where((OrderRow.symbol + "") == symbol.upper())
        if role is not None:
            stmt = stmt.where(OrderRow.role == role)
        rows = uow.session.scalars(stmt.order_by(OrderRow.id))
        return [OrderView.of(r) for r in rows if side is None or r.side is side]

    def symbol_uncovered(self, symbol: str) -> Decimal:
        """Long shares that no live sell order reserves."""
        with self._ctx.ledger.unit_of_work(read_only=True) as uow:
            self.books.sync(uow)
            return self._symbol_uncovered_in(uow, symbol)

    def _symbol_uncovered_in(self, uow: UnitOfWork, symbol: str) -> Decimal:
        held = self.books.held_in(uow, symbol)
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
        """What protecting one entry needs, in the caller's unit of work (the fill -> stop
        hot path): Core statements on indexes, the position from the book cache plus
        the facts the cache has not seen (this unit of work's fill among them).
        `entry` must be fresh (the tracker's view)."""
        uow.flush()  # Core statements: the unit of work's own rows must be in the database
        symbol = entry.symbol.upper()
        held = self.books.held_in(uow, symbol)
        run = uow.session.connection().execute
        covered = sum((q for (q,) in run(_COVERED, {"entry": entry.id})), ZERO)
        account = self._ctx.account.row_id
        live = run(_LIVE_ORDERS, {"account": account, "symbol": symbol}).all()
        reserved = sum((r.qty - r.filled_qty for r in live if r.side == Side.SELL), ZERO)
        waiting = tuple(
            r.id
            for r in live
            if r.side == Side.BUY
            and r.role == OrderRole.ENTRY
            and r.filled_qty == 0
            and r.id != entry.id
        )
        ids = tuple(ids_with_prefix(uow, id_prefix))
        uncovered = min(max(entry.filled_qty - covered, ZERO), max(held - reserved, ZERO))
        return EntryPlan(entry, uncovered, ids, waiting)

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
            return ids_with_prefix(uow, id_prefix)

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
