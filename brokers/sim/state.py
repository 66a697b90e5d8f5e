"""SimBroker's book: orders, fills, positions, cash, scheduled work -- and its JSON form.

This is the state a real broker keeps on its side, so it is what survives a crash of our
process (`SimBroker(persist_path=...)`). Undelivered stream events are not part of it:
like a real stream, they are lost, and a reconcile recovers them from the book.
"""

from __future__ import annotations

import dataclasses
import heapq
import json
import os
import tempfile
import types
import typing
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any

from core.domain import (
    ZERO,
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
from core.fills import trailing_level

FORMAT_VERSION = 1
_T = typing.TypeVar("_T")

# Statuses in which an order still reserves shares / buying power and can still fill.
OPEN_STATUSES = frozenset(
    {
        OrderStatus.SUBMITTED,
        OrderStatus.ACCEPTED,
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.PENDING_CANCEL,
    }
)


@dataclass(slots=True)
class SimOrder:
    """The broker's mutable record of one order (snapshots are what leave the broker)."""

    seq: int
    broker_order_id: BrokerOrderId
    client_order_id: ClientOrderId
    symbol: Symbol
    side: Side
    qty: Decimal
    order_type: OrderType
    time_in_force: TimeInForce
    extended_hours: bool
    created_at: datetime
    updated_at: datetime
    status: OrderStatus
    raw_status: str
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    trail_percent: Decimal | None = None
    filled_qty: Decimal = ZERO
    notional: Decimal = ZERO  # sum of qty * booked price, for the average
    commission: Decimal = ZERO
    fill_count: int = 0
    active_from: datetime | None = None  # matches bars starting at or after this
    expires_at: datetime | None = None  # DAY orders
    trail_mark: Decimal | None = None  # a trailing stop's high (low) water mark
    triggered: bool = False  # a stop that triggered and is now working as market/limit
    reject_reason: str | None = None
    pending_reject: str | None = None  # an injected asynchronous rejection, not yet sent
    replaces: BrokerOrderId | None = None
    replaced_by: BrokerOrderId | None = None
    awaiting_replace: bool = False  # a replacement not yet live
    qty_from_remaining: bool = False  # replacement sized by the old order's remainder

    @classmethod
    def from_request(
        cls,
        seq: int,
        broker_order_id: BrokerOrderId,
        request: OrderRequest,
        at: datetime,
        *,
        replaces: BrokerOrderId | None = None,
        qty_from_remaining: bool = False,
    ) -> SimOrder:
        """A new order as the broker first records it: `pending_new`."""
        return cls(
            seq=seq,
            broker_order_id=broker_order_id,
            client_order_id=request.client_order_id,
            symbol=request.symbol,
            side=request.side,
            qty=request.qty,
            order_type=request.order_type,
            time_in_force=request.time_in_force,
            extended_hours=request.extended_hours,
            created_at=at,
            updated_at=at,
            status=OrderStatus.SUBMITTED,
            raw_status="pending_new",
            limit_price=request.limit_price,
            stop_price=request.stop_price,
            trail_percent=request.trail_percent,
            replaces=replaces,
            awaiting_replace=replaces is not None,
            qty_from_remaining=qty_from_remaining,
        )

    @property
    def remaining_qty(self) -> Decimal:
        return self.qty - self.filled_qty

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def reserves(self) -> bool:
        """Holds shares (sells) or buying power (buys): open and not a pending replacement."""
        return self.is_open and not self.awaiting_replace

    def current_stop(self) -> Decimal | None:
        """A trailing stop reports its current level as its stop price, as Alpaca does."""
        if self.order_type is OrderType.TRAILING_STOP and self.trail_mark is not None:
            assert self.trail_percent is not None
            return trailing_level(self.trail_mark, self.trail_percent, self.side)
        return self.stop_price

    def snapshot(self) -> OrderSnapshot:
        return OrderSnapshot(
            broker_order_id=self.broker_order_id,
            client_order_id=self.client_order_id,
            symbol=self.symbol,
            side=self.side,
            qty=self.qty,
            order_type=self.order_type,
            time_in_force=self.time_in_force,
            status=self.status,
            filled_qty=self.filled_qty,
            avg_fill_price=None if self.filled_qty == 0 else self.notional / self.filled_qty,
            limit_price=self.limit_price,
            stop_price=self.current_stop(),
            trail_percent=self.trail_percent,
            created_at=self.created_at,
            updated_at=self.updated_at,
            reject_reason=self.reject_reason,
            replaced_by=self.replaced_by,
            replaces=self.replaces,
            raw_status=self.raw_status,
            hwm=self.trail_mark if self.order_type is OrderType.TRAILING_STOP else None,
        )


@dataclass(frozen=True, slots=True)
class Holding:
    qty: Decimal
    avg_price: Decimal


@dataclass(frozen=True, slots=True)
class Mark:
    """Last known market for a symbol. `price` is the raw last trade (a bar close or a raw
    fill price); `anchor` is where a new trailing stop starts: the booked price of a fill
    on the latest bar (the spec's hwm starts at the entry price), else the close."""

    price: Decimal
    anchor: Decimal
    bar_start: datetime


class ActionKind(StrEnum):
    ACCEPT = "accept"  # submit latency elapsed
    REJECT = "reject"  # asynchronous rejection (fault)
    ACTIVATE = "activate"  # a queued order reaches its session
    EXECUTE = "execute"  # a market / marketable order meets the current market
    CANCEL = "cancel"  # a cancel request completes
    REPLACE = "replace"  # a replace request completes (order_id is the NEW order)
    EXPIRE = "expire"  # a DAY order's session ended


@dataclass(frozen=True, slots=True, order=True)
class Action:
    due: datetime
    seq: int
    kind: ActionKind = field(compare=False)
    order_id: BrokerOrderId = field(compare=False)


@dataclass(slots=True)
class Book:
    cash: Decimal
    positions: dict[Symbol, Holding] = field(default_factory=dict)
    orders: dict[BrokerOrderId, SimOrder] = field(default_factory=dict)
    by_client: dict[ClientOrderId, BrokerOrderId] = field(default_factory=dict)
    fills: list[Fill] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)  # a heap
    marks: dict[Symbol, Mark] = field(default_factory=dict)
    next_order: int = 1
    next_execution: int = 1
    next_action: int = 1

    def new_order_id(self) -> tuple[int, BrokerOrderId]:
        seq = self.next_order
        self.next_order += 1
        return seq, BrokerOrderId(f"sim-{seq:08d}")

    def new_execution_id(self) -> ExecutionId:
        seq = self.next_execution
        self.next_execution += 1
        return ExecutionId(f"sim-exec-{seq:08d}")

    def schedule(self, due: datetime, kind: ActionKind, order_id: BrokerOrderId) -> Action:
        action = Action(due, self.next_action, kind, order_id)
        self.next_action += 1
        heapq.heappush(self.actions, action)
        return action

    def pop_due(self, until: datetime) -> Action | None:
        if self.actions and self.actions[0].due <= until:
            return heapq.heappop(self.actions)
        return None

    def next_due(self) -> datetime | None:
        return self.actions[0].due if self.actions else None

    def add(self, order: SimOrder) -> None:
        self.orders[order.broker_order_id] = order
        self.by_client[order.client_order_id] = order.broker_order_id


