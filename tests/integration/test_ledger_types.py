"""Column types: exact storage, naive datetimes refused, floats refused, overflow refused."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.exc import StatementError

from core.clock import NaiveDatetimeError
from core.domain import MoneyError
from core.ledger import AccountRow, AuditKind, AuditRow, Ledger, PositionRow, PositionSource
from core.ledger.types import to_money

WHEN = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def test_sqlite_stores_exact_text_and_postgres_numeric(ledger: Ledger, account: AccountRow) -> None:
    value = Decimal("12345678.1234567891")
    with ledger.unit_of_work() as uow:
        uow.add(
            PositionRow(
                account_id=account.id,
                symbol="AAPL",
                qty=value,
                avg_entry_price=Decimal("0.0001"),
                source=PositionSource.BROKER,
                at=WHEN,
            )
        )
        uow.commit()
        raw = uow.session.execute(text("SELECT qty, at, source FROM positions")).one()
    assert raw.source == "broker"  # enums are stored by value, as plain strings
    if ledger.engine.dialect.name == "sqlite":
        assert raw.qty == "12345678.1234567891"
        assert raw.at == "2026-03-02 15:00:00.000000"  # fixed-width UTC text sorts by time
    else:
        assert raw.qty == value
        assert raw.at == WHEN


def test_naive_datetime_is_refused_on_assignment() -> None:
    with pytest.raises(NaiveDatetimeError, match="naive datetime"):
        AuditRow(at=datetime(2026, 3, 2, 10, 0), kind=AuditKind.COMMAND, action="x", ok=True)


def test_naive_datetime_is_refused_in_queries(ledger: Ledger) -> None:
    with ledger.unit_of_work() as uow:
        stmt = AuditRow.__table__.select().where(AuditRow.at < datetime(2026, 3, 2, 10, 0))
        with pytest.raises(StatementError) as caught:
            uow.session.execute(stmt)
        assert isinstance(caught.value.orig, NaiveDatetimeError)


def test_naive_datetime_is_refused_by_repositories(ledger: Ledger) -> None:
    with ledger.unit_of_work() as uow, pytest.raises(NaiveDatetimeError):
        uow.audit.record(AuditKind.COMMAND, "status", ok=True, at=datetime(2026, 3, 2))


def test_float_is_refused(account: AccountRow) -> None:
    with pytest.raises(MoneyError, match="float"):
        PositionRow(account_id=account.id, symbol="AAPL", qty=1.5)


def test_money_rounds_like_postgres_and_refuses_overflow() -> None:
    assert to_money(Decimal("1.00000000005")) == Decimal("1.0000000001")  # half away from 0
    assert to_money(Decimal("-1.00000000005")) == Decimal("-1.0000000001")
    assert str(to_money(Decimal("100.000"))) == "100"
    assert str(to_money(Decimal("-0.000"))) == "0"
    assert to_money(Decimal("99999999999999.9999999999")) == Decimal("99999999999999.9999999999")
    with pytest.raises(MoneyError, match="NUMERIC"):
        to_money(Decimal("100000000000000"))
