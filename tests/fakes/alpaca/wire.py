"""Alpaca's JSON shapes: decimals as strings, RFC 3339 timestamps, full field sets."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from .models import (
    ZERO,
    AlpacaAPIError,
    Execution,
    FakeOrder,
    PositionState,
    TradeEventRecord,
    asset_id_for,
)
from .sessions import NEW_YORK, Session

CENT = Decimal("0.01")
TEN_THOUSANDTH = Decimal("0.0001")


def dec(value: Decimal) -> str:
    """A decimal as Alpaca writes it: plain notation, no exponent, no trailing zeros."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def opt_dec(value: Decimal | None) -> str | None:
    return None if value is None else dec(value)


def avg(value: Decimal) -> Decimal:
    return value.quantize(Decimal("1e-9"))


def tick_for(price: Decimal) -> Decimal:
    return CENT if price >= 1 else TEN_THOUSANDTH


def round_to_tick(price: Decimal) -> Decimal:
    return price.quantize(tick_for(price), rounding=ROUND_HALF_UP)


def ts(moment: datetime | None) -> str | None:
    """Go's RFC3339Nano in UTC (`2024-01-02T15:04:05.123456Z`, trailing zeros trimmed)."""
    if moment is None:
        return None
    utc = moment.astimezone(UTC)
    base = utc.strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{utc.microsecond:06d}000".rstrip("0")
    return f"{base}.{frac}Z" if frac else f"{base}Z"


def ts_ny(moment: datetime) -> str:
    """A timestamp with the New York offset, as /v2/clock writes it."""
    local = moment.astimezone(NEW_YORK)
    frac = f"{local.microsecond:06d}000".rstrip("0")
    base = local.strftime("%Y-%m-%dT%H:%M:%S")
    offset = local.strftime("%z")
    return f"{base}{'.' + frac if frac else ''}{offset[:3]}:{offset[3:]}"


def parse_time(text: str, field: str) -> datetime:
    """RFC 3339 / ISO 8601 (with Z, an offset, or a bare date) to aware UTC."""
    raw = text.strip().replace(" ", "+")  # a '+' that arrived unescaped in a query
    try:
        if len(raw) == 10:
            return datetime.fromisoformat(raw).replace(tzinfo=UTC)
        if raw.endswith(("Z", "z")):
            raw = raw[:-1] + "+00:00"
        if "." in raw:  # trim nanoseconds to what datetime can hold
            head, _, rest = raw.partition(".")
            digits = "".join(ch for ch in rest if ch.isdigit())
            raw = f"{head}.{digits[:6].ljust(6, '0')}{rest[len(digits) :]}"
        moment = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise AlpacaAPIError(422, 40010001, f"invalid {field}: {text}") from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_decimal(value: Any, field: str) -> Decimal:
    """A JSON number (the SDK sends floats) or numeric string to Decimal."""
    if isinstance(value, bool) or value is None:
        raise AlpacaAPIError(422, 40010001, f"invalid {field}")
    try:
        result = Decimal(str(value))
    except InvalidOperation as exc:
        raise AlpacaAPIError(422, 40010001, f"invalid {field}: {value}") from exc
    if not result.is_finite():
        raise AlpacaAPIError(422, 40010001, f"invalid {field}: {value}")
    return result


