"""The live radar: closed bars in, regime changes and entry signals out.

One `RadarState` per symbol and session (the same code the backtester's batch form is
proven equal to). Each closed bar updates it; a changed regime label is recorded in the
ledger and published as `RegimeChanged`; a signal that rule 5 allows is recorded and
published as `SignalRaised` (if its regime passes the user's alert filter).

Rule 5 ("no entry filled and no stop-buy pending for this symbol in this session") is
execution state: before every bar the gate is set from what the engine knows (a working
entry order, entries filled today), through the injected `entry_status` callable.

Daily levels (ATR20, MA20, previous close) come from the completed sessions the radar
has seen plus any history it was seeded with (warm-up from recorded or downloaded bars).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import numpy as np
from loguru import logger

from core.calendar import TradingCalendar
from core.clock import NEW_YORK, Clock
from core.config_models import RiskConfig
from core.domain import Regime
from core.event_calendar import EventCalendar
from core.events import EventBus, JsonValue, RegimeChanged, SignalRaised
from core.indicators import DailyLevels, daily_levels
from core.ledger import Ledger, SignalRow
from core.marketdata.bar import Bar
from core.marketdata.sessions import DailyBars, SessionBars, ticks
from core.params import SignalParams
from core.risk import size_for_risk
from core.signals import EntryGate, RadarState, RadarUpdate


@dataclass(frozen=True, slots=True)
class EntryStatus:
    """What rule 5 needs to know about one symbol today."""

    pending: bool  # an entry stop-buy is working
    entries_filled: int


NO_ENTRIES = EntryStatus(pending=False, entries_filled=0)


class _DailyHistory:
    """Completed sessions of one symbol as daily OHLCV (ten-thousandths), in day order."""

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.rows: dict[int, tuple[int, int, int, int, int]] = {}

    def add(self, day: date, o: int, h: int, lo: int, c: int, v: int) -> None:
        self.rows[day.toordinal()] = (o, h, lo, c, v)

    def levels(self, day: date, lookback: int) -> DailyLevels:
        days = sorted(d for d in self.rows if d < day.toordinal())
        columns = list(zip(*(self.rows[d] for d in days), strict=True)) if days else [()] * 5

        def col(values: Sequence[int]) -> np.ndarray:
            return np.asarray(values, dtype=np.int64)

        daily = DailyBars(self.symbol, col(days), *(col(c) for c in columns))
        return daily_levels(daily, [day.toordinal()], lookback)[0]


class _Session:
    """The running session of one symbol, and its daily bar so far."""

    def __init__(self, state: RadarState) -> None:
        self.state = state
        self.open = self.high = self.low = self.close = 0
        self.volume = 0
        self.bars = 0

    def note(self, bar: Bar) -> None:
        o, h, lo, c = ticks(bar.open), ticks(bar.high), ticks(bar.low), ticks(bar.close)
        if self.bars == 0:
            self.open, self.high, self.low = o, h, lo
        self.high, self.low = max(self.high, h), min(self.low, lo)
        self.close = c
        self.volume += bar.volume
        self.bars += 1


class RadarService:
    def __init__(
        self,
        *,
        symbols: Sequence[str],
        params: SignalParams,
        risk: RiskConfig,
        calendar: TradingCalendar,
        events: EventCalendar,
        bus: EventBus,
        ledger: Ledger,
        clock: Clock,
        alert_regimes: Sequence[str],
        equity: Callable[[], Decimal],
        entry_status: Callable[[str, date], EntryStatus] = lambda _s, _d: NO_ENTRIES,
    ) -> None:
        self._symbols = {s.upper() for s in symbols}
        self._params, self._risk = params, risk
        self._calendar, self._events = calendar, events
        self._bus, self._ledger, self._clock = bus, ledger, clock
        self._alert_regimes = set(alert_regimes)
        self._equity = equity
        self._entry_status = entry_status
        self._history = {s: _DailyHistory(s) for s in self._symbols}
        self._sessions: dict[str, tuple[date, _Session]] = {}
        self.bars_seen = 0

    @property
    def symbols(self) -> frozenset[str]:
        return frozenset(self._symbols)

    def seed_history(self, symbol: str, sessions: Sequence[SessionBars]) -> None:
        """Completed earlier sessions (warm-up for ATR20 / MA20)."""
        history = self._history.setdefault(symbol.upper(), _DailyHistory(symbol.upper()))
        for s in sessions:
            if len(s) == 0:
                continue
            history.add(
                s.day,
                int(s.open[0]),
                int(s.high.max()),
                int(s.low.min()),
                int(s.close[-1]),
                int(s.volume.sum()),
            )

    def state(self, symbol: str) -> RadarState | None:
        running = self._sessions.get(symbol.upper())
        return running[1].state if running else None

    def _session_for(self, bar: Bar) -> _Session | None:
        symbol = bar.symbol.upper()
        day = bar.start.astimezone(NEW_YORK).date()
        running = self._sessions.get(symbol)
        if running is not None and running[0] == day:
            return running[1]
        if running is not None and running[1].bars:
            previous = running[1]
            self._history[symbol].add(
                running[0],
                previous.open,
                previous.high,
                previous.low,
                previous.close,
                previous.volume,
            )
        session = self._calendar.session(day)
        if session is None:
            return None
        levels = self._history[symbol].levels(day, self._params.daily_lookback)
        event = self._events.is_event_day(symbol, day)
        gate = EntryGate(self._params.max_entries_per_session)
        state = RadarState(symbol, session, levels, event, self._params, gate)
        created = _Session(state)
        self._sessions[symbol] = (day, created)
        return created

    async def on_bar(self, bar: Bar) -> RadarUpdate | None:
        """Feed one closed bar; returns the update (None for symbols not watched / bad bars)."""
        symbol = bar.symbol.upper()
        if symbol not in self._symbols:
            return None
        current = self._session_for(bar)
        if current is None:
            logger.warning("radar: {} bar {} is not in a session", symbol, bar.start.isoformat())
            return None
        day = current.state.session.day
        status = self._entry_status(symbol, day)
        current.state.gate.pending = status.pending
        current.state.gate.entries_filled = status.entries_filled
        try:
            update = current.state.on_bar(bar)
        except ValueError as exc:  # out of order / outside the session: skip, keep running
            logger.warning("radar: skipped a bar: {}", exc)
            return None
        current.note(bar)
        self.bars_seen += 1
        if update.announce and update.label is not None:
            await self._announce_regime(update, day)
        if update.signal is not None:
            await self._raise_signal(update, day)
        return update

    def _evidence(self, update: RadarUpdate) -> dict[str, JsonValue]:
        ev = update.evidence
        return {
            "cross_count": ev.cross_count,
            "pct_above": round(ev.pct_above, 4),
            "range_atr": None if ev.range_atr is None else round(ev.range_atr, 4),
            "or_width_atr": None if ev.or_width_atr is None else round(ev.or_width_atr, 4),
            "early_volume_ratio": (
                None if ev.early_volume_ratio is None else round(ev.early_volume_ratio, 4)
            ),
            "gap_pct": None if ev.gap_pct is None else round(ev.gap_pct, 6),
            "event": ev.event,
            "vwap": round(update.vwap, 4),
            "close": str(update.bar.close),
        }

    async def _announce_regime(self, update: RadarUpdate, day: date) -> None:
        assert update.label is not None
        evidence = self._evidence(update)
        with self._ledger.unit_of_work() as uow:
            previous_row = uow.regimes.latest(update.symbol, day)
            previous = previous_row.label if previous_row is not None else None
            if previous is update.label:
                return  # already announced (a replay after a restart)
            uow.regimes.record(update.symbol, day, update.label, evidence=evidence)
            uow.commit()
        await self._bus.publish(
            RegimeChanged(
                at=self._clock.now(),
                symbol=update.symbol,
                session_date=day,
                previous=previous,
                current=update.label,
                evidence=evidence,
            )
        )

    async def _raise_signal(self, update: RadarUpdate, day: date) -> None:
        proposal = update.signal
        assert proposal is not None
        regime = update.label or Regime.FORMING
        evidence = self._evidence(update)
        evidence["pullback_time"] = proposal.pullback_time.isoformat()
        with self._ledger.unit_of_work() as uow:
            row, inserted = uow.signals.add_if_new(
                SignalRow(
                    symbol=update.symbol,
                    session_date=day,
                    signal_time=proposal.signal_time,
                    trigger=proposal.trigger,
                    stop=proposal.stop,
                    regime=regime,
                    evidence=evidence,
                )
            )
            uow.commit()
            signal_id = row.id
        if not inserted or regime.value not in self._alert_regimes:
            return
        risk_per_share = proposal.trigger - proposal.stop
        qty = size_for_risk(
            self._risk.risk_per_trade_usd,
            proposal.trigger,
            proposal.stop,
            self._equity(),
            self._risk,
        )
        await self._bus.publish(
            SignalRaised(
                at=self._clock.now(),
                symbol=update.symbol,
                session_date=day,
                signal_time=proposal.signal_time,
                trigger=proposal.trigger,
                stop=proposal.stop,
                risk_per_share=risk_per_share,
                suggested_qty=qty,
                regime=regime,
                evidence=evidence,
                signal_id=signal_id,
            )
        )
