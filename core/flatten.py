"""Flattening one position, with the right order for the session phase, confirmed.

In regular hours a market order; outside them a marketable limit (a little through the
last price) with extended hours when the capability matrix allows it, else "cannot be
flattened until the open". "Flat" is only reported from the broker's positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from loguru import logger

from core.broker import BrokerError
from core.calendar import SessionPhase
from core.capabilities import check
from core.domain import (
    OrderRequest,
    OrderRole,
    OrderStatus,
    OrderType,
    Position,
    Side,
    Symbol,
    TickRounding,
    TimeInForce,
    round_to_tick,
)
from core.engine_context import EngineContext
from core.ids import Purpose, client_order_id, next_attempt, prefix, symbol_scope
from core.order_tracker import OrderTracker
from core.placement import PlaceOutcome, Placer
from core.protection_book import ProtectionBook

S = OrderStatus
HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class FlattenResult:
    symbol: str
    qty_before: Decimal
    qty_after: Decimal | None  # from the final broker query; None if it failed
    flat: bool
    detail: str = ""


class Flattener:
    """Close one position with the right order for the session phase, and confirm it."""

    def __init__(
        self, ctx: EngineContext, tracker: OrderTracker, placer: Placer, book: ProtectionBook
    ) -> None:
        self._ctx = ctx
        self._tracker = tracker
        self._placer = placer
        self._book = book

    def request_for(self, position: Position) -> tuple[OrderRequest | None, str]:
        ctx = self._ctx
        side = Side.SELL if position.qty > 0 else Side.BUY
        qty = abs(position.qty)
        ns, scope = ctx.account.namespace, symbol_scope(position.symbol)
        id_prefix = prefix(ns, scope, Purpose.FLATTEN)
        attempt = next_attempt(self._book.client_ids_with_prefix(id_prefix), id_prefix)
        cid = client_order_id(ns, scope, Purpose.FLATTEN, attempt)
        phase = ctx.phase()
        if phase is SessionPhase.REGULAR:
            return OrderRequest(
                cid, Symbol(position.symbol), side, qty, OrderType.MARKET
            ), "market order"
        bar = ctx.market.last_bar(position.symbol)
        last = bar.close if bar is not None else position.market_price
        if last is None:
            return None, f"no last price for a marketable limit during {phase}"
        pct = Decimal(ctx.options.marketable_limit_pct) / HUNDRED
        if side is Side.SELL:
            limit = round_to_tick(last * (1 - pct), TickRounding.DOWN)
        else:
            limit = round_to_tick(last * (1 + pct), TickRounding.UP)
        request = OrderRequest(
            cid,
            Symbol(position.symbol),
            side,
            qty,
            OrderType.LIMIT,
            TimeInForce.DAY,
            limit_price=limit,
            extended_hours=True,
        )
        return request, f"marketable limit {limit} (extended hours)"

    async def flatten_locked(self, position: Position, reason: str) -> FlattenResult:
        """Call with the symbol's lock held and no sell of those shares working."""
        ctx = self._ctx
        request, how = self.request_for(position)
        if request is None:
            return FlattenResult(
                position.symbol, position.qty, None, False, f"cannot flatten: {how}"
            )
        verdict = check(ctx.broker.capabilities, request, ctx.phase())
        if not verdict.allowed:
            return FlattenResult(
                position.symbol,
                position.qty,
                None,
                False,
                f"cannot be flattened until the open: {verdict.reason}",
            )
        intent = self._tracker.record_intent(request, OrderRole.FLATTEN)
        logger.info("flattening {} {} ({}): {}", position.qty, position.symbol, how, reason)
        placement = await self._placer.send(intent, request)
        if placement.outcome in (
            PlaceOutcome.REJECTED,
            PlaceOutcome.NEVER_REACHED,
            PlaceOutcome.UNKNOWN,
        ):
            return FlattenResult(
                position.symbol,
                position.qty,
                None,
                False,
                f"flatten order {placement.outcome}: {placement.reason}",
            )
        view = await self._tracker.wait_for(
            request.client_order_id,
            lambda v: v.is_terminal,
            ctx.options.flatten_confirm_timeout_seconds,
        )
        if not view.is_terminal:
            try:
                view = await self._tracker.refresh(request.client_order_id)
            except BrokerError as exc:
                logger.warning("flatten {}: query failed: {}", request.client_order_id, exc)
        queued = " (queued: waits for its session)" if verdict.queued else ""
        detail = f"{how}: {view.status}, {view.filled_qty} of {view.qty} filled{queued}"
        return FlattenResult(position.symbol, position.qty, None, view.status is S.FILLED, detail)

    async def flatten(self, symbol: str, reason: str) -> FlattenResult:
        """The [Flatten SYM] button: cancel the symbol's orders, then flatten, confirmed."""
        ctx = self._ctx
        async with ctx.locks(symbol):
            for order in self._book.live_orders(symbol):
                await self._placer.cancel_and_confirm(
                    order, ctx.sessions.cancel_confirm_timeout_seconds
                )
            positions = {p.symbol.upper(): p for p in await ctx.broker.positions()}
            position = positions.get(symbol.upper())
            if position is None or position.qty == 0:
                return FlattenResult(symbol, Decimal(0), Decimal(0), True, "already flat")
            result = await self.flatten_locked(position, reason)
            after = {p.symbol.upper(): p.qty for p in await ctx.broker.positions()}
            left = after.get(symbol.upper(), Decimal(0))
            return FlattenResult(symbol, position.qty, left, left == 0, result.detail)


__all__ = ["FlattenResult", "Flattener"]
