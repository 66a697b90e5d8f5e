"""One harness protocol over every broker, so the SAME scenario runs on each of them.

    async with open_harness("alpaca") as h:               # "sim" | "alpaca" | "ibkr"
        snap = await h.broker.submit(request)
        await h.bar("AAPL", "100.1", "100.2", "100", "100.1")  # the market trades
        await h.settle()                                   # async news arrives
        rig = await engine_rig(h, tmp_path)                # a TradingEngine over it

- `SimHarness`: SimBroker in process (the kit's setup: no friction, $100k).
- `AlpacaFakeHarness`: the real alpaca-py SDK inside `AlpacaBroker`, against the local
  fake Alpaca (tests/fakes/alpaca) on 127.0.0.1; the fake's time follows the clock.
- `IbkrFakeHarness`: `IbkrBroker` over the `FakeGateway` (a real, offline ib_async
  `IB()`); the gateway has no market, so this harness matches orders against the bars
  it is given (market, limit, stop, trailing) and keeps the gateway's positions.

Time: one `SimClock` per harness, shared with the adapter and the engine. A small pump
advances it to any sleeper due within `PUMP_HORIZON` seconds once the loop is idle (the
adapters' backoffs, the IBKR pacer), so the tests never wait for them; everything longer
(the engine's waits and timeouts) moves only when a test calls `advance`.

Fault hooks common to all: `set_liquidity` (partial fills), `outage()` (the order stream
is lost, events meanwhile are lost for good, then it comes back), held cancels and
replaces (`slow_cancels` / `slow_replaces`, released with `release()`), `seed_position`.
Broker-specific faults are reached through the harness's own handle (`h.fake.faults`,
`h.gateway`, `h.sim.faults`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, Protocol

from ib_async import Order
from sqlalchemy import select

from brokers.alpaca import AlpacaBroker
from brokers.alpaca.stream import Subscription as AlpacaSubscription
from brokers.ibkr import IbkrConfig
from brokers.ibkr.adapter import IbkrBroker
from brokers.ibkr.testing import FakeGateway, connected_broker
from brokers.ibkr.testing_desk import GwOrder
from brokers.sim import PartialFills, SimBroker
from core.broker import Broker
from core.calendar import xnys
from core.clock import NEW_YORK, SimClock
from core.config_models import ProtectionConfig, RiskConfig, SessionsConfig
from core.domain import OrderSnapshot, OrderStatus, Side, Symbol
from core.engine import TradingEngine
from core.engine_context import EngineOptions
from core.events import DomainEvent, EventBus
from core.ledger import FillRow, Ledger, OrderRow
from core.marketdata.bar import Bar
from tests.fakes.alpaca import EngineConfig, RunningFakeAlpaca, start_fake_alpaca
from tests.fakes.alpaca.models import PositionState
from tests.integration.test_alpaca_adapter_support import ACCOUNT, FAST, env_for
from tests.kit.brokers import make_bar, sim_config
from tests.kit.engine import file_ledger, protection_config, risk_config, sessions_config

Kind = Literal["sim", "alpaca", "ibkr"]
KINDS: tuple[Kind, ...] = ("sim", "alpaca", "ibkr")
AAPL = Symbol("AAPL")
D = Decimal
S = OrderStatus
Price = str | int | Decimal
# Monday 2025-06-02 10:00 New York: regular hours, past the opening no-trade window (the
# fake Alpaca's default "now"), for every broker alike.
T0 = datetime(2025, 6, 2, 14, 0, tzinfo=UTC)
PUMP_HORIZON = 0.5  # clock seconds: sleepers due this soon are woken once the loop idles
RECONNECT_BACKOFF = (1.2, 1.2)  # clock seconds; beyond PUMP_HORIZON on purpose
HELD_LATENCY = 5.0  # SimBroker: a held cancel / replace completes after this long


def ny(hour: int, minute: int = 0) -> datetime:
    """New York wall time on the harness's session day."""
    return datetime(2025, 6, 2, hour, minute, tzinfo=NEW_YORK)


def _minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


