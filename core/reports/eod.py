"""The 16:10 end-of-day report as data (DESIGN.md section 1), read from the ledger.

`build_eod_report` opens one read-only unit of work and gathers the day: trades from
fills (FIFO, `core.reports.trades`), the last regime label per symbol, risk events,
session-state transitions, the `trading_days` row and the reconciliation result.

The reconciliation result (there is no table for it): the caller should pass the latest
one as `reconcile=` (a `ReconcileCompleted`, e.g. built from the reconciler's last
report); `source` is then "parameter". Without it the report falls back to the newest
`notifications` row of kind "system" created that day whose payload is a
`ReconcileCompleted` for this account (the outbox stores `event.to_payload()`). The
outbox skips in-sync runs (`core.outbox.worth_notifying`), so that fallback can only
ever find a mismatch: `source` is "notification" and the text says "a mismatch was
recorded", never "the ledger is out of sync now". None: nothing given, nothing recorded.

Kills: `core.kill` records `kill_started` / `kill_completed` risk events; a flatten
order created between them is reported with the exit reason "kill".

The report day is the New York calendar date: fills, orders and notifications in
[00:00, 24:00) New York time belong to it (extended-hours fills included).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import select

from core.calendar import TradingCalendar
from core.clock import NEW_YORK
from core.domain import OrderRole, Regime, Side
from core.events import EventPayloadError, ReconcileCompleted, event_from_payload
from core.ledger import Ledger, UnitOfWork
from core.ledger.models import (
    DraftRow,
    FillRow,
    NotificationRow,
    OrderEventRow,
    OrderRow,
    ProtectionLinkRow,
    RiskEventRow,
    SignalRow,
)
from core.marketdata.sessions import SessionBars, price
from core.params import DEFAULT_PARAMS, SignalParams
from core.reports.lines import session_lines
from core.reports.model import (
    DayStatus,
    EodReport,
    LabelPrompt,
    PnlSummary,
    ReconcileResult,
    RegimeSummary,
    RiskEventItem,
    SessionTransitionItem,
    SymbolSession,
    Trade,
)
from core.reports.trades import (
    BPS_Q,
    MONEY_Q,
    ZERO,
    KillWindow,
    TradeInputs,
    build_trades,
    div,
    ny,
    q,
)

_BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)
RECONCILE_KIND = "system"


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[00:00, next 00:00) New York time (23 or 25 hours on DST days)."""
    start = datetime.combine(day, time(0), tzinfo=NEW_YORK)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=NEW_YORK)
    return start, end


KILL_STARTED, KILL_COMPLETED = "kill_started", "kill_completed"  # core.kill's risk events
# The end-of-day flatten runs through the same verified kill; its exits are "flatten".
END_OF_DAY_KILLER = "flatten time"


def kill_windows(events: Sequence[RiskEventRow]) -> list[KillWindow]:
    windows: list[KillWindow] = []
    started: datetime | None = None
    for event in events:
        detail = event.detail if isinstance(event.detail, dict) else {}
        if event.kind == KILL_STARTED and detail.get("who") == END_OF_DAY_KILLER:
            continue  # its completion then closes nothing: `started` stays None
        if event.kind == KILL_STARTED and started is None:
            started = event.at
        elif event.kind == KILL_COMPLETED and started is not None:
            windows.append((started, event.at))
            started = None
    if started is not None:
        windows.append((started, None))  # a kill that never completed: still a kill
    return windows


def _trade_inputs(
    uow: UnitOfWork,
    account_id: int,
    day_fills: Sequence[FillRow],
    end: datetime,
    kills: Sequence[KillWindow],
) -> TradeInputs:
    fills: list[FillRow] = []
    for symbol in sorted({f.symbol for f in day_fills}):
        # Whole history of the symbol: FIFO needs the lots opened on earlier days.
        fills.extend(uow.fills.for_account_between(account_id, _BEGINNING, end, symbol))
    orders = {oid: uow.orders.require(oid) for oid in sorted({f.order_id for f in fills})}
    drafts: dict[int, DraftRow] = {}
    signals: dict[int, SignalRow] = {}
    for order in orders.values():
        if order.draft_id is not None and order.draft_id not in drafts:
            drafts[order.draft_id] = uow.drafts.require(order.draft_id)
    for draft in drafts.values():
        if draft.signal_id is not None:
            signals[draft.signal_id] = uow.signals.require(draft.signal_id)
    entry_ids = sorted({f.order_id for f in fills if f.side is Side.BUY})
    protection = _protection_orders(uow, entry_ids)
    events: dict[int, Sequence[OrderEventRow]] = {
        order.id: uow.order_events.for_order(order.id)
        for group in protection.values()
        for order in group
    }
    return TradeInputs(fills, orders, drafts, signals, protection, events, kills)


