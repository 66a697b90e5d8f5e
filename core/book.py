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

The replay (`BookReplay`) is incremental: facts (fills and adoptions) are applied in
ledger order - (at, adoptions before fills at the same instant, id) - and each fill
leaves what it means for P&L (exit, commission, first fill of an entry) in a list kept
in that order, so the figures of any window [start, end) are a slice of it.
`read_book` replays everything at once; `core.book_cache.BookCache` keeps one replay
and applies only the facts committed since its last look.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from core.clock import NEW_YORK
from core.domain import ZERO, OrderRole, Side
from core.ledger import DraftRow, FillRow, OrderRow, RiskEventRow, UnitOfWork

ADOPTED = "position_adopted"
_ADOPTION, _FILL = 0, 1  # at the same instant an adoption is replayed before a fill


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


# Sort key of a fact in the replay: (at, adoption 0 / fill 1, row id).
FactKey = tuple[datetime, int, int]


@dataclass(frozen=True, slots=True)
class Fact:
    """One fill (with its order's role and draft) or one adoption, as replayed."""

    key: FactKey
    symbol: str
    qty: Decimal  # fills: the quantity (> 0); adoptions: the signed change
    price: Decimal
    side: Side | None = None  # None: an adoption
    commission: Decimal = ZERO
    order_id: int = 0
    role: OrderRole = OrderRole.EXTERNAL
    draft_id: int | None = None


@dataclass(frozen=True, slots=True)
class _Effect:
    """What one fill means for the P&L of a window that contains it."""

    at: datetime
    day: date  # New York date
    trade: ClosedTrade | None  # a sell
    commission: Decimal
    new_entry: bool  # the first fill of an entry order


class BookReplay:
    """The replay of an account's facts, in ledger order (see the module docstring)."""

    def __init__(self) -> None:
        self._running: dict[str, _Running] = {}
        self._seen_orders: set[int] = set()
        self._effects: list[_Effect] = []
        self._times: list[datetime] = []  # _effects' `at`, for bisection
        self.risk: dict[int, Decimal] = {}  # draft id -> trigger - initial stop
        self.last_key: FactKey | None = None

    def apply(self, facts: Iterable[Fact]) -> None:
        """Apply facts that come after everything applied so far, in key order."""
        for fact in facts:
            if self.last_key is not None and fact.key <= self.last_key:
                raise ValueError(f"fact {fact.key} is not after {self.last_key}")
            self.last_key = fact.key
            if fact.side is None:
                _add(self._running.setdefault(fact.symbol, _Running()), fact.qty, fact.price)
            else:
                self._fill(fact)

    def _fill(self, fact: Fact) -> None:
        at, symbol = fact.key[0], fact.symbol
        pos = self._running.setdefault(symbol, _Running())
        trade = None
        new_entry = False
        if fact.side is Side.BUY:
            if fact.role is OrderRole.ENTRY and fact.draft_id in self.risk:
                pos.risk_per_share = self.risk[fact.draft_id]
            new_entry = fact.role is OrderRole.ENTRY and fact.order_id not in self._seen_orders
            _add(pos, fact.qty, fact.price)
        else:
            closed = min(fact.qty, max(pos.qty, ZERO))
            pnl = (fact.price - pos.avg) * closed
            _add(pos, -fact.qty, fact.price)
            r = None
            if pos.risk_per_share and closed > 0:
                r = pnl / (pos.risk_per_share * closed)
            trade = ClosedTrade(symbol, closed, pos.avg, fact.price, pnl, r, at, fact.role)
        self._seen_orders.add(fact.order_id)
        if trade is not None or new_entry or fact.commission:
            day = at.astimezone(NEW_YORK).date()
            self._effects.append(_Effect(at, day, trade, fact.commission, new_entry))
            self._times.append(at)

    def holdings(self) -> dict[str, Holding]:
        return {
            s: Holding(s, p.qty, p.avg)
            for s, p in sorted(self._running.items())
            if p.qty != 0 and s
        }

    def position(self, symbol: str) -> Decimal:
        pos = self._running.get(symbol.upper())
        return ZERO if pos is None else pos.qty

    def summary(self, start: datetime | None = None, end: datetime | None = None) -> BookSummary:
        """Holdings now (every fact), and P&L of the fills in [start, end)."""
        low = 0 if start is None else bisect_left(self._times, start)
        high = len(self._times) if end is None else bisect_left(self._times, end)
        realized = realized_r = ZERO
        exits: list[ClosedTrade] = []
        entries = 0
        last_stop: datetime | None = None
        by_day: dict[date, Decimal] = {}
        for effect in self._effects[low:high]:
            trade = effect.trade
            if trade is not None:
                if trade.r is not None:
                    realized_r += trade.r
                exits.append(trade)
                realized += trade.pnl
                by_day[effect.day] = by_day.get(effect.day, ZERO) + trade.pnl
                if trade.role is OrderRole.PROTECTION:
                    last_stop = effect.at if last_stop is None else max(last_stop, effect.at)
            entries += effect.new_entry
            if effect.commission:
                realized -= effect.commission
                by_day[effect.day] = by_day.get(effect.day, ZERO) - effect.commission
        return BookSummary(
            self.holdings(), realized, realized_r, tuple(exits), entries, last_stop, by_day
        )