class BrokerHarness(Protocol):
    """A broker plus the hand that moves its market and time."""

    kind: Kind
    clock: SimClock

    @property
    def broker(self) -> Broker: ...

    async def set_time(self, moment: datetime) -> None:
        """Move the clock (and the broker's market) forward to `moment`."""
        ...

    async def bar(self, symbol: str, o: Price, h: Price, low: Price, c: Price) -> Bar:
        """A 1-minute bar from the current minute, delivered at its end: orders trigger."""
        ...

    async def advance(self, seconds: float) -> None:
        """Move time in small steps, letting the broker's due work and news arrive."""
        ...

    async def settle(self) -> None:
        """Let asynchronous answers and events arrive (returns once nothing moves)."""
        ...

    def seed_position(self, symbol: str, qty: Price, price: Price) -> None:
        """Shares already held (transferred in)."""
        ...

    def set_liquidity(self, symbol: str, per_bar: Price | None) -> None:
        """At most `per_bar` shares of any order fill per bar (None: no cap)."""
        ...

    async def release(self) -> None:
        """Complete the cancels / replaces held by `slow_cancels` / `slow_replaces`."""
        ...

    def outage(self) -> contextlib.AbstractAsyncContextManager[None]:
        """The order stream is lost inside the block (events meanwhile are lost for good)
        and comes back after it (the adapter's reconnect hook runs)."""
        ...

    def on_reconnect(self, hook: Callable[[], Awaitable[None]]) -> None:
        """What runs after the stream came back (the engine's reconcile)."""
        ...

    async def server_orders(self) -> list[tuple[str, str, str]]:
        """(client order id, side, raw status) of every order that reached the broker."""
        ...

    async def close(self) -> None: ...


# --- time --------------------------------------------------------------------------------


async def _pump(clock: SimClock, horizon: float) -> None:
    """Wake sleepers due within `horizon` once every other task is waiting."""
    while True:
        await asyncio.sleep(0.001)
        for _ in range(5):
            await asyncio.sleep(0)
        wake = clock.next_wakeup()
        if wake is not None and (wake - clock.now()).total_seconds() <= horizon:
            clock.set(max(wake, clock.now()))


async def quiesce(
    probe: Callable[[], Hashable], *, step: float = 0.004, calm: int = 4, limit: float = 3.0
) -> None:
    """Return once `probe()` has not changed for `calm` consecutive real `step`s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    last: Hashable = object()
    quiet = 0
    while loop.time() < deadline:
        await asyncio.sleep(step)
        now = probe()
        if now == last:
            quiet += 1
            if quiet >= calm:
                return
        else:
            quiet, last = 0, now


async def eventually(check: Callable[[], Awaitable[bool] | bool], within: float = 3.0) -> None:
    """Poll `check` (real time) until it holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


class _Base:
    kind: Kind

    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        self._pump_task = asyncio.get_running_loop().create_task(_pump(clock, PUMP_HORIZON))

    async def _stop_pump(self) -> None:
        self._pump_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._pump_task

    def _bar(self, symbol: str, o: Price, h: Price, low: Price, c: Price) -> Bar:
        begin = _minute(self.clock.now())
        bar = make_bar(begin, str(o), str(h), str(low), str(c), symbol=Symbol(symbol.upper()))
        if self.clock.now() < bar.end:
            self.clock.set(bar.end)
        return bar


# --- SimBroker ---------------------------------------------------------------------------


