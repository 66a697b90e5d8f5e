"""A whole engine in a few lines: SimClock + SimBroker + SQLite ledger + TradingEngine.

    kit = await engine_kit(tmp_path)            # 09:50 New York, day allowed, started
    await kit.bar(100, 101, 99.5, 100.5)        # a 1-minute AAPL bar at the clock
    review = await kit.engine.drafts.create_buy("AAPL", D("101"), D("99"))
    await kit.engine.drafts.confirm(review.draft_id)

The kit captures every published domain event (`kit.events`), keeps the engine's loops
in the foreground (tests drive time with `kit.advance` / `kit.bar`), and can `restart()`
a new engine on the same ledger and broker, like a process restart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from brokers.sim import SimBroker
from core.clock import SimClock
from core.config_models import ProtectionConfig, RiskConfig, SessionsConfig, TrailBucket
from core.crashpoints import NO_CHECKPOINTS, Checkpoints
from core.domain import Symbol
from core.engine import TradingEngine
from core.engine_context import EngineOptions
from core.events import DomainEvent, EventBus
from core.ledger import Ledger, NotificationRow, OrderRow, create_engine_for, upgrade
from core.marketdata.bar import Bar
from tests.kit.brokers import AAPL, MINUTE, make_bar, ny, sim_config

D = Decimal


def risk_config(**overrides: Any) -> RiskConfig:
    fields: dict[str, Any] = {
        "max_daily_loss_usd": D(300),
        "max_daily_loss_r": D(3),
        "max_trades_per_day": 3,
        "max_position_usd": D(20000),
        "max_position_pct": D(50),
        "risk_per_trade_usd": D(100),
        "max_risk_per_trade_usd": D(200),
        "min_qty": 1,
        "cooldown_minutes": 15,
        "opening_no_trade_minutes": 15,
        "entry_cutoff": time(15, 30),
    }
    fields.update(overrides)
    return RiskConfig(**fields)


def protection_config(**overrides: Any) -> ProtectionConfig:
    fields: dict[str, Any] = {
        "trail_lookback_sessions": 10,
        "trail_percentile": D(90),
        "trail_bar_minutes": 5,
        "trail_buckets": [
            TrailBucket(name="low", up_to_range_pct=D("0.35"), trail_pct=D("0.6")),
            TrailBucket(name="high", trail_pct=D("1.2")),
        ],
        "default_trail_pct": D("1"),
        "event_day_widen_factor": D("1.5"),
        "partial_fill_wait_seconds": 20,
        "protection_confirm_timeout_seconds": 10,
    }
    fields.update(overrides)
    return ProtectionConfig(**fields)


def sessions_config(**overrides: Any) -> SessionsConfig:
    fields: dict[str, Any] = {
        "brief_at": time(9, 0),
        "allow_prompt_at": time(9, 45),
        "flatten_at": time(15, 55),
        "report_at": time(16, 10),
        "half_day_flatten_before_close_minutes": 5,
        "reconcile_every_seconds": 60,
        "stale_data_seconds": 180,
        "unacknowledged_order_seconds": 15,
        "cancel_confirm_timeout_seconds": 10,
        "draft_ttl_minutes": 30,
    }
    fields.update(overrides)
    return SessionsConfig(**fields)


def file_ledger(path: Path, clock: SimClock) -> Ledger:
    engine = create_engine_for(f"sqlite:///{path}")
    upgrade(engine)
    return Ledger(engine, clock)


@dataclass
class EngineKit:
    engine: TradingEngine
    broker: SimBroker
    clock: SimClock
    ledger: Ledger
    events: list[DomainEvent] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    async def idle(self) -> None:
        await self.engine.idle()

    async def bar(
        self,
        open: str | int | Decimal,
        high: str | int | Decimal,
        low: str | int | Decimal,
        close: str | int | Decimal,
        *,
        symbol: Symbol = AAPL,
        start: datetime | None = None,
    ) -> Bar:
        """A 1-minute bar starting now (or at `start`), delivered at its end."""
        begin = start or self.clock.now()
        bar = make_bar(begin, str(open), str(high), str(low), str(close), symbol=symbol)
        if self.clock.now() < bar.end:
            self.clock.set(bar.end)
        await self.broker.on_bar(bar)
        self.engine.note_bar(bar)
        await self.idle()
        return bar

    async def advance(self, seconds: float) -> None:
        """Move time in small steps so every sleeper and the broker's due work runs."""
        end = self.clock.now() + timedelta(seconds=seconds)
        while self.clock.now() < end:
            step = min(timedelta(seconds=1), end - self.clock.now())
            self.clock.advance(step)
            self.broker.tick()
            await self.idle()

    def of_type(self, kind: type[DomainEvent]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def ledger_orders(self) -> list[OrderRow]:
        with self.ledger.unit_of_work(read_only=True) as uow:
            return list(uow.session.scalars(select(OrderRow).order_by(OrderRow.id)).all())

    def notification_count(self, kind: str | None = None) -> int:
        with self.ledger.unit_of_work(read_only=True) as uow:
            stmt = select(func.count()).select_from(NotificationRow)
            if kind is not None:
                stmt = stmt.where(NotificationRow.kind == kind)
            return int(uow.session.scalar(stmt) or 0)

    async def restart(self, **overrides: Any) -> EngineKit:
        """A new engine on the same ledger and broker (the old one is stopped)."""
        await self.engine.stop()
        settings = {**self.settings, **overrides}
        return await _assemble(self.broker, self.clock, self.ledger, **settings)

    async def crash_restart(self, **overrides: Any) -> EngineKit:
        """A process crash and restart: the engine's tasks are dropped wherever they are,
        and the new engine opens a NEW Ledger on the same database file (no cache or
        object of the old process survives), on the same broker and clock."""
        await self.engine.stop()
        url = self.ledger.engine.url
        self.ledger.engine.dispose()
        ledger = Ledger(create_engine_for(url), self.clock)
        settings = {**self.settings, **overrides}
        return await _assemble(self.broker, self.clock, ledger, **settings)


async def _assemble(
    broker: SimBroker,
    clock: SimClock,
    ledger: Ledger,
    *,
    risk: RiskConfig | None = None,
    protection: ProtectionConfig | None = None,
    sessions: SessionsConfig | None = None,
    checkpoints: Checkpoints = NO_CHECKPOINTS,
    options: EngineOptions | None = None,
    allow: bool = True,
    start: bool = True,
    background: bool = False,
) -> EngineKit:
    bus = EventBus()
    events: list[DomainEvent] = []
    bus.subscribe(events.append)
    engine = TradingEngine(
        account="paper",
        broker=broker,
        ledger=ledger,
        clock=clock,
        risk=risk or risk_config(),
        protection=protection or protection_config(),
        sessions=sessions or sessions_config(),
        bus=bus,
        checkpoints=checkpoints,
        options=options or EngineOptions(tick_seconds=1.0),
    )
    settings = {
        "risk": risk,
        "protection": protection,
        "sessions": sessions,
        "checkpoints": checkpoints,
        "options": options,
        "allow": allow,
        "start": start,
        "background": background,
    }
    kit = EngineKit(engine, broker, clock, ledger, events, settings)
    if start:
        # `background`: the engine's own tick loop runs, sleeping on the clock.
        await engine.start(background=background)
        if allow and engine.day.m.info.allowed is not True:
            await engine.day.answer(True, "test")
        await kit.idle()
    return kit


async def assemble_kit(
    broker: SimBroker, clock: SimClock, ledger: Ledger, **settings: Any
) -> EngineKit:
    """An engine on a broker, clock and ledger made by the caller (same settings as
    `engine_kit`: risk, protection, sessions, checkpoints, options, allow, start, and
    `background` to run the engine's own tick loop on the clock)."""
    return await _assemble(broker, clock, ledger, **settings)


async def engine_kit(
    tmp_path: Path,
    *,
    at: datetime | None = None,
    sim: dict[str, Any] | None = None,
    seed: dict[Symbol, tuple[Decimal, Decimal]] | None = None,
    warm_bar: bool = True,
    **settings: Any,
) -> EngineKit:
    """An engine at `at` (default 09:50 New York on the kit's session day), started."""
    clock = SimClock(at or ny(9, 50))
    broker = SimBroker(clock, config=sim_config(**(sim or {})), persist_path=tmp_path / "sim.json")
    if warm_bar:
        # A current price for AAPL, so trailing stops have an anchor.
        begin = clock.now() - MINUTE
        await broker.on_bar(make_bar(begin, "100.00", "100.00", "100.00", "100.00"))
    for symbol, (qty, price) in (seed or {}).items():
        broker.seed_position(symbol, qty, price)
    ledger = file_ledger(tmp_path / "ledger.db", clock)
    return await _assemble(broker, clock, ledger, **settings)


__all__ = [
    "EngineKit",
    "assemble_kit",
    "engine_kit",
    "file_ledger",
    "protection_config",
    "risk_config",
    "sessions_config",
]
