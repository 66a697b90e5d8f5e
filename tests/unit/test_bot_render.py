"""Every render_* on sample data: valid Telegram HTML, hostile text escaped, key figures."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from bot.emulator.html_text import parse_html
from bot.render import (
    TriggerOption,
    card_line,
    render_account_switched,
    render_accounts,
    render_batch_results,
    render_buy_picker,
    render_cancel_picker,
    render_cancel_result,
    render_card,
    render_card_head,
    render_confirm_result,
    render_day_answer,
    render_draft_card,
    render_drafts_list,
    render_event,
    render_flatten_question,
    render_flatten_result,
    render_help,
    render_kill_payload,
    render_kill_preview,
    render_kill_reports,
    render_kill_running,
    render_kill_second,
    render_level_changed,
    render_levels,
    render_live,
    render_orders,
    render_pnl,
    render_positions,
    render_problem,
    render_prompt,
    render_protect_results,
    render_protection_warning,
    render_regimes,
    render_resume,
    render_sell_picker,
    render_sell_stop_picker,
    render_signals,
    render_size_picker,
    render_start,
    render_status,
    render_trail_results,
    render_trigger_picker,
    render_usage,
    render_whoami,
)
from bot.render.fmt import money, pct, price, qty, signed_money
from bot.render.status import protection_text
from core.config_models import NotificationLevel
from core.domain import (
    BrokerOrderId,
    ClientOrderId,
    OrderRole,
    OrderStatus,
    OrderType,
    Regime,
    Side,
    Symbol,
    TimeInForce,
)
from core.drafts import ConfirmOutcome, ConfirmResult, DraftReview, SizePreset
from core.events import (
    KillCompleted,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderPartiallyFilled,
    OrderRejected,
    PositionUnprotected,
    ProtectionFailed,
    ProtectionFallback,
    ProtectionKind,
    ProtectionPlaced,
    ReconcileCompleted,
    RegimeChanged,
    RiskLocked,
    RiskRefused,
    SafeModeCleared,
    SafeModeEntered,
    SessionStateChanged,
    SignalRaised,
)
from core.kill import FlattenResult, KillPreview, KillReport, OrderLine, OrderResult, PositionLine
from core.ledger import AccountMode, DraftStatus, RegimeRow, SignalRow, SignalStatus
from core.marketdata.bar import Bar
from core.order_views import OrderView
from core.protection import ProtectionResult
from core.reconcile import ReconcileReport
from core.risk import RiskCode, RiskReason
from core.services import AccountSummary
from core.session import SafeModeReason, SessionState, SessionTrigger
from core.status import BadgeKind, PnlReport, PositionView, ProtectionBadge, StatusSnapshot

D = Decimal
AT = datetime(2025, 3, 3, 15, 41, tzinfo=UTC)  # 10:41 New York
EVIL = "<b>&evil</b>"  # core text can hold anything: it must reach the chat as text


def valid(html: str) -> str:
    """The plain text Telegram would show; raises if Telegram would refuse the HTML."""
    text, _ = parse_html(html)
    return text


def order(**over: Any) -> OrderView:
    fields: dict[str, Any] = dict(
        id=7,
        client_order_id=ClientOrderId("ns-d1-en1"),
        broker_order_id=BrokerOrderId("b-1"),
        symbol="AAPL",
        side=Side.BUY,
        order_type=OrderType.STOP,
        time_in_force=TimeInForce.DAY,
        qty=D(40),
        filled_qty=D(0),
        avg_fill_price=None,
        status=OrderStatus.ACCEPTED,
        role=OrderRole.ENTRY,
        draft_id=1,
        parent_order_id=None,
        replaces_order_id=None,
        stop_price=D("191.52"),
        limit_price=None,
        trail_percent=None,
        extended_hours=False,
        reject_reason=None,
        created_at=AT,
        submitted_at=AT,
        closed_at=None,
    )
    fields.update(over)
    return OrderView(**fields)


def position(badge: ProtectionBadge) -> PositionView:
    return PositionView("AAPL", D(40), D("191.52"), D("192.10"), D("23.2"), badge)


TRAIL = ProtectionBadge(BadgeKind.TRAILING, D(40), D("190.56"), D("0.8"))
NAKED = ProtectionBadge(BadgeKind.NONE)


def snapshot(**over: Any) -> StatusSnapshot:
    fields: dict[str, Any] = dict(
        account="paper",
        mode=AccountMode.PAPER,
        broker="sim",
        broker_ok=True,
        as_of=AT,
        equity=D("100010.5"),
        buying_power=D("92350"),
        session_state=SessionState.IN_POSITION,
        session_date=date(2025, 3, 3),
        day_switch="allowed",
        locked_reason=None,
        safe_mode_reasons=(),
        cooldown_until=None,
        positions=(position(TRAIL),),
        working_orders=(
            order(
                side=Side.SELL,
                order_type=OrderType.TRAILING_STOP,
                trail_percent=D("0.8"),
                stop_price=None,
                role=OrderRole.PROTECTION,
            ),
        ),
        realized_pnl=D("-46"),
        open_pnl=D("23.2"),
        day_pnl=D("-22.8"),
        day_r=D("-0.46"),
        trades_today=2,
        last_reconcile=None,
    )
    fields.update(over)
    return StatusSnapshot(**fields)


def review(**over: Any) -> DraftReview:
    fields: dict[str, Any] = dict(
        draft_id=12,
        account="paper",
        status=DraftStatus.PENDING,
        side=Side.BUY,
        symbol="AAPL",
        trigger=D("191.52"),
        stop=D("189.9"),
        qty=D(61),
        risk_usd=D("98.82"),
        r_per_share=D("1.62"),
        notional=D("11682.72"),
        pct_of_equity=D("11.68"),
        equity=D(100000),
        buying_power=D(100000),
        session_state=SessionState.TRADING_ALLOWED,
        allowed=True,
        refusals=(),
        warnings=(),
        event_warnings=(),
        capability_note="stop order in regular hours",
        queued=False,
        expires_at=AT,
        size_presets=(SizePreset("1x ($100)", D(100), D(61)),),
    )
    fields.update(over)
    return DraftReview(**fields)


def test_formatters() -> None:
    assert money(D("1234.5")) == "$1,234.50" and money(D("-46")) == "-$46.00"
    assert signed_money(D(10)) == "+$10.00" and signed_money(D(0)) == "$0.00"
    assert price(D(101)) == "101.00" and price(D("0.1234")) == "0.1234"
    assert price(D("94.658389")) == "94.6584" and price(D("94.699999")) == "94.70"
    assert qty(D("40.0")) == "40" and pct(D("0.80")) == "0.8%" and money(None) == "n/a"


def test_status_shows_every_part() -> None:
    text = valid(render_status(snapshot()))
    for fragment in (
        "paper · PAPER · sim",
        "Session: in position",
        "Equity $100,010.50",
        "Day P&L -$22.80",
        "AAPL 40 @ 191.52 → 192.10  +$23.20",
        "🛡 trail 0.8%, stop ≈ 190.56",
        "AAPL sell trailing 0.8% 40 · protection · accepted",
        "as of 10:41 ET",
    ):
        assert fragment in text, fragment


def test_a_trailing_stop_the_broker_reported_is_shown_without_approximation() -> None:
    """Issue 12 item 10: the broker's level is shown as it is; "≈" only marks a level
    worked out from the high-water mark."""
    broker = ProtectionBadge(BadgeKind.TRAILING, D(40), D("190.56"), D("0.8"), estimated=False)
    assert protection_text(broker) == "🛡 trail 0.8%, stop 190.56"
    assert protection_text(TRAIL) == "🛡 trail 0.8%, stop ≈ 190.56"


def test_status_warnings_and_live_badge() -> None:
    report = ReconcileReport("paper", AT, "periodic", False, mismatches=(EVIL,))
    snap = snapshot(
        mode=AccountMode.LIVE,
        broker_ok=False,
        session_state=SessionState.SAFE_MODE,
        safe_mode_reasons=(SafeModeReason.STALE_DATA,),
        locked_reason=EVIL,
        positions=(position(NAKED),),
        last_reconcile=report,
    )
    text = valid(render_status(snap))
    assert "LIVE" in text and "SAFE MODE: stale data" in text and "UNPROTECTED" in text
    assert "not answering" in text and text.count(EVIL) == 2


def test_lists_and_pnl() -> None:
    assert "no open positions" in valid(render_positions((), "paper"))
    assert "1 position" in valid(render_positions((position(TRAIL),), "paper"))
    assert "no working orders" in valid(render_orders((), "paper"))
    partial = order(filled_qty=D(10), status=OrderStatus.PARTIALLY_FILLED)
    assert "filled 10/40" in valid(render_orders((partial,), "paper"))
    pnl = PnlReport(
        "paper",
        "week",
        date(2025, 3, 3),
        date(2025, 3, 5),
        D(120),
        D("1.2"),
        ((date(2025, 3, 3), D(-30)), (date(2025, 3, 5), D(150))),
        3,
    )
    text = valid(render_pnl(pnl))
    assert "P&L week" in text and "+$120.00 (+1.20R)" in text and "2025-03-05  +$150.00" in text


def test_draft_card_shows_every_decision_figure() -> None:
    text = valid(render_draft_card(review(), budget=D(100)))
    for fragment in (
        "Draft #12 · stop-buy AAPL · paper",
        "Trigger 191.52 · stop 189.90 · qty 61",
        "Risk $98.82 (R 1.62/share) = 0.99R of the $100.00 budget",
        "11.68% of equity",
        "Buying power $100,000.00 · session: trading allowed",
        "Expires 10:41 ET",
    ):
        assert fragment in text, fragment


def test_draft_card_warnings_and_refusals_are_escaped() -> None:
    r = review(
        refusals=(RiskReason(RiskCode.MAX_TRADES, EVIL),),
        warnings=(RiskReason(RiskCode.RISK_ABOVE_DEFAULT, "above default"),),
        event_warnings=("CPI at 08:30",),
        queued=True,
        status=DraftStatus.CONFIRMED,
    )
    text = valid(
        render_draft_card(
            r, note=render_confirm_result(ConfirmResult(12, ConfirmOutcome.REFUSED_RISK, EVIL))
        )
    )
    assert "would refuse it" in text and f"• {EVIL}" in text and "CPI at 08:30" in text
    assert "Queued until the open" in text and "Status: confirmed" in text
    sell = review(side=Side.SELL, stop=D("189.9"), trigger=D("189.9"), position_qty=D(61))
    assert "Replaces this position's protection" in valid(render_draft_card(sell))


def test_draft_flow_screens() -> None:
    bar = Bar(
        Symbol("AAPL"),
        AT,
        timedelta(minutes=1),
        D(191),
        D("191.5"),
        D("190.8"),
        D("191.2"),
        100,
    )
    sig = SignalRow(
        symbol="AAPL",
        session_date=date(2025, 3, 3),
        signal_time=AT,
        trigger=D("191.52"),
        stop=D("189.9"),
        regime=Regime.TREND_UP,
        evidence={},
        status=SignalStatus.NEW,
    )
    screens = [
        render_buy_picker(["AAPL"]),
        render_buy_picker([]),
        render_trigger_picker("AAPL", bar, sig, [TriggerOption("Signal", D("191.52"), D("189.9"))]),
        render_trigger_picker("AAPL", None, None, []),
        render_size_picker("AAPL", D("191.52"), D("189.9"), 2),
        render_size_picker("AAPL", D("191.52"), D("189.9"), 0),
        render_sell_picker([]),
        render_sell_picker([position(TRAIL)]),
        render_sell_stop_picker(position(TRAIL), bar),
        render_drafts_list(
            [review(), review(draft_id=13, refusals=(RiskReason(RiskCode.LOCKED, "x"),))], {12}
        ),
        render_drafts_list([], set()),
        render_batch_results(
            [
                ConfirmResult(12, ConfirmOutcome.PLACED, "ok"),
                ConfirmResult(13, ConfirmOutcome.EXPIRED, EVIL),
            ]
        ),
        render_prompt("the <trigger>", "191.52"),
        render_card(render_card_head(review()), ["10:41 ✅ placed", "10:42 💰 filled 61 @ 191.53"]),
    ]
    texts = [valid(s) for s in screens]
    assert "1 of 2 drafts placed" in texts[11] and EVIL in texts[11]
    assert "☑️ #12" in texts[9] and "would be refused" in texts[9]


def test_kill_cards() -> None:
    preview = KillPreview(
        "paper",
        (OrderLine("c1", "AAPL", "sell", D(40), D(0), "trailing_stop", "accepted", "protection"),),
        (PositionLine("AAPL", D(40), D("191.52"), D(192)),),
        (EVIL,),
    )
    text = valid(render_kill_preview([preview]))
    assert "Cancel 1 order, then flatten 1 position." in text and EVIL in text
    assert "Nothing is open" in valid(render_kill_preview([KillPreview("paper", (), ())]))
    assert "There is no undo" in valid(render_kill_second([preview]))
    valid(render_kill_running())
    good = KillReport(
        "paper",
        AT,
        AT,
        True,
        (OrderResult("c1", "AAPL", "canceled"),),
        (FlattenResult("AAPL", D(40), D(0), True),),
    )
    bad = KillReport(
        "live",
        AT,
        AT,
        False,
        (OrderResult("c2", "MU", "unconfirmed", EVIL),),
        (FlattenResult("MU", D(5), D(5), False, EVIL),),
        (EVIL,),
    )
    assert "all flat" in valid(render_kill_reports([good]))
    text = valid(render_kill_reports([good, bad]))
    assert "NOT all flat" in text and "MU still open: 5" in text
    payload = {
        "positions": [
            {"symbol": "AAPL", "flat": True},
            {"symbol": "MU", "flat": False, "detail": EVIL},
        ]
    }
    assert "MU still open" in valid(render_kill_payload("paper", False, payload))


def common(**over: Any) -> dict[str, Any]:
    fields: dict[str, Any] = dict(
        at=AT,
        account="paper",
        client_order_id=ClientOrderId("c1"),
        broker_order_id=None,
        symbol="AAPL",
        side=Side.BUY,
        role=OrderRole.ENTRY,
        qty=D(40),
        filled_qty=D(0),
        order_type=OrderType.STOP,
        stop_price=D("191.52"),
    )
    fields.update(over)
    return fields


EVENTS = [
    SignalRaised(
        at=AT,
        symbol="AAPL",
        session_date=date(2025, 3, 3),
        signal_time=AT,
        trigger=D("191.52"),
        stop=D("189.9"),
        risk_per_share=D("1.62"),
        suggested_qty=D(61),
        regime=Regime.TREND_UP,
        evidence={"note": EVIL},
        signal_id=3,
    ),
    RegimeChanged(
        at=AT,
        symbol="MU",
        session_date=date(2025, 3, 3),
        previous=Regime.RANGE,
        current=Regime.TREND_UP,
        evidence={"crosses": 2, "why": EVIL},
    ),
    OrderAccepted(**common()),
    OrderPartiallyFilled(**common(filled_qty=D(10), avg_fill_price=D("191.53"))),
    OrderFilled(**common(filled_qty=D(40), avg_fill_price=D("191.53"))),
    OrderFilled(
        **common(
            side=Side.SELL, role=OrderRole.PROTECTION, filled_qty=D(40), avg_fill_price=D("190.1")
        )
    ),
    OrderCanceled(**common(reason=EVIL)),
    OrderRejected(**common(reason=EVIL)),
    ProtectionPlaced(
        at=AT,
        account="paper",
        symbol="AAPL",
        qty=D(40),
        protection_kind=ProtectionKind.TRAILING,
        trail_pct=D("0.8"),
        stop_price=D("189.99"),
        entry_price=D("191.52"),
        entry_order_id=ClientOrderId("c1"),
        protection_order_id=ClientOrderId("c2"),
    ),
    ProtectionFailed(
        at=AT,
        account="paper",
        symbol="AAPL",
        qty=D(40),
        attempted=ProtectionKind.TRAILING,
        reason=EVIL,
        fallback=ProtectionFallback.PLAIN_STOP,
    ),
    PositionUnprotected(
        at=AT, account="paper", symbol="AAPL", qty=D(40), reason=EVIL, auto_flatten=False
    ),
    RiskLocked(at=AT, account="paper", reason="daily_loss_usd", detail=EVIL),
    RiskRefused(
        at=AT,
        account="paper",
        draft_id=None,
        symbol="AAPL",
        reasons=(RiskReason(RiskCode.COOLDOWN, EVIL),),
    ),
    SessionStateChanged(
        at=AT,
        account="paper",
        session_date=date(2025, 3, 3),
        previous=SessionState.IN_POSITION,
        current=SessionState.COOLDOWN,
        trigger=SessionTrigger.POSITION_CLOSED,
        cause=EVIL,
    ),
    SafeModeEntered(at=AT, account="paper", reason=SafeModeReason.STALE_DATA, detail=EVIL),
    SafeModeCleared(at=AT, account="paper", reason=EVIL),
    KillCompleted(at=AT, account="paper", all_flat=True, report={"positions": []}),
    ReconcileCompleted(at=AT, account="paper", in_sync=False, summary={"mismatches": [EVIL]}),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_every_alert_renders_as_valid_escaped_html(event: Any) -> None:
    html = render_event(event)
    assert html is not None
    text = valid(html)
    if EVIL in str(event.to_payload()) and not isinstance(event, SignalRaised):
        assert EVIL in text
    line = card_line(event, Side.BUY)
    if line is not None:
        valid(line)


def test_key_alert_wording() -> None:
    placed = valid(render_event(EVENTS[8]) or "")
    assert placed == "🛡 AAPL 40 @ 191.52 filled; trailing stop 0.8% accepted (stop now 189.99)"
    assert "UNPROTECTED: AAPL 40 shares" in valid(render_event(EVENTS[10]) or "")
    assert "stop hit" in valid(render_event(EVENTS[5]) or "")


def test_routine_steps_are_not_worth_a_message() -> None:
    routine = SessionStateChanged(
        at=AT,
        account="paper",
        session_date=date(2025, 3, 3),
        previous=SessionState.OPENING_NO_TRADE,
        current=SessionState.TRADING_DENIED,
        trigger=SessionTrigger.OPENING_WINDOW_OVER,
        cause="09:45",
    )
    assert render_event(routine) is None
    assert render_event(OrderAccepted(**common(role=OrderRole.PROTECTION, side=Side.SELL))) is None
    assert card_line(OrderAccepted(**common(role=OrderRole.PROTECTION)), Side.BUY) is None
    assert card_line(OrderAccepted(**common(role=OrderRole.PROTECTION)), Side.SELL) is not None


def test_info_screens() -> None:
    accounts = [
        AccountSummary("paper", AccountMode.PAPER, "sim", True),
        AccountSummary("live-1", AccountMode.LIVE, "alpaca", False),
    ]
    regimes = {
        "AAPL": RegimeRow(
            symbol="AAPL",
            session_date=date(2025, 3, 3),
            at=AT,
            label=Regime.TREND_UP,
            evidence={"vwap_pct": 0.86, "x": EVIL},
        )
    }
    signals = [
        SignalRow(
            symbol="AAPL",
            session_date=date(2025, 3, 3),
            signal_time=AT,
            trigger=D(1),
            stop=D("0.9"),
            regime=None,
            evidence=None,
            status=SignalStatus.DRAFTED,
        )
    ]
    levels = {
        "signal": NotificationLevel.ON,
        "regime": NotificationLevel.SILENT,
        "brief": NotificationLevel.OFF,
    }
    texts = [
        valid(s)
        for s in (
            render_start(EVIL, "paper", AccountMode.PAPER),
            render_help([("status", "the <account>")]),
            render_usage(EVIL, "/buy SYM"),
            render_problem(EVIL),
            render_regimes(regimes, None),
            render_regimes({}, "AAPL"),
            render_signals(signals, "2025-03-03"),
            render_signals([], "2025-03-03"),
            render_accounts(accounts),
            render_account_switched(accounts[1]),
            render_live(accounts, False),
            render_whoami(1, 2, "x<y"),
            render_levels(levels, ["MU"]),
            render_level_changed("signal", NotificationLevel.OFF, EVIL),
            render_trail_results(
                "AAPL", D("1.2"), [ProtectionResult("AAPL", D(40), True, message=EVIL)]
            ),
            render_trail_results("AAPL", D("1.2"), []),
            render_protect_results("AAPL", [ProtectionResult("AAPL", D(40), False)]),
            render_flatten_result(FlattenResult("AAPL", D(40), D(0), True)),
            render_flatten_result(FlattenResult("AAPL", D(40), None, False, EVIL)),
            render_cancel_result(order(status=OrderStatus.CANCELED)),
            render_cancel_result(order(status=OrderStatus.PENDING_CANCEL)),
            render_cancel_picker([]),
            render_protection_warning(order(role=OrderRole.PROTECTION)),
            render_flatten_question("AAPL"),
            render_day_answer(True, "trading_allowed"),
            render_day_answer(False, "trading_denied"),
            render_resume(False, EVIL),
        )
    ]
    assert texts[0].startswith(f"👋 Hi {EVIL}.")
    assert "live-1 · 🔴 LIVE" in texts[8] and "Every account" not in texts[10]
    assert "🔕 regime: silent" in texts[12] and "MU" in texts[12]
