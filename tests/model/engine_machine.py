"""A model-based test of the WHOLE engine (issue 12): TradingEngine + SimBroker + a file
SQLite ledger on a SimClock, driven by hypothesis through interleavings of drafts and
confirms (single, double taps, batches), slow / ambiguous / 5xx / rate-limited sends,
bars that trigger, gap and partially fill, a stream that drops, duplicates, delays and
reorders events, reconciles at any point (also mid-send), crashes and restarts, kills
(also racing a confirm), outside changes to positions, outages and /resume.

After every step it checks the invariants that hold at any instant:
  1. at most one broker order per intent: no draft has two live or filled entry orders;
  2. no risk limit is exceeded when working entries are counted (trades per day, and a
     symbol's position plus its working entries against max_position_usd);
  5. a kill that reports "flat" left no position and no working order at the broker (the
     broker is looked at the instant the kill returns).
After a QUIET reconcile (faults cleared, held events delivered, no send in flight, the
partial-fill wait over) it also checks:
  3. every long position at the broker is covered by live protective sells whose total is
     exactly the position (covered, and no larger), or the session is in SAFE MODE and an
     alert ("safe_mode" / "protection") was staged in the outbox;
  4. the ledger equals the broker: every broker order's status and filled qty, no ledger
     order missing at the broker unless it ended unplaced, and every symbol's position.

Each example runs on its own event loop (hypothesis rules are synchronous: every rule
runs its coroutine with `run_until_complete`; tasks started by one rule, like a confirm
whose send is slow, go on during the next rules). A failure shrinks to a short program,
printed by hypothesis with its `@reproduce_failure` blob; the soak script
(benchmarks/engine_soak.py) prints the seed it ran with.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from loguru import logger
from sqlalchemy import select

from brokers.sim import PartialFills, SimBroker
from core.book import ledger_position
from core.broker import BrokerError
from core.clock import SimClock
from core.domain import OrderSnapshot, OrderStatus, Side, Symbol
from core.drafts import DraftError
from core.engine_context import EngineOptions
from core.kill import KillReport
from core.ledger import Ledger, OrderRow, create_engine_for, upgrade
from core.marketdata.bar import Bar
from core.session_types import SessionState
from tests.kit.brokers import MINUTE, make_bar, ny, sim_config
from tests.kit.engine import (
    EngineKit,
    assemble_kit,
    protection_config,
    risk_config,
    sessions_config,
)

D = Decimal
CENT = D("0.01")
SYMBOLS = (Symbol("AAPL"), Symbol("MSFT"))
# Limits that bite within a few steps; loss limits high enough that a few stop-outs do
# not lock the day (entries keep coming, so the entry paths keep being explored).
RISK = risk_config(
    max_trades_per_day=4,
    max_position_usd=D(12000),
    max_daily_loss_usd=D(2500),
    max_daily_loss_r=D(20),
    cooldown_minutes=3,
)
SESSIONS = sessions_config(stale_data_seconds=300)
PROTECTION = protection_config()
# The engine's own tick loop runs on the clock every 5 s (its default period).
OPTIONS = EngineOptions(tick_seconds=5.0)
ALERT_KINDS = ("safe_mode", "protection")
MAX_IN_FLIGHT = 3
# How long a quiet step lets in-flight work finish before calling it stuck.
SETTLE_LIMIT_SECONDS = 600
# An engine call (reconcile, restart, resume...) that has not ended after this much clock
# time, with time passing whenever it waits, is stuck.
DRIVE_LIMIT_SECONDS = 900
IDLE_TURNS = 30
DISRUPTION_SPACING = 8


class InvariantViolation(AssertionError):
    """One of the five invariants does not hold (the message says which and why)."""


@dataclass
class Stats:
    """Counters the soak script reports (shared by every machine of a process)."""

    examples: int = 0
    steps: int = 0
    checks: int = 0
    quiet_checks: int = 0
    kills_checked: int = 0
    confirms: int = 0
    placed: int = 0
    entries_filled: int = 0
    restarts: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)


STATS = Stats()

_template: Path | None = None


def _template_ledger() -> Path:
    """A migrated, empty ledger file made once per process and copied per example
    (migrating takes longer than a whole short example)."""
    global _template
    if _template is None or not _template.exists():
        folder = Path(tempfile.mkdtemp(prefix="centaur-model-template-"))
        path = folder / "ledger.db"
        engine = create_engine_for(f"sqlite:///{path}")
        upgrade(engine)
        engine.dispose()
        _template = path
    return _template


@dataclass
class Spawned:
    kind: str  # confirm | kill
    task: asyncio.Task[Any]
    examined: bool = False


@dataclass(frozen=True)
class KillLook:
    """A kill's report and the broker as it was the instant the kill returned."""

    report: KillReport
    orders: list[OrderSnapshot]
    positions: dict[Symbol, Decimal]


