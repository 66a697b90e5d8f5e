"""Trades from fills: FIFO per symbol, commissions allocated per share, R, exit reasons.

Pure functions over ledger rows (no queries here; `core.reports.eod` gathers the rows).

Readings where the design is silent:
- A trade is one BUY order (an entry, or an adopted external buy) and the shares sold
  out of it. Sells take shares FIFO per symbol across every fill the ledger has for the
  symbol up to the end of the report day, so a position carried from an earlier day
  keeps its real entry price.
- Commissions are allocated per share on both sides: an exit row's P&L is
  `(exit - entry) * qty - entry commission share - exit commission share`
  (SPEC-signals: "P&L of an exit fill ... - commissions").
- R = entry price (volume-weighted fill) - initial stop of the entry's draft (or the
  draft's signal when the draft has none); R <= 0 or no stop means R unknown (None).
  A draft's initial stop is its one stop: the trigger less the trail frozen on it, the
  protection's first level (docs/one-stop.md).
- The exit reason comes from the selling order: PROTECTION + trailing stop -> trailing,
  PROTECTION + any other type -> protection stop, EXIT -> manual sell, EXTERNAL ->
  external, FLATTEN -> kill when the order was created inside a kill (between the day's
  `kill_started` and `kill_completed` risk events that `core.kill` records; its flatten
  orders look exactly like the end-of-day ones), else flatten.
- A sell with no lot left to take from (a position older than the ledger) realises
  nothing here: without an entry price there is no honest P&L to show.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation

from core.clock import NEW_YORK
from core.domain import OrderRole, OrderType, Side
from core.ledger.models import DraftRow, FillRow, OrderEventRow, OrderRow, SignalRow
from core.reports.model import (
    ExecutionDeviation,
    ExitReason,
    StopPoint,
    StopSource,
    Trade,
    TradeExit,
)

# Our own context: the thread's default could have been changed by anyone.
_CTX = Context(prec=34, rounding=ROUND_HALF_UP)
ZERO = Decimal(0)
PRICE_Q = Decimal("0.0001")
MONEY_Q = Decimal("0.0001")
R_Q = Decimal("0.0001")
BPS_Q = Decimal("0.01")
# Order-event detail keys that carry a protective level (trailing stops move).
STOP_DETAIL_KEYS = ("stop_price", "stop", "trail_stop")


def div(a: Decimal, b: Decimal) -> Decimal:
    return _CTX.divide(a, b)


def q(value: Decimal, quantum: Decimal) -> Decimal:
    return value.quantize(quantum, rounding=ROUND_HALF_UP, context=_CTX)


def ny(moment: datetime) -> datetime:
    return moment.astimezone(NEW_YORK)


KillWindow = tuple[datetime, datetime | None]  # [kill_started, kill_completed or still open]


def exit_reason(order: OrderRow, kills: Sequence[KillWindow] = ()) -> ExitReason:
    if order.role is OrderRole.PROTECTION:
        if order.order_type is OrderType.TRAILING_STOP:
            return ExitReason.TRAILING
        return ExitReason.PROTECTION_STOP
    if order.role is OrderRole.FLATTEN:
        during_kill = any(
            start <= order.created_at and (end is None or order.created_at <= end)
            for start, end in kills
        )
        return ExitReason.KILL if during_kill else ExitReason.FLATTEN
    if order.role is OrderRole.EXTERNAL:
        return ExitReason.EXTERNAL
    return ExitReason.MANUAL_SELL


@dataclass
class _Lot:
    entry_order_id: int
    qty_left: Decimal
    price: Decimal
    commission_per_share: Decimal


@dataclass
class _Match:
    exit_order_id: int
    at: datetime
    qty: Decimal
    value: Decimal  # exit price * qty
    gross: Decimal
    commissions: Decimal


@dataclass
class _Entry:
    order_id: int
    symbol: str
    first_at: datetime
    qty: Decimal = ZERO
    value: Decimal = ZERO  # sum(price * qty)
    filled_in_window: bool = False
    matches: list[_Match] = field(default_factory=list)
    open_qty: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class TradeInputs:
    """Everything `build_trades` reads, gathered by the caller."""

    fills: Sequence[FillRow]  # every fill of the traded symbols up to the window's end
    orders: Mapping[int, OrderRow]  # every order those fills belong to
    drafts: Mapping[int, DraftRow]
    signals: Mapping[int, SignalRow]
    protection: Mapping[int, Sequence[OrderRow]]  # entry order id -> protection orders
    events: Mapping[int, Sequence[OrderEventRow]]  # protection order id -> its events
    kills: Sequence[KillWindow] = ()


def _match_fills(fills: Iterable[FillRow], start: datetime, end: datetime) -> dict[int, _Entry]:
    entries: dict[int, _Entry] = {}
    lots: dict[str, list[_Lot]] = {}
    for fill in sorted(fills, key=lambda f: (f.at, f.id)):
        if fill.at >= end:
            continue
        per_share = div(fill.commission, fill.qty)
        book = lots.setdefault(fill.symbol, [])
        if fill.side is Side.BUY:
            entry = entries.setdefault(
                fill.order_id, _Entry(fill.order_id, fill.symbol, ny(fill.at))
            )
            entry.qty += fill.qty
            entry.value += fill.price * fill.qty
            entry.filled_in_window |= fill.at >= start
            book.append(_Lot(fill.order_id, fill.qty, fill.price, per_share))
            continue
        remaining = fill.qty
        while remaining > 0 and book:
            lot = book[0]
            take = min(remaining, lot.qty_left)
            lot.qty_left -= take
            remaining -= take
            if not lot.qty_left:
                book.pop(0)
            if fill.at < start:
                continue  # realised on an earlier day
            entries[lot.entry_order_id].matches.append(
                _Match(
                    exit_order_id=fill.order_id,
                    at=ny(fill.at),
                    qty=take,
                    value=fill.price * take,
                    gross=(fill.price - lot.price) * take,
                    commissions=(lot.commission_per_share + per_share) * take,
                )
            )
    for book in lots.values():
        for lot in book:
            entries[lot.entry_order_id].open_qty += lot.qty_left
    return entries


def initial_stop(
    order: OrderRow, drafts: Mapping[int, DraftRow], signals: Mapping[int, SignalRow]
) -> Decimal | None:
    draft = drafts.get(order.draft_id) if order.draft_id is not None else None
    if draft is None:
        return None
    if draft.initial_stop is not None:
        return draft.initial_stop
    signal = signals.get(draft.signal_id) if draft.signal_id is not None else None
    return signal.stop if signal is not None else None


def _trigger(order: OrderRow, drafts: Mapping[int, DraftRow]) -> Decimal | None:
    """What the entry asked for: the stop-buy's trigger (or a limit buy's limit)."""
    if order.order_type in (OrderType.STOP, OrderType.STOP_LIMIT) and order.stop_price:
        return order.stop_price
    if order.order_type is OrderType.LIMIT and order.limit_price:
        return order.limit_price
    draft = drafts.get(order.draft_id) if order.draft_id is not None else None
    return draft.trigger_price if draft is not None else None


def deviation(trigger: Decimal | None, fill: Decimal, qty: Decimal) -> ExecutionDeviation | None:
    if trigger is None or trigger <= 0:
        return None
    per_share = fill - trigger
    return ExecutionDeviation(
        trigger=trigger,
        fill=fill,
        per_share=per_share,
        bps=q(div(per_share, trigger) * 10_000, BPS_Q),
        total=q(per_share * qty, MONEY_Q),
    )


def _detail_level(detail: Mapping[str, object] | None) -> Decimal | None:
    if not detail:
        return None
    for key in STOP_DETAIL_KEYS:
        raw = detail.get(key)
        if isinstance(raw, (str, int)) and not isinstance(raw, bool):
            try:
                level = Decimal(raw)
            except InvalidOperation:
                continue
            if level.is_finite() and level > 0:
                return level
    return None


def stop_path(
    entry_time: datetime,
    stop: Decimal | None,
    protection: Sequence[OrderRow],
    events: Mapping[int, Sequence[OrderEventRow]],
) -> tuple[StopPoint, ...]:
    """The protective level over time: the draft's stop from the entry (its one stop,
    docs/one-stop.md: the protection's first level at a fill at the trigger), then each
    protection's levels as the broker had them.

    A plain stop contributes its stop price from its submission; a trailing stop the
    levels its order events report (`detail["stop_price"]`: the tracker's `stop_level`
    events, the broker's level at acceptance and each one reported since), or, with none,
    the last level the broker gave (`orders.stop_price`).
    """
    points: list[StopPoint] = []
    if stop is not None:
        points.append(StopPoint(entry_time, stop, StopSource.INITIAL))
    for order in sorted(protection, key=lambda o: o.id):
        since = ny(max(order.submitted_at or order.created_at, entry_time))
        if order.order_type is not OrderType.TRAILING_STOP:
            if order.stop_price is not None:
                points.append(StopPoint(since, order.stop_price, StopSource.STOP))
            continue
        reported = [
            StopPoint(ny(max(event.at, entry_time)), level, StopSource.TRAIL)
            for event in events.get(order.id, ())
            if (level := _detail_level(event.detail)) is not None
        ]
        if not reported and order.stop_price is not None:
            reported = [StopPoint(ny(order.updated_at), order.stop_price, StopSource.TRAIL)]
        points.extend(reported)
    points.sort(key=lambda p: p.at)
    path: list[StopPoint] = []
    for point in points:  # a repeated level says nothing new
        if not path or point.level != path[-1].level:
            path.append(point)
    return tuple(path)


def _exits(entry: _Entry, inputs: TradeInputs, r: Decimal | None) -> list[TradeExit]:
    grouped: dict[int, list[_Match]] = {}
    for match in entry.matches:
        grouped.setdefault(match.exit_order_id, []).append(match)
    exits = []
    for order_id, matches in grouped.items():
        qty = sum((m.qty for m in matches), ZERO)
        pnl = q(sum((m.gross - m.commissions for m in matches), ZERO), MONEY_Q)
        exits.append(
            TradeExit(
                order_id=order_id,
                at=max(m.at for m in matches),
                price=q(div(sum((m.value for m in matches), ZERO), qty), PRICE_Q),
                qty=qty,
                reason=exit_reason(inputs.orders[order_id], inputs.kills),
                pnl=pnl,
                r_multiple=None if r is None else q(div(pnl, r * qty), R_Q),
            )
        )
    exits.sort(key=lambda e: (e.at, e.order_id))
    return exits


def build_trades(inputs: TradeInputs, start: datetime, end: datetime) -> list[Trade]:
    """Trades with an entry fill or a realised exit in [start, end), by entry time."""
    trades = []
    for entry in _match_fills(inputs.fills, start, end).values():
        if not entry.filled_in_window and not entry.matches:
            continue
        order = inputs.orders[entry.order_id]
        price = q(div(entry.value, entry.qty), PRICE_Q)
        stop = initial_stop(order, inputs.drafts, inputs.signals)
        r = price - stop if stop is not None and price > stop else None
        exits = _exits(entry, inputs, r)
        pnl = sum((e.pnl for e in exits), ZERO)
        commissions = q(sum((m.commissions for m in entry.matches), ZERO), MONEY_Q)
        trades.append(
            Trade(
                symbol=entry.symbol,
                entry_order_id=entry.order_id,
                entry_time=entry.first_at,
                entry_price=price,
                qty=entry.qty,
                initial_stop=stop,
                risk_per_share=r,
                exits=tuple(exits),
                open_qty=entry.open_qty,
                pnl=pnl,
                r_multiple=None if r is None or not exits else q(div(pnl, r * entry.qty), R_Q),
                commissions=commissions,
                deviation=deviation(_trigger(order, inputs.drafts), price, entry.qty),
                stop_path=stop_path(
                    entry.first_at,
                    stop,
                    inputs.protection.get(entry.order_id, ()),
                    inputs.events,
                ),
            )
        )
    trades.sort(key=lambda t: (t.entry_time, t.symbol, t.entry_order_id))
    return trades
