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
from datetime import datetime
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
        """A kill started and never completed (the process died in the middle)."""
        ctx = self._ctx
        with ctx.ledger.unit_of_work(read_only=True) as uow:
            rows = uow.risk_events.for_day(ctx.account.row_id, ctx.today())
            kinds = [r.kind for r in rows if r.kind in (KILL_STARTED, KILL_COMPLETED)]
        return bool(kinds) and kinds[-1] == KILL_STARTED

    async def execute(self, who: str = "user") -> KillReport:
        async with self._running:
            return await self._execute(who)

    async def _execute(self, who: str) -> KillReport:
        ctx = self._ctx
        started = ctx.now()
        self._mark(KILL_STARTED, {"who": who})
        ctx.halted = True
        notes: list[str] = []
        try:
            order_results = await self._cancel_all(notes)
            ctx.checkpoints.reached(MID_KILL)
            flatten_results = await self._flatten_all(notes)
        finally:
            ctx.halted = False
        report = KillReport(
            ctx.account.name,
            started,
            ctx.now(),
            all(r.flat for r in flatten_results)
            and not any(r.outcome == "unconfirmed" for r in order_results),
            tuple(order_results),
            tuple(flatten_results),
            tuple(notes),
        )
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
            ctx.outbox.stage(uow, event)
            uow.commit()
        await ctx.publish([event])
        return report

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
