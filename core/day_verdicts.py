"""The 09:45 regime snapshot: one definite verdict per symbol, "not today" included.

DESIGN.md section 1: "AAPL: tradable, trend up (pct above VWAP 0.86, 2 crosses)";
"MU: not today, range (7 crosses)"; "QQQM: not today, CPI at 08:30".

Rules, in order (the strategy is long only: VWAP pullback reclaims):
1. an event listed for the symbol today (config/events.yaml) -> not today, the event;
2. no bar of today yet -> not today, no data; no label (the radar's warm-up: fewer than
   20 earlier sessions for ATR20) -> not today, no regime yet;
3. trend up -> tradable;
4. forming (the label is "forming" until open + 30 min, so at 09:45 it usually is):
   the trend-up thresholds read provisionally on the bars so far (pct above VWAP >=
   trend_pct and crosses <= trend_max_crosses) -> tradable, "leaning trend up";
   otherwise not today, "no trend yet";
5. trend down, range, event -> not today, with the evidence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

from core.clock import NEW_YORK
from core.domain import Regime
from core.event_calendar import EventCalendar, MarketEvent
from core.events import SymbolVerdict
from core.params import SignalParams
from core.regime import Evidence
from core.signals import RadarUpdate


def _event_text(event: MarketEvent) -> str:
    return f"{event.kind} at {event.at:%H:%M}" if event.at is not None else f"{event.kind} today"


def _evidence_text(evidence: Evidence, *, crosses_only: bool = False) -> str:
    crosses = f"{evidence.cross_count} cross" + ("" if evidence.cross_count == 1 else "es")
    if crosses_only:
        return f"({crosses})"
    return f"(pct above VWAP {evidence.pct_above:.2f}, {crosses})"


def verdict_for(
    symbol: str,
    day: date,
    update: RadarUpdate | None,
    events: EventCalendar,
    params: SignalParams,
) -> SymbolVerdict:
    """The verdict for `symbol` from its last radar update of `day` (None: no bar yet)."""
    todays = events.events_on(day, symbol)
    if todays:
        reason = ", ".join(_event_text(e) for e in todays)
        return SymbolVerdict(symbol, False, Regime.EVENT, reason)
    if update is None or update.bar.start.astimezone(NEW_YORK).date() != day:
        return SymbolVerdict(symbol, False, None, "no data yet")
    label, evidence = update.label, update.evidence
    if label is Regime.TREND_UP:
        return SymbolVerdict(symbol, True, label, f"trend up {_evidence_text(evidence)}")
    if label is None:
        return SymbolVerdict(
            symbol, False, None, "no regime yet (warm-up: ATR20 needs 20 sessions)"
        )
    if label is Regime.FORMING:
        leaning = (
            evidence.pct_above >= params.trend_pct
            and evidence.cross_count <= params.trend_max_crosses
        )
        text = "forming, leaning trend up" if leaning else "forming, no trend yet"
        return SymbolVerdict(symbol, leaning, label, f"{text} {_evidence_text(evidence)}")
    if label is Regime.RANGE:
        crosses = _evidence_text(evidence, crosses_only=True)
        return SymbolVerdict(symbol, False, label, f"range {crosses}")
    if label is Regime.TREND_DOWN:
        return SymbolVerdict(symbol, False, label, f"trend down {_evidence_text(evidence)}")
    return SymbolVerdict(symbol, False, label, f"{label.value.replace('_', ' ')}")


def day_verdicts(
    symbols: Sequence[str],
    day: date,
    updates: Mapping[str, RadarUpdate],
    events: EventCalendar,
    params: SignalParams,
) -> tuple[SymbolVerdict, ...]:
    """One verdict per watched symbol, in watchlist order."""
    return tuple(verdict_for(s, day, updates.get(s.upper()), events, params) for s in symbols)


__all__ = ["day_verdicts", "verdict_for"]
