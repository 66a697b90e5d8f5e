"""The fake's order engine driven directly (no HTTP): fill rules and Alpaca's edge rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from tests.fakes.alpaca import (
    DEFAULT_NOW,
    AlpacaAPIError,
    EngineConfig,
    FakeMarket,
    OrderEngine,
    start_fake_alpaca,
)


def engine_at(now: datetime = DEFAULT_NOW, **config: Any) -> tuple[FakeMarket, OrderEngine]:
    market = FakeMarket(now)
    engine = OrderEngine(market, EngineConfig(**config))
    market.engine = engine
    return market, engine


def body(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"symbol": "AAPL", "qty": 10, "side": "buy", "time_in_force": "day"}
    return {**base, **fields}


def refused(engine: OrderEngine, payload: dict[str, Any]) -> AlpacaAPIError:
    with pytest.raises(AlpacaAPIError) as info:
        engine.submit(payload)
    return info.value


def test_stop_limit_rests_as_a_limit_when_gapping_through() -> None:
    market, engine = engine_at()
    market.set_price("AAPL", 100)
    order = engine.submit(body(type="stop_limit", stop_price=101, limit_price=101.5))
    market.push_bar("AAPL", 102, 103, 101.8, 102.5)  # triggered at 102 > limit: no fill
    assert order.triggered and order.status == "new"
    market.push_bar("AAPL", 102, 102.2, 101.2, 101.4)  # low <= 101.5: min(open, limit)
    assert (order.status, order.filled_avg_price) == ("filled", Decimal("101.5"))


def test_sell_stop_fills_at_min_open_stop_and_books_cash() -> None:
    market, engine = engine_at()
    market.set_price("AAPL", 100)
    engine.submit(body(type="market"))
    stop = engine.submit(body(type="stop", side="sell", stop_price=98, time_in_force="gtc"))
    market.push_bar("AAPL", 97, 97.5, 96, 96.5)  # gap below the stop: fills at the open
    assert (stop.status, stop.filled_avg_price) == ("filled", Decimal(97))
    assert engine.book.cash == Decimal(100_000) - 1000 + 970
    assert engine.book.positions == {}


def test_buy_trailing_stop_with_trail_price() -> None:
    market, engine = engine_at()
    market.set_price("AAPL", 100)
    order = engine.submit(body(type="trailing_stop", trail_price=2, time_in_force="gtc"))
    assert (order.hwm, order.stop_price) == (Decimal(100), Decimal(102))
    market.push_bar("AAPL", 99.5, 99.8, 98, 98.5)
    assert (order.hwm, order.stop_price) == (Decimal(98), Decimal(100))
    market.push_bar("AAPL", 99, 100.5, 98.8, 100.2)
    assert (order.status, order.filled_avg_price) == ("filled", Decimal(100))


def test_cancel_pending_keeps_the_shares_reserved() -> None:
    market, engine = engine_at(cancel_delay=None)
    market.set_price("AAPL", 100)
    engine.submit(body(type="market"))
    trail = engine.submit(
        body(type="trailing_stop", side="sell", trail_percent=1, time_in_force="gtc")
    )
    engine.cancel(trail.id)
    error = refused(engine, body(type="market", side="sell"))
    assert (error.status, error.code) == (403, 40310000)
    assert error.extra == {
        "symbol": "AAPL",
        "existing_qty": "10",
        "held_for_orders": "10",
        "available": "0",
    }
    engine.run_pending()
    assert trail.status == "canceled"
    assert engine.submit(body(type="market", side="sell")).status == "filled"


def test_wash_trade_rule_spares_limits_that_do_not_cross() -> None:
    market, engine = engine_at()
    market.set_price("AAPL", 100)
    engine.submit(body(type="market"))
    engine.submit(body(type="limit", limit_price=95, qty=5))  # working buy below the market
    sell = engine.submit(body(type="limit", side="sell", limit_price=105, qty=5))
    assert sell.status == "new"
    error = refused(engine, body(type="limit", side="sell", limit_price=94, qty=1))
    assert error.message == "potential wash trade detected. use complex orders"


def test_no_short_selling_by_default() -> None:
    _, engine = engine_at()
    error = refused(engine, body(type="market", side="sell", qty=1))
    assert error.message == "insufficient qty available for order (requested: 1, available: 0)"


def test_outside_rth_policies() -> None:
    night = datetime(2025, 6, 3, 1, 0, tzinfo=UTC)  # Monday 21:00 New York
    pre = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)  # Monday 08:00 New York
    _, engine = engine_at(night)
    assert engine.submit(body(type="stop", stop_price=101)).status == "accepted"
    _, engine = engine_at(pre)  # default policy `queue`: waits for the open
    assert engine.submit(body(type="stop", stop_price=101)).status == "accepted"
    _, engine = engine_at(pre, outside_rth="reject_in_extended")
    assert refused(engine, body(type="stop", stop_price=101)).status == 422
    assert engine.submit(body(type="limit", limit_price=99)).status == "accepted"
    _, engine = engine_at(night, outside_rth="reject")
    assert refused(engine, body(type="market")).status == 422


def test_extended_day_order_lives_until_20h() -> None:
    market, engine = engine_at()
    market.set_price("AAPL", 100)
    ext = engine.submit(body(type="limit", limit_price=90, extended_hours=True))
    regular = engine.submit(body(type="limit", limit_price=90, client_order_id="r"))
    market.set_time(datetime(2025, 6, 2, 21, 0, tzinfo=UTC))  # 17:00 New York
    assert (ext.status, regular.status) == ("new", "expired")
    market.push_bar("AAPL", 90.5, 90.6, 89.9, 90.1)  # after-hours bar: the extended order fills
    assert ext.status == "filled"


def test_replace_after_a_partial_fill_sizes_the_new_order() -> None:
    market, engine = engine_at(replace_delay=None)
    market.set_price("AAPL", 100)
    market.set_liquidity("AAPL", 3)
    old = engine.submit(body(type="limit", limit_price=99))
    market.push_bar("AAPL", 99.5, 99.6, 98.9, 99.2)  # 3 of 10
    new = engine.replace(old.id, {"limit_price": 98})
    assert (new.qty, old.status) == (Decimal(7), "pending_replace")
    market.push_bar("AAPL", 99.5, 99.6, 98.9, 99.2)  # the old order trades 3 more meanwhile
    engine.run_pending()
    assert (old.status, new.status, new.qty) == ("replaced", "new", Decimal(4))
    events = [(e.event, e.order["id"]) for e in engine.events]
    assert events[-2:] == [("replaced", old.id), ("new", new.id)]


def test_random_partial_fills_like_paper() -> None:
    market, engine = engine_at(random_partial_fills=1.0, seed=7)
    market.set_price("AAPL", 100)
    order = engine.submit(body(type="limit", limit_price=99, qty=100))
    while order.status != "filled":
        market.push_bar("AAPL", 99, 99.5, 98.5, 99)
    fills = [e for e in engine.events if e.event in ("partial_fill", "fill")]
    assert len(fills) > 1 and sum(e.qty or 0 for e in fills) == 100


def test_time_only_moves_forward_and_must_be_aware() -> None:
    market, _ = engine_at()
    with pytest.raises(ValueError):
        market.set_time(DEFAULT_NOW - timedelta(minutes=1))
    with pytest.raises(ValueError):
        market.set_time(datetime(2025, 6, 2, 15, 0))


async def test_control_routes_and_loopback_only() -> None:
    with pytest.raises(ValueError):
        await start_fake_alpaca(host="0.0.0.0")
    async with await start_fake_alpaca() as fake, aiohttp.ClientSession(fake.base_url) as http:
        await http.post("/_control/price", json={"symbol": "AAPL", "price": "100"})
        headers = {"APCA-API-KEY-ID": fake.key, "APCA-API-SECRET-KEY": fake.secret}
        order = {**body(type="stop", stop_price=101), "client_order_id": "ctl"}
        async with http.post("/v2/orders", json=order, headers=headers) as response:
            assert response.status == 200
        await http.post(
            "/_control/bar", json={"symbol": "AAPL", "o": 101, "h": 102, "l": 100, "c": 101.5}
        )
        async with http.get("/_control/events") as response:
            events = [e["event"] for e in await response.json()]
        assert events == ["pending_new", "new", "fill"]
        await http.post("/_control/faults", json={"action": "fail_next", "status": 503})
        async with http.get("/v2/clock", headers=headers) as response:
            assert response.status == 503
        async with http.get("/v2/nowhere", headers=headers) as response:
            assert (response.status, (await response.json())["code"]) == (404, 40410000)
        async with http.post("/_control/time", json={"now": "2025-06-02T20:30:00Z"}) as response:
            assert (await response.json())["now"].startswith("2025-06-02T20:30")
