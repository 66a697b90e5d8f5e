"""Alpaca's validation of a new order or a replace request (body shape, prices, session).

Messages follow what Alpaca answers where it is known (BROKERS.md); where the fake had to
choose the wording it says so in the docstring of the check.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from .models import AlpacaAPIError, FakeOrder, unprocessable
from .sessions import Phase
from .wire import parse_bool, parse_decimal, tick_for

ORDER_TYPES = ("market", "limit", "stop", "stop_limit", "trailing_stop")
SUPPORTED_TIF = ("day", "gtc")
KNOWN_TIF = ("day", "gtc", "opg", "cls", "ioc", "fok")
NOT_EXTENDED = ("market", "stop", "stop_limit", "trailing_stop")

OutsideRth = Literal["queue", "reject_in_extended", "reject"]
"""What happens to an order not eligible for extended hours submitted outside RTH:
`queue` (default; BROKERS.md: "market closed: no error, orders wait as accepted", as
the capability matrix and SimBroker do) waits as `accepted` for the open;
`reject_in_extended` refuses market, stop, stop_limit and trailing_stop during the pre/post
sessions (04:00-09:30, 16:00-20:00 ET) and queues them when the market is fully closed;
`reject` refuses them whenever the regular session is not open. Limit orders without
extended_hours always queue."""


def _invalid(message: str) -> AlpacaAPIError:
    return AlpacaAPIError(422, 40010001, message)


@dataclass(frozen=True)
class OrderSpec:
    symbol: str
    side: str
    type: str
    time_in_force: str
    qty: Decimal
    extended_hours: bool
    client_order_id: str | None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    trail_percent: Decimal | None = None
    trail_price: Decimal | None = None
    position_intent: str | None = None


def check_price(value: Decimal, field: str) -> Decimal:
    """Sub-penny prices are refused: 2 decimals at or above $1, 4 below."""
    if value <= 0:
        raise _invalid(f"{field} must be > 0")
    if value != value.quantize(tick_for(value)):
        raise unprocessable(
            f"invalid {field} {value}. sub-penny increment does not fulfill minimum "
            "pricing criteria"
        )
    return value


def _opt_price(body: dict[str, Any], field: str) -> Decimal | None:
    raw = body.get(field)
    return None if raw is None else check_price(parse_decimal(raw, field), field)


def check_client_order_id(cid: Any) -> str | None:
    if cid is None or cid == "":
        return None
    if not isinstance(cid, str) or len(cid) > 128:
        raise _invalid("client_order_id must be no more than 128 characters")
    return cid


def parse_submit(body: Any) -> OrderSpec:
    if not isinstance(body, dict):
        raise _invalid("request body format is invalid")
    order_class = body.get("order_class") or "simple"
    if order_class != "simple":
        raise unprocessable(f"order_class {order_class} is not supported by the fake")
    if body.get("notional") is not None:
        raise unprocessable("notional orders are not supported by the fake")
    symbol = body.get("symbol")
    if not isinstance(symbol, str) or not symbol:
        raise _invalid("symbol is required")
    side = body.get("side")
    if side not in ("buy", "sell"):
        raise _invalid("invalid side")
    order_type = body.get("type") or body.get("order_type")
    if order_type not in ORDER_TYPES:
        raise _invalid("invalid order type")
    tif = body.get("time_in_force")
    if tif not in KNOWN_TIF:
        raise _invalid("invalid time_in_force")
    if body.get("qty") is None:
        raise _invalid("qty is required")
    qty = parse_decimal(body["qty"], "qty")
    if qty <= 0:
        raise _invalid("qty must be > 0")
    spec = OrderSpec(
        symbol=symbol.upper(),
        side=side,
        type=order_type,
        time_in_force=tif,
        qty=qty,
        extended_hours=parse_bool(body.get("extended_hours", False)),
        client_order_id=check_client_order_id(body.get("client_order_id")),
        limit_price=_opt_price(body, "limit_price"),
        stop_price=_opt_price(body, "stop_price"),
        trail_percent=_trail_percent(body.get("trail_percent")),
        trail_price=_opt_price(body, "trail_price"),
        position_intent=body.get("position_intent"),
    )
    check_shape(spec)
    return spec


def _trail_percent(raw: Any) -> Decimal | None:
    if raw is None:
        return None
    value = parse_decimal(raw, "trail_percent")
    if value <= 0 or value >= 100:
        raise _invalid("trail_percent must be > 0 and < 100")
    return value


def check_shape(spec: OrderSpec) -> None:
    """Fields each type needs, time in force, extended hours and fractional rules."""
    if spec.type in ("limit", "stop_limit") and spec.limit_price is None:
        raise _invalid("limit_price is required")
    if spec.type in ("stop", "stop_limit") and spec.stop_price is None:
        raise _invalid("stop_price is required")
    if spec.type == "trailing_stop" and (spec.trail_percent is None) == (spec.trail_price is None):
        raise _invalid("exactly one of trail_price or trail_percent is required")
    if spec.extended_hours:
        if spec.type != "limit":
            raise _invalid('only type="limit" is allowed for extended hours orders')
        if spec.time_in_force not in ("day", "gtc"):
            raise _invalid('only time_in_force="day" or "gtc" is allowed for extended hours')
    if spec.time_in_force not in SUPPORTED_TIF:
        # opg/cls/ioc/fok exist at Alpaca; the fake does not model them (fake's wording).
        raise unprocessable(f"time_in_force {spec.time_in_force} is not supported by the fake")
    if spec.qty != spec.qty.to_integral_value() and spec.time_in_force != "day":
        raise _invalid("fractional orders must be DAY orders")


def check_session(spec_type: str, extended_hours: bool, phase: Phase, policy: OutsideRth) -> None:
    """Orders that cannot trade outside RTH, submitted outside RTH (fake's wording)."""
    if phase == "rth" or extended_hours or spec_type not in NOT_EXTENDED:
        return
    if policy == "reject" or (policy == "reject_in_extended" and phase in ("pre", "post")):
        raise unprocessable(f"{spec_type} orders are not eligible for extended hours")


@dataclass(frozen=True)
class ReplaceSpec:
    qty: Decimal
    time_in_force: str
    limit_price: Decimal | None
    stop_price: Decimal | None
    trail: Decimal | None
    client_order_id: str | None


def parse_replace(body: Any, order: FakeOrder) -> ReplaceSpec:
    """A PATCH body applied over `order`; unchanged values default to the order's own."""
    if not isinstance(body, dict):
        raise _invalid("request body format is invalid")
    qty = order.remaining
    if body.get("qty") is not None:
        qty = parse_decimal(body["qty"], "qty")
        if qty <= 0:
            raise _invalid("qty must be > 0")
    tif = body.get("time_in_force") or order.time_in_force
    if tif not in SUPPORTED_TIF:
        raise unprocessable(f"time_in_force {tif} is not supported by the fake")
    limit = _opt_price(body, "limit_price")
    stop = _opt_price(body, "stop_price")
    if limit is not None and order.type not in ("limit", "stop_limit"):
        raise _invalid("limit_price is only allowed for limit and stop_limit orders")
    if stop is not None and order.type not in ("stop", "stop_limit"):
        raise _invalid("stop_price is only allowed for stop and stop_limit orders")
    trail: Decimal | None = None
    if body.get("trail") is not None:
        if order.type != "trailing_stop":
            raise _invalid("trail is only allowed for trailing_stop orders")
        trail = parse_decimal(body["trail"], "trail")
        if order.trail_price is not None:
            check_price(trail, "trail")
        elif not 0 < trail < 100:
            raise _invalid("trail_percent must be > 0 and < 100")
    return ReplaceSpec(
        qty=qty,
        time_in_force=tif,
        limit_price=limit if limit is not None else order.limit_price,
        stop_price=stop
        if stop is not None
        else (order.stop_price if order.type in ("stop", "stop_limit") else None),
        trail=trail,
        client_order_id=check_client_order_id(body.get("client_order_id")),
    )


def replace_changes_nothing(spec: ReplaceSpec, order: FakeOrder) -> bool:
    current_trail = order.trail_percent if order.trail_percent is not None else order.trail_price
    return (
        spec.qty == order.remaining
        and spec.time_in_force == order.time_in_force
        and spec.limit_price == order.limit_price
        and (order.type not in ("stop", "stop_limit") or spec.stop_price == order.stop_price)
        and (spec.trail is None or spec.trail == current_trail)
    )  # a new client_order_id alone is not a change (Alpaca: not editable on its own)
