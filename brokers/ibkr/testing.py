"""FakeGateway: an IB Gateway double at the socket edge of a real, offline `IB()`.

The request methods of `ib.client` (placeOrder, cancelOrder, getReqId, isReady,
reqOpenOrders, reqExecutions, ...) are replaced by stubs; the answers go through
`ib.wrapper` (openOrder, orderStatus, execDetails, commissionReport, error, ...) with real
ib_async objects, exactly where the decoder would deliver them. Everything ib_async does
above that edge (its Trades, its local Cancelled) runs for real.

Modelled behaviour (assumptions, not IB facts -- see docs/ibkr.md): a new order is
acknowledged on the next loop turn (openOrder + orderStatus, PreSubmitted for STP/TRAIL,
Submitted otherwise); an order sent with transmit=False waits until a child with
transmit=True arrives, then the group is acknowledged; a cancel answers orderStatus
Cancelled + error 202 (10147 if the order is unknown, 10148 if it is done); when a parent
completes, its children report Submitted; a partial parent fill leaves the children as
they are. Tests drive fills, errors and outages explicitly.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ib_async import (
    IB,
    BarData,
    Contract,
    ContractDetails,
    Execution,
    Order,
    OrderState,
    Stock,
)

from brokers.ibkr.testing_desk import ExecutionDesk, GwExecution, GwOrder, QueryDesk
from core.clock import Clock

if TYPE_CHECKING:
    from brokers.ibkr.adapter import IbkrBroker


DESK_STUBS = (
    "reqOpenOrders",
    "reqAllOpenOrders",
    "reqCompletedOrders",
    "reqExecutions",
    "reqPositions",
    "reqAccountUpdates",
    "reqAccountUpdatesMulti",
    "reqAccountSummary",
    "cancelAccountSummary",
    "reqHistoricalData",
    "cancelHistoricalData",
)


@dataclass
class FakeGateway:
    ib: IB = field(default_factory=IB)
    clock: Clock | None = None
    account: str = "DU1234567"
    server_version: int = 178
    auto_ack: bool = True
    connected: bool = False
    connect_failures: int = 0  # refuse this many upcoming connection attempts
    requests: list[str] = field(default_factory=list)
    sent_at: list[datetime] = field(default_factory=list)  # clock time of each request
    orders: dict[tuple[int, int], GwOrder] = field(default_factory=dict)  # (client, order id)
    executions: list[GwExecution] = field(default_factory=list)
    positions: dict[str, tuple[float, float]] = field(default_factory=dict)  # qty, avg cost
    summary: dict[str, str] = field(
        default_factory=lambda: {
            "NetLiquidation": "100000.00",
            "TotalCashValue": "60000.00",
            "BuyingPower": "240000.00",
            "AvailableFunds": "60000.00",
        }
    )
    reject_refs: dict[str, tuple[int, str]] = field(default_factory=dict)  # orderRef -> error
    cancel_errors: dict[str, tuple[int, str]] = field(default_factory=dict)  # orderRef -> error
    unknown_symbols: set[str] = field(default_factory=set)
    bars: dict[str, list[BarData]] = field(default_factory=dict)
    bar_requests: dict[str, int] = field(default_factory=dict)  # symbol -> reqId

    def __post_init__(self) -> None:
        self._req_ids = itertools.count(1)
        self._perm_ids = itertools.count(9001)
        self._con_ids: dict[str, int] = {}
        self.client_id = 0
        client: Any = self.ib.client
        for name in (
            "connectAsync",
            "disconnect",
            "isConnected",
            "isReady",
            "getReqId",
            "updateReqId",
            "serverVersion",
            "getAccounts",
            "reqIds",
            "placeOrder",
            "cancelOrder",
            "reqContractDetails",
        ):
            setattr(client, name, getattr(self, f"_{name}"))
        self.desk = QueryDesk(self)
        self.execs = ExecutionDesk(self)
        for name in DESK_STUBS:
            setattr(client, name, getattr(self.desk, name))

    @property
    def wrapper(self) -> Any:
        return self.ib.wrapper

    def _now(self) -> datetime:
        return self.clock.now() if self.clock is not None else datetime(2025, 3, 3, 15, tzinfo=UTC)

    def bar_update(self, symbol: str, bar: BarData) -> None:
        """A keepUpToDate update for `symbol` (a later `date` starts a new bar)."""
        self.desk.bar_update(symbol, bar)

    def _later(self, action: Any, *args: Any) -> None:
        asyncio.get_running_loop().call_soon(action, *args)

    async def settle(self, turns: int = 10) -> None:
        """Let scheduled answers (and what they trigger) run."""
        for _ in range(turns):
            await asyncio.sleep(0)

    # --- connection ---------------------------------------------------------------------

    async def _connectAsync(self, host: str, port: int, clientId: int, *_: Any) -> None:
        self.requests.append("connect")
        self.sent_at.append(self._now())
        if self.connect_failures > 0:
            self.connect_failures -= 1
            raise ConnectionRefusedError(f"connect to {host}:{port} refused (fake)")
        self.client_id = int(clientId)
        self.wrapper.managedAccounts(self.account)  # part of the API handshake
        self.ib.client.host, self.ib.client.port, self.ib.client.clientId = host, port, clientId
        self.connected = True

    def _disconnect(self) -> None:
        self.connected = False

    def _isConnected(self) -> bool:
        return self.connected

    def _isReady(self) -> bool:
        return self.connected

    def _getReqId(self) -> int:
        if not self.connected:
            raise ConnectionError("Not connected")
        return next(self._req_ids)

    def _updateReqId(self, min_req_id: int) -> None:
        current = next(self._req_ids)
        self._req_ids = itertools.count(max(current, min_req_id))

    def _serverVersion(self) -> int:
        return self.server_version

    def _getAccounts(self) -> list[str]:
        return [self.account]

    def _reqIds(self, num_ids: int) -> None:
        self.requests.append("reqIds")

    def _send(self, name: str) -> None:
        self.requests.append(name)
        self.sent_at.append(self._now())
        if not self.connected:
            raise ConnectionError("Not connected")

    def drop(self) -> None:
        """The socket to the gateway breaks (what ib_async's client does on EOF)."""
        self.connected = False
        self.wrapper.setEventsDone()
        self.wrapper.connectionClosed()
        self.ib.client.apiEnd.emit()

    def ib_lost(self) -> None:
        self.error(-1, 1100, "Connectivity between IB and Trader Workstation has been lost.")

    def ib_restored(self, *, data_lost: bool = False) -> None:
        code = 1101 if data_lost else 1102
        self.error(-1, code, "Connectivity between IB and Trader Workstation has been restored")

    def error(self, req_id: int, code: int, text: str) -> None:
        self.wrapper.error(req_id, code, text, "")

    # --- contracts ----------------------------------------------------------------------

    def contract(self, symbol: str) -> Contract:
        con_id = self._con_ids.setdefault(symbol, 1000 + len(self._con_ids))
        return Stock(symbol, "SMART", "USD", conId=con_id, primaryExchange="NASDAQ")

    def _reqContractDetails(self, req_id: int, contract: Contract) -> None:
        self._send("reqContractDetails")
        if contract.symbol in self.unknown_symbols:
            self.error(req_id, 200, "No security definition has been found for the request")
            return
        details = ContractDetails(contract=self.contract(contract.symbol), minTick=0.01)
        self.wrapper.contractDetails(req_id, details)
        self.wrapper.contractDetailsEnd(req_id)

    # --- orders -------------------------------------------------------------------------

    def order(self, order_ref: str) -> GwOrder:
        return next(o for o in self.orders.values() if o.order.orderRef == order_ref)

    def _placeOrder(self, order_id: int, contract: Contract, order: Order) -> None:
        self._send("placeOrder")
        key = (self.client_id, order_id)
        if key in self.orders and self.orders[key].acked:
            self._later(self._modify, self.orders[key], copy.copy(order))
            return
        held = GwOrder(
            order_id, self.client_id, 0, self.contract(contract.symbol), copy.copy(order)
        )
        self.orders[key] = held
        if self.auto_ack and order.transmit:
            self._later(self._transmit, held)

    def _transmit(self, held: GwOrder) -> None:
        group = [held]
        parent = self.orders.get((held.client_id, held.order.parentId))
        if parent is not None and not parent.acked:
            group.insert(0, parent)
        for member in group:
            self._accept(member)

    def _accept(self, held: GwOrder) -> None:
        held.perm_id = held.perm_id or next(self._perm_ids)
        held.acked = True
        rule = self.reject_refs.get(held.order.orderRef)
        if rule is not None and rule[0] == 100:  # paced out: the message never became an order
            del self.orders[(held.client_id, held.order_id)]
            self.error(held.order_id, *rule)
            return
        if rule is not None:
            held.status = "Cancelled"
            self.error(held.order_id, *rule)
            self.send_status(held)
            return
        stop_like = held.order.orderType in ("STP", "STP LMT", "TRAIL") or held.order.parentId
        held.status = "PreSubmitted" if stop_like else "Submitted"
        self.send_open_order(held)
        self.send_status(held)

    def _modify(self, held: GwOrder, order: Order) -> None:
        rule = self.reject_refs.get(f"modify:{held.order.orderRef}")
        if rule is not None:
            self.error(held.order_id, *rule)
            return
        for name in ("totalQuantity", "lmtPrice", "auxPrice", "trailingPercent", "tif"):
            setattr(held.order, name, getattr(order, name))
        self.send_open_order(held)
        self.send_status(held)

    def _cancelOrder(self, order_id: int, manual_time: str = "") -> None:
        self._send("cancelOrder")
        held = self.orders.get((self.client_id, order_id))
        self._later(self._cancel, order_id, held)

    def _cancel(self, order_id: int, held: GwOrder | None) -> None:
        rule = None if held is None else self.cancel_errors.get(held.order.orderRef)
        if rule is not None:
            self.error(order_id, *rule)
            return
        if held is None:
            self.error(
                order_id, 10147, f"OrderId {order_id} that needs to be cancelled is not found."
            )
            return
        if held.status in ("Filled", "Cancelled", "ApiCancelled", "Inactive"):
            self.error(
                order_id,
                10148,
                f"OrderId {order_id} that needs to be cancelled cannot be cancelled, "
                f"state: {held.status}.",
            )
            return
        self.set_status(held, "Cancelled")
        self.error(order_id, 202, "Order Canceled - reason:")
        for child in self.children(held):
            if child.filled == 0 and held.filled == 0:
                self.set_status(child, "Cancelled")

    def children(self, parent: GwOrder) -> list[GwOrder]:
        return [
            o
            for o in self.orders.values()
            if o.order.parentId == parent.order_id and o.client_id == parent.client_id
        ]

    def ib_order(self, held: GwOrder, *, completed: bool = False) -> Order:
        """The Order as the decoder builds it (completed orders carry no orderId)."""
        order = copy.copy(held.order)
        order.permId = held.perm_id
        order.orderId = 0 if completed else held.order_id
        order.clientId = 0 if completed else held.client_id
        order.filledQuantity = held.filled
        order.transmit = True
        return order

    def external(
        self, symbol: str, action: str, shares: float, order_type: str = "LMT", **fields: Any
    ) -> GwOrder:
        """An order placed in TWS by hand (client id 0, no orderRef) that IB lists."""
        order = Order(action=action, totalQuantity=shares, orderType=order_type, **fields)
        perm_id = next(self._perm_ids)
        held = GwOrder(-perm_id, 0, perm_id, self.contract(symbol), order, "Submitted", acked=True)
        self.orders[(0, -perm_id)] = held
        return held

    def send_open_order(self, held: GwOrder) -> None:
        state = OrderState(status=held.status)
        self.wrapper.openOrder(held.order_id, held.contract, self.ib_order(held), state)

    def send_status(self, held: GwOrder) -> None:
        self.wrapper.orderStatus(
            held.order_id,
            held.status,
            held.filled,
            held.remaining,
            held.avg_price,
            held.perm_id,
            held.order.parentId,
            held.avg_price,
            held.client_id,
            "",
            0.0,
        )

    def set_status(self, held: GwOrder, status: str) -> None:
        held.status = status
        self.send_status(held)

    # --- executions (see testing_desk.ExecutionDesk) ------------------------------------

    def fill(self, held: GwOrder, shares: float, price: float, **options: Any) -> Execution:
        """IB executes `shares` of `held` (options: exec_id, commission, status_first,
        activate_children, silent)."""
        return self.execs.fill(held, shares, price, **options)

    def send_execution(self, contract: Contract, execution: Execution, req_id: int = -1) -> None:
        self.execs.send_execution(contract, execution, req_id)

    def correct(self, execution: Execution, *, price: float) -> Execution:
        return self.execs.correct(execution, price=price)

    def send_commission(self, exec_id: str, commission: float) -> None:
        self.execs.send_commission(exec_id, commission)


def ib_bar(
    start: datetime, o: float, h: float, lo: float, c: float, volume: float = 1000
) -> BarData:
    """A 1-minute bar as the decoder hands it over with formatDate=2 (epoch seconds)."""
    bar = BarData(open=o, high=h, low=lo, close=c, volume=volume)
    bar.date = str(int(start.timestamp()))  # type: ignore[assignment]  # as the decoder does
    return bar


async def connected_broker(
    clock: Clock,
    *,
    config: Any = None,
    gateway: FakeGateway | None = None,
    **options: Any,
) -> tuple[IbkrBroker, FakeGateway]:
    """An IbkrBroker connected to a FakeGateway (both on `clock`)."""
    from brokers.ibkr.adapter import IbkrBroker
    from brokers.ibkr.config import IbkrConfig

    gateway = gateway or FakeGateway(clock=clock)
    broker = IbkrBroker(config or IbkrConfig(), clock, ib=gateway.ib, **options)
    await broker.connect()
    return broker, gateway
