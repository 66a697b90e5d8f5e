"""IbkrBase: the adapter's machinery under IbkrBroker's public methods.

It owns the ib_async `IB`, the wire taps and the order tracker, the pacer, the connection
supervisor and the contract book, and offers the building blocks the order operations,
the attached-protection groups and the bar feed share: validate and register an order,
place it, find a record, send a paced request with a clock timeout, refresh from IB.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ib_async import IB, Contract, ContractDetails, Order

from brokers.ibkr.attached import AttachedGroups
from brokers.ibkr.config import IbkrConfig
from brokers.ibkr.connection import AlertHook, DownHook, Hook, IbkrConnection
from brokers.ibkr.contracts import ContractBook
from brokers.ibkr.mapping import IbError, IbErrorClass, build_order, perm_id_of, rejection_for
from brokers.ibkr.ordering import OrderOps
from brokers.ibkr.pacing import TokenBucket, with_timeout
from brokers.ibkr.records import IbOrderIds, OrderRecord
from brokers.ibkr.tracker import OrderTracker
from brokers.ibkr.wire import install_taps
from core.broker import (
    AmbiguousOutcome,
    BrokerError,
    BrokerUnavailable,
    DuplicateClientOrderId,
    NotFound,
    OrderRejected,
    UnsupportedOrder,
)
from core.broker_events import EventHub
from core.calendar import SessionPhase, TradingCalendar
from core.capabilities import IBKR, check
from core.clock import Clock
from core.domain import BrokerOrderId, ClientOrderId, OrderRequest

T = TypeVar("T")
BeforePlace = Callable[[IbOrderIds], Awaitable[None]]


class IbkrBase:
    """The machinery; IbkrBroker (adapter.py) adds the public Broker methods."""

    def __init__(
        self,
        config: IbkrConfig,
        clock: Clock,
        *,
        ib: IB | None = None,
        calendar: TradingCalendar | None = None,
        on_reconnect: Hook | None = None,
        on_alert: AlertHook | None = None,
        on_down_too_long: DownHook | None = None,
        before_place: BeforePlace | None = None,
    ) -> None:
        self._config = config
        self._clock = clock
        self._ib = ib if ib is not None else IB()
        self._calendar = calendar
        self.before_place = before_place
        self._hub = EventHub()
        self.pacer = TokenBucket(clock, config.pacing_rate, config.pacing_burst)
        self.tracker = OrderTracker(clock, config.client_id, self._hub)
        self._uninstall = install_taps(self._ib.wrapper, self.tracker)
        self.connection = IbkrConnection(
            self._ib,
            config,
            clock,
            self.pacer,
            calendar=calendar,
            on_reconnect=on_reconnect,
            on_alert=on_alert,
            on_down_too_long=on_down_too_long,
        )
        self.connection.add_resync(self._resync)
        self.connection.before_resync = self.tracker.hold_events
        self.connection.after_resync = self.tracker.release_events
        self.tracker.on_global_error.append(self._on_global_error)
        self.contracts = ContractBook(
            self._fetch_details, exchange=config.exchange, currency=config.currency
        )
        self._refresh_lock = asyncio.Lock()
        self._positions_lock = asyncio.Lock()
        self._closed = False
        self.ops = OrderOps(self)
        self.attached = AttachedGroups(self)
        self._ib.disconnectedEvent += self.tracker.notifier.notify

    # --- identity -----------------------------------------------------------------------

    @property
    def ib(self) -> IB:
        return self._ib

    @property
    def config(self) -> IbkrConfig:
        return self._config

    @property
    def clock(self) -> Clock:
        return self._clock

    # --- building blocks (used by OrderOps and AttachedGroups) --------------------------

    def require_up(self) -> None:
        if self._closed:
            raise BrokerUnavailable("IBKR adapter is closed")
        if not self.connection.is_up:
            raise BrokerUnavailable(f"IBKR connection is {self.connection.state}")

    async def prepare(
        self, request: OrderRequest, *, transmit: bool = True, parent: OrderRecord | None = None
    ) -> OrderRecord:
        """Validate `request` and register it with a fresh orderId (nothing is sent)."""
        self.require_up()
        if self.tracker.by_ref(request.client_order_id):
            raise DuplicateClientOrderId(
                f"orderRef {request.client_order_id!r} is already used at IBKR",
                "duplicate_order_ref",
                client_order_id=request.client_order_id,
            )
        verdict = check(IBKR, request, self.phase())
        if not verdict.allowed:
            raise UnsupportedOrder(verdict.reason, client_order_id=request.client_order_id)
        contract = await self.contracts.resolve(request.symbol)
        self.contracts.check_prices(request.symbol, request.limit_price, request.stop_price)
        try:
            order_id = self._ib.client.getReqId()
        except ConnectionError as exc:
            raise BrokerUnavailable(f"IBKR: no order id: {exc}") from exc
        parent_id = 0 if parent is None else parent.order_id
        order = build_order(
            request, order_id, account=self._config.account, transmit=transmit, parent_id=parent_id
        )
        order.clientId = self._config.client_id
        record = self.tracker.register(contract, order, parent_id=parent_id)
        self.ops.in_flight.add(record.seq)
        return record

    async def place(self, record: OrderRecord) -> None:
        """Persist hook, pacing, then send a NEW order (a copy: ib_async edits its own)."""
        try:
            if self.before_place is not None:
                await self.before_place(record.ids)
            await self.pacer.acquire()
            self.require_up()
            self._ib.placeOrder(record.contract, _copy(record.order))
        except ConnectionError as exc:
            self.unplace(record)
            raise BrokerUnavailable(f"IBKR: order not sent: {exc}") from exc
        except BaseException:
            self.unplace(record)
            raise

    def unplace(self, record: OrderRecord) -> None:
        self.ops.in_flight.discard(record.seq)
        self.tracker.forget(record)

    async def record_for(self, broker_order_id: BrokerOrderId, *, fresh: bool) -> OrderRecord:
        """The order's record; `fresh`: ask IB first (a query), else only if unknown."""
        self.require_up()
        perm = perm_id_of(broker_order_id)
        if perm is None:
            raise NotFound(f"order {broker_order_id} not found (IBKR ids are permIds)")
        if fresh or self.tracker.by_perm(perm) is None:
            await self.refresh()
        found = self.tracker.by_perm(perm)
        if found is None:
            raise NotFound(f"order {broker_order_id} not found at IBKR")
        return found

    async def request(self, factory: Callable[[], Awaitable[T]], what: str) -> T:
        """Pace, send, await the answer within `request_timeout` (clock time)."""
        await self.pacer.acquire()
        self.require_up()
        try:
            return await with_timeout(self._clock, factory(), self._config.request_timeout)
        except TimeoutError as exc:
            raise BrokerUnavailable(f"IBKR: no answer to {what}") from exc
        except ConnectionError as exc:
            raise BrokerUnavailable(f"IBKR: {what} failed: {exc}") from exc

    async def refresh(self, *, executions: bool = False) -> int:
        """Ask IB for every open order (all clients) and completed order (and executions):
        the taps bring the records up to IB's truth. Returns the refresh generation."""
        async with self._refresh_lock:
            generation = self.tracker.begin_refresh()
            try:
                await self.request(self._ib.reqAllOpenOrdersAsync, "open orders")
                await self.request(
                    lambda: self._ib.reqCompletedOrdersAsync(False), "completed orders"
                )
                if executions:
                    await self.request(self._ib.reqExecutionsAsync, "executions")
            finally:
                self.tracker.end_refresh()
            self.ops.drop_unplaced(generation)
            return generation

    # --- internals ----------------------------------------------------------------------

    async def _resync(self) -> None:
        try:
            await self.refresh(executions=True)
        except BrokerError as exc:
            self.tracker.notifier.notify()
            raise BrokerUnavailable(f"IBKR resync failed: {exc}") from exc
        await self.attached.resync()

    async def _fetch_details(self, contract: Contract) -> list[ContractDetails]:
        return await self.request(
            lambda: self._ib.reqContractDetailsAsync(contract), f"contract {contract.symbol}"
        )

    def _on_global_error(self, error: IbError) -> None:
        if error.kind is IbErrorClass.PACING:
            self.pacer.penalize(1.0)
        self.connection.on_ib_error(error)

    def phase(self) -> SessionPhase:
        if self._calendar is None:
            from core.calendar import xnys

            self._calendar = xnys()
        return self._calendar.phase(self._clock.now())

    def _by_client_id(self, client_order_id: ClientOrderId) -> OrderRecord | None:
        if client_order_id.startswith("ibkr-perm-"):
            perm = perm_id_of(client_order_id.removeprefix("ibkr-perm-"))
            return None if perm is None else self.tracker.by_perm(perm)
        placed = [r for r in self.tracker.by_ref(client_order_id) if r.perm_id]
        if not placed:
            return None
        mine = [r for r in placed if r.client_id == self._config.client_id] or placed
        return max(mine, key=lambda r: r.seq)

    def rejection(self, record: OrderRecord) -> OrderRejected:
        error = record.reject_pending or (record.errors[-1] if record.errors else None)
        if error is None:
            return rejection_for(
                IbError(record.order_id, 0, record.reject_reason or "rejected", self._clock.now()),
                record.client_order_id,
            )
        return rejection_for(error, ClientOrderId(record.order_ref))

    def ambiguous(self, record: OrderRecord, message: str) -> AmbiguousOutcome:
        return AmbiguousOutcome(message, client_order_id=ClientOrderId(record.order_ref))


def _copy(order: Order) -> Order:
    return copy.copy(order)
