"""Domain requests -> alpaca-py request models (what goes on the wire).

The SDK's request models carry prices as floats. That is exact for what we send: every
price is on the tick (2 or 4 decimals, checked by `core.capabilities.check` first) and a
float's shortest repr, which `json` writes, gives those digits back.
"""

from __future__ import annotations

from decimal import Decimal

from alpaca.trading.enums import OrderSide
from alpaca.trading.enums import TimeInForce as SdkTimeInForce
from alpaca.trading.requests import (
    LimitOrderRequest,
    MarketOrderRequest,
    ReplaceOrderRequest,
    StopLimitOrderRequest,
    StopOrderRequest,
    TrailingStopOrderRequest,
)
from alpaca.trading.requests import OrderRequest as SdkOrderRequest

from core.broker import UnsupportedOrder
from core.capabilities import check_price
from core.domain import ClientOrderId, OrderRequest, OrderType, Side, TimeInForce

_SIDES = {Side.BUY: OrderSide.BUY, Side.SELL: OrderSide.SELL}
_TIFS = {TimeInForce.DAY: SdkTimeInForce.DAY, TimeInForce.GTC: SdkTimeInForce.GTC}


def _f(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def order_request(request: OrderRequest) -> SdkOrderRequest:
    common = {
        "symbol": request.symbol,
        "qty": float(request.qty),
        "side": _SIDES[request.side],
        "time_in_force": _TIFS[request.time_in_force],
        "client_order_id": request.client_order_id,
        "extended_hours": request.extended_hours or None,
    }
    kind = request.order_type
    if kind is OrderType.MARKET:
        return MarketOrderRequest(**common)
    if kind is OrderType.LIMIT:
        return LimitOrderRequest(**common, limit_price=_f(request.limit_price))
    if kind is OrderType.STOP:
        return StopOrderRequest(**common, stop_price=_f(request.stop_price))
    if kind is OrderType.STOP_LIMIT:
        return StopLimitOrderRequest(
            **common, stop_price=_f(request.stop_price), limit_price=_f(request.limit_price)
        )
    if kind is OrderType.TRAILING_STOP:
        return TrailingStopOrderRequest(**common, trail_percent=_f(request.trail_percent))
    raise UnsupportedOrder(f"order type {kind} is not supported by the Alpaca adapter")


def replace_request(
    *,
    qty: Decimal | None,
    stop_price: Decimal | None,
    limit_price: Decimal | None,
    trail_percent: Decimal | None,
    time_in_force: TimeInForce | None,
    client_order_id: ClientOrderId,
) -> ReplaceOrderRequest:
    """The PATCH body. Refuses locally what Alpaca would refuse: a fractional qty (the
    replace endpoint takes whole shares), an off-tick price, a trail outside (0, 100)."""
    if qty is not None and (qty <= 0 or qty != qty.to_integral_value()):
        raise UnsupportedOrder(f"replace qty {qty} must be a positive whole number of shares")
    for label, price in (("stop price", stop_price), ("limit price", limit_price)):
        if price is not None:
            verdict = check_price(price, label)
            if not verdict.allowed:
                raise UnsupportedOrder(verdict.reason)
    if trail_percent is not None and not (0 < trail_percent < 100):
        raise UnsupportedOrder(f"trail percent {trail_percent} must be in (0, 100)")
    return ReplaceOrderRequest(
        qty=None if qty is None else int(qty),
        time_in_force=None if time_in_force is None else _TIFS[time_in_force],
        limit_price=_f(limit_price),
        stop_price=_f(stop_price),
        trail=_f(trail_percent),
        client_order_id=client_order_id,
    )


__all__ = ["order_request", "replace_request"]
