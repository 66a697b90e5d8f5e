"""The tracker's lean writes (core.order_writes) write exactly what the repositories
write, and a failing fill hook costs the fill nothing.

core.order_writes mirrors `OrderRepository.record_intent` / `.transition` and
`OrderEventRepository.record` with single Core statements (the fill -> stop hot path):
these tests write the same facts both ways and compare every column, so that a change
to one side that the other does not follow fails here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from core.clock import NEW_YORK
from core.domain import (
    ClientOrderId,
    ExecutionId,
    Fill,
    OrderRequest,
    OrderRole,
    OrderStatus,
    OrderType,
    Side,
    Symbol,
    TimeInForce,
)
from core.events import ProtectionPlaced
from core.ledger import (
    AccountRow,
    DraftRow,
    EventSource,
    FillRow,
    Ledger,
    OrderEventRow,
    OrderRow,
    UnitOfWork,
)
from core.order_views import OrderView
from core.order_writes import add_fill, apply_transition, insert_intent, record_event
from tests.kit.engine import engine_kit

D = Decimal
AT = datetime(2026, 3, 2, 15, 1, 2, 345678, tzinfo=UTC)


def _request(cid: str, **overrides: Any) -> OrderRequest:
    values: dict[str, Any] = {
        "client_order_id": ClientOrderId(cid),
        "symbol": Symbol("AAPL"),
        "side": Side.SELL,
        "qty": D("40.000"),
        "order_type": OrderType.TRAILING_STOP,
        "time_in_force": TimeInForce.GTC,
        "trail_percent": D("1.20"),
    }
    values.update(overrides)
    return OrderRequest(**values)


def _columns(row: object, *skip: str) -> dict[str, object]:
    table = type(row).__table__  # type: ignore[attr-defined]
    return {c.key: getattr(row, c.key) for c in table.columns if c.key not in skip}


def _reload(ledger: Ledger, row_type: type[Any], row_id: int) -> Any:
    with ledger.unit_of_work(read_only=True) as uow:
        return uow.session.get(row_type, row_id)


def _events(ledger: Ledger, order_id: int) -> list[dict[str, object]]:
    with ledger.unit_of_work(read_only=True) as uow:
        rows = uow.order_events.for_order(order_id)
        return [_columns(r, "id", "order_id") for r in rows]


def _draft(uow: UnitOfWork, account: AccountRow) -> int:
    draft = uow.drafts.add(
        DraftRow(
            account_id=account.id,
            symbol="AAPL",
            side=Side.BUY,
            order_type=OrderType.STOP,
            trigger_price=D("101"),
            initial_stop=D("99"),
            qty=D(40),
        )
    )
    return draft.id


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"order_type": OrderType.STOP, "trail_percent": None, "stop_price": D("98.70")},
        {
            "side": Side.BUY,
            "order_type": OrderType.STOP_LIMIT,
            "time_in_force": TimeInForce.DAY,
            "trail_percent": None,
            "stop_price": D("101"),
            "limit_price": D("101.25"),
            "extended_hours": True,
            "qty": D("12.5"),
        },
    ],
)
def test_an_intent_is_written_as_the_repository_writes_it(
    ledger: Ledger, account: AccountRow, overrides: dict[str, Any]
) -> None:
    with ledger.unit_of_work() as uow:
        draft_id = _draft(uow, account)
        parent = uow.orders.record_intent(
            _request("parent"), account_id=account.id, role=OrderRole.ENTRY
        )
        old = uow.orders.record_intent(
            _request("old", **overrides),
            account_id=account.id,
            role=OrderRole.PROTECTION,
            draft_id=draft_id,
            parent_order_id=parent.id,
            order_ref="old",
        )
        old_view = OrderView.of(old)
        view = insert_intent(
            uow,
            _request("new", **overrides),
            account_id=account.id,
            role=OrderRole.PROTECTION,
            draft_id=draft_id,
            parent_order_id=parent.id,
            order_ref="new",
        )
        uow.commit()
    new_row = _reload(ledger, OrderRow, view.id)
    old_row = _reload(ledger, OrderRow, old.id)
    skip = ("id", "client_order_id", "order_ref")
    assert _columns(new_row, *skip) == _columns(old_row, *skip)
    assert view == OrderView.of(new_row)  # the view handed out is what the ledger holds
    assert _strip(view) == _strip(old_view)  # ... and what the repository's row showed
    assert _events(ledger, view.id) == _events(ledger, old.id)


def _strip(view: OrderView) -> dict[str, object]:
    return {k: getattr(view, k) for k in OrderView.__slots__ if k not in ("id", "client_order_id")}


@pytest.mark.parametrize("at", [AT, None])
@pytest.mark.parametrize("to_status", [OrderStatus.ACCEPTED, OrderStatus.FILLED])
def test_a_transition_and_an_event_are_written_as_the_repositories_write_them(
    ledger: Ledger, account: AccountRow, at: datetime | None, to_status: OrderStatus
) -> None:
    with ledger.unit_of_work() as uow:
        ids = [
            uow.orders.record_intent(
                _request(cid), account_id=account.id, role=OrderRole.PROTECTION
            ).id
            for cid in ("a", "b")
        ]
        uow.commit()
    detail = {"execution_id": "x1", "qty": D(40), "price": D("101.25")}
    with ledger.unit_of_work() as uow:
        a, b = (uow.orders.require(i) for i in ids)
        kwargs: dict[str, Any] = {"kind": "fill", "source": EventSource.BROKER, "at": at}
        uow.orders.transition(a, to_status, detail=detail, **kwargs)
        apply_transition(uow, b, to_status, detail=detail, **kwargs)
        uow.order_events.record(a.id, from_status=to_status, to_status=to_status, **kwargs)
        record_event(uow, b.id, from_status=to_status, to_status=to_status, **kwargs)
        uow.flush()
        uow.commit()
    skip = ("id", "client_order_id", "order_ref")
    assert _columns(_reload(ledger, OrderRow, ids[1]), *skip) == _columns(
        _reload(ledger, OrderRow, ids[0]), *skip
    )
    assert _events(ledger, ids[1]) == _events(ledger, ids[0])


def test_a_fill_is_written_as_the_repository_writes_it(ledger: Ledger, account: AccountRow) -> None:
    with ledger.unit_of_work() as uow:
        order = uow.orders.record_intent(
            _request("entry", side=Side.BUY), account_id=account.id, role=OrderRole.ENTRY
        )
        uow.commit()

    def fill(execution_id: str) -> Fill:
        return Fill(
            execution_id=ExecutionId(execution_id),
            broker_order_id=order.broker_order_id,  # type: ignore[arg-type]
            client_order_id=ClientOrderId(order.client_order_id),
            symbol=Symbol("AAPL"),
            side=Side.BUY,
            qty=D("12.5"),
            price=D("101.2345"),
            timestamp=AT,
            commission=D("0.35"),
        )

    with ledger.unit_of_work() as uow:
        row = uow.orders.require(order.id)
        assert uow.fills.add_if_new(order.id, fill("x-repo"))
        assert add_fill(uow, row, fill("x-lean"))
        uow.commit()
    with ledger.unit_of_work(read_only=True) as uow:
        rows = uow.session.scalars(select(FillRow).order_by(FillRow.id)).all()
        repo, lean = (_columns(r, "id", "execution_id") for r in rows)
    assert lean == repo


def test_lean_writes_roll_back_with_their_unit_of_work(ledger: Ledger, account: AccountRow) -> None:
    with pytest.raises(RuntimeError), ledger.unit_of_work() as uow:
        view = insert_intent(uow, _request("gone"), account_id=account.id, role=OrderRole.ENTRY)
        record_event(uow, view.id, kind="note", source=EventSource.ENGINE)
        raise RuntimeError("the unit of work fails before its commit")
    with ledger.unit_of_work(read_only=True) as uow:
        assert uow.orders.by_client_order_id("gone") is None
        assert uow.session.scalars(select(OrderEventRow)).all() == []


async def test_a_failing_fill_hook_loses_neither_the_fill_nor_the_protection(
    tmp_path: Path,
) -> None:
    """The hook runs without a savepoint: when it raises after writing its intent, the
    whole unit of work is dropped and the event applied again without it; the entry is
    then protected by its task, once."""
    kit = await engine_kit(tmp_path)
    tracker = kit.engine.tracker
    real_hook = tracker.fill_hook
    assert real_hook is not None
    calls: list[str] = []

    def failing_hook(uow: UnitOfWork, entry: OrderView) -> object | None:
        calls.append(entry.client_order_id)
        real_hook(uow, entry)  # writes the trailing stop's intent ...
        raise RuntimeError("the hook breaks after writing")  # ... then fails

    tracker.fill_hook = failing_hook
    review = await kit.engine.drafts.create_buy("AAPL", D("101"), D("99"), qty=D(40))
    assert (await kit.engine.drafts.confirm(review.draft_id)).ok
    await kit.bar("100.5", "101.5", "100.4", "101.2")
    await kit.advance(2)
    assert len(calls) == 1
    orders = kit.ledger_orders()
    entry = next(o for o in orders if o.role is OrderRole.ENTRY)
    assert entry.status is OrderStatus.FILLED and entry.filled_qty == D(40)
    with kit.ledger.unit_of_work(read_only=True) as uow:
        assert [f.qty for f in uow.fills.for_order(entry.id)] == [D(40)]
    protection = [o for o in orders if o.role is OrderRole.PROTECTION]
    assert [(o.status, o.qty) for o in protection] == [(OrderStatus.ACCEPTED, D(40))]
    assert protection[0].client_order_id.endswith("-ts1")  # the rolled-back intent's id
    assert len(kit.of_type(ProtectionPlaced)) == 1
    sells = [o for o in await kit.broker.list_orders(open_only=True) if o.side is Side.SELL]
    assert [s.qty for s in sells] == [D(40)]
    await kit.engine.stop()


def test_timestamps_are_the_ledger_clock_in_utc(ledger: Ledger, account: AccountRow) -> None:
    local = AT.astimezone(NEW_YORK) - timedelta(minutes=5)
    with ledger.unit_of_work() as uow:
        view = insert_intent(uow, _request("t"), account_id=account.id, role=OrderRole.ENTRY)
        record_event(uow, view.id, kind="note", source=EventSource.ENGINE, at=local)
        uow.commit()
    assert view.created_at == ledger.clock.now()
    (note,) = (e for e in _events(ledger, view.id) if e["kind"] == "note")
    assert note["at"] == local and note["created_at"] == ledger.clock.now()
    assert note["at"].tzinfo is UTC  # type: ignore[attr-defined]
