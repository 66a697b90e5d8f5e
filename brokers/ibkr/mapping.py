"""IB statuses, IB error codes and ib_async objects mapped onto core's types.

ib_async hands numbers over as floats (the wire carries decimal strings); they become
`Decimal(repr(x))`, which gives back the shortest decimal the float stands for (100.05 ->
Decimal("100.05")). IB's "unset" double (sys.float_info.max) and NaN become None.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType

from ib_async import AccountValue, Contract, Execution, Order
from ib_async.util import UNSET_DOUBLE

from core.broker import (
    BrokerEventKind,
    InsufficientBuyingPower,
    OrderRejected,
    UnsupportedOrder,
)
from core.domain import (
    AccountSnapshot,
    BrokerOrderId,
    ClientOrderId,
    ExecutionId,
    Fill,
    MoneyError,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    Symbol,
    TimeInForce,
)

S = OrderStatus
K = BrokerEventKind

# --- numbers -----------------------------------------------------------------------------


def dec(value: float | Decimal | str | None) -> Decimal | None:
    """An IB number as Decimal; IB's unset marker, NaN and infinities become None."""
    if value is None or value == "":
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, str):
        result = Decimal(value)
        return result if result.is_finite() else None
    if math.isnan(value) or math.isinf(value) or value == UNSET_DOUBLE:
        return None
    return Decimal(repr(float(value)))


def qty(value: float | Decimal | str | None) -> Decimal:
    """A share quantity: integral values lose their ".0" (10.0 -> 10)."""
    result = dec(value)
    if result is None:
        return Decimal(0)
    return result.quantize(Decimal(1)) if result == result.to_integral_value() else result


def price(value: float | Decimal | str | None) -> Decimal | None:
    """A price; IB sends 0 for "none" in several places (avgFillPrice before a fill)."""
    result = dec(value)
    return None if result is None or result <= 0 else result


