"""Order intents, lifecycle events, de-duplicated fills and protection links."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy.exc import IntegrityError

from core.domain import (
    BrokerOrderId,
    ClientOrderId,
    ExecutionId,
    Fill,
    OrderRequest,
    OrderRole,
    OrderStatus,
    OrderType,
    Side,
    Symbol,
)
from core.ledger import (
    AccountRow,
    EventSource,
    FillRow,
    Ledger,
    OrderRow,
    ProtectionKind,
    ProtectionStatus,
)

WHEN = datetime(2026, 3, 2, 15, 1, tzinfo=UTC)


def _request(coid: str, symbol: str = "AAPL", side: Side = Side.BUY) -> OrderRequest:
    if side is Side.BUY:
        return OrderRequest(
            client_order_id=ClientOrderId(coid),
            symbol=Symbol(symbol),
            side=side,
            qty=Decimal("40"),
            order_type=OrderType.STOP,
            stop_price=Decimal("191.52"),
        )
    return OrderRequest(
        client_order_id=ClientOrderId(coid),
        symbol=Symbol(symbol),
        side=side,
        qty=Decimal("40"),
        order_type=OrderType.TRAILING_STOP,
        trail_percent=Decimal("0.8"),
    )


def _fill(execution_id: str, qty: str = "10", price: str = "191.5234") -> Fill:
    return Fill(
        execution_id=ExecutionId(execution_id),
        broker_order_id=BrokerOrderId("b-1"),
        client_order_id=ClientOrderId("c-1"),
        symbol=Symbol("AAPL"),
        side=Side.BUY,
        qty=Decimal(qty),
        price=Decimal(price),
        timestamp=WHEN,
        commission=Decimal("0.0001"),
    )


def _entry(ledger: Ledger, account: AccountRow, coid: str = "c-1") -> OrderRow:
    with ledger.unit_of_work() as uow:
        order = uow.orders.record_intent(
            _request(coid), account_id=account.id, role=OrderRole.ENTRY
        )
        uow.commit()
        return order


def test_intent_is_written_with_its_event(ledger: Ledger, account: AccountRow) -> None:
    order = _entry(ledger, account)
    with ledger.unit_of_work() as uow:
        loaded = uow.orders.by_client_order_id("c-1")
        assert loaded is not None and loaded.id == order.id
        assert loaded.status is OrderStatus.PENDING_SUBMIT
        assert loaded.filled_qty == 0 and loaded.version == 1
        assert [(e.kind, e.to_status) for e in uow.order_events.for_order(order.id)] == [
            ("intent", OrderStatus.PENDING_SUBMIT)
        ]


def test_duplicate_client_order_id_is_refused(ledger: Ledger, account: AccountRow) -> None:
    _entry(ledger, account)
    with ledger.unit_of_work() as uow, pytest.raises(IntegrityError):
        uow.orders.record_intent(_request("c-1"), account_id=account.id, role=OrderRole.ENTRY)


def test_transition_records_history_and_closes(ledger: Ledger, account: AccountRow) -> None:
    order = _entry(ledger, account)
    with ledger.unit_of_work() as uow:
        row = uow.orders.require(order.id)
        row.broker_order_id = "b-1"
        uow.orders.transition(
            row, OrderStatus.SUBMITTED, kind="submit_sent", source=EventSource.ENGINE
        )
        uow.orders.transition(
            row,
            OrderStatus.CANCELED,
            kind="broker_update",
            source=EventSource.BROKER,
            detail={"raw": "canceled"},
            at=WHEN + timedelta(minutes=1),
        )
        uow.commit()
    with ledger.unit_of_work() as uow:
        closed = uow.orders.by_broker_order_id("b-1")
        assert closed is not None and closed.is_terminal
        assert closed.closed_at == WHEN + timedelta(minutes=1)
        events = uow.order_events.for_order(order.id)
        assert [(e.from_status, e.to_status, e.source) for e in events] == [
            (None, OrderStatus.PENDING_SUBMIT, EventSource.ENGINE),
            (OrderStatus.PENDING_SUBMIT, OrderStatus.SUBMITTED, EventSource.ENGINE),
            (OrderStatus.SUBMITTED, OrderStatus.CANCELED, EventSource.BROKER),
        ]
        assert events[-1].detail == {"raw": "canceled"}


def test_open_orders_and_queries_by_role_and_status(ledger: Ledger, account: AccountRow) -> None:
    entry = _entry(ledger, account, "c-1")
    done = _entry(ledger, account, "c-2")
    with ledger.unit_of_work() as uow:
        uow.orders.transition(
            uow.orders.require(done.id), OrderStatus.FILLED, kind="fill", source=EventSource.BROKER
        )
        protection = uow.orders.record_intent(
            _request("c-1-p", side=Side.SELL),
            account_id=account.id,
            role=OrderRole.PROTECTION,
            parent_order_id=entry.id,
        )
        uow.orders.record_intent(
            _request("c-3", symbol="MU"), account_id=account.id, role=OrderRole.ENTRY
        )
        uow.commit()

    with ledger.unit_of_work(read_only=True) as uow:
        open_ids = [o.client_order_id for o in uow.orders.open_orders(account.id)]
        assert open_ids == ["c-1", "c-1-p", "c-3"]
        aapl = uow.orders.open_orders(account.id, symbol="AAPL", role=OrderRole.ENTRY)
        assert [o.client_order_id for o in aapl] == ["c-1"]
        entries = uow.orders.by_role(account.id, OrderRole.ENTRY)
        assert [o.client_order_id for o in entries] == ["c-1", "c-2", "c-3"]
        filled = uow.orders.by_role(account.id, OrderRole.ENTRY, [OrderStatus.FILLED])
        assert [o.client_order_id for o in filled] == ["c-2"]
        pending = uow.orders.by_status(account.id, [OrderStatus.PENDING_SUBMIT])
        assert len(pending) == 3
        assert [o.id for o in uow.orders.children(entry.id)] == [protection.id]


def test_fill_is_recorded_once(ledger: Ledger, account: AccountRow) -> None:
    order = _entry(ledger, account)
    with ledger.unit_of_work() as uow:
        assert uow.fills.add_if_new(order.id, _fill("exec-1")) is True
        assert uow.fills.add_if_new(order.id, _fill("exec-1")) is False
        assert uow.fills.add_if_new(order.id, _fill("exec-2", qty="5")) is True
        uow.commit()
    with ledger.unit_of_work() as uow:  # a replayed update after a restart
        assert uow.fills.add_if_new(order.id, _fill("exec-1")) is False
        uow.commit()
    with ledger.unit_of_work(read_only=True) as uow:
        fills = uow.fills.for_order(order.id)
        assert [f.execution_id for f in fills] == ["exec-1", "exec-2"]
        assert uow.fills.filled_qty(order.id) == Decimal("15")
        assert fills[0].price == Decimal("191.5234") and fills[0].at == WHEN
        day = uow.fills.for_account_between(account.id, WHEN, WHEN + timedelta(seconds=1))
        assert len(day) == 2


def test_fill_race_is_caught_by_the_unique_constraint(
    ledger: Ledger, account: AccountRow, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check misses a concurrent insert: the constraint reports it, the transaction lives."""
    order = _entry(ledger, account)
    with ledger.unit_of_work() as uow:
        assert uow.fills.add_if_new(order.id, _fill("exec-1"))
        uow.commit()
    with ledger.unit_of_work() as uow:
        real = uow.fills.by_execution_id
        calls: list[str] = []

        def blind_first(execution_id: str) -> FillRow | None:
            calls.append(execution_id)
            return None if len(calls) == 1 else real(execution_id)

        monkeypatch.setattr(uow.fills, "by_execution_id", blind_first)
        assert uow.fills.add_if_new(order.id, _fill("exec-1")) is False
        assert len(calls) == 2
        monkeypatch.undo()
        assert uow.fills.add_if_new(order.id, _fill("exec-2")) is True  # still usable
        uow.commit()
    with ledger.unit_of_work(read_only=True) as uow:
        assert [f.execution_id for f in uow.fills.for_order(order.id)] == ["exec-1", "exec-2"]


