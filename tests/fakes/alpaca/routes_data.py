"""Market data v2 REST routes: multi-symbol historical bars (paginated) and latest bars."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from .bars import BarRecord, aggregate, bar_rest_json, parse_timeframe
from .market import FakeMarket
from .models import AlpacaAPIError
from .sessions import NEW_YORK
from .wire import decode_page_token, encode_page_token, parse_time, ts

MAX_LIMIT = 10_000


class DataRoutes:
    def __init__(self, market: FakeMarket, max_page_size: int = MAX_LIMIT) -> None:
        self.market = market
        self.max_page_size = max_page_size
        """Bars per page at most, whatever `limit` asks (lower it to force pagination)."""

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/v2/stocks/bars", self.bars),
            web.get("/v2/stocks/bars/latest", self.latest_bars),
        ]

    @staticmethod
    def _symbols(request: web.Request) -> list[str]:
        symbols = [s.strip().upper() for s in request.query.get("symbols", "").split(",")]
        symbols = sorted({s for s in symbols if s})
        if not symbols:
            raise AlpacaAPIError(400, 40010001, "symbols is required")
        return symbols

    async def bars(self, request: web.Request) -> web.Response:
        q = request.query
        symbols = self._symbols(request)
        amount, unit = parse_timeframe(q.get("timeframe", ""))
        now = self.market.now()
        local_midnight = datetime.combine(now.astimezone(NEW_YORK).date(), datetime.min.time())
        start = (
            parse_time(q["start"], "start")
            if q.get("start")
            else local_midnight.replace(tzinfo=NEW_YORK)
        )
        end = parse_time(q["end"], "end") if q.get("end") else now
        limit = 1000
        if q.get("limit"):
            try:
                limit = int(q["limit"])
            except ValueError:
                raise AlpacaAPIError(400, 40010001, "invalid limit") from None
            if not 1 <= limit <= MAX_LIMIT:
                raise AlpacaAPIError(400, 40010001, f"invalid limit: exceeds {MAX_LIMIT}")
        descending = q.get("sort", "asc") == "desc"

        rows: list[BarRecord] = []
        for symbol in symbols:
            series = [b for b in self.market.bars.get(symbol, []) if start <= b.t <= end]
            series = [b for b in aggregate(series, amount, unit) if start <= b.t <= end]
            rows.extend(reversed(series) if descending else series)

        if q.get("page_token"):
            marker = decode_page_token(q["page_token"])
            keys = [(b.symbol, ts(b.t)) for b in rows]
            wanted = (marker.get("S"), marker.get("t"))
            rows = rows[keys.index(wanted) :] if wanted in keys else []

        size = min(limit, self.max_page_size)
        page, rest = rows[:size], rows[size:]
        out: dict[str, list[dict[str, Any]]] = {}
        for bar in page:
            out.setdefault(bar.symbol, []).append(bar_rest_json(bar))
        token = encode_page_token({"S": rest[0].symbol, "t": ts(rest[0].t)}) if rest else None
        return web.json_response({"bars": out, "next_page_token": token})

    async def latest_bars(self, request: web.Request) -> web.Response:
        out: dict[str, Any] = {}
        for symbol in self._symbols(request):
            series = [b for b in self.market.bars.get(symbol, []) if b.t <= self.market.now()]
            if series:
                out[symbol] = bar_rest_json(series[-1])
        return web.json_response({"bars": out})
