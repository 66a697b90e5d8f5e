"""Waiting for IB's answers: acknowledgement, cancel, modification; confirming errors.

Every wait ends on one of: IB's answer (the tracker notifies), a lost connection, or
`ack_timeout` on the injected clock (AmbiguousOutcome). An order error is never taken at
face value: `confirm` asks IB (open + completed orders, executions when a fill may have
won) and only then does a waiter decide.
"""

from __future__ import annotations

import asyncio
import contextlib
from decimal import Decimal
from typing import TYPE_CHECKING

from loguru import logger

from brokers.ibkr.mapping import WORKING_IB_STATUSES, IbErrorClass, dec, qty, rejection_for
from brokers.ibkr.records import OrderRecord
from core.broker import (
    BrokerError,
    BrokerUnavailable,
    NotCancelable,
    NotFound,
    NotReplaceable,
    OrderRejected,
    RateLimited,
    UnsupportedOrder,
)
from core.capabilities import check_price
from core.domain import ClientOrderId, OrderSnapshot, OrderStatus, TimeInForce

if TYPE_CHECKING:
    from brokers.ibkr.base import IbkrBase

S = OrderStatus
RACE = frozenset({IbErrorClass.CANCEL_TARGET_MISSING, IbErrorClass.NOT_CANCELABLE})
CANCEL_DONE_RAW = frozenset({"PendingCancel", "Cancelled", "ApiCancelled"})


