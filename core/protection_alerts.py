"""What protection tells the trader (ProtectionPlaced / ProtectionFailed /
PositionUnprotected), written to the outbox with the links they announce."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from core.domain import TickRounding, round_to_tick
from core.engine_context import EngineContext
from core.events import (
    DomainEvent,
    PositionUnprotected,
    ProtectionFailed,
    ProtectionFallback,
    ProtectionKind,
    ProtectionPlaced,
)
from core.ledger import ProtectionKind as LinkKind
from core.order_views import OrderView

HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class ProtectionResult:
    symbol: str
    qty: Decimal
    protected: bool
    kind: ProtectionKind | None = None
    order: OrderView | None = None
    queued: bool = False
    message: str = ""


class ProtectionAnnouncer:
    def __init__(self, ctx: EngineContext) -> None:
        self._ctx = ctx

    async def placed(
        self, view: OrderView, kind: ProtectionKind, entry: OrderView | None, *, queued: bool
    ) -> None:
        ctx = self._ctx
        level = view.stop_price
        entry_price = entry.avg_fill_price if entry is not None else None
        if view.trail_percent is not None:
            anchor = self._anchor(view.symbol, entry_price)
            level = (
                None
                if anchor is None
                else round_to_tick(anchor * (1 - view.trail_percent / HUNDRED), TickRounding.DOWN)
            )
        events: list[DomainEvent] = [
            ProtectionPlaced(
                at=ctx.now(),
                account=ctx.account.name,
                symbol=view.symbol,
                qty=view.qty,
                protection_kind=kind,
                trail_pct=view.trail_percent,
                stop_price=level,
                entry_price=entry_price,
                # A position without a known entry (adopted) names the protection itself.
                entry_order_id=(entry or view).client_order_id,
                protection_order_id=view.client_order_id,
            )
        ]
        if queued:
            events.append(
                PositionUnprotected(
                    at=ctx.now(),
                    account=ctx.account.name,
                    symbol=view.symbol,
                    qty=view.qty,
                    reason=f"{kind} stop accepted but queued until the regular session opens: "
                    "no broker-side stop protects the position until then",
                    auto_flatten=False,
                )
            )
        with ctx.ledger.unit_of_work() as uow:
            if entry is not None:
                link_kind = LinkKind.TRAILING if kind is ProtectionKind.TRAILING else LinkKind.STOP
                uow.protection_links.link(entry.id, view.id, protected_qty=view.qty, kind=link_kind)
            for event in events:
                ctx.outbox.stage(uow, event)
            uow.commit()
        await ctx.publish(events)

    def _anchor(self, symbol: str, entry_price: Decimal | None) -> Decimal | None:
        bar = self._ctx.market.last_bar(symbol)
        prices = [p for p in (entry_price, bar.close if bar is not None else None) if p is not None]
        return max(prices) if prices else None

    async def failed(
        self,
        symbol: str,
        qty: Decimal,
        kind: ProtectionKind,
        reason: str,
        entry: OrderView | None,
        fallback: ProtectionFallback | None,
    ) -> None:
        ctx = self._ctx
        event = ProtectionFailed(
            at=ctx.now(),
            account=ctx.account.name,
            symbol=symbol,
            qty=qty,
            attempted=kind,
            reason=reason,
            fallback=fallback,
            entry_order_id=entry.client_order_id if entry is not None else None,
        )
        await self._stage_and_publish(event)

    async def unprotected(self, symbol: str, qty: Decimal, reason: str, auto: bool) -> None:
        ctx = self._ctx
        event = PositionUnprotected(
            at=ctx.now(),
            account=ctx.account.name,
            symbol=symbol,
            qty=qty,
            reason=reason,
            auto_flatten=auto,
        )
        await self._stage_and_publish(event)

    async def _stage_and_publish(self, event: DomainEvent) -> None:
        with self._ctx.ledger.unit_of_work() as uow:
            self._ctx.outbox.stage(uow, event)
            uow.commit()
        await self._ctx.publish([event])


__all__ = ["ProtectionAnnouncer", "ProtectionResult"]