def test_concurrent_duplicate_fills_are_recorded_once(ledger: Ledger, account: AccountRow) -> None:
    """Several threads (stream, reconcile, replay) report the same executions at once."""
    order = _entry(ledger, account)
    execution_ids = [f"exec-{n}" for n in range(20)]

    def report_all() -> int:
        new = 0
        for execution_id in execution_ids:
            with ledger.unit_of_work() as uow:
                new += uow.fills.add_if_new(order.id, _fill(execution_id))
                uow.commit()
        return new

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: report_all(), range(4)))

    assert sum(results) == len(execution_ids)
    with ledger.unit_of_work(read_only=True) as uow:
        assert len(uow.fills.for_order(order.id)) == len(execution_ids)


def test_protection_links(ledger: Ledger, account: AccountRow) -> None:
    entry = _entry(ledger, account, "c-1")
    other = _entry(ledger, account, "c-2")
    with ledger.unit_of_work() as uow:
        trail = uow.orders.record_intent(
            _request("c-1-p1", side=Side.SELL), account_id=account.id, role=OrderRole.PROTECTION
        )
        stop = uow.orders.record_intent(
            _request("c-1-p2", side=Side.SELL), account_id=account.id, role=OrderRole.PROTECTION
        )
        first = uow.protection_links.link(
            entry.id, trail.id, protected_qty=Decimal("10"), kind=ProtectionKind.TRAILING
        )
        uow.protection_links.set_status(first, ProtectionStatus.SUPERSEDED)
        uow.protection_links.link(
            entry.id, stop.id, protected_qty=Decimal("40"), kind=ProtectionKind.STOP
        )
        uow.commit()

    with ledger.unit_of_work(read_only=True) as uow:
        active = uow.protection_links.active_for_entry(entry.id)
        assert [(link.protection_order_id, link.protected_qty) for link in active] == [
            (stop.id, Decimal("40"))
        ]
        assert uow.protection_links.active_for_entry(other.id) == []
        assert len(uow.protection_links.active_for_symbol(account.id, "AAPL")) == 1
        assert uow.protection_links.active_for_symbol(account.id, "MU") == []
        assert len(uow.protection_links.active_for_account(account.id)) == 1
        (old,) = uow.protection_links.for_protection_order(trail.id)
        assert old.status is ProtectionStatus.SUPERSEDED


def test_linking_the_same_pair_twice_keeps_one_link(ledger: Ledger, account: AccountRow) -> None:
    """The reconciler's link_missing and the protection path can both link one pair (a
    reconcile landing between the protection's ack and its announcement): no error."""
    entry = _entry(ledger, account, "c-1")
    with ledger.unit_of_work() as uow:
        trail = uow.orders.record_intent(
            _request("c-1-p1", side=Side.SELL), account_id=account.id, role=OrderRole.PROTECTION
        )
        uow.commit()
    for _ in range(2):
        with ledger.unit_of_work() as uow:
            uow.protection_links.link(
                entry.id, trail.id, protected_qty=Decimal("10"), kind=ProtectionKind.TRAILING
            )
            uow.commit()
    with ledger.unit_of_work(read_only=True) as uow:
        assert len(uow.protection_links.for_protection_order(trail.id)) == 1
