"""Helpers to point the real alpaca-py SDK at a running fake (tests only).

The REST clients are synchronous (requests): call them through `asyncio.to_thread` so the
fake, which runs on the test's event loop, keeps serving. The streams are driven on the
test's loop through their `_run_forever()` coroutine.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.live.stock import StockDataStream
from alpaca.trading.client import TradingClient
from alpaca.trading.stream import TradingStream

from .server import RunningFakeAlpaca


def trading_client(
    fake: RunningFakeAlpaca, *, raw_data: bool = False, retries: int = 0, timeout: float = 5.0
) -> TradingClient:
    """A TradingClient on the fake. `retries=0` turns off the SDK's hidden retry of
    429/504 (3 more attempts, 3 s apart: `RESTClient._retry`, alpaca/common/rest.py:72)."""
    client = TradingClient(fake.key, fake.secret, raw_data=raw_data, url_override=fake.base_url)
    client._retry = retries
    _with_timeout(client, timeout)
    return client


def data_client(
    fake: RunningFakeAlpaca, *, raw_data: bool = False, retries: int = 0
) -> StockHistoricalDataClient:
    client = StockHistoricalDataClient(
        fake.key, fake.secret, raw_data=raw_data, url_override=fake.data_url
    )
    client._retry = retries
    _with_timeout(client, 5.0)
    return client


def _with_timeout(client: Any, timeout: float) -> None:
    """The SDK sets no HTTP timeout; give its requests session one."""
    session = client._session
    original = session.request

    def request(method: str, url: str, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", timeout)
        return original(method, url, **kwargs)

    session.request = request


class _Recorder:
    """Collects what a stream's handler receives; `wait_for` polls until a match."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._task: asyncio.Task[None] | None = None

    async def _handler(self, item: Any) -> None:
        self.items.append(item)

    async def wait_for(self, predicate: Callable[[Any], bool], within: float = 3.0) -> Any:
        deadline = asyncio.get_running_loop().time() + within
        while True:
            for item in self.items:
                if predicate(item):
                    return item
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"no matching item in {len(self.items)} received")
            await asyncio.sleep(0.01)

    async def wait_count(self, n: int, within: float = 3.0) -> list[Any]:
        deadline = asyncio.get_running_loop().time() + within
        while len(self.items) < n:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{len(self.items)} of {n} items received")
            await asyncio.sleep(0.01)
        return list(self.items)

    async def _stop_task(self, close: Callable[[], Any]) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        with contextlib.suppress(Exception):
            await close()


class TradeUpdates(_Recorder):
    """A real `TradingStream` on the fake; `items` are TradeUpdate models (or raw dicts)."""

    def __init__(self, fake: RunningFakeAlpaca, *, raw_data: bool = False) -> None:
        super().__init__()
        self.fake = fake
        self.stream = TradingStream(
            fake.key, fake.secret, raw_data=raw_data, url_override=fake.stream_url
        )
        self.stream._reconnect_min_backoff = 0.05
        self.stream._reconnect_max_backoff = 0.2
        self.stream.subscribe_trade_updates(self._handler)

    async def start(self, within: float = 3.0) -> TradeUpdates:
        before = self.fake.trade_stream.connects
        run = self.stream._run_forever()  # type: ignore[no-untyped-call]
        self._task = asyncio.get_running_loop().create_task(run)
        await self.wait_listening(before, within)
        return self

    async def wait_listening(self, connects_before: int, within: float = 3.0) -> None:
        deadline = asyncio.get_running_loop().time() + within
        hub = self.fake.trade_stream
        while hub.connects <= connects_before or not hub.listening:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("trade stream did not start listening")
            await asyncio.sleep(0.01)

    def events(self) -> list[str]:
        return [_event(item) for item in self.items]

    def for_order(self, order_id: str) -> list[str]:
        return [_event(i) for i in self.items if _order_id(i) == str(order_id)]

    async def stop(self) -> None:
        await self._stop_task(self.stream.close)


def _event(item: Any) -> str:
    if isinstance(item, dict):
        return str(item["data"]["event"])
    return str(getattr(item.event, "value", item.event))


def _order_id(item: Any) -> str:
    if isinstance(item, dict):
        return str(item["data"]["order"]["id"])
    return str(item.order.id)


class MarketBars(_Recorder):
    """A real `StockDataStream` (msgpack) on the fake, subscribed to bars of `symbols`."""

    def __init__(
        self, fake: RunningFakeAlpaca, *symbols: str, raw_data: bool = False, feed: str = "iex"
    ) -> None:
        super().__init__()
        self.fake = fake
        self.stream = StockDataStream(
            fake.key, fake.secret, raw_data=raw_data, url_override=fake.data_stream_url_for(feed)
        )
        self.stream._reconnect_min_backoff = 0.05
        self.stream.subscribe_bars(self._handler, *symbols)
        self.symbols = {s.upper() for s in symbols}

    async def start(self, within: float = 3.0) -> MarketBars:
        self._task = asyncio.get_running_loop().create_task(self.stream._run_forever())
        deadline = asyncio.get_running_loop().time() + within
        hub = self.fake.data_stream
        while not any(self.symbols <= subs["bars"] for subs in hub.subs.values()):
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("market data stream did not subscribe")
            await asyncio.sleep(0.01)
        return self

    async def stop(self) -> None:
        await self._stop_task(self.stream.close)