def _is_live(order: OrderSnapshot) -> bool:
    return not order.status.is_terminal


class EngineMachine(RuleBasedStateMachine):
    """See the module docstring."""

    quiet_logs = True

    def __init__(self) -> None:
        super().__init__()
        STATS.examples += 1
        if self.quiet_logs:
            logger.disable("core")
            logger.disable("brokers")
        self.loop = asyncio.new_event_loop()
        self.folder = Path(tempfile.mkdtemp(prefix="centaur-model-"))
        self.spawned: list[Spawned] = []
        self.since_disruption = 0
        # The market between the `bar` rule's bars: a random walk, one bar per symbol at
        # every minute boundary while time passes (seeded by hypothesis in `open_market`).
        self.market = random.Random(0)
        self.next_bar_at = ny(9, 51)
        self.drafts: list[int] = []
        self.price: dict[Symbol, Decimal] = {s: D(100) for s in SYMBOLS}
        self.min_trigger: dict[Symbol, Decimal] = {}
        self.allowance: dict[Symbol, Decimal] = {s: D(0) for s in SYMBOLS}
        self._clock = SimClock(ny(9, 50))
        self._broker = SimBroker(self._clock, config=sim_config())
        self.kit = self.drive(self._start())
        self.namespace = self.kit.engine.ctx.account.namespace
        self.entry_id = re.compile(rf"^{re.escape(self.namespace)}-d(\d+)-en\d+")

    # --- plumbing ----------------------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run a coroutine that moves time itself (or never waits on the clock)."""
        return self.loop.run_until_complete(coro)

    def drive(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run an engine call to its end, letting time pass (1 s at a time, the broker's
        due work included) whenever it waits on the clock: a retry after a 429, a slow
        send, a confirmation wait. One that never ends while time passes is a finding."""
        return self.loop.run_until_complete(self._drive(coro))

    async def _drive(self, coro: Coroutine[Any, Any, Any]) -> Any:
        task = asyncio.ensure_future(coro)
        waited = 0
        while not task.done():
            for _ in range(IDLE_TURNS):
                await asyncio.sleep(0)
                if task.done():
                    return task.result()
            if waited >= DRIVE_LIMIT_SECONDS:
                task.cancel()
                raise InvariantViolation(
                    f"an engine call did not end in {DRIVE_LIMIT_SECONDS} s of clock time"
                )
            self.clock.advance(timedelta(seconds=1))
            self.broker.tick()
            waited += 1
        return task.result()

    async def _start(self) -> EngineKit:
        clock, broker = self._clock, self._broker
        for symbol in SYMBOLS:  # a current price, so trailing stops have an anchor
            await broker.on_bar(
                make_bar(clock.now() - MINUTE, "100", "100", "100", "100", symbol=symbol)
            )
        path = self.folder / "ledger.db"
        shutil.copyfile(_template_ledger(), path)
        ledger = Ledger(create_engine_for(f"sqlite:///{path}"), clock)
        return await assemble_kit(
            broker,
            clock,
            ledger,
            risk=RISK,
            protection=PROTECTION,
            sessions=SESSIONS,
            options=OPTIONS,
            background=True,
        )

    @property
    def broker(self) -> SimBroker:
        return self._broker

    @property
    def clock(self) -> SimClock:
        return self._clock

    def spawn(self, kind: str, coro: Coroutine[Any, Any, Any]) -> None:
        self.spawned.append(Spawned(kind, self.loop.create_task(coro)))
        self.run(self.kit.idle())

    def in_flight(self) -> list[Spawned]:
        return [s for s in self.spawned if not s.task.done()]

    async def _advance(self, seconds: int, *, bars: bool = True) -> None:
        """Time passes in 1 s steps: due broker work, held events, sleepers (the engine's
        tick loop, slow sends, confirmation waits) all run as they come due, and with
        `bars` the market's random walk delivers a bar per symbol every minute."""
        for _ in range(seconds):
            self.clock.advance(timedelta(seconds=1))
            self.broker.tick()
            await self.kit.idle()
            if bars and self.clock.now() >= self.next_bar_at:
                for symbol in SYMBOLS:
                    await self._walk(symbol)
            if self.clock.now() >= self.next_bar_at:
                self.next_bar_at = self.clock.now() + MINUTE

    async def _walk(self, symbol: Symbol) -> None:
        draw = self.market.randint
        last = self.price[symbol]
        close = max(D(60), min(D(140), last + draw(-60, 60) * CENT))
        high = max(last, close) + draw(0, 60) * CENT
        low = min(last, close) - draw(0, 60) * CENT
        await self._deliver(
            make_bar(self.clock.now() - MINUTE, last, high, low, close, symbol=symbol)
        )
        self.price[symbol] = close

    async def _deliver(self, bar: Bar) -> None:
        await self.broker.on_bar(bar)
        self.kit.engine.note_bar(bar)
        await self.kit.idle()

    def teardown(self) -> None:
        STATS.entries_filled += sum(
            1 for o in self.broker.peek_orders() if self._draft_of(o) and o.filled_qty > 0
        )
        try:
            for spawned in self.spawned:
                spawned.task.cancel()
            self.run(_wait_all([s.task for s in self.spawned]))
            self.run(self.kit.engine.stop())
            self.run(self.broker.close())
            self.run(self.loop.shutdown_asyncgens())
        finally:
            self.kit.ledger.engine.dispose()
            self.loop.close()
            shutil.rmtree(self.folder, ignore_errors=True)
            if self.quiet_logs:
                logger.enable("core")
                logger.enable("brokers")

    def step(self) -> None:
        STATS.steps += 1
        self.since_disruption += 1

    def disruption_allowed(self) -> bool:
        """Crashes and kills end most of what is going on: a few steps apart, so that
        examples also reach positions, protection and the faults' aftermath."""
        return self.since_disruption >= DISRUPTION_SPACING

    @initialize(seed=st.integers(0, 2**32 - 1))
    def open_market(self, seed: int) -> None:
        self.market = random.Random(seed)

    # --- drafts and confirms ----------------------------------------------------------

    @rule(
        symbol=st.sampled_from(SYMBOLS),
        above=st.integers(1, 120),
        stop_below=st.integers(30, 300),
        qty=st.one_of(st.none(), st.integers(1, 130)),
    )
    def create_draft(self, symbol: Symbol, above: int, stop_below: int, qty: int | None) -> None:
        self.step()
        trigger = self.price[symbol] + above * CENT
        stop = trigger - stop_below * CENT
        try:
            review = self.drive(
                self.kit.engine.drafts.create_buy(
                    symbol, trigger, stop, qty=None if qty is None else D(qty)
                )
            )
        except (DraftError, BrokerError):
            return
        self.drafts.append(review.draft_id)
        assert review.trigger is not None
        low = self.min_trigger.get(symbol)
        self.min_trigger[symbol] = review.trigger if low is None else min(low, review.trigger)

    @precondition(lambda self: bool(self.drafts) and len(self.in_flight()) < MAX_IN_FLIGHT)
    @rule(
        pick=st.integers(0, 50),
        other=st.integers(0, 50),
        mode=st.sampled_from(["single", "double_tap", "batch"]),
    )
    def confirm(self, pick: int, other: int, mode: str) -> None:
        """A tap is a task: a slow send stays in flight while the next rules run."""
        self.step()
        drafts = self.kit.engine.drafts
        draft = self.drafts[pick % len(self.drafts)]
        STATS.confirms += 1
        if mode == "single":
            self.spawn("confirm", drafts.confirm(draft))
        elif mode == "double_tap":
            self.spawn("confirm", _gather(drafts.confirm(draft), drafts.confirm(draft)))
        else:
            second = self.drafts[other % len(self.drafts)]
            self.spawn("confirm", drafts.confirm_batch([draft, second, draft]))

    # --- the broker's faults ------------------------------------------------------------

    @rule(
        kind=st.sampled_from(["slow", "ambiguous", "server_error", "rate_limit", "reject"]),
        seconds=st.integers(1, 70),
        count=st.integers(1, 3),
    )
    def submit_fault(self, kind: str, seconds: int, count: int) -> None:
        """Applies to the next submit(s), whatever they are for (entry, protection,
        flatten); a rate limit applies to any call."""
        self.step()
        faults = self.broker.faults
        if kind == "slow":
            faults.slow_next_submit(seconds)
        elif kind == "ambiguous":
            faults.timeout_after_accept_next_submit()
        elif kind == "server_error":
            faults.server_error_next_submit()
        elif kind == "rate_limit":
            faults.rate_limit_next(count, retry_after=float(min(seconds, 5)))
        else:
            faults.reject_next("insufficient buying power", "40310000")

    @rule(
        kind=st.sampled_from(["drop", "duplicate", "delay", "reorder"]),
        count=st.integers(1, 3),
        seconds=st.integers(1, 90),
    )
    def stream_fault(self, kind: str, count: int, seconds: int) -> None:
        self.step()
        faults = self.broker.faults
        if kind == "drop":
            faults.drop_next_events(count)
        elif kind == "duplicate":
            faults.duplicate_next_events(count)
        elif kind == "delay":
            faults.delay_next_events(count, seconds)
        else:
            faults.reorder_next_events(count)

    @rule(seconds=st.integers(1, 90), kill_during=st.booleans())
    def outage(self, seconds: int, kill_during: bool) -> None:
        """The broker's API and stream stop answering for a while (the market goes on),
        with a /kill tapped while it is down or not."""
        self.step()
        self.broker.faults.unavailable()
        if kill_during and self.disruption_allowed() and len(self.in_flight()) < MAX_IN_FLIGHT:
            self.since_disruption = 0
            self.spawn("kill", self._kill_and_look())
        self.run(self._advance(seconds))
        self.broker.faults.unavailable(False)

    @rule(policy=st.sampled_from(["whole", "chunk", "half"]), chunk=st.integers(1, 40))
    def partial_fills(self, policy: str, chunk: int) -> None:
        self.step()
        if policy == "whole":
            self.broker.set_partial_fills(PartialFills())
        elif policy == "chunk":
            self.broker.set_partial_fills(PartialFills(chunks=(D(chunk),)))
        else:
            self.broker.set_partial_fills(PartialFills(ratio=D("0.5")))

    # --- the market and time ------------------------------------------------------------

    @rule(
        symbol=st.sampled_from(SYMBOLS),
        gap=st.one_of(st.just(0), st.integers(-250, 250)),
        move=st.integers(-150, 150),
        wick_up=st.integers(0, 150),
        wick_down=st.integers(0, 150),
    )
    def bar(self, symbol: Symbol, gap: int, move: int, wick_up: int, wick_down: int) -> None:
        """A 1-minute bar: the minute passes (1 s steps), then the bar closes."""
        self.step()
        last = self.price[symbol]
        open_ = max(D(60), min(D(140), last + gap * CENT))
        close = max(D(60), min(D(140), open_ + move * CENT))
        high = max(open_, close) + wick_up * CENT
        low = max(D(1), min(open_, close) - wick_down * CENT)
        self.run(self._bar(symbol, open_, high, low, close))
        self.price[symbol] = close

    async def _bar(
        self, symbol: Symbol, open_: Decimal, high: Decimal, low: Decimal, close: Decimal
    ) -> None:
        start = self.clock.now()
        await self._advance(60, bars=False)
        await self._deliver(make_bar(start, open_, high, low, close, symbol=symbol))

    @rule(seconds=st.integers(1, 90))
    def advance(self, seconds: int) -> None:
        self.step()
        self.run(self._advance(seconds))

    # --- reconcile, restart, kill, resume -----------------------------------------------

    @rule()
    def reconcile(self) -> None:
        """At any point: with faults pending, events held, sends in flight."""
        self.step()
        # The broker may fail mid-reconcile: the next one recovers.
        with contextlib.suppress(BrokerError):
            self.drive(self.kit.engine.reconciler.run("model"))

    @precondition(lambda self: self.disruption_allowed())
    @rule()
    def crash_restart(self) -> None:
        """The process dies wherever it is (tasks dropped, sends in flight lost with it)
        and a new engine starts on the same ledger file and the same broker."""
        self.step()
        self.since_disruption = 0
        STATS.restarts += 1
        for spawned in self.in_flight():
            spawned.task.cancel()
        self.run(_wait_all([s.task for s in self.spawned]))
        self._examine_finished()
        self.spawned = []
        self.kit = self.drive(self.kit.crash_restart())

    @precondition(lambda self: self.disruption_allowed() and len(self.in_flight()) < MAX_IN_FLIGHT)
    @rule(with_confirm=st.booleans(), pick=st.integers(0, 50))
    def kill(self, with_confirm: bool, pick: int) -> None:
        """A /kill, alone or racing a Confirm tap (both started in the same instant)."""
        self.step()
        self.since_disruption = 0
        if with_confirm and self.drafts:
            draft = self.drafts[pick % len(self.drafts)]
            STATS.confirms += 1
            self.spawn("confirm", self.kit.engine.drafts.confirm(draft))
        self.spawn("kill", self._kill_and_look())

    async def _kill_and_look(self) -> KillLook:
        broker = self.broker
        report = await self.kit.engine.kill.execute("model")
        # No await between the report and the look: nothing can run in between.
        return KillLook(report, broker.peek_orders(), broker.peek_positions())

    @rule()
    def resume(self) -> None:
        """A human sends /resume (it clears SAFE MODE only if its causes are gone)."""
        self.step()
        self.drive(self.kit.engine.resume("model"))

    # --- outside changes ------------------------------------------------------------------

    @rule(
        symbol=st.sampled_from(SYMBOLS),
        kind=st.sampled_from(["sell_some", "sell_all", "buy"]),
        qty=st.integers(1, 60),
    )
    def outside_change(self, symbol: Symbol, kind: str, qty: int) -> None:
        """Shares sold or bought outside Centaur (another app, a transfer): the broker's
        position changes with no order of ours."""
        self.step()
        held = self.broker.peek_positions().get(symbol, D(0))
        if kind == "buy":
            self.allowance[symbol] += D(qty)
            self.broker.seed_position(symbol, held + qty, self.price[symbol])
        elif held > 0:
            left = D(0) if kind == "sell_all" else max(D(0), held - qty)
            self.broker.seed_position(symbol, left, self.price[symbol])

    # --- the quiet step: invariants 3 and 4 -----------------------------------------------

    @rule()
    def quiet_reconcile(self) -> None:
        self.step()
        self.run(self._settle())
        self._examine_finished()
        try:
            self.drive(self.kit.engine.reconciler.run("model: quiet"))
        except BrokerError as exc:
            raise InvariantViolation(f"a reconcile with no fault failed: {exc!r}") from exc
        # What the reconcile placed is confirmed within the protection timeout.
        self.run(self._advance(PROTECTION.protection_confirm_timeout_seconds + 2, bars=False))
        self._examine_finished()
        self.check_protection()
        self.check_ledger_equals_broker()
        STATS.quiet_checks += 1

    async def _settle(self) -> None:
        """No fault left, every held event delivered, every send and kill ended, and the
        partial-fill wait and the unacknowledged-order horizon passed. The market pauses
        (no bar) meanwhile: a fill in the last second would still be inside its
        partial-fill wait, which the engine is allowed to take before protecting."""
        self.broker.faults.clear()
        self.broker.flush_events()
        await self.kit.idle()
        for _ in range(SETTLE_LIMIT_SECONDS):
            if not self.in_flight():
                break
            await self._advance(1, bars=False)
        stuck = [s.kind for s in self.in_flight()]
        if stuck:
            raise InvariantViolation(
                f"{stuck} still running {SETTLE_LIMIT_SECONDS} s after every fault cleared"
            )
        wait = max(PROTECTION.partial_fill_wait_seconds, SESSIONS.unacknowledged_order_seconds)
        await self._advance(wait + 5, bars=False)

    # --- invariants -----------------------------------------------------------------------

    @invariant()
    def at_any_instant(self) -> None:
        self._examine_finished()
        orders = self.broker.peek_orders()
        self.check_one_order_per_intent(orders)
        self.check_limits(orders)

    def _examine_finished(self) -> None:
        for spawned in self.spawned:
            if spawned.examined or not spawned.task.done():
                continue
            spawned.examined = True
            if spawned.task.cancelled():
                continue
            error = spawned.task.exception()
            if error is not None:
                raise InvariantViolation(
                    f"a {spawned.kind} raised {type(error).__name__}: {error}"
                ) from error
            result = spawned.task.result()
            if spawned.kind == "kill":
                self.check_kill(result)
            else:
                results = result if isinstance(result, list | tuple) else [result]
                for confirmed in results:
                    outcome = str(getattr(confirmed, "outcome", "?"))
                    reasons = getattr(confirmed, "reasons", ())
                    if reasons:
                        outcome += ":" + ",".join(str(r.code) for r in reasons)
                    STATS.outcomes[outcome] += 1
                    STATS.placed += outcome in ("placed", "sent", "queued")

    def _draft_of(self, order: OrderSnapshot) -> int | None:
        match = self.entry_id.match(order.client_order_id)
        return None if match is None else int(match.group(1))

    def check_one_order_per_intent(self, orders: list[OrderSnapshot]) -> None:
        """Invariant 1: a draft never has two live/filled entry orders at the broker."""
        STATS.checks += 1
        per_draft: dict[int, list[str]] = {}
        for order in orders:
            draft = self._draft_of(order)
            if draft is not None and (_is_live(order) or order.filled_qty > 0):
                per_draft.setdefault(draft, []).append(
                    f"{order.client_order_id} {order.status} filled {order.filled_qty}"
                )
        doubled = {d: o for d, o in per_draft.items() if len(o) > 1}
        if doubled:
            raise InvariantViolation(f"1: more than one broker order for a draft: {doubled}")

    def check_limits(self, orders: list[OrderSnapshot]) -> None:
        """Invariant 2: trades per day counting working entries; a symbol's position plus
        its working entries within max_position_usd (valued at the lowest trigger ever
        drafted for it, which is below any figure the gate used; outside buys excepted)."""
        STATS.checks += 1
        entries = [o for o in orders if self._draft_of(o) is not None]
        trades = [o.client_order_id for o in entries if _is_live(o) or o.filled_qty > 0]
        if len(trades) > RISK.max_trades_per_day:
            raise InvariantViolation(
                f"2: {len(trades)} entries working or filled today, above the limit of "
                f"{RISK.max_trades_per_day}: {trades}"
            )
        positions = self.broker.peek_positions()
        for symbol, low in self.min_trigger.items():
            working = sum(
                (
                    o.qty - o.filled_qty
                    for o in entries
                    if o.symbol == symbol and o.side is Side.BUY and _is_live(o)
                ),
                D(0),
            )
            held = max(positions.get(symbol, D(0)), D(0))
            exposure = held + working - self.allowance[symbol]
            if exposure * low > RISK.max_position_usd:
                raise InvariantViolation(
                    f"2: {symbol} position {held} + working entries {working} "
                    f"(outside buys {self.allowance[symbol]}) = {exposure} x {low} is above "
                    f"the {RISK.max_position_usd} limit"
                )

    def check_kill(self, look: KillLook) -> None:
        """Invariant 5: "flat" means no position and no working order at the broker."""
        STATS.checks += 1
        STATS.kills_checked += 1
        if not look.report.all_flat:
            return
        held = {s: q for s, q in look.positions.items() if q != 0}
        working = [
            f"{o.client_order_id} ({o.side} {o.qty} {o.symbol} {o.status})"
            for o in look.orders
            if _is_live(o)
        ]
        if held or working:
            raise InvariantViolation(
                f"5: the kill reported flat with positions {held} and working orders "
                f"{working} at the broker"
            )

    def _alerted_safe_mode(self) -> bool:
        if self.kit.engine.day.state is not SessionState.SAFE_MODE:
            return False
        return any(self.kit.notification_count(kind) > 0 for kind in ALERT_KINDS)

    def check_protection(self) -> None:
        """Invariant 3 (after a quiet reconcile)."""
        STATS.checks += 1
        orders = self.broker.peek_orders()
        problems = []
        for symbol, qty in self.broker.peek_positions().items():
            if qty <= 0:
                continue
            sells = [
                o
                for o in orders
                if o.symbol == symbol
                and o.side is Side.SELL
                and _is_live(o)
                and o.status is not OrderStatus.PENDING_CANCEL
            ]
            covered = sum((o.qty - o.filled_qty for o in sells), D(0))
            if covered != qty:
                listed = [f"{o.client_order_id} {o.status} {o.qty - o.filled_qty}" for o in sells]
                problems.append(f"{symbol}: {qty} held, {covered} protected by {listed}")
        if problems and not self._alerted_safe_mode():
            state = self.kit.engine.day.state
            raise InvariantViolation(
                f"3: after a quiet reconcile, long positions not covered exactly by "
                f"protection (session {state}, no SAFE MODE alert): {problems}"
            )

    def check_ledger_equals_broker(self) -> None:
        """Invariant 4 (after a quiet reconcile)."""
        STATS.checks += 1
        at_broker = {o.client_order_id: o for o in self.broker.peek_orders()}
        account = self.kit.engine.ctx.account.row_id
        problems: list[str] = []
        with self.kit.ledger.unit_of_work(read_only=True) as uow:
            rows = {
                r.client_order_id: r
                for r in uow.session.scalars(
                    select(OrderRow).where(OrderRow.account_id == account)
                ).all()
            }
            for cid, order in at_broker.items():
                row = rows.get(cid)
                if row is None:
                    problems.append(f"{cid}: at the broker ({order.status}), not in the ledger")
                elif row.status is not order.status or row.filled_qty != order.filled_qty:
                    problems.append(
                        f"{cid}: ledger {row.status} filled {row.filled_qty}, broker "
                        f"{order.status} filled {order.filled_qty}"
                    )
            for cid, row in rows.items():
                if cid not in at_broker and (not row.status.is_terminal or row.filled_qty != 0):
                    problems.append(
                        f"{cid}: ledger {row.status} filled {row.filled_qty}, not at the broker"
                    )
            held = self.broker.peek_positions()
            for symbol in sorted(set(held) | set(SYMBOLS)):
                ours = ledger_position(uow, account, symbol)
                theirs = held.get(symbol, D(0))
                if ours != theirs:
                    problems.append(f"{symbol}: ledger position {ours}, broker {theirs}")
        if problems:
            raise InvariantViolation(
                f"4: after a quiet reconcile the ledger differs from the broker: {problems}"
            )


async def _wait_all(tasks: list[asyncio.Task[Any]]) -> None:
    """Wait for tasks to end, whatever their ending (a coroutine, so that gather runs on
    the machine's own loop)."""
    await asyncio.gather(*tasks, return_exceptions=True)


async def _gather(*coros: Coroutine[Any, Any, Any]) -> list[Any]:
    """Two taps in the same instant (a double tap)."""
    return list(await asyncio.gather(*coros))


__all__ = ["STATS", "EngineMachine", "InvariantViolation", "Stats"]
