"""SimBroker: an in-process broker with the Broker protocol and Alpaca's rules.

Driven by bars (`await on_bar(bar)`) and by the injected clock: acks, cancels and
replaces complete after their configured latency on that clock, queued orders wake at
the open and DAY orders expire at the close. A background task sleeps on the clock until
the next due action; every API call and every bar also first runs what is due, so a test
that moves a SimClock by hand sees a consistent broker without waiting on the task.

Rules enforced (BROKERS.md): client_order_id unique forever, the capability matrix
(Alpaca's), sub-penny prices, insufficient qty (every open sell reserves its shares, even
while its cancel is pending), wash trades, buying power, cancel and replace as
asynchronous requests that a fill can beat, replace refused while accepted/pending.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace as dataclass_replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from brokers.sim.config import PartialFills, SimConfig, SimFaults
from brokers.sim.exchange import SimExchange
from brokers.sim.pump import DuePump
from brokers.sim.rules import (
    CODE_DUPLICATE,
    CODE_FORBIDDEN,
    buying_power,
    check_capability,
    check_qty,
    replacement_request,
    validate_new,
)
from brokers.sim.state import (
    FORMAT_VERSION,
    ActionKind,
    Book,
    Holding,
    SimOrder,
    book_from_json,
    book_to_json,
    read_json,
    write_atomically,
)
from core.broker import (
    Broker,
    BrokerEvent,
    DuplicateClientOrderId,
    NotCancelable,
    NotFound,
    NotReplaceable,
    OrderRejected,
)
from core.broker_events import EventHub
from core.calendar import TradingCalendar, xnys
from core.capabilities import SIM, CapabilityMatrix
from core.clock import Clock
from core.domain import (
    ZERO,
    AccountSnapshot,
    BrokerOrderId,
    ClientOrderId,
    Fill,
    OrderRequest,
    OrderSnapshot,
    OrderStatus,
    Position,
    Side,
    Symbol,
    TimeInForce,
)
from core.marketdata.bar import Bar

S = OrderStatus


class SimBroker:
    """See the module docstring. `faults` injects failures; `save`/`load` persist."""

    def __init__(
        self,
        clock: Clock,
        *,
        config: SimConfig | None = None,
        calendar: TradingCalendar | None = None,
        persist_path: Path | str | None = None,
        name: str = "sim",
        book: Book | None = None,
    ) -> None:
        self._clock = clock
        self._config = config or SimConfig()
        self._name = name
        self._persist_path = None if persist_path is None else Path(persist_path)
        self.faults = SimFaults()
        self._hub = EventHub()
        self._exchange = SimExchange(
            book or Book(cash=self._config.initial_cash),
            self._config,
            clock,
            calendar or xnys(),
            self._hub,
            self.faults,
        )
        self._pump = DuePump(clock, self._book_next_due, self.tick)
        self._closed = False
        self._persist()

    # --- identity -----------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def capabilities(self) -> CapabilityMatrix:
        return SIM

    @property
    def config(self) -> SimConfig:
        return self._config

    @property
    def _book(self) -> Book:
        return self._exchange.book

    # --- orders -------------------------------------------------------------------------

    async def submit(self, request: OrderRequest) -> OrderSnapshot:
        delay = self.faults.take_submit_delay()
        if delay > 0:
            await self._clock.sleep(delay)  # a slow wire: the request lands after this
        self._enter("submit")
        server_error = self.faults.take_server_error(request.client_order_id)
        if server_error is not None:
            raise server_error
        now = self._clock.now()
        if request.client_order_id in self._book.by_client:
            raise DuplicateClientOrderId(
                "client_order_id must be unique",
                CODE_DUPLICATE,
                client_order_id=request.client_order_id,
            )
        rejection = self.faults.take_rejection()
        if rejection is not None and not rejection.asynchronous:
            raise OrderRejected(
                rejection.reason, rejection.code, client_order_id=request.client_order_id
            )
        validate_new(self._exchange, request, now, self._config.margin_multiplier)
        seq, order_id = self._book.new_order_id()
        order = SimOrder.from_request(seq, order_id, request, now)
        self._book.add(order)
        due = now + timedelta(seconds=max(0.0, self._config.ack_latency))
        if rejection is not None:
            order.pending_reject = rejection.reason
            self._exchange.publish_pending_new(order, now)
            self._book.schedule(due, ActionKind.REJECT, order_id)
        elif due > now:
            self._exchange.publish_pending_new(order, now)
            self._book.schedule(due, ActionKind.ACCEPT, order_id)
        else:
            self._exchange.accept(order, now)
        snapshot = order.snapshot()
        self._changed()
        timeout = self.faults.take_submit_timeout(request.client_order_id)
        if timeout is not None:
            raise timeout
        return snapshot

    async def cancel(self, broker_order_id: BrokerOrderId) -> None:
        self._enter("cancel")
        order = self._order(broker_order_id)
        if order.status.is_terminal:
            raise NotCancelable(f'order is already in "{order.raw_status}" state')
        if order.status is S.PENDING_CANCEL:
            return  # already requested; the first request completes it
        self._exchange.request_cancel(order, self._clock.now())
        self._changed()

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
        self._enter("replace")
        now = self._clock.now()
        old = self._order(broker_order_id)
        if (
            old.status not in (S.ACCEPTED, S.PARTIALLY_FILLED)
            or old.raw_status in ("accepted", "pending_replace")
            or old.awaiting_replace
        ):
            raise NotReplaceable(f'order is in "{old.raw_status}" state and cannot be replaced')
        changes = {
            "qty": qty,
            "stop_price": stop_price,
            "limit_price": limit_price,
            "trail_percent": trail_percent,
            "time_in_force": time_in_force,
        }
        if client_order_id is None and all(
            value is None or value == getattr(old, name) for name, value in changes.items()
        ):
            raise OrderRejected("replace request changes nothing", CODE_FORBIDDEN)
        seq, new_id = self._book.new_order_id()
        new_client = client_order_id or ClientOrderId(f"{old.client_order_id}.r{seq}")
        if new_client in self._book.by_client:
            raise DuplicateClientOrderId(
                "client_order_id must be unique", CODE_DUPLICATE, client_order_id=new_client
            )
        request = replacement_request(
            old,
            new_client,
            qty=qty,
            stop_price=stop_price,
            limit_price=limit_price,
            trail_percent=trail_percent,
            time_in_force=time_in_force,
        )
        check_capability(self._exchange, request, now)
        if request.side is Side.SELL:
            check_qty(self._exchange, request, exclude=old)
        new = SimOrder.from_request(
            seq, new_id, request, now, replaces=old.broker_order_id, qty_from_remaining=qty is None
        )
        self._book.add(new)
        self._exchange.request_replace(old, new, now)
        self._changed()
        return new.snapshot()

    async def get_order(self, broker_order_id: BrokerOrderId) -> OrderSnapshot:
        self._enter("get_order")
        return self._order(broker_order_id).snapshot()

    async def get_order_by_client_id(self, client_order_id: ClientOrderId) -> OrderSnapshot | None:
        self._enter("get_order_by_client_id")
        order_id = self._book.by_client.get(client_order_id)
        return None if order_id is None else self._book.orders[order_id].snapshot()

    async def list_orders(
        self, *, open_only: bool, since: datetime | None = None, limit: int = 500
    ) -> list[OrderSnapshot]:
        self._enter("list_orders")
        chosen = [
            order
            for order in self._book.orders.values()
            if (not open_only or order.is_open) and (since is None or order.created_at >= since)
        ]
        chosen.sort(key=lambda order: (order.created_at, order.seq), reverse=True)
        return [order.snapshot() for order in chosen[:limit]]

    # --- account ------------------------------------------------------------------------

    async def positions(self) -> list[Position]:
        self._enter("positions")
        return [
            Position(
                symbol=symbol,
                qty=holding.qty,
                avg_entry_price=holding.avg_price,
                market_price=self._mark_price(symbol),
            )
            for symbol, holding in sorted(self._book.positions.items())
        ]

    async def account(self) -> AccountSnapshot:
        self._enter("account")
        book = self._book
        market_value = sum(
            (
                holding.qty * (self._mark_price(symbol) or holding.avg_price)
                for symbol, holding in book.positions.items()
            ),
            ZERO,
        )
        return AccountSnapshot(
            account_id=self._config.account_id,
            equity=book.cash + market_value,
            cash=book.cash,
            buying_power=buying_power(book, self._config.margin_multiplier),
        )

    async def fills_since(self, since: datetime) -> list[Fill]:
        self._enter("fills_since")
        return [fill for fill in self._book.fills if fill.timestamp >= since]

    def events(self) -> AsyncIterator[BrokerEvent]:
        return self._hub.subscribe()

    async def close(self) -> None:
        self._closed = True
        await self._pump.stop()
        self._persist()
        self._hub.close()

    # --- the market ---------------------------------------------------------------------

    async def on_bar(self, bar: Bar) -> None:
        """A closed bar for one symbol. Runs actions due before the bar, matches the bar,
        then runs what is due up to now (the clock should be at or past `bar.end`)."""
        self._exchange.process_due(bar.start)
        self._exchange.on_bar(bar)
        self._exchange.process_due(self._clock.now())
        self._changed()

    def tick(self) -> None:
        """Run every action due by the clock's now (what the background task does)."""
        if self._exchange.process_due(self._clock.now()):
            self._persist()
            self._ensure_pump()  # what ran may have scheduled more (expiry, activation)
        if self._exchange.release_held(self._clock.now()):
            self._ensure_pump()

    def flush_events(self) -> None:
        """Deliver every stream event the wire still holds (delayed or waiting to be
        overtaken), as if the faults on the wire had cleared."""
        self._exchange.release_held(self._clock.now(), everything=True)

    @property
    def holds_events(self) -> bool:
        """Stream events are held on the wire by an injected fault."""
        return self._exchange.holds_events

    def peek_orders(self) -> list[OrderSnapshot]:
        """Every order's snapshot as the broker holds it now, oldest first: no faults,
        no due work run (an observer's view for model checks, not part of the API)."""
        return [order.snapshot() for order in sorted(self._book.orders.values(), key=_seq)]

    def peek_positions(self) -> dict[Symbol, Decimal]:
        """Held quantities as the broker holds them now (no faults, no due work run)."""
        return {symbol: holding.qty for symbol, holding in self._book.positions.items()}

    def set_partial_fills(self, policy: PartialFills) -> None:
        self._config = dataclass_replace(self._config, partial_fills=policy)
        self._exchange.config = self._config
        self._persist()

    def seed_position(self, symbol: Symbol, qty: Decimal, avg_price: Decimal) -> None:
        """Start with shares already held (transferred in: cash is not touched)."""
        if qty == 0:
            self._book.positions.pop(symbol, None)
        else:
            self._book.positions[symbol] = Holding(qty, avg_price)
        self._persist()

    # --- persistence --------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "name": self._name,
            "saved_at": self._clock.now().isoformat(),
            "config": self._config.to_json(),
            "book": book_to_json(self._book),
        }

    def save(self, path: Path | str) -> None:
        write_atomically(Path(path), self.to_json())

    @classmethod
    def load(
        cls,
        path: Path | str,
        clock: Clock,
        *,
        config: SimConfig | None = None,
        calendar: TradingCalendar | None = None,
        persist: bool = True,
    ) -> SimBroker:
        """Restore a saved broker. With `persist`, it keeps saving to `path`."""
        data = read_json(Path(path))
        return cls(
            clock,
            config=config or SimConfig.from_json(data["config"]),
            calendar=calendar,
            persist_path=Path(path) if persist else None,
            name=str(data.get("name", "sim")),
            book=book_from_json(data["book"]),
        )

    @classmethod
    def open(
        cls,
        path: Path | str,
        clock: Clock,
        *,
        config: SimConfig | None = None,
        calendar: TradingCalendar | None = None,
    ) -> SimBroker:
        """Load the broker persisted at `path`, or start a new one persisting there."""
        if Path(path).exists():
            return cls.load(path, clock, config=config, calendar=calendar)
        return cls(clock, config=config, calendar=calendar, persist_path=path)

    # --- internals ----------------------------------------------------------------------

    def _enter(self, call: str) -> None:
        if self._closed:
            raise RuntimeError("SimBroker is closed")
        self.faults.gate(call)
        self.tick()

    def _changed(self) -> None:
        self._persist()
        self._ensure_pump()

    def _persist(self) -> None:
        if self._persist_path is not None:
            self.save(self._persist_path)

    def _order(self, broker_order_id: BrokerOrderId) -> SimOrder:
        order = self._book.orders.get(broker_order_id)
        if order is None:
            raise NotFound(f"order {broker_order_id} not found")
        return order

    def _mark_price(self, symbol: Symbol) -> Decimal | None:
        mark = self._book.marks.get(symbol)
        return None if mark is None else mark.price

    def _book_next_due(self) -> datetime | None:
        due = [d for d in (self._book.next_due(), self._exchange.next_release()) if d is not None]
        return min(due, default=None)

    def _ensure_pump(self) -> None:
        if not self._closed and self._book_next_due() is not None:
            self._pump.poke()


def _seq(order: SimOrder) -> int:
    return order.seq


def _conforms(broker: SimBroker) -> Broker:
    """Static proof (mypy) that SimBroker implements the Broker protocol."""
    return broker
