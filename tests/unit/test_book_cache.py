"""The incremental book (core.book_cache) never diverges from the ledger.

After every step of random ledger histories (fills on several orders, accounts and
symbols, adoptions, unrelated risk events, fills reported late with older timestamps,
equal timestamps, rolled-back writes, restarts of the cache, several windows) the
cached book must equal `read_book` and `reference_read_book`: the replay as it was
before the cache existed, kept here verbatim as the oracle.
"""

from __future__ import annotations

import os
import random
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, select
from sqlalchemy.engine import make_url

from core.book import (
    ADOPTED,
    BookSummary,
    ClosedTrade,
    Holding,
    _add,
    _Running,
    ledger_position,
    read_book,
)
from core.book_cache import BookCache
from core.clock import NEW_YORK, SimClock
from core.domain import ZERO, OrderRole, OrderStatus, OrderType, Side, TimeInForce
from core.ledger import (
    AccountMode,
    BrokerKind,
    DraftRow,
    FillRow,
    Ledger,
    OrderRow,
    RiskEventRow,
    UnitOfWork,
    create_engine_for,
    upgrade,
)

D = Decimal
T0 = datetime(2026, 3, 2, 14, 45, tzinfo=UTC)  # Monday 09:45 New York
SYMBOLS = ("AAPL", "nvda")  # few: the facts of a symbol must interleave
ROLES = (OrderRole.ENTRY, OrderRole.PROTECTION, OrderRole.EXTERNAL, OrderRole.FLATTEN)


def _in(at: datetime, start: datetime | None, end: datetime | None) -> bool:
    return (start is None or at >= start) and (end is None or at < end)


def reference_read_book(
    uow: UnitOfWork,
    account_id: int,
    start: datetime | None = None,
    end: datetime | None = None,
) -> BookSummary:
    """core.book.read_book before the incremental replay (commit 86eb8c2), verbatim."""
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


PG_URL_ENV = "CENTAUR_TEST_PG_URL"


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param(
            "postgresql",
            id="postgresql",
            marks=[
                pytest.mark.postgres,
                pytest.mark.skipif(not os.environ.get(PG_URL_ENV), reason=f"{PG_URL_ENV} unset"),
            ],
        ),
    ],
)
def shared_ledger(request: pytest.FixtureRequest) -> Iterator[Ledger]:
    """One migrated ledger per backend for the module; every example works in accounts
    of its own. PostgreSQL: a fresh schema, dropped afterwards."""
    if request.param == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            engine = create_engine_for(f"sqlite:///{Path(folder) / 'ledger.db'}")
            upgrade(engine)
            try:
                yield Ledger(engine, SimClock(T0))
            finally:
                engine.dispose()
        return
    base = make_url(os.environ[PG_URL_ENV])
    schema = f"book_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    scoped = base.update_query_dict({"options": f"-csearch_path={schema}"})
    engine = create_engine_for(scoped.render_as_string(hide_password=False))
    try:
        upgrade(engine)
        yield Ledger(engine, SimClock(T0))
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


