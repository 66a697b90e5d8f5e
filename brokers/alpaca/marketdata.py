"""Alpaca market data as `Bar`s: a live 1-minute `BarFeed` and paginated history.

Live: the SDK's `StockDataStream` (msgpack; IEX by default, SIP by the account's
`data_feed`) driven on our loop through its `_run_forever()` coroutine, with `raw_data`
so a message is a dict. Its own reconnect loop handles dropped sockets (and resubscribes);
a supervisor restarts the coroutine should it ever return or raise. The `b` messages are
CLOSED minute bars (Alpaca emits a bar after its minute ends; `updatedBars` corrections
are not subscribed). The feed keeps per-symbol time order (a repeated or older bar is
dropped), records each bar with the `BarRecorder`, and by default passes on only
regular-session bars, the same rule as the replay feed.

Prices arrive as floats (msgpack / JSON numbers): `Decimal(str(x))` recovers the API's
digits and the 4-decimal grid of the data format is applied, so live, recorded and
replayed bars compare equal.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
from collections.abc import AsyncIterator, Awaitable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from alpaca.data.enums import DataFeed
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.live.stock import StockDataStream
from loguru import logger

from brokers.alpaca.config import AlpacaEndpoint
from brokers.alpaca.mapping import MappingError, dec, parse_ts
from brokers.alpaca.recorder import BarRecorder
from brokers.alpaca.transport import RetryPolicy, Transport, prepare_client
from core.calendar import TradingCalendar, xnys
from core.clock import Clock
from core.domain import Symbol
from core.marketdata.bar import Bar
from core.settings import BrokerCredentials

GRID = Decimal("0.0001")  # the data format's 4 decimals
ONE_MINUTE = timedelta(minutes=1)
BARS_PAGE = 10_000
MAX_PAGES = 1_000
_TIMEFRAME = re.compile(r"^(\d+)(Min|Hour|Day)$")


def price(value: Any, field: str = "price") -> Decimal:
    return dec(value, field).quantize(GRID, rounding=ROUND_HALF_EVEN)


def timeframe_size(timeframe: str) -> timedelta:
    match = _TIMEFRAME.match(timeframe)
    if match is None:
        raise ValueError(f"timeframe {timeframe!r}: expected <n>Min, <n>Hour or <n>Day")
    amount, unit = int(match.group(1)), match.group(2)
    return {"Min": timedelta(minutes=amount), "Hour": timedelta(hours=amount)}.get(
        unit, timedelta(days=amount)
    )


def _bar_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    to_datetime = getattr(value, "to_datetime", None)  # msgpack.Timestamp
    if callable(to_datetime):
        moment = to_datetime()
        if isinstance(moment, datetime):
            return moment.astimezone(UTC)
    parsed = parse_ts(value)
    if parsed is None:
        raise MappingError(f"bar time {value!r} is unreadable")
    return parsed


def bar_from_json(symbol: str, data: Mapping[str, Any], size: timedelta = ONE_MINUTE) -> Bar:
    """A bar from the stream (`{"T":"b","S",...}`) or from REST (`{"t","o",...}`)."""
    return Bar(
        symbol=Symbol(symbol),
        start=_bar_time(data.get("t")),
        size=size,
        open=price(data.get("o"), "o"),
        high=price(data.get("h"), "h"),
        low=price(data.get("l"), "l"),
        close=price(data.get("c"), "c"),
        volume=int(dec(data.get("v", 0), "v")),
    )


# A data stream that lived this long (clock seconds) was healthy: reset the backoff.
_HEALTHY_AFTER_SECONDS = 30.0


class AlpacaBarFeed:
    """Live closed 1-minute bars for `symbols`; each `async for` gets its own queue."""

    def __init__(
        self,
        symbols: Iterable[str],
        credentials: BrokerCredentials,
        endpoint: AlpacaEndpoint,
        clock: Clock,
        *,
        recorder: BarRecorder | None = None,
        calendar: TradingCalendar | None = None,
        regular_only: bool = True,
        restart_backoff: tuple[float, float] = (1.0, 60.0),
        sdk_reconnect_backoff: tuple[float, float] = (1.0, 30.0),
        close_seconds: float = 5.0,
    ) -> None:
        # Each step of `close()` waits at most this long (real time; see close()).
        self._close_seconds = close_seconds
        self._symbols = frozenset(s.upper() for s in symbols)
        if not self._symbols:
            raise ValueError("a bar feed needs at least one symbol")
        self._creds = credentials
        self._endpoint = endpoint
        self._clock = clock
        self._recorder = recorder
        self._calendar = calendar
        self._regular_only = regular_only
        self._backoff = restart_backoff
        self._sdk_backoff = sdk_reconnect_backoff
        self._last: dict[str, datetime] = {}
        self._queues: list[asyncio.Queue[Bar | None]] = []
        self._task: asyncio.Task[None] | None = None
        self._stream: StockDataStream | None = None
        self._closed = False
        self.received = 0
        self.dropped = 0

    @property
    def symbols(self) -> frozenset[str]:
        return self._symbols

    def __aiter__(self) -> AsyncIterator[Bar]:
        queue: asyncio.Queue[Bar | None] = asyncio.Queue()
        if self._closed:
            queue.put_nowait(None)
        self._queues.append(queue)
        self.start()
        return self._drain(queue)

    async def _drain(self, queue: asyncio.Queue[Bar | None]) -> AsyncIterator[Bar]:
        while (bar := await queue.get()) is not None:
            yield bar

    def start(self) -> None:
        if not self._closed and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._supervise())

    async def close(self) -> None:
        """Stop the stream within `close_seconds` (real time) and end the iterators.

        The SDK is first told to stop (`stop_ws`: its reconnect loop ends and its backoff
        wait is cut short), then the task is cancelled. Waiting for that task, or for the
        SDK's `close()`, is bounded and never assumes the cancel is honoured: websockets'
        legacy close swallows a cancellation while it waits for the closing handshake,
        and the SDK would then carry on reconnecting (SIGTERM hung over 90 s)."""
        self._closed = True
        stream = self._stream
        if stream is not None:
            await _bounded("stop_ws", stream.stop_ws(), self._close_seconds)
        if self._task is not None:
            self._task.cancel()
            await _bounded("stream task", _settled(self._task), self._close_seconds)
        if stream is not None:
            await _bounded("close", stream.close(), self._close_seconds)
        for queue in self._queues:
            queue.put_nowait(None)

    # --- the stream ----------------------------------------------------------------------

    def _new_stream(self) -> StockDataStream:
        feed = DataFeed.SIP if self._endpoint.feed == "sip" else DataFeed.IEX
        stream = StockDataStream(
            self._creds.key_id.get_secret_value(),
            self._creds.secret_key.get_secret_value(),
            raw_data=True,
            feed=feed,
            url_override=self._endpoint.data_stream_url,
        )
        # The SDK's own reconnect after a dropped socket (it resubscribes): real time.
        stream._reconnect_min_backoff, stream._reconnect_max_backoff = self._sdk_backoff
        stream.subscribe_bars(self._on_message, *sorted(self._symbols))
        return stream

    async def _supervise(self) -> None:
        failures = 0
        while not self._closed:
            self._stream = self._new_stream()
            started = self._clock.now()
            try:
                await self._stream._run_forever()
                logger.warning("alpaca bars: the data stream stopped; restarting")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.error("alpaca bars: data stream failed: {}: {}", type(exc).__name__, exc)
            await _bounded("close", self._stream.close(), 2.0)
            # A stream that stayed up a while starts the backoff afresh.
            if (self._clock.now() - started).total_seconds() >= _HEALTHY_AFTER_SECONDS:
                failures = 0
            failures += 1
            low, high = self._backoff
            # Capped exponent: 2.0 ** 1024 overflows and would kill this supervisor.
            ceiling = min(high, low * 2.0 ** min(failures - 1, 30))
            await self._clock.sleep(ceiling / 2 + random.uniform(0, ceiling / 2))

    async def _on_message(self, message: Any) -> None:
        """The SDK's handler: never raises (a bad message must not stop the stream)."""
        try:
            symbol = str(message.get("S") or "").upper()
            bar = bar_from_json(symbol, message)
        except (MappingError, ValueError, TypeError, AttributeError) as exc:
            self.dropped += 1
            logger.error("alpaca bars: unreadable bar message dropped: {}", exc)
            return
        self.accept(bar)

    def accept(self, bar: Bar) -> bool:
        """Order, filter, record and publish one closed bar; False when dropped."""
        self.received += 1
        last = self._last.get(bar.symbol)
        if bar.symbol not in self._symbols or (last is not None and bar.start <= last):
            self.dropped += 1
            return False
        self._last[bar.symbol] = bar.start
        calendar = self._calendar or xnys()
        if self._regular_only and calendar.session_for_instant(bar.start) is None:
            return False
        if self._recorder is not None:
            try:
                self._recorder.record(bar)
            except OSError as exc:  # a full disk must not stop live data
                logger.error("alpaca bars: could not record {}: {}", bar.symbol, exc)
        for queue in self._queues:
            queue.put_nowait(bar)
        return True


