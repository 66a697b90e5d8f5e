"""Positions and P&L as the ledger knows them: replayed from its fills.

The ledger's position in a symbol is the sum of its fills (buys minus sells) plus the
adjustments the reconciler recorded when it adopted a position the fills do not explain
(a transfer, a position that predates the ledger): risk_events of kind
`position_adopted`, detail {symbol, qty (the change), price}. The reconciler compares
this with the broker; a difference it cannot explain is a position mismatch.

P&L uses the average-cost method: a sell realizes (price - average cost) x qty, minus
commissions. R of an exit = its P&L / (R per share of the entry x qty), where R per
share is the confirmed draft's trigger - initial stop (unknown for adopted positions and
external orders: those exits count in $ but not in R).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from core.clock import NEW_YORK
from core.domain import ZERO, OrderRole, Side
from core.ledger import DraftRow, FillRow, OrderRow, RiskEventRow, UnitOfWork

ADOPTED = "position_adopted"


@dataclass(frozen=True, slots=True)
class Holding:
    symbol: str
    qty: Decimal
    avg_cost: Decimal


@dataclass(frozen=True, slots=True)
class ClosedTrade:
    symbol: str
    qty: Decimal
    avg_cost: Decimal
    exit_price: Decimal
    pnl: Decimal
    r: Decimal | None
    at: datetime
    role: OrderRole


@dataclass(frozen=True, slots=True)
class BookSummary:
    holdings: dict[str, Holding]
    realized: Decimal = ZERO
    realized_r: Decimal = ZERO
    exits: tuple[ClosedTrade, ...] = ()
    entries: int = 0
    last_stop_out_at: datetime | None = None
    by_day: dict[date, Decimal] = field(default_factory=dict)

    def qty(self, symbol: str) -> Decimal:
        holding = self.holdings.get(symbol.upper())
        return ZERO if holding is None else holding.qty


@dataclass(slots=True)
class _Running:
    qty: Decimal = ZERO
    avg: Decimal = ZERO
    risk_per_share: Decimal | None = None


def _in(at: datetime, start: datetime | None, end: datetime | None) -> bool:
    return (start is None or at >= start) and (end is None or at < end)


def read_book(
    uow: UnitOfWork,
    account_id: int,
    start: datetime | None = None,
    end: datetime | None = None,
) -> BookSummary:
    """Holdings now (all history), and P&L of the fills in [start, end)."""
    rows = uow.session.execute(
        select(FillRow, OrderRow.role, OrderRow.draft_id, OrderRow.id)
        .join(OrderRow, OrderRow.id == FillRow.order_id)
        .where(OrderRow.account_id == account_id)
        .order_by(FillRow.at, FillRow.id)
    ).all()
    adoptions = uow.session.scalars(
        select(RiskEventRow)
        .where(RiskEventRow.account_id == account_id, RiskEventRow.kind == ADOPTED)
        .order_by(RiskEventRow.at, RiskEventRow.id)
    ).all()
    draft_ids = {r[2] for r in rows if r[2] is not None}
    risk: dict[int, Decimal] = {}
    if draft_ids:
        for draft in uow.session.scalars(select(DraftRow).where(DraftRow.id.in_(draft_ids))):
            if draft.trigger_price is not None and draft.initial_stop is not None:
                risk[draft.id] = draft.trigger_price - draft.initial_stop
    # Merge the two streams in time order (an adoption before a fill at the same instant).
    stream: list[tuple[datetime, int, Any]] = [(a.at, 0, a) for a in adoptions]
    stream += [(r[0].at, 1, r) for r in rows]
    stream.sort(key=lambda item: (item[0], item[1]))

    running: dict[str, _Running] = {}
    realized = realized_r = ZERO
    exits: list[ClosedTrade] = []
    entry_orders: set[int] = set()
    seen_orders: set[int] = set()
    last_stop: datetime | None = None
    by_day: dict[date, Decimal] = {}
    for at, kind, item in stream:
        if kind == 0:
            detail = item.detail or {}
            symbol = str(detail.get("symbol", "")).upper()
            pos = running.setdefault(symbol, _Running())
            _add(pos, Decimal(str(detail.get("qty", "0"))), Decimal(str(detail.get("price", "0"))))
            continue
        fill, role, draft_id, order_id = item
        symbol = fill.symbol.upper()
        pos = running.setdefault(symbol, _Running())
        inside = _in(at, start, end)
        if fill.side is Side.BUY:
            if role is OrderRole.ENTRY and draft_id in risk:
                pos.risk_per_share = risk[draft_id]
            if role is OrderRole.ENTRY and order_id not in seen_orders and inside:
                entry_orders.add(order_id)
            _add(pos, fill.qty, fill.price)
        else:
            closed = min(fill.qty, max(pos.qty, ZERO))
            pnl = (fill.price - pos.avg) * closed
            _add(pos, -fill.qty, fill.price)
            if inside:
                r = None
                if pos.risk_per_share and closed > 0:
                    r = pnl / (pos.risk_per_share * closed)
                    realized_r += r
                exits.append(ClosedTrade(symbol, closed, pos.avg, fill.price, pnl, r, at, role))
                realized += pnl
                day = at.astimezone(NEW_YORK).date()
                by_day[day] = by_day.get(day, ZERO) + pnl
                if role is OrderRole.PROTECTION:
                    last_stop = at if last_stop is None else max(last_stop, at)
        seen_orders.add(order_id)
        if inside and fill.commission:
            realized -= fill.commission
            day = at.astimezone(NEW_YORK).date()
            by_day[day] = by_day.get(day, ZERO) - fill.commission
    holdings = {s: Holding(s, p.qty, p.avg) for s, p in sorted(running.items()) if p.qty != 0 and s}
    return BookSummary(
        holdings, realized, realized_r, tuple(exits), len(entry_orders), last_stop, by_day
    )


def _add(pos: _Running, qty: Decimal, price: Decimal) -> None:
    """Signed change at `price`: an increase re-averages, a decrease keeps the average."""
    new = pos.qty + qty
    if (pos.qty >= 0 and qty > 0) or (pos.qty <= 0 and qty < 0):
        if new != 0:
            pos.avg = (pos.qty * pos.avg + qty * price) / new
    elif new == 0 or (new > 0) != (pos.qty > 0):
        pos.avg = price if new != 0 else ZERO  # flat, or flipped: the rest opens at price
    pos.qty = new


def open_pnl(holdings: dict[str, Holding], prices: dict[str, Decimal]) -> Decimal:
    """Unrealized P&L at the given prices (symbols without a price count 0)."""
    total = ZERO
    for symbol, holding in holdings.items():
        price = prices.get(symbol)
        if price is not None:
            total += (price - holding.avg_cost) * holding.qty
    return total


def ledger_position(uow: UnitOfWork, account_id: int, symbol: str) -> Decimal:
    """The ledger's quantity in one symbol (fills plus adoptions), without P&L."""
    symbol = symbol.upper()
    fills = uow.session.execute(
        select(FillRow.side, FillRow.qty)
        .join(OrderRow, OrderRow.id == FillRow.order_id)
        .where(OrderRow.account_id == account_id, FillRow.symbol == symbol)
    ).all()
    qty = sum((q if side is Side.BUY else -q for side, q in fills), ZERO)
    adoptions = uow.session.scalars(
        select(RiskEventRow).where(
            RiskEventRow.account_id == account_id, RiskEventRow.kind == ADOPTED
        )
    ).all()
    for row in adoptions:
        detail = row.detail or {}
        if str(detail.get("symbol", "")).upper() == symbol:
            qty += Decimal(str(detail.get("qty", "0")))
    return qty


__all__ = [
    "ADOPTED",
    "BookSummary",
    "ClosedTrade",
    "Holding",
    "ledger_position",
    "open_pnl",
    "read_book",
]
