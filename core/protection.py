"""Post-entry protection: every filled share gets a broker-side stop, verified.

On a fill of an entry the protection task
1. settles a partial fill first (`partial_fill_wait_seconds` for the rest, then cancel
   the remainder and CONFIRM the cancel: a still-working buy makes the sell a wash trade),
2. climbs the fallback ladder for the filled quantity not yet covered:
   trailing stop (trail from TrailPolicy, or the day's /trail) -> plain stop at the
   draft's initial stop -> UNPROTECTED alert (and, if configured, flatten),
   each rung checked against the capability matrix, written as an intent, sent once,
   and VERIFIED accepted at the broker (stream, or a query after the timeout);
3. links entry and protection in `protection_links` and announces ProtectionPlaced.

What is "uncovered" is always recomputed under the symbol's lock from the ledger:
min(the entry's filled qty not linked to a protection, the position minus every live
sell order's remaining qty). So the event path, the reconciler and a retry can all ask
for protection at once and only the first one places an order.

Outside regular hours the matrix says stops are queued (GTC, inactive until the open):
they are placed, and an alert says the position is unprotected until then.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from loguru import logger

from core.capabilities import Capability, check
from core.clock import NEW_YORK
from core.crashpoints import AFTER_PROTECTION_SENT
from core.domain import (
    ZERO,
    OrderRequest,
    OrderRole,
    OrderStatus,
    OrderType,
    Side,
    Symbol,
    TickRounding,
    TimeInForce,
    round_to_tick,
)
from core.engine_context import EngineContext
from core.events import (
    ProtectionFallback,
    ProtectionKind,
)
from core.ids import Purpose, client_order_id, next_attempt, order_scope, prefix, symbol_scope
from core.ledger import ProtectionStatus, UnitOfWork
from core.order_tracker import OrderTracker
from core.order_views import OrderView, TrackOutcome
from core.placement import PlaceOutcome, Placer
from core.protection_alerts import ProtectionAnnouncer, ProtectionResult
from core.protection_book import ProtectionBook
from core.trail import RuntimeTrail, TrailPolicy

S = OrderStatus
HUNDRED = Decimal(100)
WORKING = (S.ACCEPTED, S.PARTIALLY_FILLED, S.FILLED)
Flatten = Callable[[str, str], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class _Staged:
    request: OrderRequest
    verdict: Capability
    intent: OrderView | None  # None when the capability check refused it


class ProtectionManager:
    def __init__(
        self,
        ctx: EngineContext,
        tracker: OrderTracker,
        placer: Placer,
        book: ProtectionBook,
        flatten: Flatten,
    ) -> None:
        self._ctx = ctx
        self._tracker = tracker
        self._placer = placer
        self.book = book
        self._flatten = flatten
        self._policy = TrailPolicy(ctx.protection, ctx.events, ctx.calendar)
        self.announce = ProtectionAnnouncer(ctx)
        self.runtime: dict[str, RuntimeTrail] = {}
        self._entry_tasks: dict[int, asyncio.Task[object]] = {}
        self._entry_ids: dict[int, str] = {}  # entry order id -> client order id

    # --- hooks ---------------------------------------------------------------------------

    def on_entry_outcome(self, outcome: TrackOutcome) -> None:
        """An entry order changed: make sure a protection task covers its fills."""
        entry = outcome.order
        if entry.filled_qty <= 0:
            return
        self._entry_ids[entry.id] = entry.client_order_id
        running = self._entry_tasks.get(entry.id)
        if running is not None and not running.done():
            return  # the running task re-checks what is uncovered before it ends
        staged = outcome.staged if isinstance(outcome.staged, _Staged) else None
        self._entry_tasks[entry.id] = self._ctx.spawn(
            self._entry_task(entry, staged), name=f"protect-{entry.client_order_id}"
        )

    def entry_task_running(self, symbol: str) -> bool:
        return any(
            not task.done() and self._tracker_symbol(entry_id) == symbol.upper()
            for entry_id, task in self._entry_tasks.items()
        )

    def _tracker_symbol(self, entry_id: int) -> str | None:
        entry = self.book.order_by_id(entry_id)
        return None if entry is None else entry.symbol.upper()

    # --- entry protection -----------------------------------------------------------------

    async def _entry_task(self, entry: OrderView, staged: _Staged | None = None) -> None:
        if staged is not None:
            async with self._ctx.locks(entry.symbol):
                if self._ctx.halted:
                    if staged.intent is not None:
                        await self._tracker.submit_refused(
                            staged.intent.client_order_id, "not sent: a kill is running"
                        )
                    return
                result = await self.ladder(
                    entry.symbol, staged.request.qty, entry=entry, staged=staged
                )
            if not result.protected:
                return  # the ladder ended UNPROTECTED (alerted): the [Retry] is the user's
        if not entry.is_terminal:
            entry = await self._settle_partial(entry)
        for _ in range(3):  # a fill can race in while we work: look again
            again = await self.protect_entry(entry.id, entry.symbol)
            if again is None or not again.protected:
                return

    async def _settle_partial(self, entry: OrderView) -> OrderView:
        wait = self._ctx.protection.partial_fill_wait_seconds
        cid = entry.client_order_id
        view = await self._tracker.wait_for(cid, lambda v: v.is_terminal, wait)
        if view.is_terminal:
            return view
        logger.info(
            "{}: {} of {} filled after {} s; canceling the rest",
            cid,
            view.filled_qty,
            view.qty,
            wait,
        )
        view = await self._placer.cancel_and_confirm(
            view, self._ctx.sessions.cancel_confirm_timeout_seconds
        )
        if not view.is_terminal:
            logger.warning("{}: the remainder's cancel is not confirmed; protecting anyway", cid)
        return view

    async def protect_entry(
        self, entry_id: int, symbol: str | None = None
    ) -> ProtectionResult | None:
        if symbol is None:
            symbol = self.book.require_order(entry_id).symbol
        async with self._ctx.locks(symbol):
            return await self._protect_entry_locked(entry_id)

    async def _protect_entry_locked(self, entry_id: int) -> ProtectionResult | None:
        if self._ctx.halted:
            return None
        entry = self._fresh(entry_id)
        staged = self._stage_trailing(entry)
        if staged is None:
            return None
        return await self.ladder(entry.symbol, staged.request.qty, entry=entry, staged=staged)

    def _stage_trailing(self, entry: OrderView) -> _Staged | None:
        with self._tracker.unit() as uow:
            staged = self.stage_in(uow, entry)
            uow.commit()
        return staged

    def stage_on_fill(self, uow: UnitOfWork, entry: OrderView) -> _Staged | None:
        """Fill hook (inside the fill's transaction): a completely filled entry with no
        protection task yet gets its trailing stop's intent written right there."""
        if (
            self._ctx.halted
            or entry.role is not OrderRole.ENTRY
            or entry.status is not OrderStatus.FILLED
        ):
            return None
        running = self._entry_tasks.get(entry.id)
        if running is not None and not running.done():
            return None  # that task protects it (and would not know of this intent)
        return self.stage_in(uow, entry)

    def stage_in(self, uow: UnitOfWork, entry: OrderView) -> _Staged | None:
        """What is uncovered, the trail, the capability check and, if it passes, the
        trailing stop's intent, in the caller's unit of work (the hot path)."""
        ctx = self._ctx
        id_prefix = prefix(ctx.account.namespace, order_scope(entry.id), Purpose.TRAILING)
        plan = self.book.entry_plan(uow, entry, id_prefix)
        qty = _whole(plan.uncovered)
        if qty <= 0:
            return None
        pct = self.trail_pct(entry.symbol)[0]
        request = self.request(
            entry.symbol,
            qty,
            Purpose.TRAILING,
            entry,
            trail_pct=pct,
            known_ids=plan.trailing_ids,
        )
        verdict = check(ctx.broker.capabilities, request, ctx.phase())
        intent = None
        if verdict.allowed:
            intent = self._tracker.record_intent_in(
                uow, request, OrderRole.PROTECTION, parent_order_id=entry.id
            )
        return _Staged(request, verdict, intent)

    def _fresh(self, entry_id: int) -> OrderView:
        """The entry as the tracker last wrote it (memory), else from the ledger."""
        cid = self._entry_ids.get(entry_id)
        view = self._tracker.view(cid) if cid is not None else None
        return view if view is not None else self.book.require_order(entry_id)

    async def ensure_symbol(self, symbol: str, reason: str) -> list[ProtectionResult]:
        """Protect whatever part of a long position no live sell covers (reconcile path)."""
        async with self._ctx.locks(symbol):
            if self._ctx.halted or self.entry_task_running(symbol):
                return []
            results: list[ProtectionResult] = []
            for entry in self.book.entries_with_fills(symbol):
                result = await self._protect_entry_locked(entry.id)
                if result is not None:
                    results.append(result)
            qty = _whole(self.book.symbol_uncovered(symbol))
            if qty > 0:
                logger.info("{}: {} shares without protection ({})", symbol, qty, reason)
                results.append(await self.ladder(symbol, qty, entry=None))
            return results

    # --- the ladder ----------------------------------------------------------------------

    def trail_pct(self, symbol: str) -> tuple[Decimal, str]:
        day = self._ctx.now().astimezone(NEW_YORK).date()
        bars = self._ctx.market.recent_bars(symbol)
        decision = self._policy.decide(
            symbol, bars, day=day, runtime=self.runtime.get(symbol.upper())
        )
        return decision.trail_pct, decision.explanation

    async def ladder(
        self,
        symbol: str,
        qty: Decimal,
        *,
        entry: OrderView | None,
        trail: Decimal | None = None,
        staged: _Staged | None = None,
    ) -> ProtectionResult:
        """Trailing -> plain stop at the entry draft's initial stop -> UNPROTECTED
        (-> flatten). Call with the symbol lock held."""
        cfg = self._ctx.protection
        auto = cfg.auto_flatten_when_unprotected
        last_resort = ProtectionFallback.FLATTEN if auto else ProtectionFallback.ALERT_ONLY
        if staged is not None:
            result = await self.rung(staged.request, ProtectionKind.TRAILING, entry, staged=staged)
        else:
            pct = trail if trail is not None else self.trail_pct(symbol)[0]
            trailing = self.request(symbol, qty, Purpose.TRAILING, entry, trail_pct=pct)
            result = await self.rung(trailing, ProtectionKind.TRAILING, entry)
        if result.protected:
            return result
        # Looked up only now: the plain stop is the rare path, the trailing one is hot.
        initial_stop = self.book.initial_stop(entry) if entry is not None else None
        can_stop = cfg.fallback_to_plain_stop and initial_stop is not None and initial_stop > 0
        await self._failed(
            symbol,
            qty,
            ProtectionKind.TRAILING,
            result.message,
            entry,
            ProtectionFallback.PLAIN_STOP if can_stop else last_resort,
        )
        if can_stop:
            assert initial_stop is not None
            stop = round_to_tick(initial_stop, TickRounding.DOWN)
            plain = self.request(symbol, qty, Purpose.PLAIN_STOP, entry, stop_price=stop)
            result = await self.rung(plain, ProtectionKind.STOP, entry)
            if result.protected:
                return result
            await self._failed(symbol, qty, ProtectionKind.STOP, result.message, entry, last_resort)
        return await self._unprotected(symbol, qty, result.message, auto)

    def request(
        self,
        symbol: str,
        qty: Decimal,
        purpose: Purpose,
        entry: OrderView | None,
        *,
        trail_pct: Decimal | None = None,
        stop_price: Decimal | None = None,
        scope: str | None = None,
        known_ids: Sequence[str] | None = None,
    ) -> OrderRequest:
        ns = self._ctx.account.namespace
        scope = scope or (order_scope(entry.id) if entry is not None else symbol_scope(symbol))
        id_prefix = prefix(ns, scope, purpose)
        existing = self.book.client_ids_with_prefix(id_prefix) if known_ids is None else known_ids
        attempt = next_attempt(list(existing), id_prefix)
        return OrderRequest(
            client_order_id=client_order_id(ns, scope, purpose, attempt),
            symbol=Symbol(symbol.upper()),
            side=Side.SELL,
            qty=qty,
            order_type=OrderType.TRAILING_STOP if trail_pct is not None else OrderType.STOP,
            # GTC: a fill near the close must stay protected in the next session.
            time_in_force=TimeInForce.GTC,
            trail_percent=trail_pct,
            stop_price=stop_price,
        )

    async def rung(
        self,
        request: OrderRequest,
        kind: ProtectionKind,
        entry: OrderView | None,
        *,
        staged: _Staged | None = None,
    ) -> ProtectionResult:
        """One attempt: capability, intent, send, verify, link (`staged`: the first two
        were done already)."""
        ctx, symbol, qty = self._ctx, request.symbol, request.qty
        verdict = (
            staged.verdict
            if staged is not None
            else check(ctx.broker.capabilities, request, ctx.phase())
        )
        if not verdict.allowed:
            return ProtectionResult(symbol, qty, False, kind, message=verdict.reason)
        intent = staged.intent if staged is not None else None
        if intent is None:
            parent = entry.id if entry is not None else None
            intent = self._tracker.record_intent(
                request, OrderRole.PROTECTION, parent_order_id=parent
            )
        placement = await self._placer.send(intent, request, sent_label=AFTER_PROTECTION_SENT)
        if placement.outcome in (PlaceOutcome.REJECTED, PlaceOutcome.NEVER_REACHED):
            return ProtectionResult(
                symbol, qty, False, kind, placement.order, message=placement.reason or "rejected"
            )
        if placement.outcome is PlaceOutcome.UNKNOWN:
            return ProtectionResult(
                symbol,
                qty,
                False,
                kind,
                placement.order,
                message=f"outcome unknown ({placement.reason})",
            )
        timeout = ctx.protection.protection_confirm_timeout_seconds
        view = await self._placer.confirm_accepted(placement.order, timeout)
        if view.status not in WORKING:
            if not view.is_terminal:  # never acknowledged: take it back before a fallback
                view = await self._placer.cancel_and_confirm(
                    view, ctx.sessions.cancel_confirm_timeout_seconds
                )
                reason = f"not acknowledged within {timeout} s"
            else:
                reason = view.reject_reason or f"the broker ended it as {view.status}"
            return ProtectionResult(symbol, qty, False, kind, view, message=reason)
        await self.placed(view, kind, entry, queued=verdict.queued)
        return ProtectionResult(
            symbol, qty, True, kind, view, queued=verdict.queued, message=verdict.reason
        )

    async def placed(
        self, view: OrderView, kind: ProtectionKind, entry: OrderView | None, *, queued: bool
    ) -> None:
        await self.announce.placed(view, kind, entry, queued=queued)

    async def _failed(
        self,
        symbol: str,
        qty: Decimal,
        kind: ProtectionKind,
        reason: str,
        entry: OrderView | None,
        fallback: ProtectionFallback,
    ) -> None:
        await self.announce.failed(symbol, qty, kind, reason, entry, fallback)

    async def _unprotected(
        self, symbol: str, qty: Decimal, reason: str, auto: bool
    ) -> ProtectionResult:
        await self.announce.unprotected(symbol, qty, reason, auto)
        if auto:
            await self._flatten(symbol, f"unprotected: {reason}")
        return ProtectionResult(symbol, qty, False, None, message=reason)

    # --- link upkeep ---------------------------------------------------------------------

    def on_protection_outcome(self, outcome: TrackOutcome) -> None:
        """A protection order ended: close its links; if shares lost their stop, re-protect."""
        order = outcome.order
        if not order.is_terminal or outcome.previous.is_terminal:
            return
        status = {
            S.FILLED: ProtectionStatus.CLOSED,
            S.REPLACED: ProtectionStatus.SUPERSEDED,
        }.get(order.status, ProtectionStatus.CANCELED)
        self.book.set_link_status(order.id, status)
        if order.status is not S.FILLED and not self._ctx.halted:
            self._ctx.spawn(
                self.ensure_symbol(order.symbol, f"{order.client_order_id} {order.status}"),
                name=f"reprotect-{order.symbol}",
            )


def _whole(qty: Decimal) -> Decimal:
    """Protect whole shares (fractional quantities are only accepted with DAY)."""
    return max(qty.to_integral_value(rounding=ROUND_FLOOR), ZERO)


__all__ = ["ProtectionManager", "ProtectionResult"]
