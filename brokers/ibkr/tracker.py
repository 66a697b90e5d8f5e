"""Raw gateway messages -> order records -> BrokerEvents.

Rules (see docs/ibkr.md for the tables):
- A record's status changes only on what IB itself sent (openOrder, orderStatus,
  completedOrder, execDetails) or on a query that settles an order error.
- An order error (201, 202, 10147, ...) is held as `unconfirmed_error`; the adapter then
  asks IB (open + completed orders). ib_async's local `Cancelled` is never consulted.
- Fill events come from executions (de-duplicated by execId; a correction is a
  TRADE_CORRECT that replaces the earlier revision). Status events never carry fill kinds.
- A commission report re-publishes the fill with its commission as RESTATED.
- Nothing is published for orders IB has not given a permId yet (they have no broker id),
  nor during the first synchronisation after `connect` (the engine reconciles at start).
"""

from __future__ import annotations

from collections.abc import Callable

from ib_async import CommissionReport, Contract, Execution, Order, OrderState
from loguru import logger

from brokers.ibkr.mapping import (
    DONE_IB_STATUSES,
    IB_STATUS,
    WORKING_IB_STATUSES,
    IbError,
    IbErrorClass,
    dec,
    fill_from_execution,
    price,
    qty,
)
from brokers.ibkr.pacing import Notifier
from brokers.ibkr.records import ExecOutcome, FillStore, OrderRecord, RecordIndex
from core.broker import BrokerEvent, BrokerEventKind
from core.broker_events import EventHub
from core.clock import Clock
from core.domain import Fill, OrderStatus

S = OrderStatus
K = BrokerEventKind

REJECTING = frozenset(
    {
        IbErrorClass.REJECTED,
        IbErrorClass.OFF_TICK,
        IbErrorClass.UNKNOWN_CONTRACT,
        IbErrorClass.DUPLICATE_ORDER_ID,
        IbErrorClass.PACING,
    }
)
CONNECTIVITY = frozenset(
    {
        IbErrorClass.CONNECTIVITY_LOST,
        IbErrorClass.RESTORED,
        IbErrorClass.RESTORED_DATA_LOST,
        IbErrorClass.NOT_CONNECTED,
    }
)
INFORMATIONAL = frozenset({IbErrorClass.WARNING, IbErrorClass.OUTSIDE_RTH_IGNORED})

RecordHook = Callable[[OrderRecord], None]
FillHook = Callable[[OrderRecord, Fill], None]
ErrorHook = Callable[[IbError], None]