class SimHarness(_Base):
    kind: Kind = "sim"

    def __init__(self, clock: SimClock, sim: SimBroker) -> None:
        super().__init__(clock)
        self.sim = sim

    @property
    def broker(self) -> Broker:
        return self.sim

    async def set_time(self, moment: datetime) -> None:
        self.clock.set(moment)
        self.sim.tick()
        await self.settle()

    async def bar(self, symbol: str, o: Price, h: Price, low: Price, c: Price) -> Bar:
        bar = self._bar(symbol, o, h, low, c)
        await self.sim.on_bar(bar)
        await self.settle()
        return bar

    async def advance(self, seconds: float) -> None:
        end = self.clock.now() + timedelta(seconds=seconds)
        while self.clock.now() < end:
            self.clock.set(min(end, self.clock.now() + timedelta(seconds=1)))
            self.sim.tick()
            await self.settle()

    async def settle(self) -> None:
        for _ in range(20):
            await asyncio.sleep(0)

    def seed_position(self, symbol: str, qty: Price, price: Price) -> None:
        self.sim.seed_position(Symbol(symbol.upper()), D(qty), D(price))

    def set_liquidity(self, symbol: str, per_bar: Price | None) -> None:
        chunks = () if per_bar is None else (D(per_bar),) * 100
        self.sim.set_partial_fills(PartialFills(chunks=chunks))

    async def release(self) -> None:
        await self.advance(HELD_LATENCY + 1)

    @asynccontextmanager
    async def outage(self) -> AsyncIterator[None]:
        # SimBroker has no stream-only fault: "unavailable" loses the stream's events
        # (and refuses API calls) while the market goes on.
        self.sim.faults.unavailable(True)
        try:
            yield
        finally:
            self.sim.faults.unavailable(False)
            # The connection drop is noticed: every subscription ends (the engine
            # subscribes again and reconciles, as it does for any stream that ends).
            hub = self.sim._hub  # no public "drop the stream" fault on SimBroker
            for sub in list(hub._subscribers):
                await sub.aclose()

    def on_reconnect(self, hook: Callable[[], Awaitable[None]]) -> None:
        # The engine reacts to the end of SimBroker's stream by itself.
        pass

    async def server_orders(self) -> list[tuple[str, str, str]]:
        orders = await self.sim.list_orders(open_only=False, limit=1_000_000)
        return [(o.client_order_id, o.side.value, o.raw_status or o.status.value) for o in orders]

    async def close(self) -> None:
        await self._stop_pump()
        await self.sim.close()


# --- Alpaca over the fake ----------------------------------------------------------------


class AlpacaFakeHarness(_Base):
    kind: Kind = "alpaca"

    def __init__(self, clock: SimClock, fake: RunningFakeAlpaca, alpaca: AlpacaBroker) -> None:
        super().__init__(clock)
        self.fake = fake
        self.alpaca = alpaca
        self._tap: AlpacaSubscription = alpaca.events()
        self._delivered = 0
        self._in_flight = 0
        self._count_in_flight()

    def _count_in_flight(self) -> None:
        """Requests in flight (sent, not answered), so `settle` waits for answers."""
        session = self.alpaca._client._session  # the SDK's requests.Session
        inner = session.request
        lock = threading.Lock()

        def request(method: str, url: str, **kwargs: Any) -> Any:
            with lock:  # worker threads
                self._in_flight += 1
            try:
                return inner(method, url, **kwargs)
            finally:
                with lock:
                    self._in_flight -= 1

        session.request = request  # type: ignore[method-assign,assignment]

    @property
    def broker(self) -> Broker:
        return self.alpaca

    @property
    def rest_requests(self) -> int:
        """REST requests the fake has received (see `count_requests`)."""
        return len(self.fake.faults._hits)

    def _probe(self) -> Hashable:
        self._delivered += len(self._tap.pending())
        return (
            len(self.fake.engine.events),
            self._delivered,
            self.alpaca.requests_sent,
            self._in_flight,
            self.alpaca.stream.connects,
        )

    async def set_time(self, moment: datetime) -> None:
        self.clock.set(moment)
        self.fake.market.set_time(self.clock.now())
        await self.settle()

    async def bar(self, symbol: str, o: Price, h: Price, low: Price, c: Price) -> Bar:
        bar = self._bar(symbol, o, h, low, c)
        start = max(bar.start, self.fake.market.now())
        self.fake.market.push_bar(symbol, str(o), str(h), str(low), str(c), start=start)
        await self.settle()
        return bar

    async def advance(self, seconds: float) -> None:
        end = self.clock.now() + timedelta(seconds=seconds)
        while self.clock.now() < end:
            self.clock.set(min(end, self.clock.now() + timedelta(seconds=1)))
            self.fake.market.set_time(max(self.fake.market.now(), self.clock.now()))
            await self.settle()

    async def settle(self) -> None:
        await quiesce(self._probe)

    def seed_position(self, symbol: str, qty: Price, price: Price) -> None:
        symbol = symbol.upper()
        self.fake.engine.book.positions[symbol] = PositionState(symbol, D(qty), D(qty) * D(price))
        if self.fake.market.last_price(symbol) is None:
            self.fake.market.set_price(symbol, D(price))

    def set_liquidity(self, symbol: str, per_bar: Price | None) -> None:
        self.fake.market.set_liquidity(symbol, None if per_bar is None else D(per_bar))

    async def release(self) -> None:
        self.fake.engine.run_pending()
        await self.settle()

    @asynccontextmanager
    async def outage(self) -> AsyncIterator[None]:
        faults = self.fake.faults
        faults.reject_next_stream_connects(1_000_000)
        await self.fake.trade_stream.disconnect(abrupt=True)
        await self.settle()
        try:
            yield
        finally:
            faults.reject_stream_connects = 0
            await _until_back(self, lambda: self.alpaca.stream.connects)

    def on_reconnect(self, hook: Callable[[], Awaitable[None]]) -> None:
        self.alpaca.set_on_reconnect(hook)

    async def server_orders(self) -> list[tuple[str, str, str]]:
        orders = self.fake.engine.orders.query(status="all", limit=100_000)
        return [(o.client_order_id, o.side, o.status) for o in orders]

    async def close(self) -> None:
        await self._stop_pump()
        await self.alpaca.close()
        await self.fake.stop()


