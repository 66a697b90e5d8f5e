"""Kill: cancel everything, flatten everything, and report only what the broker confirms.

`preview()` lists, from the broker's own answers, exactly which orders would be canceled
and which positions flattened. `execute()`:
1. stops new entries and new protection (`ctx.halted`), records `kill_started`;
2. cancels every working order (the broker's list and the ledger's) and CONFIRMS each
   cancel: a `canceled` event, or a query after `cancel_confirm_timeout_seconds`; an
   order whose fill beat the cancel is reported as such, and its shares are flattened;
3. flattens every position from a FRESH position query (so a fill that raced a cancel is
   included): a market order in regular hours; outside them a marketable limit with
   extended hours when the capability matrix allows it, else "cannot be flattened until
   the open";
4. queries positions again: the report says flat only for what the broker says is flat.
It runs in every session state (LOCKED, SAFE MODE included). If the process dies in the
middle, `kill_started` without `kill_completed` makes the next start finish the job.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from core.broker import BrokerError
from core.calendar import SessionPhase
from core.crashpoints import MID_KILL
from core.domain import (
    OrderStatus,
    Position,
)
from core.engine_context import EngineContext
from core.events import KillCompleted
from core.flatten import Flattener, FlattenResult
from core.order_tracker import OrderTracker
from core.order_views import OrderView
from core.placement import Placer
from core.protection_book import ProtectionBook

S = OrderStatus
KILL_STARTED = "kill_started"
KILL_COMPLETED = "kill_completed"
RETRY = "retry"  # the `who` of a kill the engine runs again after one that was not flat
WORKING_NOTE = "still working at the broker"
HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class OrderLine:
    client_order_id: str
    symbol: str
    side: str
    qty: Decimal
    filled_qty: Decimal
    order_type: str
    status: str
    role: str


@dataclass(frozen=True, slots=True)
class PositionLine:
    symbol: str
    qty: Decimal
    avg_entry_price: Decimal
    market_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class KillPreview:
    account: str
    orders: tuple[OrderLine, ...]
    positions: tuple[PositionLine, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OrderResult:
    client_order_id: str
    symbol: str
    outcome: str  # canceled | filled_before_cancel | unconfirmed
    detail: str = ""


@dataclass(frozen=True, slots=True)
class KillReport:
    account: str
    started_at: datetime
    finished_at: datetime
    all_flat: bool
    orders: tuple[OrderResult, ...]
    positions: tuple[FlattenResult, ...]
    notes: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _line(view: OrderView) -> OrderLine:
    return OrderLine(
        view.client_order_id,
        view.symbol,
        view.side.value,
        view.qty,
        view.filled_qty,
        view.order_type.value,
        view.status.value,
        view.role.value,
    )


class KillSwitch:
    def __init__(
        self,
        ctx: EngineContext,
        tracker: OrderTracker,
        placer: Placer,
        book: ProtectionBook,
        flattener: Flattener,
    ) -> None:
        self._ctx = ctx
        self._tracker = tracker
        self._placer = placer
        self._book = book
        self._flattener = flattener
        self._running = asyncio.Lock()
        self._retry_at: datetime | None = None
        self._last_open: tuple[str, ...] | None = None

    async def preview(self) -> KillPreview:
        ctx = self._ctx
        notes: list[str] = []
        try:
            open_orders = await ctx.broker.list_orders(open_only=True)
            await self._tracker.apply_snapshots(open_orders)
            positions = await ctx.broker.positions()
        except BrokerError as exc:
            notes.append(f"the broker did not answer ({exc}): listing the ledger's view")
            positions = []
        orders = tuple(_line(v) for v in self._book.live_orders())
        lines = tuple(
            PositionLine(p.symbol, p.qty, p.avg_entry_price, p.market_price)
            for p in positions
            if p.qty != 0
        )
        if ctx.phase() is not SessionPhase.REGULAR:
            notes.append(
                f"outside regular hours ({ctx.phase()}): positions are flattened with "
                "marketable limit orders where allowed, or wait for the open"
            )
        return KillPreview(ctx.account.name, orders, lines, tuple(notes))

    def unfinished(self) -> bool:
        """A kill started and never completed (the process died in the middle), or
        completed NOT flat: either way the account stays halted and the kill runs again."""
        ctx = self._ctx
        with ctx.ledger.unit_of_work(read_only=True) as uow:
            rows = uow.risk_events.for_day(ctx.account.row_id, ctx.today())
            marks = [r for r in rows if r.kind in (KILL_STARTED, KILL_COMPLETED)]
            if not marks:
                return False
            last = marks[-1]
            if last.kind == KILL_STARTED:
                return True
            return not bool((last.detail or {}).get("all_flat", True))

    @property
    def running(self) -> bool:
        return self._running.locked()

    def retry_due(self) -> bool:
        """A kill ended not flat and its next attempt is due (the engine's tick asks)."""
        if self._retry_at is None or self.running:
            return False
        return self._ctx.now() >= self._retry_at

    async def execute(self, who: str = "user") -> KillReport:
        async with self._running:
            return await self._execute(who)

    async def _execute(self, who: str) -> KillReport:
        ctx = self._ctx
        started = ctx.now()
        # Halt first (no confirm passes its check from now), then wait for a confirm whose
        # send is in flight: its order is at the broker, and canceled below, before "flat".
        ctx.halted = True
        self._mark(KILL_STARTED, {"who": who})
        notes: list[str] = []
        order_results: list[OrderResult] = []
        flatten_results: list[FlattenResult] = []
        working: list[str] = []
        failed = False
        try:
            order_results = await self._cancel_all(notes)
            ctx.checkpoints.reached(MID_KILL)
            flatten_results = await self._flatten_all(notes)
            # A confirm whose send was in flight when the kill began ends now (the lock):
            # whatever it placed is canceled, and anything else still open, in a second
            # pass, before the broker's working orders are checked.
            async with ctx.entry_lock:
                if await self._anything_open() or any(
                    r.outcome == "unconfirmed" for r in order_results
                ):
                    again = {r.client_order_id: r for r in await self._cancel_all(notes)}
                    order_results = [again.pop(r.client_order_id, r) for r in order_results]
                    order_results += again.values()
                    later = {r.symbol: r for r in await self._flatten_all(notes)}
                    flatten_results = [later.pop(r.symbol, r) for r in flatten_results]
                    flatten_results += later.values()
                working = await self._still_working(notes)
        except BrokerError as exc:
            failed = True
            notes.append(f"the broker failed during the kill: {exc}")
        all_flat = (
            not failed
            and all(r.flat for r in flatten_results)
            and not any(r.outcome == "unconfirmed" for r in order_results)
            and not working
        )
        if not all_flat:
            notes.append(
                "not flat: the account stays halted (no new entries) and the kill runs "
                f"again every {ctx.options.kill_retry_seconds:.0f} s until the broker "
                "confirms no position and no working order"
            )
        report = KillReport(
            ctx.account.name,
            started,
            ctx.now(),
            all_flat,
            tuple(order_results),
            tuple(flatten_results),
            tuple(notes),
        )
        ctx.halted = not all_flat
        self._retry_at = (
            None if all_flat else ctx.now() + timedelta(seconds=ctx.options.kill_retry_seconds)
        )
        # A retry that finds the same things open says nothing new: only the first report,
        # a change, and the final "flat" reach the chat.
        still_open = self._open_things(report)
        tell = all_flat or still_open != self._last_open or not who.startswith(RETRY)
        self._last_open = None if all_flat else still_open
        event = KillCompleted(
            at=ctx.now(),
            account=ctx.account.name,
            all_flat=report.all_flat,
            report=report.to_json(),
        )
        with ctx.ledger.unit_of_work() as uow:
            uow.risk_events.record(
                ctx.account.row_id,
                ctx.today(),
                kind=KILL_COMPLETED,
                blocking=False,
                detail={"all_flat": report.all_flat},
            )
            if tell:
                ctx.outbox.stage(uow, event)
            uow.commit()
        if tell:
            await ctx.publish([event])
        return report

    @staticmethod
    def _open_things(report: KillReport) -> tuple[str, ...]:
        orders = (
            f"{r.client_order_id}:{r.outcome}" for r in report.orders if r.outcome == "unconfirmed"
        )
        positions = (f"{p.symbol}:{p.qty_after}" for p in report.positions if not p.flat)
        return (*orders, *positions, *(n for n in report.notes if n.startswith(WORKING_NOTE)))

    async def _anything_open(self) -> bool:
        broker = self._ctx.broker
        try:
            if await broker.list_orders(open_only=True):
                return True
            return any(p.qty != 0 for p in await broker.positions())
        except BrokerError:
            return True  # unknown: the second pass reports what it cannot do

    async def _still_working(self, notes: list[str]) -> list[str]:
        """The broker's working orders after the kill: "flat" means none, not only no
        position (a confirm or a fill can race everything)."""
        ctx = self._ctx
        try:
            open_orders = await ctx.broker.list_orders(open_only=True)
        except BrokerError as exc:
            notes.append(f"could not verify the working orders: {exc}")
            return ["unverified"]
        await self._tracker.apply_snapshots(open_orders)
        left = [
            f"{o.client_order_id} ({o.side} {o.qty} {o.symbol}, {o.status})" for o in open_orders
        ]
        if left:
            notes.append(f"{WORKING_NOTE}: {', '.join(left)}")
        return left

    def _mark(self, kind: str, detail: dict[str, Any]) -> None:
        ctx = self._ctx
        with ctx.ledger.unit_of_work() as uow:
            uow.risk_events.record(
                ctx.account.row_id, ctx.today(), kind=kind, blocking=False, detail=detail
            )
            uow.commit()

    async def _cancel_all(self, notes: list[str]) -> list[OrderResult]:
        ctx = self._ctx
        try:
            await self._tracker.apply_snapshots(await ctx.broker.list_orders(open_only=True))
        except BrokerError as exc:
            notes.append(f"could not list the broker's open orders ({exc}); used the ledger's")
        timeout = ctx.sessions.cancel_confirm_timeout_seconds
        by_symbol: dict[str, list[OrderView]] = {}
        for view in self._book.live_orders():
            by_symbol.setdefault(view.symbol, []).append(view)

        async def cancel_symbol(symbol: str, views: list[OrderView]) -> list[OrderResult]:
            async with ctx.locks(symbol):
                ended = await asyncio.gather(
                    *(self._placer.cancel_and_confirm(v, timeout) for v in views)
                )
            return [self._order_result(v) for v in ended]

        nested = await asyncio.gather(*(cancel_symbol(s, v) for s, v in sorted(by_symbol.items())))
        return [r for group in nested for r in group]

    def _order_result(self, view: OrderView) -> OrderResult:
        if view.status is S.FILLED:
            return OrderResult(
                view.client_order_id,
                view.symbol,
                "filled_before_cancel",
                f"filled {view.filled_qty} before the cancel took effect",
            )
        if view.is_terminal:
            extra = f" after {view.filled_qty} filled" if view.filled_qty > 0 else ""
            return OrderResult(
                view.client_order_id, view.symbol, "canceled", f"{view.status}{extra}"
            )
        return OrderResult(
            view.client_order_id, view.symbol, "unconfirmed", f"still {view.status} at the broker"
        )

    async def _flatten_all(self, notes: list[str]) -> list[FlattenResult]:
        ctx = self._ctx
        try:
            positions = [p for p in await ctx.broker.positions() if p.qty != 0]
        except BrokerError as exc:
            notes.append(f"could not read positions: {exc}")
            return [FlattenResult("*", Decimal(0), None, False, f"positions unknown: {exc}")]

        async def one(position: Position) -> FlattenResult:
            async with ctx.locks(position.symbol):
                return await self._flattener.flatten_locked(position, "kill")

        first = await asyncio.gather(*(one(p) for p in positions))
        try:
            after = {p.symbol.upper(): p.qty for p in await ctx.broker.positions()}
        except BrokerError as exc:
            notes.append(f"could not verify positions: {exc}")
            return [
                FlattenResult(r.symbol, r.qty_before, None, False, r.detail + "; unverified")
                for r in first
            ]
        results = []
        for result in first:
            left = after.pop(result.symbol.upper(), Decimal(0))
            results.append(
                FlattenResult(result.symbol, result.qty_before, left, left == 0, result.detail)
            )
        for symbol, qty in after.items():  # appeared meanwhile (a fill raced everything)
            if qty != 0:
                results.append(
                    FlattenResult(symbol, Decimal(0), qty, False, "appeared after the flatten")
                )
        return results


__all__ = [
    "KILL_COMPLETED",
    "KILL_STARTED",
    "FlattenResult",
    "Flattener",
    "KillPreview",
    "KillReport",
    "KillSwitch",
    "OrderResult",
    "PositionLine",
]
