"""The account's book kept up to date incrementally, so that /status and the risk checks
do not replay every fill of the account's history on every call.

`BookCache` holds one `BookReplay` and two watermarks: the highest fill id and the
highest risk event id it has looked at. Each read asks the ledger for the two maxima (two
primary-key look-ups); if they moved, only the rows above the watermarks are fetched and
applied. The ledger stays the only truth:
- only committed rows are seen (a read-only unit of work), so a rolled-back fill never
  reaches the cache; whoever wrote a fill or an adoption (the tracker, the reconciler, a
  migration, another process) is picked up the same way;
- a new fact that sorts before the last one applied (a fill reported late with an older
  timestamp) cannot be appended to an average-cost replay: the replay is rebuilt from
  the whole ledger instead, which gives exactly what `read_book` gives;
- fills and risk events are never updated nor deleted (append-only ledger), and ids
  only grow in commit order: SQLite AUTOINCREMENT under its single writer lock;
  PostgreSQL sequences with one engine per account writing from one thread, whose units
  of work never interleave (core.ledger.engine).

Any window [start, end) is a slice of the replay (`BookReplay.summary`), so the day's
figures, /pnl's week and month and the holdings all come from the same replay.

`held_in(uow, symbol)` answers the position inside a unit of work that may hold
uncommitted fills (the fill -> protection path): the replay up to the watermarks plus
the facts above them as that unit of work sees them. Exact without replaying the
symbol's history, and it never lets an uncommitted fact into the cache.

One cache per ledger and account (`shared_book`): the risk gate, the protection book and
the status queries of an engine read the same one.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import bindparam, func, select

from core.book import ADOPTED, BookReplay, BookSummary, Holding, load_facts, load_risk
from core.domain import Side
from core.ledger import FillRow, Ledger, OrderRow, RiskEventRow, UnitOfWork

_FILLS = FillRow.__table__.c
_ORDERS = OrderRow.__table__.c
_EVENTS = RiskEventRow.__table__.c
_MARKS = select(
    select(func.max(_FILLS.id)).scalar_subquery(),
    select(func.max(_EVENTS.id)).scalar_subquery(),
)
# Facts above the watermarks, as the caller's unit of work sees them: primary-key ranges,
# the account checked in Python (see core.book.load_facts).
_FILLS_ABOVE = (
    select(_FILLS.symbol, _FILLS.side, _FILLS.qty, _ORDERS.account_id)
    .join_from(FillRow.__table__, OrderRow.__table__, _ORDERS.id == _FILLS.order_id)
    .where(_FILLS.id > bindparam("mark"))
)
_ADOPTIONS_ABOVE = select(_EVENTS.detail, _EVENTS.account_id).where(
    _EVENTS.id > bindparam("mark"), _EVENTS.kind == ADOPTED
)


class BookCache:
    def __init__(self, ledger: Ledger, account_id: int) -> None:
        self._ledger = ledger
        self._account_id = account_id
        self._replay = BookReplay()
        self._marks = (0, 0)
        self._version = 0  # bumped when the replay changes
        self._memo: tuple[int, datetime | None, datetime | None, BookSummary] | None = None
        self.rebuilds = 0  # full replays so far (tests and diagnostics)

    def book(self, start: datetime | None = None, end: datetime | None = None) -> BookSummary:
        """Holdings now and the P&L of the fills in [start, end): `read_book`'s answer."""
        self.refresh()
        memo = self._memo
        if memo is None or memo[:3] != (self._version, start, end):
            memo = (self._version, start, end, self._replay.summary(start, end))
            self._memo = memo
        summary = memo[3]
        # Fresh dicts: a caller that edits its copy must not edit the cache.
        return BookSummary(
            dict(summary.holdings),
            summary.realized,
            summary.realized_r,
            summary.exits,
            summary.entries,
            summary.last_stop_out_at,
            dict(summary.by_day),
        )

    def holdings(self) -> dict[str, Holding]:
        self.refresh()
        return self._replay.holdings()

    def position(self, symbol: str) -> Decimal:
        self.refresh()
        return self._replay.position(symbol)

    def held_in(self, uow: UnitOfWork, symbol: str) -> Decimal:
        """The ledger's position in `symbol` as `uow` sees it, its own uncommitted fills
        and adoptions included (same answer as `read_book(uow, ...).qty(symbol)`)."""
        symbol = symbol.upper()
        uow.flush()  # the queries below are Core: make the unit of work's rows visible
        connection = uow.session.connection()
        fill_mark, event_mark = self._marks
        qty = self._replay.position(symbol)
        account = self._account_id
        for fill_symbol, side, fill_qty, owner in connection.execute(
            _FILLS_ABOVE, {"mark": fill_mark}
        ):
            if owner == account and fill_symbol.upper() == symbol:
                qty += fill_qty if side is Side.BUY else -fill_qty
        for detail, owner in connection.execute(_ADOPTIONS_ABOVE, {"mark": event_mark}):
            data: dict[str, Any] = detail or {}
            if owner == account and str(data.get("symbol", "")).upper() == symbol:
                qty += Decimal(str(data.get("qty", "0")))
        return qty

    def refresh(self) -> None:
        with self._ledger.unit_of_work(read_only=True) as uow:
            self.sync(uow)

    def sync(self, uow: UnitOfWork) -> None:
        """Apply what was committed since the last sync (`uow` must not hold uncommitted
        fills or adoptions: use a read-only unit of work)."""
        fill_max, event_max = uow.session.execute(_MARKS).one()
        marks = (fill_max or 0, event_max or 0)
        if marks == self._marks:
            return
        facts = load_facts(uow, self._account_id, after=self._marks, upto=marks)
        last = self._replay.last_key
        if facts and last is not None and facts[0].key <= last:
            self._replay = BookReplay()  # out of order: replay the ledger from the start
            self.rebuilds += 1
            facts = load_facts(uow, self._account_id, upto=marks)
        if facts:
            try:
                load_risk(uow, self._replay, facts)
                self._replay.apply(facts)
            except BaseException:
                self.invalidate()  # half applied: start again from nothing next time
                raise
            self._version += 1
        self._marks = marks

    def invalidate(self) -> None:
        """Forget everything: the next read replays the whole ledger."""
        self._replay = BookReplay()
        self._marks = (0, 0)
        self._version += 1


_SHARED: WeakKeyDictionary[Ledger, dict[int, BookCache]] = WeakKeyDictionary()


def shared_book(ledger: Ledger, account_id: int) -> BookCache:
    """The one cache of this ledger's account (created on first use)."""
    caches = _SHARED.setdefault(ledger, {})
    cache = caches.get(account_id)
    if cache is None:
        cache = caches[account_id] = BookCache(ledger, account_id)
    return cache


__all__ = ["BookCache", "shared_book"]