async def _until_back(h: BrokerHarness, connects: Callable[[], int]) -> None:
    """Let the adapter's reconnect backoff (longer than the pump's horizon, so that an
    outage costs a handful of attempts, not thousands) run out on the clock."""
    before = connects()
    for _ in range(10):
        await h.advance(1)
        if connects() > before:
            await h.settle()
            return
    raise AssertionError("the stream did not come back")


def count_requests(fake: RunningFakeAlpaca) -> None:
    """Make the fake remember every REST request for an hour (no rate limit), so
    `len(fake.faults._hits)` counts them (its rate limiter's own log of arrivals)."""
    fake.faults.set_rate_limit(None, window=3600.0)


# --- IBKR over the FakeGateway -----------------------------------------------------------


_OPEN = ("PreSubmitted", "Submitted")


class IbkrFakeHarness(_Base):
    kind: Kind = "ibkr"

    def __init__(self, clock: SimClock, ibkr: IbkrBroker, gateway: FakeGateway) -> None:
        super().__init__(clock)
        self.ibkr = ibkr
        self.gateway = gateway
        self.prices: dict[str, Decimal] = {"AAPL": D(100)}
        self.liquidity: dict[str, Decimal] = {}
        self.hwm: dict[tuple[int, int], Decimal] = {}
        self.hold_cancels = False
        self.hold_replaces = False
        self._held: list[Callable[[], None]] = []
        self._refuse_connects = False
        client: Any = gateway.ib.client
        self._place = client.placeOrder
        self._cancel = client.cancelOrder
        client.placeOrder = self._on_place
        client.cancelOrder = self._on_cancel

    @property
    def broker(self) -> Broker:
        return self.ibkr

    # --- the gateway's edge -------------------------------------------------------------

    def _on_place(self, order_id: int, contract: Any, order: Order) -> None:
        key = (self.gateway.client_id, order_id)
        held = self.gateway.orders.get(key)
        if self.hold_replaces and held is not None and held.acked:
            self._held.append(lambda: self._place(order_id, contract, order))
            return
        self._place(order_id, contract, order)
        asyncio.get_running_loop().call_soon(self._placed, key)  # after the gateway's ack

    def _on_cancel(self, order_id: int, manual_time: Any = "") -> None:
        if self.hold_cancels:
            self._held.append(lambda: self._cancel(order_id, manual_time))
            return
        self._cancel(order_id, manual_time)

    def _placed(self, key: tuple[int, int]) -> None:
        held = self.gateway.orders.get(key)
        if held is None or held.status not in _OPEN:
            return
        last = self.prices.get(held.contract.symbol)
        if last is None:
            return
        self.hwm.setdefault(key, last)
        if held.order.orderType == "MKT":
            self._fill(held, last)

    # --- matching -----------------------------------------------------------------------

    def _fill(self, held: GwOrder, price: Decimal) -> None:
        cap = self.liquidity.get(held.contract.symbol)
        shares = D(str(held.remaining)) if cap is None else min(D(str(held.remaining)), cap)
        if shares <= 0:
            return
        self.gateway.fill(held, float(shares), float(price), silent=not self.gateway.connected)
        symbol = held.contract.symbol
        signed = shares if held.order.action == "BUY" else -shares
        qty, avg = self.gateway.positions.get(symbol, (0.0, 0.0))
        before = D(str(qty))
        after = before + signed
        if after == 0:
            self.gateway.positions.pop(symbol, None)
            return
        cost = D(str(avg)) * before + signed * price if signed > 0 else D(str(avg)) * after
        self.gateway.positions[symbol] = (float(after), float(cost / after))

    def _match(self, held: GwOrder, bar: Bar) -> None:
        order = held.order
        buy = order.action == "BUY"
        o, h, low = bar.open, bar.high, bar.low
        kind = order.orderType
        price: Decimal | None = None
        if kind == "MKT":
            price = o
        elif kind == "LMT":
            limit = D(str(order.lmtPrice))
            if buy and low <= limit:
                price = min(o, limit)
            elif not buy and h >= limit:
                price = max(o, limit)
        elif kind == "STP":
            stop = D(str(order.auxPrice))
            if buy and h >= stop:
                price = max(o, stop)
            elif not buy and low <= stop:
                price = min(o, stop)
        elif kind == "TRAIL" and not buy:
            key = (held.client_id, held.order_id)
            hwm = self.hwm.setdefault(key, o)
            level = (hwm * (1 - D(str(order.trailingPercent)) / 100)).quantize(D("0.01"))
            if low <= level:
                price = min(o, level)
            else:
                self.hwm[key] = max(hwm, h)
        if price is not None:
            self._fill(held, price)

    # --- the protocol -------------------------------------------------------------------

    async def set_time(self, moment: datetime) -> None:
        self.clock.set(moment)
        await self.settle()

    async def bar(self, symbol: str, o: Price, h: Price, low: Price, c: Price) -> Bar:
        bar = self._bar(symbol, o, h, low, c)
        for held in list(self.gateway.orders.values()):
            if (
                held.acked
                and held.status in _OPEN
                and held.contract.symbol == bar.symbol
                and not held.order.parentId
            ):
                self._match(held, bar)
        self.prices[bar.symbol] = bar.close
        await self.settle()
        return bar

    async def advance(self, seconds: float) -> None:
        end = self.clock.now() + timedelta(seconds=seconds)
        while self.clock.now() < end:
            self.clock.set(min(end, self.clock.now() + timedelta(seconds=1)))
            await self.settle()

    def _probe(self) -> Hashable:
        return (len(self.gateway.requests), len(self.gateway.executions), self.gateway.connected)

    async def settle(self) -> None:
        await quiesce(self._probe, step=0.001, calm=3)

    def seed_position(self, symbol: str, qty: Price, price: Price) -> None:
        self.gateway.positions[symbol.upper()] = (float(D(qty)), float(D(price)))
        self.prices.setdefault(symbol.upper(), D(price))

    def set_liquidity(self, symbol: str, per_bar: Price | None) -> None:
        if per_bar is None:
            self.liquidity.pop(symbol.upper(), None)
        else:
            self.liquidity[symbol.upper()] = D(per_bar)

    async def release(self) -> None:
        self.hold_cancels = self.hold_replaces = False
        held, self._held = self._held, []
        for action in held:
            action()
        await self.settle()

    @asynccontextmanager
    async def outage(self) -> AsyncIterator[None]:
        self.gateway.connect_failures = 1_000_000
        self.gateway.drop()
        await self.settle()
        try:
            yield
        finally:
            self.gateway.connect_failures = 0
            await _until_back(self, lambda: self.ibkr.connection.reconnects)

    def on_reconnect(self, hook: Callable[[], Awaitable[None]]) -> None:
        self.ibkr.connection.on_reconnect = hook

    async def server_orders(self) -> list[tuple[str, str, str]]:
        return [
            (h.order.orderRef, h.order.action.lower(), h.status)
            for h in self.gateway.orders.values()
        ]

    async def close(self) -> None:
        await self._stop_pump()
        await self.ibkr.close()


