"""Reconcile: bring the ledger to the broker's truth (the broker wins).

Runs at start (startup and crash recovery are this same path), after every stream
reconnect and every `reconcile_every_seconds`:
1. fetch the broker's open orders, recent orders, fills since the checkpoint and positions;
2. apply them through the order tracker (missed events, fills by execution id; unknown
   orders adopted as EXTERNAL);
3. resolve intents stuck in PENDING_SUBMIT by client-id lookup: found -> ours, recorded;
   definitively absent -> REJECTED "never reached the broker" and the draft reopened.
   An intent is never judged while its send is in flight, nor until
   `unacknowledged_order_seconds` after its send ended (a timed-out request can still
   land); one written by a previous process is judged at once (none of its requests is
   in flight after a restart);
4. compare positions with the ledger's (fills + adoptions): a difference is adopted as the
   new baseline; on the very first reconcile of an account that is simply how the ledger
   learns the account, later it is an unexplained change -> SAFE MODE and an alert
   (checked twice: fills and positions are separate queries and a fill can fall between);
5. cancel protection orders whose position is gone, protect every long share no live sell
   covers (the protection path, under the symbol lock);
6. return a `ReconcileReport` and publish ReconcileCompleted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import Decimal

from loguru import logger

from core.book import ADOPTED
from core.book_cache import shared_book
from core.broker import BrokerError, NotFound
from core.clock import NEW_YORK
from core.domain import BrokerOrderId, OrderRole, OrderSnapshot, OrderStatus, Position, Side
from core.engine_context import EngineContext
from core.events import JsonValue, ReconcileCompleted
from core.ledger import DraftStatus, PositionSource, ProtectionStatus
from core.order_tracker import NEVER_REACHED, OrderTracker
from core.order_views import OrderView, TrackOutcome
from core.placement import Placer
from core.protection import ProtectionManager
from core.protection_book import ProtectionBook
from core.session import SafeModeReason
from core.trading_day import TradingDay

# The risk event marking an account's first reconcile: what the broker held then was
# learnt (adopted silently); every later unexplained difference is a mismatch.
ACCOUNT_LEARNT = "first_reconcile"

React = Callable[[Sequence[TrackOutcome]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class PositionCheck:
    symbol: str
    broker_qty: Decimal
    ledger_qty: Decimal

    @property
    def agrees(self) -> bool:
        return self.broker_qty == self.ledger_qty


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    account: str
    at: datetime
    reason: str
    in_sync: bool
    orders_seen: int = 0
    orders_updated: tuple[str, ...] = ()
    orders_adopted: tuple[str, ...] = ()
    fills_added: int = 0
    intents_resolved: tuple[str, ...] = ()
    positions: tuple[PositionCheck, ...] = ()
    mismatches: tuple[str, ...] = ()
    adopted_positions: tuple[str, ...] = ()
    protected: tuple[str, ...] = ()
    orphans_canceled: tuple[str, ...] = ()
    errors: tuple[str, ...] = field(default=())

    def summary(self) -> dict[str, JsonValue]:
        return {
            "reason": self.reason,
            "orders_seen": self.orders_seen,
            "orders_updated": list(self.orders_updated),
            "orders_adopted": list(self.orders_adopted),
            "fills_added": self.fills_added,
            "intents_resolved": list(self.intents_resolved),
            "positions": {p.symbol: str(p.broker_qty) for p in self.positions},
            "mismatches": list(self.mismatches),
            "adopted_positions": list(self.adopted_positions),
            "protected": list(self.protected),
            "orphans_canceled": list(self.orphans_canceled),
            "errors": list(self.errors),
        }


class Reconciler:
    def __init__(
        self,
        ctx: EngineContext,
        tracker: OrderTracker,
        protection: ProtectionManager,
        book: ProtectionBook,
        day: TradingDay,
        react: React,
        placer: Placer,
    ) -> None:
        self._ctx = ctx
        self._tracker = tracker
        self._placer = placer
        self._protection = protection
        self._book = book
        self._day = day
        self._react = react
        self._lock = asyncio.Lock()
        self.last: ReconcileReport | None = None
        self.mismatch_active = False

    async def run(self, reason: str) -> ReconcileReport:
        async with self._lock:
            try:
                report = await self._run(reason)
            except BrokerError as exc:
                logger.warning("reconcile ({}) could not reach the broker: {}", reason, exc)
                report = ReconcileReport(
                    self._ctx.account.name,
                    self._ctx.now(),
                    reason,
                    False,
                    errors=(f"broker: {exc}",),
                )
            self.last = report
            event = ReconcileCompleted(
                at=report.at,
                account=report.account,
                in_sync=report.in_sync,
                summary=report.summary(),
            )
            await self._ctx.publish([event])
            return report

    def _since(self) -> datetime:
        ctx = self._ctx
        now = ctx.now()
        midnight = datetime.combine(now.astimezone(NEW_YORK).date(), time(0), tzinfo=NEW_YORK)
        candidates = [midnight, now - timedelta(days=1)]
        live = self._book.live_orders()
        candidates += [v.created_at for v in live]
        with ctx.ledger.unit_of_work(read_only=True) as uow:
            latest = uow.positions.latest(
                ctx.account.row_id, PositionSource.BROKER, include_flat=True
            )
            if latest:
                candidates.append(max(row.at for row in latest.values()))
        return min(candidates) - timedelta(minutes=1)

    async def _run(self, reason: str) -> ReconcileReport:
        ctx, broker = self._ctx, self._ctx.broker
        errors: list[str] = []
        since = self._since()
        # Every await below lets stream events in: what changes after this mark is newer
        # than the snapshots, which must not take it back (the broker wins, but only with
        # news).
        mark = self._tracker.mark_query()
        snapshots: dict[str, OrderSnapshot] = {}
        for snapshot in await broker.list_orders(open_only=False, since=since):
            snapshots[snapshot.broker_order_id] = snapshot
        for snapshot in await broker.list_orders(open_only=True):
            snapshots[snapshot.broker_order_id] = snapshot
        fills = await broker.fills_since(since)
        wanted = {v.broker_order_id for v in self._book.live_orders() if v.broker_order_id}
        wanted |= {f.broker_order_id for f in fills}
        for broker_id in sorted(wanted - set(snapshots)):
            try:
                snapshots[broker_id] = await broker.get_order(BrokerOrderId(broker_id))
            except NotFound:
                errors.append(f"order {broker_id} is in the ledger but unknown to the broker")
        outcomes = await self._tracker.apply_snapshots(
            snapshots.values(), fills, queried_at_version=mark
        )
        await self._react(outcomes)
        resolved = await self._resolve_intents()
        self._book.link_missing()

        positions = await broker.positions()
        checks = self._compare(positions)
        if any(not c.agrees for c in checks):
            # A fill can land between the fills query and the positions query: look again.
            outcomes2 = await self._tracker.apply_snapshots((), await broker.fills_since(since))
            positions = await broker.positions()
            await self._react(outcomes2)
            outcomes += outcomes2
            checks = self._compare(positions)
        mismatches, adopted = self._adopt(checks, positions)
        longs = {p.symbol.upper() for p in positions if p.qty > 0}
        await self._day.set_symbols(longs, "reconcile")
        self.mismatch_active = bool(mismatches)
        if mismatches:
            await self._day.enter_safe_mode(
                SafeModeReason.POSITION_MISMATCH,
                "ledger and broker disagree: " + "; ".join(mismatches),
            )
        orphans = await self._cancel_orphans(positions)
        orphans += await self._shrink_protection(positions)
        protected: list[str] = []
        for symbol in sorted(longs):
            if self._book.symbol_uncovered(symbol) > 0:
                for result in await self._protection.ensure_symbol(symbol, f"reconcile ({reason})"):
                    state = "protected" if result.protected else f"UNPROTECTED: {result.message}"
                    protected.append(f"{symbol} {result.qty}: {state}")
        return ReconcileReport(
            account=ctx.account.name,
            at=ctx.now(),
            reason=reason,
            in_sync=not mismatches and not errors,
            orders_seen=len(snapshots),
            orders_updated=tuple(o.order.client_order_id for o in outcomes if not o.adopted),
            orders_adopted=tuple(o.order.client_order_id for o in outcomes if o.adopted),
            fills_added=sum(len(o.new_fills) for o in outcomes),
            intents_resolved=tuple(resolved),
            positions=tuple(checks),
            mismatches=tuple(mismatches),
            adopted_positions=tuple(adopted),
            protected=tuple(protected),
            orphans_canceled=tuple(orphans),
            errors=tuple(errors),
        )

    async def _resolve_intents(self) -> list[str]:
        ctx = self._ctx
        horizon = ctx.now() - timedelta(seconds=ctx.sessions.unacknowledged_order_seconds)
        out: list[str] = []
        for view in self._book.live_orders():
            if view.status is not OrderStatus.PENDING_SUBMIT:
                continue
            if self._tracker.may_still_land(view, horizon):
                continue  # its request is in flight, or ended too recently to judge
            try:
                snapshot = await ctx.broker.get_order_by_client_id(view.client_order_id)
            except BrokerError as exc:
                out.append(f"{view.client_order_id}: lookup failed ({exc})")
                continue
            if snapshot is not None:
                await self._tracker.submitted(view.client_order_id, snapshot)
                out.append(f"{view.client_order_id}: found at the broker, adopted")
                continue
            await self._tracker.submit_refused(view.client_order_id, NEVER_REACHED)
            if view.role is OrderRole.PROTECTION:
                # A protection that never reached the broker covers nothing: its link must
                # not make the shares look protected.
                self._book.set_link_status(view.id, ProtectionStatus.CANCELED)
            if view.role is OrderRole.ENTRY and view.draft_id is not None:
                self._reopen_draft(view.draft_id)
            out.append(f"{view.client_order_id}: {NEVER_REACHED}")
        return out

    def _reopen_draft(self, draft_id: int) -> None:
        """The intent never reached the broker: the draft can be confirmed again (the next
        confirm is a new attempt, hence a new client order id)."""
        ctx = self._ctx
        with ctx.ledger.unit_of_work() as uow:
            if uow.drafts.transition_if(draft_id, DraftStatus.CONFIRMED, DraftStatus.PENDING):
                draft = uow.drafts.require(draft_id)
                draft.expires_at = ctx.now() + timedelta(minutes=ctx.sessions.draft_ttl_minutes)
                draft.note = f"reopened: the order {NEVER_REACHED}"
            uow.commit()

    def _compare(self, positions: Sequence[Position]) -> list[PositionCheck]:
        # The incremental book (property-tested equal to read_book), not a replay of every
        # fill on each periodic reconcile.
        holdings = shared_book(self._ctx.ledger, self._ctx.account.row_id).holdings()
        at_broker = {p.symbol.upper(): p.qty for p in positions if p.qty != 0}
        symbols = sorted(set(at_broker) | set(holdings))
        return [
            PositionCheck(
                s,
                at_broker.get(s, Decimal(0)),
                holdings[s].qty if s in holdings else Decimal(0),
            )
            for s in symbols
        ]

    def _adopt(
        self, checks: Sequence[PositionCheck], positions: Sequence[Position]
    ) -> tuple[list[str], list[str]]:
        ctx = self._ctx
        prices = {p.symbol.upper(): p.avg_entry_price for p in positions}
        mismatches: list[str] = []
        adopted: list[str] = []
        with ctx.ledger.unit_of_work() as uow:
            # First sight means the account's first reconcile ever (marked once, below),
            # not "no position snapshot yet": a flat account writes none, and a position
            # appearing on it later is exactly the unexplained change to stop on.
            first_sight = not uow.risk_events.any_of_kind(
                ctx.account.row_id, ACCOUNT_LEARNT
            ) and not uow.positions.latest(  # a ledger from before the mark existed
                ctx.account.row_id, PositionSource.BROKER, include_flat=True
            )
            if first_sight:
                uow.risk_events.record(
                    ctx.account.row_id,
                    ctx.today(),
                    kind=ACCOUNT_LEARNT,
                    blocking=False,
                    detail={"positions": {p.symbol.upper(): str(p.qty) for p in positions}},
                )
            for check in checks:
                if check.agrees:
                    continue
                delta = check.broker_qty - check.ledger_qty
                uow.risk_events.record(
                    ctx.account.row_id,
                    ctx.today(),
                    kind=ADOPTED,
                    blocking=not first_sight,
                    detail={
                        "symbol": check.symbol,
                        "qty": delta,
                        "price": prices.get(check.symbol, Decimal(0)),
                        "broker_qty": check.broker_qty,
                        "ledger_qty": check.ledger_qty,
                        "first_sight": first_sight,
                    },
                )
                line = f"{check.symbol}: broker {check.broker_qty}, ledger {check.ledger_qty}"
                adopted.append(line)
                if not first_sight:
                    mismatches.append(line)
            uow.positions.record_all(ctx.account.row_id, positions, PositionSource.BROKER)
            uow.commit()
        return mismatches, adopted

    async def _shrink_protection(self, positions: Sequence[Position]) -> list[str]:
        """Protection larger than the position it protects (shares sold outside Centaur; at
        IBKR sells reserve nothing): when it triggers it would sell short. Cancel it,
        confirmed, and the protection pass below protects what is held."""
        held = {p.symbol.upper(): p.qty for p in positions if p.qty > 0}
        out: list[str] = []
        sells = self._book.live_orders(side=Side.SELL, role=OrderRole.PROTECTION)
        by_symbol: dict[str, list[OrderView]] = {}
        for view in sells:
            if view.symbol.upper() in held:
                by_symbol.setdefault(view.symbol.upper(), []).append(view)
        for symbol, views in sorted(by_symbol.items()):
            if any(self._child_waiting(v) for v in views):
                continue  # an attached child sized to an entry that may still fill
            total = sum((v.remaining_qty for v in views), Decimal(0))
            if total <= held[symbol]:
                continue
            async with self._ctx.locks(symbol):
                for view in views:
                    await self._placer.cancel_and_confirm(
                        view, self._ctx.sessions.cancel_confirm_timeout_seconds
                    )
            logger.warning(
                "{}: protection for {} > position {}: re-sized", symbol, total, held[symbol]
            )
            out.append(f"{symbol}: protection {total} > position {held[symbol]}: re-sized")
        return out

    def _child_waiting(self, view: OrderView) -> bool:
        if view.parent_order_id is None:
            return False
        parent = self._book.order_by_id(view.parent_order_id)
        return parent is not None and not parent.status.is_terminal

    async def _cancel_orphans(self, positions: Sequence[Position]) -> list[str]:
        held = {p.symbol.upper() for p in positions if p.qty > 0}
        out: list[str] = []
        for view in self._book.live_orders(side=Side.SELL, role=OrderRole.PROTECTION):
            if view.symbol.upper() in held or view.broker_order_id is None:
                continue
            if view.parent_order_id is not None:
                parent = self._book.order_by_id(view.parent_order_id)
                if parent is not None and not parent.status.is_terminal:
                    continue  # an attached child waiting for its entry to fill
            try:
                await self._ctx.broker.cancel(view.broker_order_id)
            except BrokerError as exc:
                out.append(f"{view.client_order_id}: cancel failed ({exc})")
                continue
            await self._tracker.cancel_requested(view.client_order_id)
            out.append(f"{view.client_order_id}: cancel requested (no {view.symbol} position)")
        return out


__all__ = ["PositionCheck", "ReconcileReport", "Reconciler"]
