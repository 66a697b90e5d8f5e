"""Entries with broker-side attached protection (IBKR): the stop exists from the fill on.

When the broker can attach a trailing-stop child to an entry (`AttachedProtectionBroker`,
structurally the IBKR adapter's `SupportsAttachedProtection`: core never imports an
adapter), confirming a buy draft
1. writes BOTH intents in the confirm's unit of work: the entry (role ENTRY) and the child
   (role PROTECTION, a GTC trailing-stop SELL of the draft's qty, its trail the one
   frozen on the draft, as the post-fill path uses it: docs/one-stop.md), links them in
   `protection_links` (kind ATTACHED), and the caller commits; the child's client id is
   the entry's draft scope with purpose `at` and the SAME attempt number as the entry
   (deterministic);
2. then calls `submit_with_protection` once, and records both answers.

Because the link is ACTIVE and the child is a live sell, the post-fill protection path
(core.protection / core.protection_book) finds nothing uncovered when the parent fills,
fully or partly (the adapter keeps the child sized to the parent's fills).

Enabled by `EngineOptions.attached_protection` (the composition root sets it for IBKR).
The reconciler spares an attached child whose parent still works (it has no position yet)
and cancels the link of a child that never reached the broker (it covers nothing).

Outcomes:
- accepted: both recorded (ACCEPTED / PreSubmitted);
- the child refused (the adapter's AttachedProtectionRefused, an OrderRejected carrying
  `.parent`): the child is REJECTED and its link CANCELED (it covers nothing); the parent
  is recorded as it ended. If shares filled, the post-fill path protects them now; if the
  entry definitively never worked (canceled unfilled, or never reached the broker), the
  caller may place it alone, as a new attempt, and protect after the fill;
- the entry refused (a plain OrderRejected): both REJECTED, the link CANCELED;
- ambiguous (timeout, connection, duplicate id): both client ids are looked up, never
  resent; what is found is recorded, the rest stays PENDING_SUBMIT for the reconciler.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol, runtime_checkable

from loguru import logger

from core.broker import (
    BrokerError,
    DuplicateClientOrderId,
    OrderRejected,
    RateLimited,
)
from core.crashpoints import AFTER_INTENT_WRITTEN, AFTER_SUBMIT_SENT
from core.domain import (
    ClientOrderId,
    OrderRequest,
    OrderRole,
    OrderSnapshot,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from core.engine_context import EngineContext
from core.ids import Purpose, client_order_id, draft_scope
from core.ledger import ProtectionKind, ProtectionStatus, UnitOfWork
from core.order_tracker import NEVER_REACHED, OrderTracker
from core.order_views import OrderView
from core.orders import IllegalTransition
from core.placement import PlaceOutcome

S = OrderStatus
_UNACKED = (S.PENDING_SUBMIT, S.SUBMITTED)


@runtime_checkable
class AttachedProtectionBroker(Protocol):
    """What core needs of a broker that attaches protection to an entry (the IBKR
    adapter's `SupportsAttachedProtection`, matched structurally)."""

    async def submit_with_protection(
        self,
        entry: OrderRequest,
        trail_percent: Decimal,
        child_client_order_id: ClientOrderId,
        *,
        child_time_in_force: TimeInForce = TimeInForce.GTC,
    ) -> tuple[OrderSnapshot, OrderSnapshot]: ...


def supports_attached(broker: object) -> bool:
    return isinstance(broker, AttachedProtectionBroker)


def _child_refusal(exc: OrderRejected) -> tuple[bool, OrderSnapshot | None]:
    """(is it the child's refusal, the parent as it ended). The adapter's
    AttachedProtectionRefused carries `.parent` (None when the entry never reached IB)."""
    if not hasattr(exc, "parent"):
        return False, None
    parent = exc.parent
    return True, parent if isinstance(parent, OrderSnapshot) else None


def child_request(
    entry: OrderRequest, trail_pct: Decimal, namespace: str, *, draft_id: int, attempt: int
) -> OrderRequest:
    """The trailing stop attached to `entry` (draft `draft_id`'s entry, `attempt`): its id
    has the entry's scope and attempt, purpose `at`."""
    return OrderRequest(
        client_order_id=client_order_id(
            namespace, draft_scope(draft_id), Purpose.ATTACHED, attempt
        ),
        symbol=entry.symbol,
        side=Side.SELL,
        qty=entry.qty,
        order_type=OrderType.TRAILING_STOP,
        # GTC: a fill near the close must stay protected in the next session.
        time_in_force=TimeInForce.GTC,
        trail_percent=trail_pct,
    )


@dataclass(frozen=True, slots=True)
class AttachedIntents:
    entry: OrderView
    entry_request: OrderRequest
    child: OrderView
    child_request: OrderRequest

    @property
    def trail_pct(self) -> Decimal:
        assert self.child_request.trail_percent is not None
        return self.child_request.trail_percent


@dataclass(frozen=True, slots=True)
class AttachedPlacement:
    outcome: PlaceOutcome  # the entry's
    entry: OrderView
    child: OrderView
    reason: str | None = None
    child_refused: str | None = None  # the broker refused the attachment: why
    # The child was refused and the entry definitively never worked (canceled unfilled or
    # never reached): placing it alone, as a new attempt, is not a resend.
    entry_dead: bool = False


class AttachedEntries:
    def __init__(self, ctx: EngineContext, tracker: OrderTracker) -> None:
        self._ctx = ctx
        self._tracker = tracker

    def supported(self) -> bool:
        """The broker attaches protection AND the engine is told to use it
        (`EngineOptions.attached_protection`; the composition root turns it on for IBKR)."""
        return self._ctx.options.attached_protection and supports_attached(self._ctx.broker)

    def record_in(
        self,
        uow: UnitOfWork,
        entry_request: OrderRequest,
        trail_pct: Decimal,
        *,
        draft_id: int,
        attempt: int,
    ) -> AttachedIntents:
        """Both intents and their link, in the caller's unit of work (it commits). The
        child trails by the draft's frozen percent (the one the trade was sized on);
        `trail_pct` only stands in for a draft from before the one stop."""
        draft = uow.drafts.get(draft_id)
        if draft is not None and draft.trail_percent is not None:
            trail_pct = draft.trail_percent
        namespace = self._ctx.account.namespace
        child_req = child_request(
            entry_request, trail_pct, namespace, draft_id=draft_id, attempt=attempt
        )
        tracker = self._tracker
        entry = tracker.record_intent_in(uow, entry_request, OrderRole.ENTRY, draft_id=draft_id)
        child = tracker.record_intent_in(
            uow, child_req, OrderRole.PROTECTION, parent_order_id=entry.id
        )
        uow.protection_links.link(
            entry.id,
            child.id,
            protected_qty=child_req.qty,
            kind=ProtectionKind.ATTACHED,
            at=self._ctx.now(),
        )
        return AttachedIntents(entry, entry_request, child, child_req)

    async def send(self, intents: AttachedIntents) -> AttachedPlacement:
        """Call the broker once with both committed intents and record what it said."""
        ctx = self._ctx
        broker = ctx.broker
        assert isinstance(broker, AttachedProtectionBroker)
        ctx.checkpoints.reached(AFTER_INTENT_WRITTEN)
        try:
            with self._tracker.sending(
                intents.entry.client_order_id, intents.child.client_order_id
            ):
                parent, child = await broker.submit_with_protection(
                    intents.entry_request,
                    intents.trail_pct,
                    intents.child_request.client_order_id,
                    child_time_in_force=intents.child_request.time_in_force,
                )
        except DuplicateClientOrderId as exc:
            return await self._resolve(intents, exc, definitive=False)
        except OrderRejected as exc:
            return await self._rejected(intents, exc)
        except RateLimited as exc:
            return await self._resolve(intents, exc, definitive=True)
        except BrokerError as exc:
            return await self._resolve(intents, exc, definitive=False)
        except TimeoutError as exc:
            return await self._resolve(intents, BrokerError(f"timeout: {exc}"), definitive=False)
        ctx.checkpoints.reached(AFTER_SUBMIT_SENT)
        entry = await self._record(intents.entry.client_order_id, parent)
        child_view = await self._record(intents.child.client_order_id, child)
        return AttachedPlacement(_classify(entry), entry, child_view)

    async def _rejected(self, intents: AttachedIntents, exc: OrderRejected) -> AttachedPlacement:
        is_child, parent = _child_refusal(exc)
        child = await self._child_refused(intents, exc.reason)
        entry_cid = intents.entry.client_order_id
        if not is_child:  # the entry itself was refused: nothing was placed
            entry = await self._refuse(entry_cid, exc.reason)
            return AttachedPlacement(PlaceOutcome.REJECTED, entry, child, exc.reason)
        logger.warning("{}: attached protection refused: {}", entry_cid, exc.reason)
        if parent is None:  # the entry never reached the broker
            entry = await self._refuse(entry_cid, f"{NEVER_REACHED}: {exc}")
            return AttachedPlacement(
                PlaceOutcome.NEVER_REACHED,
                entry,
                child,
                exc.reason,
                child_refused=exc.reason,
                entry_dead=True,
            )
        entry = await self._record(entry_cid, parent)
        dead = entry.is_terminal and entry.filled_qty <= 0
        return AttachedPlacement(
            _classify(entry), entry, child, exc.reason, child_refused=exc.reason, entry_dead=dead
        )

    async def _child_refused(self, intents: AttachedIntents, reason: str) -> OrderView:
        """The child covers nothing: REJECTED, its link CANCELED (before the parent's fate
        is recorded, so the post-fill path sees the shares uncovered)."""
        self._cancel_link(intents.child.id)
        return await self._refuse(intents.child.client_order_id, reason)

    async def _record(self, cid: str, snapshot: OrderSnapshot) -> OrderView:
        """The broker's answer; the stream may have moved the order past what a "submit
        sent" allows (a fill, a cancel): then the snapshot alone is applied."""
        try:
            return (await self._tracker.submitted(cid, snapshot)).order
        except IllegalTransition:
            await self._tracker.apply_snapshots([snapshot])
            return self._tracker.require(cid)

    async def _refuse(self, cid: str, reason: str) -> OrderView:
        """REJECTED, unless the stream already ended it (e.g. IB's Cancelled of a refused
        child arrived first)."""
        view = self._tracker.require(cid)
        if view.is_terminal:
            return view
        try:
            return (await self._tracker.submit_refused(cid, reason)).order
        except IllegalTransition:
            return self._tracker.require(cid)

    def _cancel_link(self, child_id: int) -> None:
        with self._ctx.ledger.unit_of_work() as uow:
            for link in uow.protection_links.for_protection_order(child_id):
                if link.status is ProtectionStatus.ACTIVE:
                    uow.protection_links.set_status(link, ProtectionStatus.CANCELED)
            uow.commit()

    async def _resolve(
        self, intents: AttachedIntents, exc: BrokerError, *, definitive: bool
    ) -> AttachedPlacement:
        """Ambiguous: look both ids up (never resend). Found -> recorded; a definitive
        miss (429) -> never reached; otherwise both stay PENDING_SUBMIT (the reconciler)."""
        ctx, tracker = self._ctx, self._tracker
        entry_cid = intents.entry.client_order_id
        child_cid = intents.child.client_order_id
        found: dict[str, OrderSnapshot] = {}
        looked_up = False
        for delay in ctx.options.lookup_delays:
            if delay > 0:
                await ctx.clock.sleep(delay)
            try:
                for cid in (entry_cid, child_cid):
                    if cid not in found:
                        snapshot = await ctx.broker.get_order_by_client_id(cid)
                        if snapshot is not None:
                            found[cid] = snapshot
            except BrokerError as lookup_error:
                logger.warning("lookup of {} / {} failed: {}", entry_cid, child_cid, lookup_error)
                continue
            looked_up = True
            if entry_cid in found and child_cid in found:
                break
        if entry_cid in found:
            entry = await self._record(entry_cid, found[entry_cid])
            if child_cid in found:
                child = await self._record(child_cid, found[child_cid])
            else:
                child = tracker.require(child_cid)
                logger.warning("{}: entry found, its attached child not (yet)", entry_cid)
            return AttachedPlacement(_classify(entry), entry, child, str(exc))
        throttled = isinstance(exc, RateLimited)  # a 429 placed nothing (core.placement)
        if (looked_up or throttled) and definitive and child_cid not in found:
            child = await self._child_refused(intents, f"{NEVER_REACHED}: {exc}")
            entry = await self._refuse(entry_cid, f"{NEVER_REACHED}: {exc}")
            return AttachedPlacement(PlaceOutcome.NEVER_REACHED, entry, child, str(exc))
        logger.warning(
            "attached entry {}: outcome unknown after {}; the reconciler resolves it",
            entry_cid,
            exc,
        )
        child = tracker.require(child_cid)
        if child_cid in found:
            child = await self._record(child_cid, found[child_cid])
        return AttachedPlacement(PlaceOutcome.UNKNOWN, tracker.require(entry_cid), child, str(exc))


def _classify(order: OrderView) -> PlaceOutcome:
    if order.status is S.REJECTED:
        return PlaceOutcome.REJECTED
    if order.status in _UNACKED:
        return PlaceOutcome.PENDING
    return PlaceOutcome.ACCEPTED


__all__ = [
    "AttachedEntries",
    "AttachedIntents",
    "AttachedPlacement",
    "AttachedProtectionBroker",
    "child_request",
    "supports_attached",
]
