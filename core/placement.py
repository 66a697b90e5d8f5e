"""Sending an order intent exactly once, and canceling with confirmation.

`Placer.send` is called with an intent that is ALREADY committed to the ledger
(PENDING_SUBMIT). It calls the broker once and classifies what happened:
- the broker answered with an order -> recorded (SUBMITTED / ACCEPTED / ...);
- the broker refused it (OrderRejected) -> REJECTED with the broker's words;
- anything ambiguous (timeout, 5xx, connection lost, a duplicate id, a 429) -> the order
  is looked up by client order id, never resent: found -> recorded as ours; a 429 that
  is not found (or whose lookup is throttled too) was definitively not placed -> REJECTED
  "rate limited, nothing was placed" (the adapter already resent it after the wait);
  otherwise the intent stays PENDING_SUBMIT and the reconciler resolves it later
  (`UNKNOWN`), because a request still in flight could land after our lookup.

`cancel_and_confirm` never reports a cancel from the request alone: it waits for the
broker's `canceled` (or the fill that beat it) and asks the broker when the wait times out.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from loguru import logger

from core.broker import (
    BrokerError,
    DuplicateClientOrderId,
    NotCancelable,
    NotFound,
    OrderRejected,
    RateLimited,
)
from core.crashpoints import AFTER_INTENT_WRITTEN, AFTER_SUBMIT_SENT
from core.domain import OrderRequest, OrderStatus
from core.engine_context import EngineContext
from core.order_tracker import NEVER_REACHED, OrderTracker
from core.order_views import OrderView

S = OrderStatus
UNACKED = (S.PENDING_SUBMIT, S.SUBMITTED)


class PlaceOutcome(StrEnum):
    ACCEPTED = "accepted"  # live at the broker, or accepted and waiting (queued)
    PENDING = "pending"  # sent and known to the broker, not acknowledged yet
    REJECTED = "rejected"  # refused; nothing was placed
    NEVER_REACHED = "never_reached"  # definitively not at the broker
    UNKNOWN = "unknown"  # ambiguous and not resolved yet: the reconciler will


@dataclass(frozen=True, slots=True)
class Placement:
    outcome: PlaceOutcome
    order: OrderView
    reason: str | None = None
    error: BrokerError | None = None

    @property
    def placed(self) -> bool:
        return self.outcome in (PlaceOutcome.ACCEPTED, PlaceOutcome.PENDING)


def _classify(order: OrderView) -> PlaceOutcome:
    if order.status is S.REJECTED:
        return PlaceOutcome.REJECTED
    if order.status in UNACKED:
        return PlaceOutcome.PENDING
    return PlaceOutcome.ACCEPTED


def is_acknowledged(order: OrderView) -> bool:
    return order.status not in UNACKED


class Placer:
    def __init__(self, ctx: EngineContext, tracker: OrderTracker) -> None:
        self._ctx = ctx
        self._tracker = tracker

    async def send(
        self, intent: OrderView, request: OrderRequest, *, sent_label: str = AFTER_SUBMIT_SENT
    ) -> Placement:
        cid = request.client_order_id
        self._ctx.checkpoints.reached(AFTER_INTENT_WRITTEN)
        try:
            with self._tracker.sending(cid):
                snapshot = await self._ctx.broker.submit(request)
        except DuplicateClientOrderId as exc:
            return await self._resolve(intent, exc, definitive=False)
        except OrderRejected as exc:
            outcome = await self._tracker.submit_refused(cid, exc.reason)
            return Placement(PlaceOutcome.REJECTED, outcome.order, exc.reason, exc)
        except RateLimited as exc:
            return await self._resolve(intent, exc, definitive=True)
        except BrokerError as exc:
            return await self._resolve(intent, exc, definitive=False)
        except TimeoutError as exc:
            return await self._resolve(intent, BrokerError(f"timeout: {exc}"), definitive=False)
        # The response is in hand but not yet recorded: the crash matrix kills here.
        self._ctx.checkpoints.reached(sent_label)
        recorded = await self._tracker.submitted(cid, snapshot)
        return Placement(_classify(recorded.order), recorded.order)

    async def _resolve(self, intent: OrderView, exc: BrokerError, *, definitive: bool) -> Placement:
        cid = intent.client_order_id
        looked_up = False
        for delay in self._ctx.options.lookup_delays:
            if delay > 0:
                await self._ctx.clock.sleep(delay)
            try:
                snapshot = await self._ctx.broker.get_order_by_client_id(cid)
            except BrokerError as lookup_error:
                logger.warning("lookup of {} failed: {}", cid, lookup_error)
                continue
            looked_up = True
            if snapshot is not None:
                recorded = await self._tracker.submitted(cid, snapshot)
                return Placement(_classify(recorded.order), recorded.order, str(exc), exc)
        # A 429 is definitive by itself (the broker refused the request before doing
        # anything: the adapters raise RateLimited only when every attempt was a 429); the
        # lookup is only there to catch a broker that placed it anyway.
        if definitive and (looked_up or isinstance(exc, RateLimited)):
            reason = f"{NEVER_REACHED}: {exc}"
            if isinstance(exc, RateLimited):
                reason = f"{NEVER_REACHED}: rate limited, nothing was placed ({exc})"
            outcome = await self._tracker.submit_refused(cid, reason)
            return Placement(PlaceOutcome.NEVER_REACHED, outcome.order, str(exc), exc)
        logger.warning("order {}: outcome unknown after {}; the reconciler resolves it", cid, exc)
        return Placement(PlaceOutcome.UNKNOWN, self._tracker.require(cid), str(exc), exc)

    async def confirm_accepted(self, order: OrderView, seconds: float) -> OrderView:
        """Wait for the broker's ack (stream), then ask the broker if it did not come."""
        view = await self._tracker.wait_for(order.client_order_id, is_acknowledged, seconds)
        if is_acknowledged(view):
            return view
        try:
            return await self._tracker.refresh(order.client_order_id)
        except BrokerError as exc:
            logger.warning("could not query {}: {}", order.client_order_id, exc)
            return view

    async def cancel_and_confirm(self, order: OrderView, seconds: float) -> OrderView:
        """Request the cancel, then wait until the broker says how the order ended."""
        cid = order.client_order_id
        view = self._tracker.require(cid)
        if view.is_terminal:
            return view
        if view.broker_order_id is None:
            try:
                view = await self._tracker.refresh(cid)
            except BrokerError as exc:
                logger.warning("cannot look up {} to cancel it: {}", cid, exc)
            if view.broker_order_id is None or view.is_terminal:
                return view
        assert view.broker_order_id is not None
        try:
            await self._ctx.broker.cancel(view.broker_order_id)
        except (NotCancelable, NotFound):
            pass  # already ended: the query below says how
        except BrokerError as exc:
            logger.warning("cancel of {} failed: {}", cid, exc)
        else:
            await self._tracker.cancel_requested(cid)
        view = await self._tracker.wait_for(cid, lambda v: v.is_terminal, seconds)
        if view.is_terminal:
            return view
        try:
            return await self._tracker.refresh(cid)
        except BrokerError as exc:
            logger.warning("could not confirm the cancel of {}: {}", cid, exc)
            return view


__all__ = ["PlaceOutcome", "Placement", "Placer", "is_acknowledged"]