# --- opening one -------------------------------------------------------------------------


@asynccontextmanager
async def open_harness(
    kind: Kind,
    *,
    at: datetime = T0,
    slow_cancels: bool = False,
    slow_replaces: bool = False,
) -> AsyncIterator[BrokerHarness]:
    """A started broker at `at` with AAPL at $100. `slow_cancels` / `slow_replaces`: a
    cancel / replace is taken but completes only at `release()` (a fill can win)."""
    clock = SimClock(at)
    harness: BrokerHarness
    if kind == "sim":
        sim = SimBroker(
            clock,
            config=sim_config(
                cancel_latency=HELD_LATENCY if slow_cancels else 0.0,
                replace_latency=HELD_LATENCY if slow_replaces else 0.0,
            ),
        )
        # A last price for AAPL, so a trailing stop has an anchor.
        warm = make_bar(_minute(at) - timedelta(minutes=1), "100", "100", "100", "100")
        await sim.on_bar(warm)
        harness = SimHarness(clock, sim)
    elif kind == "alpaca":
        config = EngineConfig(
            cancel_delay=None if slow_cancels else 0.0,
            replace_delay=None if slow_replaces else 0.0,
        )
        fake = await start_fake_alpaca(now=at, engine_config=config, rate_limit=None)
        count_requests(fake)
        fake.market.set_price("AAPL", 100)
        alpaca = AlpacaBroker.for_account(
            ACCOUNT,
            env_for(fake),
            clock,
            chat_confirmed=False,
            url_override=fake.base_url,
            calendar=xnys(),
            policy=FAST,
            # Longer than the pump's horizon: reconnects wait for `advance` (see outage).
            stream_backoff=RECONNECT_BACKOFF,
        )
        harness = AlpacaFakeHarness(clock, fake, alpaca)
        await alpaca.start(wait=5.0)
    else:
        ib_config = IbkrConfig(
            pacing_rate=1000,
            pacing_burst=64,
            reconnect_initial_delay=RECONNECT_BACKOFF[0],
            reconnect_max_delay=RECONNECT_BACKOFF[1],
        )
        ibkr, gateway = await connected_broker(
            clock, config=ib_config, gateway=FakeGateway(clock=clock), calendar=xnys()
        )
        ib_harness = IbkrFakeHarness(clock, ibkr, gateway)
        ib_harness.hold_cancels = slow_cancels
        ib_harness.hold_replaces = slow_replaces
        harness = ib_harness
    try:
        yield harness
    finally:
        await harness.close()


