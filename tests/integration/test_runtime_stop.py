"""A stop that never hangs (issue 12, item 18): every close on the stop path has a time
limit and the stop as a whole has a deadline. Fakes at the edge hang forever: a bar feed
whose subscribe never completes and whose close never returns, both ignoring
cancellation while they hang (as websockets' close does); a data stream stuck in its
reconnect loop; a trade-updates connection that swallows its cancel. Each stop must
return, and report what did not close. No wall-clock assertions: the deadlines are short
configured values, and `asyncio.timeout` only keeps a regression from hanging the suite.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any, TypeVar

from loguru import logger
from pydantic import SecretStr

from app.runtime import Runtime, RuntimePlan
from app.warmup import Replay, scenario_replay
from brokers.alpaca import AlpacaBarFeed, alpaca_endpoint_for
from brokers.alpaca.stream import TradeUpdatesStream
from core.broker_events import EventHub
from core.clock import SimClock
from core.config_models import AccountConfig, BrokerKind, WatchlistConfig
from core.marketdata.bar import Bar
from core.settings import DEFAULT_CONFIG_DIR, BrokerCredentials, load_settings

# Keeps a regression from hanging the whole suite; never the thing under test.
GUARD_SECONDS = 20


T = TypeVar("T")


async def returns(work: Awaitable[T]) -> T:
    """`work`'s result; fails (instead of hanging the suite) when it does not return.
    A plain asyncio.timeout cannot do this: its cancel is swallowed along with the rest."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=GUARD_SECONDS)
    assert task in done, "the stop hung"
    return task.result()


