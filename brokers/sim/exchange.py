"""SimBroker's matching side: order lifecycle at the broker, fills, positions and cash.

Everything here is synchronous and driven by two things only: bars (`on_bar`) and
scheduled actions that come due on the injected clock (acks, cancels and replaces after
their latency, queued orders at the open, DAY orders at the close). The API side
(`brokers.sim.broker`) validates requests and decides when to run due actions.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from brokers.sim.config import PartialFills, SimConfig, SimFaults, WireFault
from brokers.sim.matching import match_bar, priority, works_in
from brokers.sim.state import (
    ActionKind,
    Book,
    Holding,
    Mark,
    SimOrder,
)
from core.broker import BrokerEvent, BrokerEventKind
from core.broker_events import EventHub
from core.calendar import (
    AFTER_HOURS_END,
    HALF_DAY_AFTER_HOURS_END,
    PRE_MARKET_START,
    SessionPhase,
    TradingCalendar,
    TradingSession,
)
from core.clock import NEW_YORK, Clock
from core.domain import ZERO, Fill, OrderStatus, OrderType, Side, Symbol, TimeInForce
from core.fills import marketable_limit_fill
from core.marketdata.bar import Bar

K = BrokerEventKind
S = OrderStatus


class SimExchange:
    def __init__(
        self,
        book: Book,
        config: SimConfig,
        clock: Clock,
        calendar: TradingCalendar,
        hub: EventHub,
        faults: SimFaults,
    ) -> None:
        self.book = book
        self.config = config
        self.clock = clock
        self.calendar = calendar
        self.hub = hub
        self.faults = faults
        # Event times never go backwards: an action processed after a bar it was due
        # inside of is stamped no earlier than that bar's fills.
        self._last_at: datetime | None = None
        # Events the wire holds back (injected faults): delayed ones with their due time,
        # and those waiting to be overtaken by the next event. Not part of the book.
        self._delayed: list[tuple[datetime, BrokerEvent]] = []
        self._overtaken: list[BrokerEvent] = []

    def stamp(self, at: datetime) -> datetime:
        if self._last_at is not None and at < self._last_at:
            return self._last_at
        self._last_at = at
        return at

    # --- events -------------------------------------------------------------------------

    def publish(
        self, kind: BrokerEventKind, order: SimOrder, at: datetime, fill: Fill | None = None
    ) -> None:
        if self.faults.drops_event():
            return  # lost on the wire; the book still changed
        event = BrokerEvent(kind, order.snapshot(), at, fill)
        match self.faults.take_wire_fault():
            case WireFault.DELAY:
                due = self.clock.now() + timedelta(seconds=self.faults.event_delay)
                self._delayed.append((due, event))
                return
            case WireFault.REORDER:
                self._overtaken.append(event)
                return
            case WireFault.DUPLICATE:
                self.hub.publish(event)
                self.hub.publish(event)
            case WireFault.DELIVER:
                self.hub.publish(event)
        overtaken, self._overtaken = self._overtaken, []
        for late in overtaken:
            self.hub.publish(late)

    def release_held(self, now: datetime, *, everything: bool = False) -> bool:
        """Deliver delayed events whose time has come (all held events with
        `everything`). True if any was delivered."""
        due: list[tuple[datetime, BrokerEvent]] = []
        keep: list[tuple[datetime, BrokerEvent]] = []
        for pair in self._delayed:
            (due if everything or pair[0] <= now else keep).append(pair)
        self._delayed = keep
        released = [event for _, event in sorted(due, key=lambda pair: pair[0])]
        if everything:
            released += self._overtaken
            self._overtaken = []
        for event in released:
            self.hub.publish(event)
        return bool(released)

    def next_release(self) -> datetime | None:
        return min((at for at, _ in self._delayed), default=None)

    @property
    def holds_events(self) -> bool:
        return bool(self._delayed or self._overtaken)

    def _set(self, order: SimOrder, status: OrderStatus, raw: str, at: datetime) -> None:
        order.status = status
        order.raw_status = raw
        order.updated_at = at

    # --- sessions -----------------------------------------------------------------------

    def _session_end(self, session: TradingSession, extended: bool) -> datetime:
        if not extended:
            return session.close
        return session.at(HALF_DAY_AFTER_HOURS_END if session.is_half_day else AFTER_HOURS_END)

    def window(self, order: SimOrder, at: datetime) -> tuple[datetime, datetime]:
        """(active_from, session end) of the session an order placed at `at` works in:
        the current one if it has not ended, else the next. Outside it, the order waits."""
        extended = order.extended_hours
        day = at.astimezone(NEW_YORK).date()
        session = self.calendar.session(day)
        if session is None or at >= self._session_end(session, extended):
            session = self.calendar.next_session(day)
        end = self._session_end(session, extended)
        if extended and self.calendar.phase(at) is SessionPhase.OVERNIGHT:
            return at, end  # Alpaca's overnight venue takes extended limit orders now
        start = session.at(PRE_MARKET_START) if extended else session.open
        return max(at, start), end

    def mark_is_current(self, symbol: Symbol, at: datetime) -> Mark | None:
        """The last price, if it belongs to the phase we are in (not yesterday's close)."""
        mark = self.book.marks.get(symbol)
        if mark is None:
            return None
        same_day = mark.bar_start.astimezone(NEW_YORK).date() == at.astimezone(NEW_YORK).date()
        same_phase = self.calendar.phase(mark.bar_start) is self.calendar.phase(at)
        return mark if same_day and same_phase else None

    # --- lifecycle ----------------------------------------------------------------------

    def accept(self, order: SimOrder, at: datetime) -> None:
        start, end = self.window(order, at)
        order.active_from = start
        if order.order_type is OrderType.TRAILING_STOP and order.trail_mark is None:
            mark = self.mark_is_current(order.symbol, at) if start <= at else None
            order.trail_mark = None if mark is None else mark.anchor
        if order.time_in_force is TimeInForce.DAY:
            order.expires_at = end
            self.book.schedule(end, ActionKind.EXPIRE, order.broker_order_id)
        if start > at:
            self._set(order, S.ACCEPTED, "accepted", at)
            self.publish(K.ACCEPTED, order, at)
            self.book.schedule(start, ActionKind.ACTIVATE, order.broker_order_id)
            return
        self._set(order, S.ACCEPTED, "new", at)
        self.publish(K.NEW, order, at)
        if order.order_type in (OrderType.MARKET, OrderType.LIMIT):
            self.book.schedule(at, ActionKind.EXECUTE, order.broker_order_id)

    def publish_pending_new(self, order: SimOrder, at: datetime) -> None:
        self.publish(K.PENDING_NEW, order, at)

    def request_replace(self, old: SimOrder, new: SimOrder, at: datetime) -> None:
        old.raw_status = "pending_replace"
        old.updated_at = at
        self.publish(K.PENDING_REPLACE, old, at)
        due = self._after(at, self.config.replace_latency)
        self.book.schedule(due, ActionKind.REPLACE, new.broker_order_id)

    def activate(self, order: SimOrder, at: datetime) -> None:
        if order.status is S.ACCEPTED and order.raw_status == "accepted":
            self._set(order, S.ACCEPTED, "new", at)
            self.publish(K.NEW, order, at)

    def reject(self, order: SimOrder, reason: str, at: datetime) -> None:
        if order.status in (S.PENDING_SUBMIT, S.SUBMITTED):
            order.reject_reason = reason
            order.awaiting_replace = False
            self._set(order, S.REJECTED, "rejected", at)
            self.publish(K.REJECTED, order, at)

    def execute_now(self, order: SimOrder, at: datetime) -> None:
        """A market or limit order meeting the current market price (not a bar)."""
        if not order.reserves or order.active_from is None or order.active_from > at:
            return
        phase = self.calendar.phase(at)
        mark = self.mark_is_current(order.symbol, at)
        if mark is None or not works_in(order, phase):
            return  # it waits for the next bar's open
        price: Decimal | None = mark.price
        if order.order_type is OrderType.LIMIT:
            assert order.limit_price is not None
            price = marketable_limit_fill(order.side, order.limit_price, mark.price)
        if price is not None:
            self._fill_chunk(order, price, at)

    def request_cancel(self, order: SimOrder, at: datetime) -> None:
        self._set(order, S.PENDING_CANCEL, "pending_cancel", at)
        self.publish(K.PENDING_CANCEL, order, at)
        due = self._after(at, self.config.cancel_latency)
        self.book.schedule(due, ActionKind.CANCEL, order.broker_order_id)

    def complete_cancel(self, order: SimOrder, at: datetime) -> None:
        if order.status is S.PENDING_CANCEL:
            self._set(order, S.CANCELED, "canceled", at)
            self.publish(K.CANCELED, order, at)
        elif order.status is S.FILLED:
            self.publish(K.ORDER_CANCEL_REJECTED, order, at)  # the fill won the race

    def complete_replace(self, new: SimOrder, at: datetime) -> None:
        assert new.replaces is not None
        old = self.book.orders[new.replaces]
        if not new.awaiting_replace:
            return
        reason: str | None = None
        if new.status.is_terminal:  # the replacement itself was canceled meanwhile
            reason = f"replace rejected: the replacement is {new.status}"
        elif old.status not in (S.ACCEPTED, S.PARTIALLY_FILLED):
            reason = f"replace rejected: original order is {old.status}"
        else:
            if new.qty_from_remaining:
                new.qty = old.remaining_qty
            if new.side is Side.SELL:
                available = self.available_to_sell(new.symbol, exclude=old)
                if new.qty > available:
                    reason = (
                        "insufficient qty available for order "
                        f"(requested: {new.qty}, available: {available})"
                    )
        if old.raw_status == "pending_replace":
            old.raw_status = old.status.value
        if reason is not None:
            self.publish(K.ORDER_REPLACE_REJECTED, old, at)
            self.reject(new, reason, at)
            new.awaiting_replace = False
            return
        old.replaced_by = new.broker_order_id
        self._set(old, S.REPLACED, "replaced", at)
        self.publish(K.REPLACED, old, at)
        new.awaiting_replace = False
        if old.order_type is OrderType.TRAILING_STOP and new.trail_mark is None:
            new.trail_mark = old.trail_mark  # the high-water mark carries over
        if new.status is S.SUBMITTED:
            self.accept(new, at)

    def expire(self, order: SimOrder, at: datetime) -> None:
        if order.is_open and not order.awaiting_replace:
            self._set(order, S.EXPIRED, "expired", at)
            self.publish(K.EXPIRED, order, at)

    # --- scheduled work -----------------------------------------------------------------

    def _after(self, at: datetime, seconds: float) -> datetime:
        return at + timedelta(seconds=max(0.0, seconds))

    def process_due(self, until: datetime) -> bool:
        """Run every action due at or before `until`, in due order. True if any ran."""
        ran = False
        while (action := self.book.pop_due(until)) is not None:
            ran = True
            order = self.book.orders.get(action.order_id)
            if order is None:
                continue
            at = self.stamp(action.due)
            match action.kind:
                case ActionKind.ACCEPT:
                    if order.status is S.SUBMITTED:
                        self.accept(order, at)
                case ActionKind.REJECT:
                    self.reject(order, order.pending_reject or "rejected", at)
                case ActionKind.ACTIVATE:
                    self.activate(order, at)
                case ActionKind.EXECUTE:
                    self.execute_now(order, at)
                case ActionKind.CANCEL:
                    self.complete_cancel(order, at)
                case ActionKind.REPLACE:
                    self.complete_replace(order, at)
                case ActionKind.EXPIRE:
                    self.expire(order, at)
        return ran

    # --- bars and fills -----------------------------------------------------------------

    def on_bar(self, bar: Bar) -> None:
        phase = self.calendar.phase(bar.start)
        working = sorted(
            (
                order
                for order in self.book.orders.values()
                if order.symbol == bar.symbol
                and order.reserves
                and order.status is not S.SUBMITTED
                and order.active_from is not None
                and order.active_from <= bar.start
            ),
            key=priority,
        )
        anchor = bar.close
        at = self.stamp(self.clock.now())
        for order in working:
            match = match_bar(order, bar, phase)
            order.triggered = match.triggered
            if order.order_type is OrderType.TRAILING_STOP:
                order.trail_mark = match.trail_mark
            if match.price is not None:
                fill = self._fill_chunk(order, match.price, at)
                if fill is not None:
                    anchor = fill.price
        self.book.marks[bar.symbol] = Mark(price=bar.close, anchor=anchor, bar_start=bar.start)

    def _fill_chunk(self, order: SimOrder, raw_price: Decimal, at: datetime) -> Fill | None:
        policy: PartialFills = self.config.partial_fills
        qty = policy.next_qty(order.remaining_qty, order.fill_count)
        if order.side is Side.SELL:
            # Reservations make this a no-op; it guards books seeded by hand.
            held = self.book.positions.get(order.symbol, Holding(ZERO, ZERO)).qty
            qty = min(qty, max(held, ZERO))
        if qty <= 0:
            return None
        return self.execute(order, qty, raw_price, at)

    def execute(self, order: SimOrder, qty: Decimal, raw_price: Decimal, at: datetime) -> Fill:
        friction = self.config.friction
        price = friction.fill_price(order.side, raw_price)
        commission = friction.fill_commission(order.filled_qty, qty)
        fill = Fill(
            execution_id=self.book.new_execution_id(),
            broker_order_id=order.broker_order_id,
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            side=order.side,
            qty=qty,
            price=price,
            timestamp=at,
            commission=commission,
        )
        order.filled_qty += qty
        order.notional += qty * price
        order.commission += commission
        order.fill_count += 1
        if order.filled_qty == order.qty:
            self._set(order, S.FILLED, "filled", at)
        elif order.status is S.PENDING_CANCEL:
            order.updated_at = at  # the cancel is still pending; the fill came first
        else:
            self._set(order, S.PARTIALLY_FILLED, "partially_filled", at)
        self._book_fill(fill)
        kind = K.FILL if order.status is S.FILLED else K.PARTIAL_FILL
        self.publish(kind, order, at, fill)
        return fill

    def _book_fill(self, fill: Fill) -> None:
        book = self.book
        held = book.positions.get(fill.symbol, Holding(ZERO, ZERO))
        signed = fill.qty if fill.side is Side.BUY else -fill.qty
        new_qty = held.qty + signed
        if new_qty == 0:
            book.positions.pop(fill.symbol, None)
        elif held.qty == 0 or (held.qty > 0) != (new_qty > 0):
            book.positions[fill.symbol] = Holding(new_qty, fill.price)  # opened / flipped
        elif abs(new_qty) > abs(held.qty):
            avg = (held.qty * held.avg_price + signed * fill.price) / new_qty
            book.positions[fill.symbol] = Holding(new_qty, avg)
        else:
            book.positions[fill.symbol] = Holding(new_qty, held.avg_price)  # reduced
        book.cash += -signed * fill.price - fill.commission
        book.fills.append(fill)

    # --- reservations -------------------------------------------------------------------

    def available_to_sell(self, symbol: Symbol, exclude: SimOrder | None = None) -> Decimal:
        held = self.book.positions.get(symbol, Holding(ZERO, ZERO)).qty
        reserved = sum(
            (
                order.remaining_qty
                for order in self.book.orders.values()
                if order.symbol == symbol
                and order.side is Side.SELL
                and order.reserves
                and order is not exclude
            ),
            ZERO,
        )
        return max(held - reserved, ZERO)
