"""The adapter's own picture of each IB order and execution, built from raw messages.

An order is found again by permId (IB's, stable everywhere), by (clientId, orderId) before
IB has assigned a permId, and by orderRef (our client order id) when neither is known --
after a restart, or when the connection dropped before the first acknowledgement. Nothing
here depends on ib_async's `Trade` objects, which are wiped on every disconnect.
"""

from __future__ import annotations

import copy
import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from ib_async import Contract, Order

from brokers.ibkr.mapping import (
    IbError,
    broker_order_id_for,
    client_order_id_for,
    dec,
    order_type_from_ib,
    price,
    qty,
    side_from_action,
    split_exec_id,
    tif_from_ib,
)
from core.clock import Clock
from core.domain import (
    ZERO,
    BrokerOrderId,
    ClientOrderId,
    ExecutionId,
    Fill,
    OrderSnapshot,
    OrderStatus,
    Symbol,
)

S = OrderStatus


@dataclass(frozen=True, slots=True)
class IbOrderIds:
    """Everything needed to find an order again at IB (persist it before placing)."""

    order_ref: str  # our client order id
    client_id: int
    order_id: int  # per client id; 0 for orders known only from completed orders
    perm_id: int  # 0 until IB's first acknowledgement
    parent_order_id: int = 0
    parent_perm_id: int = 0


@dataclass
class OrderRecord:
    seq: int
    order_ref: str
    contract: Contract
    order: Order  # the full order as last sent / reported (a modify resends all of it)
    client_id: int
    order_id: int
    perm_id: int = 0
    parent_id: int = 0
    parent_perm_id: int = 0
    ours: bool = False  # placed by this adapter instance
    raw_status: str = ""  # the last status IB itself reported
    ib_filled: Decimal = ZERO
    ib_avg_price: Decimal | None = None
    status: OrderStatus = S.PENDING_SUBMIT
    reject_reason: str | None = None
    errors: list[IbError] = field(default_factory=list)
    # An order error not yet confirmed against IB (ib_async may have synthesized a
    # Cancelled from it): the order's status is left alone until a query settles it.
    unconfirmed_error: IbError | None = None
    # A refusal (201, 110, ...) not yet followed by a working status: if IB then reports
    # Cancelled/Inactive, the order was REJECTED, with this reason.
    reject_pending: IbError | None = None
    warnings: list[str] = field(default_factory=list)
    fills: dict[ExecutionId, Fill] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    seen_open: int = -1  # refresh generation in which the order was listed as open
    seen_completed: int = -1  # ... as completed
    emitted: tuple[OrderStatus, str] | None = None  # the last status event published

    @property
    def ids(self) -> IbOrderIds:
        return IbOrderIds(
            order_ref=self.order_ref,
            client_id=self.client_id,
            order_id=self.order_id,
            perm_id=self.perm_id,
            parent_order_id=self.parent_id,
            parent_perm_id=self.parent_perm_id,
        )

    @property
    def client_order_id(self) -> ClientOrderId:
        return client_order_id_for(self.order_ref, self.perm_id)

    @property
    def broker_order_id(self) -> BrokerOrderId:
        return broker_order_id_for(self.perm_id)

    @property
    def symbol(self) -> Symbol:
        return Symbol(self.contract.symbol)

    @property
    def total_qty(self) -> Decimal:
        return qty(self.order.totalQuantity)

    @property
    def exec_qty(self) -> Decimal:
        return sum((fill.qty for fill in self.fills.values()), ZERO)

    @property
    def filled_qty(self) -> Decimal:
        """Executions we hold, or IB's cumulative count when it is ahead of them."""
        return max(self.exec_qty, self.ib_filled)

    @property
    def avg_fill_price(self) -> Decimal | None:
        executed = self.exec_qty
        if executed > 0 and executed >= self.ib_filled:
            notional = sum((f.qty * f.price for f in self.fills.values()), ZERO)
            return notional / executed
        return self.ib_avg_price

    @property
    def acknowledged(self) -> bool:
        return self.perm_id > 0 and self.raw_status not in ("", "PendingSubmit", "ApiPending")

    def absorb_order(self, order: Order) -> None:
        """Take IB's current values (a modification shows here) into our copy."""
        mine = self.order
        for name in (
            "totalQuantity",
            "orderType",
            "lmtPrice",
            "auxPrice",
            "tif",
            "outsideRth",
            "trailingPercent",
            "trailStopPrice",
            "parentId",
            "account",
        ):
            setattr(mine, name, getattr(order, name))
        if order.permId:
            mine.permId = order.permId
            self.perm_id = order.permId
        if order.orderRef and not self.order_ref:
            self.order_ref = order.orderRef
        if order.parentId:
            self.parent_id = order.parentId
        if order.parentPermId:
            self.parent_perm_id = order.parentPermId

    def modified_order(self) -> Order:
        """A copy to resend as a modification (same orderId; transmitted)."""
        order = copy.copy(self.order)
        order.orderId = self.order_id
        order.clientId = self.client_id
        order.permId = self.perm_id
        order.transmit = True
        return order

    def snapshot(self) -> OrderSnapshot:
        order = self.order
        order_type = order_type_from_ib(order.orderType, price(order.lmtPrice) is not None)
        stop = price(order.auxPrice) if order.orderType in ("STP", "STP LMT") else None
        if order.orderType.startswith("TRAIL"):
            stop = price(order.trailStopPrice)
        trail = dec(order.trailingPercent)
        return OrderSnapshot(
            broker_order_id=self.broker_order_id,
            client_order_id=self.client_order_id,
            symbol=self.symbol,
            side=side_from_action(order.action),
            qty=self.total_qty,
            order_type=order_type,
            time_in_force=tif_from_ib(order.tif),
            status=self.status,
            filled_qty=self.filled_qty,
            avg_fill_price=self.avg_fill_price,
            limit_price=price(order.lmtPrice) if order.orderType in ("LMT", "STP LMT") else None,
            stop_price=stop,
            trail_percent=trail if trail is not None and trail > 0 else None,
            created_at=self.created_at,
            updated_at=self.updated_at,
            reject_reason=self.reject_reason,
            raw_status=self.raw_status or None,
        )


