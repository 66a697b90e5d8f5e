"""One account's trading day: the session machine, persisted and announced.

Every trigger goes through `TradingDay.fire`, which writes the transition to
`session_states`, the day's sticky facts (the allow/deny answer, LOCKED, SAFE MODE
reasons, cooldown) to `trading_days`, and the announcement to the outbox, in one unit of
work; then publishes it. `load` rebuilds the machine from those rows after a restart and
replays the time triggers that came due while the process was down.

Decisions where the docs are silent:
- The day a moment belongs to is its New York date when that is a session, else the next
  session (a weekend start prepares Monday).
- The daily loss limit LOCKS the day (not SAFE MODE): LOCKED already stops entries until
  the next day, and a SAFE MODE whose cause cannot go away before then would only add a
  /resume that must fail.
- A position the machine did not hear about (adopted by the reconciler, or carried over
  while the table has no entry for it, e.g. before the open) is put into its facts by
  `restore`, which re-derives the state; an ENTRY fill the table refuses is abnormal
  (SAFE MODE, internal error), as core.session asks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime

from loguru import logger

from core.calendar import CalendarRangeError, TradingSession
from core.clock import NEW_YORK
from core.engine_context import EngineContext
from core.events import (
    DomainEvent,
    RiskLocked,
    SafeModeCleared,
    SafeModeEntered,
    SessionStateChanged,
)
from core.ledger import TradingDayRow, UnitOfWork
from core.risk import RiskReason
from core.session import (
    IllegalSessionTransition,
    SafeModeReason,
    SessionMachine,
    SessionSchedule,
    SessionState,
    SessionTransition,
    SessionTrigger,
    TransitionRefused,
)

T = SessionTrigger


class TradingDay:
    def __init__(self, ctx: EngineContext) -> None:
        self._ctx = ctx
        self.machine: SessionMachine | None = None

    # --- reads ---------------------------------------------------------------------------

    @property
    def m(self) -> SessionMachine:
        if self.machine is None:
            raise RuntimeError("the trading day is not loaded (TradingEngine.start)")
        return self.machine

    @property
    def state(self) -> SessionState:
        return self.m.state

    @property
    def schedule(self) -> SessionSchedule:
        return self.m.info.schedule

    @property
    def day(self) -> date:
        return self.schedule.day

    def session_for(self, at: datetime) -> TradingSession:
        local = at.astimezone(NEW_YORK).date()
        try:
            found = self._ctx.calendar.session(local)
            return found if found is not None else self._ctx.calendar.next_session(local)
        except CalendarRangeError:
            return self._ctx.calendar.next_session(self._ctx.calendar.last_day)

    def schedule_for(self, at: datetime) -> SessionSchedule:
        return SessionSchedule.from_config(self.session_for(at), self._ctx.risk, self._ctx.sessions)

    # --- loading -------------------------------------------------------------------------

    async def load(self, open_symbols: Iterable[str]) -> None:
        """Rebuild today's machine from the ledger, then fire the triggers now due."""
        ctx, now = self._ctx, self._ctx.now()
        schedule = self.schedule_for(now)
        with ctx.ledger.unit_of_work() as uow:
            row = uow.trading_days.get_or_create(ctx.account.row_id, schedule.day)
            last = uow.session_states.latest(ctx.account.row_id, schedule.day)
            reasons = _reasons(row.safe_mode_reason)
            if last is None and not reasons and not row.locked_reason:
                self.machine = SessionMachine(ctx.account.name, schedule)
                self.machine = self._restored(self.machine.state, set(open_symbols), row)
                first = SessionTransition(
                    ctx.account.name,
                    schedule.day,
                    self.m.state,
                    self.m.state,
                    T.NEW_DAY,
                    "day opened",
                    now,
                )
            else:
                state = SessionState(last.to_state) if last is not None else SessionState.PREMARKET
                self.machine = self._restored(state, set(open_symbols), row)
                first = SessionTransition(
                    ctx.account.name,
                    schedule.day,
                    self.m.state,
                    self.m.state,
                    T.NEW_DAY,
                    f"restored after a restart ({self.m.state})",
                    now,
                )
            self._record(uow, first, row)
            uow.commit()
        await self.catch_up()

    def _restored(
        self, state: SessionState, symbols: set[str], row: TradingDayRow
    ) -> SessionMachine:
        resume_to = None
        if self.machine is not None and self.machine.info.resume_to is not None:
            resume_to = self.machine.info.resume_to
        return SessionMachine.restore(
            self._ctx.account.name,
            self.schedule_for(self._ctx.now()) if self.machine is None else self.schedule,
            state=state,
            at=self._ctx.now(),
            allowed=row.trading_allowed,
            open_symbols=symbols,
            cooldown_until=row.cooldown_until,
            locked_reason=row.locked_reason,
            safe_mode_reasons=_reasons(row.safe_mode_reason),
            resume_to=resume_to,
        )

    async def catch_up(self) -> list[SessionTrigger]:
        """A new day if the date moved on; then every time trigger now due, in order.
        Returns the triggers fired."""
        now = self._ctx.now()
        fired: list[SessionTrigger] = []
        schedule = self.schedule_for(now)
        if schedule.day > self.day:
            await self.fire(T.NEW_DAY, f"new trading day {schedule.day}", schedule=schedule)
            fired.append(T.NEW_DAY)
        for trigger in self.m.due_triggers(now):
            if await self.fire(trigger, f"{trigger} due at {now.astimezone(NEW_YORK):%H:%M}"):
                fired.append(trigger)
        return fired

    # --- firing --------------------------------------------------------------------------

    async def fire(
        self, trigger: SessionTrigger, cause: str, **data: object
    ) -> SessionTransition | None:
        """Fire, persist, announce. An illegal trigger is logged and returns None."""
        ctx = self._ctx
        before = self.m.info
        try:
            transition = self.m.fire(trigger, at=ctx.now(), cause=cause, **data)  # type: ignore[arg-type]
        except TransitionRefused:
            raise
        except IllegalSessionTransition as exc:
            logger.warning("session {}: {}", ctx.account.name, exc)
            return None
        events: list[DomainEvent] = []
        if transition.changed:
            events.append(SessionStateChanged.from_transition(transition))
        if trigger is T.SAFE_MODE and data.get("reason") not in before.safe_mode_reasons:
            reason = SafeModeReason(str(data["reason"]))
            events.append(
                SafeModeEntered(at=ctx.now(), account=ctx.account.name, reason=reason, detail=cause)
            )
        with ctx.ledger.unit_of_work() as uow:
            row = uow.trading_days.get_or_create(ctx.account.row_id, self.day)
            self._record(uow, transition, row)
            if trigger is T.SAFE_MODE:
                uow.risk_events.record(
                    ctx.account.row_id,
                    self.day,
                    kind="safe_mode",
                    blocking=True,
                    detail={"reason": str(data["reason"]), "cause": cause},
                )
            for event in events:
                ctx.outbox.stage(uow, event)
            uow.commit()
        await ctx.publish(events)
        return transition

    def _record(self, uow: UnitOfWork, transition: SessionTransition, row: TradingDayRow) -> None:
        info = self.m.info
        uow.session_states.record(
            self._ctx.account.row_id,
            transition.session_date,
            to_state=transition.current.value,
            from_state=transition.previous.value,
            trigger=transition.trigger.value,
            cause=transition.cause[:2000],
            at=transition.at,
        )
        row.trading_allowed = info.allowed
        if info.locked_reason and not row.locked_reason:
            row.locked_reason = info.locked_reason
            row.locked_at = transition.at
        row.safe_mode_reason = ",".join(sorted(info.safe_mode_reasons)) or None
        row.cooldown_until = info.cooldown_until
        uow.flush()

    # --- use cases -----------------------------------------------------------------------

    async def answer(self, allowed: bool, who: str) -> SessionTransition | None:
        trigger = T.ALLOW if allowed else T.DENY
        return await self.fire(trigger, f"{'allowed' if allowed else 'denied'} by {who}")

    async def enter_safe_mode(self, reason: SafeModeReason, detail: str) -> None:
        if self.state is SessionState.SAFE_MODE and reason in self.m.info.safe_mode_reasons:
            return  # already on for this reason: one alert is enough
        await self.fire(T.SAFE_MODE, detail, reason=reason)

    async def resume(
        self, who: str, still_active: Callable[[SafeModeReason], str | None]
    ) -> tuple[bool, str]:
        if self.state is not SessionState.SAFE_MODE:
            return False, "SAFE MODE is not on"
        active = {r: why for r in self.m.info.safe_mode_reasons if (why := still_active(r))}
        try:
            await self.fire(T.RESUME, f"/resume by {who}", causes_cleared=not active)
        except TransitionRefused:
            reasons = "; ".join(f"{r}: {why}" for r, why in sorted(active.items()))
            return False, f"SAFE MODE stays on: {reasons}"
        ctx = self._ctx
        event = SafeModeCleared(at=ctx.now(), account=ctx.account.name, reason=f"/resume by {who}")
        await ctx.publish([event])
        return True, f"SAFE MODE cleared; state is now {self.state}"

    async def lock(self, trigger: SessionTrigger, reason: RiskReason) -> None:
        """LOCK the day for a daily limit (sticky until the next day, survives restarts)."""
        if self.m.info.locked_reason:
            return
        ctx = self._ctx
        transition = await self.fire(trigger, reason.message)
        if transition is None:
            return
        event = RiskLocked(
            at=ctx.now(), account=ctx.account.name, reason=reason.code.value, detail=reason.message
        )
        with ctx.ledger.unit_of_work() as uow:
            uow.risk_events.record(
                ctx.account.row_id,
                self.day,
                kind="locked",
                blocking=True,
                detail={"code": reason.code.value, "message": reason.message},
            )
            ctx.outbox.stage(uow, event)
            uow.commit()
        await ctx.publish([event])

    async def entry_filled(self, symbol: str, *, ours: bool) -> None:
        if symbol.upper() in self.m.info.open_symbols:
            return
        transition = await self.fire(T.ENTRY_FILLED, f"{symbol} entry filled", symbol=symbol)
        if transition is None:
            await self.set_symbols(self.m.info.open_symbols | {symbol.upper()}, "position opened")
            if ours:
                await self.enter_safe_mode(
                    SafeModeReason.INTERNAL_ERROR,
                    f"{symbol} entry filled while the session was {self.state}",
                )

    async def position_closed(
        self, symbol: str, *, stopped_out: bool, cooldown_until: datetime | None
    ) -> None:
        if symbol.upper() not in self.m.info.open_symbols:
            return
        transition = await self.fire(
            T.POSITION_CLOSED,
            f"{symbol} position closed" + (" (stopped out)" if stopped_out else ""),
            symbol=symbol,
            stopped_out=stopped_out,
            cooldown_until=cooldown_until,
        )
        if transition is None:
            await self.set_symbols(self.m.info.open_symbols - {symbol.upper()}, "position closed")

    async def set_symbols(self, symbols: frozenset[str] | set[str], cause: str) -> None:
        """Put the broker's open symbols into the facts (restore re-derives the state)."""
        symbols = frozenset(s.upper() for s in symbols)
        if symbols == self.m.info.open_symbols:
            return
        ctx = self._ctx
        previous = self.state
        with ctx.ledger.unit_of_work() as uow:
            row = uow.trading_days.get_or_create(ctx.account.row_id, self.day)
            self.machine = self._restored(previous, set(symbols), row)
            transition = SessionTransition(
                ctx.account.name, self.day, previous, self.state, T.ENTRY_FILLED, cause, ctx.now()
            )
            self._record(uow, transition, row)
            uow.commit()
        if transition.changed:
            await ctx.publish([SessionStateChanged.from_transition(transition)])


def _reasons(raw: str | None) -> frozenset[SafeModeReason]:
    out = set()
    for part in (raw or "").split(","):
        part = part.strip()
        if part:
            try:
                out.add(SafeModeReason(part))
            except ValueError:
                out.add(SafeModeReason.INTERNAL_ERROR)
    return frozenset(out)


__all__ = ["TradingDay"]
