"""Every table round-trips exactly: Decimals keep every digit, instants come back UTC-aware."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import inspect

from core.domain import OrderRole, OrderStatus, OrderType, Regime, Side, TimeInForce
from core.ledger import (
    AccountMode,
    AccountRow,
    AuditKind,
    AuditRow,
    Base,
    BrokerKind,
    DraftRow,
    DraftStatus,
    EventSource,
    FillRow,
    Ledger,
    NotificationRow,
    NotificationStatus,
    OrderEventRow,
    OrderRow,
    PositionRow,
    PositionSource,
    ProtectionKind,
    ProtectionLinkRow,
    ProtectionStatus,
    RegimeRow,
    RiskEventRow,
    SessionStateRow,
    SignalRow,
    SignalStatus,
    TradingDayRow,
    UnitOfWork,
)
from core.ledger.types import normalize_decimal

NEW_YORK = ZoneInfo("America/New_York")
PRICE = Decimal("191.5234")
TINY = Decimal("0.0001")
BIG = Decimal("12345678.1234567891")
QTY = Decimal("40")
# An instant given in New York time; it must come back as the same instant in UTC.
WHEN = datetime(2026, 3, 2, 10, 1, 2, 345678, tzinfo=NEW_YORK)
LATER = WHEN + timedelta(minutes=5)
DAY = date(2026, 3, 2)
EVIDENCE = {"pct_above_vwap": "0.86", "crosses": 2, "nested": {"ok": True}}


def _build_rows(uow: UnitOfWork) -> dict[str, Base]:
    """One row of every table, parents flushed first so children can reference them."""
    rows: dict[str, Base] = {}
    account = uow.add(
        AccountRow(
            name="ibkr-live",
            broker=BrokerKind.IBKR,
            mode=AccountMode.LIVE,
            external_account_id="U1234567",
            created_at=WHEN,
        )
    )
    rows["accounts"] = account
    signal = uow.add(
        SignalRow(
            symbol="AAPL",
            session_date=DAY,
            signal_time=WHEN,
            trigger=PRICE,
            stop=BIG,
            regime=Regime.TREND_UP,
            evidence=EVIDENCE,
            status=SignalStatus.DRAFTED,
            account_id=account.id,
        )
    )
    rows["signals"] = signal
    draft = uow.add(
        DraftRow(
            account_id=account.id,
            symbol="AAPL",
            side=Side.BUY,
            order_type=OrderType.STOP,
            trigger_price=PRICE,
            limit_price=BIG,
            initial_stop=TINY,
            qty=QTY,
            risk_dollars=Decimal("100.50"),
            trail_percent=Decimal("0.8"),
            signal_id=signal.id,
            status=DraftStatus.CONFIRMED,
            batch_id="batch-1",
            expires_at=LATER,
            confirmed_at=WHEN,
            updated_at=LATER,
            note="from the 09:45 signal",
        )
    )
    rows["drafts"] = draft
    entry = uow.add(
        OrderRow(
            account_id=account.id,
            draft_id=draft.id,
            client_order_id="c-draft-1",
            broker_order_id="b-1",
            symbol="AAPL",
            side=Side.BUY,
            order_type=OrderType.STOP_LIMIT,
            time_in_force=TimeInForce.GTC,
            qty=QTY,
            limit_price=BIG,
            stop_price=PRICE,
            trail_percent=TINY,
            extended_hours=True,
            role=OrderRole.ENTRY,
            status=OrderStatus.PARTIALLY_FILLED,
            filled_qty=Decimal("12.5"),
            avg_fill_price=PRICE,
            reject_reason="none really",
            submitted_at=WHEN,
            updated_at=LATER,
            closed_at=LATER,
            order_ref="centaur-1",
        )
    )
    rows["orders"] = entry
    protection = uow.add(
        OrderRow(
            account_id=account.id,
            client_order_id="c-draft-1-p",
            symbol="AAPL",
            side=Side.SELL,
            order_type=OrderType.TRAILING_STOP,
            time_in_force=TimeInForce.DAY,
            qty=QTY,
            trail_percent=Decimal("0.8"),
            role=OrderRole.PROTECTION,
            parent_order_id=entry.id,
            replaces_order_id=entry.id,
            updated_at=WHEN,
        )
    )
    rows["order_events"] = OrderEventRow(
        order_id=entry.id,
        at=WHEN,
        from_status=OrderStatus.ACCEPTED,
        to_status=OrderStatus.PARTIALLY_FILLED,
        kind="fill",
        source=EventSource.BROKER,
        detail={"qty": Decimal("12.5"), "at": WHEN},
    )
    rows["fills"] = FillRow(
        order_id=entry.id,
        execution_id="exec-1",
        symbol="AAPL",
        side=Side.BUY,
        qty=Decimal("12.5"),
        price=PRICE,
        commission=TINY,
        at=WHEN,
    )
    rows["positions"] = PositionRow(
        account_id=account.id,
        symbol="AAPL",
        qty=Decimal("12.5"),
        avg_entry_price=BIG,
        market_price=PRICE,
        source=PositionSource.BROKER,
        at=WHEN,
    )
    rows["protection_links"] = ProtectionLinkRow(
        entry_order_id=entry.id,
        protection_order_id=protection.id,
        protected_qty=Decimal("12.5"),
        kind=ProtectionKind.TRAILING,
        status=ProtectionStatus.SUPERSEDED,
        updated_at=LATER,
    )
    rows["regimes"] = RegimeRow(
        symbol="AAPL", session_date=DAY, at=WHEN, label=Regime.RANGE, evidence=EVIDENCE
    )
    rows["session_states"] = SessionStateRow(
        account_id=account.id,
        session_date=DAY,
        at=WHEN,
        from_state="OPENING_NO_TRADE",
        to_state="TRADING_ALLOWED",
        trigger="allow",
        cause="user /allow",
    )
    rows["trading_days"] = TradingDayRow(
        account_id=account.id,
        session_date=DAY,
        trading_allowed=True,
        locked_reason="daily loss",
        locked_at=LATER,
        safe_mode_reason="stale_data,position_mismatch",
        cooldown_until=LATER,
        trades_count=3,
        realized_pnl=Decimal("-123.4500"),
        updated_at=LATER,
    )
    rows["risk_events"] = RiskEventRow(
        account_id=account.id,
        session_date=DAY,
        at=WHEN,
        kind="max_daily_loss",
        blocking=True,
        detail=EVIDENCE,
    )
    rows["notifications"] = NotificationRow(
        kind="fill",
        text="AAPL 40 @ 191.52 filled",
        payload=EVIDENCE,
        status=NotificationStatus.FAILED,
        attempts=2,
        last_error="429",
        not_before=LATER,
        sent_at=WHEN,
        dedupe_key="fill:exec-1",
        chat_id=-1001234567890123,
        message_id=42,
        parse_mode="HTML",
        photo_path="data/reports/aapl.png",
    )
    rows["audit"] = AuditRow(
        at=WHEN,
        user_id=123456789012,
        chat_id=-1001234567890123,
        kind=AuditKind.COMMAND,
        action="buy",
        args="AAPL 191.52 40",
        result="draft 1",
        ok=True,
    )
    for row in rows.values():
        uow.session.add(row)
    uow.flush()
    return rows


def _expected(value: Any) -> Any:
    """What a value should read back as (JSON turns Decimal and datetime into text)."""
    if isinstance(value, dict):
        return {key: _expected(item) for key, item in value.items()}
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def test_every_table_round_trips_exactly(ledger: Ledger) -> None:
    with ledger.unit_of_work() as uow:
        written = _build_rows(uow)
        uow.commit()
        snapshot = {
            table: (
                type(row),
                inspect(row).identity,
                {a.key: getattr(row, a.key) for a in inspect(row).attrs},
            )
            for table, row in written.items()
        }
    assert set(snapshot) == set(Base.metadata.tables), "a table is missing from this test"

    with ledger.unit_of_work() as uow:
        for table, (row_type, identity, values) in snapshot.items():
            loaded = uow.session.get(row_type, identity)
            assert loaded is not None, table
            for key, value in values.items():
                got = getattr(loaded, key)
                if isinstance(value, dict):
                    assert got == _expected(value), (table, key)
                    continue
                assert got == value, (table, key, got, value)
                if isinstance(value, Decimal):
                    assert isinstance(got, Decimal)
                    assert str(got) == str(normalize_decimal(value)), (table, key, got)
                if isinstance(value, datetime):
                    assert got.tzinfo is UTC, (table, key, got)


@pytest.mark.parametrize(
    "value",
    [Decimal("191.5234"), Decimal("0.0001"), Decimal("12345678.1234567891"), Decimal("-5.25")],
)
def test_decimal_is_exact(ledger: Ledger, account: AccountRow, value: Decimal) -> None:
    with ledger.unit_of_work() as uow:
        row = uow.add(
            PositionRow(
                account_id=account.id,
                symbol="MU",
                qty=value,
                avg_entry_price=value,
                source=PositionSource.LEDGER,
                at=WHEN,
            )
        )
        uow.commit()
        row_id = row.id
    with ledger.unit_of_work() as uow:
        loaded = uow.positions.require(row_id)
        assert loaded.qty == value
        assert str(loaded.qty) == str(value)
        found = uow.session.query(PositionRow).filter(PositionRow.qty == value).one()
        assert found.id == row_id  # equality filters work: the stored form is canonical


def test_normalised_decimal_compares_equal(ledger: Ledger, account: AccountRow) -> None:
    with ledger.unit_of_work() as uow:
        row = uow.add(
            PositionRow(
                account_id=account.id,
                symbol="QQQM",
                qty=Decimal("100"),
                avg_entry_price=Decimal("191.5200"),
                source=PositionSource.BROKER,
                at=WHEN,
            )
        )
        uow.commit()
        row_id = row.id
    with ledger.unit_of_work() as uow:
        loaded = uow.positions.require(row_id)
        assert str(loaded.avg_entry_price) == "191.52"
        assert str(loaded.qty) == "100"
        assert loaded.avg_entry_price == Decimal("191.52")
