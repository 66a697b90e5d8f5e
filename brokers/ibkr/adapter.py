"""IbkrBroker: the Broker protocol on ib_async, on the one event loop.

Identity: `broker_order_id` is IB's permId (unique across clients and sessions; IB assigns
it on the first acknowledgement, so `submit` waits for that acknowledgement) and
`client_order_id` travels as the order's `orderRef`. `order_ids()` gives (orderRef,
clientId, orderId, permId); `before_place` is awaited with them before an order leaves,
so the engine can persist them first.

Differences from Alpaca / SimBroker (details in docs/ibkr.md):
- `replace` modifies the order in place (same orderId, same permId): it returns the SAME
  broker id, with `replaces=None`, and no REPLACED event follows. `qty` is the new TOTAL
  quantity (filled shares included); `client_order_id` cannot change (the orderRef stays).
- IB does not enforce orderRef uniqueness: the adapter refuses a reference it knows of
  (its own orders, and every order IB lists: open, completed, executed today).
- `submit` returns once IB has acknowledged the order (or raises the rejection); no
  acknowledgement within `ack_timeout` is AmbiguousOutcome.
- `cancel` waits for IB's answer: a cancel that loses the race to a fill (10147/10148/161)
  is settled by querying IB and raises NotCancelable when the order filled.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from brokers.ibkr import queries
from brokers.ibkr.attached import AttachedState
from brokers.ibkr.base import IbkrBase
from brokers.ibkr.mapping import perm_id_of
from brokers.ibkr.marketdata import IbkrBarFeed
from brokers.ibkr.records import IbOrderIds
from core.broker import Broker, BrokerError, BrokerEvent
from core.capabilities import IBKR, CapabilityMatrix
from core.domain import (
    AccountSnapshot,
    BrokerOrderId,
    ClientOrderId,
    Fill,
    OrderRequest,
    OrderSnapshot,
    Position,
    TickRounding,
    TimeInForce,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class IbkrBroker(IbkrBase):
    """See the module docstring. Call `await connect()` before anything else."""

    # --- identity -----------------------------------------------------------------------

    @property
    def name(self) -> str:
        return "ibkr"

    @property
    def capabilities(self) -> CapabilityMatrix:
        return IBKR

    # --- lifecycle ----------------------------------------------------------------------

    async def connect(self) -> None:
        """Connect, synchronise (open, completed orders, executions), start publishing."""
        await self.connection.connect()
        self.tracker.start_emitting()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self.ops.close()
        await self.attached.close()
        await self.connection.close()
        self._uninstall()
        self._hub.close()

    def events(self) -> AsyncIterator[BrokerEvent]:
        return self._hub.subscribe()

    # --- orders -------------------------------------------------------------------------

    async def submit(self, request: OrderRequest) -> OrderSnapshot:
        record = await self.prepare(request)
        await self.place(record)
        return await self.ops.await_ack(record)

    async def cancel(self, broker_order_id: BrokerOrderId) -> None:
        await self.ops.cancel(await self.record_for(broker_order_id, fresh=False))

    async def replace(
        self,
        broker_order_id: BrokerOrderId,
        *,
        qty: Decimal | None = None,
        stop_price: Decimal | None = None,
        limit_price: Decimal | None = None,
        trail_percent: Decimal | None = None,
        time_in_force: TimeInForce | None = None,
        client_order_id: ClientOrderId | None = None,
    ) -> OrderSnapshot:
        """Modify in place: returns the SAME broker id (see the module docstring)."""
        record = await self.record_for(broker_order_id, fresh=False)
        return await self.ops.modify(
            record,
            qty=qty,
            stop_price=stop_price,
            limit_price=limit_price,
            trail_percent=trail_percent,
            time_in_force=time_in_force,
            client_order_id=client_order_id,
        )

    async def get_order(self, broker_order_id: BrokerOrderId) -> OrderSnapshot:
        return (await self.record_for(broker_order_id, fresh=True)).snapshot()

    async def get_order_by_client_id(self, client_order_id: ClientOrderId) -> OrderSnapshot | None:
        self.require_up()
        await self.refresh()
        found = self._by_client_id(client_order_id)
        return None if found is None else found.snapshot()

    async def list_orders(
        self, *, open_only: bool, since: datetime | None = None, limit: int = 500
    ) -> list[OrderSnapshot]:
        self.require_up()
        generation = await self.refresh()
        chosen = [
            record
            for record in self.tracker.records()
            if record.perm_id
            and (
                not open_only or (record.seen_open == generation and not record.status.is_terminal)
            )
            and (since is None or record.created_at is None or record.created_at >= since)
        ]
        chosen.sort(key=lambda r: (r.created_at or _EPOCH, r.seq), reverse=True)
        return [record.snapshot() for record in chosen[:limit]]

    # --- account ------------------------------------------------------------------------

    async def positions(self) -> list[Position]:
        self.require_up()
        async with self._positions_lock:
            found = await self.request(self._ib.reqPositionsAsync, "positions")
        try:
            account = queries.account_of(self._ib, self._config)
        except ValueError as exc:
            raise BrokerError(str(exc)) from exc
        return queries.positions_from_ib(self._ib, found, account)

    async def account(self) -> AccountSnapshot:
        self.require_up()
        values = await self.request(
            lambda: self._ib.accountSummaryAsync(self._config.account), "account summary"
        )
        try:
            return queries.account_from_values(values, self._ib, self._config)
        except ValueError as exc:
            raise BrokerError(str(exc)) from exc

    async def fills_since(self, since: datetime) -> list[Fill]:
        self.require_up()
        await self.request(self._ib.reqExecutionsAsync, "executions")
        chosen = [fill for fill in self.tracker.fills.all() if fill.timestamp >= since]
        return sorted(chosen, key=lambda fill: fill.timestamp)

    # --- IBKR extras --------------------------------------------------------------------

    def order_ids(self, client_order_id: ClientOrderId) -> IbOrderIds | None:
        """(orderRef, clientId, orderId, permId) of the order placed as `client_order_id`."""
        found = self._by_client_id(client_order_id)
        return None if found is None else found.ids

    def order_ids_for(self, broker_order_id: BrokerOrderId) -> IbOrderIds | None:
        perm = perm_id_of(broker_order_id)
        found = None if perm is None else self.tracker.by_perm(perm)
        return None if found is None else found.ids

    async def round_price(
        self, symbol: str, price: Decimal, mode: TickRounding = TickRounding.NEAREST
    ) -> Decimal:
        await self.contracts.resolve(symbol)
        return self.contracts.round_price(symbol, price, mode)

    async def submit_with_protection(
        self,
        entry: OrderRequest,
        trail_percent: Decimal,
        child_client_order_id: ClientOrderId,
        *,
        child_time_in_force: TimeInForce = TimeInForce.GTC,
    ) -> tuple[OrderSnapshot, OrderSnapshot]:
        return await self.attached.submit(
            entry, trail_percent, child_client_order_id, child_time_in_force=child_time_in_force
        )

    def attached_state(self, parent_client_order_id: ClientOrderId) -> AttachedState | None:
        return self.attached.state(parent_client_order_id)

    def bar_feed(self, symbols: Iterable[str], **options: Any) -> IbkrBarFeed:
        """A BarFeed of closed 1-minute bars for `symbols` (see marketdata.py)."""
        return IbkrBarFeed(self, symbols, **options)


def _conforms(broker: IbkrBroker) -> Broker:
    """Static proof (mypy) that IbkrBroker implements the Broker protocol."""
    return broker
