"""Trail policy: how far below the high a symbol's trailing stop sits.

The trail should sit outside a symbol's normal intraday noise. Noise is measured as the
range (high - low) of each `trail_bar_minutes` bar, as % of its close, over the last
`trail_lookback_sessions` sessions; a high percentile of those ranges picks a bucket
(low / medium / high) and the bucket's trail. Event days widen it. Overrides win.

Precedence: a runtime `/trail` for that day (used exactly as typed, never widened) >
a config override > the policy > `default_trail_pct`. Config overrides and the default are
widened on event days like the policy: they stand for a normal day's noise.

Decisions where DESIGN.md is silent:
- Only regular-hours bars of sessions strictly before the decision day count, so the trail
  does not depend on the minute of the fill (today's partial session is ignored).
- 1-minute bars are grouped into buckets aligned to the session open (09:30, 09:35, ...);
  a bucket with missing minutes still counts (thin symbols have gaps). Bars as long as the
  bucket or longer are used as they are.
- "Enough history" means at least half the lookback sessions (rounded up) have bars.
- The percentile interpolates linearly between ranks (numpy's default), in Decimal, so
  the result is exact and repeatable.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from enum import StrEnum

from core.calendar import CalendarRangeError, TradingCalendar
from core.config_models import ProtectionConfig, TrailBucket
from core.event_calendar import EventCalendar
from core.marketdata.bar import Bar

TRAIL_STEP = Decimal("0.01")
NOISE_STEP = Decimal("0.0001")
HUNDRED = Decimal(100)


class TrailSource(StrEnum):
    POLICY = "policy"
    OVERRIDE = "override"
    RUNTIME = "runtime"
    DEFAULT = "default"


@dataclass(frozen=True, slots=True)
class RuntimeTrail:
    """A `/trail SYM 1.2%` set by the trader; it applies to `day` only."""

    symbol: str
    day: date
    trail_pct: Decimal


@dataclass(frozen=True, slots=True)
class TrailDecision:
    symbol: str
    trail_pct: Decimal
    bucket: str | None  # the bucket the noise falls in (None without enough history)
    noise_pct: Decimal | None
    sessions_used: int
    source: TrailSource
    event_widened: bool
    explanation: str  # one line for the chat


def percentile(values: Sequence[Decimal], pct: Decimal) -> Decimal:
    """Linear interpolation between closest ranks; `values` need not be sorted."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (pct / HUNDRED) * (len(ordered) - 1)
    low = int(rank.to_integral_value(rounding=ROUND_FLOOR))
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def session_ranges(
    bars: Iterable[Bar], calendar: TradingCalendar, bucket_minutes: int, before: date
) -> dict[date, list[Decimal]]:
    """Per session before `before`: each bucket's (high - low) / close in %."""
    size = timedelta(minutes=bucket_minutes)
    groups: dict[tuple[date, int], list[Bar]] = {}
    for bar in bars:
        try:
            session = calendar.session_for_instant(bar.start)
        except CalendarRangeError:
            continue
        if session is None or session.day >= before:
            continue
        # A long bar keeps its own slot; short bars share the slot of their bucket.
        offset = bar.start - session.open
        slot = offset // size if bar.size < size else -1 - int(offset.total_seconds())
        groups.setdefault((session.day, slot), []).append(bar)
    out: dict[date, list[Decimal]] = {}
    for (day, _), members in sorted(groups.items()):
        high = max(b.high for b in members)
        low = min(b.low for b in members)
        close = max(members, key=lambda b: b.start).close
        if close > 0:
            out.setdefault(day, []).append((high - low) / close * HUNDRED)
    return out


def _pick_bucket(buckets: Sequence[TrailBucket], noise: Decimal) -> TrailBucket:
    for bucket in buckets:
        if bucket.up_to_range_pct is None or noise <= bucket.up_to_range_pct:
            return bucket
    return buckets[-1]  # unreachable with a validated config: the last bucket is open


def _round(pct: Decimal) -> Decimal:
    return max(pct.quantize(TRAIL_STEP, rounding=ROUND_HALF_UP), TRAIL_STEP)


def _pct(value: Decimal) -> str:
    return f"{value:.2f}%"


class TrailPolicy:
    def __init__(
        self,
        config: ProtectionConfig,
        events: EventCalendar,
        calendar: TradingCalendar,
        *,
        min_sessions: int | None = None,
    ) -> None:
        self.config = config
        self.events = events
        self.calendar = calendar
        lookback = config.trail_lookback_sessions
        self.min_sessions = min_sessions if min_sessions is not None else (lookback + 1) // 2

    def decide(
        self,
        symbol: str,
        bars: Iterable[Bar],
        *,
        day: date,
        runtime: RuntimeTrail | None = None,
    ) -> TrailDecision:
        """The trail for `symbol` on `day` from its recent bars (any symbol's bars ignored)."""
        cfg, symbol = self.config, symbol.upper()
        own = (b for b in bars if b.symbol.upper() == symbol)
        by_day = session_ranges(own, self.calendar, cfg.trail_bar_minutes, day)
        recent = sorted(by_day)[-cfg.trail_lookback_sessions :]
        ranges = [r for d in recent for r in by_day[d]]
        used = len(recent)
        noise: Decimal | None = None
        bucket: TrailBucket | None = None
        if used >= self.min_sessions and ranges:
            noise = percentile(ranges, cfg.trail_percentile).quantize(NOISE_STEP, ROUND_HALF_UP)
            bucket = _pick_bucket(cfg.trail_buckets, noise)
        p = f"p{cfg.trail_percentile.normalize():f}"
        seen = (
            f"{p} of {cfg.trail_bar_minutes}-min ranges {_pct(noise)} over {used} sessions"
            if noise is not None and bucket is not None
            else f"only {used} of {cfg.trail_lookback_sessions} sessions of history"
        )
        name = bucket.name if bucket is not None else None

        def decision(pct: Decimal, source: TrailSource, widened: bool, why: str) -> TrailDecision:
            pct = _round(pct)
            line = f"{symbol} trail {_pct(pct)}: {why}"
            return TrailDecision(symbol, pct, name, noise, used, source, widened, line)

        if runtime is not None and runtime.symbol.upper() == symbol and runtime.day == day:
            return decision(
                runtime.trail_pct, TrailSource.RUNTIME, False, f"set by /trail for {day}"
            )
        if symbol in cfg.trail_overrides:
            base, source = cfg.trail_overrides[symbol], TrailSource.OVERRIDE
            why = f"config override {_pct(base)} ({seen})"
        elif bucket is not None:
            base, source = bucket.trail_pct, TrailSource.POLICY
            why = f"{seen} -> {bucket.name} {_pct(base)}"
        else:
            base, source = cfg.default_trail_pct, TrailSource.DEFAULT
            why = f"default {_pct(base)}, {seen}"
        if self.events.is_event_day(symbol, day) and cfg.event_day_widen_factor > 1:
            factor = cfg.event_day_widen_factor
            why += f", x{factor.normalize():f} on an event day"
            return decision(base * factor, source, True, why)
        return decision(base, source, False, why)
