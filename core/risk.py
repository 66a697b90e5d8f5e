"""Risk: the rules checked before every new entry, each refusal explained with its numbers.

`RiskEngine.check_entry` never stops at the first failure: the draft card shows every rule
that would refuse, so the trader sees the whole picture in one message. Risk outranks every
signal; the engine acts on the decision (refuse, and LOCK the day when a daily limit is hit).

Decisions where DESIGN.md is silent:
- Limits are inclusive where a trader would read them so: a position of exactly
  max_position_usd, or a risk of exactly max_risk_per_trade_usd, passes; a day loss of
  exactly max_daily_loss_usd (or R) has *reached* the limit and locks; with
  max_trades_per_day = 3, the fourth entry is refused.
- The daily loss in $ counts realized + open P&L; in R only realized R (open R is not
  defined before an exit).
- The position limits apply to the position after the fill: existing shares + new ones.
- Centaur never opens shorts: a sell entry is refused (sells are exits and go elsewhere).
- `size_for_risk` returns at least `min_qty` when the stop is valid, even if a cap would
  allow less; `check_entry` then refuses it with the reason, which beats a silent 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from enum import StrEnum

from core.calendar import CalendarRangeError, TradingCalendar
from core.clock import NEW_YORK, ensure_aware
from core.config_models import RiskConfig
from core.domain import PENNY, ZERO, Side
from core.event_calendar import EventCalendar, MarketEvent
from core.session import SessionState, SessionTrigger

HUNDRED = Decimal(100)


class RiskCode(StrEnum):
    SAFE_MODE = "safe_mode"
    LOCKED = "locked"
    MARKET_CLOSED = "market_closed"
    DAY_DONE = "day_done"
    OPENING_WINDOW = "opening_window"
    ENTRY_CUTOFF = "entry_cutoff"
    DAY_NOT_ALLOWED = "day_not_allowed"
    COOLDOWN = "cooldown"
    EVENT_WINDOW = "event_window"
    DAILY_LOSS_USD = "daily_loss_usd"
    DAILY_LOSS_R = "daily_loss_r"
    MAX_TRADES = "max_trades"
    INVALID_ORDER = "invalid_order"
    NO_SHORTS = "no_shorts"
    STOP_NOT_BELOW_TRIGGER = "stop_not_below_trigger"
    MIN_QTY = "min_qty"
    RISK_PER_TRADE = "risk_per_trade"
    POSITION_USD = "position_usd"
    POSITION_PCT = "position_pct"
    NO_EQUITY = "no_equity"
    BUYING_POWER = "buying_power"
    SPREAD = "spread"
    ACCOUNT_UNKNOWN = "account_unknown"
    OPPOSITE_SIDE_OPEN = "opposite_side_open"
    # warnings (never block)
    EVENT_TODAY = "event_today"
    RISK_ABOVE_DEFAULT = "risk_above_default"


@dataclass(frozen=True, slots=True)
class RiskReason:
    code: RiskCode
    message: str  # one plain sentence with the numbers, ready for the chat


@dataclass(frozen=True, slots=True, kw_only=True)
class EntryContext:
    """Everything the rules look at, gathered by the caller (no I/O here)."""

    symbol: str
    side: Side
    trigger: Decimal
    stop: Decimal
    qty: Decimal
    now: datetime
    equity: Decimal
    buying_power: Decimal
    session_state: SessionState
    opening_window_end: datetime
    entry_cutoff: datetime
    realized_pnl: Decimal = ZERO
    open_pnl: Decimal = ZERO
    realized_r: Decimal = ZERO
    trades_today: int = 0
    last_stop_out_at: datetime | None = None
    day_allowed: bool | None = None  # None: unanswered, which means not allowed
    locked: bool = False
    safe_mode: bool = False
    existing_position_qty: Decimal = ZERO
    # Entries confirmed and still working at the broker: each is a trade of the day and
    # its unfilled shares are position-to-be (limits count them, or N confirms pass N times).
    working_entries: int = 0
    working_qty: Decimal = ZERO  # unfilled shares of this symbol's working entries
    spread_bps: Decimal | None = None
    # Why the broker's account (equity, buying power) is not known now; None: it is.
    account_unknown: str | None = None
    # A sell of this symbol working at a broker that refuses opposite-side orders
    # (described, e.g. "the protection of 50 shares"); None: nothing in the way.
    opposite_side_open: str | None = None

    def __post_init__(self) -> None:
        for moment in (self.now, self.opening_window_end, self.entry_cutoff):
            ensure_aware(moment)
        if self.last_stop_out_at is not None:
            ensure_aware(self.last_stop_out_at)


@dataclass(frozen=True, slots=True)
class RiskFigures:
    """The numbers the draft card shows next to the verdict."""

    notional: Decimal  # qty * trigger of this entry
    position_notional: Decimal  # including shares already held
    risk_per_share: Decimal  # R per share: trigger - stop
    risk_usd: Decimal  # qty * R per share
    pct_of_equity: Decimal | None  # of the position after the fill; None without equity


@dataclass(frozen=True, slots=True)
class RiskDecision:
    allowed: bool
    reasons: tuple[RiskReason, ...]
    warnings: tuple[RiskReason, ...]
    figures: RiskFigures
    lock_trigger: SessionTrigger | None = None  # fire it: a daily limit is reached
    lock_reason: RiskReason | None = None

    @property
    def must_lock(self) -> bool:
        return self.lock_trigger is not None

    def codes(self) -> tuple[RiskCode, ...]:
        return tuple(r.code for r in self.reasons)


def usd(amount: Decimal) -> str:
    """$12,500.00 / -$312.50"""
    cents = amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents):,.2f}"


def _num(value: Decimal) -> str:
    """A quantity or price without trailing zeros noise: 100, 191.5, 0.25."""
    return format(value.normalize(), "f")


def _price(value: Decimal) -> str:
    """191.50, 0.1234: at least cents, never a rounded-away sub-penny digit."""
    cents = value.quantize(PENNY)
    return format(cents if cents == value else value, "f")


def _hhmm(moment: datetime) -> str:
    return moment.astimezone(NEW_YORK).strftime("%H:%M")


def _floor(value: Decimal) -> Decimal:
    return value.to_integral_value(rounding=ROUND_FLOOR)


def size_for_risk(
    risk_usd: Decimal, trigger: Decimal, stop: Decimal, equity: Decimal, config: RiskConfig
) -> Decimal:
    """Whole shares risking at most `risk_usd`, capped by the position limits ($ and %).

    0 when the stop is not below the trigger (no risk unit); otherwise at least min_qty.
    """
    per_share = trigger - stop
    if per_share <= 0 or trigger <= 0 or risk_usd <= 0:
        return ZERO
    qty = _floor(risk_usd / per_share)
    qty = min(qty, _floor(config.max_position_usd / trigger))
    qty = min(qty, _floor(max(equity, ZERO) * config.max_position_pct / HUNDRED / trigger))
    return max(qty, Decimal(config.min_qty))


def _describe_window(event: MarketEvent) -> str:
    if event.at is None:
        return f"{event.kind} today blocks entries all day"
    start, end = event.window()
    return (
        f"{event.kind} at {event.at.strftime('%H:%M')} blocks entries "
        f"from {_hhmm(start)} to {_hhmm(end)}"
    )


class RiskEngine:
    def __init__(
        self, config: RiskConfig, events: EventCalendar, calendar: TradingCalendar
    ) -> None:
        self.config = config
        self.events = events
        self.calendar = calendar

    def size(self, risk_usd: Decimal, trigger: Decimal, stop: Decimal, equity: Decimal) -> Decimal:
        return size_for_risk(risk_usd, trigger, stop, equity, self.config)

    def daily_loss_breached(
        self, realized: Decimal, open_pnl: Decimal, realized_r: Decimal
    ) -> RiskReason | None:
        """The first daily loss limit ($, then R) that the day has reached, if any."""
        reasons = self._daily_loss(realized, open_pnl, realized_r)
        return reasons[0] if reasons else None

    def trade_limit_reached(self, trades_today: int) -> RiskReason | None:
        limit = self.config.max_trades_per_day
        if trades_today < limit:
            return None
        return RiskReason(
            RiskCode.MAX_TRADES,
            f"{trades_today} trades today: the limit is {limit} per day",
        )

    def _working_entries_limit(self, ctx: EntryContext) -> RiskReason | None:
        limit = self.config.max_trades_per_day
        if ctx.trades_today + ctx.working_entries < limit:
            return None
        return RiskReason(
            RiskCode.MAX_TRADES,
            f"{ctx.trades_today} trades today and {ctx.working_entries} entries working: "
            f"the limit is {limit} per day",
        )

    def _daily_loss(
        self, realized: Decimal, open_pnl: Decimal, realized_r: Decimal
    ) -> list[RiskReason]:
        cfg, out = self.config, []
        total = realized + open_pnl
        if total <= -cfg.max_daily_loss_usd:
            out.append(
                RiskReason(
                    RiskCode.DAILY_LOSS_USD,
                    f"day P&L {usd(total)} (realized {usd(realized)}, open {usd(open_pnl)}) "
                    f"has reached the {usd(-cfg.max_daily_loss_usd)} daily loss limit",
                )
            )
        if realized_r <= -cfg.max_daily_loss_r:
            out.append(
                RiskReason(
                    RiskCode.DAILY_LOSS_R,
                    f"day result {_num(realized_r)}R has reached the "
                    f"-{_num(cfg.max_daily_loss_r)}R daily loss limit",
                )
            )
        return out

    def check_entry(self, ctx: EntryContext) -> RiskDecision:
        """Every failing rule as a reason; allowed only when there is none."""
        reasons: list[RiskReason] = []
        reasons += self._session_rules(ctx)
        loss = self._daily_loss(ctx.realized_pnl, ctx.open_pnl, ctx.realized_r)
        trades = self.trade_limit_reached(ctx.trades_today)
        reasons += loss
        if trades is not None:
            reasons.append(trades)
        else:
            working = self._working_entries_limit(ctx)
            if working is not None:
                reasons.append(working)  # refuses, never locks: the entries may expire
        figures, order_reasons = self._order_rules(ctx)
        reasons += order_reasons
        # One reason per code (the first is the most specific) so the card is not repetitive.
        by_code: dict[RiskCode, RiskReason] = {}
        for reason in reasons:
            by_code.setdefault(reason.code, reason)
        unique = tuple(by_code.values())
        lock_reason = loss[0] if loss else trades
        lock_trigger = None
        if lock_reason is not None and not ctx.locked:
            lock_trigger = SessionTrigger.LOSS_LIMIT_HIT if loss else SessionTrigger.TRADE_LIMIT_HIT
        return RiskDecision(
            allowed=not unique,
            reasons=unique,
            warnings=tuple(self._warnings(ctx, figures)),
            figures=figures,
            lock_trigger=lock_trigger,
            lock_reason=lock_reason if lock_trigger is not None else None,
        )

    def _session_rules(self, ctx: EntryContext) -> list[RiskReason]:
        out: list[RiskReason] = []
        state, now = ctx.session_state, ctx.now
        if ctx.safe_mode or state is SessionState.SAFE_MODE:
            out.append(
                RiskReason(RiskCode.SAFE_MODE, "SAFE MODE is on: no new entries until /resume")
            )
        if ctx.locked or state is SessionState.LOCKED:
            out.append(RiskReason(RiskCode.LOCKED, "the day is LOCKED: no new entries today"))
        if state is SessionState.DONE:
            out.append(RiskReason(RiskCode.DAY_DONE, "the trading day is over"))
        if not self._in_regular_hours(now) or state is SessionState.PREMARKET:
            out.append(
                RiskReason(
                    RiskCode.MARKET_CLOSED, "the market is not open: entries only in regular hours"
                )
            )
        if now < ctx.opening_window_end or state is SessionState.OPENING_NO_TRADE:
            out.append(
                RiskReason(
                    RiskCode.OPENING_WINDOW,
                    f"no entries in the opening window (until {_hhmm(ctx.opening_window_end)})",
                )
            )
        if now >= ctx.entry_cutoff:
            out.append(
                RiskReason(
                    RiskCode.ENTRY_CUTOFF,
                    f"no new entries at or after the {_hhmm(ctx.entry_cutoff)} cut-off",
                )
            )
        if ctx.day_allowed is None:
            out.append(
                RiskReason(
                    RiskCode.DAY_NOT_ALLOWED,
                    "trading was not allowed today (no answer): /allow to enable it",
                )
            )
        elif ctx.day_allowed is False or state is SessionState.TRADING_DENIED:
            out.append(
                RiskReason(RiskCode.DAY_NOT_ALLOWED, "trading is denied today: /allow to enable")
            )
        cooldown_end = None
        if ctx.last_stop_out_at is not None:
            cooldown_end = ctx.last_stop_out_at + timedelta(minutes=self.config.cooldown_minutes)
        if cooldown_end is not None and now < cooldown_end:
            out.append(
                RiskReason(
                    RiskCode.COOLDOWN, f"cooldown after a stop-out until {_hhmm(cooldown_end)}"
                )
            )
        elif state is SessionState.COOLDOWN:
            out.append(RiskReason(RiskCode.COOLDOWN, "cooldown after a stop-out"))
        event = self.events.blocking_event(ctx.symbol, now)
        if event is not None:
            out.append(RiskReason(RiskCode.EVENT_WINDOW, _describe_window(event)))
        return out

    def _in_regular_hours(self, now: datetime) -> bool:
        try:
            return self.calendar.session_for_instant(now) is not None
        except CalendarRangeError:
            return False

    def _order_rules(self, ctx: EntryContext) -> tuple[RiskFigures, list[RiskReason]]:
        cfg, out = self.config, []
        per_share = ctx.trigger - ctx.stop
        notional = ctx.qty * ctx.trigger
        position = (ctx.existing_position_qty + ctx.working_qty + ctx.qty) * ctx.trigger
        pct = position / ctx.equity * HUNDRED if ctx.equity > 0 else None
        figures = RiskFigures(notional, position, per_share, ctx.qty * per_share, pct)
        if ctx.account_unknown is not None:
            out.append(
                RiskReason(
                    RiskCode.ACCOUNT_UNKNOWN,
                    "risk cannot be checked: the broker's account is unknown "
                    f"({ctx.account_unknown})",
                )
            )
        if ctx.opposite_side_open is not None:
            out.append(
                RiskReason(
                    RiskCode.OPPOSITE_SIDE_OPEN,
                    f"{ctx.symbol} has {ctx.opposite_side_open} working: the broker refuses a "
                    "stop-buy against it as a wash trade (adding to a position is not "
                    "supported: /close or /sell it first)",
                )
            )
        if ctx.side is not Side.BUY:
            out.append(
                RiskReason(RiskCode.NO_SHORTS, "Centaur only opens long positions (buy entries)")
            )
        if ctx.trigger <= 0 or ctx.qty <= 0 or ctx.qty != _floor(ctx.qty):
            out.append(
                RiskReason(
                    RiskCode.INVALID_ORDER,
                    f"quantity {_num(ctx.qty)} and trigger {_price(ctx.trigger)} must be "
                    "a positive whole number of shares and a positive price",
                )
            )
        elif ctx.qty < cfg.min_qty:
            out.append(
                RiskReason(
                    RiskCode.MIN_QTY,
                    f"quantity {_num(ctx.qty)} is below the minimum of {cfg.min_qty}",
                )
            )
        if ctx.side is Side.BUY and per_share <= 0:
            out.append(
                RiskReason(
                    RiskCode.STOP_NOT_BELOW_TRIGGER,
                    f"stop {_price(ctx.stop)} must be below the trigger {_price(ctx.trigger)}",
                )
            )
        elif figures.risk_usd > cfg.max_risk_per_trade_usd:
            out.append(
                RiskReason(
                    RiskCode.RISK_PER_TRADE,
                    f"risk {usd(figures.risk_usd)} ({_num(ctx.qty)} x {usd(per_share)}) "
                    f"is above the {usd(cfg.max_risk_per_trade_usd)} per-trade limit",
                )
            )
        if position > cfg.max_position_usd:
            out.append(
                RiskReason(
                    RiskCode.POSITION_USD,
                    f"position {usd(position)} is above the {usd(cfg.max_position_usd)} limit",
                )
            )
        known = ctx.account_unknown is None  # else one reason says why, not three
        if pct is None and known:
            out.append(
                RiskReason(RiskCode.NO_EQUITY, f"account equity is {usd(ctx.equity)}: no entries")
            )
        elif pct is not None and pct > cfg.max_position_pct:
            out.append(
                RiskReason(
                    RiskCode.POSITION_PCT,
                    f"position {usd(position)} is {pct:.1f}% of equity {usd(ctx.equity)}, "
                    f"above the {_num(cfg.max_position_pct)}% limit",
                )
            )
        if notional > ctx.buying_power and known:
            out.append(
                RiskReason(
                    RiskCode.BUYING_POWER,
                    f"cost {usd(notional)} is above the buying power {usd(ctx.buying_power)}",
                )
            )
        max_spread = cfg.max_spread_bps
        if max_spread is not None and ctx.spread_bps is not None and ctx.spread_bps > max_spread:
            out.append(
                RiskReason(
                    RiskCode.SPREAD,
                    f"spread {_num(ctx.spread_bps)} bps is above the {_num(max_spread)} bps gate",
                )
            )
        return figures, out

    def _warnings(self, ctx: EntryContext, figures: RiskFigures) -> list[RiskReason]:
        out: list[RiskReason] = []
        day = ctx.now.astimezone(NEW_YORK).date()
        blocking = self.events.blocking_event(ctx.symbol, ctx.now)
        for event in self.events.events_on(day, ctx.symbol):
            if event is blocking:
                continue
            when = "all day" if event.at is None else f"{event.at.strftime('%H:%M')} today"
            out.append(RiskReason(RiskCode.EVENT_TODAY, f"event {event.kind} {when}"))
        default = self.config.risk_per_trade_usd
        if default < figures.risk_usd <= self.config.max_risk_per_trade_usd:
            out.append(
                RiskReason(
                    RiskCode.RISK_ABOVE_DEFAULT,
                    f"risk {usd(figures.risk_usd)} is above the usual {usd(default)} per trade",
                )
            )
        return out