async def _settled(task: asyncio.Task[None]) -> None:
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


# Given-up close steps, referenced until they end (asyncio keeps only weak references).
_abandoned: set[asyncio.Task[Any]] = set()


async def _bounded(what: str, work: Awaitable[Any], seconds: float) -> bool:
    """Await `work` for at most `seconds` of loop time, in its own task so that a
    swallowed cancellation cannot hold the caller; on time-out it is cancelled, left
    behind and logged."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if task in done:
        if not task.cancelled() and task.exception() is not None:
            logger.debug("alpaca bars: {} failed: {!r}", what, task.exception())
        return True
    task.cancel()
    _abandoned.add(task)
    task.add_done_callback(_abandoned.discard)
    logger.warning("alpaca bars: data stream {} did not end within {:.1f} s", what, seconds)
    return False


class AlpacaHistoricalBars:
    """Historical bars for warm-up, every page (`next_page_token`) fetched with our
    retry policy: one failed page is retried alone, not the whole download."""

    def __init__(
        self,
        credentials: BrokerCredentials,
        endpoint: AlpacaEndpoint,
        clock: Clock,
        *,
        policy: RetryPolicy | None = None,
    ) -> None:
        self._http = Transport(clock, policy or RetryPolicy(), "data")
        self._feed = endpoint.feed
        self._client = StockHistoricalDataClient(
            credentials.key_id.get_secret_value(),
            credentials.secret_key.get_secret_value(),
            raw_data=True,
            url_override=endpoint.data_url,
        )
        prepare_client(self._client, self._http.policy, self._http.requests)

    @property
    def requests_sent(self) -> int:
        return self._http.requests.value

    async def bars(
        self,
        symbols: Iterable[str],
        start: datetime,
        end: datetime | None = None,
        *,
        timeframe: str = "1Min",
        feed: str | None = None,
        adjustment: str = "raw",
    ) -> dict[str, list[Bar]]:
        """Bars per symbol in time order, start <= bar start <= end."""
        size = timeframe_size(timeframe)
        params: dict[str, Any] = {
            "symbols": ",".join(sorted({s.upper() for s in symbols})),
            "timeframe": timeframe,
            "start": start.astimezone(UTC).isoformat(),
            "adjustment": adjustment,
            "feed": feed or self._feed,
            "limit": BARS_PAGE,
        }
        if end is not None:
            params["end"] = end.astimezone(UTC).isoformat()
        out: dict[str, list[Bar]] = {}
        for _ in range(MAX_PAGES):
            query = dict(params)

            def fetch(q: dict[str, Any] = query) -> Any:
                return self._client.get("/stocks/bars", q)

            page: Mapping[str, Any] = await self._http.read("bars", fetch)
            for symbol, items in (page.get("bars") or {}).items():
                series = out.setdefault(symbol, [])
                series.extend(bar_from_json(symbol, item, size) for item in items or [])
            token = page.get("next_page_token")
            if not token:
                break
            params["page_token"] = token
        else:
            logger.warning("alpaca bars: stopped after {} pages", MAX_PAGES)
        return {symbol: sorted(series, key=lambda b: b.start) for symbol, series in out.items()}

    async def close(self) -> None:
        await asyncio.to_thread(self._client._session.close)


__all__ = [
    "AlpacaBarFeed",
    "AlpacaHistoricalBars",
    "bar_from_json",
    "price",
    "timeframe_size",
]
