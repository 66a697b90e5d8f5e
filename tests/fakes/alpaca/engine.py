"""The order engine: Alpaca's order lifecycle, rejections, fills and trade_updates events.

Lifecycle (events in this order, each also visible over REST):
- submit in a session where the order can trade: `pending_new`, then after `ack_delay`
  `new` (a marketable market/limit order, or a stop already through its level, then fills
  at the last price right away); outside it: `accepted`, then `new` at the next open.
- fills: `partial_fill`... `fill` (one uuid execution each, position and cash booked).
  The event's `execution_id` is the uuid part of the REST FILL activity id unless
  `distinct_execution_ids` is set: Alpaca documents no relation between the two, so the
  adapter must de-duplicate correctly either way (docs/alpaca.md).
- cancel: `pending_cancel` at once (DELETE answered 204), `canceled` after `cancel_delay`;
  a fill in between wins (no `canceled`).
- replace: old `pending_replace`, after `replace_delay` old `replaced` + new `new`; if the
  old order filled in between: `order_replace_rejected` (old) and `rejected` (new).
- `day` orders expire at their session's close (20:00 ET if extended_hours): `expired`.
Delays of None queue the step until `run_pending()`: the test decides when it happens.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from . import checks, rules
from .book import AccountConfig, Book
from .fills import Tick, fill_price, fill_qty, trail_level
from .models import (
    AlpacaAPIError,
    Execution,
    FakeOrder,
    TradeEventRecord,
    forbidden,
    not_found,
    unprocessable,
)
from .sessions import Phase, SessionCalendar
from .store import OrderStore
from .wire import new_id, order_json


class MarketView(Protocol):
    calendar: SessionCalendar

    def now(self) -> datetime: ...
    def last_price(self, symbol: str) -> Decimal | None: ...
    def liquidity(self, symbol: str) -> Decimal | None: ...
    def prev_close(self, symbol: str) -> Decimal | None: ...


@dataclass
class EngineConfig:
    """Delays are real seconds on the event loop (None: wait for `run_pending()`)."""

    ack_delay: float | None = 0.0  # pending_new -> new
    cancel_delay: float | None = 0.0  # pending_cancel -> canceled
    replace_delay: float | None = 0.0  # pending_replace -> replaced (+ new order live)
    outside_rth: rules.OutsideRth = "queue"
    fill_on_ack: bool = True  # marketable orders fill at the last price when acknowledged
    random_partial_fills: float = 0.0
    """Probability that a fill takes only part of what is left (paper does ~10%)."""
    seed: int = 0
    distinct_execution_ids: bool = False
    """trade_updates `execution_id` differs from the FILL activity's uuid (may be switched
    at any time, also over `POST /_control/options`)."""


class OrderEngine:
    def __init__(
        self,
        market: MarketView,
        config: EngineConfig | None = None,
        account: AccountConfig | None = None,
    ) -> None:
        self.market = market
        self.config = config or EngineConfig()
        self.book = Book(account or AccountConfig(), market.last_price, market.prev_close)
        self.events: list[TradeEventRecord] = []
        self.listeners: list[Callable[[TradeEventRecord], None]] = []
        self.orders = OrderStore()
        self._rng = random.Random(self.config.seed)
        self._manual: list[Callable[[], None]] = []
        self._timers: list[asyncio.TimerHandle] = []

    # ----------------------------------------------------------------- queries
    def order(self, order_id: str) -> FakeOrder:
        return self.orders.get(order_id)

    def open_orders(self, exclude: FakeOrder | None = None) -> list[FakeOrder]:
        return self.orders.open(exclude)

    def account_json(self) -> dict[str, Any]:
        return self.book.account_json(self.open_orders(), self.market.now())

    # ----------------------------------------------------------------- submit
    def submit(self, body: Any) -> FakeOrder:
        order = self._create(rules.parse_submit(body))
        self._route(order)
        return order

    def _create(self, spec: rules.OrderSpec, replacing: FakeOrder | None = None) -> FakeOrder:
        now = self.market.now()
        cid = spec.client_order_id or new_id()
        if self.orders.has_client_id(cid):
            raise unprocessable("client_order_id must be unique", code=40010001)
        rules.check_session(
            spec.type,
            spec.extended_hours,
            self.market.calendar.phase(now),
            self.config.outside_rth,
        )
        others = self.open_orders(exclude=replacing)
        checks.sell_qty(spec, self.book, others)
        checks.wash_trade(spec, others)
        order = FakeOrder(
            id=new_id(),
            client_order_id=cid,
            symbol=spec.symbol,
            side=spec.side,
            type=spec.type,
            time_in_force=spec.time_in_force,
            qty=spec.qty,
            extended_hours=spec.extended_hours,
            created_at=now,
            status="pending_new",
            limit_price=spec.limit_price,
            stop_price=spec.stop_price,
            trail_percent=spec.trail_percent,
            trail_price=spec.trail_price,
            position_intent=spec.position_intent,
            updated_at=now,
            submitted_at=now,
        )
        if spec.side == "buy":
            checks.buying_power(order, self.book, others, self.market.last_price(order.symbol))
        if order.time_in_force == "day":
            order.expires_at = checks.day_expiry(order, now, self.market.calendar)
        self.orders.add(order)
        return order

    def _eligible(self, order: FakeOrder, phase: Phase) -> bool:
        return phase == "rth" or (order.extended_hours and phase in ("pre", "post"))

    def _route(self, order: FakeOrder) -> None:
        if self._eligible(order, self.market.calendar.phase(self.market.now())):
            self._emit("pending_new", order)
            self._later(self.config.ack_delay, lambda: self._ack(order))
        else:
            order.status = "accepted"
            self._emit("accepted", order)

    def _ack(self, order: FakeOrder, fill_now: bool = True) -> None:
        if order.status != "pending_new":
            return
        replaced = self.orders.find(order.replaces) if order.replaces else None
        if replaced is not None and replaced.status == "pending_replace":
            return  # a replacement goes live when the replace completes
        self._activate(order, fill_now=fill_now)

    def _activate(self, order: FakeOrder, *, fill_now: bool) -> None:
        order.status = "new"
        order.live = True
        order.touch(self.market.now())
        self._emit("new", order)
        last = self.market.last_price(order.symbol)
        if fill_now and self.config.fill_on_ack and last is not None:
            self._try_fill(order, Tick.price(last, self.market.now()))

    # ----------------------------------------------------------------- cancel
    def cancel(self, order_id: str) -> None:
        order = self.order(order_id)
        if order.status == "pending_cancel":
            return
        if not order.is_open or order.status == "pending_replace":
            raise unprocessable(f'order is already in "{order.status}" state')
        self._begin_cancel(order, immediate=False)

    def cancel_all(self) -> list[tuple[FakeOrder, int, dict[str, Any] | None]]:
        results: list[tuple[FakeOrder, int, dict[str, Any] | None]] = []
        for order in self.open_orders():
            try:
                self.cancel(order.id)
                results.append((order, 200, None))
            except AlpacaAPIError as exc:
                results.append((order, exc.status, exc.body()))
        return results

    def _begin_cancel(self, order: FakeOrder, *, immediate: bool) -> None:
        order.status = "pending_cancel"
        order.cancel_requested = True
        order.touch(self.market.now())
        self._emit("pending_cancel", order)
        if immediate:
            self._finish_cancel(order)
        else:
            self._later(self.config.cancel_delay, lambda: self._finish_cancel(order))

    def _finish_cancel(self, order: FakeOrder) -> None:
        if order.status != "pending_cancel":
            return  # a fill won the race
        now = self.market.now()
        order.status = "canceled"
        order.canceled_at = now
        order.touch(now)
        self._emit("canceled", order)

    # ----------------------------------------------------------------- replace
    def replace(self, order_id: str, body: Any) -> FakeOrder:
        old = self.order(order_id)
        if old.status in ("accepted", "pending_new"):
            raise unprocessable("unable to replace order, order isn't sent to exchange yet")
        if not old.is_open or old.status in ("pending_cancel", "pending_replace"):
            raise unprocessable(f'order is already in "{old.status}" state')
        spec = rules.parse_replace(body, old)
        if rules.replace_changes_nothing(spec, old):
            raise forbidden("unable to replace order, no change requested")
        percent = spec.trail if old.trail_percent is not None else None
        trail_price = spec.trail if old.trail_price is not None else None
        new_spec = rules.OrderSpec(
            symbol=old.symbol,
            side=old.side,
            type=old.type,
            time_in_force=spec.time_in_force,
            qty=spec.qty,
            extended_hours=old.extended_hours,
            client_order_id=spec.client_order_id,
            limit_price=spec.limit_price,
            stop_price=spec.stop_price,
            trail_percent=percent or old.trail_percent,
            trail_price=trail_price or old.trail_price,
            position_intent=old.position_intent,
        )
        new = self._create(new_spec, replacing=old)
        new.replaces = old.id
        if old.type == "trailing_stop" and old.hwm is not None:
            new.hwm = old.hwm
            new.stop_price = trail_level(new, old.hwm)
        old.status = "pending_replace"
        old.replacement_id = new.id
        old.touch(self.market.now())
        self._emit("pending_replace", old)
        before = old.filled_qty
        self._later(self.config.replace_delay, lambda: self._finish_replace(old, new, before))
        return new

    def _finish_replace(self, old: FakeOrder, new: FakeOrder, filled_before: Decimal) -> None:
        now = self.market.now()
        new.qty -= old.filled_qty - filled_before  # fills on the old order while pending
        if old.status != "pending_replace" or new.qty <= 0:
            new.status = "rejected"
            new.failed_at = now
            new.touch(now)
            if old.status == "pending_replace":
                old.status = "filled" if old.filled_qty >= old.qty else "partially_filled"
            self._emit("order_replace_rejected", old)
            self._emit("rejected", new)
            return
        old.status = "replaced"
        old.replaced_at = now
        old.replaced_by = new.id
        old.touch(now)
        self._emit("replaced", old)
        if self._eligible(new, self.market.calendar.phase(now)):
            self._activate(new, fill_now=True)
        else:
            new.status = "accepted"
            self._emit("accepted", new)

    # ----------------------------------------------------------------- positions
    def close_position(
        self, symbol: str, qty: Decimal | None = None, percentage: Decimal | None = None
    ) -> FakeOrder:
        pos = self.book.positions.get(symbol.upper())
        if pos is None:
            raise not_found("position does not exist")
        amount = abs(pos.qty)
        if qty is not None:
            amount = qty
        elif percentage is not None:
            amount = (abs(pos.qty) * percentage / 100).quantize(Decimal("1e-9"))
        side = "sell" if pos.qty > 0 else "buy"
        spec = rules.OrderSpec(pos.symbol, side, "market", "day", amount, False, None)
        order = self._create(spec)
        self._route(order)
        return order

    def close_all(self, cancel_orders: bool) -> list[dict[str, Any]]:
        if cancel_orders:
            for order in self.open_orders():
                if order.status not in ("pending_cancel", "pending_replace"):
                    self._begin_cancel(order, immediate=True)
        results: list[dict[str, Any]] = []
        for symbol in sorted(self.book.positions):
            try:
                order = self.close_position(symbol)
                results.append({"symbol": symbol, "status": 200, "body": order_json(order)})
            except AlpacaAPIError as exc:
                results.append({"symbol": symbol, "status": exc.status, "body": exc.body()})
        return results

    # ----------------------------------------------------------------- market
    def on_tick(self, symbol: str, tick: Tick) -> None:
        """Orders on `symbol` meet a bar or a price (see fills.py for the rules)."""
        if self.config.ack_delay is not None:
            for order in self.open_orders():
                if order.symbol == symbol:
                    self._ack(order, fill_now=False)
        phase = self.market.calendar.phase(tick.start)
        for order in self.open_orders():
            if order.symbol == symbol and self._eligible(order, phase):
                self._try_fill(order, tick)

    def on_boundary(self, kind: str) -> None:
        """The clock crossed a pre-market open, open, close or extended close."""
        now = self.market.now()
        for order in self.open_orders():
            if order.expires_at is not None and order.expires_at <= now:
                order.status = "expired"
                order.expired_at = now
                order.touch(now)
                self._emit("expired", order)
        if kind in ("pre_open", "open"):
            for order in self.open_orders():
                if order.status == "accepted" and (kind == "open" or order.extended_hours):
                    self._activate(order, fill_now=False)

    def execute(self, order_id: str, qty: Decimal, price: Decimal) -> Execution:
        """Force an execution (test control), whatever the market does."""
        order = self.order(order_id)
        if not order.can_trade:
            raise ValueError(f"order {order_id} cannot trade in status {order.status}")
        return self._execute(order, min(qty, order.remaining), price)

    def _try_fill(self, order: FakeOrder, tick: Tick) -> None:
        if not (order.live and order.can_trade):
            return
        price = fill_price(order, tick)
        if price is None:
            return
        qty = fill_qty(
            order.remaining,
            self.market.liquidity(order.symbol),
            self.config.random_partial_fills,
            self._rng,
        )
        if qty > 0:
            self._execute(order, qty, price)

    def _execute(self, order: FakeOrder, qty: Decimal, price: Decimal) -> Execution:
        now = self.market.now()
        order.filled_qty += qty
        order.filled_notional += qty * price
        full = order.filled_qty >= order.qty
        if full:
            order.status = "filled"
            order.filled_at = now
        elif order.status == "new":
            order.status = "partially_filled"
        order.touch(now)
        execution = Execution(
            id=new_id(),
            order_id=order.id,
            symbol=order.symbol,
            side=order.side,
            qty=qty,
            price=price,
            timestamp=now,
            cum_qty=order.filled_qty,
            leaves_qty=order.remaining,
            order_status="filled" if full else "partially_filled",
        )
        position_qty = self.book.apply(order, execution)
        self._emit(
            "fill" if full else "partial_fill",
            order,
            execution_id=new_id() if self.config.distinct_execution_ids else execution.id,
            price=price,
            qty=qty,
            position_qty=position_qty,
        )
        return execution

    # ----------------------------------------------------------------- plumbing
    def _emit(self, event: str, order: FakeOrder, **fill: Any) -> None:
        record = TradeEventRecord(event, self.market.now(), order_json(order), **fill)
        self.events.append(record)
        for listener in list(self.listeners):
            listener(record)

    def _later(self, delay: float | None, step: Callable[[], None]) -> None:
        if delay is None:
            self._manual.append(step)
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            step()
            return
        self._timers = [t for t in self._timers if not t.cancelled()]
        self._timers.append(loop.call_later(delay, step))

    def run_pending(self) -> int:
        """Run the acks, cancels and replaces queued by a delay of None; returns how many."""
        steps, self._manual = self._manual, []
        for step in steps:
            step()
        return len(steps)

    def close(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