@dataclass
class World:
    """Writes a random history into its own accounts and checks the cache after each step."""

    ledger: Ledger
    accounts: list[int] = field(default_factory=list)
    orders: list[tuple[int, int, Side]] = field(default_factory=list)  # (id, account, side)
    caches: dict[int, BookCache] = field(default_factory=dict)
    now: datetime = T0
    serial: int = 0
    days: set[date] = field(default_factory=set)

    @classmethod
    def open(cls, ledger: Ledger, n_accounts: int = 2) -> World:
        world = cls(ledger)
        with ledger.unit_of_work() as uow:
            for _ in range(n_accounts):
                name = f"acct-{uuid.uuid4().hex}"
                row = uow.accounts.ensure(name, broker=BrokerKind.SIM, mode=AccountMode.PAPER)
                world.accounts.append(row.id)
            uow.commit()
        world.restart()
        return world

    def _id(self, stem: str) -> str:
        self.serial += 1
        return f"{stem}-{self.accounts[0]}-{self.serial}"

    def restart(self) -> None:
        self.caches = {a: BookCache(self.ledger, a) for a in self.accounts}

    def order(self, account: int, role: OrderRole, side: Side, risk: Decimal | None) -> None:
        with self.ledger.unit_of_work() as uow:
            draft_id = None
            if role is OrderRole.ENTRY:
                draft = uow.add(
                    DraftRow(
                        account_id=account,
                        symbol="X",
                        side=Side.BUY,
                        order_type=OrderType.STOP,
                        trigger_price=D(100) if risk is not None else None,
                        initial_stop=D(100) - risk if risk is not None else None,
                        qty=D(1),
                    )
                )
                draft_id = draft.id
            row = uow.add(
                OrderRow(
                    account_id=account,
                    draft_id=draft_id,
                    client_order_id=self._id("o"),
                    symbol="X",
                    side=side,
                    order_type=OrderType.MARKET,
                    time_in_force=TimeInForce.DAY,
                    qty=D(100),
                    role=role,
                    status=OrderStatus.ACCEPTED,
                    filled_qty=D(0),
                )
            )
            uow.commit()
            self.orders.append((row.id, account, side))

    def fill(
        self,
        index: int,
        symbol: str,
        qty: Decimal,
        price: Decimal,
        commission: Decimal,
        minutes: int,
        *,
        side: Side | None = None,
        commit: bool = True,
    ) -> None:
        """A fill of an existing order (on the order's side unless `side` says)."""
        if not self.orders:
            return
        order_id, _account, order_side = self.orders[index % len(self.orders)]
        side = side or order_side
        at = self._at(minutes)
        with self.ledger.unit_of_work() as uow:
            uow.session.add(
                FillRow(
                    order_id=order_id,
                    execution_id=self._id("x"),
                    symbol=symbol,
                    side=side,
                    qty=qty,
                    price=price,
                    commission=commission,
                    at=at,
                )
            )
            uow.flush()
            if commit:
                uow.commit()

    def adopt(self, account: int, symbol: str, qty: Decimal, price: Decimal, minutes: int) -> None:
        at = self._at(minutes)
        detail: dict[str, Any] = {"qty": qty, "price": price}
        if symbol:
            detail["symbol"] = symbol
        with self.ledger.unit_of_work() as uow:
            uow.risk_events.record(
                account, at.date(), kind=ADOPTED, blocking=False, detail=detail, at=at
            )
            uow.commit()

    def other_event(self, account: int) -> None:
        with self.ledger.unit_of_work() as uow:
            uow.risk_events.record(account, T0.date(), kind="entry_refused", blocking=True)
            uow.commit()

    def _at(self, minutes: int) -> datetime:
        """Mostly forward; a negative step is a fill reported late (older timestamp)."""
        at = self.now + timedelta(minutes=minutes)
        if minutes >= 0:
            self.now = at
        self.days.add(at.astimezone(NEW_YORK).date())
        return at

    def windows(self) -> list[tuple[datetime | None, datetime | None]]:
        out: list[tuple[datetime | None, datetime | None]] = [(None, None)]
        for day in sorted(self.days)[-3:]:
            start = datetime.combine(day, time(0), tzinfo=NEW_YORK)
            out.append((start, start + timedelta(days=1)))
            out.append((start - timedelta(days=6), start + timedelta(days=1)))
            out.append((start, None))
        return out

    def check(self) -> None:
        for account, cache in self.caches.items():
            for start, end in self.windows():
                cached = cache.book(start, end)
                with self.ledger.unit_of_work(read_only=True) as uow:
                    fresh = read_book(uow, account, start, end)
                    oracle = reference_read_book(uow, account, start, end)
                assert cached == fresh == oracle, (start, end)
                assert repr(cached) == repr(oracle)  # same digits, not only equal values
            holdings = cache.holdings()
            assert holdings == cache.book().holdings
            for symbol in {*SYMBOLS, "MU"}:
                expected = holdings.get(symbol.upper())
                assert cache.position(symbol) == (ZERO if expected is None else expected.qty)


