"""Accounts, drafts, signals, regimes, positions, trading days, outbox and audit."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from core.clock import SimClock
from core.domain import OrderType, Position, Regime, Side, Symbol
from core.ledger import (
    AccountMode,
    AccountRow,
    AuditKind,
    BrokerKind,
    DraftRow,
    DraftStatus,
    Ledger,
    NotificationStatus,
    PositionSource,
    SignalRow,
    SignalStatus,
)

DAY = date(2026, 3, 2)
WHEN = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def test_account_ensure_is_idempotent_and_guards_mode(ledger: Ledger) -> None:
    with ledger.unit_of_work() as uow:
        first = uow.accounts.ensure(
            "alpaca-paper", broker=BrokerKind.ALPACA, mode=AccountMode.PAPER
        )
        again = uow.accounts.ensure(
            "alpaca-paper",
            broker=BrokerKind.ALPACA,
            mode=AccountMode.PAPER,
            external_account_id="PA123",
        )
        assert again.id == first.id and again.external_account_id == "PA123"
        with pytest.raises(ValueError, match="paper"):
            uow.accounts.ensure("alpaca-paper", broker=BrokerKind.ALPACA, mode=AccountMode.LIVE)
        uow.commit()
    with ledger.unit_of_work(read_only=True) as uow:
        assert [a.name for a in uow.accounts.all()] == ["alpaca-paper"]
        assert uow.accounts.require_name("alpaca-paper").id == first.id


def _draft(account: AccountRow, **overrides: object) -> DraftRow:
    values: dict[str, object] = {
        "account_id": account.id,
        "symbol": "AAPL",
        "side": Side.BUY,
        "order_type": OrderType.STOP,
        "trigger_price": Decimal("191.52"),
        "initial_stop": Decimal("189.90"),
        "qty": Decimal("40"),
    }
    values.update(overrides)
    return DraftRow(**values)


def test_draft_confirm_happens_once(ledger: Ledger, account: AccountRow) -> None:
    with ledger.unit_of_work() as uow:
        draft = uow.drafts.add(_draft(account, batch_id="b1"))
        uow.drafts.add(_draft(account, symbol="MU", batch_id="b1"))
        uow.commit()
    with ledger.unit_of_work() as uow:
        assert uow.drafts.transition_if(draft.id, DraftStatus.PENDING, DraftStatus.CONFIRMED)
        assert not uow.drafts.transition_if(draft.id, DraftStatus.PENDING, DraftStatus.CONFIRMED)
        uow.commit()
    with ledger.unit_of_work(read_only=True) as uow:
        confirmed = uow.drafts.require(draft.id)
        assert confirmed.status is DraftStatus.CONFIRMED
        assert confirmed.confirmed_at == ledger.clock.now()
        assert [d.symbol for d in uow.drafts.pending(account.id)] == ["MU"]
        assert len(uow.drafts.in_batch("b1")) == 2


def test_drafts_due_to_expire(ledger: Ledger, account: AccountRow, sim_clock: SimClock) -> None:
    soon = sim_clock.now() + timedelta(minutes=5)
    with ledger.unit_of_work() as uow:
        uow.drafts.add(_draft(account, expires_at=soon))
        uow.drafts.add(_draft(account, symbol="MU"))
        uow.commit()
    with ledger.unit_of_work(read_only=True) as uow:
        assert uow.drafts.due_to_expire() == []
        assert [d.symbol for d in uow.drafts.due_to_expire(soon)] == ["AAPL"]


def test_signal_is_unique_per_symbol_day_and_time(ledger: Ledger) -> None:
    def signal() -> SignalRow:
        return SignalRow(
            symbol="AAPL",
            session_date=DAY,
            signal_time=WHEN,
            trigger=Decimal("191.52"),
            stop=Decimal("189.9"),
            regime=Regime.TREND_UP,
            evidence={"crosses": 2},
        )

    with ledger.unit_of_work() as uow:
        first, new = uow.signals.add_if_new(signal())
        assert new and first.status is SignalStatus.NEW
        again, new_again = uow.signals.add_if_new(signal())
        assert not new_again and again.id == first.id
        uow.signals.set_status(first, SignalStatus.SKIPPED)
        uow.commit()
    with ledger.unit_of_work(read_only=True) as uow:
        assert len(uow.signals.for_day(DAY)) == 1
        assert uow.signals.for_day(DAY, statuses=[SignalStatus.NEW]) == []


def test_regime_history_and_latest(ledger: Ledger) -> None:
    with ledger.unit_of_work() as uow:
        uow.regimes.record("AAPL", DAY, Regime.FORMING, at=WHEN)
        uow.regimes.record("AAPL", DAY, Regime.TREND_UP, at=WHEN + timedelta(minutes=15))
        uow.regimes.record("MU", DAY, Regime.RANGE, evidence={"crosses": 7}, at=WHEN)
        uow.commit()
    with ledger.unit_of_work(read_only=True) as uow:
        latest = uow.regimes.latest("AAPL", DAY)
        assert latest is not None and latest.label is Regime.TREND_UP
        by_symbol = uow.regimes.latest_by_symbol(DAY)
        assert {s: r.label for s, r in by_symbol.items()} == {
            "AAPL": Regime.TREND_UP,
            "MU": Regime.RANGE,
        }
        assert [r.label for r in uow.regimes.history(DAY, "AAPL")] == [
            Regime.FORMING,
            Regime.TREND_UP,
        ]


def _position(symbol: str, qty: str, price: str = "191.52") -> Position:
    return Position(symbol=Symbol(symbol), qty=Decimal(qty), avg_entry_price=Decimal(price))


def test_latest_position_per_symbol(ledger: Ledger, account: AccountRow) -> None:
    broker = PositionSource.BROKER
    with ledger.unit_of_work() as uow:
        uow.positions.record_all(
            account.id, [_position("AAPL", "40"), _position("MU", "10")], broker, WHEN
        )
        uow.positions.record_all(
            account.id, [_position("AAPL", "25")], broker, WHEN + timedelta(seconds=30)
        )
        uow.positions.record(account.id, _position("AAPL", "99"), PositionSource.LEDGER, WHEN)
        uow.commit()
    with ledger.unit_of_work(read_only=True) as uow:
        latest = uow.positions.latest(account.id, broker)
        assert {s: p.qty for s, p in latest.items()} == {"AAPL": Decimal("25")}
        with_flat = uow.positions.latest(account.id, broker, include_flat=True)
        assert {s: p.qty for s, p in with_flat.items()} == {"AAPL": 25, "MU": 0}
        mu = uow.positions.latest_for(account.id, "MU", broker)
        assert mu is not None and mu.qty == 0
        ledger_view = uow.positions.latest_for(account.id, "AAPL", PositionSource.LEDGER)
        assert ledger_view is not None and ledger_view.qty == Decimal("99")


def test_trading_day_survives_a_restart(ledger: Ledger, account: AccountRow) -> None:
    with ledger.unit_of_work() as uow:
        day = uow.trading_days.get_or_create(account.id, DAY)
        assert day.trading_allowed is None and day.trades_count == 0 and day.realized_pnl == 0
        day.trading_allowed = True
        day.locked_reason = "max daily loss"
        day.locked_at = WHEN
        day.realized_pnl = Decimal("-250.5")
        uow.session_states.record(
            account.id,
            DAY,
            from_state="trading_allowed",
            to_state="locked",
            trigger="loss_limit_hit",
            cause="loss",
        )
        uow.risk_events.record(account.id, DAY, kind="max_daily_loss", blocking=True)
        uow.risk_events.record(account.id, DAY, kind="spread_wide", blocking=False)
        uow.commit()
    with ledger.unit_of_work() as uow:  # a new process would do exactly this
        day = uow.trading_days.get_or_create(account.id, DAY)
        assert (day.trading_allowed, day.locked_reason) == (True, "max daily loss")
        assert day.realized_pnl == Decimal("-250.5")
        latest = uow.session_states.latest(account.id, DAY)
        assert latest is not None and latest.to_state == "locked"
        blocking = uow.risk_events.for_day(account.id, DAY, blocking_only=True)
        assert [e.kind for e in blocking] == ["max_daily_loss"]
        assert len(uow.risk_events.for_day(account.id, DAY)) == 2
        assert [d.session_date for d in uow.trading_days.recent(account.id)] == [DAY]


def test_notifications_outbox_order(ledger: Ledger, sim_clock: SimClock) -> None:
    with ledger.unit_of_work() as uow:
        for n in range(5):
            uow.notifications.enqueue("order", f"message {n}", payload={"n": n})
        _, new = uow.notifications.enqueue("fill", "filled", dedupe_key="fill:exec-1")
        _, dup = uow.notifications.enqueue("fill", "filled again", dedupe_key="fill:exec-1")
        assert new and not dup
        uow.commit()

    with ledger.unit_of_work() as uow:
        pending = uow.notifications.pending()
        assert [n.text for n in pending] == [f"message {n}" for n in range(5)] + ["filled"]
        uow.notifications.mark_sent(pending[0], message_id=1001)
        uow.notifications.mark_failed(
            pending[1], "429 retry after 30", retry_at=sim_clock.now() + timedelta(seconds=30)
        )
        uow.notifications.mark_failed(pending[2], "400 bad request", give_up=True)
        uow.notifications.mark_silenced(pending[3])
        uow.commit()

    with ledger.unit_of_work(read_only=True) as uow:
        now = sim_clock.now()
        assert [n.text for n in uow.notifications.pending(due_at=now)] == ["message 4", "filled"]
        assert [n.text for n in uow.notifications.pending()] == ["message 1", "message 4", "filled"]
        later = now + timedelta(seconds=30)
        due = [n.text for n in uow.notifications.pending(due_at=later)]
        assert due == ["message 1", "message 4", "filled"]
        assert [n.text for n in uow.notifications.pending(limit=1)] == ["message 1"]
        sent = uow.notifications.recent()[-1]
        assert (sent.status, sent.message_id, sent.attempts) == (NotificationStatus.SENT, 1001, 1)
        assert sent.sent_at == now


def test_audit_trail(ledger: Ledger) -> None:
    with ledger.unit_of_work() as uow:
        uow.audit.record(
            AuditKind.COMMAND, "buy", ok=True, user_id=7, args="AAPL", result="draft 1"
        )
        uow.audit.record(AuditKind.DENIED, "kill", ok=False, user_id=8)
        uow.commit()
    with ledger.unit_of_work(read_only=True) as uow:
        assert [a.action for a in uow.audit.recent()] == ["kill", "buy"]
        assert [a.action for a in uow.audit.recent(user_id=7)] == ["buy"]