# --- an engine over any of them ----------------------------------------------------------


@dataclass
class EngineRig:
    """A started TradingEngine over a harness's broker (SQLite ledger, the same clock)."""

    h: BrokerHarness
    engine: TradingEngine
    ledger: Ledger
    events: list[DomainEvent] = field(default_factory=list)

    async def settle(self) -> None:
        for _ in range(2):
            await self.h.settle()
            await self.engine.idle()
        await self.h.settle()

    async def bar(self, o: Price, h: Price, low: Price, c: Price, *, symbol: str = "AAPL") -> Bar:
        bar = await self.h.bar(symbol, o, h, low, c)
        self.engine.note_bar(bar)
        await self.settle()
        return bar

    async def advance(self, seconds: float) -> None:
        end = self.h.clock.now() + timedelta(seconds=seconds)
        while self.h.clock.now() < end:
            step = min(1.0, (end - self.h.clock.now()).total_seconds())
            await self.h.advance(step)
            await self.engine.idle()
        await self.settle()

    async def enter(self, qty: int = 50, trigger: str = "101", stop: str = "99") -> int:
        """A confirmed stop-buy draft (not filled yet); returns the draft id."""
        review = await self.engine.drafts.create_buy("AAPL", D(trigger), D(stop), qty=D(qty))
        result = await self.engine.drafts.confirm(review.draft_id)
        assert result.ok, result
        await self.settle()
        return review.draft_id

    def of_type(self, kind: type[DomainEvent]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def ledger_orders(self) -> list[OrderRow]:
        with self.ledger.unit_of_work(read_only=True) as uow:
            return list(uow.session.scalars(select(OrderRow).order_by(OrderRow.id)).all())

    def ledger_fills(self) -> list[FillRow]:
        with self.ledger.unit_of_work(read_only=True) as uow:
            return list(uow.session.scalars(select(FillRow).order_by(FillRow.id)).all())

    async def open_sells(self, symbol: str = "AAPL") -> list[OrderSnapshot]:
        return [
            o
            for o in await self.h.broker.list_orders(open_only=True)
            if o.side is Side.SELL and o.symbol == symbol
        ]

    async def position(self, symbol: str = "AAPL") -> Decimal:
        found = [p.qty for p in await self.h.broker.positions() if p.symbol == symbol]
        return found[0] if found else D(0)

    async def stop(self) -> None:
        self.h.on_reconnect(_noop)
        await self.engine.stop()


async def _noop() -> None:
    return None


_accounts = itertools.count(1)


async def engine_rig(
    h: BrokerHarness,
    folder: Path,
    *,
    risk: RiskConfig | None = None,
    protection: ProtectionConfig | None = None,
    sessions: SessionsConfig | None = None,
    options: EngineOptions | None = None,
    allow: bool = True,
) -> EngineRig:
    """A TradingEngine over `h.broker`, started like tests/kit/engine.py does for
    SimBroker (loops in the foreground: time moves by `advance` / `bar`), with the
    broker's reconnect hook wired to the engine's reconcile (the composition root's job)."""
    ledger = file_ledger(folder / f"ledger-{next(_accounts)}.db", h.clock)
    bus = EventBus()
    events: list[DomainEvent] = []
    bus.subscribe(events.append)
    engine = TradingEngine(
        account="paper",
        broker=h.broker,
        ledger=ledger,
        clock=h.clock,
        risk=risk or risk_config(),
        protection=protection or protection_config(),
        sessions=sessions or sessions_config(),
        bus=bus,
        options=options or EngineOptions(tick_seconds=1.0),
    )
    rig = EngineRig(h, engine, ledger, events)

    async def reconcile() -> None:
        await engine.reconciler.run("stream reconnect")

    h.on_reconnect(reconcile)
    await engine.start(background=False)
    if allow and engine.day.m.info.allowed is not True:
        await engine.day.answer(True, "test")
    await rig.settle()
    return rig


async def assert_no_duplicate_and_protected(rig: EngineRig) -> None:
    """The end state every fault scenario must reach: every order the broker holds is one
    the ledger knows (one broker order per client id, no stray resend), at most one entry
    per draft, and every long position covered EXACTLY by live sell protection."""
    ids = [cid for cid, _, _ in await rig.h.server_orders()]
    assert len(ids) == len(set(ids)), f"duplicate client order ids at the broker: {ids}"
    rows = {o.client_order_id: o for o in rig.ledger_orders()}
    unknown = [cid for cid in ids if cid not in rows]
    assert not unknown, f"orders at the broker the ledger does not know: {unknown}"
    live_entries = [
        o.draft_id
        for o in rows.values()
        if o.draft_id is not None and o.client_order_id in ids and o.status is not S.REJECTED
    ]
    assert len(live_entries) == len(set(live_entries)), f"a draft placed twice: {live_entries}"
    for position in await rig.h.broker.positions():
        if position.qty <= 0:
            continue
        covered = sum((o.remaining_qty for o in await rig.open_sells(position.symbol)), start=D(0))
        assert covered == position.qty, (
            f"{position.symbol}: {position.qty} held, {covered} covered by live sells"
        )


__all__ = [
    "AAPL",
    "KINDS",
    "T0",
    "AlpacaFakeHarness",
    "BrokerHarness",
    "EngineRig",
    "IbkrFakeHarness",
    "Kind",
    "SimHarness",
    "assert_no_duplicate_and_protected",
    "count_requests",
    "engine_rig",
    "eventually",
    "ny",
    "open_harness",
    "quiesce",
]
