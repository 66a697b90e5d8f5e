"""The trade_updates websocket on our event loop, supervised, fanned out as BrokerEvents.

Why our own client (aiohttp) rather than the SDK's `TradingStream`: the protocol is four
JSON messages (BROKERS.md), while TradingStream has no reconnect hook (and we MUST
reconcile after every reconnect: nothing is replayed), backs off on the wall clock, polls
its socket every 5 s, needs up to 5 s to stop, and silently retries a refused login
forever. Here: every (re)connect, once `listening` is acknowledged, runs `on_reconnect`;
backoff sleeps on the injected clock; aiohttp's heartbeat catches a mute socket; closing
is a task cancel.

Fills: quantities are derived from the order's monotonic `filled_qty` (whether the
event's `qty` is per execution or cumulative is disputed) and each `execution_id` is
passed on once. A Fill's id is NOT the event's `execution_id` but `fill_identity(order
id, filled_qty)`, the identity the FILL activities over REST get too: nothing documents
that the stream's `execution_id` equals the activity id (docs/alpaca.md).

When `filled_qty` grew by more than the event's `qty`, an execution was
missed (or is late): only this execution's `qty` is reported and the gap is logged for
the reconciler. Attributing the missing shares to this execution id would double count
them once REST (or the late event) brings the missed execution with its own id.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import aiohttp
from loguru import logger

from brokers.alpaca.mapping import (
    MappingError,
    fill_identity,
    map_event,
    opt_dec,
    order_from_json,
    parse_ts,
)
from core.broker import BrokerEvent, BrokerEventKind
from core.broker_events import EventHub, Subscription
from core.clock import Clock
from core.domain import ZERO, BrokerOrderId, Fill, OrderSnapshot

ReconnectHook = Callable[[], Awaitable[None]]
_HANDSHAKE_TIMEOUT = 10.0
_HEARTBEAT = 15.0
_MEMORY = 20_000  # execution ids / orders remembered for de-duplication
# A connection must stay up this long (clock seconds) before the backoff starts afresh:
# a server that accepts and drops at once must not get a reconnect (and a reconcile,
# i.e. several REST calls) every `backoff_min` seconds.
_HEALTHY_AFTER = 30.0


# Tasks given up on at stop, referenced until they end (asyncio keeps weak references).
_abandoned: set[asyncio.Task[None]] = set()


class StreamAuthError(Exception):
    """The server refused our keys on the trade_updates stream."""


class FillTracker:
    """Turns fill events into per-execution Fills (see the module docstring).

    Per order it keeps the highest `filled_qty` seen and the quantity already passed on
    as Fills; the difference is filled but not yet attributed to an execution. A fill
    event takes min(its own qty, that difference): exact when `qty` is per execution,
    still right in total when it is cumulative, and a late event that was overtaken by a
    newer one still gets its own shares (the newer one took only its `qty`)."""

    def __init__(self) -> None:
        self._seen_exec: OrderedDict[str, None] = OrderedDict()
        self._seen_fills: OrderedDict[str, None] = OrderedDict()
        self._orders: OrderedDict[BrokerOrderId, tuple[Decimal, Decimal]] = OrderedDict()

    def seen(self, execution_id: str) -> bool:
        return execution_id in self._seen_exec

    def fill_for(self, data: Mapping[str, Any], order: OrderSnapshot) -> Fill | None:
        execution_id = str(data.get("execution_id") or "")
        if not execution_id or self.seen(execution_id):
            return None
        self._remember(self._seen_exec, execution_id, None)
        try:
            identity = fill_identity(order.broker_order_id, order.filled_qty)
        except MappingError:
            logger.error(
                "alpaca: fill {} on order {} reports filled_qty {}; left to reconcile",
                execution_id,
                order.broker_order_id,
                order.filled_qty,
            )
            return None
        if identity in self._seen_fills:  # the same execution under another execution_id
            return None
        self._remember(self._seen_fills, identity, None)
        high, emitted = self._orders.get(order.broker_order_id, (ZERO, ZERO))
        high = max(high, order.filled_qty)
        open_qty = high - emitted
        event_qty = opt_dec(data.get("qty"), "qty")
        qty = open_qty if event_qty is None or event_qty <= 0 else min(open_qty, event_qty)
        self._remember(self._orders, order.broker_order_id, (high, emitted + max(qty, ZERO)))
        if qty <= 0:  # nothing filled that is not already passed on
            return None
        if qty < open_qty:
            logger.warning(
                "alpaca: order {} has {} filled but not seen on the stream (execution {} "
                "is {}): missed or late executions; reconcile fetches them",
                order.broker_order_id,
                open_qty - qty,
                execution_id,
                qty,
            )
        price = opt_dec(data.get("price"), "price") or order.avg_fill_price
        stamp = parse_ts(data.get("timestamp")) or order.updated_at
        if price is None or stamp is None:
            logger.error("alpaca: fill {} has no price or time; left to reconcile", execution_id)
            return None
        return Fill(
            execution_id=identity,
            broker_order_id=order.broker_order_id,
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            side=order.side,
            qty=qty,
            price=price,
            timestamp=stamp,
        )

    @staticmethod
    def _remember(store: OrderedDict[Any, Any], key: Any, value: Any) -> None:
        store[key] = value
        store.move_to_end(key)
        while len(store) > _MEMORY:
            store.popitem(last=False)


def event_from_frame(
    data: Mapping[str, Any], tracker: FillTracker, clock: Clock
) -> BrokerEvent | None:
    """One trade_updates `data` object -> a BrokerEvent (None: a duplicate execution)."""
    raw_event = data.get("event")
    kind = map_event(None if raw_event is None else str(raw_event))
    order = order_from_json(data.get("order") or {})
    fill = None
    if kind.is_fill:
        execution_id = str(data.get("execution_id") or "")
        if execution_id and tracker.seen(execution_id):
            return None  # the same execution delivered twice
        fill = tracker.fill_for(data, order)
    stamp = parse_ts(data.get("timestamp")) or clock.now()
    return BrokerEvent(kind=kind, order=order, timestamp=stamp, fill=fill)


class TradeUpdatesStream:
    """Connects, authenticates, listens, publishes; reconnects with backoff forever."""

    def __init__(
        self,
        url: str,
        key_id: str,
        secret_key: str,
        clock: Clock,
        hub: EventHub,
        *,
        label: str = "alpaca",
        on_reconnect: ReconnectHook | None = None,
        backoff_min: float = 0.5,
        backoff_max: float = 30.0,
        stop_seconds: float = 5.0,
    ) -> None:
        self._stop_seconds = stop_seconds
        self._stopping = False
        self._url = url
        self._auth = {"key_id": key_id, "secret_key": secret_key}
        self._clock = clock
        self._hub = hub
        self._label = label
        self.on_reconnect = on_reconnect
        self._backoff = (backoff_min, backoff_max)
        self._tracker = FillTracker()
        self._task: asyncio.Task[None] | None = None
        self._hook_task: asyncio.Task[None] | None = None
        self._hook_again = False
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._up_since: datetime | None = None
        self.connects = 0  # successful (listening) connections so far
        self.listening = asyncio.Event()

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._stopping = False
            self._task = asyncio.get_running_loop().create_task(self._supervise())

    async def stop(self) -> None:
        """Cancel the supervisor and the reconnect hook, waiting at most `stop_seconds`
        (real time) for them: a connection that swallows its cancellation (a close
        handshake that never completes) must not hold the process's stop. The
        supervisor also sees `_stopping` and does not reconnect after such a cancel."""
        self._stopping = True
        tasks = [t for t in (self._task, self._hook_task) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self._stop_seconds)
            for task in pending:
                _abandoned.add(task)
                task.add_done_callback(_abandoned.discard)
            if pending:
                logger.warning(
                    "alpaca[{}]: trade_updates did not stop within {:.1f} s; left behind",
                    self._label,
                    self._stop_seconds,
                )
        self._task = None

    async def drop_connection(self) -> None:
        """Close the current socket (tests, or a caller that knows it is stale)."""
        if self._ws is not None:
            await self._ws.close()

    # --- supervision -------------------------------------------------------------------

    async def _supervise(self) -> None:
        failures = 0
        # No total timeout (the socket lives for hours); a bounded connect instead.
        timeout = aiohttp.ClientTimeout(total=None, connect=_HANDSHAKE_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while not self._stopping:
                try:
                    await self._connect_once(session)
                except asyncio.CancelledError:
                    raise
                except StreamAuthError as exc:
                    failures = max(failures, 4)  # a key problem will not fix itself soon
                    logger.error("alpaca[{}]: trade_updates login refused: {}", self._label, exc)
                except Exception as exc:
                    logger.warning(
                        "alpaca[{}]: trade_updates connection failed: {}: {}",
                        self._label,
                        type(exc).__name__,
                        exc,
                    )
                finally:
                    self.listening.clear()
                    self._ws = None
                if self._up_since is not None:
                    lived = (self._clock.now() - self._up_since).total_seconds()
                    if lived >= _HEALTHY_AFTER:
                        failures = 0
                    self._up_since = None
                failures += 1
                low, high = self._backoff
                # Capped exponent: 2.0 ** 1024 overflows and would kill this supervisor.
                ceiling = min(high, low * 2.0 ** min(failures - 1, 30))
                delay = ceiling / 2 + random.uniform(0, ceiling / 2)
                if self._stopping:
                    return
                logger.info("alpaca[{}]: trade_updates reconnect in {:.2f}s", self._label, delay)
                await self._clock.sleep(delay)

    async def _connect_once(self, session: aiohttp.ClientSession) -> None:
        timeout = aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0)
        async with session.ws_connect(
            self._url, heartbeat=_HEARTBEAT, timeout=timeout, autoping=True
        ) as ws:
            self._ws = ws
            await ws.send_str(json.dumps({"action": "authenticate", "data": self._auth}))
            reply = await self._receive_json(ws)
            if (
                reply.get("stream") != "authorization"
                or (reply.get("data") or {}).get("status") != "authorized"
            ):
                raise StreamAuthError(str((reply.get("data") or {}).get("status", reply))[:200])
            await ws.send_str(
                json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}})
            )
            while True:
                ack = await self._receive_json(ws)
                if ack.get("stream") == "listening":
                    break
                self._handle(ack)  # an update may race the ack: do not lose it
            if "trade_updates" not in ((ack.get("data") or {}).get("streams") or []):
                raise ConnectionError(f"server did not listen to trade_updates: {ack}")
            self.connects += 1
            self._up_since = self._clock.now()
            self.listening.set()
            logger.info(
                "alpaca[{}]: trade_updates listening (connect #{})", self._label, self.connects
            )
            self._run_hook()
            async for msg in ws:
                if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    self._handle(self._decode(msg.data))
                elif msg.type is aiohttp.WSMsgType.ERROR:
                    raise ConnectionError(f"websocket error: {ws.exception()}")
            logger.warning("alpaca[{}]: trade_updates closed by the server", self._label)

    async def _receive_json(self, ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
        msg = await ws.receive(timeout=_HANDSHAKE_TIMEOUT)
        if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
            raise ConnectionError(f"stream closed during the handshake ({msg.type.name})")
        return self._decode(msg.data)

    @staticmethod
    def _decode(payload: str | bytes) -> dict[str, Any]:
        try:
            data = json.loads(payload)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    # --- messages ----------------------------------------------------------------------

    def _handle(self, message: dict[str, Any]) -> None:
        """Never raises: one bad frame must not take the stream down."""
        if message.get("stream") != "trade_updates":
            if message:
                logger.debug("alpaca[{}]: stream message {}", self._label, message.get("stream"))
            return
        data = message.get("data")
        if not isinstance(data, dict):
            return
        try:
            event = event_from_frame(data, self._tracker, self._clock)
        except (MappingError, ValueError, TypeError) as exc:
            order = data.get("order") if isinstance(data.get("order"), dict) else {}
            logger.error(
                "alpaca[{}]: dropped trade_updates {!r} for order {}: {}",
                self._label,
                data.get("event"),
                (order or {}).get("id"),
                exc,
            )
            return
        if event is None:
            return
        if event.kind is BrokerEventKind.RESTATED and data.get("event") != "restated":
            logger.info("alpaca[{}]: passed on unknown event {!r}", self._label, data.get("event"))
        self._hub.publish(event)

    # --- the reconnect hook ------------------------------------------------------------

    def _run_hook(self) -> None:
        """Run `on_reconnect` as its own task (events keep flowing meanwhile). Reconnects
        while it runs coalesce into one more run after it, never a pile of runs."""
        if self.on_reconnect is None:
            return
        if self._hook_task is not None and not self._hook_task.done():
            self._hook_again = True
            return
        self._hook_task = asyncio.get_running_loop().create_task(self._hook_loop())

    async def _hook_loop(self) -> None:
        while True:
            self._hook_again = False
            hook = self.on_reconnect
            if hook is None:
                return
            try:
                await hook()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("alpaca[{}]: on_reconnect callback failed", self._label)
            if not self._hook_again:
                return


__all__ = [
    "EventHub",
    "FillTracker",
    "ReconnectHook",
    "StreamAuthError",
    "Subscription",
    "TradeUpdatesStream",
    "event_from_frame",
]
