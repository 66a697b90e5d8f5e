"""Confirming drafts: exactly once, risk and capability first, intent before the broker.

Confirm checks the capability matrix and every risk rule first (refusals are returned with
their explanations and the draft stays pending), then moves the draft PENDING ->
CONFIRMED and writes the order intent in ONE unit of work: that conditional update is the
double-tap guard (a second confirm finds the draft confirmed and is a no-op that says
so). Only then is the broker called, once. A draft whose order was refused or never
reached the broker is reopened: confirming it again is a new attempt, with a new client
order id. A stop-sell draft replaces the position's protection (core.protection_edits).
A buy on a broker that attaches protection (IBKR, when EngineOptions.attached_protection
is on) writes the entry and its attached trailing stop together (core.attached_entry).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from loguru import logger

from core.attached_entry import AttachedEntries, AttachedIntents, child_request
from core.capabilities import check
from core.domain import OrderRequest, OrderRole, Side
from core.draft_models import ConfirmOutcome, ConfirmResult, draft_request
from core.engine_context import EngineContext
from core.events import RiskRefused
from core.ids import Purpose, draft_scope, next_attempt, prefix
from core.ledger import DraftRow, DraftStatus, UnitOfWork
from core.order_tracker import OrderTracker
from core.order_views import OrderView
from core.placement import Placement, PlaceOutcome, Placer
from core.protection import ProtectionManager
from core.protection_edits import ProtectionEdits
from core.risk_gate import RiskGate

_PLACED = (ConfirmOutcome.PLACED, ConfirmOutcome.SENT, ConfirmOutcome.QUEUED)


class DraftConfirmer:
    def __init__(
        self,
        ctx: EngineContext,
        tracker: OrderTracker,
        placer: Placer,
        risk: RiskGate,
        edits: ProtectionEdits,
    ) -> None:
        self._ctx = ctx
        self._tracker = tracker
        self._placer = placer
        self._risk = risk
        self._edits = edits
        self._attached = AttachedEntries(ctx, tracker)

    async def confirm(self, draft_id: int) -> ConfirmResult:
        # One confirm at a time per account, and never during a kill: the risk check sees
        # every entry confirmed before it, and a kill waits for a send in flight.
        async with self._ctx.entry_lock:
            return await self._confirm(draft_id)

    async def _confirm(self, draft_id: int) -> ConfirmResult:
        ctx = self._ctx
        with ctx.ledger.unit_of_work(read_only=True) as uow:
            draft = uow.drafts.get(draft_id)
            if draft is None or draft.account_id != ctx.account.row_id:
                return ConfirmResult(draft_id, ConfirmOutcome.NOT_FOUND, f"no draft {draft_id}")
            orders = [OrderView.of(o) for o in uow.orders.for_draft(draft_id)]
        if draft.status is DraftStatus.CONFIRMED:
            last = orders[-1] if orders else None
            return ConfirmResult(
                draft_id,
                ConfirmOutcome.ALREADY_CONFIRMED,
                f"draft {draft_id} is already confirmed: nothing was sent again",
                last,
            )
        if draft.status is not DraftStatus.PENDING:
            return ConfirmResult(
                draft_id, ConfirmOutcome.NOT_PENDING, f"draft {draft_id} is {draft.status}"
            )
        if draft.expires_at is not None and draft.expires_at <= ctx.now():
            self._expire(draft_id)
            return ConfirmResult(draft_id, ConfirmOutcome.EXPIRED, f"draft {draft_id} expired")
        if ctx.halted:
            return ConfirmResult(
                draft_id, ConfirmOutcome.REFUSED_RISK, "a kill is running: no new orders"
            )
        if draft.side is Side.SELL:
            return await self._confirm_sell(draft)
        return await self._confirm_buy(draft)

    async def confirm_batch(self, draft_ids: list[int]) -> list[ConfirmResult]:
        """One after the other: each risk check sees the entries placed before it."""
        return [await self.confirm(i) for i in dict.fromkeys(draft_ids)]

    async def _confirm_buy(self, draft: DraftRow) -> ConfirmResult:
        ctx = self._ctx
        request = self._request(draft, attempt=1)
        verdict = check(ctx.broker.capabilities, request, ctx.phase())
        if not verdict.allowed:
            return ConfirmResult(draft.id, ConfirmOutcome.REFUSED_CAPABILITY, verdict.reason)
        assert draft.trigger_price is not None and draft.initial_stop is not None
        decision = await self._risk.check_entry(
            draft.symbol, Side.BUY, draft.trigger_price, draft.initial_stop, draft.qty
        )
        if not decision.allowed:
            event = RiskRefused(
                at=ctx.now(),
                account=ctx.account.name,
                draft_id=draft.id,  # type: ignore[arg-type]
                symbol=draft.symbol,
                reasons=decision.reasons,
            )
            with ctx.ledger.unit_of_work() as uow:
                uow.risk_events.record(
                    ctx.account.row_id,
                    ctx.today(),
                    kind="entry_refused",
                    blocking=True,
                    detail={
                        "draft_id": draft.id,
                        "codes": [r.code.value for r in decision.reasons],
                    },
                )
                ctx.outbox.stage(uow, event)
                uow.commit()
            await ctx.publish([event])
            text = "; ".join(r.message for r in decision.reasons)
            return ConfirmResult(
                draft.id, ConfirmOutcome.REFUSED_RISK, f"refused: {text}", reasons=decision.reasons
            )
        trail = self._attached_trail(draft)
        intents: AttachedIntents | None = None
        with ctx.ledger.unit_of_work() as uow:
            if not uow.drafts.transition_if(draft.id, DraftStatus.PENDING, DraftStatus.CONFIRMED):
                return ConfirmResult(
                    draft.id,
                    ConfirmOutcome.ALREADY_CONFIRMED,
                    f"draft {draft.id} was confirmed already: nothing was sent again",
                )
            attempt = self._attempt(uow, draft.id)
            request = self._request(draft, attempt=attempt)
            if trail is not None:
                intents = self._attached.record_in(
                    uow, request, trail, draft_id=draft.id, attempt=attempt
                )
                intent = intents.entry
            else:
                intent = self._tracker.record_intent_in(
                    uow, request, OrderRole.ENTRY, draft_id=draft.id
                )
            uow.commit()
        if intents is None:
            return self._result(
                draft, verdict.queued, verdict.reason, await self._placer.send(intent, request)
            )
        return await self._send_attached(draft, verdict.queued, verdict.reason, intents)

    def _attached_trail(self, draft: DraftRow) -> Decimal | None:
        """The attached child's trail when the broker attaches protection and the child
        passes the capability check now; None: the entry goes alone (post-fill path)."""
        ctx = self._ctx
        if not self._attached.supported():
            return None
        pct = self._protection().trail_pct(draft.symbol)[0]
        probe = child_request(
            self._request(draft, attempt=1),
            pct,
            ctx.account.namespace,
            draft_id=draft.id,
            attempt=1,
        )
        if not check(ctx.broker.capabilities, probe, ctx.phase()).allowed:
            return None
        return pct

    async def _send_attached(
        self, draft: DraftRow, queued: bool, why_queued: str, intents: AttachedIntents
    ) -> ConfirmResult:
        ctx = self._ctx
        sent = await self._attached.send(intents)
        entry = sent.entry
        if sent.entry_dead:
            # The attachment was refused and the entry never worked: place it alone (a new
            # attempt, not a resend); the post-fill path protects it when it fills.
            logger.warning("draft {}: {}; placing the entry alone", draft.id, sent.child_refused)
            with ctx.ledger.unit_of_work() as uow:
                request = self._request(draft, attempt=self._attempt(uow, draft.id))
                intent = self._tracker.record_intent_in(
                    uow, request, OrderRole.ENTRY, draft_id=draft.id
                )
                uow.commit()
            placement = await self._placer.send(intent, request)
            return self._result(draft, queued, why_queued, placement, note=sent.child_refused)
        if sent.child_refused is not None and entry.filled_qty > 0 and not ctx.halted:
            # The fill won the race with the refusal: protect it now (the usual path; it
            # recomputes what is uncovered under the symbol's lock, so never twice).
            manager = self._protection()
            ctx.spawn(
                manager.protect_entry(entry.id, entry.symbol),
                name=f"protect-{entry.client_order_id}",
            )
        placement = Placement(sent.outcome, entry, sent.reason)
        result = self._result(draft, queued, why_queued, placement, note=sent.child_refused)
        if sent.child_refused is None and result.outcome in _PLACED:
            pct = intents.trail_pct
            return replace(result, message=f"{result.message}, trailing stop {pct}% attached")
        return result

    def _result(
        self,
        draft: DraftRow,
        queued: bool,
        why_queued: str,
        placement: Placement,
        *,
        note: str | None = None,
    ) -> ConfirmResult:
        order = placement.order
        said = f" (attached protection refused: {note})" if note else ""
        if placement.outcome in (PlaceOutcome.REJECTED, PlaceOutcome.NEVER_REACHED):
            self._reopen(draft.id)
            outcome = (
                ConfirmOutcome.REJECTED
                if placement.outcome is PlaceOutcome.REJECTED
                else ConfirmOutcome.NEVER_REACHED
            )
            return ConfirmResult(draft.id, outcome, f"not placed: {placement.reason}{said}", order)
        if placement.outcome is PlaceOutcome.UNKNOWN:
            return ConfirmResult(
                draft.id,
                ConfirmOutcome.UNKNOWN,
                f"the broker's answer was lost ({placement.reason}); checking by "
                "client order id, nothing will be sent twice",
                order,
            )
        if queued:
            return ConfirmResult(
                draft.id, ConfirmOutcome.QUEUED, f"accepted, queued: {why_queued}{said}", order
            )
        outcome = (
            ConfirmOutcome.PLACED
            if placement.outcome is PlaceOutcome.ACCEPTED
            else ConfirmOutcome.SENT
        )
        return ConfirmResult(
            draft.id,
            outcome,
            f"stop-buy {draft.qty} {draft.symbol} @ {draft.trigger_price} {outcome}{said}",
            order,
        )

    async def _confirm_sell(self, draft: DraftRow) -> ConfirmResult:
        ctx = self._ctx
        assert draft.trigger_price is not None
        request = self._request(draft, attempt=1)
        verdict = check(ctx.broker.capabilities, request, ctx.phase())
        if not verdict.allowed:
            return ConfirmResult(draft.id, ConfirmOutcome.REFUSED_CAPABILITY, verdict.reason)
        with ctx.ledger.unit_of_work() as uow:
            if not uow.drafts.transition_if(draft.id, DraftStatus.PENDING, DraftStatus.CONFIRMED):
                return ConfirmResult(
                    draft.id,
                    ConfirmOutcome.ALREADY_CONFIRMED,
                    f"draft {draft.id} was confirmed already: nothing was sent again",
                )
            uow.commit()
        result = await self._edits.user_stop(draft.symbol, draft.trigger_price, draft.qty, draft.id)
        if not result.protected:
            if result.order is not None and not result.order.is_terminal:
                # It may be at the broker (its answer was lost, or its ack never came and
                # the cancel is not confirmed): reopening would let a second tap send a
                # second stop-sell. The reconciler settles it.
                return ConfirmResult(draft.id, ConfirmOutcome.UNKNOWN, result.message, result.order)
            self._reopen(draft.id)
            return ConfirmResult(draft.id, ConfirmOutcome.REJECTED, result.message, result.order)
        queued = f" (queued: {verdict.reason})" if verdict.queued else ""
        outcome = ConfirmOutcome.QUEUED if verdict.queued else ConfirmOutcome.PLACED
        return ConfirmResult(
            draft.id,
            outcome,
            f"stop-sell {result.qty} {draft.symbol} @ {draft.trigger_price} replaces "
            f"the protection{queued}",
            result.order,
        )

    def _protection(self) -> ProtectionManager:
        return self._edits.manager

    def _request(self, draft: DraftRow, *, attempt: int) -> OrderRequest:
        return draft_request(self._ctx.account.namespace, draft, attempt)

    def _expire(self, draft_id: int) -> None:
        with self._ctx.ledger.unit_of_work() as uow:
            uow.drafts.transition_if(draft_id, DraftStatus.PENDING, DraftStatus.EXPIRED)
            uow.commit()

    def _attempt(self, uow: UnitOfWork, draft_id: int) -> int:
        id_prefix = prefix(self._ctx.account.namespace, draft_scope(draft_id), Purpose.ENTRY)
        existing = [o.client_order_id for o in uow.orders.for_draft(draft_id)]
        return next_attempt(existing, id_prefix)

    def _reopen(self, draft_id: int) -> None:
        with self._ctx.ledger.unit_of_work() as uow:
            if uow.drafts.transition_if(draft_id, DraftStatus.CONFIRMED, DraftStatus.PENDING):
                ttl = timedelta(minutes=self._ctx.sessions.draft_ttl_minutes)
                uow.drafts.require(draft_id).expires_at = self._ctx.now() + ttl
            uow.commit()


__all__ = ["DraftConfirmer"]