class ExecOutcome(StrEnum):
    NEW = "new"
    DUPLICATE = "duplicate"
    CORRECTION = "correction"  # replaces the earlier revision of the same execution
    STALE = "stale"  # an older revision than the one we hold


@dataclass
class _Held:
    exec_id: str  # the full execId (with revision suffix)
    revision: int
    fill: Fill


class FillStore:
    """Executions de-duplicated by execId; a correction replaces, never adds."""

    def __init__(self) -> None:
        self._held: dict[ExecutionId, _Held] = {}
        self._commissions: dict[str, Decimal] = {}  # full execId -> commission

    def add(self, exec_id: str, fill: Fill) -> tuple[ExecOutcome, Fill]:
        base, revision = split_exec_id(exec_id)
        held = self._held.get(ExecutionId(base))
        commission = self._commissions.get(exec_id)
        if commission is not None:
            fill = _with_commission(fill, commission)
        if held is None:
            self._held[ExecutionId(base)] = _Held(exec_id, revision, fill)
            return ExecOutcome.NEW, fill
        if revision == held.revision:
            return ExecOutcome.DUPLICATE, held.fill
        if revision < held.revision:
            return ExecOutcome.STALE, held.fill
        self._held[ExecutionId(base)] = _Held(exec_id, revision, fill)
        return ExecOutcome.CORRECTION, fill

    def add_commission(self, exec_id: str, commission: Decimal) -> Fill | None:
        """Attach a commission report; returns the updated fill if it is the current
        revision of an execution we hold (the report may also arrive first)."""
        self._commissions[exec_id] = commission
        base, revision = split_exec_id(exec_id)
        held = self._held.get(ExecutionId(base))
        if held is None or held.revision != revision or held.fill.commission == commission:
            return None
        held.fill = _with_commission(held.fill, commission)
        return held.fill

    def get(self, execution_id: ExecutionId) -> Fill | None:
        held = self._held.get(execution_id)
        return None if held is None else held.fill

    def all(self) -> list[Fill]:
        return [held.fill for held in self._held.values()]


