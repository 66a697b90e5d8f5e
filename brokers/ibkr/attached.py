"""Entry with broker-side attached protection: STP BUY parent + TRAIL SELL child.

The parent goes out with transmit=False, the child (parentId = parent's orderId) with
transmit=True, which transmits the pair as one group. IB activates the child when the
parent fills, even while our process is down. Both carry their orderRef.

Partial parent fills: how IB sizes the child is unverified, so the child is made to match
what is filled, checked against what IB reports (openOrder's totalQuantity), never
assumed: after every parent execution (and when the parent ends) the child is modified
to the parent's filled quantity until IB confirms that size.

The engine detects the capability with `isinstance(broker, SupportsAttachedProtection)`.
When IB refuses the attachment, `AttachedProtectionRefused` is raised after the parent
was cancelled (its snapshot rides along: if it filled meanwhile, protect it now); the
engine then takes its post-fill protection path.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from loguru import logger

from brokers.ibkr.records import OrderRecord
from core.broker import (
    BrokerError,
    DuplicateClientOrderId,
    OrderRejected,
    UnsupportedOrder,
)
from core.capabilities import IBKR, check
from core.domain import (
    ClientOrderId,
    Fill,
    MoneyError,
    OrderRequest,
    OrderSnapshot,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)

if TYPE_CHECKING:
    from brokers.ibkr.base import IbkrBase

S = OrderStatus


@runtime_checkable
class SupportsAttachedProtection(Protocol):
    async def submit_with_protection(
        self,
        entry: OrderRequest,
        trail_percent: Decimal,
        child_client_order_id: ClientOrderId,
        *,
        child_time_in_force: TimeInForce = TimeInForce.GTC,
    ) -> tuple[OrderSnapshot, OrderSnapshot]:
        """Place `entry` (a buy) with a trailing-stop sell attached; returns (parent,
        child) once IB acknowledged both. Raises AttachedProtectionRefused."""
        ...

    def attached_state(self, parent_client_order_id: ClientOrderId) -> AttachedState | None: ...


class AttachedProtectionRefused(OrderRejected):
    """IB refused the attached child. `parent` is the entry as it ended up (canceled by
    the adapter, or filled if the fill won: then protect it now), or None if the entry
    never reached IB. Fall back to the post-fill protection path."""

    def __init__(
        self,
        reason: str,
        code: str | None = None,
        *,
        client_order_id: ClientOrderId | None = None,
        parent: OrderSnapshot | None = None,
    ) -> None:
        super().__init__(reason, code, client_order_id=client_order_id)
        self.parent = parent


@dataclass(frozen=True, slots=True)
class AttachedState:
    parent_client_order_id: ClientOrderId
    child_client_order_id: ClientOrderId
    parent_filled: Decimal
    child_qty: Decimal  # the child's size as IB last reported it
    wanted_qty: Decimal  # what it should be: the parent's filled quantity (or size)
    child_status: OrderStatus
    child_raw_status: str
    resizing: bool
    last_error: str | None

    @property
    def in_sync(self) -> bool:
        return self.child_qty == self.wanted_qty


@dataclass
class _Group:
    parent: OrderRecord
    child: OrderRecord
    resizing: bool = False
    last_error: str | None = None
    task: asyncio.Task[None] | None = None

    def wanted(self) -> Decimal:
        filled = self.parent.filled_qty
        return filled if filled > 0 else self.parent.total_qty


class AttachedGroups:
    def __init__(self, broker: IbkrBase) -> None:
        self._b = broker
        self._groups: dict[int, _Group] = {}  # parent record seq -> group
        self._by_child: dict[int, _Group] = {}
        broker.tracker.on_fill.append(self._on_fill)
        broker.tracker.on_status.append(self._on_status)

    def state(self, parent_client_order_id: ClientOrderId) -> AttachedState | None:
        for group in self._groups.values():
            if group.parent.client_order_id == parent_client_order_id:
                return AttachedState(
                    parent_client_order_id=group.parent.client_order_id,
                    child_client_order_id=group.child.client_order_id,
                    parent_filled=group.parent.filled_qty,
                    child_qty=group.child.total_qty,
                    wanted_qty=group.wanted(),
                    child_status=group.child.status,
                    child_raw_status=group.child.raw_status,
                    resizing=group.resizing,
                    last_error=group.last_error,
                )
        return None

    # --- placing the group --------------------------------------------------------------

    async def submit(
        self,
        entry: OrderRequest,
        trail_percent: Decimal,
        child_client_order_id: ClientOrderId,
        *,
        child_time_in_force: TimeInForce = TimeInForce.GTC,
    ) -> tuple[OrderSnapshot, OrderSnapshot]:
        b = self._b
        if entry.side is not Side.BUY:
            raise UnsupportedOrder("attached protection needs a buy entry")
        if child_client_order_id == entry.client_order_id:
            raise DuplicateClientOrderId(
                "parent and child need distinct client order ids",
                client_order_id=child_client_order_id,
            )
        try:
            child_request = OrderRequest(
                client_order_id=child_client_order_id,
                symbol=entry.symbol,
                side=Side.SELL,
                qty=entry.qty,
                order_type=OrderType.TRAILING_STOP,
                time_in_force=child_time_in_force,
                trail_percent=trail_percent,
            )
        except MoneyError as exc:
            raise AttachedProtectionRefused(
                str(exc), client_order_id=child_client_order_id
            ) from exc
        verdict = check(IBKR, child_request, b.phase())
        if not verdict.allowed:
            raise AttachedProtectionRefused(verdict.reason, client_order_id=child_client_order_id)
        parent = await b.prepare(entry, transmit=False)
        try:
            child = await b.prepare(child_request, parent=parent)
        except BaseException:
            b.unplace(parent)
            raise
        group = _Group(parent, child)
        self._groups[parent.seq] = group
        self._by_child[child.seq] = group
        try:
            await b.place(parent)
        except BaseException:
            b.unplace(child)
            self._drop(group)
            raise
        try:
            await b.place(child)
        except BaseException:
            # The parent waits untransmitted at the gateway: take it back.
            with contextlib.suppress(Exception):
                b.ib.cancelOrder(parent.order)
            b.ops.in_flight.discard(parent.seq)
            self._drop(group)
            raise
        return await self._await_group(group)

    async def _await_group(self, group: _Group) -> tuple[OrderSnapshot, OrderSnapshot]:
        b = self._b
        parent, child = group.parent, group.child

        def verdict() -> str | None:
            p, c = b.ops.ack_verdict(parent), b.ops.ack_verdict(child)
            if p == "rejected":
                return "parent_rejected"
            if c == "rejected":
                return "child_rejected"
            if p == "acked" and c == "acked":
                return "ok"
            return "lost" if "lost" in (p, c) else None

        try:
            outcome = await b.tracker.notifier.wait_until(verdict, b.config.ack_timeout)
        finally:
            b.ops.in_flight.discard(parent.seq)
            b.ops.in_flight.discard(child.seq)
        if outcome == "ok":
            self._schedule(group)
            return parent.snapshot(), child.snapshot()
        if outcome == "parent_rejected":
            self._drop(group)
            raise b.rejection(parent)
        if outcome == "child_rejected":
            self._drop(group)
            refusal = b.rejection(child)
            snapshot = await self._take_back(parent)
            raise AttachedProtectionRefused(
                f"IBKR refused the attached trailing stop: {refusal.reason}",
                refusal.code,
                client_order_id=child.client_order_id,
                parent=snapshot,
            )
        raise b.ambiguous(parent, f"IB did not acknowledge the group {parent.order_ref} in time")

    async def _take_back(self, parent: OrderRecord) -> OrderSnapshot | None:
        """Cancel an entry whose protection was refused; its final snapshot (or None)."""
        if parent.perm_id and not parent.status.is_terminal:
            try:
                await self._b.ops.cancel(parent)
            except BrokerError as exc:
                logger.warning(
                    "ibkr: cancel of unprotected entry {} failed: {}", parent.order_ref, exc
                )
        elif not parent.perm_id:
            with contextlib.suppress(Exception):
                self._b.ib.cancelOrder(parent.order)
        return parent.snapshot() if parent.perm_id else None

    def _drop(self, group: _Group) -> None:
        self._groups.pop(group.parent.seq, None)
        self._by_child.pop(group.child.seq, None)

    # --- keeping the child sized to the parent's fills ----------------------------------

    def _on_fill(self, record: OrderRecord, fill: Fill) -> None:
        group = self._groups.get(record.seq)
        if group is not None:
            self._schedule(group)

    def _on_status(self, record: OrderRecord) -> None:
        group = self._groups.get(record.seq) or self._by_child.get(record.seq)
        if group is None:
            return
        if group.child.status.is_terminal:
            if group.parent.filled_qty > 0 and group.child.status is not S.FILLED:
                logger.error(
                    "ibkr: attached protection {} ended {} while {} shares are filled",
                    group.child.order_ref,
                    group.child.raw_status,
                    group.parent.filled_qty,
                )
            return
        if group.child.raw_status and group.child.total_qty != group.wanted():
            self._schedule(group)

    def _schedule(self, group: _Group) -> None:
        if group.task is None or group.task.done():
            group.task = asyncio.ensure_future(self._sync(group))

    async def _sync(self, group: _Group) -> None:
        b = self._b
        for _ in range(10):
            await asyncio.sleep(0)  # let the rest of a burst of messages land first
            child = group.child
            wanted = group.wanted()
            if child.status.is_terminal or child.total_qty == wanted or child.exec_qty > 0:
                return
            if group.parent.filled_qty == 0:
                return  # nothing filled: the child keeps the parent's size
            group.resizing = True
            try:
                await b.ops.modify(child, qty=wanted)
                group.last_error = None
            except BrokerError as exc:
                group.last_error = str(exc)
                logger.error("ibkr: re-sizing {} to {} failed: {}", child.order_ref, wanted, exc)
                await b.connection.alert(
                    f"IBKR: attached protection {child.order_ref} could not be re-sized to "
                    f"{wanted} shares ({exc}); the position may be under-protected"
                )
                return
            finally:
                group.resizing = False

    async def resync(self) -> None:
        """Rebuild groups from IB's orders (child -> parentId / parentPermId) after a
        reconnect or restart, then re-check every child's size."""
        tracker = self._b.tracker
        known = {group.child.seq for group in self._groups.values()}
        for record in tracker.records():
            if record.seq in known or record.status.is_terminal or not record.parent_id:
                continue
            if not record.order.orderType.startswith("TRAIL"):
                continue
            parent = tracker.by_perm(record.parent_perm_id) or tracker.by_order_id(
                record.parent_id, record.client_id
            )
            if parent is not None:
                group = _Group(parent, record)
                self._groups[parent.seq] = group
                self._by_child[record.seq] = group
        for group in self._groups.values():
            if not group.child.status.is_terminal:
                self._schedule(group)

    async def close(self) -> None:
        tasks = [g.task for g in self._groups.values() if g.task is not None and not g.task.done()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
