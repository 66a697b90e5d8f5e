"""Fault injection for the fake: latency, 5xx, 429, a real rate limiter, lost responses,
and stream faults (dropped / delayed events; disconnects live on the stream hubs).

Routes are named `"METHOD /path"` with the path as registered (`"POST /v2/orders"`,
`"DELETE /v2/orders/{order_id}"`), or a concrete path (`"GET /v2/orders/<uuid>"`), a path
alone for any method (`"/v2/orders"`), or `"*"` for every REST route.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from aiohttp import web

DropMode = Literal["504", "close"]

_DEFAULT_BODIES = {
    500: json.dumps({"code": 50010000, "message": "internal server error"}),
    502: "<html><body><h1>502 Bad Gateway</h1></body></html>",
    503: json.dumps({"code": 50310000, "message": "service unavailable"}),
    504: "<html><body><h1>504 Gateway Time-out</h1></body></html>",
}
RATE_LIMITED = json.dumps({"code": 42910000, "message": "rate limit exceeded"})


@dataclass
class _Rule:
    route: str
    kind: Literal["fail", "throttle", "drop"]
    remaining: int
    status: int = 500
    body: str | None = None
    mode: DropMode = "504"
    retry_after: float | None = None


@dataclass
class StreamFaults:
    drop_next: int = 0
    delays: deque[float] = field(default_factory=deque)
    lag: float = 0.0

    def take_delay(self) -> float:
        return self.delays.popleft() if self.delays else 0.0


class Faults:
    def __init__(self, rate_limit: int | None = 200, window: float = 60.0) -> None:
        self.rate_limit = rate_limit
        self.window = window
        self.latency: dict[str, float] = {}
        self.stream = StreamFaults()
        self.reject_stream_connects = 0
        self.dropped_responses: list[str] = []
        self._rules: list[_Rule] = []
        self._hits: deque[float] = deque()

    # ------------------------------------------------------------------ REST
    def set_latency(self, route: str = "*", seconds: float = 0.0) -> None:
        """Delay every response on `route` by `seconds` (0 removes it)."""
        if seconds <= 0:
            self.latency.pop(route, None)
        else:
            self.latency[route] = seconds

    def fail_next(
        self, route: str = "*", n: int = 1, status: int = 500, body: str | None = None
    ) -> None:
        """The next `n` requests on `route` get `status` (500/502/503/504) without running.
        JSON bodies for 500/503, an HTML gateway page for 502/504 (as proxies answer)."""
        self._rules.append(_Rule(route, "fail", n, status, body))

    def throttle_next(self, route: str = "*", n: int = 1, retry_after: float | None = None) -> None:
        """The next `n` requests on `route` get 429 with X-RateLimit-* headers, and with
        `Retry-After: <seconds>` when `retry_after` is given (relative, so it means the
        same to a client on a simulated clock; X-RateLimit-Reset is wall-clock epoch)."""
        self._rules.append(_Rule(route, "throttle", n, 429, retry_after=retry_after))

    def drop_response_next(self, route: str = "*", n: int = 1, mode: DropMode = "504") -> None:
        """The next `n` requests on `route` ARE processed (an order is created), but the
        client gets a 504 (`mode="504"`) or a connection closed without answer ("close")."""
        self._rules.append(_Rule(route, "drop", n, 504, mode=mode))

    def set_rate_limit(self, per_window: int | None, window: float = 60.0) -> None:
        self.rate_limit, self.window = per_window, window
        self._hits.clear()

    def clear(self) -> None:
        self.latency.clear()
        self._rules.clear()
        self.stream = StreamFaults()
        self.reject_stream_connects = 0

    # ------------------------------------------------------------------ streams
    def drop_next_events(self, n: int = 1) -> None:
        """The next `n` trade_updates events are lost (never sent to any connection)."""
        self.stream.drop_next += n

    def delay_next_events(self, n: int = 1, seconds: float = 0.5) -> None:
        """The next `n` events are sent `seconds` late: later events overtake them."""
        self.stream.delays.extend([seconds] * n)

    def set_event_lag(self, seconds: float) -> None:
        """Every event is sent `seconds` late, order kept."""
        self.stream.lag = max(0.0, seconds)

    def reject_next_stream_connects(self, n: int = 1) -> None:
        """The next `n` websocket connects (either stream) get HTTP 429 before upgrade."""
        self.reject_stream_connects += n

    # ------------------------------------------------------------------ matching
    @staticmethod
    def _matches(spec: str, request: web.Request) -> bool:
        if spec == "*":
            return True
        method, _, path = spec.partition(" ") if " " in spec else ("", "", spec)
        if method and method.upper() != request.method:
            return False
        info = request.match_info.route.resource
        canonical = info.canonical if info is not None else request.path
        return path in (canonical, request.path)

    def _take(self, request: web.Request) -> _Rule | None:
        for rule in self._rules:
            if rule.remaining > 0 and self._matches(rule.route, request):
                rule.remaining -= 1
                if rule.remaining == 0:
                    self._rules.remove(rule)
                return rule
        return None

    def _rate_headers(self, now: float, remaining: int) -> dict[str, str]:
        limit = self.rate_limit or 0
        reset = time.time() + (self._hits[0] + self.window - now if self._hits else 0)
        return {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(max(0, remaining)),
            "X-RateLimit-Reset": str(math.ceil(reset)),
        }

    @web.middleware
    async def middleware(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        if request.path.startswith("/_control") or request.headers.get("Upgrade"):
            return await handler(request)
        delay = max((s for r, s in self.latency.items() if self._matches(r, request)), default=0)
        if delay:
            await asyncio.sleep(delay)
        now = time.monotonic()
        while self._hits and self._hits[0] <= now - self.window:
            self._hits.popleft()
        if self.rate_limit is not None and len(self._hits) >= self.rate_limit:
            return web.Response(
                status=429,
                text=RATE_LIMITED,
                content_type="application/json",
                headers=self._rate_headers(now, 0),
            )
        self._hits.append(now)
        headers = self._rate_headers(now, (self.rate_limit or 0) - len(self._hits))
        rule = self._take(request)
        if rule is not None and rule.kind == "throttle":
            headers["X-RateLimit-Remaining"] = "0"
            if rule.retry_after is not None:
                headers["Retry-After"] = f"{rule.retry_after:g}"
            return web.Response(
                status=429, text=RATE_LIMITED, content_type="application/json", headers=headers
            )
        if rule is not None and rule.kind == "fail":
            body = rule.body if rule.body is not None else _DEFAULT_BODIES.get(rule.status, "")
            kind = "application/json" if body.startswith("{") else "text/html"
            return web.Response(status=rule.status, text=body, content_type=kind)
        response = await handler(request)
        if rule is not None and rule.kind == "drop":
            self.dropped_responses.append(f"{request.method} {request.path}")
            if rule.mode == "close" and request.transport is not None:
                request.transport.abort()  # no answer at all; the write below goes nowhere
                return web.Response(status=504)
            return web.Response(status=504, text=_DEFAULT_BODIES[504], content_type="text/html")
        if not isinstance(response, web.WebSocketResponse):
            response.headers.update(headers)
        return response
