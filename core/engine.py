"""TradingEngine: one account's engine, assembled and running.

`start()` is both startup and crash recovery: subscribe to the broker's order stream
(first, so nothing published meanwhile is lost), restore the trading day from the
ledger, reconcile (which applies whatever happened while we were down, resolves stuck
intents and protects every long position), finish a kill that a crash interrupted, then
consume the stream and run the background loop on the injected clock.

Nothing here may kill the loops: every event and every tick is handled inside its own
try/except (logged, alerted with SAFE MODE when the engine no longer knows the truth,
and followed by a reconcile).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta

from loguru import logger

from core.broker import Broker, BrokerError, BrokerEvent
from core.calendar import SessionPhase, TradingCalendar, xnys
from core.clock import Clock
from core.config_models import ProtectionConfig, RiskConfig, SessionsConfig
from core.crashpoints import NO_CHECKPOINTS, Checkpoints
from core.domain import Fill, OrderRole, OrderStatus, Side
from core.drafts import Drafts
from core.engine_context import AccountInfo, EngineContext, EngineOptions
from core.event_calendar import EventCalendar
from core.events import EventBus
from core.flatten import Flattener
from core.ids import namespace_for
from core.kill import RETRY, KillSwitch
from core.ledger import AccountMode, BrokerKind, Ledger
from core.market_state import BarMemory, MarketState
from core.marketdata.bar import Bar
from core.order_tracker import OrderTracker
from core.order_views import OrderView, TrackOutcome
from core.outbox import Outbox
from core.placement import Placer
from core.protection import ProtectionManager
from core.protection_book import ProtectionBook
from core.protection_edits import ProtectionEdits
from core.reconcile import Reconciler, ReconcileReport
from core.risk_gate import RiskGate
from core.session import SafeModeReason, SessionTrigger
from core.trading_day import TradingDay

S = OrderStatus
UNACKED = (S.PENDING_SUBMIT, S.SUBMITTED)


class TradingEngine:
    def __init__(
        self,
        *,
        account: str,
        broker: Broker,
        ledger: Ledger,
        clock: Clock,
        risk: RiskConfig,
        protection: ProtectionConfig,
        sessions: SessionsConfig,
        mode: AccountMode = AccountMode.PAPER,
        broker_kind: BrokerKind | None = None,
        calendar: TradingCalendar | None = None,
        events: EventCalendar | None = None,
        market: MarketState | None = None,
        bus: EventBus | None = None,
        checkpoints: Checkpoints = NO_CHECKPOINTS,
        options: EngineOptions | None = None,
    ) -> None:
        known = {k.value for k in BrokerKind}
        kind = broker_kind or BrokerKind(broker.name if broker.name in known else "sim")
        with ledger.unit_of_work() as uow:
            row = uow.accounts.ensure(account, broker=kind, mode=mode)
            uow.commit()
            info = AccountInfo(account, row.id, mode, kind, namespace_for(row.created_at))
        self.bus = bus or EventBus()
        self.market: MarketState = market or BarMemory()
        self.outbox = Outbox(ledger)
        self._unsubscribe_outbox = self.outbox.attach(self.bus)
        self.ctx = ctx = EngineContext(
            account=info,
            broker=broker,
            ledger=ledger,
            clock=clock,
            bus=self.bus,
            outbox=self.outbox,
            risk=risk,
            protection=protection,
            sessions=sessions,
            calendar=calendar or xnys(),
            events=events or EventCalendar([]),
            market=self.market,
            checkpoints=checkpoints,
            options=options,
        )
        self.tracker = OrderTracker(ctx)
        self.placer = Placer(ctx, self.tracker)
        self.book = ProtectionBook(ctx)
        self.flattener = Flattener(ctx, self.tracker, self.placer, self.book)
        self.protection = ProtectionManager(
            ctx, self.tracker, self.placer, self.book, self._auto_flatten
        )
        self.tracker.fill_hook = self.protection.stage_on_fill
        self.edits = ProtectionEdits(ctx, self.tracker, self.placer, self.protection)
        self.day = TradingDay(ctx)
        self.risk = RiskGate(ctx, self.day, self.book)
        self.drafts = Drafts(ctx, self.tracker, self.placer, self.day, self.risk, self.edits)
        self.reconciler = Reconciler(
            ctx, self.tracker, self.protection, self.book, self.day, self.react, self.placer
        )
        self.kill = KillSwitch(ctx, self.tracker, self.placer, self.book, self.flattener)
        self._stream: AsyncIterator[BrokerEvent] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._running = False
        self._last_bar_at: datetime | None = None
        self._next_reconcile: datetime | None = None
        self.unacked_active = False
        self._trigger_check_pending = False
        # Set by the broker's supervision (the composition root wires it): down too long.
        self.broker_unreachable = False

    @property
    def name(self) -> str:
        return self.ctx.account.name

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self, *, background: bool = True) -> ReconcileReport:
        """Startup == crash recovery: reconcile, then resume consuming events."""
        ctx = self.ctx
        ctx.started_at = ctx.now()
        self._stream = ctx.broker.events()
        self.edits.restore_runtime_trails()
        await self.day.load(self.book_longs())
        interrupted_kill = self.kill.unfinished()
        # A kill cut short by a crash is finished below; protecting positions it is about
        # to flatten would only add orders to cancel.
        ctx.halted = interrupted_kill
        try:
            report = await self.reconciler.run("start")
        except Exception as exc:  # the engine must come up to consume events regardless
            logger.exception("{}: the start reconcile failed", self.name)
            ctx.halted = False
            await self._safe(SafeModeReason.INTERNAL_ERROR, f"start reconcile failed: {exc}")
            report = ReconcileReport(self.name, ctx.now(), "start", False, errors=(str(exc),))
        self._next_reconcile = ctx.now() + timedelta(seconds=ctx.sessions.reconcile_every_seconds)
        self._running = True
        self._tasks.append(
            asyncio.get_running_loop().create_task(self._consume(), name=f"{self.name}-events")
        )
        if background:
            self._tasks.append(
                asyncio.get_running_loop().create_task(self._loop(), name=f"{self.name}-tick")
            )
        if interrupted_kill:
            logger.warning("{}: a kill was interrupted; finishing it", self.name)
            ctx.spawn(self.kill.execute("resumed after a restart"), name=f"{self.name}-kill-resume")
        return report

    async def stop(self) -> None:
        self._running = False
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.ctx.cancel_tasks()
        if self._stream is not None:
            closer = getattr(self._stream, "aclose", None)
            if closer is not None:
                with contextlib.suppress(Exception):
                    await closer()
        self._unsubscribe_outbox()

    async def idle(self) -> None:
        """Let queued events and background work run (tests and benchmarks)."""
        for _ in range(3):
            await self.ctx.idle()
            await asyncio.sleep(0)

    def book_longs(self) -> set[str]:
        from core.book_cache import shared_book

        holdings = shared_book(self.ctx.ledger, self.ctx.account.row_id).holdings()
        return {s for s, h in holdings.items() if h.qty > 0}

    # --- the broker's stream -------------------------------------------------------------

    async def _consume(self) -> None:
        ctx = self.ctx
        while self._running:
            stream = self._stream or ctx.broker.events()
            self._stream = stream
            try:
                async for event in stream:
                    await self.handle_event(event)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("{}: the order stream failed", self.name)
            if not self._running:
                return
            # The stream ended: events may be missing. Subscribe again, then reconcile.
            self._stream = None
            await ctx.clock.sleep(ctx.options.resubscribe_delay_seconds)
            try:
                self._stream = ctx.broker.events()
                await self.reconciler.run("stream reconnect")
            except Exception:
                logger.exception("{}: resubscribe failed", self.name)

    async def handle_event(self, event: BrokerEvent) -> None:
        """Apply one broker event; never raises (a bad event must not stop the stream)."""
        try:
            outcome = await self.tracker.on_event(event)
            if outcome is not None:
                await self.react([outcome])
        except Exception as exc:
            logger.exception(
                "{}: event {} for {} failed", self.name, event.kind, event.order.client_order_id
            )
            self.tracker.forget()
            await self._safe(SafeModeReason.INTERNAL_ERROR, f"could not apply {event.kind}: {exc}")
            self.ctx.spawn(
                self.reconciler.run("after an event error"), name=f"{self.name}-reconcile"
            )
            return
        if self.tracker.needs_reconcile:
            self.tracker.needs_reconcile = False
            self.ctx.spawn(
                self.reconciler.run("broker inconsistency"), name=f"{self.name}-reconcile"
            )

    async def react(self, outcomes: Sequence[TrackOutcome]) -> None:
        """What tracked changes mean for protection, the session and risk."""
        for outcome in outcomes:
            view = outcome.order
            try:
                if view.role is OrderRole.ENTRY and view.filled_qty > 0:
                    self.protection.on_entry_outcome(outcome)
                    # Let the protection task reach the broker before the bookkeeping below.
                    await asyncio.sleep(0)
                if view.role is OrderRole.PROTECTION:
                    self.protection.on_protection_outcome(outcome)
                for fill in outcome.new_fills:
                    await self._on_fill(view, fill)
            except Exception as exc:
                logger.exception("{}: reacting to {} failed", self.name, view.client_order_id)
                await self._safe(SafeModeReason.INTERNAL_ERROR, f"{view.client_order_id}: {exc}")

    async def _on_fill(self, view: OrderView, fill: Fill) -> None:
        ctx = self.ctx
        if fill.side is Side.BUY:
            await self.day.entry_filled(fill.symbol, ours=view.role is OrderRole.ENTRY)
            if view.role is OrderRole.EXTERNAL:
                ctx.spawn(
                    self.protection.ensure_symbol(fill.symbol, "external buy"),
                    name=f"protect-{fill.symbol}",
                )
            return
        if self.book.position(fill.symbol) <= 0:
            cooldown = fill.timestamp + timedelta(minutes=ctx.risk.cooldown_minutes)
            await self.day.position_closed(
                fill.symbol, stopped_out=view.role is OrderRole.PROTECTION, cooldown_until=cooldown
            )
        await self.risk.watch_loss()

    async def _auto_flatten(self, symbol: str, reason: str) -> object:
        """The ladder's last rung (called with the symbol's lock held). The symbol's working
        orders are canceled (confirmed) first: a buy remainder would make the sell a wash
        trade, and an open sell reserves the shares."""
        for order in self.book.live_orders(symbol):
            await self.placer.cancel_and_confirm(
                order, self.ctx.sessions.cancel_confirm_timeout_seconds
            )
        try:
            positions = {p.symbol.upper(): p for p in await self.ctx.broker.positions()}
        except BrokerError as exc:
            logger.error("{}: cannot flatten {}: positions unknown ({})", self.name, symbol, exc)
            return None
        position = positions.get(symbol.upper())
        if position is None or position.qty == 0:
            return None
        return await self.flattener.flatten_locked(position, reason)

    # --- time ----------------------------------------------------------------------------

    async def _loop(self) -> None:
        while self._running:
            await self.ctx.clock.sleep(self.ctx.options.tick_seconds)
            await self.tick()

    async def tick(self) -> None:
        """Session triggers due, draft expiry, watchdogs, loss watch, periodic reconcile.
        Safe to call from a scheduler too; never raises."""
        ctx = self.ctx
        try:
            fired = await self.day.catch_up()
            if (
                SessionTrigger.FLATTEN_TIME in fired
                and ctx.options.flatten_at_close
                and ctx.phase() is SessionPhase.REGULAR
            ):
                ctx.spawn(self.kill.execute("flatten time"), name=f"{self.name}-eod-flatten")
            if self.kill.retry_due():
                # The last kill was not flat: the account stays halted and it runs again.
                ctx.spawn(self.kill.execute(f"{RETRY} (not flat)"), name=f"{self.name}-kill-retry")
            self.drafts.expire_due()
            await self.check_watchdogs()
            await self.risk.watch_loss()
            if self._next_reconcile is None or ctx.now() >= self._next_reconcile:
                self._next_reconcile = ctx.now() + timedelta(
                    seconds=ctx.sessions.reconcile_every_seconds
                )
                await self.reconciler.run("periodic")
        except Exception:
            logger.exception("{}: tick failed", self.name)

    # --- watchdogs -----------------------------------------------------------------------

    def note_bar(self, bar: Bar) -> None:
        """A closed bar arrived (the feed calls this): fresh data, and the market state."""
        if isinstance(self.market, BarMemory):
            self.market.add(bar)
        self._last_bar_at = self.ctx.now()
        self._watch_triggers(bar)

    def _watch_triggers(self, bar: Bar) -> None:
        """A working stop-buy whose trigger this bar crossed has probably filled: if its
        fill is not in the ledger shortly after (a lost or late stream event), ask the
        broker now rather than leave the shares unprotected until the periodic reconcile."""
        crossed = [
            v
            for v in self.book.live_orders(bar.symbol, side=Side.BUY, role=OrderRole.ENTRY)
            if v.stop_price is not None and bar.high >= v.stop_price and v.filled_qty < v.qty
        ]
        if crossed and not self._trigger_check_pending:
            self._trigger_check_pending = True
            self.ctx.spawn(
                self._check_crossed([v.client_order_id for v in crossed]),
                name=f"{self.name}-trigger-check",
            )

    async def _check_crossed(self, client_order_ids: list[str]) -> None:
        ctx = self.ctx
        try:
            # The stream usually reports the fill with the bar: give it a moment first.
            await ctx.clock.sleep(ctx.options.trigger_check_delay_seconds)
            views = [self.tracker.view(cid) for cid in client_order_ids]
            if any(v is not None and not v.is_terminal and v.filled_qty < v.qty for v in views):
                await self.reconciler.run("entry trigger crossed, fill not seen")
        finally:
            self._trigger_check_pending = False

    def stale_for(self) -> float | None:
        """Seconds without a bar during regular hours, or None outside them."""
        ctx = self.ctx
        if ctx.phase() is not SessionPhase.REGULAR:
            return None
        open_at = self.day.session_for(ctx.now()).open
        since = max(d for d in (self._last_bar_at, open_at, ctx.started_at) if d is not None)
        return (ctx.now() - since).total_seconds()

    async def check_watchdogs(self) -> list[str]:
        """Stale data and unacknowledged orders -> SAFE MODE. Returns the active causes."""
        ctx, causes = self.ctx, []
        stale = self.stale_for()
        if stale is not None and stale > ctx.sessions.stale_data_seconds:
            causes.append(f"no bar for {stale:.0f} s")
            await self._safe(
                SafeModeReason.STALE_DATA, f"market data stale: no bar for {stale:.0f} s"
            )
        late = await self._unacknowledged()
        self.unacked_active = bool(late)
        if late:
            text = ", ".join(v.client_order_id for v in late)
            causes.append(f"unacknowledged: {text}")
            await self._safe(
                SafeModeReason.UNACKNOWLEDGED_ORDER,
                f"unacknowledged beyond {ctx.sessions.unacknowledged_order_seconds} s: {text}",
            )
        return causes

    async def _unacknowledged(self) -> list[OrderView]:
        ctx = self.ctx
        horizon = ctx.now() - timedelta(seconds=ctx.sessions.unacknowledged_order_seconds)
        late = [
            v
            for v in self.book.live_orders()
            if v.status in UNACKED and (v.submitted_at or v.created_at) <= horizon
        ]
        still: list[OrderView] = []
        for view in late:
            try:  # ask before alarming: the ack may only have been lost on the stream
                view = await self.tracker.refresh(view.client_order_id)
            except Exception as exc:
                logger.warning("{}: query of {} failed: {}", self.name, view.client_order_id, exc)
            if view.status in UNACKED:
                still.append(view)
        return still

    def cause_active(self, reason: SafeModeReason) -> str | None:
        """Why SAFE MODE's `reason` still holds (None: it is gone and /resume may clear it)."""
        ctx = self.ctx
        if reason is SafeModeReason.STALE_DATA:
            stale = self.stale_for()
            if stale is not None and stale > ctx.sessions.stale_data_seconds:
                return f"no bar for {stale:.0f} s"
        elif reason is SafeModeReason.UNACKNOWLEDGED_ORDER:
            if self.unacked_active:
                return "an order is still unacknowledged"
        elif reason is SafeModeReason.BROKER_UNREACHABLE:
            if self.broker_unreachable:
                return "the broker connection is still down"
        elif reason is SafeModeReason.POSITION_MISMATCH:
            last = self.reconciler.last
            if self.reconciler.mismatch_active or last is None:
                return "the last reconcile still found a position mismatch (run /reconcile)"
        return None

    async def broker_down(self, seconds: float) -> None:
        """The broker stayed unreachable past its limit: SAFE MODE until it is back and a
        human resumes (nothing we know about orders or positions can be trusted)."""
        self.broker_unreachable = True
        await self._safe(
            SafeModeReason.BROKER_UNREACHABLE, f"broker unreachable for {seconds:.0f} s"
        )

    def broker_back(self) -> None:
        self.broker_unreachable = False

    async def resume(self, who: str) -> tuple[bool, str]:
        await self.check_watchdogs()
        return await self.day.resume(who, self.cause_active)

    async def _safe(self, reason: SafeModeReason, detail: str) -> None:
        try:
            await self.day.enter_safe_mode(reason, detail)
        except Exception:
            logger.exception("{}: could not enter SAFE MODE ({})", self.name, detail)


__all__ = ["TradingEngine"]