class OrderOps:
    def __init__(self, broker: IbkrBase) -> None:
        self._b = broker
        self._confirming: dict[int, asyncio.Task[None]] = {}
        self.in_flight: set[int] = set()  # records prepared and not yet acknowledged
        broker.tracker.on_order_error.append(self._schedule_confirm)

    # --- confirming order errors --------------------------------------------------------

    def busy(self, record: OrderRecord) -> bool:
        task = self._confirming.get(record.seq)
        return record.unconfirmed_error is not None or (task is not None and not task.done())

    def _schedule_confirm(self, record: OrderRecord) -> None:
        task = self._confirming.get(record.seq)
        if task is None or task.done():
            self._confirming[record.seq] = asyncio.ensure_future(self._confirm(record))

    async def _confirm(self, record: OrderRecord) -> None:
        tracker = self._b.tracker
        try:
            for _ in range(3):
                error = record.unconfirmed_error
                if error is None:
                    return
                try:
                    generation = await self._b.refresh(
                        executions=error.kind in RACE or error.kind is IbErrorClass.NOT_MODIFIABLE
                    )
                except BrokerError as exc:
                    logger.warning("ibkr: cannot confirm error {}: {}", error.code, exc)
                    return
                tracker.settle(record, generation)
        finally:
            if self._confirming.get(record.seq) is asyncio.current_task():
                del self._confirming[record.seq]  # not busy any more, before waking waiters
            tracker.notifier.notify()

    def drop_unplaced(self, generation: int) -> None:
        """Orders we sent that IB never acknowledged and does not list were not placed:
        forget them, so their client order id may be used again."""
        for record in self._b.tracker.records():
            if (
                record.ours
                and record.perm_id == 0
                and record.seq not in self.in_flight
                and record.seen_open != generation
                and record.seen_completed != generation
                and not self.busy(record)
            ):
                logger.info("ibkr: order {} never reached IB; forgotten", record.order_ref)
                self._b.tracker.forget(record)

    # --- acknowledgement ----------------------------------------------------------------

    def ack_verdict(self, record: OrderRecord) -> str | None:
        if record.status is S.REJECTED:
            return "rejected"
        if self.busy(record):
            return None if self._b.connection.is_up else "lost"
        if record.status is S.CANCELED and record.filled_qty == 0 and record.errors:
            return "rejected"
        if record.acknowledged:
            return "acked"
        return None if self._b.connection.is_up else "lost"

    async def await_ack(self, record: OrderRecord) -> OrderSnapshot:
        timeout = self._b.config.ack_timeout
        try:
            verdict = await self._b.tracker.notifier.wait_until(
                lambda: self.ack_verdict(record), timeout
            )
        finally:
            self.in_flight.discard(record.seq)
        if verdict is None:
            raise self._b.ambiguous(
                record, f"IB did not acknowledge {record.order_ref} in {timeout} s"
            )
        if verdict == "lost":
            raise self._b.ambiguous(record, "connection to IBKR lost before the acknowledgement")
        if verdict == "rejected":
            error = record.reject_pending
            if error is not None and error.kind is IbErrorClass.PACING:
                self._b.tracker.forget(record)
                raise RateLimited(f"IB pacing: {error.text}", retry_after=1.0)
            raise self._b.rejection(record)
        return record.snapshot()

    # --- cancel -------------------------------------------------------------------------

    def _cancel_verdict(self, record: OrderRecord, mark: int) -> str | None:
        if self.busy(record):
            return None if self._b.connection.is_up else "lost"
        if record.status is S.FILLED:
            return "filled"
        if record.status.is_terminal or record.raw_status in CANCEL_DONE_RAW:
            return "done"
        if any(error.kind in RACE for error in record.errors[mark:]):
            return "refused"
        return None if self._b.connection.is_up else "lost"

    async def cancel(self, record: OrderRecord) -> None:
        b = self._b
        if record.status.is_terminal:
            raise NotCancelable(f'order is already in "{record.raw_status or record.status}" state')
        if record.status is S.PENDING_CANCEL:
            return  # already requested; IB's answer completes it
        mark = len(record.errors)
        await b.pacer.acquire()
        b.require_up()
        try:
            b.ib.cancelOrder(record.order)
        except ConnectionError as exc:
            raise BrokerUnavailable(f"IBKR: cancel not sent: {exc}") from exc
        timeout = b.config.ack_timeout
        verdict = await b.tracker.notifier.wait_until(
            lambda: self._cancel_verdict(record, mark), timeout
        )
        if verdict is None or verdict == "lost":
            raise b.ambiguous(record, f"no answer from IB to the cancel of {record.order_ref}")
        if verdict == "filled":
            raise NotCancelable('order is already in "Filled" state')
        if record.status.is_terminal and record.status is not S.CANCELED:
            raise NotCancelable(f'order is already in "{record.raw_status}" state')
        if verdict == "refused" and not record.status.is_terminal:
            code = record.errors[-1].code
            if record.raw_status in WORKING_IB_STATUSES:
                raise b.ambiguous(record, f"IB refused the cancel ({code}) while it works: retry")
            raise NotFound(f"IB no longer knows order {record.order_ref} ({code}); reconcile")

    # --- modify -------------------------------------------------------------------------

    async def modify(
        self,
        record: OrderRecord,
        *,
        qty: Decimal | None = None,
        stop_price: Decimal | None = None,
        limit_price: Decimal | None = None,
        trail_percent: Decimal | None = None,
        time_in_force: TimeInForce | None = None,
        client_order_id: ClientOrderId | None = None,
    ) -> OrderSnapshot:
        b = self._b
        if (
            record.status not in (S.ACCEPTED, S.PARTIALLY_FILLED)
            or record.raw_status not in WORKING_IB_STATUSES
            or self.busy(record)
        ):
            raise NotReplaceable(
                f'order is in "{record.raw_status or record.status}" state and cannot be replaced'
            )
        if client_order_id is not None and client_order_id != record.client_order_id:
            logger.info(
                "ibkr: modify keeps orderRef {} (ignoring {})", record.order_ref, client_order_id
            )
        order = record.modified_order()
        expected = _changes(record, qty, stop_price, limit_price, trail_percent, time_in_force)
        if not expected:
            raise OrderRejected("replace request changes nothing", "unchanged")
        for name, value in expected.items():
            setattr(order, name, float(value) if name == "totalQuantity" else value)
        mark = len(record.errors)
        await b.pacer.acquire()
        b.require_up()
        trade = b.ib.wrapper.trades.get((record.client_id, record.order_id))
        try:
            if trade is not None and not trade.isDone():
                b.ib.placeOrder(record.contract, order)
            else:  # ib_async lost (or locally ended) its Trade: send at the socket edge
                b.ib.client.placeOrder(record.order_id, record.contract, order)  # type: ignore[no-untyped-call]
        except ConnectionError as exc:
            raise BrokerUnavailable(f"IBKR: modification not sent: {exc}") from exc
        verdict = await b.tracker.notifier.wait_until(
            lambda: self._modify_verdict(record, expected, mark), b.config.ack_timeout
        )
        if verdict is None or verdict == "lost":
            raise b.ambiguous(
                record, f"no answer from IB to the modification of {record.order_ref}"
            )
        if verdict == "ended":
            raise NotReplaceable(f'order ended as "{record.raw_status}" before the modification')
        if verdict == "refused":
            error = record.errors[-1]
            if error.kind is IbErrorClass.NOT_MODIFIABLE:
                raise NotReplaceable(error.reason)
            raise rejection_for(error, record.client_order_id)
        return record.snapshot()

    def _modify_verdict(
        self, record: OrderRecord, expected: dict[str, Decimal | str], mark: int
    ) -> str | None:
        if self.busy(record):
            return None if self._b.connection.is_up else "lost"
        if record.errors[mark:]:
            return "refused"
        if record.status.is_terminal:
            return "ended"
        if all(_current(record, name) == value for name, value in expected.items()):
            return "done"
        return None if self._b.connection.is_up else "lost"

    async def close(self) -> None:
        for task in list(self._confirming.values()):
            task.cancel()
        for task in list(self._confirming.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _current(record: OrderRecord, name: str) -> Decimal | str | None:
    value = getattr(record.order, name)
    if name == "tif":
        return str(value).upper()
    return qty(value) if name == "totalQuantity" else dec(value)


def _changes(
    record: OrderRecord,
    new_qty: Decimal | None,
    stop_price: Decimal | None,
    limit_price: Decimal | None,
    trail_percent: Decimal | None,
    time_in_force: TimeInForce | None,
) -> dict[str, Decimal | str]:
    """Order attribute -> new value, for the values that change; validates them."""
    order_type = record.order.orderType
    wanted: dict[str, Decimal | str] = {}
    if new_qty is not None:
        if new_qty != new_qty.to_integral_value():
            raise UnsupportedOrder(f"fractional quantity {new_qty} is not supported at IBKR")
        if new_qty <= record.filled_qty:
            raise OrderRejected(
                f"new total quantity {new_qty} must exceed the filled {record.filled_qty}"
            )
        wanted["totalQuantity"] = new_qty
    for label, value, field, types in (
        ("stop price", stop_price, "auxPrice", ("STP", "STP LMT")),
        ("limit price", limit_price, "lmtPrice", ("LMT", "STP LMT")),
    ):
        if value is None:
            continue
        if order_type not in types:
            raise OrderRejected(f"a {order_type} order has no {label}")
        verdict = check_price(value, label)
        if not verdict.allowed:
            raise UnsupportedOrder(verdict.reason, "110")
        wanted[field] = value
    if trail_percent is not None:
        if not order_type.startswith("TRAIL"):
            raise OrderRejected(f"a {order_type} order has no trail percent")
        if not 0 < trail_percent < 100:
            raise OrderRejected(f"trail percent must be in (0, 100), got {trail_percent}")
        wanted["trailingPercent"] = trail_percent
    if time_in_force is not None:
        wanted["tif"] = time_in_force.value.upper()
    return {name: value for name, value in wanted.items() if _current(record, name) != value}
