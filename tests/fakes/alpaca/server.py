"""The aiohttp application and `start_fake_alpaca`: REST, both websockets, control routes.

Only loopback addresses are accepted as `host`. Auth: every `/v2` REST call needs
`APCA-API-KEY-ID` / `APCA-API-SECRET-KEY`, else 401 `{"code":40110000,...}`. Unknown
routes answer 404 `{"code":40410000,"message":"endpoint not found"}`.

Control routes (no auth, for out-of-process drivers; in-process tests use the objects):
`POST /_control/time {"now": iso}`, `POST /_control/price {"symbol", "price"}`,
`POST /_control/bar {"symbol","o","h","l","c","v","start"}`,
`POST /_control/faults {"action": <Faults method>, ...kwargs}`,
`POST /_control/streams/disconnect {"abrupt": bool}`, `POST /_control/run_pending`,
`POST /_control/options {"distinct_execution_ids": bool}`, `GET /_control/events`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from .book import AccountConfig
from .engine import EngineConfig, OrderEngine
from .faults import Faults
from .market import FakeMarket
from .models import AlpacaAPIError
from .routes_data import MAX_LIMIT, DataRoutes
from .routes_trading import TradingRoutes, read_json
from .streams import MarketDataHub, TradeStreamHub
from .wire import event_json, parse_time

DEFAULT_NOW = datetime(2025, 6, 2, 14, 0, tzinfo=UTC)  # Monday 10:00 New York, RTH
UNAUTHORIZED = {"code": 40110000, "message": "request is not authorized"}
FEEDS = ("iex", "sip", "delayed_sip", "test")
_CONTROL_FAULTS = {
    "set_latency",
    "fail_next",
    "throttle_next",
    "drop_response_next",
    "set_rate_limit",
    "clear",
    "drop_next_events",
    "delay_next_events",
    "set_event_lag",
    "reject_next_stream_connects",
}

_CONTROL_OPTIONS = {"distinct_execution_ids"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _auth_middleware(key: str, secret: str) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        is_ws = request.headers.get("Upgrade", "").lower() == "websocket"
        if (
            request.path.startswith("/v2/")
            and not is_ws
            and (
                request.headers.get("APCA-API-KEY-ID") != key
                or request.headers.get("APCA-API-SECRET-KEY") != secret
            )
        ):
            return web.json_response(UNAUTHORIZED, status=401)
        try:
            return await handler(request)
        except AlpacaAPIError as exc:
            return web.json_response(exc.body(), status=exc.status)
        except web.HTTPNotFound:
            return web.json_response(
                {"code": 40410000, "message": "endpoint not found"}, status=404
            )
        except web.HTTPMethodNotAllowed:
            return web.json_response(
                {"code": 40510000, "message": "method not allowed"}, status=405
            )

    return middleware


@dataclass
class RunningFakeAlpaca:
    """A started fake. Point the SDK at `base_url` / `stream_url` / `data_url` /
    `data_stream_url`; drive it with `market`, `engine` and `faults`."""

    host: str
    port: int
    key: str
    secret: str
    market: FakeMarket
    engine: OrderEngine
    faults: Faults
    trade_stream: TradeStreamHub
    data_stream: MarketDataHub
    data_routes: DataRoutes
    runner: web.AppRunner

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def data_url(self) -> str:
        return self.base_url

    @property
    def stream_url(self) -> str:
        return f"ws://{self.host}:{self.port}/stream"

    def data_stream_url_for(self, feed: str = "iex") -> str:
        return f"ws://{self.host}:{self.port}/v2/{feed}"

    @property
    def data_stream_url(self) -> str:
        return self.data_stream_url_for("iex")

    async def disconnect_streams(self, *, abrupt: bool = False) -> int:
        """Close every trade_updates and market-data connection now."""
        trade = await self.trade_stream.disconnect(abrupt=abrupt)
        return trade + await self.data_stream.disconnect(abrupt=abrupt)

    async def stop(self) -> None:
        self.engine.close()
        await self.disconnect_streams()
        await self.runner.cleanup()

    async def __aenter__(self) -> RunningFakeAlpaca:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def _check_loopback(host: str) -> None:
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise ValueError(f"the fake binds loopback only, not {host!r}")


def _control_routes(fake: RunningFakeAlpaca) -> list[web.RouteDef]:
    async def set_time(request: web.Request) -> web.Response:
        fake.market.set_time(parse_time((await read_json(request))["now"], "now"))
        return web.json_response({"now": fake.market.now().isoformat()})

    async def set_price(request: web.Request) -> web.Response:
        body = await read_json(request)
        fake.market.set_price(body["symbol"], str(body["price"]))
        return web.json_response({"ok": True})

    async def push_bar(request: web.Request) -> web.Response:
        b = await read_json(request)
        start = parse_time(b["start"], "start") if b.get("start") else None
        fake.market.push_bar(
            b["symbol"],
            str(b["o"]),
            str(b["h"]),
            str(b["l"]),
            str(b["c"]),
            int(b.get("v", 1000)),
            start,
        )
        return web.json_response({"ok": True})

    async def faults(request: web.Request) -> web.Response:
        body = dict(await read_json(request))
        action = body.pop("action", "")
        if action not in _CONTROL_FAULTS:
            return web.json_response({"error": f"unknown action {action!r}"}, status=400)
        getattr(fake.faults, action)(**body)
        return web.json_response({"ok": True})

    async def disconnect(request: web.Request) -> web.Response:
        body = await read_json(request)
        closed = await fake.disconnect_streams(abrupt=bool(body.get("abrupt", False)))
        return web.json_response({"closed": closed})

    async def run_pending(request: web.Request) -> web.Response:
        return web.json_response({"ran": fake.engine.run_pending()})

    async def events(request: web.Request) -> web.Response:
        return web.json_response([event_json(e) for e in fake.engine.events])

    async def options(request: web.Request) -> web.Response:
        body = await read_json(request)
        if set(body) - _CONTROL_OPTIONS:
            return web.json_response({"error": f"unknown options {sorted(body)}"}, status=400)
        for name, value in body.items():
            setattr(fake.engine.config, name, bool(value))
        return web.json_response({name: getattr(fake.engine.config, name) for name in body})

    return [
        web.post("/_control/time", set_time),
        web.post("/_control/price", set_price),
        web.post("/_control/bar", push_bar),
        web.post("/_control/faults", faults),
        web.post("/_control/streams/disconnect", disconnect),
        web.post("/_control/run_pending", run_pending),
        web.get("/_control/events", events),
        web.post("/_control/options", options),
    ]


async def start_fake_alpaca(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    key: str = "test-key",
    secret: str = "test-secret",
    now: datetime = DEFAULT_NOW,
    engine_config: EngineConfig | None = None,
    account: AccountConfig | None = None,
    rate_limit: int | None = 200,
    binary_trade_frames: bool = True,
    max_bars_page: int = MAX_LIMIT,
) -> RunningFakeAlpaca:
    """Start the fake on `host:port` (port 0: any free port) and return its handle."""
    _check_loopback(host)
    market = FakeMarket(now)
    engine = OrderEngine(market, engine_config, account)
    market.engine = engine
    faults = Faults(rate_limit=rate_limit)
    trade_hub = TradeStreamHub(key, secret, faults, binary=binary_trade_frames)
    data_hub = MarketDataHub(key, secret, faults)
    engine.listeners.append(trade_hub.publish)
    market.bar_listeners.append(data_hub.publish_bar)
    data_routes = DataRoutes(market, max_bars_page)

    app = web.Application(middlewares=[faults.middleware, _auth_middleware(key, secret)])
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    fake = RunningFakeAlpaca(
        host=host,
        port=port,
        key=key,
        secret=secret,
        market=market,
        engine=engine,
        faults=faults,
        trade_stream=trade_hub,
        data_stream=data_hub,
        data_routes=data_routes,
        runner=runner,
    )
    app.add_routes(TradingRoutes(engine, market).routes())
    app.add_routes(data_routes.routes())
    app.add_routes([web.get("/stream", trade_hub.handler)])
    app.add_routes([web.get(f"/v2/{feed}", data_hub.handler) for feed in FEEDS])
    app.add_routes(_control_routes(fake))
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    fake.port = runner.addresses[0][1]
    return fake
