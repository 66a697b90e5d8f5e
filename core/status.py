"""Read models for the bot: /status, /positions, /orders, /pnl, /signals, /regime.

Plain frozen data; the bot renders it. Broker figures (equity, buying power, positions,
market prices) come from the broker when it answers, else from the last known values,
with `broker_ok=False` so the card can say so.

Per /status the ledger answers two bounded questions: the live orders (one look-up in
the (account, status) index, shared by the badges and the working orders) and the
day's book (core.book_cache: two primary-key look-ups when nothing was filled since the
last call, never a replay of the account's history).

A trailing stop's level is the broker's (docs/one-stop.md): its open orders are asked once
per call, and a trailing stop's `stop_price` is its level now. Without that answer the
level is estimated ("≈") from the high-water mark since the protection was placed (the
entry's fill price, then the highs of the bars since), and never below the last level
the broker reported; never from the last price, so a trailing stop shown never moves down.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum

from core.broker import BrokerError
from core.clock import NEW_YORK
from core.domain import (
    ZERO,
    OrderRole,
    OrderSnapshot,
    OrderType,
    Position,
    Side,
    TickRounding,
    round_to_tick,
)
from core.engine import TradingEngine
from core.ledger import AccountMode, RegimeRow, SignalRow
from core.order_views import OrderView
from core.reconcile import ReconcileReport
from core.session import SafeModeReason, SessionState

HUNDRED = Decimal(100)


class BadgeKind(StrEnum):
    TRAILING = "trailing"
    STOP = "stop"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class ProtectionBadge:
    kind: BadgeKind
    qty: Decimal = ZERO  # shares covered by live sells
    level: Decimal | None = None  # the stop level now (a trail's: the broker's, or ≈)
    trail_pct: Decimal | None = None
    queued: bool = False  # accepted but not active until the regular open
    # A trail's level worked out from its high-water mark, not the broker's own ("≈");
    # False only when the broker reported the level in this answer.
    estimated: bool = True
    hwm: Decimal | None = None  # a trail's high-water mark (the broker's, or estimated)

    @property
    def complete(self) -> bool:
        return self.kind is not BadgeKind.NONE


@dataclass(frozen=True, slots=True)
class PositionView:
    symbol: str
    qty: Decimal
    avg_entry_price: Decimal
    market_price: Decimal | None
    unrealized: Decimal | None
    protection: ProtectionBadge


@dataclass(frozen=True, slots=True)
class StatusSnapshot:
    account: str
    mode: AccountMode
    broker: str
    broker_ok: bool
    as_of: datetime
    equity: Decimal | None
    buying_power: Decimal | None
    session_state: SessionState
    session_date: date
    day_switch: str  # allowed | denied | unanswered
    locked_reason: str | None
    safe_mode_reasons: tuple[SafeModeReason, ...]
    cooldown_until: datetime | None
    positions: tuple[PositionView, ...]
    working_orders: tuple[OrderView, ...]
    realized_pnl: Decimal
    open_pnl: Decimal
    day_pnl: Decimal
    day_r: Decimal
    trades_today: int
    last_reconcile: ReconcileReport | None


@dataclass(frozen=True, slots=True)
class PnlReport:
    account: str
    period: str  # day | week | month
    first_day: date
    last_day: date
    realized: Decimal
    realized_r: Decimal
    by_day: tuple[tuple[date, Decimal], ...]
    exits: int


def _switch(allowed: bool | None) -> str:
    return "unanswered" if allowed is None else ("allowed" if allowed else "denied")


class StatusQueries:
    def __init__(self, engine: TradingEngine) -> None:
        self._engine = engine
        self._ctx = engine.ctx

    async def positions(self) -> tuple[tuple[PositionView, ...], bool]:
        views, ok, _live = await self._positions()
        return views, ok

    async def _positions(self) -> tuple[tuple[PositionView, ...], bool, list[OrderView]]:
        """Positions with their badges, and the live orders the badges were read from
        (one query for every position, read after the broker answered)."""
        engine = self._engine
        try:
            broker_positions = await self._ctx.broker.positions()
            ok = True
        except BrokerError:
            broker_positions = [
                Position(symbol=h.symbol, qty=h.qty, avg_entry_price=h.avg_cost)  # type: ignore[arg-type]
                for h in engine.risk.day_book().holdings.values()
            ]
            ok = False
        live = engine.book.live_orders()
        sells: dict[str, list[OrderView]] = {}
        for order in live:
            if order.side is Side.SELL:
                sells.setdefault(order.symbol, []).append(order)
        truth = await self._broker_orders(ok, live)
        views = []
        for position in broker_positions:
            if position.qty == 0:
                continue
            bar = self._ctx.market.last_bar(position.symbol)
            price = (
                position.market_price
                if position.market_price is not None
                else (bar.close if bar is not None else None)
            )
            unrealized = (
                None if price is None else (price - position.avg_entry_price) * position.qty
            )
            badge = self._badge(sells.get(position.symbol.upper(), []), price, truth)
            views.append(
                PositionView(
                    position.symbol,
                    position.qty,
                    position.avg_entry_price,
                    price,
                    unrealized,
                    badge,
                )
            )
        return tuple(views), ok, live

    async def _broker_orders(
        self, broker_ok: bool, live: list[OrderView]
    ) -> dict[str, OrderSnapshot]:
        """The broker's open orders by id, asked only when a trailing stop is shown and
        the broker answers; empty means "no truth", and the levels are estimated."""
        if not broker_ok or not any(o.order_type is OrderType.TRAILING_STOP for o in live):
            return {}
        try:
            snapshots = await self._ctx.broker.list_orders(open_only=True)
        except BrokerError:
            return {}
        return {s.broker_order_id: s for s in snapshots}

    def badge(self, symbol: str, price: Decimal | None = None) -> ProtectionBadge:
        """The badge from the ledger alone (a trail's level estimated)."""
        return self._badge(self._engine.book.live_orders(symbol, side=Side.SELL), price, {})

    def _badge(
        self,
        live_sells: list[OrderView],
        price: Decimal | None,
        truth: dict[str, OrderSnapshot],
    ) -> ProtectionBadge:
        sells = [
            o
            for o in live_sells
            if o.role in (OrderRole.PROTECTION, OrderRole.EXTERNAL) and o.broker_order_id
        ]
        if not sells:
            return ProtectionBadge(BadgeKind.NONE)
        qty = sum((o.remaining_qty for o in sells), ZERO)
        trailing = [o for o in sells if o.order_type is OrderType.TRAILING_STOP]
        regular = self._ctx.phase().value == "regular"
        if trailing:
            # The weakest trail is the one that matters: the lowest level shown.
            levels = [self._trail_level(o, truth) for o in trailing]
            known = [t for t in levels if t[0] is not None]
            level, hwm, estimated = (
                min(known, key=lambda t: t[0] or ZERO) if known else (None, None, True)
            )
            return ProtectionBadge(
                BadgeKind.TRAILING,
                qty,
                level,
                trailing[0].trail_percent,
                queued=not regular,
                estimated=estimated,
                hwm=hwm,
            )
        stop = min((o.stop_price for o in sells if o.stop_price is not None), default=None)
        return ProtectionBadge(BadgeKind.STOP, qty, stop, None, queued=not regular)

    def _trail_level(
        self, order: OrderView, truth: dict[str, OrderSnapshot]
    ) -> tuple[Decimal | None, Decimal | None, bool]:
        """(level, high-water mark, estimated) of one trailing stop."""
        snapshot = truth.get(order.broker_order_id or "")
        if snapshot is not None and snapshot.stop_price is not None:
            return snapshot.stop_price, snapshot.hwm, False
        pct = order.trail_percent
        hwm = self._hwm_since(order)
        level = order.stop_price  # the last level the broker reported (a trail never falls)
        if hwm is not None and pct is not None:
            worked_out = round_to_tick(hwm * (1 - pct / HUNDRED), TickRounding.DOWN)
            level = worked_out if level is None else max(level, worked_out)
        return level, hwm, True

    def _hwm_since(self, order: OrderView) -> Decimal | None:
        """The highest price since the protection was placed: the entry's fill price (a
        trail starts there), then the highs of the bars that began after the placement."""
        marks: list[Decimal] = []
        if order.parent_order_id is not None:
            entry = self._engine.book.order_by_id(order.parent_order_id)
            if entry is not None and entry.avg_fill_price is not None:
                marks.append(entry.avg_fill_price)
        since = order.submitted_at or order.created_at
        marks.extend(
            bar.high for bar in self._ctx.market.recent_bars(order.symbol) if bar.start >= since
        )
        return max(marks) if marks else None

    def working_orders(self) -> tuple[OrderView, ...]:
        return tuple(self._engine.book.live_orders())

    async def status(self) -> StatusSnapshot:
        engine, ctx = self._engine, self._ctx
        account = await engine.risk.account()
        positions, ok, live = await self._positions()
        book = engine.risk.day_book()
        open_pnl = sum((p.unrealized for p in positions if p.unrealized is not None), ZERO)
        info = engine.day.m.info
        return StatusSnapshot(
            account=ctx.account.name,
            mode=ctx.account.mode,
            broker=ctx.broker.name,
            broker_ok=ok and account is not None,
            as_of=ctx.now(),
            equity=account.equity if account is not None else None,
            buying_power=account.buying_power if account is not None else None,
            session_state=engine.day.state,
            session_date=engine.day.day,
            day_switch=_switch(info.allowed),
            locked_reason=info.locked_reason,
            safe_mode_reasons=tuple(sorted(info.safe_mode_reasons)),
            cooldown_until=info.cooldown_until,
            positions=positions,
            working_orders=tuple(live),
            realized_pnl=book.realized,
            open_pnl=open_pnl,
            day_pnl=book.realized + open_pnl,
            day_r=book.realized_r,
            trades_today=book.entries,
            last_reconcile=engine.reconciler.last,
        )

    def pnl(self, period: str = "day") -> PnlReport:
        ctx = self._ctx
        today = self._engine.day.day
        if period == "day":
            first = today
        elif period == "week":
            first = today - timedelta(days=today.weekday())
        elif period == "month":
            first = today.replace(day=1)
        else:
            raise ValueError(f"period must be day, week or month, not {period!r}")
        start = datetime.combine(first, time(0), tzinfo=NEW_YORK)
        end = datetime.combine(today + timedelta(days=1), time(0), tzinfo=NEW_YORK)
        book = self._engine.risk.books.book(start, end)
        return PnlReport(
            ctx.account.name,
            period,
            first,
            today,
            book.realized,
            book.realized_r,
            tuple(sorted(book.by_day.items())),
            len(book.exits),
        )

    def signals(self, day: date | None = None, symbol: str | None = None) -> list[SignalRow]:
        with self._ctx.ledger.unit_of_work(read_only=True) as uow:
            return list(uow.signals.for_day(day or self._engine.day.day, symbol=symbol))

    def latest_signal(self, symbol: str) -> SignalRow | None:
        rows = self.signals(symbol=symbol.upper())
        return rows[-1] if rows else None

    def regimes(self, day: date | None = None) -> dict[str, RegimeRow]:
        with self._ctx.ledger.unit_of_work(read_only=True) as uow:
            return dict(uow.regimes.latest_by_symbol(day or self._engine.day.day))


__all__ = [
    "BadgeKind",
    "PnlReport",
    "PositionView",
    "ProtectionBadge",
    "StatusQueries",
    "StatusSnapshot",
]