prices = st.decimals(min_value=D("90"), max_value=D("110"), places=2)
quantities = st.integers(min_value=1, max_value=40).map(D)
step = st.one_of(
    st.tuples(
        st.just("order"),
        st.integers(0, 1),
        st.sampled_from(ROLES),
        st.sampled_from(Side),
        st.one_of(st.none(), st.decimals(min_value=D("0.5"), max_value=D("3"), places=2)),
    ),
    st.tuples(
        st.just("fill"),
        st.integers(0, 50),
        st.sampled_from(Side),
        st.sampled_from(SYMBOLS),
        quantities,
        prices,
        st.sampled_from([D(0), D(0), D("0.35"), D("1")]),
        st.one_of(st.integers(0, 90), st.integers(0, 0), st.integers(-240, -1), st.just(900)),
        st.booleans(),  # False: rolled back
    ),
    st.tuples(
        st.just("adopt"),
        st.integers(0, 1),
        st.sampled_from([*SYMBOLS, ""]),
        st.integers(-20, 20).map(D),
        prices,
        st.integers(-60, 30),
    ),
    st.tuples(st.just("other"), st.integers(0, 1)),
    st.tuples(st.just("restart")),
)


def play(world: World, steps: list[tuple[Any, ...]]) -> None:
    for item in steps:
        kind = item[0]
        if kind == "order":
            _, a, role, side, risk = item
            side = Side.BUY if role is OrderRole.ENTRY else side
            world.order(world.accounts[a], role, side, risk)
        elif kind == "fill":
            _, index, side, symbol, qty, price, commission, minutes, commit = item
            world.fill(index, symbol, qty, price, commission, minutes, side=side, commit=commit)
        elif kind == "adopt":
            _, a, symbol, qty, price, minutes = item
            world.adopt(world.accounts[a], symbol, qty, price, minutes)
        elif kind == "other":
            world.other_event(world.accounts[item[1]])
        else:
            world.restart()
        world.check()


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(steps=st.lists(step, min_size=1, max_size=30))
def test_cache_equals_a_fresh_replay_after_every_step(
    shared_ledger: Ledger, steps: list[tuple[Any, ...]]
) -> None:
    world = World.open(shared_ledger)
    play(world, [("order", 0, OrderRole.ENTRY, Side.BUY, D(1)), *steps])


def test_a_long_scripted_history_with_restarts(shared_ledger: Ledger) -> None:
    rng = random.Random(20260302)
    world = World.open(shared_ledger)
    for a in (0, 1):
        world.order(world.accounts[a], OrderRole.ENTRY, Side.BUY, D("1.5"))
        world.order(world.accounts[a], OrderRole.PROTECTION, Side.SELL, None)
    for n in range(400):
        roll = rng.random()
        if roll < 0.08:
            role = rng.choice(ROLES)
            side = Side.BUY if role is OrderRole.ENTRY else rng.choice(list(Side))
            risk = rng.choice([None, D("1.25"), D("2")])
            world.order(world.accounts[rng.randrange(2)], role, side, risk)
        elif roll < 0.85:
            minutes = rng.choice([0, 1, 5, 30, 400, -rng.randrange(1, 300)])
            world.fill(
                rng.randrange(len(world.orders)),
                rng.choice(SYMBOLS),
                D(rng.randrange(1, 30)),
                D(rng.randrange(9000, 11000)) / 100,
                rng.choice([D(0), D("0.5")]),
                minutes,
                commit=rng.random() > 0.05,
            )
        elif roll < 0.92:
            world.adopt(
                world.accounts[rng.randrange(2)],
                rng.choice(SYMBOLS),
                D(rng.randrange(-10, 10)),
                D(100),
                rng.randrange(-30, 30),
            )
        elif roll < 0.96:
            world.other_event(world.accounts[rng.randrange(2)])
        else:
            world.restart()
        if n % 3 == 0 or roll >= 0.85:
            world.check()
    world.check()


