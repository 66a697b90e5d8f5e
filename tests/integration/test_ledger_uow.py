"""Unit of work: explicit commit, rollback otherwise, clock-stamped times, optimistic locking."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from core.clock import SimClock
from core.domain import (
    ClientOrderId,
    OrderRequest,
    OrderRole,
    OrderType,
    Side,
    Symbol,
)
from core.ledger import AccountRow, AuditKind, DraftStatus, Ledger, StaleDataError
from core.ledger.uow import ReadOnlyError


def _request(coid: str = "c-1") -> OrderRequest:
    return OrderRequest(
        client_order_id=ClientOrderId(coid),
        symbol=Symbol("AAPL"),
        side=Side.BUY,
        qty=Decimal("40"),
        order_type=OrderType.STOP,
        stop_price=Decimal("191.52"),
    )


def test_commit_persists(ledger: Ledger) -> None:
    with ledger.unit_of_work() as uow:
        uow.audit.record(AuditKind.COMMAND, "status", ok=True)
        uow.commit()
    with ledger.unit_of_work() as uow:
        assert [row.action for row in uow.audit.recent()] == ["status"]


def test_leaving_without_commit_rolls_back(ledger: Ledger) -> None:
    with ledger.unit_of_work() as uow:
        uow.audit.record(AuditKind.COMMAND, "status", ok=True)
    with ledger.unit_of_work() as uow:
        assert uow.audit.recent() == []


def test_exception_rolls_back_everything_since_last_commit(
    ledger: Ledger, account: AccountRow
) -> None:
    def use_case() -> None:
        with ledger.unit_of_work() as uow:
            uow.audit.record(AuditKind.COMMAND, "kept", ok=True)
            uow.commit()
            uow.orders.record_intent(_request(), account_id=account.id, role=OrderRole.ENTRY)
            uow.notifications.enqueue("order", "placed")
            raise RuntimeError("broker exploded")

    with pytest.raises(RuntimeError, match="broker exploded"):
        use_case()
    with ledger.unit_of_work() as uow:
        assert [row.action for row in uow.audit.recent()] == ["kept"]
        assert uow.orders.by_client_order_id("c-1") is None
        assert uow.notifications.pending() == []


def test_times_come_from_the_injected_clock(
    ledger: Ledger, sim_clock: SimClock, account: AccountRow
) -> None:
    t0 = sim_clock.now()
    with ledger.unit_of_work() as uow:
        order = uow.orders.record_intent(_request(), account_id=account.id, role=OrderRole.ENTRY)
        uow.commit()
        order_id = order.id
    assert order.created_at == t0 and order.updated_at == t0
    assert account.created_at == t0

    sim_clock.advance(timedelta(minutes=3))
    with ledger.unit_of_work() as uow:
        order = uow.orders.require(order_id)
        order.broker_order_id = "b-1"
        uow.commit()
    assert order.created_at == t0
    assert order.updated_at == t0 + timedelta(minutes=3)


def _intent(ledger: Ledger, account: AccountRow) -> int:
    with ledger.unit_of_work() as uow:
        order_id = uow.orders.record_intent(
            _request(), account_id=account.id, role=OrderRole.ENTRY
        ).id
        uow.commit()
    return order_id


def test_stale_order_write_is_refused(ledger: Ledger, account: AccountRow) -> None:
    """A row read earlier (now detached) cannot overwrite a newer version."""
    order_id = _intent(ledger, account)
    with ledger.unit_of_work(read_only=True) as uow:
        stale = uow.orders.require(order_id)
    with ledger.unit_of_work() as uow:
        uow.orders.require(order_id).broker_order_id = "b-1"
        uow.commit()
    with ledger.unit_of_work() as uow:
        uow.session.add(stale)
        stale.reject_reason = "late writer"
        with pytest.raises(StaleDataError):
            uow.commit()
    with ledger.unit_of_work(read_only=True) as uow:
        fresh = uow.orders.require(order_id)
        assert (fresh.version, fresh.broker_order_id, fresh.reject_reason) == (2, "b-1", None)


def test_concurrent_writers_on_postgres(ledger: Ledger, account: AccountRow) -> None:
    """Two open transactions on one order: the second to commit loses (PostgreSQL only;
    SQLite serialises writers with BEGIN IMMEDIATE, so they cannot interleave)."""
    if ledger.engine.dialect.name != "postgresql":
        pytest.skip("writers cannot interleave on SQLite")
    order_id = _intent(ledger, account)
    with ledger.unit_of_work() as first, ledger.unit_of_work() as second:
        mine = first.orders.require(order_id)
        theirs = second.orders.require(order_id)
        mine.broker_order_id = "b-1"
        first.commit()
        theirs.reject_reason = "late writer"
        with pytest.raises(StaleDataError):
            second.commit()


def test_read_only_unit_of_work_refuses_writes(ledger: Ledger, account: AccountRow) -> None:
    order_id = _intent(ledger, account)
    with ledger.unit_of_work(read_only=True) as uow:
        uow.orders.require(order_id).reject_reason = "nope"
        with pytest.raises(ReadOnlyError):
            uow.flush()
    with ledger.unit_of_work(read_only=True) as uow, pytest.raises(ReadOnlyError):
        uow.drafts.transition_if(1, DraftStatus.PENDING, DraftStatus.CONFIRMED)


def test_readers_do_not_block_a_writer(ledger: Ledger) -> None:
    with ledger.unit_of_work(read_only=True) as reader:
        assert reader.audit.recent() == []
        with ledger.unit_of_work() as writer:
            writer.audit.record(AuditKind.COMMAND, "status", ok=True)
            writer.commit()
        with ledger.unit_of_work(read_only=True) as other_reader:
            assert len(other_reader.audit.recent()) == 1