class OrderTracker(RecordIndex):
    """Implements `wire.WireListener`; the adapter owns one."""

    def __init__(self, clock: Clock, client_id: int, hub: EventHub) -> None:
        super().__init__(clock, client_id)
        self._hub = hub
        self._held: list[BrokerEvent] | None = None  # events held during a resync
        self.notifier = Notifier(clock)
        self.fills = FillStore()
        self.emitting = False
        self._generation = 0
        self._refreshing: int | None = None
        self.on_order_error: list[RecordHook] = []
        self.on_status: list[RecordHook] = []
        self.on_fill: list[FillHook] = []
        self.on_global_error: list[ErrorHook] = []

    # --- refresh generations (which orders a query listed) ------------------------------

    def begin_refresh(self) -> int:
        self._generation += 1
        self._refreshing = self._generation
        return self._generation

    def end_refresh(self) -> None:
        self._refreshing = None

    def hold_events(self) -> None:
        """While a reconnect resynchronises, what it learns (a fill missed while down) is
        held back: the link is not up yet, so the engine could not act on it (its
        protection submit would fail). `release_events` publishes it once the link is up."""
        if self._held is None:
            self._held = []

    def release_events(self) -> None:
        held, self._held = self._held, None
        for event in held or ():
            self._hub.publish(event)

    def start_emitting(self) -> None:
        """After the first synchronisation: what is known now counts as already told."""
        for record in self._records.values():
            if record.perm_id:
                record.emitted = (record.status, record.raw_status)
        self.emitting = True

    def _adopt_with_fills(self, contract: Contract, order: Order) -> OrderRecord:
        """A record for an order first seen now, with the executions already held for it
        (IB does not promise to list an order before its executions)."""
        record = self._adopt(contract, order)
        for fill in self.fills.all():
            if fill.broker_order_id == record.broker_order_id:
                record.fills[fill.execution_id] = fill
        return record

    # --- wire listener ------------------------------------------------------------------

    def on_open_order(
        self, order_id: int, contract: Contract, order: Order, state: OrderState
    ) -> None:
        record = self.find(
            perm_id=order.permId,
            client_id=order.clientId,
            order_id=order.orderId,
            order_ref=order.orderRef,
        )
        if record is None:
            record = self._adopt_with_fills(contract, order)
        record.absorb_order(order)
        self._index_perm(record, order.permId)
        if self._refreshing is not None:
            record.seen_open = self._refreshing
        self._apply_raw(record, state.status)

    def on_order_status(
        self,
        order_id: int,
        status: str,
        filled: float,
        remaining: float,
        avg_fill_price: float,
        perm_id: int,
        parent_id: int,
        client_id: int,
        why_held: str,
    ) -> None:
        record = self.find(perm_id=perm_id, client_id=client_id, order_id=order_id)
        if record is None:
            logger.debug("ibkr: status {} for unknown order {}/{}", status, client_id, order_id)
            return
        self._index_perm(record, perm_id)
        record.ib_filled = max(record.ib_filled, qty(filled))
        record.ib_avg_price = price(avg_fill_price) or record.ib_avg_price
        self._apply_raw(record, status)

    def on_completed_order(self, contract: Contract, order: Order, state: OrderState) -> None:
        record = self.find(perm_id=order.permId, order_ref=order.orderRef)
        if record is None:
            record = self._adopt_with_fills(contract, order)
        record.absorb_order(order)
        self._index_perm(record, order.permId)
        record.ib_filled = max(record.ib_filled, qty(order.filledQuantity))
        if self._refreshing is not None:
            record.seen_completed = self._refreshing
        self._apply_raw(record, state.status)

    def on_exec_details(self, req_id: int, contract: Contract, execution: Execution) -> None:
        fill = fill_from_execution(contract, execution)
        outcome, fill = self.fills.add(execution.execId, fill)
        record = self.find(
            perm_id=execution.permId,
            client_id=execution.clientId,
            order_id=execution.orderId,
            order_ref=execution.orderRef,
        )
        if record is None:
            logger.info("ibkr: execution {} of an order we do not track", execution.execId)
            self.notifier.notify()
            return
        self._index_perm(record, execution.permId)
        if outcome in (ExecOutcome.DUPLICATE, ExecOutcome.STALE):
            return
        record.fills[fill.execution_id] = fill
        record.status = self._derive(record)
        record.updated_at = self._clock.now()
        record.emitted = (record.status, record.raw_status)
        if outcome is ExecOutcome.CORRECTION:
            self._publish(K.TRADE_CORRECT, record, fill)
        else:
            complete = record.exec_qty >= record.total_qty
            self._publish(K.FILL if complete else K.PARTIAL_FILL, record, fill)
        for hook in self.on_fill:
            hook(record, fill)
        self.notifier.notify()

    def on_commission_report(self, report: CommissionReport) -> None:
        commission = dec(report.commission)
        if commission is None:
            return
        fill = self.fills.add_commission(report.execId, commission)
        if fill is None:
            return
        record = self._by_perm.get(int(fill.broker_order_id))
        if record is not None and fill.execution_id in record.fills:
            record.fills[fill.execution_id] = fill
            self._publish(K.RESTATED, record, fill)

    def on_error(self, req_id: int, code: int, text: str, is_request: bool) -> None:
        error = IbError(req_id, code, text, self._clock.now())
        kind = error.kind
        record = None if is_request or req_id <= 0 else self.by_order_id(req_id)
        if record is None:
            if kind not in INFORMATIONAL:
                logger.warning("ibkr: error {} (req {}): {}", code, req_id, text)
            for global_hook in self.on_global_error:
                global_hook(error)
            self.notifier.notify()
            return
        if kind in INFORMATIONAL or kind in CONNECTIVITY:
            record.warnings.append(f"{code}: {text}")
            logger.info("ibkr: order {} warning {}: {}", record.order_ref, code, text)
        elif record.status.is_terminal and record.raw_status in DONE_IB_STATUSES:
            # IB already said how the order ended (e.g. 202 after its Cancelled status):
            # nothing left to confirm.
            record.errors.append(error)
            logger.info(
                "ibkr: order {} ({}) error {}: {}", record.order_ref, record.raw_status, code, text
            )
        else:
            logger.warning("ibkr: order {} error {}: {}", record.order_ref, code, text)
            record.errors.append(error)
            record.unconfirmed_error = error
            if kind in REJECTING:
                record.reject_pending = error
            for hook in self.on_order_error:
                hook(record)
        if kind is IbErrorClass.PACING:
            for global_hook in self.on_global_error:
                global_hook(error)
        self.notifier.notify()

    # --- settling an order error by a query ---------------------------------------------

    def settle(self, record: OrderRecord, generation: int) -> None:
        """After a refresh: an order listed by IB already has IB's status (the taps applied
        it); one that IB never acknowledged and does not list was not placed."""
        error = record.unconfirmed_error
        if error is None:
            return
        record.unconfirmed_error = None
        if record.seen_open == generation or record.seen_completed == generation:
            return
        if not record.acknowledged:
            record.status = S.REJECTED
            record.reject_reason = error.reason
        else:
            record.status = self._derive(record)
            logger.warning(
                "ibkr: order {} (perm {}) is in neither open nor completed orders after error "
                "{}; status left at {} (reconcile)",
                record.order_ref,
                record.perm_id,
                error.code,
                record.status,
            )
        self._changed(record)

    # --- status derivation --------------------------------------------------------------

    def _apply_raw(self, record: OrderRecord, raw: str) -> None:
        if raw not in IB_STATUS:
            return  # ValidationError / ApiUpdate are ib_async's inventions, or empty
        record.raw_status = raw
        # A status IB sent after an error is newer than the error: it settles it.
        error = record.unconfirmed_error
        record.unconfirmed_error = None
        if raw in WORKING_IB_STATUSES:
            # Working again after an error: whatever was refused (a modification) did not
            # end the order.
            record.reject_pending = None
            record.reject_reason = None
        record.status = self._derive(record, error)
        self._changed(record)

    @staticmethod
    def _rejection(record: OrderRecord, error: IbError | None) -> str | None:
        if error is not None and error.kind in REJECTING:
            return error.reason
        return None if record.reject_pending is None else record.reject_pending.reason

    def _derive(self, record: OrderRecord, error: IbError | None = None) -> OrderStatus:
        if record.status is S.FILLED:
            return S.FILLED  # final: nothing IB sends later takes a fill back
        total = record.total_qty
        if total > 0 and record.filled_qty >= total:
            return S.FILLED
        mapped = IB_STATUS[record.raw_status][0] if record.raw_status else record.status
        if mapped in (S.CANCELED, S.REJECTED):
            reason = self._rejection(record, error)
            if mapped is S.REJECTED and reason is None and self._waits_for_parent(record):
                return S.ACCEPTED  # an attached child held until its parent fills
            if reason is not None and record.filled_qty == 0:
                record.reject_reason = reason
                return S.REJECTED
            if mapped is S.REJECTED:
                record.reject_reason = record.reject_reason or "order is inactive at IB"
            return mapped
        if mapped in (S.ACCEPTED, S.SUBMITTED) and record.filled_qty > 0:
            return S.PARTIALLY_FILLED
        return mapped

    def _waits_for_parent(self, record: OrderRecord) -> bool:
        if not record.parent_id:
            return False
        parent = self._by_oid.get((record.client_id, record.parent_id))
        return parent is not None and not parent.status.is_terminal

    def _changed(self, record: OrderRecord) -> None:
        record.updated_at = self._clock.now()
        key = (record.status, record.raw_status)
        if key != record.emitted and record.status not in (S.FILLED, S.PARTIALLY_FILLED):
            kind = _status_kind(record)
            if kind is not None:
                self._publish(kind, record)
        record.emitted = key if record.perm_id and self.emitting else record.emitted
        for hook in self.on_status:
            hook(record)
        self.notifier.notify()

    def _publish(
        self, kind: BrokerEventKind, record: OrderRecord, fill: Fill | None = None
    ) -> None:
        if not self.emitting or not record.perm_id:
            return
        at = fill.timestamp if fill is not None else self._clock.now()
        event = BrokerEvent(kind=kind, order=record.snapshot(), timestamp=at, fill=fill)
        if self._held is not None:
            self._held.append(event)
        else:
            self._hub.publish(event)


def _status_kind(record: OrderRecord) -> BrokerEventKind | None:
    status = record.status
    if status is S.ACCEPTED:
        return K.NEW if record.raw_status == "Submitted" else K.ACCEPTED
    return {
        S.SUBMITTED: K.PENDING_NEW,
        S.PENDING_CANCEL: K.PENDING_CANCEL,
        S.CANCELED: K.CANCELED,
        S.REJECTED: K.REJECTED,
    }.get(status)