def test_in_order_facts_are_applied_without_a_rebuild(shared_ledger: Ledger) -> None:
    world = World.open(shared_ledger, n_accounts=1)
    world.order(world.accounts[0], OrderRole.ENTRY, Side.BUY, D(1))
    world.order(world.accounts[0], OrderRole.PROTECTION, Side.SELL, None)
    cache = world.caches[world.accounts[0]]
    world.check()
    for i in range(20):
        world.fill(i % 2, "AAPL", D(5), D(100 + i), D(0), 3)
        world.check()
    assert cache.rebuilds == 0
    world.fill(0, "AAPL", D(5), D(99), D(0), -500)  # reported late: older than the rest
    world.check()
    assert cache.rebuilds == 1


def test_a_late_fill_is_replayed_in_its_place(shared_ledger: Ledger) -> None:
    """Average cost depends on the order: a buy reported after a sell, but executed
    before it, changes the sell's P&L (by hand: avg (90+100)/2 = 95, 5 x (110-95) = 75)."""
    world = World.open(shared_ledger, n_accounts=1)
    world.order(world.accounts[0], OrderRole.EXTERNAL, Side.BUY, None)
    world.order(world.accounts[0], OrderRole.PROTECTION, Side.SELL, None)
    cache = world.caches[world.accounts[0]]
    world.fill(0, "AAPL", D(10), D(100), D(0), 10)
    world.fill(1, "AAPL", D(5), D(110), D(0), 10)
    assert cache.book().realized == D(50)
    world.fill(0, "AAPL", D(10), D(90), D(0), -15)  # executed before both
    book = cache.book()
    assert book.realized == D(75) and book.holdings["AAPL"] == Holding("AAPL", D(15), D(95))
    world.check()


def test_held_in_sees_the_unit_of_works_own_facts_and_keeps_them_out(
    shared_ledger: Ledger,
) -> None:
    """The fill -> stop path asks inside the fill's own transaction: the answer must count
    the uncommitted fill (as `ledger_position` does), and the cache must never keep it."""
    world = World.open(shared_ledger)
    world.order(world.accounts[0], OrderRole.ENTRY, Side.BUY, D(1))
    world.order(world.accounts[1], OrderRole.EXTERNAL, Side.BUY, None)
    world.fill(0, "AAPL", D(10), D(100), D(0), 1)
    world.fill(1, "AAPL", D(7), D(100), D(0), 1)  # the other account's
    account = world.accounts[0]
    cache = world.caches[account]
    before = cache.book()
    world.fill(0, "AAPL", D(3), D(101), D(0), 1)  # committed after the cache's last look
    order_id = world.orders[0][0]
    with shared_ledger.unit_of_work() as uow:
        uow.session.add(
            FillRow(
                order_id=order_id,
                execution_id=world._id("pending"),
                symbol="aapl",
                side=Side.BUY,
                qty=D(5),
                price=D(102),
                at=world.now + timedelta(minutes=1),
            )
        )
        uow.risk_events.record(
            account, T0.date(), kind=ADOPTED, blocking=False, detail={"symbol": "MU", "qty": 4}
        )
        for symbol in ("AAPL", "MU", "NVDA"):
            expected = read_book(uow, account).qty(symbol)
            assert cache.held_in(uow, symbol) == expected
            if symbol != "AAPL":  # ledger_position matches the stored symbol's case
                assert expected == ledger_position(uow, account, symbol)
        assert cache.held_in(uow, "AAPL") == D(18)
        # not committed: rolled back on leaving the block
    assert cache.book(None, None) != before  # the committed fill only
    world.check()
    assert cache.position("AAPL") == D(13) and cache.position("MU") == D(0)


def test_callers_cannot_edit_the_cached_book(shared_ledger: Ledger) -> None:
    world = World.open(shared_ledger, n_accounts=1)
    world.order(world.accounts[0], OrderRole.ENTRY, Side.BUY, D(1))
    world.fill(0, "AAPL", D(5), D(100), D("0.5"), 1)
    cache = world.caches[world.accounts[0]]
    book = cache.book()
    book.holdings.clear()
    book.by_day.clear()
    world.check()
