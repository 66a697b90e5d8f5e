"""Risk rules: each refusal with its message and numbers, boundaries, sizing, lock signals."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import pytest

from core.calendar import xnys
from core.clock import NEW_YORK
from core.config_models import RiskConfig
from core.domain import Side
from core.event_calendar import parse_events
from core.risk import EntryContext, RiskCode, RiskEngine, size_for_risk, usd
from core.session import SessionState, SessionTrigger

D = Decimal
DAY = date(2024, 3, 12)
CONFIG = RiskConfig(
    max_daily_loss_usd=D(300),
    max_daily_loss_r=D(3),
    max_trades_per_day=3,
    max_position_usd=D(10000),
    max_position_pct=D(25),
    risk_per_trade_usd=D(100),
    max_risk_per_trade_usd=D(200),
    min_qty=1,
    cooldown_minutes=15,
    opening_no_trade_minutes=15,
    entry_cutoff=time(15, 30),
    max_spread_bps=D(20),
)
EVENTS = parse_events(
    {
        "events": [
            {"date": DAY, "time": "14:00", "kind": "FOMC", "symbols": "*", "block_after_min": 60},
            {"date": DAY, "kind": "earnings", "symbols": ["MSFT"]},
        ]
    },
    "test",
)


def ny(hh: int, mm: int, day: date = DAY) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=NEW_YORK)


@pytest.fixture(scope="module")
def engine() -> RiskEngine:
    return RiskEngine(CONFIG, EVENTS, xnys())


BASE = EntryContext(
    symbol="AAPL",
    side=Side.BUY,
    trigger=D("100.00"),
    stop=D("99.00"),
    qty=D(50),
    now=ny(11, 0),
    equity=D(40000),
    buying_power=D(20000),
    session_state=SessionState.TRADING_ALLOWED,
    opening_window_end=ny(9, 45),
    entry_cutoff=ny(15, 30),
    day_allowed=True,
)


def check(engine: RiskEngine, **changes: Any) -> tuple[bool, dict[RiskCode, str]]:
    decision = engine.check_entry(replace(BASE, **changes))
    return decision.allowed, {r.code: r.message for r in decision.reasons}


def test_a_clean_entry_passes_with_its_figures(engine: RiskEngine) -> None:
    decision = engine.check_entry(BASE)
    assert decision.allowed and decision.reasons == () and not decision.must_lock
    f = decision.figures
    assert (f.notional, f.risk_per_share, f.risk_usd, f.pct_of_equity) == (
        D("5000.00"),
        D("1.00"),
        D("50.00"),
        D("12.5"),
    )
    # FOMC later today is a warning, not a refusal
    assert [w.message for w in decision.warnings] == ["event FOMC 14:00 today"]


RULES = [
    ({"safe_mode": True}, RiskCode.SAFE_MODE, "SAFE MODE is on"),
    ({"session_state": SessionState.SAFE_MODE}, RiskCode.SAFE_MODE, "until /resume"),
    ({"locked": True}, RiskCode.LOCKED, "LOCKED"),
    ({"session_state": SessionState.DONE}, RiskCode.DAY_DONE, "over"),
    ({"now": ny(11, 0, date(2024, 3, 16))}, RiskCode.MARKET_CLOSED, "regular hours"),
    ({"now": ny(9, 40)}, RiskCode.OPENING_WINDOW, "opening window (until 09:45)"),
    ({"now": ny(15, 31)}, RiskCode.ENTRY_CUTOFF, "after the 15:30 cut-off"),
    ({"day_allowed": None}, RiskCode.DAY_NOT_ALLOWED, "not allowed today (no answer)"),
    ({"day_allowed": False}, RiskCode.DAY_NOT_ALLOWED, "denied today"),
    ({"last_stop_out_at": ny(10, 27), "now": ny(10, 35)}, RiskCode.COOLDOWN, "until 10:42"),
    ({"session_state": SessionState.COOLDOWN}, RiskCode.COOLDOWN, "cooldown"),
    (
        {"now": ny(14, 10)},
        RiskCode.EVENT_WINDOW,
        "FOMC at 14:00 blocks entries from 13:45 to 15:00",
    ),
    ({"symbol": "MSFT"}, RiskCode.EVENT_WINDOW, "earnings today blocks entries all day"),
    (
        {"realized_pnl": D("-250"), "open_pnl": D("-62.5")},
        RiskCode.DAILY_LOSS_USD,
        "day P&L -$312.50 (realized -$250.00, open -$62.50) has reached the -$300.00",
    ),
    ({"realized_r": D("-3.2")}, RiskCode.DAILY_LOSS_R, "day result -3.2R has reached the -3R"),
    ({"trades_today": 3}, RiskCode.MAX_TRADES, "3 trades today: the limit is 3 per day"),
    ({"side": Side.SELL}, RiskCode.NO_SHORTS, "only opens long positions"),
    ({"qty": D("10.5")}, RiskCode.INVALID_ORDER, "quantity 10.5"),
    (
        {"stop": D("100.00")},
        RiskCode.STOP_NOT_BELOW_TRIGGER,
        "stop 100.00 must be below the trigger 100.00",
    ),
    (
        {"qty": D(250), "stop": D("99.00"), "buying_power": D(100000), "equity": D(200000)},
        RiskCode.POSITION_USD,
        "position $25,000.00 is above the $10,000.00 limit",
    ),
    (
        {"qty": D(250)},
        RiskCode.RISK_PER_TRADE,
        "risk $250.00 (250 x $1.00) is above the $200.00 per-trade limit",
    ),
    (
        {"equity": D(15000)},
        RiskCode.POSITION_PCT,
        "position $5,000.00 is 33.3% of equity $15,000.00, above the 25% limit",
    ),
    ({"equity": D(0)}, RiskCode.NO_EQUITY, "equity is $0.00"),
    (
        {"buying_power": D(4000)},
        RiskCode.BUYING_POWER,
        "cost $5,000.00 is above the buying power $4,000.00",
    ),
    (
        {"existing_position_qty": D(60)},
        RiskCode.POSITION_USD,
        "position $11,000.00 is above the $10,000.00 limit",
    ),
    ({"spread_bps": D("25")}, RiskCode.SPREAD, "spread 25 bps is above the 20 bps gate"),
]


@pytest.mark.parametrize(("changes", "code", "text"), RULES, ids=lambda x: str(x)[:40])
def test_each_rule_refuses_with_its_numbers(
    engine: RiskEngine, changes: dict[str, Any], code: RiskCode, text: str
) -> None:
    allowed, reasons = check(engine, **changes)
    assert not allowed
    assert code in reasons, reasons
    assert text in reasons[code]


def test_min_qty(engine: RiskEngine) -> None:
    strict = RiskEngine(CONFIG.model_copy(update={"min_qty": 10}), EVENTS, xnys())
    decision = strict.check_entry(replace(BASE, qty=D(5)))
    assert [r.message for r in decision.reasons] == ["quantity 5 is below the minimum of 10"]


def test_every_failing_rule_is_listed_once(engine: RiskEngine) -> None:
    allowed, reasons = check(
        engine,
        now=ny(9, 40),
        session_state=SessionState.OPENING_NO_TRADE,
        day_allowed=None,
        qty=D(300),
        buying_power=D(1000),
    )
    assert not allowed
    assert list(reasons) == [
        RiskCode.OPENING_WINDOW,
        RiskCode.DAY_NOT_ALLOWED,
        RiskCode.RISK_PER_TRADE,
        RiskCode.POSITION_USD,
        RiskCode.POSITION_PCT,
        RiskCode.BUYING_POWER,
    ]


BOUNDARIES = [
    # (changes, allowed): exactly at a limit
    ({"qty": D(100), "stop": D("98.00"), "equity": D(40000)}, True),  # $10,000, risk $200, 25%
    ({"qty": D(100), "trigger": D("100.01"), "stop": D("99.01")}, False),  # $10,001 > $10,000
    ({"qty": D(100), "stop": D("97.99")}, False),  # risk $201
    ({"equity": D(20000)}, True),  # exactly 25%
    ({"equity": D("19999.99")}, False),
    ({"buying_power": D(5000)}, True),
    ({"buying_power": D("4999.99")}, False),
    ({"trades_today": 2}, True),
    ({"trades_today": 3}, False),
    ({"realized_pnl": D("-299.99")}, True),
    ({"realized_pnl": D("-300")}, False),
    ({"realized_pnl": D("-200"), "open_pnl": D("-100")}, False),
    ({"realized_r": D("-2.99")}, True),
    ({"realized_r": D("-3")}, False),
    ({"last_stop_out_at": ny(10, 45)}, True),  # cooldown ends exactly at 11:00
    ({"last_stop_out_at": ny(10, 46)}, False),
    ({"now": ny(9, 45)}, True),  # the opening window has just ended
    ({"now": ny(15, 29)}, True),
    ({"now": ny(15, 30)}, False),  # the cut-off itself is refused
    ({"now": ny(13, 44)}, True),  # FOMC window starts 13:45
    ({"now": ny(13, 45)}, False),
    ({"now": ny(15, 0)}, True),  # the FOMC window ends at 15:00 (exclusive)
    ({"spread_bps": D(20)}, True),
]


@pytest.mark.parametrize(("changes", "allowed"), BOUNDARIES, ids=lambda x: str(x)[:50])
def test_boundaries(engine: RiskEngine, changes: dict[str, Any], allowed: bool) -> None:
    ok, reasons = check(engine, **changes)
    assert ok is allowed, reasons


def test_lock_signals(engine: RiskEngine) -> None:
    loss = engine.check_entry(replace(BASE, realized_pnl=D(-300), trades_today=3))
    assert loss.lock_trigger is SessionTrigger.LOSS_LIMIT_HIT
    assert loss.lock_reason is not None and loss.lock_reason.code is RiskCode.DAILY_LOSS_USD
    trades = engine.check_entry(replace(BASE, trades_today=3))
    assert trades.lock_trigger is SessionTrigger.TRADE_LIMIT_HIT and trades.must_lock
    already = engine.check_entry(replace(BASE, trades_today=3, locked=True))
    assert already.lock_trigger is None and already.lock_reason is None
    other = engine.check_entry(replace(BASE, qty=D(1000)))
    assert not other.allowed and not other.must_lock


def test_daily_loss_breached(engine: RiskEngine) -> None:
    assert engine.daily_loss_breached(D(-100), D(-150), D(-2)) is None
    usd_hit = engine.daily_loss_breached(D(-100), D(-200), D(-1))
    assert usd_hit is not None and usd_hit.code is RiskCode.DAILY_LOSS_USD
    r_hit = engine.daily_loss_breached(D(-100), D(0), D(-3))
    assert (
        r_hit is not None and r_hit.message == "day result -3R has reached the -3R daily loss limit"
    )
    assert engine.trade_limit_reached(2) is None
    assert engine.trade_limit_reached(3) is not None


def test_warnings(engine: RiskEngine) -> None:
    # risk 150 x $1.00 = $150: allowed (max $200) but above the usual $100
    decision = engine.check_entry(replace(BASE, qty=D(150), trigger=D(50), stop=D(49)))
    assert decision.allowed
    assert [w.code for w in decision.warnings] == [
        RiskCode.EVENT_TODAY,
        RiskCode.RISK_ABOVE_DEFAULT,
    ]
    assert decision.warnings[1].message == "risk $150.00 is above the usual $100.00 per trade"
    inside = engine.check_entry(replace(BASE, now=ny(14, 10)))
    assert all(w.code is not RiskCode.EVENT_TODAY for w in inside.warnings)  # it is a reason


@pytest.mark.parametrize(
    ("risk", "trigger", "stop", "equity", "expected"),
    [
        (D(100), D("50.00"), D("49.00"), D(100000), D(100)),  # 100 / 1.00
        (D(100), D("50.00"), D("49.30"), D(100000), D(142)),  # floor(142.857)
        (D(100), D("200.00"), D("199.90"), D(100000), D(50)),  # capped by $10,000
        (D(100), D("50.00"), D("49.90"), D(4000), D(20)),  # capped by 25% of $4,000
        (D(100), D("50.00"), D("10.00"), D(100000), D(2)),  # floor(2.5)
        (D(100), D("500.00"), D("300.00"), D(100000), D(1)),  # 0.5 share -> min_qty
        (D(100), D("50.00"), D("50.00"), D(100000), D(0)),  # no risk unit
        (D(100), D("50.00"), D("51.00"), D(100000), D(0)),  # stop above trigger
    ],
)
def test_size_for_risk(
    risk: Decimal, trigger: Decimal, stop: Decimal, equity: Decimal, expected: Decimal
) -> None:
    assert size_for_risk(risk, trigger, stop, equity, CONFIG) == expected


def test_sized_entry_passes(engine: RiskEngine) -> None:
    qty = engine.size(CONFIG.risk_per_trade_usd, D("100.00"), D("99.20"), BASE.equity)
    assert qty == D(100)  # 125 by risk, capped at $10,000
    assert engine.check_entry(replace(BASE, qty=qty, stop=D("99.20"))).allowed


def test_usd() -> None:
    assert usd(D("12500")) == "$12,500.00"
    assert usd(D("-312.5")) == "-$312.50"
    assert usd(D("0.005")) == "$0.01"


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError):
        replace(BASE, now=datetime(2024, 3, 12, 11, 0))