def _protection_orders(uow: UnitOfWork, entry_ids: Sequence[int]) -> dict[int, list[OrderRow]]:
    """Entry id -> its protection orders: linked ones and attached children (IBKR)."""
    found: dict[int, dict[int, OrderRow]] = {entry: {} for entry in entry_ids}
    if not entry_ids:
        return {}
    links = uow.session.scalars(
        select(ProtectionLinkRow).where(ProtectionLinkRow.entry_order_id.in_(entry_ids))
    ).all()
    for link in links:
        found[link.entry_order_id][link.protection_order_id] = uow.orders.require(
            link.protection_order_id
        )
    for entry in entry_ids:
        for child in uow.orders.children(entry):
            if child.role is OrderRole.PROTECTION:
                found[entry][child.id] = child
    return {entry: list(orders.values()) for entry, orders in found.items() if orders}


def _reconcile_from_outbox(
    uow: UnitOfWork, account: str, start: datetime, end: datetime
) -> ReconcileResult | None:
    rows = uow.session.scalars(
        select(NotificationRow)
        .where(
            NotificationRow.kind == RECONCILE_KIND,
            NotificationRow.created_at >= start,
            NotificationRow.created_at < end,
        )
        .order_by(NotificationRow.id.desc())
    )
    for row in rows:
        payload = row.payload or {}
        if payload.get("type") != ReconcileCompleted.__name__:
            continue
        try:
            event = event_from_payload(payload)
        except EventPayloadError:
            continue  # a malformed row must not hide an older good one
        if isinstance(event, ReconcileCompleted) and event.account == account:
            return _reconcile_result(event, "notification")
    return None


def _reconcile_result(event: ReconcileCompleted, source: str) -> ReconcileResult:
    summary = _thaw(event.summary)
    return ReconcileResult(
        at=ny(event.at),
        in_sync=event.in_sync,
        summary=summary if isinstance(summary, dict) else {},
        source=source,
    )