def _with_commission(fill: Fill, commission: Decimal) -> Fill:
    return Fill(
        execution_id=fill.execution_id,
        broker_order_id=fill.broker_order_id,
        client_order_id=fill.client_order_id,
        symbol=fill.symbol,
        side=fill.side,
        qty=fill.qty,
        price=fill.price,
        timestamp=fill.timestamp,
        commission=commission,
    )


class RecordIndex:
    """Records and their indexes: permId, (clientId, orderId), orderRef."""

    def __init__(self, clock: Clock, client_id: int) -> None:
        self._clock = clock
        self.client_id = client_id
        self._seq = itertools.count(1)
        self._records: dict[int, OrderRecord] = {}
        self._by_perm: dict[int, OrderRecord] = {}
        self._by_oid: dict[tuple[int, int], OrderRecord] = {}
        self._by_ref: defaultdict[str, list[OrderRecord]] = defaultdict(list)

    # --- lookup -------------------------------------------------------------------------

    def records(self) -> list[OrderRecord]:
        return list(self._records.values())

    def by_perm(self, perm_id: int) -> OrderRecord | None:
        return self._by_perm.get(perm_id)

    def by_order_id(self, order_id: int, client_id: int | None = None) -> OrderRecord | None:
        return self._by_oid.get((self.client_id if client_id is None else client_id, order_id))

    def by_ref(self, order_ref: str) -> list[OrderRecord]:
        return list(self._by_ref.get(order_ref, ()))

    def find(
        self, *, perm_id: int = 0, client_id: int = 0, order_id: int = 0, order_ref: str = ""
    ) -> OrderRecord | None:
        if perm_id and perm_id in self._by_perm:
            return self._by_perm[perm_id]
        if order_id > 0:
            found = self._by_oid.get((client_id, order_id))
            if found is not None and found.perm_id in (0, perm_id):
                return found
        if order_ref:
            # IB does not enforce orderRef uniqueness: only a record still waiting for its
            # permId (or a message without one) may be matched by reference.
            for candidate in reversed(self._by_ref.get(order_ref, ())):
                if candidate.perm_id == 0 or perm_id == 0:
                    return candidate
        return None

    # --- our own orders -----------------------------------------------------------------

    def register(self, contract: Contract, order: Order, *, parent_id: int = 0) -> OrderRecord:
        record = OrderRecord(
            seq=next(self._seq),
            order_ref=order.orderRef,
            contract=contract,
            order=order,
            client_id=self.client_id,
            order_id=order.orderId,
            parent_id=parent_id,
            ours=True,
            created_at=self._clock.now(),
            updated_at=self._clock.now(),
        )
        self._add(record)
        return record

    def forget(self, record: OrderRecord) -> None:
        """Drop a record IB never took (e.g. refused for pacing): its reference is free."""
        self._records.pop(record.seq, None)
        if self._by_perm.get(record.perm_id) is record:
            del self._by_perm[record.perm_id]
        if self._by_oid.get((record.client_id, record.order_id)) is record:
            del self._by_oid[(record.client_id, record.order_id)]
        refs = self._by_ref.get(record.order_ref, [])
        if record in refs:
            refs.remove(record)

    def _add(self, record: OrderRecord) -> None:
        self._records[record.seq] = record
        if record.perm_id:
            self._by_perm[record.perm_id] = record
        if record.order_id > 0:
            self._by_oid[(record.client_id, record.order_id)] = record
        if record.order_ref:
            self._by_ref[record.order_ref].append(record)

    def _index_perm(self, record: OrderRecord, perm_id: int) -> None:
        if perm_id and self._by_perm.get(perm_id) is not record:
            record.perm_id = perm_id
            record.order.permId = perm_id
            self._by_perm[perm_id] = record

    def _adopt(self, contract: Contract, order: Order) -> OrderRecord:
        record = OrderRecord(
            seq=next(self._seq),
            order_ref=order.orderRef,
            contract=contract,
            order=order,
            client_id=order.clientId,
            order_id=order.orderId,
            perm_id=order.permId,
            parent_id=order.parentId,
            parent_perm_id=order.parentPermId,
            created_at=self._clock.now(),
        )
        self._add(record)
        return record
