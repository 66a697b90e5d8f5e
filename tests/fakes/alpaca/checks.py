"""Pre-trade checks Alpaca runs on a new order against the account's state."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from .book import Book
from .fills import reference_price
from .models import ZERO, FakeOrder, forbidden
from .rules import OrderSpec
from .sessions import Session, SessionCalendar
from .wire import dec


def sell_qty(spec: OrderSpec, book: Book, others: list[FakeOrder]) -> None:
    """Every open sell reserves its remaining shares: a sell beyond what is left is
    refused 403 `insufficient qty available for order (requested: N, available: M)`."""
    if spec.side != "sell":
        return
    held = book.position_qty(spec.symbol)
    if held <= 0 and book.config.shorting_enabled:
        return
    reserved = book.held_for_sells(spec.symbol, others)
    available = max(ZERO, held - reserved)
    if spec.qty > available:
        raise forbidden(
            f"insufficient qty available for order (requested: {dec(spec.qty)}, "
            f"available: {dec(available)})",
            {
                "symbol": spec.symbol,
                "existing_qty": dec(max(held, ZERO)),
                "held_for_orders": dec(reserved),
                "available": dec(available),
            },
        )


def wash_trade(spec: OrderSpec, others: list[FakeOrder]) -> None:
    """403 `potential wash trade detected. use complex orders` when the new order could
    trade against one of our own open opposite-side orders on the symbol."""
    for other in others:
        if (
            other.symbol == spec.symbol
            and other.side != spec.side
            and crosses(spec.side, spec.type, spec.limit_price, other)
        ):
            raise forbidden("potential wash trade detected. use complex orders")


def crosses(side_a: str, type_a: str, limit_a: Decimal | None, other: FakeOrder) -> bool:
    """Whether a new order could trade against one of our own opposite-side orders
    (Alpaca's wash-trade check): always for market/stop/trailing, else if limits cross."""
    if type_a in ("market", "stop", "trailing_stop"):
        return True
    if other.type in ("market", "stop", "trailing_stop"):
        return True
    assert limit_a is not None and other.limit_price is not None
    buy, sell = (limit_a, other.limit_price) if side_a == "buy" else (other.limit_price, limit_a)
    return buy >= sell


def buying_power(
    order: FakeOrder, book: Book, others: list[FakeOrder], last: Decimal | None
) -> None:
    """A buy's cost (qty at limit / stop / last price) must fit the buying power left
    after the open buy orders: else 403 `insufficient buying power`."""
    price = reference_price(order, last)
    if price is not None and order.qty * price > book.buying_power(others):
        raise forbidden("insufficient buying power")


def day_expiry(order: FakeOrder, now: datetime, calendar: SessionCalendar) -> datetime:
    """A day order lives until its session's close (the extended close if extended)."""
    if not order.extended_hours:
        return calendar.next_close(now)
    session: Session | None = calendar.session_at(now)
    if session is None or session.post_close <= now:
        session = calendar.next_session(now, include_current=False)
    return session.post_close
