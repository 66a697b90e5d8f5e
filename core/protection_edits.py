"""Changing a position's protection: a stop-sell draft, and `/trail SYM pct`.

A stop-sell draft REPLACES the protection instead of adding a second sell: every open
sell of those shares reserves them, so the broker would refuse another one
("insufficient qty"). The old protection is canceled and the cancel CONFIRMED before the
new stop is sent; if the new stop is refused, the position is protected again at once
through the usual ladder, so an edit never leaves it naked.

`/trail` replaces a live trailing stop at the broker (new trail, same shares) when the
broker allows it; otherwise (queued orders cannot be replaced, plain stops change type)
it cancels, confirms, and places a new trailing stop with the new trail.
"""

from __future__ import annotations

from decimal import Decimal

from loguru import logger

from core.broker import BrokerError, NotReplaceable, OrderRejected
from core.capabilities import check
from core.clock import NEW_YORK
from core.domain import OrderRole, OrderStatus, OrderType, Side
from core.engine_context import EngineContext
from core.events import ProtectionKind
from core.ids import Purpose, draft_scope, order_scope
from core.order_tracker import OrderTracker
from core.order_views import OrderView
from core.placement import Placer
from core.protection import ProtectionManager, ProtectionResult, _whole
from core.trail import RuntimeTrail

S = OrderStatus
TRAIL_SET = "trail_set"


def _user_stop_failed(result: ProtectionResult, fallback: ProtectionResult | None) -> str:
    """What became of a stop-sell that was not confirmed working, in true words: an order
    still not terminal may be live at the broker (outcome unknown, the reconciler asks),
    and "protected again" is said only when the fallback ladder did protect."""
    if result.order is not None and not result.order.is_terminal:
        why = result.message
        head = (
            f"stop-sell {why}; checking with the broker"
            if why.startswith("outcome unknown")
            else f"stop-sell outcome unknown ({why}); checking with the broker"
        )
    else:
        head = f"stop-sell refused ({result.message})"
    if fallback is None:
        return head
    if fallback.protected:
        return f"{head}; the uncovered shares were protected again with a trailing stop"
    return f"{head}; the position is NOT protected ({fallback.message})"


