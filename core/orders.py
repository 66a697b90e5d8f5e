"""The order lifecycle (DESIGN.md section 3) as an explicit transition table.

`PENDING_SUBMIT -> SUBMITTED -> ACCEPTED -> PARTIALLY_FILLED -> FILLED`, plus
PENDING_CANCEL, CANCELED, REJECTED, EXPIRED and REPLACED.

Brokers deliver order updates late, twice, out of order or not at all, so the table says
for every (status, trigger) pair exactly one of:
- a target status (the transition happens),
- SAME: nothing changes -- a stale or duplicate update (`new` after `partial_fill`), or an
  informational one (`held`, `pending_replace`),
- BROKER: take the status from the broker's order snapshot (after `order_cancel_rejected`
  the order is working again, in whatever state the broker reports);
a pair that is absent is illegal and raises `IllegalTransition` (e.g. `canceled` for an
order the broker already reported filled: two different endings cannot both be true).

Fills are handled beside the table: they are de-duplicated by execution id, always
recorded (even after a cancel, even after CANCELED: money moved), filled quantity only
grows and never exceeds the order quantity (a fill that would is a broker inconsistency,
refused loudly before anything changes). A fill that completes the quantity makes the
order FILLED from any state but REPLACED (a late fill of a canceled/expired order means
the cancel lost the race; a replaced order's replacement lives on and owns the rest).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from core.broker import BrokerEvent, BrokerEventKind, BrokerInconsistency
from core.clock import ensure_aware
from core.domain import (
    ZERO,
    BrokerOrderId,
    ClientOrderId,
    ExecutionId,
    Fill,
    OrderRequest,
    OrderSnapshot,
    OrderStatus,
    Side,
    Symbol,
)

S = OrderStatus
K = BrokerEventKind


class LocalAction(StrEnum):
    """Our own steps, which the broker does not report."""

    SUBMIT_SENT = "submit_sent"  # the submit call returned an order
    SUBMIT_REJECTED = "submit_rejected"  # the submit call raised OrderRejected
    CANCEL_REQUESTED = "cancel_requested"  # the cancel call returned (a request only)


Trigger = BrokerEventKind | LocalAction


class _Rule(StrEnum):
    SAME = "same"
    BROKER = "broker"


SAME: Final = _Rule.SAME
BROKER: Final = _Rule.BROKER
Outcome = OrderStatus | _Rule

EARLY = (S.PENDING_SUBMIT, S.SUBMITTED)
LIVE = (S.ACCEPTED, S.PARTIALLY_FILLED)
NON_TERMINAL = (*EARLY, *LIVE, S.PENDING_CANCEL)
TERMINAL = (S.FILLED, S.CANCELED, S.REJECTED, S.EXPIRED, S.REPLACED)
ALL = (*NON_TERMINAL, *TERMINAL)
# Statuses an `order_cancel_rejected` may put the order back into.
BROKER_CANCEL_REJECTED_TARGETS = frozenset({S.ACCEPTED, S.PARTIALLY_FILLED, S.FILLED})
# Kinds that never change our status (they may still carry information worth logging).
INFORMATIONAL = (
    K.DONE_FOR_DAY,  # Alpaca follows it with `expired`
    K.PENDING_REPLACE,  # the order is unchanged until `replaced` or `order_replace_rejected`
    K.ORDER_REPLACE_REJECTED,  # the old order keeps working (or fills: its fill event says)
    K.HELD,
    K.STOPPED,
    K.SUSPENDED,
    K.CALCULATED,
    K.RESTATED,
)


def _table() -> dict[tuple[OrderStatus, Trigger], Outcome]:
    t: dict[tuple[OrderStatus, Trigger], Outcome] = {}

    def rows(sources: tuple[OrderStatus, ...], trigger: Trigger, outcome: Outcome) -> None:
        for source in sources:
            t[(source, trigger)] = outcome

    # Local steps. The stream may beat the submit response, hence SAME after PENDING_SUBMIT.
    rows((S.PENDING_SUBMIT,), LocalAction.SUBMIT_SENT, S.SUBMITTED)
    rows((S.SUBMITTED, *LIVE, S.PENDING_CANCEL, *TERMINAL), LocalAction.SUBMIT_SENT, SAME)
    rows(EARLY, LocalAction.SUBMIT_REJECTED, S.REJECTED)
    rows((S.REJECTED,), LocalAction.SUBMIT_REJECTED, SAME)
    rows((S.SUBMITTED, *LIVE), LocalAction.CANCEL_REQUESTED, S.PENDING_CANCEL)
    # A fill or the cancel itself may have been processed before we record the request.
    rows((S.PENDING_CANCEL, *TERMINAL), LocalAction.CANCEL_REQUESTED, SAME)

    # Acknowledgements: forward only; anything already further along ignores them.
    rows(EARLY, K.PENDING_NEW, S.SUBMITTED)
    rows((*LIVE, S.PENDING_CANCEL, *TERMINAL), K.PENDING_NEW, SAME)
    for ack in (K.NEW, K.ACCEPTED):
        rows(EARLY, ack, S.ACCEPTED)
        rows((*LIVE, S.PENDING_CANCEL, *TERMINAL), ack, SAME)

    # Fills (see the module docstring for quantities; a completing fill overrides these).
    rows((*EARLY, *LIVE), K.PARTIAL_FILL, S.PARTIALLY_FILLED)
    rows((S.PENDING_CANCEL, *TERMINAL), K.PARTIAL_FILL, SAME)  # late fills are recorded
    rows((*NON_TERMINAL, S.CANCELED, S.EXPIRED, S.REJECTED), K.FILL, S.FILLED)
    rows((S.FILLED, S.REPLACED), K.FILL, SAME)

    # Cancels: a request, then the broker's answer.
    rows((*EARLY, *LIVE), K.PENDING_CANCEL, S.PENDING_CANCEL)
    rows((S.PENDING_CANCEL, *TERMINAL), K.PENDING_CANCEL, SAME)
    rows((S.PENDING_CANCEL,), K.ORDER_CANCEL_REJECTED, BROKER)
    rows((*EARLY, *LIVE, *TERMINAL), K.ORDER_CANCEL_REJECTED, SAME)

    # Endings. Each is reachable from every working status (brokers skip steps, events go
    # missing) and idempotent; a DIFFERENT ending after one is absent from the table.
    for kind, status in (
        (K.CANCELED, S.CANCELED),
        (K.EXPIRED, S.EXPIRED),
        (K.REJECTED, S.REJECTED),
        (K.REPLACED, S.REPLACED),
    ):
        rows(NON_TERMINAL, kind, status)
        rows((status,), kind, SAME)

    for kind in INFORMATIONAL:
        rows(ALL, kind, SAME)
    # TRADE_BUST / TRADE_CORRECT are deliberately absent: they rewrite filled quantity.
    return t


TRANSITIONS: Mapping[tuple[OrderStatus, Trigger], Outcome] = MappingProxyType(_table())


class IllegalTransition(Exception):
    """A (status, trigger) pair the table does not allow."""

    def __init__(self, order: str, status: OrderStatus, trigger: Trigger) -> None:
        super().__init__(f"order {order}: {trigger} is not allowed in status {status}")
        self.status = status
        self.trigger = trigger


@dataclass(frozen=True, slots=True)
class Transition:
    """One recorded change: a status change, a fill, or both (from == to for a fill that
    leaves the status as it is)."""

    client_order_id: ClientOrderId
    broker_order_id: BrokerOrderId | None
    from_status: OrderStatus
    to_status: OrderStatus
    cause: str
    at: datetime
    fill: Fill | None = None

    @property
    def changes_status(self) -> bool:
        return self.from_status is not self.to_status


class OrderModel:
    """One order's lifecycle, pure (no I/O); the engine persists its transitions."""

    def __init__(
        self,
        *,
        client_order_id: ClientOrderId,
        symbol: Symbol,
        side: Side,
        qty: Decimal,
        status: OrderStatus = OrderStatus.PENDING_SUBMIT,
        broker_order_id: BrokerOrderId | None = None,
    ) -> None:
        if qty <= 0:
            raise ValueError(f"order quantity must be positive, got {qty}")
        self.client_order_id = client_order_id
        self.symbol = symbol
        self.side = side
        self.qty = qty
        self._status = status
        self._broker_order_id = broker_order_id
        self._fills: list[Fill] = []
        self._execution_ids: set[ExecutionId] = set()
        self._filled = ZERO
        self._notional = ZERO
        self.reject_reason: str | None = None
        self.replaced_by: BrokerOrderId | None = None
        self.raw_status: str | None = None

    @classmethod
    def from_request(cls, request: OrderRequest) -> OrderModel:
        return cls(
            client_order_id=request.client_order_id,
            symbol=request.symbol,
            side=request.side,
            qty=request.qty,
        )

    @classmethod
    def from_snapshot(cls, snapshot: OrderSnapshot) -> OrderModel:
        """Adopt an order first seen at the broker (its fills are applied separately)."""
        model = cls(
            client_order_id=snapshot.client_order_id,
            symbol=snapshot.symbol,
            side=snapshot.side,
            qty=snapshot.qty,
            status=snapshot.status,
            broker_order_id=snapshot.broker_order_id,
        )
        model.raw_status = snapshot.raw_status
        return model

    @classmethod
    def restore(
        cls,
        *,
        client_order_id: ClientOrderId,
        symbol: Symbol,
        side: Side,
        qty: Decimal,
        status: OrderStatus,
        broker_order_id: BrokerOrderId | None,
        fills: Sequence[Fill],
    ) -> OrderModel:
        """Rebuild a model from what the ledger recorded (status and unique fills), e.g.
        after a restart. The fills were validated when they were first applied."""
        model = cls(
            client_order_id=client_order_id,
            symbol=symbol,
            side=side,
            qty=qty,
            status=status,
            broker_order_id=broker_order_id,
        )
        for fill in fills:
            if fill.execution_id not in model._execution_ids:
                model._record_fill(fill)
        return model

    def force_status(self, status: OrderStatus) -> None:
        """The broker wins: take a status the transition table could not reach (a
        reconcile found the order ended differently). Fills are kept; callers record
        the override as its own transition."""
        self._status = status

    # --- read side ----------------------------------------------------------------------

    @property
    def status(self) -> OrderStatus:
        return self._status

    @property
    def broker_order_id(self) -> BrokerOrderId | None:
        return self._broker_order_id

    @property
    def filled_qty(self) -> Decimal:
        return self._filled

    @property
    def remaining_qty(self) -> Decimal:
        return self.qty - self._filled

    @property
    def avg_fill_price(self) -> Decimal | None:
        return None if self._filled == 0 else self._notional / self._filled

    @property
    def fills(self) -> tuple[Fill, ...]:
        return tuple(self._fills)

    def has_fill(self, execution_id: ExecutionId) -> bool:
        return execution_id in self._execution_ids

    # --- write side ---------------------------------------------------------------------

    def outcome(self, trigger: Trigger) -> Outcome:
        """The table's answer for the current status; raises IllegalTransition."""
        try:
            return TRANSITIONS[(self._status, trigger)]
        except KeyError:
            raise IllegalTransition(self._label(), self._status, trigger) from None

    def local(
        self,
        action: LocalAction,
        at: datetime,
        *,
        broker_order_id: BrokerOrderId | None = None,
        reason: str | None = None,
    ) -> list[Transition]:
        """Record one of our own steps (submit returned, submit refused, cancel sent)."""
        ensure_aware(at)
        outcome = self.outcome(action)
        if broker_order_id is not None:
            self._adopt_broker_id(broker_order_id)
        if action is LocalAction.SUBMIT_REJECTED and reason is not None:
            self.reject_reason = reason
        if not isinstance(outcome, OrderStatus) or outcome is self._status:
            return []
        return [self._move(outcome, str(action), at)]

    def apply(self, event: BrokerEvent) -> list[Transition]:
        """Apply one broker event. Returns what changed (empty: duplicate or stale)."""
        snapshot = event.order
        if snapshot.client_order_id != self.client_order_id:
            raise ValueError(
                f"event for {snapshot.client_order_id} applied to order {self.client_order_id}"
            )
        if event.kind in (K.TRADE_BUST, K.TRADE_CORRECT):
            raise BrokerInconsistency(
                f"order {self._label()}: {event.kind} rewrites executions; reconcile"
            )
        fill = event.fill
        if fill is not None and fill.execution_id in self._execution_ids:
            return []  # the same event again: it was fully applied the first time
        outcome = self.outcome(event.kind)  # raises before anything changes
        if fill is not None:
            self._check_fill(fill)
        self._adopt_broker_id(snapshot.broker_order_id)
        if fill is not None:
            self._record_fill(fill)
        target = self._target(outcome, event)
        if event.kind is K.REJECTED and snapshot.reject_reason:
            self.reject_reason = snapshot.reject_reason
        if event.kind is K.REPLACED and snapshot.replaced_by is not None:
            self.replaced_by = snapshot.replaced_by
        if target is not self._status or fill is not None:
            self.raw_status = snapshot.raw_status or self.raw_status
            return [self._move(target, str(event.kind), event.timestamp, fill)]
        return []

    # --- internals ----------------------------------------------------------------------

    def _target(self, outcome: Outcome, event: BrokerEvent) -> OrderStatus:
        if outcome is BROKER:
            reported = event.order.status
            if reported in BROKER_CANCEL_REJECTED_TARGETS:
                return reported
            return S.PARTIALLY_FILLED if self._filled > 0 else S.ACCEPTED
        target = self._status if outcome is SAME else outcome
        assert isinstance(target, OrderStatus)
        # A completing fill ends the order, whatever the event's kind says (reordered
        # partials can complete it), except that a replaced order stays replaced.
        if self._filled == self.qty and target is not S.REPLACED and event.kind.is_fill:
            return S.FILLED
        return target

    def _check_fill(self, fill: Fill) -> None:
        if fill.client_order_id != self.client_order_id:
            raise ValueError(f"fill {fill.execution_id} is not for order {self._label()}")
        if fill.side is not self.side or fill.symbol != self.symbol:
            raise BrokerInconsistency(
                f"fill {fill.execution_id} ({fill.side} {fill.symbol}) does not match order "
                f"{self._label()} ({self.side} {self.symbol})"
            )
        if self._filled + fill.qty > self.qty:
            raise BrokerInconsistency(
                f"fill {fill.execution_id} of {fill.qty} would take order {self._label()} to "
                f"{self._filled + fill.qty} filled of {self.qty}; refused, reconcile"
            )

    def _record_fill(self, fill: Fill) -> None:
        self._fills.append(fill)
        self._execution_ids.add(fill.execution_id)
        self._filled += fill.qty
        self._notional += fill.qty * fill.price

    def _adopt_broker_id(self, broker_order_id: BrokerOrderId) -> None:
        if self._broker_order_id is None:
            self._broker_order_id = broker_order_id
        elif self._broker_order_id != broker_order_id:
            raise ValueError(
                f"order {self.client_order_id} is {self._broker_order_id} at the broker, "
                f"not {broker_order_id}"
            )

    def _move(
        self, target: OrderStatus, cause: str, at: datetime, fill: Fill | None = None
    ) -> Transition:
        transition = Transition(
            client_order_id=self.client_order_id,
            broker_order_id=self._broker_order_id,
            from_status=self._status,
            to_status=target,
            cause=cause,
            at=at,
            fill=fill,
        )
        self._status = target
        return transition

    def _label(self) -> str:
        return f"{self.client_order_id}/{self._broker_order_id or '-'}"


__all__ = [
    "TRANSITIONS",
    "IllegalTransition",
    "LocalAction",
    "OrderModel",
    "Transition",
]