class Stuck:
    """Hangs until `release` is set, swallowing every cancellation meanwhile (the way
    websockets' legacy close swallows a cancel while it waits for the close handshake)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.entered = asyncio.Event()
        self.cancels = 0

    async def hang(self) -> None:
        self.entered.set()
        while not self.release.is_set():
            try:
                await self.release.wait()
            except asyncio.CancelledError:
                self.cancels += 1


class HangingFeed:
    """A BarFeed whose subscribe never completes and whose close never returns."""

    def __init__(self) -> None:
        self.subscribe = Stuck()
        self.closing = Stuck()

    def __aiter__(self) -> AsyncIterator[Bar]:
        return self._bars()

    async def _bars(self) -> AsyncIterator[Bar]:
        await self.subscribe.hang()
        return
        yield  # an async generator that never yields a bar

    async def close(self) -> None:
        await self.closing.hang()

    def release(self) -> None:
        self.subscribe.release.set()
        self.closing.release.set()


@dataclass(frozen=True)
class HangingReplay(Replay):
    hanging: HangingFeed = field(default_factory=HangingFeed)

    def feed(self, clock: Any) -> Any:
        return self.hanging


class Warnings:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self._id = logger.add(self.lines.append, level="WARNING", format="{message}")

    def close(self) -> None:
        logger.remove(self._id)

    def text(self) -> str:
        return "\n".join(self.lines)


async def test_the_runtime_stop_returns_when_the_feed_hangs(tmp_path: Path) -> None:
    base = scenario_replay("trend_up_pullback", symbol="DEMO", start=time(10, 0))
    replay = HangingReplay(**{f.name: getattr(base, f.name) for f in fields(Replay)})
    settings = load_settings(
        DEFAULT_CONFIG_DIR, env_file=None, environ={"CENTAUR_DATA_DIR": str(tmp_path)}
    )
    plan = RuntimePlan(
        settings=replace(settings, watchlist=WatchlistConfig(watchlist=["DEMO"])),
        accounts=[AccountConfig(name="sim", broker=BrokerKind.SIM)],
        clock=SimClock(replay.start),
        db_url=f"sqlite:///{tmp_path / 'ledger.db'}",
        data_dir=tmp_path,
        symbols=["DEMO"],
        replay=replay,
        with_bot=False,
        stop_seconds=1.0,
        close_seconds=0.2,
    )
    runtime = Runtime(plan)
    warnings = Warnings()
    try:
        await runtime.start()
        await asyncio.wait_for(replay.hanging.subscribe.entered.wait(), GUARD_SECONDS)
        not_closed = await returns(runtime.stop())
    finally:
        warnings.close()
        replay.hanging.release()
        await asyncio.sleep(0)
    assert replay.hanging.subscribe.cancels >= 1 and replay.hanging.closing.entered.is_set()
    assert "bar feed subscription" in not_closed and "bar feed close" in not_closed
    assert "did not close" in warnings.text() and "bar feed close" in warnings.text()
    assert runtime.ledger is None and runtime.connected == []  # the rest still closed


async def test_the_runtime_stop_has_an_overall_deadline(tmp_path: Path) -> None:
    base = scenario_replay("trend_up_pullback", symbol="DEMO", start=time(10, 0))
    replay = HangingReplay(**{f.name: getattr(base, f.name) for f in fields(Replay)})
    settings = load_settings(
        DEFAULT_CONFIG_DIR, env_file=None, environ={"CENTAUR_DATA_DIR": str(tmp_path)}
    )
    plan = RuntimePlan(
        settings=settings,
        accounts=[AccountConfig(name="sim", broker=BrokerKind.SIM)],
        clock=SimClock(replay.start),
        db_url=f"sqlite:///{tmp_path / 'ledger.db'}",
        data_dir=tmp_path,
        symbols=["DEMO"],
        replay=replay,
        with_bot=False,
        stop_seconds=0.3,  # less than the per-close limits: the deadline decides
        close_seconds=10.0,
    )
    runtime = Runtime(plan)
    warnings = Warnings()
    try:
        await runtime.start()
        not_closed = await returns(runtime.stop())
    finally:
        warnings.close()
        replay.hanging.release()
        await asyncio.sleep(0)
    assert not_closed[:2] == ["bar feed subscription", "bar feed close"]
    assert "broker sim" in not_closed  # past the deadline nothing more is waited for
    assert "stop deadline (0.3 s) has passed" in warnings.text()
    assert runtime.ledger is None


# --- the Alpaca edges ------------------------------------------------------------------


class StuckDataStream:
    """Stands in for alpaca-py's StockDataStream stuck reconnecting: `_run_forever` swallows
    cancellation (the SDK's reconnect path closes the socket inside its loop) and only
    `stop_ws()` ends it; `close()` never returns."""

    def __init__(self) -> None:
        self.running = Stuck()
        self.closing = Stuck()
        self.stopped = False

    async def _run_forever(self) -> None:
        await self.running.hang()

    async def stop_ws(self) -> None:
        self.stopped = True
        self.running.release.set()

    async def close(self) -> None:
        await self.closing.hang()


NOW = datetime(2025, 6, 2, 14, 0, tzinfo=UTC)
CREDS = BrokerCredentials(SecretStr("key"), SecretStr("secret"))
ACCOUNT = AccountConfig(name="ap", broker=BrokerKind.ALPACA, credentials_env="AP")


async def test_the_alpaca_bar_feed_close_returns_while_the_stream_reconnects() -> None:
    endpoint = alpaca_endpoint_for(
        ACCOUNT, {}, chat_confirmed=False, url_override="http://127.0.0.1:9"
    )
    feed = AlpacaBarFeed(["AAPL"], CREDS, endpoint, SimClock(NOW), close_seconds=0.2)
    stream = StuckDataStream()
    feed._new_stream = lambda: stream  # type: ignore[method-assign]  # the SDK edge
    feed.start()
    try:
        await asyncio.wait_for(stream.running.entered.wait(), GUARD_SECONDS)
        await returns(feed.close())
    finally:
        stream.closing.release.set()
        stream.running.release.set()
    assert stream.stopped  # the SDK's own reconnect loop was told to stop
    assert stream.closing.entered.is_set()


async def test_the_trade_updates_stop_returns_when_the_connection_swallows_cancel() -> None:
    stuck = Stuck()
    stream = TradeUpdatesStream(
        "ws://127.0.0.1:9/stream", "k", "s", SimClock(NOW), EventHub(), stop_seconds=0.2
    )

    async def connect_once(session: Any) -> None:
        await stuck.hang()

    stream._connect_once = connect_once  # type: ignore[method-assign]  # the socket edge
    stream.start()
    try:
        await asyncio.wait_for(stuck.entered.wait(), GUARD_SECONDS)
        await returns(stream.stop())
    finally:
        stuck.release.set()
        await asyncio.sleep(0)
    assert stuck.cancels >= 1