def _thaw(value: object) -> object:
    """An event's frozen JSON (mapping proxies, tuples) back to dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_thaw(v) for v in value]
    return value


def _regimes(uow: UnitOfWork, day: date) -> list[RegimeSummary]:
    by_symbol: dict[str, list[tuple[datetime, Regime, dict[str, object] | None]]] = {}
    for row in uow.regimes.history(day):
        by_symbol.setdefault(row.symbol, []).append((ny(row.at), row.label, row.evidence))
    out = []
    for symbol in sorted(by_symbol):
        rows = by_symbol[symbol]
        at, label, evidence = rows[-1]
        changes = tuple((when, lbl) for when, lbl, _ in rows)
        out.append(RegimeSummary(symbol, label, at, evidence, changes))
    return out


def symbol_session(bars: SessionBars, params: SignalParams = DEFAULT_PARAMS) -> SymbolSession:
    lines = session_lines(bars, params)
    close = price(int(bars.close[-1]))
    vwap = lines.vwap_close
    return SymbolSession(
        symbol=bars.symbol,
        open=price(int(bars.open[0])),
        high=price(int(bars.high.max())),
        low=price(int(bars.low.min())),
        close=close,
        vwap_close=vwap,
        close_vs_vwap_pct=q(div(close - vwap, vwap) * 100, BPS_Q),
        or15_high=lines.or15[1] if lines.or15 else None,
        or15_low=lines.or15[0] if lines.or15 else None,
    )


def _pnl(
    trades: Sequence[Trade],
    day_fills: Sequence[FillRow],
    closes: Mapping[str, Decimal],
) -> PnlSummary:
    closed = [t for t in trades if t.exits]
    known_r = [t.r_multiple for t in closed if t.r_multiple is not None]
    net = sum((t.pnl for t in closed), ZERO)
    commissions = sum((t.commissions for t in closed), ZERO)
    open_trades = [t for t in trades if t.open_qty]
    unrealized: Decimal | None = None
    # One unknown mark makes the total unknown rather than quietly too small.
    if all(t.symbol in closes for t in open_trades):
        marks = ((closes[t.symbol] - t.entry_price) * t.open_qty for t in open_trades)
        unrealized = q(sum(marks, ZERO), MONEY_Q)
    return PnlSummary(
        trades=len(closed),
        wins=sum(1 for t in closed if t.pnl > 0),
        losses=sum(1 for t in closed if t.pnl <= 0),
        gross=net + commissions,
        commissions=commissions,
        net=net,
        r_total=sum(known_r, ZERO) if known_r else None,
        r_unknown=len(closed) - len(known_r),
        fees_paid=q(sum((f.commission for f in day_fills), ZERO), MONEY_Q),
        unrealized=unrealized,
    )


def _labels(
    trades: Sequence[Trade], watched: Sequence[str], regimes: Sequence[RegimeSummary]
) -> tuple[LabelPrompt, ...]:
    traded = list(dict.fromkeys(t.symbol for t in trades))
    others = sorted(set(watched) - set(traded))
    labels = {r.symbol: r.label for r in regimes}
    return tuple(
        LabelPrompt(symbol, symbol in traded, labels.get(symbol)) for symbol in traded + others
    )


def build_eod_report(
    ledger: Ledger,
    account_name: str,
    day: date,
    calendar: TradingCalendar,
    bars_by_symbol: Mapping[str, SessionBars],
    *,
    reconcile: ReconcileCompleted | None = None,
    watchlist: Sequence[str] = (),
    params: SignalParams = DEFAULT_PARAMS,
) -> EodReport:
    """Everything the day report shows, from the ledger (read-only) and the day's bars.

    `bars_by_symbol` gives each symbol's regular session (for the VWAP/OR15 summary and
    the mark of shares still open); symbols without bars simply have no session line.
    `watchlist` adds watched symbols to the labelling prompts (symbols with a regime or a
    signal that day are added anyway).
    """
    start, end = day_bounds(day)
    session = calendar.session(day)
    with ledger.unit_of_work(read_only=True) as uow:
        account = uow.accounts.require_name(account_name)
        day_fills = uow.fills.for_account_between(account.id, start, end)
        risk_rows = uow.risk_events.for_day(account.id, day)
        inputs = _trade_inputs(uow, account.id, day_fills, end, kill_windows(risk_rows))
        trades = build_trades(inputs, start, end)
        regimes = _regimes(uow, day)
        signal_symbols = [s.symbol for s in uow.signals.for_day(day)]
        risk = tuple(RiskEventItem(ny(r.at), r.kind, r.blocking, r.detail) for r in risk_rows)
        transitions = tuple(
            SessionTransitionItem(ny(s.at), s.from_state, s.to_state, s.trigger, s.cause)
            for s in uow.session_states.history(account.id, day)
        )
        trading_day = uow.trading_days.find(account.id, day)
        reconciled = (
            _reconcile_result(reconcile, "parameter")
            if reconcile is not None
            else _reconcile_from_outbox(uow, account_name, start, end)
        )
    sessions = tuple(
        symbol_session(bars_by_symbol[symbol], params)
        for symbol in sorted(bars_by_symbol)
        if len(bars_by_symbol[symbol])
    )
    watched = [*watchlist, *signal_symbols, *(r.symbol for r in regimes), *bars_by_symbol]
    return EodReport(
        day=day,
        account=account_name,
        session_kind=session.kind if session is not None else "closed",
        generated_at=ny(ledger.clock.now()),
        pnl=_pnl(trades, day_fills, {s.symbol: s.close for s in sessions}),
        trades=tuple(trades),
        regimes=tuple(regimes),
        sessions=sessions,
        risk_events=risk,
        transitions=transitions,
        reconcile=reconciled,
        day_status=None
        if trading_day is None
        else DayStatus(
            trading_day.trading_allowed,
            trading_day.locked_reason,
            trading_day.safe_mode_reason,
            trading_day.trades_count,
        ),
        labels=_labels(trades, watched, regimes),
    )
