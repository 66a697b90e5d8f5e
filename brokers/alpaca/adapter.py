"""AlpacaBroker: the `core.broker.Broker` protocol on alpaca-py, for one account.

- REST goes through the synchronous SDK in worker threads (`transport.py`: timeouts, the
  SDK's hidden resend off, our retry policy for reads); answers are raw dicts mapped by
  `mapping.py`, so an unknown status never breaks a call.
- Submit and replace never resend blindly (`placement.py`). Happy path: ONE HTTP request
  per submit; the capability check before it is local.
- `events()` subscriptions are fed by our own trade_updates client (`stream.py`), which
  runs the `on_reconnect` callback (the reconciler) after every (re)connect.
Keys are read once from SecretStr and handed to the SDK and the stream; nothing here
logs the client, its session or any header.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from alpaca.common.enums import Sort
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import QueryOrderStatus
from alpaca.trading.requests import GetCalendarRequest, GetOrdersRequest
from loguru import logger

from brokers.alpaca.config import (
    AlpacaEndpoint,
    LiveTradingNotEnabled,
    alpaca_credentials,
    alpaca_endpoint_for,
)
from brokers.alpaca.errors import Op
from brokers.alpaca.mapping import (
    MappingError,
    account_from_json,
    calendar_day_from_json,
    fill_from_activity,
    order_from_json,
    position_from_json,
)
from brokers.alpaca.order_requests import order_request, replace_request
from brokers.alpaca.placement import cancel_order, create_order
from brokers.alpaca.queries import (
    CalendarDay,
    CloseResult,
    Json,
    MarketClock,
    all_fill_activities,
    all_orders,
    close_results,
    cum_qty,
    market_clock,
)
from brokers.alpaca.stream import EventHub, ReconnectHook, Subscription, TradeUpdatesStream
from brokers.alpaca.transport import RetryPolicy, Transport, prepare_client
from core.broker import AmbiguousOutcome, NotFound, UnsupportedOrder
from core.calendar import TradingCalendar, xnys
from core.capabilities import ALPACA, CapabilityMatrix, check
from core.clock import Clock
from core.config_models import AccountConfig
from core.domain import (
    AccountSnapshot,
    BrokerOrderId,
    ClientOrderId,
    Fill,
    OrderRequest,
    OrderSnapshot,
    Position,
    TimeInForce,
)
from core.settings import BrokerCredentials


def _order_id(broker_order_id: BrokerOrderId) -> str:
    """Alpaca order ids are UUIDs (the SDK raises a bare ValueError on anything else)."""
    try:
        return str(uuid.UUID(str(broker_order_id)))
    except ValueError:
        raise NotFound(f"{broker_order_id!r} is not an Alpaca order id") from None


class AlpacaBroker:
    """One Alpaca account. Build it with `for_account`, which applies the live guard."""

    def __init__(
        self,
        endpoint: AlpacaEndpoint,
        credentials: BrokerCredentials,
        clock: Clock,
        *,
        account_name: str = "alpaca",
        calendar: TradingCalendar | None = None,
        policy: RetryPolicy | None = None,
        on_reconnect: ReconnectHook | None = None,
        stream_backoff: tuple[float, float] = (0.5, 30.0),
    ) -> None:
        if not endpoint.paper and not endpoint.live_granted:
            raise LiveTradingNotEnabled(
                account_name, ["a live endpoint must come from alpaca_endpoint_for"]
            )
        self._endpoint = endpoint
        self._clock = clock
        self._calendar = calendar
        self._account_name = account_name
        self._http = Transport(clock, policy or RetryPolicy(), account_name)
        key = credentials.key_id.get_secret_value()
        secret = credentials.secret_key.get_secret_value()
        self._client = TradingClient(
            key, secret, paper=endpoint.paper, raw_data=True, url_override=endpoint.trading_url
        )
        prepare_client(self._client, self._http.policy, self._http.requests)
        self._hub = EventHub()
        self._stream = TradeUpdatesStream(
            endpoint.trading_stream_url,
            key,
            secret,
            clock,
            self._hub,
            label=account_name,
            on_reconnect=on_reconnect,
            backoff_min=stream_backoff[0],
            backoff_max=stream_backoff[1],
        )
        self._client_ids: dict[str, ClientOrderId] = {}
        self._closed = False

    @classmethod
    def for_account(
        cls,
        account: AccountConfig,
        env: Mapping[str, str],
        clock: Clock,
        *,
        chat_confirmed: bool,
        url_override: str | None = None,
        **kwargs: Any,
    ) -> AlpacaBroker:
        """The account's endpoint (paper unless every live condition holds) and keys."""
        endpoint = alpaca_endpoint_for(
            account, env, chat_confirmed=chat_confirmed, url_override=url_override
        )
        creds = alpaca_credentials(account, env)
        return cls(endpoint, creds, clock, account_name=account.name, **kwargs)

    # --- identity ----------------------------------------------------------------------

    @property
    def name(self) -> str:
        return "alpaca"

    @property
    def account_name(self) -> str:
        return self._account_name

    @property
    def paper(self) -> bool:
        return self._endpoint.paper

    @property
    def capabilities(self) -> CapabilityMatrix:
        return ALPACA

    @property
    def requests_sent(self) -> int:
        """HTTP requests sent so far (every attempt counts)."""
        return self._http.requests.value

    @property
    def stream(self) -> TradeUpdatesStream:
        return self._stream

    def set_on_reconnect(self, hook: ReconnectHook | None) -> None:
        """The reconciler: runs after EVERY (re)connect of trade_updates, the first too."""
        self._stream.on_reconnect = hook

    # --- orders ------------------------------------------------------------------------

    async def submit(self, request: OrderRequest) -> OrderSnapshot:
        cid = request.client_order_id
        phase = (self._calendar or xnys()).phase(self._clock.now())
        verdict = check(ALPACA, request, phase)
        if not verdict.allowed:  # never send what will be refused
            raise UnsupportedOrder(verdict.reason, client_order_id=cid)
        body = order_request(request)
        logger.info(
            "alpaca[{}]: submit {} {} {} {} {}{}",
            self._account_name,
            cid,
            request.side,
            request.qty,
            request.symbol,
            request.order_type,
            " (queued: market closed)" if verdict.queued else "",
        )
        raw = await create_order(
            self._http,
            Op.SUBMIT,
            cid,
            lambda: self._client.submit_order(body),
            lambda: self._client.get_order_by_client_id(cid),
        )
        return self._placed(raw, cid)

    async def replace(
        self,
        broker_order_id: BrokerOrderId,
        *,
        qty: Decimal | None = None,
        stop_price: Decimal | None = None,
        limit_price: Decimal | None = None,
        trail_percent: Decimal | None = None,
        time_in_force: TimeInForce | None = None,
        client_order_id: ClientOrderId | None = None,
    ) -> OrderSnapshot:
        order_id = _order_id(broker_order_id)
        # The new order always gets a client id, so an ambiguous PATCH can be looked up.
        cid = client_order_id or ClientOrderId(f"rpl-{uuid.uuid4().hex}")
        body = replace_request(
            qty=qty,
            stop_price=stop_price,
            limit_price=limit_price,
            trail_percent=trail_percent,
            time_in_force=time_in_force,
            client_order_id=cid,
        )
        logger.info("alpaca[{}]: replace {} -> new {}", self._account_name, order_id, cid)
        raw = await create_order(
            self._http,
            Op.REPLACE,
            cid,
            lambda: self._client.replace_order_by_id(order_id, body),
            lambda: self._client.get_order_by_client_id(cid),
        )
        return self._placed(raw, cid)

    async def cancel(self, broker_order_id: BrokerOrderId) -> None:
        """A request: returns when Alpaca took it (204), not when the order is canceled."""
        order_id = _order_id(broker_order_id)

        async def raw_status() -> str | None:
            return (await self.get_order(broker_order_id)).raw_status

        await cancel_order(
            self._http, lambda: self._client.cancel_order_by_id(order_id), raw_status
        )
        logger.info("alpaca[{}]: cancel requested for {}", self._account_name, order_id)

    async def get_order(self, broker_order_id: BrokerOrderId) -> OrderSnapshot:
        order_id = _order_id(broker_order_id)
        return self._remember(
            await self._read("get_order", lambda: self._client.get_order_by_id(order_id))
        )

    async def get_order_by_client_id(self, client_order_id: ClientOrderId) -> OrderSnapshot | None:
        try:
            raw = await self._read(
                "get_order_by_client_id",
                lambda: self._client.get_order_by_client_id(client_order_id),
            )
        except NotFound:
            return None
        return self._remember(raw)

    async def list_orders(
        self, *, open_only: bool, since: datetime | None = None, limit: int = 500
    ) -> list[OrderSnapshot]:
        """Newest first; `since` is inclusive (Alpaca's `after` is not: one µs earlier)."""
        status = QueryOrderStatus.OPEN if open_only else QueryOrderStatus.ALL
        after = None if since is None else since - timedelta(microseconds=1)

        async def page(size: int, until: datetime | None) -> list[Json]:
            query = GetOrdersRequest(
                status=status,
                limit=size,
                after=after,
                until=until,
                direction=Sort.DESC,
                nested=True,
            )
            result: list[Json] = await self._read(
                "list_orders", lambda: self._client.get_orders(query)
            )
            return result

        return await all_orders(page, limit, self._remember)

    # --- account -----------------------------------------------------------------------

    async def positions(self) -> list[Position]:
        raw: list[Json] = await self._read("positions", self._client.get_all_positions)
        return [position_from_json(p) for p in raw]

    async def account(self) -> AccountSnapshot:
        return account_from_json(await self._read("account", self._client.get_account))

    async def fills_since(self, since: datetime) -> list[Fill]:
        """FILL activities with transaction time >= since, oldest first (all pages)."""

        async def page(params: dict[str, Any]) -> list[Json]:
            result: list[Json] = await self._read(
                "fills", lambda: self._client.get("/account/activities/FILL", params)
            )
            return result

        activities = await all_fill_activities(page, since)
        # Activities carry the order id, not our client id: learn the missing ones.
        for order_id in {str(a.get("order_id")) for a in activities} - set(self._client_ids):
            try:
                await self.get_order(BrokerOrderId(order_id))
            except NotFound:
                logger.warning("alpaca[{}]: fill of unknown order {}", self._account_name, order_id)
        pairs = [(fill_from_activity(a, self._client_ids), cum_qty(a)) for a in activities]
        pairs.sort(key=lambda p: (p[0].timestamp, p[0].broker_order_id, p[1]))
        return [fill for fill, _ in pairs if fill.timestamp >= since]

    async def close_all_positions(self, *, cancel_orders: bool = True) -> list[CloseResult]:
        """Per-symbol results (HTTP 207). ONE attempt: a resend could queue a second set
        of closing orders; the kill flow verifies by querying positions and orders."""

        def send() -> Any:
            return self._client.close_all_positions(cancel_orders=cancel_orders)

        raw: list[Json] = await self._http.once(Op.CLOSE_ALL, send)
        results = close_results(raw)
        for result in results:
            if result.order is not None:
                self._remember_snapshot(result.order)
        return results

    async def market_clock(self) -> MarketClock:
        return market_clock(await self._read("clock", self._client.get_clock))

    async def trading_days(self, start: date, end: date) -> list[CalendarDay]:
        query = GetCalendarRequest(start=start, end=end)
        raw: list[Json] = await self._read("calendar", lambda: self._client.get_calendar(query))
        return [CalendarDay(*calendar_day_from_json(d)) for d in raw]

    # --- events and lifecycle ----------------------------------------------------------

    async def start(self, *, wait: float | None = None) -> None:
        """Start the trade_updates stream; with `wait`, until it listens (seconds)."""
        self._stream.start()
        if wait is not None:
            await asyncio.wait_for(self._stream.listening.wait(), wait)

    def events(self) -> Subscription:
        sub = self._hub.subscribe()
        if not self._closed:
            # A subscriber needs the stream running; with no running loop yet, `start()`.
            with contextlib.suppress(RuntimeError):
                self._stream.start()
        return sub

    async def close(self) -> None:
        self._closed = True
        await self._stream.stop()
        self._hub.close()
        await asyncio.to_thread(self._client._session.close)

    # --- internals ---------------------------------------------------------------------

    async def _read(self, what: str, call: Callable[[], Any]) -> Any:
        return await self._http.read(what, call)

    def _placed(self, raw: Json, cid: ClientOrderId) -> OrderSnapshot:
        """The order exists at this point: an unreadable answer must not look like a
        refusal to the caller."""
        try:
            return self._remember(raw)
        except MappingError as exc:
            raise AmbiguousOutcome(
                f"order {cid} was placed but the answer is unreadable ({exc}): look it up",
                client_order_id=cid,
            ) from None

    def _remember(self, raw: Json) -> OrderSnapshot:
        return self._remember_snapshot(order_from_json(raw))

    def _remember_snapshot(self, snapshot: OrderSnapshot) -> OrderSnapshot:
        """Keep order id -> client id: FILL activities only carry the order id."""
        if snapshot.client_order_id:
            self._client_ids[snapshot.broker_order_id] = snapshot.client_order_id
        return snapshot


__all__ = ["AlpacaBroker", "CalendarDay", "CloseResult", "MarketClock"]
