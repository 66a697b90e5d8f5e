"""The end-of-day report from a ledger populated by hand through the repositories.

The day (Monday 2026-03-02, New York):
- AAPL: stop-buy 40 @ trigger 191.50 fills at 191.52 (commission 0.20); draft stop 189.90
  so R = 1.62. A manual sell of 15 @ 193.00 (partial exit), then the trailing stop takes
  the other 25 @ 192.80. Winner.
- MU: stop-buy 50 @ 100.00 fills at 100.05; the draft has no stop, its signal says 99.00,
  so R = 1.05. The plain protective stop fills 50 @ 98.95. Loser.
- An AAPL round trip on the Friday before, which must not leak into Monday.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from itertools import count

import pytest

from core.calendar import xnys
from core.clock import NEW_YORK, SimClock
from core.domain import (
    BrokerOrderId,
    ClientOrderId,
    ExecutionId,
    Fill,
    OrderRequest,
    OrderRole,
    OrderStatus,
    OrderType,
    Regime,
    Side,
    Symbol,
)
from core.events import ReconcileCompleted
from core.ledger import (
    AccountMode,
    AccountRow,
    BrokerKind,
    DraftRow,
    EventSource,
    Ledger,
    OrderRow,
    ProtectionKind,
    RiskEventRow,
    SignalRow,
    UnitOfWork,
)
from core.marketdata.synthetic import generate_scenario
from core.reports import ExitReason, StopSource, build_eod_report, eod_markdown
from core.reports.eod import kill_windows

DAY = date(2026, 3, 2)
FRIDAY = date(2026, 2, 27)
_ids = count(1)


def ny(hour: int, minute: int, second: int = 0, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=NEW_YORK)


def order(
    uow: UnitOfWork,
    account: AccountRow,
    symbol: str,
    side: Side,
    qty: str,
    kind: OrderType,
    role: OrderRole,
    at: datetime,
    *,
    stop: str | None = None,
    trail: str | None = None,
    draft_id: int | None = None,
) -> OrderRow:
    request = OrderRequest(
        client_order_id=ClientOrderId(f"c-{next(_ids)}"),
        symbol=Symbol(symbol),
        side=side,
        qty=Decimal(qty),
        order_type=kind,
        stop_price=None if stop is None else Decimal(stop),
        trail_percent=None if trail is None else Decimal(trail),
    )
    row = uow.orders.record_intent(
        request, account_id=account.id, role=role, draft_id=draft_id, at=at
    )
    uow.orders.transition(
        row, OrderStatus.SUBMITTED, kind="submitted", source=EventSource.ENGINE, at=at
    )
    row.submitted_at = at
    return row


def fill(
    uow: UnitOfWork, row: OrderRow, qty: str, price: str, at: datetime, commission: str
) -> None:
    n = next(_ids)
    uow.fills.add_if_new(
        row.id,
        Fill(
            execution_id=ExecutionId(f"x-{n}"),
            broker_order_id=BrokerOrderId(f"b-{n}"),
            client_order_id=ClientOrderId(row.client_order_id),
            symbol=Symbol(row.symbol),
            side=row.side,
            qty=Decimal(qty),
            price=Decimal(price),
            timestamp=at,
            commission=Decimal(commission),
        ),
    )


def draft(
    uow: UnitOfWork,
    account: AccountRow,
    symbol: str,
    trigger: str,
    stop: str | None,
    qty: str,
    signal_id: int | None = None,
) -> DraftRow:
    return uow.add(
        DraftRow(
            account_id=account.id,
            symbol=symbol,
            side=Side.BUY,
            order_type=OrderType.STOP,
            trigger_price=Decimal(trigger),
            limit_price=None,
            initial_stop=None if stop is None else Decimal(stop),
            qty=Decimal(qty),
            signal_id=signal_id,
        )
    )


def populate(ledger: Ledger, account: AccountRow, clock: SimClock) -> None:
    with ledger.unit_of_work() as uow:
        # Friday: a closed round trip (must not appear on Monday).
        old = order(
            uow,
            account,
            "AAPL",
            Side.BUY,
            "10",
            OrderType.MARKET,
            OrderRole.ENTRY,
            ny(10, 0, day=FRIDAY),
        )
        fill(uow, old, "10", "180.00", ny(10, 0, day=FRIDAY), "0")
        out = order(
            uow,
            account,
            "AAPL",
            Side.SELL,
            "10",
            OrderType.MARKET,
            OrderRole.EXIT,
            ny(11, 0, day=FRIDAY),
        )
        fill(uow, out, "10", "181.00", ny(11, 0, day=FRIDAY), "0")

        # AAPL: entry, trailing protection with reported levels, partial manual exit.
        d1 = draft(uow, account, "AAPL", "191.50", "189.90", "40")
        entry = order(
            uow,
            account,
            "AAPL",
            Side.BUY,
            "40",
            OrderType.STOP,
            OrderRole.ENTRY,
            ny(10, 1),
            stop="191.50",
            draft_id=d1.id,
        )
        fill(uow, entry, "40", "191.52", ny(10, 5), "0.20")
        trail = order(
            uow,
            account,
            "AAPL",
            Side.SELL,
            "40",
            OrderType.TRAILING_STOP,
            OrderRole.PROTECTION,
            ny(10, 5, 1),
            trail="0.8",
        )
        uow.protection_links.link(
            entry.id,
            trail.id,
            protected_qty=Decimal(40),
            kind=ProtectionKind.TRAILING,
            at=ny(10, 5, 2),
        )
        for at, level in ((ny(10, 6), "190.00"), (ny(11, 0), "191.20"), (ny(13, 0), "192.80")):
            uow.order_events.record(
                trail.id,
                kind="trail_update",
                source=EventSource.BROKER,
                detail={"stop_price": level},
                at=at,
            )
        manual = order(
            uow, account, "AAPL", Side.SELL, "15", OrderType.MARKET, OrderRole.EXIT, ny(11, 30)
        )
        fill(uow, manual, "15", "193.00", ny(11, 30), "0.075")
        fill(uow, trail, "25", "192.80", ny(13, 30), "0.125")

        # MU: the stop comes from the draft's signal; protection fell back to a plain stop.
        signal = uow.add(
            SignalRow(
                symbol="MU",
                session_date=DAY,
                signal_time=ny(13, 55),
                trigger=Decimal("100.00"),
                stop=Decimal("99.00"),
                regime=Regime.RANGE,
                evidence=None,
            )
        )
        d2 = draft(uow, account, "MU", "100.00", None, "50", signal_id=signal.id)
        mu_entry = order(
            uow,
            account,
            "MU",
            Side.BUY,
            "50",
            OrderType.STOP,
            OrderRole.ENTRY,
            ny(13, 56),
            stop="100.00",
            draft_id=d2.id,
        )
        fill(uow, mu_entry, "50", "100.05", ny(14, 0), "0.25")
        stop = order(
            uow,
            account,
            "MU",
            Side.SELL,
            "50",
            OrderType.STOP,
            OrderRole.PROTECTION,
            ny(14, 0, 2),
            stop="99.00",
        )
        uow.protection_links.link(
            mu_entry.id,
            stop.id,
            protected_qty=Decimal(50),
            kind=ProtectionKind.STOP,
            at=ny(14, 0, 3),
        )
        fill(uow, stop, "50", "98.95", ny(14, 40), "0.25")

        # The day around the trades.
        uow.regimes.record("AAPL", DAY, Regime.FORMING, at=ny(9, 45))
        uow.regimes.record(
            "AAPL",
            DAY,
            Regime.TREND_UP,
            at=ny(10, 0),
            evidence={"pct_above": 0.86, "cross_count": 2},
        )
        uow.regimes.record("MU", DAY, Regime.RANGE, at=ny(10, 0), evidence={"cross_count": 7})
        uow.regimes.record("MU", FRIDAY, Regime.TREND_UP, at=ny(10, 0, day=FRIDAY))
        uow.risk_events.record(
            account.id,
            DAY,
            kind="cooldown",
            blocking=True,
            detail={"until": "15:10"},
            at=ny(14, 40),
        )
        uow.session_states.record(
            account.id,
            DAY,
            from_state="premarket",
            to_state="opening_no_trade",
            trigger="market_open",
            cause="09:30 open",
            at=ny(9, 30),
        )
        uow.session_states.record(
            account.id,
            DAY,
            from_state="opening_no_trade",
            to_state="trading_allowed",
            trigger="allow",
            cause="allowed by the trader",
            at=ny(9, 45),
        )
        trading_day = uow.trading_days.get_or_create(account.id, DAY)
        trading_day.trading_allowed = True
        trading_day.trades_count = 2
        # The outbox keeps only mismatches (in-sync runs are not worth a message).
        reconcile(uow, clock, "paper-main", at=ny(11, 0))
        reconcile(uow, clock, "other-account", at=ny(15, 5))
        uow.notifications.enqueue("system", "not a reconcile", payload={"type": "KillCompleted"})
        uow.commit()


def reconcile(uow: UnitOfWork, clock: SimClock, account: str, *, at: datetime) -> None:
    event = ReconcileCompleted(
        at=at, account=account, in_sync=False, summary={"position_mismatch": ["MU"]}
    )
    clock.set(at)  # the outbox stamps created_at from the ledger's clock
    uow.notifications.enqueue("system", "reconciled", payload=event.to_payload())


@pytest.fixture
def populated(ledger: Ledger, account: AccountRow, sim_clock: SimClock) -> Iterator[Ledger]:
    populate(ledger, account, sim_clock)
    yield ledger


def test_trades_pnl_r_and_exit_reasons(populated: Ledger) -> None:
    report = build_eod_report(populated, "paper-main", DAY, xnys(), {})
    assert [t.symbol for t in report.trades] == ["AAPL", "MU"]
    aapl, mu = report.trades

    assert aapl.entry_time == ny(10, 5) and aapl.entry_price == Decimal("191.52")
    assert aapl.qty == 40 and aapl.open_qty == 0
    assert aapl.initial_stop == Decimal("189.90") and aapl.risk_per_share == Decimal("1.62")
    manual, trailing = aapl.exits
    assert (manual.reason, manual.qty, manual.price) == (
        ExitReason.MANUAL_SELL,
        Decimal(15),
        Decimal(193),
    )
    # (193.00 - 191.52) * 15 - 0.20 * 15/40 - 0.075
    assert manual.pnl == Decimal("22.05") and manual.r_multiple == Decimal("0.9074")
    assert (trailing.reason, trailing.qty, trailing.price) == (
        ExitReason.TRAILING,
        Decimal(25),
        Decimal("192.8"),
    )
    assert trailing.pnl == Decimal("31.75") and trailing.r_multiple == Decimal("0.784")
    assert aapl.pnl == Decimal("53.80") and aapl.r_multiple == Decimal("0.8302")  # 53.8 / 64.8
    assert aapl.exit_reason is ExitReason.TRAILING and aapl.exit_time == ny(13, 30)
    assert aapl.exit_price == Decimal("192.875")  # (15 * 193 + 25 * 192.80) / 40
    assert aapl.commissions == Decimal("0.40")

    assert mu.initial_stop == Decimal("99.00") and mu.risk_per_share == Decimal("1.05")
    (stop_exit,) = mu.exits
    assert stop_exit.reason is ExitReason.PROTECTION_STOP
    assert mu.pnl == Decimal("-55.50") and mu.r_multiple == Decimal("-1.0571")

    assert report.pnl.trades == 2 and (report.pnl.wins, report.pnl.losses) == (1, 1)
    assert report.pnl.net == Decimal("-1.70")
    assert report.pnl.gross == Decimal("-0.80") and report.pnl.commissions == Decimal("0.90")
    assert report.pnl.fees_paid == Decimal("0.90")
    assert report.pnl.r_total == Decimal("-0.2269") and report.pnl.r_unknown == 0
    assert report.pnl.unrealized == 0


def test_execution_deviation_and_stop_paths(populated: Ledger) -> None:
    aapl, mu = build_eod_report(populated, "paper-main", DAY, xnys(), {}).trades
    assert aapl.deviation is not None and mu.deviation is not None
    assert (aapl.deviation.trigger, aapl.deviation.per_share) == (
        Decimal("191.50"),
        Decimal("0.02"),
    )
    assert aapl.deviation.bps == Decimal("1.04") and aapl.deviation.total == Decimal("0.80")
    assert mu.deviation.bps == Decimal("5.00") and mu.deviation.total == Decimal("2.50")

    assert [(p.at, p.level, p.source) for p in aapl.stop_path] == [
        (ny(10, 5), Decimal("189.90"), StopSource.INITIAL),
        (ny(10, 6), Decimal("190.00"), StopSource.TRAIL),
        (ny(11, 0), Decimal("191.20"), StopSource.TRAIL),
        (ny(13, 0), Decimal("192.80"), StopSource.TRAIL),
    ]
    assert [(p.level, p.source) for p in mu.stop_path] == [
        (Decimal("99.00"), StopSource.INITIAL)  # the plain stop at the same level adds nothing
    ]


def test_regimes_risk_session_reconcile_and_labels(populated: Ledger) -> None:
    report = build_eod_report(populated, "paper-main", DAY, xnys(), {}, watchlist=["QQQM"])
    assert report.session_kind == "normal" and report.account == "paper-main"
    assert [(r.symbol, r.label) for r in report.regimes] == [
        ("AAPL", Regime.TREND_UP),
        ("MU", Regime.RANGE),
    ]
    assert report.regimes[0].evidence == {"pct_above": 0.86, "cross_count": 2}
    assert [c[1] for c in report.regimes[0].changes] == [Regime.FORMING, Regime.TREND_UP]

    (risk,) = report.risk_events
    assert (risk.kind, risk.blocking, risk.at) == ("cooldown", True, ny(14, 40))
    assert [t.to_state for t in report.transitions] == ["opening_no_trade", "trading_allowed"]
    assert report.day_status is not None and report.day_status.trading_allowed is True

    # The newest recorded reconcile of THIS account (another account's later one ignored).
    assert report.reconcile is not None
    assert report.reconcile.in_sync is False and report.reconcile.at == ny(11, 0)
    assert report.reconcile.source == "notification"
    assert report.reconcile.summary == {"position_mismatch": ["MU"]}

    assert [(p.symbol, p.traded, p.regime) for p in report.labels] == [
        ("AAPL", True, Regime.TREND_UP),
        ("MU", True, Regime.RANGE),
        ("QQQM", False, None),
    ]


def test_reconcile_passed_as_parameter_wins(populated: Ledger) -> None:
    event = ReconcileCompleted(
        at=ny(16, 5), account="paper-main", in_sync=True, summary={"orders": 0}
    )
    report = build_eod_report(populated, "paper-main", DAY, xnys(), {}, reconcile=event)
    assert report.reconcile is not None
    assert (report.reconcile.in_sync, report.reconcile.source) == (True, "parameter")
    assert report.reconcile.summary == {"orders": 0} and report.reconcile.at == ny(16, 5)
    assert "In sync at 16:05 ET. orders=0" in eod_markdown(report)


def test_bars_give_session_lines_and_open_share_marks(ledger: Ledger, account: AccountRow) -> None:
    bars = generate_scenario("trend_up_pullback", symbol="AAPL", day=DAY, start_price=190).day
    with ledger.unit_of_work() as uow:
        entry = order(
            uow, account, "AAPL", Side.BUY, "10", OrderType.MARKET, OrderRole.ENTRY, ny(10, 0)
        )
        fill(uow, entry, "10", "190.00", ny(10, 0), "0")
        uow.commit()
    report = build_eod_report(ledger, "paper-main", DAY, xnys(), {"AAPL": bars})
    (trade,) = report.trades
    assert trade.exits == () and trade.open_qty == 10 and trade.risk_per_share is None
    assert trade.r_multiple is None and trade.deviation is None  # market order: no trigger
    session = report.session_for("AAPL")
    assert session is not None and session.or15_low is not None
    assert session.low <= session.or15_low < session.or15_high <= session.high  # type: ignore[operator]
    assert report.pnl.trades == 0 and report.pnl.r_total is None
    assert report.pnl.unrealized == (session.close - Decimal("190.00")) * 10


def test_flatten_and_kill_exits(ledger: Ledger, account: AccountRow) -> None:
    """Kill and end-of-day flattens are the same kind of order; the kill's risk events
    (`core.kill`: kill_started / kill_completed) tell them apart."""
    with ledger.unit_of_work() as uow:
        uow.risk_events.record(account.id, DAY, kind="kill_started", blocking=False, at=ny(14, 0))
        uow.risk_events.record(account.id, DAY, kind="kill_completed", blocking=False, at=ny(14, 1))
        for symbol, at in (("MU", ny(14, 0, 30)), ("AAPL", ny(15, 55))):
            entry = order(
                uow, account, symbol, Side.BUY, "10", OrderType.MARKET, OrderRole.ENTRY, ny(10, 0)
            )
            fill(uow, entry, "10", "100", ny(10, 0), "0")
            out = order(
                uow, account, symbol, Side.SELL, "10", OrderType.MARKET, OrderRole.FLATTEN, at
            )
            fill(uow, out, "10", "101", at, "0")
        uow.commit()
    report = build_eod_report(ledger, "paper-main", DAY, xnys(), {})
    assert [(t.symbol, t.exit_reason) for t in report.trades] == [
        ("AAPL", ExitReason.FLATTEN),
        ("MU", ExitReason.KILL),
    ]
    assert report.pnl.r_total is None and report.pnl.r_unknown == 2


def test_kill_windows_pair_start_and_completion() -> None:
    def row(kind: str, at: datetime) -> RiskEventRow:
        return RiskEventRow(kind=kind, at=at, blocking=False, session_date=DAY, account_id=1)

    events = [
        row("kill_started", ny(10, 0)),
        row("cooldown", ny(10, 1)),
        row("kill_completed", ny(10, 2)),
        row("kill_started", ny(15, 0)),  # never completed (the process died): still a kill
    ]
    assert kill_windows(events) == [(ny(10, 0), ny(10, 2)), (ny(15, 0), None)]


def test_the_end_of_day_flatten_is_not_a_kill() -> None:
    """The 15:55 flatten runs through core.kill (who="flatten time"): its exits are
    reported as flatten, not kill."""

    def row(kind: str, at: datetime, who: str) -> RiskEventRow:
        return RiskEventRow(
            kind=kind, at=at, blocking=False, session_date=DAY, account_id=1, detail={"who": who}
        )

    events = [
        row("kill_started", ny(15, 55), "flatten time"),
        row("kill_completed", ny(15, 56), "flatten time"),
        row("kill_started", ny(15, 57), "user"),
        row("kill_completed", ny(15, 58), "user"),
    ]
    assert kill_windows(events) == [(ny(15, 57), ny(15, 58))]


def test_empty_day_still_produces_a_report(ledger: Ledger, account: AccountRow) -> None:
    report = build_eod_report(ledger, "paper-main", DAY, xnys(), {}, watchlist=["AAPL"])
    assert report.trades == () and report.regimes == () and report.risk_events == ()
    assert report.pnl.net == 0 and report.pnl.trades == 0 and report.pnl.r_total is None
    assert report.reconcile is None and report.day_status is None
    assert [p.symbol for p in report.labels] == ["AAPL"]


def test_a_holiday_report_is_closed(ledger: Ledger, account: AccountRow) -> None:
    report = build_eod_report(ledger, "paper-main", date(2026, 1, 1), xnys(), {})
    assert report.session_kind == "closed" and report.trades == ()


def test_carried_position_keeps_its_entry(ledger: Ledger, account: AccountRow) -> None:
    """Bought Friday, sold Monday: Monday's report shows the trade with Friday's entry."""
    with ledger.unit_of_work() as uow:
        entry = order(
            uow,
            account,
            "AAPL",
            Side.BUY,
            "10",
            OrderType.MARKET,
            OrderRole.ENTRY,
            ny(15, 0, day=FRIDAY),
        )
        fill(uow, entry, "10", "100", ny(15, 0, day=FRIDAY), "1")
        out = order(
            uow, account, "AAPL", Side.SELL, "10", OrderType.MARKET, OrderRole.EXIT, ny(9, 35)
        )
        fill(uow, out, "10", "102", ny(9, 35), "1")
        uow.commit()
    report = build_eod_report(ledger, "paper-main", DAY, xnys(), {})
    (trade,) = report.trades
    assert trade.entry_time == ny(15, 0, day=FRIDAY) and trade.pnl == Decimal("18")
    assert report.pnl.fees_paid == Decimal("1")  # only Monday's commission was paid Monday


def test_accounts_are_kept_apart(populated: Ledger) -> None:
    with populated.unit_of_work() as uow:
        uow.accounts.ensure("other", broker=BrokerKind.SIM, mode=AccountMode.PAPER)
        uow.commit()
    report = build_eod_report(populated, "other", DAY, xnys(), {})
    assert report.trades == () and report.reconcile is None and report.transitions == ()
