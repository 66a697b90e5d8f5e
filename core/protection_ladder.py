"""The fallback ladder: how one protection order gets placed, verified, or given up.

trailing stop (an entry's: the trail frozen on its draft, docs/one-stop.md; otherwise
TrailPolicy, or the day's /trail) -> plain stop at the entry draft's initial stop (the
same one stop) -> UNPROTECTED alert (and, if configured, flatten). Each rung is
checked against the capability matrix, written as an intent, sent once, and VERIFIED
accepted at the broker (stream, or a query after the timeout). Call with the symbol's
lock held. `core.protection.ProtectionManager` decides when and for how many shares.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

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
from core.events import ProtectionFallback, ProtectionKind
from core.ids import Purpose, client_order_id, next_attempt, order_scope, prefix, symbol_scope
from core.ledger import UnitOfWork
from core.order_tracker import OrderTracker
from core.order_views import OrderView
from core.placement import PlaceOutcome, Placer
from core.protection_alerts import ProtectionAnnouncer, ProtectionResult
from core.protection_book import ProtectionBook
from core.trail import RuntimeTrail, TrailPolicy

S = OrderStatus
WORKING = (S.ACCEPTED, S.PARTIALLY_FILLED, S.FILLED)
Flatten = Callable[[str, str], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Staged:
    """A trailing stop prepared in a unit of work (the fill's own, on the hot path)."""

    request: OrderRequest
    verdict: Capability
    intent: OrderView | None  # None when the capability check refused it
    # Our other entries of the symbol working with nothing filled (core.protection_book).
    waiting_entries: tuple[int, ...] = ()


class ProtectionLadder:
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

    def trail_pct(self, symbol: str) -> tuple[Decimal, str]:
        day = self._ctx.now().astimezone(NEW_YORK).date()
        bars = self._ctx.market.recent_bars(symbol)
        decision = self._policy.decide(
            symbol, bars, day=day, runtime=self.runtime.get(symbol.upper())
        )
        return decision.trail_pct, decision.explanation

    def entry_trail_pct(self, uow: UnitOfWork, entry: OrderView) -> Decimal:
        """The trail of an entry's protection: the one frozen on its draft when the
        trade was sized (a /trail after the confirm applies to later drafts), else the
        policy's now (an entry without a draft, or a draft from before the one stop)."""
        if entry.draft_id is not None:
            draft = uow.drafts.get(entry.draft_id)
            if draft is not None and draft.trail_percent is not None:
                return draft.trail_percent
        return self.trail_pct(entry.symbol)[0]

    async def ladder(
        self,
        symbol: str,
        qty: Decimal,
        *,
        entry: OrderView | None,
        trail: Decimal | None = None,
        staged: Staged | None = None,
    ) -> ProtectionResult:
        """Trailing -> plain stop at the entry draft's initial stop -> UNPROTECTED
        (-> flatten). Call with the symbol lock held."""
        cfg = self._ctx.protection
        auto = cfg.auto_flatten_when_unprotected
        last_resort = ProtectionFallback.FLATTEN if auto else ProtectionFallback.ALERT_ONLY
        if staged is not None:
            result = await self.rung(staged.request, ProtectionKind.TRAILING, entry, staged=staged)
        else:
            pct = trail if trail is not None else self._ladder_trail(symbol, entry)
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

    def _ladder_trail(self, symbol: str, entry: OrderView | None) -> Decimal:
        if entry is None:
            return self.trail_pct(symbol)[0]
        with self._ctx.ledger.unit_of_work(read_only=True) as uow:
            return self.entry_trail_pct(uow, entry)

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
        staged: Staged | None = None,
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
        fallback: ProtectionFallback | None,
    ) -> None:
        await self.announce.failed(symbol, qty, kind, reason, entry, fallback)

    async def _unprotected(
        self, symbol: str, qty: Decimal, reason: str, auto: bool
    ) -> ProtectionResult:
        await self.announce.unprotected(symbol, qty, reason, auto)
        if auto:
            await self._flatten(symbol, f"unprotected: {reason}")
        return ProtectionResult(symbol, qty, False, None, message=reason)


def whole_shares(qty: Decimal) -> Decimal:
    """Protect whole shares (fractional quantities are only accepted with DAY)."""
    return max(qty.to_integral_value(rounding=ROUND_FLOOR), ZERO)


__all__ = ["Flatten", "ProtectionLadder", "Staged", "whole_shares"]
