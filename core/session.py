"""The session state machine: one per account and trading day, as data.

States, triggers and the transition table below are plain data; `SessionMachine.fire` looks
up `(state, trigger)`, applies the trigger's effect to the remembered facts (the day's
answer, open positions, cooldown, lock, SAFE MODE causes), then takes the first rule whose
guard passes. Nothing here touches a database or a broker: every transition returns a
`SessionTransition` record that the engine writes to the ledger and announces.

Decisions where DESIGN.md is silent:
- Entries are possible in TRADING_ALLOWED and also in IN_POSITION (a second symbol) when
  the day is allowed and no cooldown runs; the risk engine still applies every limit.
- Broker facts (a fill, a closed position) are accepted in LOCKED, DONE, COOLDOWN and
  SAFE_MODE as self-loops or moves: a working order can fill after a lock or a deny, and a
  15:55 flatten fills after DONE. Before the opening window ends an entry fill is illegal
  (we never place entries then), so the engine should treat it as abnormal (SAFE_MODE
  INTERNAL_ERROR); a position carried over from a failed flatten may still close then.
- The time of day is learnt from the scheduler's triggers (market_open, ...), never read
  from a clock; `due_triggers(at)` lists the ones missed (after a restart) so the engine
  can replay them in order.
- SAFE_MODE survives new_day: only a human `/resume` leaves it. LOCKED ends with the day.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from core.clock import ensure_aware
from core.session_types import (
    DayPhase,
    EntryPermission,
    IllegalSessionTransition,
    SafeModeReason,
    SessionInfo,
    SessionSchedule,
    SessionState,
    SessionTransition,
    SessionTrigger,
    TransitionRefused,
    _ny,
)


@dataclass(frozen=True, slots=True)
class _Data:
    """The keyword data of `fire`; which trigger needs what is in _REQUIRED."""

    symbol: str | None = None
    stopped_out: bool = False
    cooldown_until: datetime | None = None
    reason: SafeModeReason | None = None
    causes_cleared: bool = False
    schedule: SessionSchedule | None = None


_REQUIRED: Mapping[SessionTrigger, str] = {
    SessionTrigger.ENTRY_FILLED: "symbol",
    SessionTrigger.POSITION_CLOSED: "symbol",
    SessionTrigger.SAFE_MODE: "reason",
    SessionTrigger.NEW_DAY: "schedule",
}


@dataclass(frozen=True, slots=True)
class _Ctx:
    state: SessionState
    before: SessionInfo
    after: SessionInfo
    data: _Data
    at: datetime


Guard = Callable[[_Ctx], str | None]  # None: passes; a string: why it refuses


def _has_positions(ctx: _Ctx) -> str | None:
    return None if ctx.after.open_symbols else "no other position is open"


def _cooling_down(ctx: _Ctx) -> str | None:
    until = ctx.after.cooldown_until
    return None if until is not None and ctx.at < until else "no cooldown runs"


def _day_allowed(ctx: _Ctx) -> str | None:
    return None if ctx.after.allowed is True else "the day is not allowed"


def _cooldown_due(ctx: _Ctx) -> str | None:
    until = ctx.before.cooldown_until
    if until is not None and ctx.at < until:
        return f"the cooldown runs until {_ny(until)}"
    return None


def _causes_cleared(ctx: _Ctx) -> str | None:
    if ctx.data.causes_cleared:
        return None
    causes = ", ".join(sorted(ctx.before.safe_mode_reasons)) or "unknown"
    return f"SAFE MODE stays on until its cause is gone ({causes})"


def _later_day(ctx: _Ctx) -> str | None:
    new = ctx.data.schedule
    old = ctx.before.schedule.day
    return None if new is not None and new.day > old else f"the new day must come after {old}"


@dataclass(frozen=True, slots=True)
class Rule:
    """Go to `target` if `guard` passes; `target=None` means `resolve_state` (resume)."""

    target: SessionState | None
    guard: Guard | None = None


S, T = SessionState, SessionTrigger
_TRADING = (S.TRADING_ALLOWED, S.TRADING_DENIED, S.IN_POSITION, S.COOLDOWN)
# Where the day goes when a position closes or a cooldown ends: first matching rule wins.
_AFTER_FLAT = (Rule(S.TRADING_ALLOWED, _day_allowed), Rule(S.TRADING_DENIED))


def _table() -> dict[tuple[SessionState, SessionTrigger], tuple[Rule, ...]]:
    table: dict[tuple[SessionState, SessionTrigger], tuple[Rule, ...]] = {
        (S.PREMARKET, T.MARKET_OPEN): (Rule(S.OPENING_NO_TRADE),),
        (S.OPENING_NO_TRADE, T.OPENING_WINDOW_OVER): (
            Rule(S.IN_POSITION, _has_positions),
            *_AFTER_FLAT,
        ),
        (S.TRADING_ALLOWED, T.DENY): (Rule(S.TRADING_DENIED),),
        (S.TRADING_DENIED, T.ALLOW): (Rule(S.TRADING_ALLOWED),),
        (S.IN_POSITION, T.POSITION_CLOSED): (
            Rule(S.IN_POSITION, _has_positions),
            Rule(S.COOLDOWN, _cooling_down),
            *_AFTER_FLAT,
        ),
        (S.COOLDOWN, T.COOLDOWN_OVER): tuple(
            Rule(r.target, _cooldown_due if r.guard is None else _both(_cooldown_due, r.guard))
            for r in _AFTER_FLAT
        ),
        (S.IN_POSITION, T.COOLDOWN_OVER): (Rule(S.IN_POSITION),),
    }
    # The answer is recorded everywhere; it only moves the state between ALLOWED/DENIED.
    for state in S:
        for trigger in (T.ALLOW, T.DENY):
            table.setdefault((state, trigger), (Rule(state),))
    # A position carried over from a failed flatten may close before the window ends.
    for state in (S.PREMARKET, S.OPENING_NO_TRADE):
        table[(state, T.POSITION_CLOSED)] = (Rule(state),)
    # A working order may fill after a deny or a stop-out: the fill is a fact, recorded.
    for state in _TRADING:
        table[(state, T.ENTRY_FILLED)] = (Rule(S.IN_POSITION),)
    for state in (*_TRADING, S.LOCKED):
        table[(state, T.LOSS_LIMIT_HIT)] = (Rule(S.LOCKED),)
        table[(state, T.TRADE_LIMIT_HIT)] = (Rule(S.LOCKED),)
    for trigger in (T.ENTRY_FILLED, T.POSITION_CLOSED, T.COOLDOWN_OVER):
        table[(S.LOCKED, trigger)] = (Rule(S.LOCKED),)
    # A cooldown timer that fires after the position that carried it closed is harmless.
    for state in (S.TRADING_ALLOWED, S.TRADING_DENIED):
        table[(state, T.COOLDOWN_OVER)] = (Rule(state),)
    # DONE is the end of the day: late facts (the flatten's own fills) are recorded there.
    for trigger in (T.ENTRY_FILLED, T.POSITION_CLOSED, T.COOLDOWN_OVER, T.FLATTEN_TIME):
        table[(S.DONE, trigger)] = (Rule(S.DONE),)
    for trigger in (T.LOSS_LIMIT_HIT, T.TRADE_LIMIT_HIT):  # e.g. the flatten's own loss
        table[(S.DONE, trigger)] = (Rule(S.DONE),)
    for state in S:
        if state is not S.DONE and state is not S.SAFE_MODE:
            table[(state, T.FLATTEN_TIME)] = (Rule(S.DONE),)
        if state is not S.SAFE_MODE:
            table[(state, T.NEW_DAY)] = (Rule(S.PREMARKET, _later_day),)
        table[(state, T.SAFE_MODE)] = (Rule(S.SAFE_MODE),)
    # In SAFE_MODE every fact is recorded (it shapes where /resume returns) but nothing moves.
    for trigger in T:
        if trigger is not T.RESUME:
            guard = _later_day if trigger is T.NEW_DAY else None
            table[(S.SAFE_MODE, trigger)] = (Rule(S.SAFE_MODE, guard),)
    table[(S.SAFE_MODE, T.RESUME)] = (Rule(None, _causes_cleared),)
    return table


def _both(first: Guard, second: Guard) -> Guard:
    def guard(ctx: _Ctx) -> str | None:
        return first(ctx) or second(ctx)

    return guard


def _effect(
    state: SessionState,
    info: SessionInfo,
    trigger: SessionTrigger,
    data: _Data,
    at: datetime,
    cause: str,
) -> SessionInfo:
    """The facts after `trigger`, whatever state results."""
    if trigger is T.MARKET_OPEN:
        return replace(info, phase=max(info.phase, DayPhase.OPENING))
    if trigger is T.OPENING_WINDOW_OVER:
        return replace(info, phase=max(info.phase, DayPhase.TRADING))
    if trigger is T.FLATTEN_TIME:
        return replace(info, phase=DayPhase.FLATTENED)
    if trigger in (T.ALLOW, T.DENY):
        return replace(info, allowed=trigger is T.ALLOW)
    if trigger is T.ENTRY_FILLED:
        assert data.symbol is not None
        return replace(info, open_symbols=info.open_symbols | {data.symbol})
    if trigger is T.POSITION_CLOSED:
        assert data.symbol is not None
        if data.symbol not in info.open_symbols:
            raise TransitionRefused(state, trigger, f"no open position in {data.symbol}")
        until = info.cooldown_until
        if data.stopped_out and data.cooldown_until is not None and data.cooldown_until > at:
            until = data.cooldown_until if until is None else max(until, data.cooldown_until)
        return replace(info, open_symbols=info.open_symbols - {data.symbol}, cooldown_until=until)
    if trigger is T.COOLDOWN_OVER:
        due = info.cooldown_until is None or at >= info.cooldown_until
        return replace(info, cooldown_until=None) if due else info
    if trigger in (T.LOSS_LIMIT_HIT, T.TRADE_LIMIT_HIT):
        # The first reason stays: the day locked for it, later hits only confirm the lock.
        return info if info.locked_reason else replace(info, locked_reason=cause or trigger)
    if trigger is T.SAFE_MODE:
        assert data.reason is not None
        resume_to = info.resume_to if state is S.SAFE_MODE else state
        reasons = info.safe_mode_reasons | {data.reason}
        return replace(info, safe_mode_reasons=reasons, resume_to=resume_to)
    if trigger is T.RESUME:
        return replace(info, safe_mode_reasons=frozenset(), resume_to=None)
    assert trigger is T.NEW_DAY and data.schedule is not None
    # A new day forgets the answer, cooldown and lock; SAFE MODE and positions are facts.
    fresh = SessionInfo(
        account=info.account, schedule=data.schedule, open_symbols=info.open_symbols
    )
    if state is S.SAFE_MODE:
        return replace(fresh, safe_mode_reasons=info.safe_mode_reasons, resume_to=S.PREMARKET)
    return fresh


TRANSITIONS: Mapping[tuple[SessionState, SessionTrigger], tuple[Rule, ...]] = _table()


def resolve_state(info: SessionInfo, at: datetime) -> SessionState:
    """The state that fits the remembered facts at `at` (outside SAFE_MODE)."""
    if info.phase is DayPhase.FLATTENED:
        return S.DONE
    if info.locked_reason:
        return S.LOCKED
    if info.phase is DayPhase.BEFORE_OPEN:
        return S.PREMARKET
    if info.phase is DayPhase.OPENING:
        return S.OPENING_NO_TRADE
    if info.open_symbols:
        return S.IN_POSITION
    if info.cooldown_until is not None and at < info.cooldown_until:
        return S.COOLDOWN
    return S.TRADING_ALLOWED if info.allowed is True else S.TRADING_DENIED


_PHASE_OF = {
    S.PREMARKET: DayPhase.BEFORE_OPEN,
    S.OPENING_NO_TRADE: DayPhase.OPENING,
    S.DONE: DayPhase.FLATTENED,
}


class SessionMachine:
    """The current state and remembered facts of one account's trading day."""

    def __init__(self, account: str, schedule: SessionSchedule) -> None:
        self._state = S.PREMARKET
        self._info = SessionInfo(account=account, schedule=schedule)

    @property
    def state(self) -> SessionState:
        return self._state

    @property
    def info(self) -> SessionInfo:
        return self._info

    def fire(
        self,
        trigger: SessionTrigger | str,
        *,
        at: datetime,
        cause: str,
        symbol: str | None = None,
        stopped_out: bool = False,
        cooldown_until: datetime | None = None,
        reason: SafeModeReason | str | None = None,
        causes_cleared: bool = False,
        schedule: SessionSchedule | None = None,
    ) -> SessionTransition:
        """Apply `trigger`; raises IllegalSessionTransition (or TransitionRefused).

        Data by trigger: entry_filled(symbol), position_closed(symbol, stopped_out,
        cooldown_until), safe_mode(reason), resume(causes_cleared), new_day(schedule).
        """
        trigger = SessionTrigger(trigger)
        ensure_aware(at)
        if cooldown_until is not None:
            ensure_aware(cooldown_until)
        parsed = _Data(
            symbol=symbol.upper() if symbol else None,
            stopped_out=stopped_out,
            cooldown_until=cooldown_until,
            reason=SafeModeReason(reason) if reason is not None else None,
            causes_cleared=causes_cleared,
            schedule=schedule,
        )
        needed = _REQUIRED.get(trigger)
        if needed is not None and getattr(parsed, needed) is None:
            raise TypeError(f"{trigger} needs {needed}")
        rules = TRANSITIONS.get((self._state, trigger))
        if rules is None:
            raise IllegalSessionTransition(self._state, trigger, "not in the transition table")
        after = _effect(self._state, self._info, trigger, parsed, at, cause)
        ctx = _Ctx(self._state, self._info, after, parsed, at)
        refusals: list[str] = []
        for rule in rules:
            why_not = rule.guard(ctx) if rule.guard is not None else None
            if why_not is None:
                target = resolve_state(after, at) if rule.target is None else rule.target
                break
            refusals.append(why_not)
        else:
            reasons = "; ".join(dict.fromkeys(refusals))  # de-duplicated, in rule order
            raise TransitionRefused(self._state, trigger, reasons)
        previous, self._state, self._info = self._state, target, after
        day = after.schedule.day
        return SessionTransition(after.account, day, previous, target, trigger, cause, at)

    def can_enter(self, at: datetime) -> EntryPermission:
        """Whether a new entry may be placed now (the risk engine then checks every limit)."""
        info, state = self._info, self._state
        if state is S.SAFE_MODE:
            causes = ", ".join(sorted(info.safe_mode_reasons))
            return EntryPermission(False, f"SAFE MODE ({causes}): no new entries until /resume")
        if state is S.LOCKED:
            return EntryPermission(False, f"the day is locked ({info.locked_reason})")
        if state is S.DONE:
            return EntryPermission(False, "the trading day is over")
        if state is S.PREMARKET:
            return EntryPermission(False, "the market is not open yet")
        if state is S.OPENING_NO_TRADE:
            until = _ny(info.schedule.trading_from)
            return EntryPermission(False, f"no entries in the opening window (until {until})")
        if info.cooldown_until is not None and at < info.cooldown_until:
            until = _ny(info.cooldown_until)
            return EntryPermission(False, f"cooldown after a stop-out until {until}")
        if info.allowed is None:
            return EntryPermission(False, "trading was not allowed today (no answer)")
        if info.allowed is False:
            return EntryPermission(False, "trading is denied today (/allow to change)")
        if state is S.IN_POSITION:
            return EntryPermission(True, "another position is open; risk limits apply")
        return EntryPermission(True, "trading allowed")

    def due_triggers(self, at: datetime) -> tuple[SessionTrigger, ...]:
        """Time triggers already due at `at` but not yet fired (replay them after a restart)."""
        info, schedule = self._info, self._info.schedule
        due: list[SessionTrigger] = []
        if info.phase < DayPhase.OPENING and at >= schedule.open:
            due.append(T.MARKET_OPEN)
        if info.phase < DayPhase.TRADING and at >= schedule.trading_from:
            due.append(T.OPENING_WINDOW_OVER)
        if self._state is S.COOLDOWN and (info.cooldown_until is None or at >= info.cooldown_until):
            due.append(T.COOLDOWN_OVER)
        if info.phase < DayPhase.FLATTENED and at >= schedule.flatten_at:
            due.append(T.FLATTEN_TIME)
        return tuple(due)

    @classmethod
    def restore(
        cls,
        account: str,
        schedule: SessionSchedule,
        *,
        state: SessionState | str,
        at: datetime,
        allowed: bool | None = None,
        open_symbols: frozenset[str] | set[str] | tuple[str, ...] = frozenset(),
        cooldown_until: datetime | None = None,
        locked_reason: str | None = None,
        safe_mode_reasons: frozenset[SafeModeReason] | set[SafeModeReason] = frozenset(),
        resume_to: SessionState | None = None,
    ) -> SessionMachine:
        """Rebuild from the ledger. LOCKED and SAFE MODE win over a stale last state.

        The trading-phase states (allowed, denied, in position, cooldown) are re-derived
        from the facts, so a crash between two ledger writes cannot leave a wrong one.
        """
        state = SessionState(state)
        ensure_aware(at)
        base = state if state is not S.SAFE_MODE else (resume_to or S.PREMARKET)
        phase = _PHASE_OF.get(base, DayPhase.TRADING)
        reasons = frozenset(safe_mode_reasons)
        if state is S.SAFE_MODE and not reasons:
            reasons = frozenset({SafeModeReason.INTERNAL_ERROR})
        if state is S.LOCKED and not locked_reason:
            locked_reason = "locked before a restart"
        info = SessionInfo(
            account=account,
            schedule=schedule,
            phase=phase,
            allowed=allowed,
            open_symbols=frozenset(s.upper() for s in open_symbols),
            cooldown_until=cooldown_until,
            locked_reason=locked_reason,
        )
        machine = cls(account, schedule)
        resolved = resolve_state(info, at)
        if reasons:
            machine._state = S.SAFE_MODE
            machine._info = replace(info, safe_mode_reasons=reasons, resume_to=resolved)
        else:
            machine._state, machine._info = resolved, info
        return machine


__all__ = [
    "TRANSITIONS",
    "DayPhase",
    "EntryPermission",
    "IllegalSessionTransition",
    "Rule",
    "SafeModeReason",
    "SessionInfo",
    "SessionMachine",
    "SessionSchedule",
    "SessionState",
    "SessionTransition",
    "SessionTrigger",
    "TransitionRefused",
    "resolve_state",
]
