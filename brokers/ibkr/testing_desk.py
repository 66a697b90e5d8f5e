"""The FakeGateway's answers to queries (orders, executions, account) and bar requests."""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ib_async import BarData, CommissionReport, Contract, Execution, Order, OrderState

if TYPE_CHECKING:
    from brokers.ibkr.testing import FakeGateway


@dataclass
class GwOrder:
    order_id: int
    client_id: int
    perm_id: int
    contract: Contract
    order: Order
    status: str = "PendingSubmit"
    filled: float = 0.0
    avg_price: float = 0.0
    acked: bool = False

    @property
    def remaining(self) -> float:
        return float(self.order.totalQuantity) - self.filled


@dataclass
class GwExecution:
    contract: Contract
    execution: Execution
    commission: CommissionReport | None = None


class QueryDesk:
    """Stubs for ib.client's query requests; answers go through ib.wrapper."""

    def __init__(self, gw: FakeGateway) -> None:
        self.gw = gw

    # --- queries ------------------------------------------------------------------------

    def is_open(self, held: GwOrder) -> bool:
        return held.acked and held.status not in ("Filled", "Cancelled", "ApiCancelled", "Inactive")

    def answer_open(self, mine_only: bool) -> None:
        for held in list(self.gw.orders.values()):
            if self.is_open(held) and (not mine_only or held.client_id == self.gw.client_id):
                self.gw.send_open_order(held)
                self.gw.send_status(held)
        self.gw.wrapper.openOrderEnd()

    def reqOpenOrders(self) -> None:
        self.gw._send("reqOpenOrders")
        self.answer_open(mine_only=True)

    def reqAllOpenOrders(self) -> None:
        self.gw._send("reqAllOpenOrders")
        self.answer_open(mine_only=False)

    def reqCompletedOrders(self, api_only: bool) -> None:
        self.gw._send("reqCompletedOrders")
        for held in list(self.gw.orders.values()):
            if held.acked and not self.is_open(held):
                state = OrderState(status=held.status, completedStatus=held.status)
                self.gw.wrapper.completedOrder(
                    held.contract, self.gw.ib_order(held, completed=True), state
                )
        self.gw.wrapper.completedOrdersEnd()

    def reqExecutions(self, req_id: int, exec_filter: Any) -> None:
        self.gw._send("reqExecutions")
        for held in list(self.gw.executions):
            self.gw.wrapper.execDetails(req_id, held.contract, copy.copy(held.execution))
        self.gw.wrapper.execDetailsEnd(req_id)
        for held in list(self.gw.executions):
            if held.commission is not None:
                self.gw.wrapper.commissionReport(copy.copy(held.commission))

    def reqPositions(self) -> None:
        self.gw._send("reqPositions")
        for symbol, (shares, avg_cost) in self.gw.positions.items():
            self.gw.wrapper.position(self.gw.account, self.gw.contract(symbol), shares, avg_cost)
        self.gw.wrapper.positionEnd()

    def reqAccountUpdates(self, subscribe: bool, account: str) -> None:
        self.gw._send("reqAccountUpdates")
        self.gw.wrapper.accountDownloadEnd(account)

    def reqAccountUpdatesMulti(
        self, req_id: int, account: str, model_code: str, ledger_and_nlv: bool
    ) -> None:
        self.gw._send("reqAccountUpdatesMulti")
        self.gw.wrapper.accountUpdateMultiEnd(req_id)

    def reqAccountSummary(self, req_id: int, group: str, tags: str) -> None:
        self.gw._send("reqAccountSummary")
        for tag, value in self.gw.summary.items():
            self.gw.wrapper.accountSummary(req_id, self.gw.account, tag, value, "USD")
        self.gw.wrapper.accountSummaryEnd(req_id)

    def cancelAccountSummary(self, req_id: int) -> None:
        self.gw.requests.append("cancelAccountSummary")

    # --- bars ---------------------------------------------------------------------------

    def reqHistoricalData(self, req_id: int, contract: Contract, *args: Any) -> None:
        self.gw._send("reqHistoricalData")
        self.gw.bar_requests[contract.symbol] = req_id
        for bar in self.gw.bars.get(contract.symbol, []):
            self.gw.wrapper.historicalData(req_id, copy.copy(bar))
        self.gw.wrapper.historicalDataEnd(req_id, "", "")

    def cancelHistoricalData(self, req_id: int) -> None:
        self.gw.requests.append("cancelHistoricalData")

    def bar_update(self, symbol: str, bar: BarData) -> None:
        """A keepUpToDate update for `symbol` (a later `date` starts a new bar)."""
        held = self.gw.bars.setdefault(symbol, [])
        if held and held[-1].date == bar.date:
            held[-1] = bar
        else:
            held.append(bar)
        self.gw.wrapper.historicalDataUpdate(self.gw.bar_requests[symbol], copy.copy(bar))


