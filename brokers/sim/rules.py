"""The checks a real broker runs on a new order, in Alpaca's terms (BROKERS.md)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from brokers.sim.exchange import SimExchange
from brokers.sim.state import Book, SimOrder
from core.broker import (
    InsufficientBuyingPower,
    InsufficientQty,
    UnsupportedOrder,
    WashTradeRejected,
)
from core.capabilities import SIM, check
from core.domain import (
    ZERO,
    ClientOrderId,
    MoneyError,
    OrderRequest,
    OrderType,
    Side,
    TimeInForce,
)

CODE_VALIDATION = "42210000"
CODE_DUPLICATE = "40010001"
CODE_FORBIDDEN = "40310000"
# New orders of these types are refused while an opposite-side order works on the symbol.
WASH_TYPES = frozenset(
    {OrderType.MARKET, OrderType.STOP, OrderType.STOP_LIMIT, OrderType.TRAILING_STOP}
)


def reference_price(book: Book, order: SimOrder | OrderRequest) -> Decimal:
    """The price buying power is reserved at: the limit, else the stop, else the market."""
    if order.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
        assert order.limit_price is not None
        return order.limit_price
    if order.order_type is OrderType.STOP:
        assert order.stop_price is not None
        return order.stop_price
    mark = book.marks.get(order.symbol)
    return ZERO if mark is None else mark.price


def buying_power(book: Book, margin_multiplier: Decimal) -> Decimal:
    reserved = sum(
        (
            order.remaining_qty * reference_price(book, order)
            for order in book.orders.values()
            if order.side is Side.BUY and order.reserves
        ),
        ZERO,
    )
    return max(book.cash * margin_multiplier - reserved, ZERO)


def check_capability(exchange: SimExchange, request: OrderRequest, now: datetime) -> None:
    verdict = check(SIM, request, exchange.calendar.phase(now))
    if not verdict.allowed:
        raise UnsupportedOrder(
            verdict.reason, CODE_VALIDATION, client_order_id=request.client_order_id
        )


def check_qty(
    exchange: SimExchange, request: OrderRequest, exclude: SimOrder | None = None
) -> None:
    """Every open sell reserves its shares (even while its cancel is pending)."""
    available = exchange.available_to_sell(request.symbol, exclude=exclude)
    if request.qty > available:
        raise InsufficientQty(
            "insufficient qty available for order "
            f"(requested: {request.qty}, available: {available})",
            CODE_FORBIDDEN,
            client_order_id=request.client_order_id,
        )


def check_wash(book: Book, request: OrderRequest) -> None:
    """Alpaca refuses an order that could trade against our own opposite-side order:
    market/stop types against any working opposite order, and limits that cross an
    opposite limit or face an opposite market order."""
    for order in book.orders.values():
        if order.symbol != request.symbol or order.side is request.side or not order.reserves:
            continue
        if request.order_type in WASH_TYPES or order.order_type is OrderType.MARKET:
            crosses = True
        elif request.limit_price is not None and order.limit_price is not None:
            buy, sell = (
                (request.limit_price, order.limit_price)
                if request.side is Side.BUY
                else (order.limit_price, request.limit_price)
            )
            crosses = buy >= sell
        else:
            crosses = False
        if crosses:
            raise WashTradeRejected(
                "potential wash trade detected. use complex orders",
                CODE_FORBIDDEN,
                client_order_id=request.client_order_id,
            )


def validate_new(
    exchange: SimExchange, request: OrderRequest, now: datetime, margin_multiplier: Decimal
) -> None:
    """In the order Alpaca answers: validation, quantity, wash trade, buying power."""
    check_capability(exchange, request, now)
    if request.side is Side.SELL:
        check_qty(exchange, request)
    check_wash(exchange.book, request)
    if request.side is Side.BUY:
        cost = request.qty * reference_price(exchange.book, request)
        available = buying_power(exchange.book, margin_multiplier)
        if cost > available:
            raise InsufficientBuyingPower(
                f"insufficient buying power (needed: {cost}, available: {available})",
                CODE_FORBIDDEN,
                client_order_id=request.client_order_id,
            )


def replacement_request(
    old: SimOrder,
    client_order_id: ClientOrderId,
    *,
    qty: Decimal | None,
    stop_price: Decimal | None,
    limit_price: Decimal | None,
    trail_percent: Decimal | None,
    time_in_force: TimeInForce | None,
) -> OrderRequest:
    """The order a replace asks for: the old one with the given fields changed. Without
    a new qty it is sized to what the old order has left to fill."""
    try:
        return OrderRequest(
            client_order_id=client_order_id,
            symbol=old.symbol,
            side=old.side,
            qty=qty if qty is not None else old.remaining_qty,
            order_type=old.order_type,
            time_in_force=time_in_force or old.time_in_force,
            limit_price=limit_price if limit_price is not None else old.limit_price,
            stop_price=stop_price if stop_price is not None else old.stop_price,
            trail_percent=trail_percent if trail_percent is not None else old.trail_percent,
            extended_hours=old.extended_hours,
        )
    except MoneyError as exc:
        raise UnsupportedOrder(str(exc), CODE_VALIDATION, client_order_id=client_order_id) from exc