# --- JSON --------------------------------------------------------------------------------


def encode(value: Any) -> Any:
    """Decimals and datetimes as strings (exact), enums by value, dataclasses as dicts."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    return value


def decode(kind: Any, value: Any) -> Any:
    """Inverse of `encode` for the annotated type `kind`."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        return decode(options[0], value)
    if origin is tuple:
        (item, *_rest) = typing.get_args(kind)
        return tuple(decode(item, v) for v in value)
    if kind is Decimal:
        return Decimal(value)
    if kind is datetime:
        return datetime.fromisoformat(value)
    if isinstance(kind, type) and issubclass(kind, Enum):
        return kind(value)
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return decode_dataclass(kind, value)
    supertype = getattr(kind, "__supertype__", None)  # NewType ids
    if supertype is not None:
        return decode(supertype, value)
    return value


def decode_dataclass(cls: type[_T], data: dict[str, Any]) -> _T:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: decode(hints[k], v) for k, v in data.items() if k in names})


def book_to_json(book: Book) -> dict[str, Any]:
    return {
        "cash": encode(book.cash),
        "positions": encode(book.positions),
        "orders": [encode(o) for o in book.orders.values()],
        "fills": [encode(f) for f in book.fills],
        "actions": [encode(a) for a in sorted(book.actions)],
        "marks": encode(book.marks),
        "next_order": book.next_order,
        "next_execution": book.next_execution,
        "next_action": book.next_action,
    }


def book_from_json(data: dict[str, Any]) -> Book:
    book = Book(cash=Decimal(data["cash"]))
    book.positions = {Symbol(k): decode_dataclass(Holding, v) for k, v in data["positions"].items()}
    for raw in data["orders"]:
        book.add(decode_dataclass(SimOrder, raw))
    book.fills = [decode_dataclass(Fill, raw) for raw in data["fills"]]
    book.actions = [decode_dataclass(Action, raw) for raw in data["actions"]]
    heapq.heapify(book.actions)
    book.marks = {Symbol(k): decode_dataclass(Mark, v) for k, v in data["marks"].items()}
    book.next_order = int(data["next_order"])
    book.next_execution = int(data["next_execution"])
    book.next_action = int(data["next_action"])
    return book


def write_atomically(path: Path, payload: dict[str, Any]) -> None:
    """Temp file in the same directory, fsync, rename: a crash leaves the old or the new
    file, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(payload, out, indent=1, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    if data.get("format") != FORMAT_VERSION:
        raise ValueError(f"{path}: not a SimBroker state file of format {FORMAT_VERSION}")
    return data