class ExecutionDesk:
    """Executions IB reports: fills, corrections, commission reports."""

    def __init__(self, gw: FakeGateway) -> None:
        self.gw = gw
        self._exec_ids = itertools.count(1)

    def fill(
        self,
        held: GwOrder,
        shares: float,
        price: float,
        *,
        exec_id: str | None = None,
        commission: float | None = None,
        status_first: bool = False,
        activate_children: bool = True,
        silent: bool = False,
    ) -> Execution:
        """IB executes `shares` of `held` at `price`: execDetails + orderStatus (+ the
        commission report); a completed parent activates its children. `silent`: IB's
        state changes but no message reaches us (it is lost, or still in flight)."""
        held.avg_price = (held.avg_price * held.filled + price * shares) / (held.filled + shares)
        held.filled += shares
        held.status = "Filled" if held.remaining <= 0 else "Submitted"
        execution = Execution(
            execId=exec_id or f"0000e0d5.6553ba{next(self._exec_ids):02x}.01.01",
            time=self.gw._now(),
            acctNumber=self.gw.account,
            exchange="ISLAND",
            side="BOT" if held.order.action == "BUY" else "SLD",
            shares=shares,
            price=price,
            permId=held.perm_id,
            clientId=held.client_id,
            orderId=held.order_id,
            cumQty=held.filled,
            avgPrice=held.avg_price,
            orderRef=held.order.orderRef,
        )
        if silent:
            self.gw.executions.append(GwExecution(held.contract, copy.copy(execution)))
            return execution
        if status_first:
            self.gw.send_status(held)
        self.send_execution(held.contract, execution)
        if not status_first:
            self.gw.send_status(held)
        if commission is not None:
            self.send_commission(execution.execId, commission)
        if held.status == "Filled" and activate_children:
            for child in self.gw.children(held):
                if child.status == "PreSubmitted":
                    self.gw.set_status(child, "Submitted")
        return execution

    def send_execution(self, contract: Contract, execution: Execution, req_id: int = -1) -> None:
        found = next(
            (e for e in self.gw.executions if e.execution.execId == execution.execId), None
        )
        if found is None:
            self.gw.executions.append(GwExecution(contract, copy.copy(execution)))
        self.gw.wrapper.execDetails(req_id, contract, copy.copy(execution))

    def correct(self, execution: Execution, *, price: float) -> Execution:
        """A correction: same execution, the suffix after the last dot raised by one."""
        base, _, suffix = execution.execId.rpartition(".")
        corrected = copy.copy(execution)
        corrected.execId = f"{base}.{int(suffix, 16) + 1:02x}"
        corrected.price = price
        self.send_execution(self.contract_of(execution), corrected)
        return corrected

    def contract_of(self, execution: Execution) -> Contract:
        held = next(o for o in self.gw.orders.values() if o.perm_id == execution.permId)
        return held.contract

    def send_commission(self, exec_id: str, commission: float) -> None:
        report = CommissionReport(execId=exec_id, commission=commission, currency="USD")
        for held_exec in self.gw.executions:
            if held_exec.execution.execId == exec_id:
                held_exec.commission = report
        self.gw.wrapper.commissionReport(copy.copy(report))
