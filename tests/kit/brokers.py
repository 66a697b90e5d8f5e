"""Stub factories for orders, fills, broker events, bars and a ready SimBroker.

Defaults are deliberately boring (AAPL, 10 shares, whole-cent prices, a normal session
day) so a test only spells out what it is about.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from brokers.sim import PartialFills, SimBroker, SimConfig
from core.broker import BrokerEvent, BrokerEventKind
from core.broker_events import Subscription
from core.clock import NEW_YORK, SimClock
from core.domain import (
    BrokerOrderId,
    ClientOrderId,
    ExecutionId,
    Fill,
    OrderRequest,
    OrderSnapshot,
    OrderStatus,
    OrderType,
    Side,
    Symbol,
    TimeInForce,
)
from core.fills import NO_FRICTION
from core.marketdata.bar import Bar

AAPL = Symbol("AAPL")
MINUTE = timedelta(minutes=1)
# Monday 2025-03-03 is a normal XNYS session (09:30-16:00 New York).
SESSION_DAY = (2025, 3, 3)

_ids = itertools.count(1)


def ny(
    hour: int, minute: int = 0, second: int = 0, *, day: tuple[int, int, int] = SESSION_DAY
) -> datetime:
    """An aware instant at New York wall time on `day` (default: the session day)."""
    return datetime(*day, hour, minute, second, tzinfo=NEW_YORK)


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def d(value: str | int) -> Decimal:
    return Decimal(value)


def make_request(
    order_type: OrderType = OrderType.STOP,
    *,
    client_order_id: str | None = None,
    symbol: Symbol = AAPL,
    side: Side = Side.BUY,
    qty: Decimal | int | str = 10,
    time_in_force: TimeInForce = TimeInForce.DAY,
    limit_price: Decimal | str | None = None,
    stop_price: Decimal | str | None = None,
    trail_percent: Decimal | str | None = None,
    extended_hours: bool = False,
) -> OrderRequest:
    """A valid request; the price a type needs defaults to around $100."""
    if order_type in (OrderType.STOP, OrderType.STOP_LIMIT) and stop_price is None:
        stop_price = "100.00"
    if order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT) and limit_price is None:
        limit_price = "100.50" if side is Side.BUY else "99.50"
    if order_type is OrderType.TRAILING_STOP and trail_percent is None:
        trail_percent = "1"
    return OrderRequest(
        client_order_id=ClientOrderId(client_order_id or f"test-{next(_ids)}"),
        symbol=symbol,
        side=side,
        qty=Decimal(qty),
        order_type=order_type,
        time_in_force=time_in_force,
        limit_price=None if limit_price is None else Decimal(limit_price),
        stop_price=None if stop_price is None else Decimal(stop_price),
        trail_percent=None if trail_percent is None else Decimal(trail_percent),
        extended_hours=extended_hours,
    )


def make_snapshot(
    request: OrderRequest | None = None,
    *,
    broker_order_id: str = "b-1",
    status: OrderStatus = OrderStatus.ACCEPTED,
    filled_qty: Decimal | int = 0,
    avg_fill_price: Decimal | None = None,
    **overrides: Any,
) -> OrderSnapshot:
    request = request or make_request(client_order_id="c-1")
    fields: dict[str, Any] = {
        "broker_order_id": BrokerOrderId(broker_order_id),
        "client_order_id": request.client_order_id,
        "symbol": request.symbol,
        "side": request.side,
        "qty": request.qty,
        "order_type": request.order_type,
        "time_in_force": request.time_in_force,
        "status": status,
        "filled_qty": Decimal(filled_qty),
        "avg_fill_price": avg_fill_price,
        "limit_price": request.limit_price,
        "stop_price": request.stop_price,
        "trail_percent": request.trail_percent,
        "raw_status": status.value,
    }
    fields.update(overrides)
    return OrderSnapshot(**fields)


def make_fill(
    snapshot: OrderSnapshot,
    qty: Decimal | int | str,
    price: Decimal | str = "100.00",
    *,
    execution_id: str | None = None,
    at: datetime | None = None,
    commission: Decimal | str = "0",
) -> Fill:
    return Fill(
        execution_id=ExecutionId(execution_id or f"x-{next(_ids)}"),
        broker_order_id=snapshot.broker_order_id,
        client_order_id=snapshot.client_order_id,
        symbol=snapshot.symbol,
        side=snapshot.side,
        qty=Decimal(qty),
        price=Decimal(price),
        timestamp=at or ny(10),
        commission=Decimal(commission),
    )


def make_event(
    kind: BrokerEventKind,
    snapshot: OrderSnapshot,
    *,
    fill: Fill | None = None,
    at: datetime | None = None,
) -> BrokerEvent:
    return BrokerEvent(kind=kind, order=snapshot, timestamp=at or ny(10), fill=fill)


def make_bar(
    start: datetime,
    open: Decimal | str,
    high: Decimal | str,
    low: Decimal | str,
    close: Decimal | str,
    *,
    symbol: Symbol = AAPL,
    size: timedelta = MINUTE,
    volume: int = 1000,
) -> Bar:
    return Bar(
        symbol=symbol,
        start=start,
        size=size,
        open=Decimal(open),
        high=Decimal(high),
        low=Decimal(low),
        close=Decimal(close),
        volume=volume,
    )


def flat_bar(start: datetime, price: Decimal | str, **kwargs: Any) -> Bar:
    return make_bar(start, price, price, price, price, **kwargs)


def sim_config(**overrides: Any) -> SimConfig:
    """No friction, no latency, whole fills, $100k cash unless overridden."""
    fields: dict[str, Any] = {
        "friction": NO_FRICTION,
        "initial_cash": Decimal(100_000),
        "partial_fills": PartialFills(),
    }
    fields.update(overrides)
    return SimConfig(**fields)


def sim_broker(start: datetime | None = None, **config: Any) -> tuple[SimBroker, SimClock]:
    """A SimBroker on a SimClock at `start` (default 10:00 on the session day)."""
    clock = SimClock(start or ny(10))
    return SimBroker(clock, config=sim_config(**config)), clock


async def feed(broker: SimBroker, clock: SimClock, bar: Bar) -> None:
    """Deliver a bar the way a live feed would: at its end."""
    if clock.now() < bar.end:
        clock.set(bar.end)
    await broker.on_bar(bar)


async def settle(turns: int = 5) -> None:
    """Let background tasks (SimBroker's due-action task, subscribers) run."""
    for _ in range(turns):
        await asyncio.sleep(0)


def subscribe(broker: SimBroker) -> Subscription:
    """SimBroker's event stream with `pending()` for synchronous inspection."""
    subscription = broker.events()
    assert isinstance(subscription, Subscription)
    return subscription


def kinds(subscription: Subscription) -> list[str]:
    """The kinds of the events queued so far (consumes them)."""
    return [event.kind.value for event in subscription.pending()]
