"""What every part of one account's engine shares: dependencies, options, locks, tasks.

One `EngineContext` per account. The use-case modules (tracker, protection, reconcile,
kill, drafts) take it instead of a dozen arguments each; nothing here decides anything.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from loguru import logger

from core.broker import Broker
from core.calendar import CalendarRangeError, SessionPhase, TradingCalendar
from core.clock import NEW_YORK, Clock
from core.config_models import ProtectionConfig, RiskConfig, SessionsConfig
from core.crashpoints import NO_CHECKPOINTS, Checkpoints
from core.event_calendar import EventCalendar
from core.events import DomainEvent, EventBus
from core.ledger import AccountMode, BrokerKind, Ledger
from core.market_state import MarketState
from core.outbox import Outbox


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """Engine timings the YAML does not cover (defaults suit a live broker)."""

    # Lookups by client id after an ambiguous submit: delays before each try.
    lookup_delays: tuple[float, ...] = (0.0,)
    # How long a kill waits for a flatten order to fill before reporting it open.
    flatten_confirm_timeout_seconds: float = 30.0
    # Background loop period (watchdogs, draft expiry, due session triggers).
    tick_seconds: float = 5.0
    # Flatten every position at the session's flatten time (DESIGN: "flat by 15:55").
    flatten_at_close: bool = True
    # Stream lost: wait this long before subscribing again (then reconcile).
    resubscribe_delay_seconds: float = 2.0
    # A sell limit this far through the last price counts as marketable (outside RTH).
    marketable_limit_pct: str = "0.5"
    # A bar crossed a working stop-buy's trigger: if its fill is not seen this long after,
    # the broker is asked (a lost fill event is protected within one bar).
    trigger_check_delay_seconds: float = 2.0
    # A kill that ended not flat keeps the account halted and runs again this often.
    kill_retry_seconds: float = 15.0
    # Brokers that hold a child order (IBKR): place the trailing stop WITH the entry, so a
    # fill is protected at the broker from its first instant (DESIGN section 4).
    attached_protection: bool = False


@dataclass(frozen=True, slots=True)
class AccountInfo:
    name: str
    row_id: int
    mode: AccountMode
    broker: BrokerKind
    namespace: str  # client order id namespace (core.ids)


class SymbolLocks:
    """One lock per symbol: protection, exits and flattening of a symbol never interleave."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}

    def __call__(self, symbol: str) -> asyncio.Lock:
        return self._locks.setdefault(symbol.upper(), asyncio.Lock())


class EngineContext:
    def __init__(
        self,
        *,
        account: AccountInfo,
        broker: Broker,
        ledger: Ledger,
        clock: Clock,
        bus: EventBus,
        outbox: Outbox,
        risk: RiskConfig,
        protection: ProtectionConfig,
        sessions: SessionsConfig,
        calendar: TradingCalendar,
        events: EventCalendar,
        market: MarketState,
        checkpoints: Checkpoints = NO_CHECKPOINTS,
        options: EngineOptions | None = None,
    ) -> None:
        self.account = account
        self.broker = broker
        self.ledger = ledger
        self.clock = clock
        self.bus = bus
        self.outbox = outbox
        self.risk = risk
        self.protection = protection
        self.sessions = sessions
        self.calendar = calendar
        self.events = events
        self.market = market
        self.checkpoints = checkpoints
        self.options = options or EngineOptions()
        self.locks = SymbolLocks()
        # A kill is running, or ended not flat and is retrying: no new entries, no new
        # protection (it would be canceled).
        self.halted = False
        # Entries and the kill exclude each other: a confirm holds it from its halted
        # check to the end of its send; the kill takes it after setting `halted`, so an
        # entry sent just before the kill is at the broker, and canceled, before "flat".
        self.entry_lock = asyncio.Lock()
        self.started_at: datetime = clock.now()
        self._tasks: set[asyncio.Task[Any]] = set()

    def now(self) -> datetime:
        return self.clock.now()

    def today(self) -> date:
        """The New York date now (risk events and runtime settings are filed under it)."""
        return self.clock.now().astimezone(NEW_YORK).date()

    def phase(self, at: datetime | None = None) -> SessionPhase:
        try:
            return self.calendar.phase(at or self.clock.now())
        except CalendarRangeError:
            return SessionPhase.CLOSED

    async def publish(self, events: Iterable[DomainEvent]) -> None:
        for event in events:
            await self.bus.publish(event)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """A background task whose failure is logged, never lost silently."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.opt(exception=task.exception()).error("engine task {} failed", task.get_name())

    @property
    def busy(self) -> bool:
        return any(not task.done() for task in self._tasks)

    async def idle(self, turns: int = 400) -> None:
        """Let every runnable task of this engine run until none is left runnable (tests,
        benchmarks). Tasks waiting on the clock stay pending: advance the clock for them."""
        quiet = 0
        for _ in range(turns):
            await asyncio.sleep(0)
            if not self.busy:
                quiet += 1
                if quiet >= 3:
                    return
            else:
                quiet = 0

    async def cancel_tasks(self) -> None:
        tasks = [t for t in self._tasks if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


__all__ = ["AccountInfo", "EngineContext", "EngineOptions", "SymbolLocks"]