def load_facts(
    uow: UnitOfWork,
    account_id: int,
    *,
    after: tuple[int, int] = (0, 0),
    upto: tuple[int, int] | None = None,
) -> list[Fact]:
    """The account's fills with id in (after[0], upto[0]] and adoptions with id in
    (after[1], upto[1]], in replay order (column-only queries).

    Above a watermark the statements are primary-key ranges and the account is checked
    here: given `account_id = ?` as well, SQLite prefers walking every order of the
    account through its index, which grows with the history the range is meant to skip.
    """
    fills = select(
        FillRow.id,
        FillRow.at,
        FillRow.symbol,
        FillRow.side,
        FillRow.qty,
        FillRow.price,
        FillRow.commission,
        FillRow.order_id,
        OrderRow.role,
        OrderRow.draft_id,
        OrderRow.account_id,
    ).join(OrderRow, OrderRow.id == FillRow.order_id)
    adoptions = select(
        RiskEventRow.id, RiskEventRow.at, RiskEventRow.detail, RiskEventRow.account_id
    ).where(RiskEventRow.kind == ADOPTED)
    if after == (0, 0):
        fills = fills.where(OrderRow.account_id == account_id)
        adoptions = adoptions.where(RiskEventRow.account_id == account_id)
    else:
        fills = fills.where(FillRow.id > after[0])
        adoptions = adoptions.where(RiskEventRow.id > after[1])
    if upto is not None:
        fills = fills.where(FillRow.id <= upto[0])
        adoptions = adoptions.where(RiskEventRow.id <= upto[1])
    run = uow.session.execute
    facts = [
        Fact((at, _FILL, fid), symbol.upper(), qty, price, side, commission or ZERO, oid, role, did)
        for fid, at, symbol, side, qty, price, commission, oid, role, did, account in run(fills)
        if account == account_id
    ]
    for eid, at, detail, account in run(adoptions):
        if account != account_id:
            continue
        data: dict[str, Any] = detail or {}
        facts.append(
            Fact(
                (at, _ADOPTION, eid),
                str(data.get("symbol", "")).upper(),
                Decimal(str(data.get("qty", "0"))),
                Decimal(str(data.get("price", "0"))),
            )
        )
    facts.sort(key=lambda fact: fact.key)
    return facts


def load_risk(uow: UnitOfWork, replay: BookReplay, facts: Sequence[Fact]) -> None:
    """R per share of the drafts behind these facts' entry buys that the replay lacks.
    (A draft's levels cannot change once an order of it has a fill: only PENDING drafts
    are edited, and a draft goes back to PENDING only when its entry never reached the
    broker.)"""
    wanted = {
        f.draft_id
        for f in facts
        if f.draft_id is not None and f.role is OrderRole.ENTRY and f.draft_id not in replay.risk
    }
    if not wanted:
        return
    rows = uow.session.execute(
        select(DraftRow.id, DraftRow.trigger_price, DraftRow.initial_stop).where(
            DraftRow.id.in_(wanted)
        )
    )
    for draft_id, trigger, stop in rows:
        if trigger is not None and stop is not None:
            replay.risk[draft_id] = trigger - stop


def read_book(
    uow: UnitOfWork,
    account_id: int,
    start: datetime | None = None,
    end: datetime | None = None,
) -> BookSummary:
    """Holdings now (all history), and P&L of the fills in [start, end)."""
    facts = load_facts(uow, account_id)
    replay = BookReplay()
    load_risk(uow, replay, facts)
    replay.apply(facts)
    return replay.summary(start, end)


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
    run = uow.session.execute
    fills = run(
        select(FillRow.side, FillRow.qty)
        .join(OrderRow, OrderRow.id == FillRow.order_id)
        .where(OrderRow.account_id == account_id, FillRow.symbol == symbol)
    )
    qty = sum((q if side is Side.BUY else -q for side, q in fills), ZERO)
    adoptions = run(
        select(RiskEventRow.detail).where(
            RiskEventRow.account_id == account_id, RiskEventRow.kind == ADOPTED
        )
    )
    for (detail,) in adoptions:
        data = detail or {}
        if str(data.get("symbol", "")).upper() == symbol:
            qty += Decimal(str(data.get("qty", "0")))
    return qty


__all__ = [
    "ADOPTED",
    "BookReplay",
    "BookSummary",
    "ClosedTrade",
    "Fact",
    "FactKey",
    "Holding",
    "ledger_position",
    "load_facts",
    "load_risk",
    "open_pnl",
    "read_book",
]
