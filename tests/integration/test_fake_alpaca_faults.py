"""Fault injection and streams of the fake Alpaca, seen by the unmodified alpaca-py SDK."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import msgpack
import pytest
import requests
from alpaca.common.exceptions import APIError
from alpaca.data.models import Bar
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.requests import StopOrderRequest

from tests.fakes.alpaca import RunningFakeAlpaca, start_fake_alpaca
from tests.fakes.alpaca.sdk_helpers import MarketBars, TradeUpdates, trading_client


@pytest.fixture
async def fake() -> AsyncIterator[RunningFakeAlpaca]:
    async with await start_fake_alpaca() as running:
        running.market.set_price("AAPL", 100)
        yield running


async def call(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


def stop_buy(cid: str | None = None, stop: float = 101) -> StopOrderRequest:
    return StopOrderRequest(
        symbol="AAPL",
        qty=10,
        side=OrderSide.BUY,
        time_in_force=TimeInForce.DAY,
        stop_price=stop,
        client_order_id=cid,
    )


async def test_429_with_rate_limit_headers(fake: RunningFakeAlpaca) -> None:
    client = trading_client(fake)  # retries off
    fake.faults.throttle_next("POST /v2/orders")
    with pytest.raises(APIError) as info:
        await call(client.submit_order, stop_buy("t-1"))
    error = info.value
    assert (error.status_code, error.code) == (429, 42910000)
    headers = error.response.headers
    assert headers["X-RateLimit-Limit"] == "200" and headers["X-RateLimit-Remaining"] == "0"
    assert int(headers["X-RateLimit-Reset"]) >= int(datetime.now(UTC).timestamp())
    assert fake.engine.orders.query(status="all") == []  # refused before reaching the engine

    ok = await call(client.get_clock)
    assert ok.is_open  # the next call passes; every answer carries the headers


async def test_sdk_hidden_retry_turns_a_lost_submit_into_a_duplicate(
    fake: RunningFakeAlpaca,
) -> None:
    client = trading_client(fake, retries=1)
    client._retry_wait = 0  # the SDK would sleep 3 s (alpaca/common/rest.py:133)
    fake.faults.drop_response_next("POST /v2/orders", mode="504")
    with pytest.raises(APIError) as info:
        await call(client.submit_order, stop_buy("lost-1"))
    assert (info.value.status_code, info.value.code) == (422, 40010001)  # the retry's answer
    assert (await call(client.get_order_by_client_id, "lost-1")).client_order_id == "lost-1"

    fake.faults.throttle_next("POST /v2/orders")
    order = await call(client.submit_order, stop_buy("after-429"))  # 429 then a retry: fine
    assert order.client_order_id == "after-429"


async def test_real_rate_limiter(fake: RunningFakeAlpaca) -> None:
    fake.faults.set_rate_limit(3)
    client = trading_client(fake)
    for _ in range(3):
        await call(client.get_clock)
    with pytest.raises(APIError) as info:
        await call(client.get_clock)
    assert info.value.status_code == 429
    fake.faults.set_rate_limit(None)
    await call(client.get_clock)


async def test_5xx_for_the_next_requests(fake: RunningFakeAlpaca) -> None:
    client = trading_client(fake)
    fake.faults.fail_next("GET /v2/account", n=2, status=503)
    for _ in range(2):
        with pytest.raises(APIError) as info:
            await call(client.get_account)
        assert (info.value.status_code, info.value.code) == (503, 50310000)
    assert (await call(client.get_account)).status == "ACTIVE"

    fake.faults.fail_next("*", status=504)  # a gateway page, not JSON
    with pytest.raises(APIError) as info:
        await call(client.get_account)
    assert info.value.status_code == 504
    with pytest.raises(json.JSONDecodeError):
        _ = info.value.code


@pytest.mark.parametrize("mode", ["504", "close"])
async def test_accept_then_drop_response(fake: RunningFakeAlpaca, mode: str) -> None:
    client = trading_client(fake)
    fake.faults.drop_response_next("POST /v2/orders", mode=mode)  # type: ignore[arg-type]
    expected = APIError if mode == "504" else requests.ConnectionError
    with pytest.raises(expected):
        await call(client.submit_order, stop_buy("amb-1"))
    found = await call(client.get_order_by_client_id, "amb-1")  # the order exists
    assert found.client_order_id == "amb-1"
    assert fake.faults.dropped_responses == ["POST /v2/orders"]


async def test_latency_beyond_the_client_timeout(fake: RunningFakeAlpaca) -> None:
    client = trading_client(fake, timeout=0.2)
    fake.faults.set_latency("GET /v2/clock", 0.5)
    with pytest.raises(requests.Timeout):
        await call(client.get_clock)
    fake.faults.set_latency("GET /v2/clock", 0)
    assert (await call(client.get_clock)).is_open


async def test_stream_disconnect_reconnects_without_replay(fake: RunningFakeAlpaca) -> None:
    updates = await TradeUpdates(fake).start()
    client = trading_client(fake)
    connects = fake.trade_stream.connects
    assert await fake.trade_stream.disconnect() == 1
    first = await call(client.submit_order, stop_buy("during-gap"))  # events sent to nobody
    await asyncio.sleep(0.02)
    await updates.wait_listening(connects)  # the SDK reconnected by itself
    second = await call(client.submit_order, stop_buy("after-gap", stop=102))
    await updates.wait_for(lambda u: u.event == "new" and u.order.id == second.id)
    assert updates.for_order(str(first.id)) == []  # nothing replayed: reconcile over REST
    await updates.stop()


async def test_abrupt_disconnect_and_refused_reconnect(fake: RunningFakeAlpaca) -> None:
    updates = await TradeUpdates(fake).start()
    connects = fake.trade_stream.connects
    fake.faults.reject_next_stream_connects(1)
    await fake.trade_stream.disconnect(abrupt=True)
    await updates.wait_listening(connects)  # after one 429 refusal
    order = await call(trading_client(fake).submit_order, stop_buy())
    await updates.wait_for(lambda u: u.event == "new" and u.order.id == order.id)
    await updates.stop()


async def test_dropped_and_late_events(fake: RunningFakeAlpaca) -> None:
    updates = await TradeUpdates(fake).start()
    client = trading_client(fake)
    fake.faults.drop_next_events(1)  # pending_new is lost
    lost = await call(client.submit_order, stop_buy())
    await updates.wait_for(lambda u: u.order.id == lost.id and u.event == "new")
    assert updates.for_order(str(lost.id)) == ["new"]
    assert [r.event for r in fake.trade_stream.dropped] == ["pending_new"]

    fake.faults.delay_next_events(1, 0.2)  # pending_new arrives after new
    late = await call(client.submit_order, stop_buy(stop=102))
    await updates.wait_for(lambda u: u.order.id == late.id and u.event == "pending_new")
    assert updates.for_order(str(late.id)) == ["new", "pending_new"]
    await updates.stop()


@pytest.mark.parametrize("raw", [False, True])
async def test_market_data_bar_arrives_over_msgpack(fake: RunningFakeAlpaca, raw: bool) -> None:
    bars = await MarketBars(fake, "AAPL", raw_data=raw).start()
    start = datetime(2025, 6, 2, 14, 0, tzinfo=UTC)
    fake.market.push_bar("MU", 50, 51, 49, 50.5, 100, start)  # not subscribed
    fake.market.push_bar("AAPL", 100, 101.5, 99.5, 101, 12_345, start, trade_count=42)
    item = (await bars.wait_count(1))[0]
    if raw:
        assert item["T"] == "b" and item["S"] == "AAPL" and item["n"] == 42
        assert isinstance(item["t"], msgpack.Timestamp)
        assert item["t"].to_datetime() == start
    else:
        assert isinstance(item, Bar)
        assert (item.symbol, item.timestamp, item.close, item.volume) == (
            "AAPL",
            start,
            101.0,
            12_345,
        )
        assert item.vwap is not None and item.trade_count == 42
    assert fake.data_stream.codecs and all(fake.data_stream.codecs.values())  # msgpack
    await bars.stop()