class ProtectionEdits:
    def __init__(
        self, ctx: EngineContext, tracker: OrderTracker, placer: Placer, manager: ProtectionManager
    ) -> None:
        self._ctx = ctx
        self._tracker = tracker
        self._placer = placer
        self._manager = manager
        self._book = manager.book

    @property
    def manager(self) -> ProtectionManager:
        return self._manager

    # --- stop-sell draft -----------------------------------------------------------------

    async def user_stop(
        self, symbol: str, stop_price: Decimal, qty: Decimal | None, draft_id: int
    ) -> ProtectionResult:
        symbol = symbol.upper()
        ctx = self._ctx
        async with ctx.locks(symbol):
            if ctx.halted:
                return ProtectionResult(
                    symbol, qty or Decimal(0), False, message="a kill is running"
                )
            entry: OrderView | None = None
            for order in self._book.live_orders(symbol, side=Side.SELL):
                links = self._book.links_for(order.id)
                if links and entry is None:
                    entry = self._book.order_by_id(links[0][0])
                view = await self._placer.cancel_and_confirm(
                    order, ctx.sessions.cancel_confirm_timeout_seconds
                )
                if not view.is_terminal:
                    return ProtectionResult(
                        symbol,
                        qty or Decimal(0),
                        False,
                        message=f"could not confirm the cancel of {order.client_order_id}; "
                        "the stop-sell was not sent",
                    )
            held = _whole(self._book.position(symbol))
            wanted = held if qty is None else min(_whole(qty), held)
            if wanted <= 0:
                return ProtectionResult(
                    symbol, Decimal(0), False, message=f"no {symbol} position left"
                )
            request = self._manager.request(
                symbol,
                wanted,
                Purpose.USER_STOP,
                entry,
                stop_price=stop_price,
                scope=draft_scope(draft_id),
            )
            result = await self._manager.rung(request, ProtectionKind.STOP, entry)
            rest = _whole(self._book.symbol_uncovered(symbol))
            fallback: ProtectionResult | None = None
            if rest > 0:
                # Refused, or the draft covers part of the position: the rest keeps a trail.
                fallback = await self._manager.ladder(symbol, rest, entry=entry)
            if not result.protected:
                return ProtectionResult(
                    symbol,
                    wanted,
                    False,
                    result.kind,
                    result.order,  # the confirm reopens the draft only if it ended
                    message=_user_stop_failed(result, fallback),
                )
            return result

    # --- /trail --------------------------------------------------------------------------

    async def set_trail(self, symbol: str, pct: Decimal, who: str) -> list[ProtectionResult]:
        symbol = symbol.upper()
        if not (Decimal(0) < pct < Decimal(50)):
            raise ValueError(f"trail must be between 0 and 50 percent, got {pct}")
        ctx = self._ctx
        day = ctx.now().astimezone(NEW_YORK).date()
        self._manager.runtime[symbol] = RuntimeTrail(symbol, day, pct)
        with ctx.ledger.unit_of_work() as uow:
            uow.risk_events.record(
                ctx.account.row_id,
                day,
                kind=TRAIL_SET,
                blocking=False,
                detail={"symbol": symbol, "pct": pct, "who": who},
            )
            uow.commit()
        results: list[ProtectionResult] = []
        async with ctx.locks(symbol):
            if ctx.halted:
                return [ProtectionResult(symbol, Decimal(0), False, message="a kill is running")]
            for order in self._book.live_orders(symbol, side=Side.SELL, role=OrderRole.PROTECTION):
                result = await self._retrail(order, pct)
                if result is not None:
                    results.append(result)
            rest = _whole(self._book.symbol_uncovered(symbol))
            if rest > 0:
                results.append(await self._manager.ladder(symbol, rest, entry=None, trail=pct))
        return results

    async def _retrail(self, order: OrderView, pct: Decimal) -> ProtectionResult | None:
        ctx = self._ctx
        entry_links = self._book.links_for(order.id)
        entry = self._book.order_by_id(entry_links[0][0]) if entry_links else None
        if (
            order.order_type is OrderType.TRAILING_STOP
            and order.broker_order_id is not None
            and order.status in (S.ACCEPTED, S.PARTIALLY_FILLED)
        ):
            replaced = await self._replace(order, pct, entry)
            if replaced is not None:
                return replaced
        view = await self._placer.cancel_and_confirm(
            order, ctx.sessions.cancel_confirm_timeout_seconds
        )
        if not view.is_terminal:
            return ProtectionResult(
                order.symbol,
                order.qty,
                False,
                order=view,
                message=f"could not confirm the cancel of {order.client_order_id}",
            )
        qty = _whole(min(view.remaining_qty, self._book.symbol_uncovered(order.symbol)))
        if qty <= 0:
            return None
        return await self._manager.ladder(order.symbol, qty, entry=entry, trail=pct)

    async def _replace(
        self, order: OrderView, pct: Decimal, entry: OrderView | None
    ) -> ProtectionResult | None:
        """Broker-side replace; None means "not possible here, cancel and resubmit"."""
        ctx = self._ctx
        assert order.broker_order_id is not None
        request = self._manager.request(
            order.symbol,
            order.remaining_qty,
            Purpose.RETRAIL,
            entry,
            trail_pct=pct,
            scope=order_scope(order.id),
        )
        if not check(ctx.broker.capabilities, request, ctx.phase()).allowed:
            return None
        intent = self._tracker.record_intent(
            request,
            OrderRole.PROTECTION,
            parent_order_id=order.parent_order_id,
            replaces_order_id=order.id,
        )
        try:
            snapshot = await ctx.broker.replace(
                order.broker_order_id, trail_percent=pct, client_order_id=request.client_order_id
            )
        except (NotReplaceable, OrderRejected) as exc:
            await self._tracker.submit_refused(intent.client_order_id, f"replace refused: {exc}")
            return None
        except BrokerError as exc:
            logger.warning("replace of {} is ambiguous: {}", order.client_order_id, exc)
            found = await ctx.broker.get_order_by_client_id(request.client_order_id)
            if found is None:
                await self._tracker.submit_refused(intent.client_order_id, f"replace failed: {exc}")
                return None
            snapshot = found
        recorded = await self._tracker.submitted(intent.client_order_id, snapshot)
        view = await self._placer.confirm_accepted(
            recorded.order, ctx.protection.protection_confirm_timeout_seconds
        )
        if view.status not in (S.ACCEPTED, S.PARTIALLY_FILLED, S.FILLED):
            return ProtectionResult(
                order.symbol,
                order.qty,
                False,
                order=view,
                message=view.reject_reason or f"replace ended {view.status}",
            )
        await self._manager.placed(view, ProtectionKind.TRAILING, entry, queued=False)
        return ProtectionResult(order.symbol, view.qty, True, ProtectionKind.TRAILING, view)

    def restore_runtime_trails(self) -> None:
        """Re-read today's /trail settings after a restart."""
        ctx = self._ctx
        day = ctx.now().astimezone(NEW_YORK).date()
        with ctx.ledger.unit_of_work(read_only=True) as uow:
            for row in uow.risk_events.for_day(ctx.account.row_id, day):
                if row.kind == TRAIL_SET and row.detail:
                    symbol = str(row.detail["symbol"]).upper()
                    pct = Decimal(str(row.detail["pct"]))
                    self._manager.runtime[symbol] = RuntimeTrail(symbol, day, pct)


__all__ = ["TRAIL_SET", "ProtectionEdits"]
