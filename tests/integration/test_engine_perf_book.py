"""The engine's incremental book stays equal to a fresh replay of the ledger, and the
per-call work of /status and of the fill -> protection path does not grow with history.

A trading day driven through the real engine (adopted position, entries filled and
protected, stop-outs, partial fills, an external order, a position changed outside
Centaur, a fill reported late, restarts, the next day): after every step the cached book
(risk gate, status, protection book) must equal `read_book` on the ledger.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from brokers.sim import PartialFills
from core import book as book_module
from core.book import read_book
from core.book_cache import BookCache
from core.clock import NEW_YORK
from core.domain import OrderRole, OrderStatus, OrderType, Side, Symbol, TimeInForce
from core.ledger import FillRow, OrderRow
from core.status import StatusQueries
from tests.kit.brokers import AAPL, make_request
from tests.kit.engine import EngineKit, engine_kit, risk_config

D = Decimal
MU = Symbol("MU")
NVDA = Symbol("NVDA")
AMD = Symbol("AMD")
RISK = risk_config(max_trades_per_day=50, max_daily_loss_usd=D(10**6), max_daily_loss_r=D(100))


def _windows(kit: EngineKit) -> list[tuple[datetime | None, datetime | None]]:
    day = kit.engine.day.day
    start = datetime.combine(day, time(0), tzinfo=NEW_YORK)
    end = start + timedelta(days=1)
    week = start - timedelta(days=day.weekday())
    month = datetime.combine(day.replace(day=1), time(0), tzinfo=NEW_YORK)
    return [(start, end), (None, None), (week, end), (month, end)]


def check(kit: EngineKit) -> None:
    """The cached book, every way the engine reads it, equals a fresh replay."""
    engine = kit.engine
    account = engine.ctx.account.row_id
    with kit.ledger.unit_of_work(read_only=True) as uow:
        fresh = {w: read_book(uow, account, *w) for w in _windows(kit)}
    assert engine.risk.day_book() == fresh[_windows(kit)[0]]
    for window, expected in fresh.items():
        assert engine.risk.books.book(*window) == expected
        assert BookCache(kit.ledger, account).book(*window) == expected  # a cold start
    holdings = fresh[(None, None)].holdings
    for symbol in ("AAPL", "MU", "NVDA", "AMD", "TSLA", "none"):
        held = holdings[symbol].qty if symbol in holdings else D(0)
        assert engine.book.position(symbol) == held
        with kit.ledger.unit_of_work() as uow:  # what the fill -> stop path reads
            assert engine.book.books.held_in(uow, symbol) == held
    status = StatusQueries(engine)
    for period in ("day", "week", "month"):
        report = status.pnl(period)
        start = datetime.combine(report.first_day, time(0), tzinfo=NEW_YORK)
        end = datetime.combine(report.last_day + timedelta(days=1), time(0), tzinfo=NEW_YORK)
        with kit.ledger.unit_of_work(read_only=True) as uow:
            expected = read_book(uow, account, start, end)
        assert (report.realized, report.realized_r, report.exits) == (
            expected.realized,
            expected.realized_r,
            len(expected.exits),
        )


def _history(kit: EngineKit, symbol: str, count: int, *, days_ago: int = 3) -> None:
    """Round trips of `symbol` before today, written straight into the ledger."""
    account = kit.engine.ctx.account.row_id
    base = kit.clock.now() - timedelta(days=days_ago)
    with kit.ledger.unit_of_work() as uow:
        for i in range(count):
            at = base + timedelta(minutes=i)
            side = Side.BUY if i % 2 == 0 else Side.SELL
            row = uow.add(
                OrderRow(
                    account_id=account,
                    client_order_id=f"hist-{symbol}-{days_ago}-{i}",
                    broker_order_id=f"hist-b-{symbol}-{days_ago}-{i}",
                    symbol=symbol,
                    side=side,
                    order_type=OrderType.MARKET,
                    time_in_force=TimeInForce.DAY,
                    qty=D(10),
                    role=OrderRole.EXTERNAL,
                    status=OrderStatus.FILLED,
                    filled_qty=D(10),
                    avg_fill_price=D(100),
                    created_at=at,
                    updated_at=at,
                    closed_at=at,
                )
            )
            uow.session.add(
                FillRow(
                    order_id=row.id,
                    execution_id=f"hist-x-{symbol}-{days_ago}-{i}",
                    symbol=symbol,
                    side=side,
                    qty=D(10),
                    price=D(100) + (D(i % 7) if side is Side.SELL else D(0)),
                    commission=D("0.1"),
                    at=at,
                )
            )
        uow.commit()


async def _enter(kit: EngineKit, symbol: str, qty: int) -> None:
    review = await kit.engine.drafts.create_buy(symbol, D("101"), D("99"), qty=D(qty))
    result = await kit.engine.drafts.confirm(review.draft_id)
    assert result.ok, result


async def test_the_cached_book_follows_a_whole_trading_day(tmp_path: Path) -> None:
    kit = await engine_kit(tmp_path, seed={AAPL: (D(40), D(98))}, risk=RISK)
    check(kit)  # the adopted position
    _history(kit, "MU", 40)
    _history(kit, "AAPL", 20, days_ago=1)
    check(kit)
    for symbol in (NVDA, MU, AMD):
        await kit.bar("100", "100.5", "99.8", "100.2", symbol=symbol)
    await _enter(kit, NVDA, 30)
    await kit.bar("100.5", "101.5", "100.4", "101.2", symbol=NVDA)  # filled and protected
    check(kit)
    kit.broker.set_partial_fills(PartialFills(chunks=(D(7),)))
    await _enter(kit, MU, 20)
    await kit.bar("100.5", "101.5", "100.4", "101.2", symbol=MU)  # 7 of 20
    check(kit)
    await kit.bar("101.2", "101.6", "101", "101.4", symbol=MU)  # the rest
    kit.broker.set_partial_fills(PartialFills())
    check(kit)
    # An order placed outside Centaur, adopted and protected.
    await kit.broker.submit(
        make_request(OrderType.MARKET, client_order_id="app-order", symbol=AMD, qty=5)
    )
    await kit.bar("101.2", "101.3", "101", "101.1", symbol=AMD)
    check(kit)
    # The trailing stops trigger: stop-outs with P&L (and R for our entries).
    for symbol in (NVDA, MU, AAPL):
        await kit.bar("101", "101", "90", "90.5", symbol=symbol)
    await kit.idle()
    check(kit)
    book = kit.engine.risk.day_book()
    assert len(book.exits) >= 3 and book.realized_r != 0
    # A position changed outside Centaur: the reconciler adopts the difference.
    kit.broker.seed_position(MU, D(12), D(97))
    await kit.engine.reconciler.run("test")
    check(kit)
    # A fill reported late, timestamped before everything applied so far.
    rebuilds = kit.engine.risk.books.rebuilds
    _history(kit, "TSLA", 3, days_ago=40)
    check(kit)
    assert kit.engine.risk.books.rebuilds == rebuilds + 1
    # A restart, then the next day: yesterday's fills leave today's P&L, holdings stay.
    kit = await kit.restart()
    check(kit)
    holdings = kit.engine.risk.day_book().holdings
    kit.clock.set(kit.clock.now() + timedelta(days=1))
    await kit.engine.tick()
    check(kit)
    assert kit.engine.risk.day_book().holdings == holdings
    await kit.engine.stop()


class Recorder:
    """The SQL statements the ledger runs while `on`."""

    def __init__(self) -> None:
        self.on = False
        self.seen: list[str] = []

    def start(self) -> None:
        self.seen = []
        self.on = True

    def stop(self) -> list[str]:
        self.on = False
        return self.seen

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if self.on:
            self.seen.append(" ".join(statement.split()))


@pytest.fixture
def statements() -> Iterator[Recorder]:
    recorder = Recorder()
    event.listen(Engine, "before_cursor_execute", recorder)
    try:
        yield recorder
    finally:
        event.remove(Engine, "before_cursor_execute", recorder)


async def _status_statements(kit: EngineKit, statements: Recorder) -> list[str]:
    status = StatusQueries(kit.engine)
    await status.status()  # warm: the cache catches up once
    statements.start()
    await status.status()
    return statements.stop()


async def test_status_does_not_replay_history(
    tmp_path: Path, statements: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    kit = await engine_kit(tmp_path, risk=RISK)
    await _enter(kit, "AAPL", 30)
    await kit.bar("100.5", "101.5", "100.4", "101.2")
    small = await _status_statements(kit, statements)
    _history(kit, "AAPL", 3000, days_ago=5)
    await kit.engine.tick()
    full_replays: list[object] = []
    load_facts = book_module.load_facts

    def counting(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("after", (0, 0)) == (0, 0):
            full_replays.append(args)
        return load_facts(*args, **kwargs)

    monkeypatch.setattr("core.book_cache.load_facts", counting)
    large = await _status_statements(kit, statements)
    assert large == small  # the same statements, whatever the history
    assert not full_replays
    assert not any("NOT IN" in s.upper() for s in large)  # live orders by index look-up
    await kit.engine.stop()


async def test_the_fill_to_stop_path_does_not_grow_with_history(
    tmp_path: Path, statements: Recorder
) -> None:
    """The same statements on the fill -> submit path with 0 or 3,000 fills of history."""
    kit = await engine_kit(tmp_path, risk=RISK)
    broker = kit.broker
    submit = broker.submit
    captured: list[list[str]] = []

    async def timed_submit(request: Any) -> Any:
        if request.order_type is OrderType.TRAILING_STOP and statements.on:
            captured.append(statements.stop())
        return await submit(request)

    broker.submit = timed_submit  # type: ignore[method-assign]
    handle = kit.engine.handle_event

    async def timed_handle(broker_event: Any) -> None:
        if broker_event.fill is not None and broker_event.order.side is Side.BUY:
            statements.start()
        await handle(broker_event)

    kit.engine.handle_event = timed_handle  # type: ignore[method-assign,assignment]
    _history(kit, "MU", 3000, days_ago=5)
    for symbol in (NVDA, MU):
        await kit.bar("100", "100.5", "99.8", "100.2", symbol=symbol)
    await kit.engine.tick()  # the cache catches up off the hot path
    for symbol in (NVDA, MU):  # no history, then 3,000 fills of history
        await _enter(kit, symbol, 30)
        await kit.bar("100.5", "101.5", "100.4", "101.2", symbol=symbol)
    assert len(captured) == 2, captured
    first, second = captured
    assert first == second
    assert not any(" LIKE " in s.upper() for s in second)  # ids by index range
    assert not any("SAVEPOINT" in s.upper() for s in second)
    writes = [" ".join(s.split()[:3]) for s in second if s.split()[0] in ("INSERT", "UPDATE")]
    assert sorted(writes) == sorted(
        [
            "INSERT INTO fills",
            "INSERT INTO order_events",  # the entry's fill
            "UPDATE orders SET",  # the entry: FILLED
            "INSERT INTO orders",  # the protection intent
            "INSERT INTO order_events",  # its "intent" event
            "INSERT INTO notifications",  # OrderFilled, in the same commit
        ]
    )
    assert len(second) <= 16, second  # every statement of the path, reads included
    await kit.engine.stop()
