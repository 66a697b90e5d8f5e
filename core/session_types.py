"""The session state machine's vocabulary: states, triggers, SAFE MODE reasons, the
day's schedule and the records a transition produces (`core.session` holds the table
and the machine; these types are shared with risk, events and the UI)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import IntEnum, StrEnum
from typing import NamedTuple

from core.calendar import TradingSession
from core.clock import NEW_YORK
from core.config_models import RiskConfig, SessionsConfig


class SessionState(StrEnum):
    PREMARKET = "premarket"
    OPENING_NO_TRADE = "opening_no_trade"
    TRADING_ALLOWED = "trading_allowed"
    TRADING_DENIED = "trading_denied"
    IN_POSITION = "in_position"
    COOLDOWN = "cooldown"
    LOCKED = "locked"
    DONE = "done"
    SAFE_MODE = "safe_mode"


class SessionTrigger(StrEnum):
    MARKET_OPEN = "market_open"
    OPENING_WINDOW_OVER = "opening_window_over"
    ALLOW = "allow"
    DENY = "deny"
    ENTRY_FILLED = "entry_filled"
    POSITION_CLOSED = "position_closed"
    COOLDOWN_OVER = "cooldown_over"
    LOSS_LIMIT_HIT = "loss_limit_hit"
    TRADE_LIMIT_HIT = "trade_limit_hit"
    FLATTEN_TIME = "flatten_time"
    SAFE_MODE = "safe_mode"
    RESUME = "resume"
    NEW_DAY = "new_day"


class SafeModeReason(StrEnum):
    """DESIGN.md section 3, plus INTERNAL_ERROR for a fact the engine could not place and
    BROKER_UNREACHABLE when the broker connection stays down (orders cannot be trusted)."""

    STALE_DATA = "stale_data"
    UNACKNOWLEDGED_ORDER = "unacknowledged_order"
    POSITION_MISMATCH = "position_mismatch"
    LOSS_LIMIT = "loss_limit"
    ABNORMAL_EXECUTION = "abnormal_execution"
    INTERNAL_ERROR = "internal_error"
    BROKER_UNREACHABLE = "broker_unreachable"


class DayPhase(IntEnum):
    """How far the scheduler has taken the day (only ever moves forward)."""

    BEFORE_OPEN = 0
    OPENING = 1
    TRADING = 2
    FLATTENED = 3


class IllegalSessionTransition(Exception):
    """The trigger is not allowed in this state (or its guard refused it)."""

    def __init__(self, state: SessionState, trigger: SessionTrigger, reason: str) -> None:
        self.state, self.trigger, self.reason = state, trigger, reason
        super().__init__(f"session: {trigger} is not allowed in {state}: {reason}")


class TransitionRefused(IllegalSessionTransition):
    """A legal (state, trigger) pair whose guard said no, e.g. /resume while the cause persists."""


def _ny(moment: datetime) -> str:
    return moment.astimezone(NEW_YORK).strftime("%H:%M")


@dataclass(frozen=True, slots=True)
class SessionSchedule:
    """The instants of one trading day that the machine and the risk engine talk about."""

    day: date
    open: datetime
    trading_from: datetime  # end of OPENING_NO_TRADE
    entry_cutoff: datetime
    flatten_at: datetime
    close: datetime

    @classmethod
    def build(
        cls,
        session: TradingSession,
        *,
        opening_no_trade_minutes: int,
        entry_cutoff: time,
        flatten_at: time,
        half_day_flatten_before_close_minutes: int,
    ) -> SessionSchedule:
        # On a half day the cut-off keeps its distance to the close (15:30 -> 12:30) and the
        # flatten happens a configured number of minutes before the early close.
        early_by = max(session.at(time(16, 0)) - session.close, timedelta(0))
        flatten = session.at(flatten_at)
        if session.is_half_day:
            flatten = session.close - timedelta(minutes=half_day_flatten_before_close_minutes)
        return cls(
            day=session.day,
            open=session.open,
            trading_from=session.open + timedelta(minutes=opening_no_trade_minutes),
            entry_cutoff=min(session.at(entry_cutoff) - early_by, flatten),
            flatten_at=min(flatten, session.close),
            close=session.close,
        )

    @classmethod
    def from_config(
        cls, session: TradingSession, risk: RiskConfig, sessions: SessionsConfig
    ) -> SessionSchedule:
        return cls.build(
            session,
            opening_no_trade_minutes=risk.opening_no_trade_minutes,
            entry_cutoff=risk.entry_cutoff,
            flatten_at=sessions.flatten_at,
            half_day_flatten_before_close_minutes=sessions.half_day_flatten_before_close_minutes,
        )


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """Everything the machine remembers besides its state (what `restore` rebuilds)."""

    account: str
    schedule: SessionSchedule
    phase: DayPhase = DayPhase.BEFORE_OPEN
    allowed: bool | None = None  # the day's answer; None (unanswered) means not allowed
    open_symbols: frozenset[str] = frozenset()
    cooldown_until: datetime | None = None
    locked_reason: str | None = None  # sticky for the day
    safe_mode_reasons: frozenset[SafeModeReason] = frozenset()
    resume_to: SessionState | None = None  # the state SAFE_MODE was entered from


@dataclass(frozen=True, slots=True)
class SessionTransition:
    """One row for the ledger's session_states history."""

    account: str
    session_date: date
    previous: SessionState
    current: SessionState
    trigger: SessionTrigger
    cause: str
    at: datetime

    @property
    def changed(self) -> bool:
        return self.previous is not self.current


class EntryPermission(NamedTuple):
    allowed: bool
    reason: str
