"""The two websockets: `/stream` (trade_updates, JSON) and `/v2/{feed}` (market data).

trade_updates: client `{"action":"authenticate","data":{"key_id","secret_key"}}` (the
older `{"action":"auth","key","secret"}` too) -> `{"stream":"authorization","data":
{"status":"authorized","action":"authenticate"}}`; client `{"action":"listen","data":
{"streams":["trade_updates"]}}` -> `{"stream":"listening","data":{"streams":[...]}}`; then
`{"stream":"trade_updates","data":{event...}}`. Frames are binary (as paper sends them)
unless `binary=False`.

Market data: server `[{"T":"success","msg":"connected"}]`; client `{"action":"auth",...}`
-> `[{"T":"success","msg":"authenticated"}]` (or `[{"T":"error","code":402,...}]`);
subscribe / unsubscribe -> `[{"T":"subscription",...}]`; bars `[{"T":"b",...}]`. msgpack
when the client sent `Content-Type: application/msgpack` (the SDK does), JSON otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import msgpack
from aiohttp import WSMsgType, web

from .bars import BarRecord, bar_stream_msg
from .faults import Faults
from .models import TradeEventRecord
from .wire import event_json

CHANNELS = ("trades", "quotes", "bars", "updatedBars", "dailyBars", "statuses", "lulds")


class _Conn:
    """One websocket with an ordered outbox (so lags and late events keep their order)."""

    def __init__(self, ws: web.WebSocketResponse, request: web.Request) -> None:
        self.ws = ws
        self.request = request
        self.outbox: asyncio.Queue[tuple[float, str | bytes]] = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._pump())

    def put(self, frame: str | bytes, lag: float = 0.0) -> None:
        self.outbox.put_nowait((lag, frame))

    async def _pump(self) -> None:
        while True:
            lag, frame = await self.outbox.get()
            if lag:
                await asyncio.sleep(lag)
            if self.ws.closed:
                return
            with contextlib.suppress(ConnectionError, RuntimeError):
                if isinstance(frame, bytes):
                    await self.ws.send_bytes(frame)
                else:
                    await self.ws.send_str(frame)

    async def close(self, abrupt: bool) -> None:
        self.task.cancel()
        if abrupt and self.request.transport is not None:
            self.request.transport.abort()
        else:
            await self.ws.close(code=1001, message=b"going away")


async def _refused(faults: Faults) -> web.Response | None:
    if faults.reject_stream_connects > 0:
        faults.reject_stream_connects -= 1
        return web.Response(status=429, text="connection limit exceeded")
    return None


class TradeStreamHub:
    def __init__(self, key: str, secret: str, faults: Faults, *, binary: bool = True) -> None:
        self.key, self.secret, self.faults, self.binary = key, secret, faults, binary
        self.connections: set[_Conn] = set()
        self.listening: set[_Conn] = set()
        self.dropped: list[TradeEventRecord] = []
        self.connects = 0

    def _frame(self, payload: dict[str, Any]) -> str | bytes:
        text = json.dumps(payload)
        return text.encode() if self.binary else text

    async def handler(self, request: web.Request) -> web.StreamResponse:
        refused = await _refused(self.faults)
        if refused is not None:
            return refused
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = _Conn(ws, request)
        self.connections.add(conn)
        self.connects += 1
        authed = False
        try:
            async for msg in ws:
                if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    continue
                try:
                    data = json.loads(msg.data)
                except ValueError:
                    continue
                action = data.get("action") if isinstance(data, dict) else None
                if action in ("authenticate", "auth"):
                    creds = data.get("data") or data
                    authed = (creds.get("key_id") or creds.get("key")) == self.key and (
                        creds.get("secret_key") or creds.get("secret")
                    ) == self.secret
                    status = "authorized" if authed else "unauthorized"
                    conn.put(
                        self._frame(
                            {
                                "stream": "authorization",
                                "data": {"status": status, "action": "authenticate"},
                            }
                        )
                    )
                    if not authed:
                        await asyncio.sleep(0.05)
                        break
                elif action == "listen":
                    if not authed:
                        conn.put(
                            self._frame(
                                {
                                    "stream": "authorization",
                                    "data": {"status": "unauthorized", "action": "listen"},
                                }
                            )
                        )
                        continue
                    wanted = (data.get("data") or {}).get("streams") or []
                    streams = [s for s in wanted if s == "trade_updates"]
                    (self.listening.add if streams else self.listening.discard)(conn)
                    conn.put(self._frame({"stream": "listening", "data": {"streams": streams}}))
        finally:
            self.listening.discard(conn)
            self.connections.discard(conn)
            conn.task.cancel()
            await ws.close()
        return ws

    def publish(self, record: TradeEventRecord) -> None:
        stream = self.faults.stream
        if stream.drop_next > 0:
            stream.drop_next -= 1
            self.dropped.append(record)
            return
        frame = self._frame({"stream": "trade_updates", "data": event_json(record)})
        late = stream.take_delay()
        for conn in list(self.listening):
            if late:
                asyncio.get_running_loop().call_later(late, conn.put, frame, stream.lag)
            else:
                conn.put(frame, stream.lag)

    async def disconnect(self, *, abrupt: bool = False) -> int:
        """Close every connection now (abrupt: drop TCP without a close frame)."""
        conns = list(self.connections)
        for conn in conns:
            self.listening.discard(conn)
            await conn.close(abrupt)
        return len(conns)


class MarketDataHub:
    def __init__(self, key: str, secret: str, faults: Faults) -> None:
        self.key, self.secret, self.faults = key, secret, faults
        self.subs: dict[_Conn, dict[str, set[str]]] = {}
        self.codecs: dict[_Conn, bool] = {}
        self.connections: set[_Conn] = set()
        self.connects = 0

    @staticmethod
    def _encode(payload: list[dict[str, Any]], use_msgpack: bool) -> str | bytes:
        return msgpack.packb(payload) if use_msgpack else json.dumps(payload)

    async def handler(self, request: web.Request) -> web.StreamResponse:
        refused = await _refused(self.faults)
        if refused is not None:
            return refused
        use_msgpack = "msgpack" in request.headers.get("Content-Type", "")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = _Conn(ws, request)
        self.connects += 1
        self.connections.add(conn)
        self.codecs[conn] = use_msgpack

        def send(*messages: dict[str, Any]) -> None:
            conn.put(self._encode(list(messages), use_msgpack))

        send({"T": "success", "msg": "connected"})
        authed = False
        try:
            async for msg in ws:
                if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
                    continue
                try:
                    binary = msg.type == WSMsgType.BINARY
                    data = msgpack.unpackb(msg.data) if binary else json.loads(msg.data)
                except ValueError:
                    send({"T": "error", "code": 400, "msg": "invalid syntax"})
                    continue
                action = data.get("action") if isinstance(data, dict) else None
                if action == "auth":
                    if data.get("key") == self.key and data.get("secret") == self.secret:
                        authed = True
                        self.subs[conn] = {channel: set() for channel in CHANNELS}
                        send({"T": "success", "msg": "authenticated"})
                    else:
                        send({"T": "error", "code": 402, "msg": "auth failed"})
                        await asyncio.sleep(0.05)
                        break
                elif action in ("subscribe", "unsubscribe"):
                    if not authed:
                        send({"T": "error", "code": 401, "msg": "not authenticated"})
                        continue
                    self._update(conn, data, add=action == "subscribe")
                    send(self._subscription(conn))
        finally:
            self.subs.pop(conn, None)
            self.codecs.pop(conn, None)
            self.connections.discard(conn)
            conn.task.cancel()
            await ws.close()
        return ws

    def _update(self, conn: _Conn, data: dict[str, Any], *, add: bool) -> None:
        for channel in CHANNELS:
            symbols = data.get(channel) or []
            op: Callable[[str], None] = (
                self.subs[conn][channel].add if add else self.subs[conn][channel].discard
            )
            for symbol in symbols:
                op(symbol if symbol == "*" else symbol.upper())

    def _subscription(self, conn: _Conn) -> dict[str, Any]:
        subs = self.subs[conn]
        body: dict[str, Any] = {"T": "subscription"}
        body.update({channel: sorted(subs[channel]) for channel in CHANNELS})
        body["corrections"] = sorted(subs["trades"])
        body["cancelErrors"] = sorted(subs["trades"])
        return body

    def publish_bar(self, bar: BarRecord) -> None:
        for conn, subs in list(self.subs.items()):
            if bar.symbol in subs["bars"] or "*" in subs["bars"]:
                use_msgpack = self.codecs.get(conn, True)
                conn.put(self._encode([bar_stream_msg(bar, msgpack_time=use_msgpack)], use_msgpack))

    async def disconnect(self, *, abrupt: bool = False) -> int:
        conns = list(self.connections)
        for conn in conns:
            self.subs.pop(conn, None)
            await conn.close(abrupt)
        return len(conns)