def aware(moment: datetime) -> datetime:
    """ib_async times are aware (UTC by default); a naive one is taken as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# --- statuses ----------------------------------------------------------------------------

# IB status -> (our status, the event kind that reports it). Fill kinds are never emitted
# from a status: fills come from executions (execDetails), each with its own execId.
IB_STATUS: Mapping[str, tuple[OrderStatus, BrokerEventKind]] = MappingProxyType(
    {
        "ApiPending": (S.SUBMITTED, K.PENDING_NEW),  # not yet sent to IB's servers
        "PendingSubmit": (S.SUBMITTED, K.PENDING_NEW),  # sent, not yet acknowledged
        "PreSubmitted": (S.ACCEPTED, K.ACCEPTED),  # held until elected (STP, TRAIL, child)
        "Submitted": (S.ACCEPTED, K.NEW),  # working at the venue
        "PendingCancel": (S.PENDING_CANCEL, K.PENDING_CANCEL),  # fills may still come
        "ApiCancelled": (S.CANCELED, K.CANCELED),  # canceled before reaching IB
        "Cancelled": (S.CANCELED, K.CANCELED),  # REJECTED when an order error preceded it
        "Filled": (S.FILLED, K.FILL),
        "Inactive": (S.REJECTED, K.REJECTED),  # rejected/inactive at IB (see docs/ibkr.md)
    }
)
# Statuses ib_async invents locally (never sent by IB): they never reach our records.
LOCAL_ONLY_STATUSES = frozenset({"ValidationError", "ApiUpdate"})
WORKING_IB_STATUSES = frozenset({"PreSubmitted", "Submitted"})
DONE_IB_STATUSES = frozenset({"Filled", "Cancelled", "ApiCancelled", "Inactive"})


def map_status(raw: str) -> tuple[OrderStatus, BrokerEventKind] | None:
    return IB_STATUS.get(raw)


# --- error codes -------------------------------------------------------------------------


class IbErrorClass(StrEnum):
    REJECTED = "rejected"  # 201, 203, 434: the order (or its modification) was refused
    CANCELED = "canceled"  # 202: canceled at IB (reason in the text)
    CANCEL_TARGET_MISSING = "cancel_target_missing"  # 10147: raced a fill, query
    NOT_CANCELABLE = "not_cancelable"  # 161, 10148: state does not allow a cancel
    NOT_MODIFIABLE = "not_modifiable"  # 104: can't modify a filled order
    MODIFY_REFUSED = "modify_refused"  # 105: modification does not match the original
    OFF_TICK = "off_tick"  # 110: price does not conform to the minimum variation
    UNKNOWN_CONTRACT = "unknown_contract"  # 200
    DUPLICATE_ORDER_ID = "duplicate_order_id"  # 103
    NOT_FOUND = "not_found"  # 135
    PACING = "pacing"  # 100: max rate of messages per second exceeded
    HISTORICAL_PACING = "historical_pacing"  # 162 with "pacing violation"
    CONNECTIVITY_LOST = "connectivity_lost"  # 1100
    RESTORED_DATA_LOST = "restored_data_lost"  # 1101: resubscribe market data
    RESTORED = "restored"  # 1102
    NOT_CONNECTED = "not_connected"  # 502, 504, 326 (client id in use), 1300
    OUTSIDE_RTH_IGNORED = "outside_rth_ignored"  # 2109 warning: the order still works
    WARNING = "warning"  # 399, 404 and 2100-2199 farm notices: informational
    OTHER = "other"


IB_ERRORS: Mapping[int, IbErrorClass] = MappingProxyType(
    {
        100: IbErrorClass.PACING,
        103: IbErrorClass.DUPLICATE_ORDER_ID,
        104: IbErrorClass.NOT_MODIFIABLE,
        105: IbErrorClass.MODIFY_REFUSED,
        110: IbErrorClass.OFF_TICK,
        135: IbErrorClass.NOT_FOUND,
        161: IbErrorClass.NOT_CANCELABLE,
        200: IbErrorClass.UNKNOWN_CONTRACT,
        201: IbErrorClass.REJECTED,
        202: IbErrorClass.CANCELED,
        203: IbErrorClass.REJECTED,
        326: IbErrorClass.NOT_CONNECTED,
        399: IbErrorClass.WARNING,
        404: IbErrorClass.WARNING,
        434: IbErrorClass.REJECTED,
        502: IbErrorClass.NOT_CONNECTED,
        504: IbErrorClass.NOT_CONNECTED,
        1100: IbErrorClass.CONNECTIVITY_LOST,
        1101: IbErrorClass.RESTORED_DATA_LOST,
        1102: IbErrorClass.RESTORED,
        1300: IbErrorClass.NOT_CONNECTED,
        2109: IbErrorClass.OUTSIDE_RTH_IGNORED,
        10147: IbErrorClass.CANCEL_TARGET_MISSING,
        10148: IbErrorClass.NOT_CANCELABLE,
    }
)
# Classes that say something happened to one order (and may make ib_async synthesize a
# local Cancelled that IB has not sent): confirm against IB before believing anything.
ORDER_ERROR_CLASSES = frozenset(
    {
        IbErrorClass.REJECTED,
        IbErrorClass.CANCELED,
        IbErrorClass.CANCEL_TARGET_MISSING,
        IbErrorClass.NOT_CANCELABLE,
        IbErrorClass.NOT_MODIFIABLE,
        IbErrorClass.MODIFY_REFUSED,
        IbErrorClass.OFF_TICK,
        IbErrorClass.UNKNOWN_CONTRACT,
        IbErrorClass.DUPLICATE_ORDER_ID,
        IbErrorClass.NOT_FOUND,
        IbErrorClass.PACING,
        IbErrorClass.OTHER,
    }
)


def classify_error(code: int, text: str = "") -> IbErrorClass:
    found = IB_ERRORS.get(code)
    if found is not None:
        return found
    if code == 162 and "pacing" in text.lower():
        return IbErrorClass.HISTORICAL_PACING
    if 2100 <= code < 2200 or code in (162, 165, 321, 329, 492, 10167):
        return IbErrorClass.WARNING
    return IbErrorClass.OTHER


@dataclass(frozen=True, slots=True)
class IbError:
    req_id: int
    code: int
    text: str
    at: datetime

    @property
    def kind(self) -> IbErrorClass:
        return classify_error(self.code, self.text)

    @property
    def reason(self) -> str:
        """The human part of the text ("Order rejected - reason:X" -> "X")."""
        for marker in ("reason:", "Reason:"):
            if marker in self.text:
                tail = self.text.split(marker, 1)[1].strip()
                if tail:
                    return tail
        return self.text.strip() or f"IB error {self.code}"


_BUYING_POWER_WORDS = ("equity with loan", "buying power", "insufficient funds", "margin")


def rejection_for(error: IbError, client_order_id: ClientOrderId | None = None) -> OrderRejected:
    """The typed error for an order refused with `error`."""
    code = str(error.code)
    reason = error.reason
    kind = error.kind
    if kind in (IbErrorClass.OFF_TICK, IbErrorClass.UNKNOWN_CONTRACT):
        return UnsupportedOrder(reason, code, client_order_id=client_order_id)
    lowered = reason.lower()
    if "insufficient" in lowered or any(word in lowered for word in _BUYING_POWER_WORDS):
        return InsufficientBuyingPower(reason, code, client_order_id=client_order_id)
    return OrderRejected(reason, code, client_order_id=client_order_id)


# --- orders ------------------------------------------------------------------------------

IB_ORDER_TYPE: Mapping[OrderType, str] = MappingProxyType(
    {
        OrderType.MARKET: "MKT",
        OrderType.LIMIT: "LMT",
        OrderType.STOP: "STP",
        OrderType.STOP_LIMIT: "STP LMT",
        OrderType.TRAILING_STOP: "TRAIL",
    }
)
_FROM_IB_TYPE = {ib: ours for ours, ib in IB_ORDER_TYPE.items()}
# Types we never send but may meet on external orders: the closest of ours.
_EXTERNAL_TYPES = {
    "TRAIL LIMIT": OrderType.TRAILING_STOP,
    "TRAIL LIT": OrderType.TRAILING_STOP,
    "MOC": OrderType.MARKET,
    "MOO": OrderType.MARKET,
    "MIT": OrderType.MARKET,
    "MTL": OrderType.MARKET,
}


def order_type_from_ib(ib_type: str, has_limit: bool = False) -> OrderType:
    found = _FROM_IB_TYPE.get(ib_type.upper()) or _EXTERNAL_TYPES.get(ib_type.upper())
    if found is not None:
        return found
    return OrderType.LIMIT if has_limit else OrderType.MARKET


def tif_from_ib(tif: str) -> TimeInForce:
    return TimeInForce.GTC if tif.upper() == "GTC" else TimeInForce.DAY


def side_from_action(action: str) -> Side:
    return Side.BUY if action.upper() in ("BUY", "BOT") else Side.SELL


def build_order(
    request: OrderRequest,
    order_id: int,
    *,
    account: str = "",
    transmit: bool = True,
    parent_id: int = 0,
) -> Order:
    """The ib_async Order for `request`; `orderRef` carries our client order id."""
    if request.qty != request.qty.to_integral_value():
        raise UnsupportedOrder(
            f"fractional quantity {request.qty} through the IBKR API is not supported",
            client_order_id=request.client_order_id,
        )
    order = Order(
        orderId=order_id,
        action="BUY" if request.side is Side.BUY else "SELL",
        totalQuantity=float(request.qty),
        orderType=IB_ORDER_TYPE[request.order_type],
        tif=request.time_in_force.value.upper(),
        orderRef=request.client_order_id,
        outsideRth=request.extended_hours,
        transmit=transmit,
        parentId=parent_id,
        account=account,
    )
    if request.limit_price is not None:
        order.lmtPrice = request.limit_price
    if request.stop_price is not None:
        order.auxPrice = request.stop_price
    if request.trail_percent is not None:
        order.trailingPercent = request.trail_percent
    return order


def client_order_id_for(order_ref: str, perm_id: int) -> ClientOrderId:
    """Our id for an order: its orderRef, or a stable stand-in for orders placed without
    one (manual TWS orders, other tools): "ibkr-perm-<permId>"."""
    return ClientOrderId(order_ref or f"ibkr-perm-{perm_id}")


def broker_order_id_for(perm_id: int) -> BrokerOrderId:
    """IB's permId: assigned by IB on the first acknowledgement, unique across clients and
    sessions, present on open orders, completed orders and executions alike."""
    return BrokerOrderId(str(perm_id))


def perm_id_of(broker_order_id: BrokerOrderId | str) -> int | None:
    try:
        value = int(broker_order_id)
    except ValueError:
        return None
    return value if value > 0 else None


# --- executions --------------------------------------------------------------------------


def split_exec_id(exec_id: str) -> tuple[str, int]:
    """(base, revision): a correction repeats the base and raises the part after the last
    dot ("0001f4e8.57427bbd.01.01" -> ("0001f4e8.57427bbd.01", 1))."""
    base, dot, suffix = exec_id.rpartition(".")
    if not dot:
        return exec_id, 0
    try:
        return base, int(suffix, 16)
    except ValueError:
        return exec_id, 0


def fill_from_execution(
    contract: Contract, execution: Execution, commission: Decimal = Decimal(0)
) -> Fill:
    """One execution as a Fill. `execution_id` is the execId WITHOUT its correction
    suffix, so a corrected execution keeps the id of the one it replaces."""
    base, _ = split_exec_id(execution.execId)
    fill_price = dec(execution.price)
    if fill_price is None:
        raise MoneyError(f"execution {execution.execId} has no price")
    return Fill(
        execution_id=ExecutionId(base),
        broker_order_id=broker_order_id_for(execution.permId),
        client_order_id=client_order_id_for(execution.orderRef, execution.permId),
        symbol=Symbol(contract.symbol),
        side=side_from_action(execution.side),
        qty=qty(execution.shares),
        price=fill_price,
        timestamp=aware(execution.time),
        commission=commission,
    )


# --- account -----------------------------------------------------------------------------

_ACCOUNT_TAGS = {"NetLiquidation": "equity", "TotalCashValue": "cash", "BuyingPower": "bp"}


def account_from_summary(
    values: Iterable[AccountValue], account: str, currency: str = "USD"
) -> AccountSnapshot:
    """AccountSnapshot from accountSummary values (tags in `currency`, or "BASE")."""
    picked: dict[str, Decimal] = {}
    extra: dict[str, str] = {}
    account_id = account
    for value in values:
        if account and value.account != account:
            continue
        account_id = account_id or value.account
        if value.tag in _ACCOUNT_TAGS and value.currency in (currency, "BASE"):
            amount = dec(value.value)
            if amount is not None and (
                value.currency == currency or _ACCOUNT_TAGS[value.tag] not in picked
            ):
                picked[_ACCOUNT_TAGS[value.tag]] = amount
        elif value.tag not in _ACCOUNT_TAGS and value.value != "":
            key = value.tag if value.currency in ("", currency) else f"{value.tag}:{value.currency}"
            extra[key] = value.value
    missing = sorted(set(_ACCOUNT_TAGS.values()) - set(picked))
    if missing:
        raise ValueError(f"IBKR account summary lacks {missing} in {currency}")
    return AccountSnapshot(
        account_id=account_id,
        equity=picked["equity"],
        cash=picked["cash"],
        buying_power=picked["bp"],
        currency=currency,
        status="active",
        extra=extra,
    )
