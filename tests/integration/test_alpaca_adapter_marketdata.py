"""Alpaca market data against the fake: paginated history and the live msgpack bar feed,
recorded in the shared data format and readable by the replay loader."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from pydantic import SecretStr

from brokers.alpaca import (
    AlpacaBarFeed,
    AlpacaHistoricalBars,
    BarRecorder,
    alpaca_endpoint_for,
)
from core.calendar import xnys
from core.clock import NEW_YORK, SimClock
from core.marketdata.bar import Bar
from core.marketdata.loader import read_intraday
from core.settings import BrokerCredentials
from tests.fakes.alpaca import DEFAULT_NOW, BarRecord, RunningFakeAlpaca, start_fake_alpaca
from tests.integration.test_alpaca_adapter_support import ACCOUNT, FAST, driven_clock, eventually


def creds(fake: RunningFakeAlpaca) -> BrokerCredentials:
    return BrokerCredentials(SecretStr(fake.key), SecretStr(fake.secret))


def ny(hour: int, minute: int, day: int = 2, month: int = 6) -> datetime:
    return datetime(2025, month, day, hour, minute, tzinfo=NEW_YORK)


FRIDAY = (30, 5)  # 2025-05-30, the session before the fake's Monday


def history(symbol: str, first: datetime, n: int, base: str) -> list[BarRecord]:
    out = []
    for k in range(n):
        o = Decimal(base) + Decimal(k) / 100
        out.append(
            BarRecord(
                symbol, (first + timedelta(minutes=k)).astimezone(UTC), o, o + 1, o - 1, o, 100 + k
            )
        )
    return out


async def test_historical_bars_follow_next_page_token_and_retry_a_page() -> None:
    async with await start_fake_alpaca(max_bars_page=50) as fake, driven_clock() as clock:
        fake.market.add_history(history("AAPL", ny(9, 30, *FRIDAY), 120, "191.5234"))
        fake.market.add_history(history("MSFT", ny(9, 30, *FRIDAY), 30, "5.8765"))
        endpoint = alpaca_endpoint_for(
            ACCOUNT, {}, chat_confirmed=False, url_override=fake.base_url
        )
        hist = AlpacaHistoricalBars(creds(fake), endpoint, clock, policy=FAST)
        fake.faults.fail_next("GET /v2/stocks/bars", n=1, status=503)
        try:
            bars = await hist.bars(["msft", "AAPL"], start=ny(0, 0, *FRIDAY))
            empty = await hist.bars(["AAPL"], start=ny(9, 30, day=3), end=ny(16, 0, day=3))
        finally:
            await hist.close()
    assert hist.requests_sent == 1 + 3 + 1  # the 503, three pages of <= 50, the empty one
    assert empty == {}
    aapl, msft = bars["AAPL"], bars["MSFT"]
    assert (len(aapl), len(msft)) == (120, 30)
    assert aapl[0].open == Decimal("191.5234") and str(aapl[0].open) == "191.5234"
    assert aapl[0].start == ny(9, 30, *FRIDAY) and aapl[0].size == timedelta(minutes=1)
    assert aapl[-1].close == Decimal("192.7134") and aapl[-1].volume == 219
    assert (msft[3].open, msft[3].low) == (Decimal("5.9065"), Decimal("4.9065"))
    assert all(b.start < c.start for b, c in itertools.pairwise(aapl))


async def test_live_bars_from_msgpack_reach_the_feed_and_the_csv(tmp_path: Path) -> None:
    async with await start_fake_alpaca() as fake:
        endpoint = alpaca_endpoint_for(
            ACCOUNT, {}, chat_confirmed=False, url_override=fake.base_url
        )
        assert endpoint.data_stream_url.endswith("/v2/iex")
        recorder = BarRecorder(tmp_path, xnys())
        feed = AlpacaBarFeed(
            ["AAPL"],
            creds(fake),
            endpoint,
            SimClock(DEFAULT_NOW),
            recorder=recorder,
            calendar=xnys(),
            sdk_reconnect_backoff=(0.05, 0.1),
        )
        received: list[Bar] = []

        async def consume() -> None:
            async for bar in feed:
                received.append(bar)

        consumer = asyncio.get_running_loop().create_task(consume())
        try:
            await eventually(
                lambda: any("AAPL" in s["bars"] for s in fake.data_stream.subs.values())
            )
            fake.market.push_bar("AAPL", "191.5234", "191.9", "191.4", "191.75", 1200, ny(10, 1))
            fake.market.push_bar("AAPL", "191.5234", "191.9", "191.4", "191.75", 1200, ny(10, 1))
            await eventually(lambda: feed.received == 2)
            await fake.disconnect_streams()  # the SDK reconnects and resubscribes
            await eventually(lambda: fake.data_stream.connects == 2 and bool(fake.data_stream.subs))
            await eventually(
                lambda: any("AAPL" in s["bars"] for s in fake.data_stream.subs.values())
            )
            fake.market.push_bar("AAPL", "191.75", "192.1", "191.7", "192.0", 900, ny(10, 2))
            fake.market.push_bar("AAPL", "192", "192.5", "191.9", "192.2", 500, ny(16, 5))
            await eventually(lambda: feed.received == 4)
        finally:
            await feed.close()
            await asyncio.wait_for(consumer, 2)
    assert [(b.start, b.open, b.high, b.volume) for b in received] == [
        (ny(10, 1), Decimal("191.5234"), Decimal("191.9000"), 1200),
        (ny(10, 2), Decimal("191.7500"), Decimal("192.1000"), 900),
    ]  # the repeated 10:01 bar is dropped, the 16:05 after-hours bar is not passed on
    assert feed.dropped == 1 and recorder.written == 2
    path = tmp_path / "2025-06-02" / "AAPL.csv"
    assert path.read_text().splitlines() == [
        "timestamp,open,high,low,close,volume",
        "2025-06-02T10:01:00-04:00,191.5234,191.9000,191.4000,191.7500,1200",
        "2025-06-02T10:02:00-04:00,191.7500,192.1000,191.7000,192.0000,900",
    ]
    raw = read_intraday(path)  # the replay feed's own reader accepts it
    assert raw.symbol == "AAPL" and list(raw.open) == [1915234, 1917500]


def test_recorder_resumes_a_day_file_after_a_restart(tmp_path: Path) -> None:
    def bar(minute: int) -> Bar:
        p = Decimal("100.25")
        return Bar("AAPL", ny(10, minute), timedelta(minutes=1), p, p, p, p, 10)  # type: ignore[arg-type]

    first = BarRecorder(tmp_path, xnys())
    assert first.record(bar(1)) and first.record(bar(2)) and not first.record(bar(2))
    again = BarRecorder(tmp_path, xnys())  # a new process, same day
    assert not again.record(bar(2)) and again.record(bar(3))
    assert not again.record(Bar("AAPL", ny(9, 29), timedelta(minutes=1), *(Decimal(1),) * 4, 1))  # type: ignore[arg-type]
    lines = (tmp_path / "2025-06-02" / "AAPL.csv").read_text().splitlines()
    assert [line[11:16] for line in lines[1:]] == ["10:01", "10:02", "10:03"]
