"""Confirming drafts: exactly once, risk and capability first, intent before the broker.

Confirm checks the capability matrix and every risk rule first (refusals are returned with
their explanations and the draft stays pending), then moves the draft PENDING ->
CONFIRMED and writes the order intent in ONE unit of work: that conditional update is the
double-tap guard (a second confirm finds the draft confirmed and is a no-op that says
so). Only then is the broker called, once. A draft whose order was refused or never
reached the broker is reopened: confirming it again is a new attempt, with a new client
order id. A stop-sell draft replaces the position's protection (core.protection_edits).
"""

from __future__ import annotations

from datetime import timedelta

from core.capabilities import check
from core.domain import OrderRequest, OrderRole, Side
from core.draft_models import ConfirmOutcome, ConfirmResult, draft_request
from core.engine_context import EngineContext
from core.events import RiskRefused
from core.ids import Purpose, draft_scope, next_attempt, prefix
from core.ledger import DraftRow, DraftStatus, UnitOfWork
from core.order_tracker import OrderTracker
from core.order_views import OrderView
from core.placement import PlaceOutcome, Placer
from core.protection_edits import ProtectionEdits
from core.risk_gate import RiskGate


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

    async def confirm(self, draft_id: int) -> ConfirmResult:
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
        with ctx.ledger.unit_of_work() as uow:
            if not uow.drafts.transition_if(draft.id, DraftStatus.PENDING, DraftStatus.CONFIRMED):
                return ConfirmResult(
                    draft.id,
                    ConfirmOutcome.ALREADY_CONFIRMED,
                    f"draft {draft.id} was confirmed already: nothing was sent again",
                )
            request = self._request(draft, attempt=self._attempt(uow, draft.id))
            intent = self._tracker.record_intent_in(
                uow, request, OrderRole.ENTRY, draft_id=draft.id
            )
            uow.commit()
        placement = await self._placer.send(intent, request)
        order = placement.order
        if placement.outcome in (PlaceOutcome.REJECTED, PlaceOutcome.NEVER_REACHED):
            self._reopen(draft.id)
            outcome = (
                ConfirmOutcome.REJECTED
                if placement.outcome is PlaceOutcome.REJECTED
                else ConfirmOutcome.NEVER_REACHED
            )
            return ConfirmResult(draft.id, outcome, f"not placed: {placement.reason}", order)
        if placement.outcome is PlaceOutcome.UNKNOWN:
            return ConfirmResult(
                draft.id,
                ConfirmOutcome.UNKNOWN,
                f"the broker's answer was lost ({placement.reason}); checking by "
                "client order id, nothing will be sent twice",
                order,
            )
        if verdict.queued:
            return ConfirmResult(
                draft.id, ConfirmOutcome.QUEUED, f"accepted, queued: {verdict.reason}", order
            )
        outcome = (
            ConfirmOutcome.PLACED
            if placement.outcome is PlaceOutcome.ACCEPTED
            else ConfirmOutcome.SENT
        )
        return ConfirmResult(
            draft.id,
            outcome,
            f"stop-buy {draft.qty} {draft.symbol} @ {draft.trigger_price} {outcome}",
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
