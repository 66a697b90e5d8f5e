"""Trading API v2 routes (`/v2/...`), answering in Alpaca's shapes and status codes."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from aiohttp import web

from .engine import OrderEngine
from .market import FakeMarket
from .models import AlpacaAPIError, not_found
from .sessions import NEW_YORK
from .wire import (
    activity_json,
    asset_json,
    calendar_json,
    order_json,
    parse_bool,
    parse_decimal,
    parse_time,
    ts_ny,
)


def reply(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def _int(params: Any, name: str, default: int, maximum: int) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise AlpacaAPIError(422, 40010001, f"invalid {name}") from None
    return max(1, min(value, maximum))


async def read_json(request: web.Request) -> Any:
    text = await request.text()
    try:
        return json.loads(text) if text else {}
    except ValueError:
        raise AlpacaAPIError(400, 40010000, "request body format is invalid") from None


class TradingRoutes:
    def __init__(self, engine: OrderEngine, market: FakeMarket) -> None:
        self.engine = engine
        self.market = market

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/v2/account", self.account),
            web.get("/v2/clock", self.clock),
            web.get("/v2/calendar", self.calendar),
            web.post("/v2/orders", self.submit),
            web.get("/v2/orders", self.list_orders),
            web.delete("/v2/orders", self.cancel_all),
            web.get("/v2/orders:by_client_order_id", self.by_client_order_id),
            web.get("/v2/orders/{order_id}", self.get_order),
            web.patch("/v2/orders/{order_id}", self.replace),
            web.delete("/v2/orders/{order_id}", self.cancel),
            web.get("/v2/positions", self.positions),
            web.delete("/v2/positions", self.close_all),
            web.get("/v2/positions/{symbol}", self.position),
            web.delete("/v2/positions/{symbol}", self.close_position),
            web.get("/v2/account/activities", self.activities),
            web.get("/v2/account/activities/{activity_type}", self.activities),
            web.get("/v2/assets/{symbol}", self.asset),
        ]

    async def account(self, request: web.Request) -> web.Response:
        return reply(self.engine.account_json())

    async def clock(self, request: web.Request) -> web.Response:
        now = self.market.now()
        cal = self.market.calendar
        return reply(
            {
                "timestamp": ts_ny(now),
                "is_open": cal.is_open(now),
                "next_open": ts_ny(cal.next_open(now)),
                "next_close": ts_ny(cal.next_close(now)),
            }
        )

    async def calendar(self, request: web.Request) -> web.Response:
        today = self.market.now().astimezone(NEW_YORK).date()
        start = request.query.get("start")
        end = request.query.get("end")
        first = parse_time(start, "start").date() if start else today
        last = parse_time(end, "end").date() if end else first + timedelta(days=30)
        return reply([calendar_json(s) for s in self.market.calendar.sessions(first, last)])

    # ------------------------------------------------------------------ orders
    async def submit(self, request: web.Request) -> web.Response:
        order = self.engine.submit(await read_json(request))
        return reply(order_json(order))

    async def list_orders(self, request: web.Request) -> web.Response:
        q = request.query
        status = q.get("status", "open")
        if status not in ("open", "closed", "all"):
            raise AlpacaAPIError(422, 40010001, f"invalid status: {status}")
        direction = q.get("direction", "desc")
        if direction not in ("asc", "desc"):
            raise AlpacaAPIError(422, 40010001, f"invalid direction: {direction}")
        symbols = {s.strip().upper() for s in q.get("symbols", "").split(",") if s.strip()}
        orders = self.engine.orders.query(
            status=status,
            limit=_int(q, "limit", 50, 500),
            after=parse_time(q["after"], "after") if q.get("after") else None,
            until=parse_time(q["until"], "until") if q.get("until") else None,
            direction=direction,
            symbols=symbols or None,
            side=q.get("side") or None,
        )
        return reply([order_json(o) for o in orders])  # `nested`: simple orders, no legs

    async def get_order(self, request: web.Request) -> web.Response:
        order = self.engine.order(request.match_info["order_id"])
        return reply(order_json(order))

    async def by_client_order_id(self, request: web.Request) -> web.Response:
        cid = request.query.get("client_order_id")
        if not cid:
            raise AlpacaAPIError(422, 40010001, "client_order_id is required")
        return reply(order_json(self.engine.orders.by_client_id(cid)))

    async def replace(self, request: web.Request) -> web.Response:
        new = self.engine.replace(request.match_info["order_id"], await read_json(request))
        return reply(order_json(new))

    async def cancel(self, request: web.Request) -> web.Response:
        self.engine.cancel(request.match_info["order_id"])
        return web.Response(status=204)

    async def cancel_all(self, request: web.Request) -> web.Response:
        results = [
            {"id": order.id, "status": status, "body": body or order_json(order)}
            for order, status, body in self.engine.cancel_all()
        ]
        return reply(results, status=207)

    # ------------------------------------------------------------------ positions
    async def positions(self, request: web.Request) -> web.Response:
        return reply(self.engine.book.positions_json(self.engine.open_orders()))

    async def position(self, request: web.Request) -> web.Response:
        symbol = request.match_info["symbol"].upper()
        if symbol not in self.engine.book.positions:
            raise not_found("position does not exist")
        return reply(self.engine.book.position_json(symbol, self.engine.open_orders()))

    async def close_position(self, request: web.Request) -> web.Response:
        q = request.query
        order = self.engine.close_position(
            request.match_info["symbol"],
            qty=parse_decimal(q["qty"], "qty") if q.get("qty") else None,
            percentage=parse_decimal(q["percentage"], "percentage")
            if q.get("percentage")
            else None,
        )
        return reply(order_json(order))

    async def close_all(self, request: web.Request) -> web.Response:
        cancel = parse_bool(request.query.get("cancel_orders", False))
        return reply(self.engine.close_all(cancel), status=207)

    # ------------------------------------------------------------------ activities
    async def activities(self, request: web.Request) -> web.Response:
        q = request.query
        kinds = request.match_info.get("activity_type") or q.get("activity_types", "")
        wanted = {k.strip().upper() for k in kinds.split(",") if k.strip()}
        if wanted and "FILL" not in wanted:
            return reply([])
        account_id = self.engine.book.config.account_id
        items = [activity_json(e, account_id) for e in self.engine.book.executions]
        day = q.get("date")
        after = parse_time(q["after"], "after") if q.get("after") else None
        until = parse_time(q["until"], "until") if q.get("until") else None

        def keep(item: dict[str, Any]) -> bool:
            moment = parse_time(item["transaction_time"], "transaction_time")
            local_day = moment.astimezone(NEW_YORK).date().isoformat()
            return (
                (day is None or local_day == day)
                and (after is None or moment > after)
                and (until is None or moment < until)
            )

        items = [i for i in items if keep(i)]
        if q.get("direction", "desc") == "desc":
            items.reverse()
        token = q.get("page_token")
        if token:
            ids = [i["id"] for i in items]
            items = items[ids.index(token) + 1 :] if token in ids else []
        return reply(items[: _int(q, "page_size", 100, 100)])

    async def asset(self, request: web.Request) -> web.Response:
        symbol = request.match_info["symbol"].upper()
        return reply(asset_json(symbol, self.engine.book.exchange(symbol)))
