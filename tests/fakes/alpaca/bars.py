"""Bars: storage shape, timeframe aggregation, and the REST / stream encodings."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgpack

from .models import AlpacaAPIError
from .sessions import NEW_YORK
from .wire import ts

_TIMEFRAME = re.compile(r"^(\d+)(Min|T|Hour|H|Day|D)$")


@dataclass(frozen=True)
class BarRecord:
    symbol: str
    t: datetime  # bar start, aware UTC
    o: Decimal
    h: Decimal
    low: Decimal
    c: Decimal
    v: int
    n: int | None = None
    vw: Decimal | None = None


def parse_timeframe(text: str) -> tuple[int, str]:
    """'1Min' / '5T' / '1Hour' / '1Day' to (amount, 'Min'|'Hour'|'Day')."""
    match = _TIMEFRAME.match(text or "")
    if not match:
        raise AlpacaAPIError(422, 42210000, f"invalid timeframe: {text}")
    amount, unit = int(match.group(1)), match.group(2)
    unit = {"T": "Min", "H": "Hour", "D": "Day"}.get(unit, unit)
    limits = {"Min": 59, "Hour": 23, "Day": 1}
    if not 1 <= amount <= limits[unit]:
        raise AlpacaAPIError(422, 42210000, f"invalid timeframe: {text}")
    return amount, unit


def _bucket(t: datetime, amount: int, unit: str) -> datetime:
    if unit == "Day":
        local = t.astimezone(NEW_YORK)
        return datetime(local.year, local.month, local.day, tzinfo=NEW_YORK).astimezone(UTC)
    minutes = amount * (60 if unit == "Hour" else 1)
    epoch_min = int(t.timestamp() // 60)
    return datetime.fromtimestamp((epoch_min - epoch_min % minutes) * 60, tz=UTC)


def aggregate(bars: Iterable[BarRecord], amount: int, unit: str) -> list[BarRecord]:
    """Roll 1-minute bars up to the timeframe (vwap volume-weighted, counts summed)."""
    if (amount, unit) == (1, "Min"):
        return list(bars)
    groups: dict[datetime, list[BarRecord]] = {}
    for bar in bars:
        groups.setdefault(_bucket(bar.t, amount, unit), []).append(bar)
    out: list[BarRecord] = []
    for start, group in sorted(groups.items()):
        volume = sum(b.v for b in group)
        weighted = sum(((b.vw or b.c) * b.v for b in group), Decimal(0))
        out.append(
            BarRecord(
                symbol=group[0].symbol,
                t=start,
                o=group[0].o,
                h=max(b.h for b in group),
                low=min(b.low for b in group),
                c=group[-1].c,
                v=volume,
                n=sum(b.n or 0 for b in group),
                vw=(weighted / volume) if volume else group[-1].c,
            )
        )
    return out


def bar_rest_json(bar: BarRecord) -> dict[str, Any]:
    """The market-data REST shape: numbers are JSON numbers, `t` RFC 3339."""
    return {
        "t": ts(bar.t),
        "o": float(bar.o),
        "h": float(bar.h),
        "l": float(bar.low),
        "c": float(bar.c),
        "v": bar.v,
        "n": bar.n,
        "vw": None if bar.vw is None else float(bar.vw),
    }


def bar_stream_msg(bar: BarRecord, *, msgpack_time: bool) -> dict[str, Any]:
    """A `b` message; `t` is a msgpack Timestamp (ext type -1) on msgpack connections."""
    stamp: Any = msgpack.Timestamp.from_datetime(bar.t) if msgpack_time else ts(bar.t)
    return {
        "T": "b",
        "S": bar.symbol,
        "o": float(bar.o),
        "h": float(bar.h),
        "l": float(bar.low),
        "c": float(bar.c),
        "v": bar.v,
        "t": stamp,
        "n": bar.n,
        "vw": None if bar.vw is None else float(bar.vw),
    }


ONE_MINUTE = timedelta(minutes=1)