def parse_bool(value: Any) -> bool:
    """Booleans as the SDK sends them: JSON true, or 'True'/'true' in a query string."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1", "yes")


def position_intent(order: FakeOrder) -> str:
    return "buy_to_open" if order.side == "buy" else "sell_to_close"


def order_json(order: FakeOrder) -> dict[str, Any]:
    """The full order object (simple orders: `order_class` "", `legs` null)."""
    return {
        "id": order.id,
        "client_order_id": order.client_order_id,
        "created_at": ts(order.created_at),
        "updated_at": ts(order.updated_at or order.created_at),
        "submitted_at": ts(order.submitted_at or order.created_at),
        "filled_at": ts(order.filled_at),
        "expired_at": ts(order.expired_at),
        "canceled_at": ts(order.canceled_at),
        "failed_at": ts(order.failed_at),
        "replaced_at": ts(order.replaced_at),
        "replaced_by": order.replaced_by,
        "replaces": order.replaces,
        "asset_id": order.asset_id,
        "symbol": order.symbol,
        "asset_class": "us_equity",
        "notional": None,
        "qty": dec(order.qty),
        "filled_qty": dec(order.filled_qty),
        "filled_avg_price": opt_dec(
            avg(order.filled_avg_price) if order.filled_avg_price is not None else None
        ),
        "order_class": "",
        "order_type": order.type,
        "type": order.type,
        "side": order.side,
        "position_intent": order.position_intent or position_intent(order),
        "time_in_force": order.time_in_force,
        "limit_price": opt_dec(order.limit_price),
        "stop_price": opt_dec(order.stop_price),
        "status": order.status,
        "extended_hours": order.extended_hours,
        "legs": None,
        "trail_percent": opt_dec(order.trail_percent),
        "trail_price": opt_dec(order.trail_price),
        "hwm": opt_dec(order.hwm),
        "subtag": None,
        "source": None,
        "expires_at": ts(order.expires_at),
    }


def event_json(record: TradeEventRecord) -> dict[str, Any]:
    """The `data` of a trade_updates frame. Fill events carry the execution's own price
    and qty (per execution, not cumulative) and the position after it."""
    data: dict[str, Any] = {
        "event": record.event,
        "execution_id": record.execution_id,
        "timestamp": ts(record.timestamp),
        "order": record.order,
    }
    if record.price is not None:
        data["price"] = dec(record.price)
        data["qty"] = dec(record.qty if record.qty is not None else ZERO)
        data["position_qty"] = dec(record.position_qty or ZERO)
    return data


def position_json(
    pos: PositionState,
    price: Decimal | None,
    prev_close: Decimal | None,
    exchange: str,
    available: Decimal,
) -> dict[str, Any]:
    current = price if price is not None else pos.avg_entry_price
    lastday = prev_close if prev_close is not None else current
    market_value = pos.qty * current
    unrealized = market_value - pos.cost_basis
    plpc = unrealized / abs(pos.cost_basis) if pos.cost_basis else ZERO
    intraday = pos.qty * (current - lastday)
    intraday_base = abs(pos.qty * lastday)
    change = (current - lastday) / lastday if lastday else ZERO
    return {
        "asset_id": asset_id_for(pos.symbol),
        "symbol": pos.symbol,
        "exchange": exchange,
        "asset_class": "us_equity",
        "asset_marginable": True,
        "qty": dec(pos.qty),
        "qty_available": dec(available),
        "avg_entry_price": dec(avg(pos.avg_entry_price)),
        "side": "long" if pos.qty > 0 else "short",
        "market_value": dec(market_value),
        "cost_basis": dec(pos.cost_basis),
        "unrealized_pl": dec(unrealized),
        "unrealized_plpc": dec(avg(plpc)),
        "unrealized_intraday_pl": dec(intraday),
        "unrealized_intraday_plpc": dec(avg(intraday / intraday_base if intraday_base else ZERO)),
        "current_price": dec(current),
        "lastday_price": dec(lastday),
        "change_today": dec(avg(change)),
    }


def activity_json(execution: Execution, account_id: str) -> dict[str, Any]:
    stamp = execution.timestamp.astimezone(UTC)
    return {
        "id": f"{stamp.strftime('%Y%m%d%H%M%S%f')[:17]}::{execution.id}",
        "account_id": account_id,
        "activity_type": "FILL",
        "transaction_time": ts(execution.timestamp),
        "type": "partial_fill" if execution.is_partial else "fill",
        "price": dec(execution.price),
        "qty": dec(execution.qty),
        "side": execution.side,
        "symbol": execution.symbol,
        "leaves_qty": dec(execution.leaves_qty),
        "order_id": execution.order_id,
        "cum_qty": dec(execution.cum_qty),
        "order_status": execution.order_status,
    }


def calendar_json(session: Session) -> dict[str, Any]:
    settle = session.day + timedelta(days=3 if session.day.weekday() == 4 else 1)  # ~T+1
    return {
        "date": session.day.isoformat(),
        "open": session.open.astimezone(NEW_YORK).strftime("%H:%M"),
        "close": session.close.astimezone(NEW_YORK).strftime("%H:%M"),
        "session_open": session.pre_open.astimezone(NEW_YORK).strftime("%H%M"),
        "session_close": session.post_close.astimezone(NEW_YORK).strftime("%H%M"),
        "settlement_date": settle.isoformat(),
    }


def asset_json(symbol: str, exchange: str) -> dict[str, Any]:
    return {
        "id": asset_id_for(symbol),
        "class": "us_equity",
        "exchange": exchange,
        "symbol": symbol,
        "name": f"{symbol} (fake)",
        "status": "active",
        "tradable": True,
        "marginable": True,
        "shortable": True,
        "easy_to_borrow": True,
        "fractionable": True,
        "maintenance_margin_requirement": 30,
        "attributes": [],
    }


def encode_page_token(payload: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


def decode_page_token(token: str) -> dict[str, Any]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, json.JSONDecodeError) as exc:
        raise AlpacaAPIError(422, 42210000, "invalid page token") from exc
    if not isinstance(data, dict):
        raise AlpacaAPIError(422, 42210000, "invalid page token")
    return data


def new_id() -> str:
    return str(uuid.uuid4())
