"""Post-entry protection: every filled share gets a broker-side stop, verified.

On a fill of an entry the protection task
1. settles a partial fill first (`partial_fill_wait_seconds` for the rest, then cancel
   the remainder and CONFIRM the cancel: a still-working buy makes the sell a wash trade),
2. climbs the fallback ladder (core.protection_ladder) for the filled quantity not yet
   covered: trailing stop (trail from TrailPolicy, or the day's /trail) -> plain stop at
   the draft's initial stop -> UNPROTECTED alert (and, if configured, flatten), each
   rung checked against the capability matrix, written as an intent, sent once, and
   VERIFIED accepted at the broker (stream, or a query after the timeout);
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
from decimal import Decimal

from loguru import logger

from core.capabilities import check
from core.domain import OrderRole, OrderStatus, Side
from core.engine_context import EngineContext
from core.events import ProtectionKind
from core.ids import Purpose, order_scope, prefix
from core.ledger import ProtectionStatus, UnitOfWork
from core.order_tracker import OrderTracker
from core.order_views import OrderView, TrackOutcome
from core.placement import Placer
from core.protection_alerts import ProtectionResult
from core.protection_book import ProtectionBook
from core.protection_ladder import Flatten, ProtectionLadder, Staged, whole_shares

S = OrderStatus
_whole = whole_shares  # the name core.protection_edits imports


class ProtectionManager(ProtectionLadder):
    """The ladder (core.protection_ladder), and when to climb it: entry tasks, the fill
    hook, the reconcile path, link upkeep."""

    def __init__(
        self,
        ctx: EngineContext,
        tracker: OrderTracker,
        placer: Placer,
        book: ProtectionBook,
        flatten: Flatten,
    ) -> None:
        super().__init__(ctx, tracker, placer, book, flatten)
        self._entry_tasks: dict[int, asyncio.Task[object]] = {}
        self._entry_ids: dict[int, str] = {}  # entry order id -> client order id
        self._fractions: dict[str, Decimal] = {}  # unprotected fraction already said

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
        staged = outcome.staged if isinstance(outcome.staged, Staged) else None
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

    async def _entry_task(self, entry: OrderView, staged: Staged | None = None) -> None:
        if staged is not None:
            async with self._ctx.locks(entry.symbol):
                if self._ctx.halted:
                    if staged.intent is not None:
                        await self._tracker.submit_refused(
                            staged.intent.client_order_id, "not sent: a kill is running"
                        )
                    return
                if staged.waiting_entries:  # known from the fill's own unit of work
                    await self._clear_blocking_entries(
                        entry.symbol, staged.request.qty, keep=entry.id
                    )
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
        # The wait runs from the entry's first fill, so a task resumed after a restart
        # waits only what is left of it.
        wait = max(
            self._ctx.protection.partial_fill_wait_seconds - self._since_first_fill(entry), 0.0
        )
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

    def _since_first_fill(self, entry: OrderView) -> float:
        with self._ctx.ledger.unit_of_work(read_only=True) as uow:
            fills = uow.fills.for_order(entry.id)
        if not fills:
            return 0.0
        return max((self._ctx.now() - fills[0].at).total_seconds(), 0.0)

    def _resume_partial_entries(self, symbol: str) -> bool:
        """Entries of `symbol` with fills and a buy remainder still working, and no task
        (a restart during the partial-fill wait): resume their task, which waits what is
        left of the wait, cancels the remainder and protects the total. True if any: a
        sell now would be a wash trade against the working buy."""
        resumed = False
        for entry in self.book.live_orders(symbol, side=Side.BUY, role=OrderRole.ENTRY):
            if entry.filled_qty <= 0:
                continue
            resumed = True
            running = self._entry_tasks.get(entry.id)
            if running is None or running.done():
                logger.info("{}: resuming its partial-fill wait", entry.client_order_id)
                self._entry_ids[entry.id] = entry.client_order_id
                self._entry_tasks[entry.id] = self._ctx.spawn(
                    self._entry_task(entry), name=f"protect-{entry.client_order_id}"
                )
        return resumed

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
        if staged.waiting_entries:
            await self._clear_blocking_entries(entry.symbol, staged.request.qty, keep=entry.id)
        return await self.ladder(entry.symbol, staged.request.qty, entry=entry, staged=staged)

    async def _clear_blocking_entries(
        self, symbol: str, qty: Decimal, *, keep: int | None = None
    ) -> None:
        """Held shares outrank a waiting entry. At a broker that refuses opposite-side
        orders, our stop-buy still working on the symbol would make the protective sell a
        wash trade and leave the held shares unprotected for as long as it waits: cancel
        it (confirmed; said in the chat) before the sell. Call with the symbol's lock held.
        Entries with fills are left to their own task (the partial-fill policy)."""
        ctx = self._ctx
        if not ctx.broker.capabilities.refuses_opposite_side:
            return
        waiting = [
            v
            for v in self.book.live_orders(symbol, side=Side.BUY, role=OrderRole.ENTRY)
            if v.id != keep and v.filled_qty == 0
        ]
        for view in waiting:
            await self.announce.failed(
                symbol,
                qty,
                ProtectionKind.TRAILING,
                f"our stop-buy {view.client_order_id} ({view.qty.normalize():f} @ "
                f"{view.stop_price}) still works, and the broker refuses a sell against it "
                "as a wash trade: it is canceled so the held shares can be protected",
                None,
                None,
            )
            await self._placer.cancel_and_confirm(view, ctx.sessions.cancel_confirm_timeout_seconds)

    def _stage_trailing(self, entry: OrderView) -> Staged | None:
        with self._tracker.unit() as uow:
            staged = self.stage_in(uow, entry)
            uow.commit()
        return staged

    def stage_on_fill(self, uow: UnitOfWork, entry: OrderView) -> Staged | None:
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

    def stage_in(self, uow: UnitOfWork, entry: OrderView) -> Staged | None:
        """What is uncovered, the trail, the capability check and, if it passes, the
        trailing stop's intent, in the caller's unit of work (the hot path)."""
        ctx = self._ctx
        id_prefix = prefix(ctx.account.namespace, order_scope(entry.id), Purpose.TRAILING)
        plan = self.book.entry_plan(uow, entry, id_prefix)
        qty = whole_shares(plan.uncovered)
        if qty <= 0:
            return None
        pct = self.entry_trail_pct(uow, entry)  # frozen on the draft (docs/one-stop.md)
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
        return Staged(request, verdict, intent, plan.waiting_entries)

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
            if self._resume_partial_entries(symbol):
                return []  # the resumed task protects once the remainder is settled
            results: list[ProtectionResult] = []
            for entry in self.book.entries_with_fills(symbol):
                result = await self._protect_entry_locked(entry.id)
                if result is not None:
                    results.append(result)
            uncovered = self.book.symbol_uncovered(symbol)
            qty = whole_shares(uncovered)
            if qty > 0:
                logger.info("{}: {} shares without protection ({})", symbol, qty, reason)
                await self._clear_blocking_entries(symbol, qty)
                results.append(await self.ladder(symbol, qty, entry=None))
            await self._say_fraction(symbol, uncovered - qty)
            return results

    async def _say_fraction(self, symbol: str, fraction: Decimal) -> None:
        """A fractional share cannot be protected (fractions only with DAY orders, and the
        protection is GTC): say so once per fraction, never floor it away silently."""
        key = symbol.upper()
        if fraction <= 0:
            self._fractions.pop(key, None)
            return
        if self._fractions.get(key) == fraction:
            return
        self._fractions[key] = fraction
        await self.announce.unprotected(
            symbol,
            fraction,
            f"a fraction of a share ({fraction.normalize():f}) cannot carry a broker-side "
            "stop (fractional orders are DAY only; the protection is GTC): [Flatten "
            f"{key}] sells it with the rest",
            False,
        )

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


__all__ = ["ProtectionManager", "ProtectionResult", "Staged"]
