"""Taps on ib_async's Wrapper: the raw messages from the gateway, as the gateway sent them.

ib_async keeps its own picture of each order (`Trade`) and edits it locally: on an order
error such as 201 it sets `Cancelled` without IB having said so, on `cancelOrder` it may
set `Cancelled` itself, on warnings it invents `ValidationError`. The adapter must not
take those for the broker's word. Its records are therefore built from the wrapper's
callbacks only -- what the decoder (or a test, at the same edge) delivered.

The decoder looks each wrapper method up by name on every message, so replacing the
methods on the wrapper INSTANCE intercepts everything. Each tap calls ib_async's own
method first (its bookkeeping stays intact), then the listener; a listener exception is
logged and never reaches the decoder.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ib_async import CommissionReport, Contract, Execution, Order, OrderState, Wrapper
from loguru import logger


class WireListener(Protocol):
    def on_open_order(
        self, order_id: int, contract: Contract, order: Order, state: OrderState
    ) -> None: ...

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
    ) -> None: ...

    def on_completed_order(self, contract: Contract, order: Order, state: OrderState) -> None: ...

    def on_exec_details(self, req_id: int, contract: Contract, execution: Execution) -> None: ...

    def on_commission_report(self, report: CommissionReport) -> None: ...

    def on_error(self, req_id: int, code: int, text: str, is_request: bool) -> None: ...


TAPPED = (
    "openOrder",
    "orderStatus",
    "completedOrder",
    "execDetails",
    "commissionReport",
    "error",
)


def install_taps(wrapper: Wrapper, listener: WireListener) -> Callable[[], None]:
    """Tap the wrapper's order callbacks; returns a function that removes the taps."""
    target: Any = wrapper  # ib_async's wrapper methods are only partially typed

    def guarded(name: str, call: Callable[[], None]) -> None:
        try:
            call()
        except Exception:
            logger.exception("ibkr: handling {} failed", name)

    original_open = target.openOrder
    original_status = target.orderStatus
    original_completed = target.completedOrder
    original_exec = target.execDetails
    original_commission = target.commissionReport
    original_error = target.error

    def open_order(order_id: int, contract: Contract, order: Order, state: OrderState) -> None:
        try:
            original_open(order_id, contract, order, state)
        finally:
            if not order.whatIf:
                guarded(
                    "openOrder",
                    lambda: listener.on_open_order(order_id, contract, order, state),
                )

    def order_status(
        order_id: int,
        status: str,
        filled: float,
        remaining: float,
        avg_fill_price: float,
        perm_id: int,
        parent_id: int,
        last_fill_price: float,
        client_id: int,
        why_held: str,
        mkt_cap_price: float = 0.0,
    ) -> None:
        try:
            original_status(
                order_id,
                status,
                filled,
                remaining,
                avg_fill_price,
                perm_id,
                parent_id,
                last_fill_price,
                client_id,
                why_held,
                mkt_cap_price,
            )
        finally:
            guarded(
                "orderStatus",
                lambda: listener.on_order_status(
                    order_id,
                    status,
                    filled,
                    remaining,
                    avg_fill_price,
                    perm_id,
                    parent_id,
                    client_id,
                    why_held,
                ),
            )

    def completed_order(contract: Contract, order: Order, state: OrderState) -> None:
        try:
            original_completed(contract, order, state)
        finally:
            guarded("completedOrder", lambda: listener.on_completed_order(contract, order, state))

    def exec_details(req_id: int, contract: Contract, execution: Execution) -> None:
        try:
            original_exec(req_id, contract, execution)
        finally:
            guarded("execDetails", lambda: listener.on_exec_details(req_id, contract, execution))

    def commission_report(report: CommissionReport) -> None:
        try:
            original_commission(report)
        finally:
            guarded("commissionReport", lambda: listener.on_commission_report(report))

    def error(req_id: int, code: int, text: str, *rest: Any) -> None:
        # rest: advancedOrderRejectJson (ib_async 2.1), and whatever later versions add
        is_request = req_id in target._futures
        try:
            original_error(req_id, code, text, *(rest or ("",)))
        finally:
            guarded("error", lambda: listener.on_error(req_id, code, text, is_request))

    target.openOrder = open_order
    target.orderStatus = order_status
    target.completedOrder = completed_order
    target.execDetails = exec_details
    target.commissionReport = commission_report
    target.error = error

    def uninstall() -> None:
        for name in TAPPED:
            target.__dict__.pop(name, None)

    return uninstall
