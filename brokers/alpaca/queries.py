"""Paginated reads (orders, FILL activities) and the account-level answers that are not
part of the Broker protocol (market clock, calendar, close-all results)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from loguru import logger

from brokers.alpaca.mapping import MappingError, dec, order_from_json, parse_ts
from core.broker import BrokerError
from core.domain import OrderSnapshot

Json = Mapping[str, Any]
ORDERS_PAGE = 500  # Alpaca's maximum `limit` for GET /v2/orders
FILLS_PAGE = 100  # and `page_size` for account activities
MAX_PAGES = 200  # a runaway guard: 100,000 orders / 20,000 fills
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class MarketClock:
    timestamp: datetime
    is_open: bool
    next_open: datetime
    next_close: datetime


@dataclass(frozen=True, slots=True)
class CalendarDay:
    day: date
    open: datetime
    close: datetime


@dataclass(frozen=True, slots=True)
class CloseResult:
    """One symbol of `close_all_positions` (HTTP 207): the closing order, or why not."""

    symbol: str
    status: int
    order: OrderSnapshot | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300 and self.order is not None


OrdersPage = Callable[[int, datetime | None], Awaitable[list[Json]]]


async def all_orders(
    fetch: OrdersPage, limit: int, remember: Callable[[Json], OrderSnapshot]
) -> list[OrderSnapshot]:
    """Newest first, up to `limit`, paging backwards with `until` (exclusive). Each page
    restarts just past its oldest order, so orders sharing that timestamp are fetched
    again and de-duplicated rather than skipped."""
    seen: dict[str, OrderSnapshot] = {}
    ids: set[str] = set()
    until: datetime | None = None
    for _ in range(MAX_PAGES):
        if len(seen) >= limit:
            break
        # Full pages even near `limit`: each page repeats the boundary orders of the last,
        # so a page sized to the remainder could hold nothing new.
        size = ORDERS_PAGE if limit > ORDERS_PAGE or seen else min(ORDERS_PAGE, limit)
        page = await fetch(size, until)
        fresh = [raw for raw in page if str(raw.get("id")) not in ids]
        for raw in fresh:
            ids.add(str(raw.get("id")))
            try:
                snapshot = remember(raw)
            except MappingError as exc:  # e.g. an options order placed elsewhere
                logger.error("alpaca: order not representable, skipped: {}", exc)
                continue
            seen[snapshot.broker_order_id] = snapshot
        stamps = [t for raw in page if (t := parse_ts(raw.get("created_at"))) is not None]
        if len(page) < size or not fresh or not stamps:
            break
        until = min(stamps) + timedelta(microseconds=1)
    ordered = sorted(seen.values(), key=lambda o: o.created_at or _EPOCH, reverse=True)
    return ordered[:limit]


async def all_fill_activities(
    fetch: Callable[[dict[str, Any]], Awaitable[list[Json]]], since: datetime
) -> list[Json]:
    """Every FILL activity after `since` (minus a millisecond: `after` is exclusive)."""
    params: dict[str, Any] = {
        "after": (since - timedelta(milliseconds=1)).isoformat(),
        "direction": "asc",
        "page_size": FILLS_PAGE,
    }
    activities: list[Json] = []
    for _ in range(MAX_PAGES):
        page = await fetch(dict(params))
        activities.extend(page)
        if len(page) < FILLS_PAGE:
            break
        params["page_token"] = page[-1]["id"]
    return activities


def cum_qty(activity: Json) -> Decimal:
    """Partial fills in the same millisecond come back in any order (Alpaca-API #170);
    the order's cumulative quantity puts them back in sequence."""
    try:
        return dec(activity.get("cum_qty"), "cum_qty")
    except MappingError:
        return Decimal(0)


def market_clock(raw: Json) -> MarketClock:
    now, next_open, next_close = (
        parse_ts(raw.get(k)) for k in ("timestamp", "next_open", "next_close")
    )
    if now is None or next_open is None or next_close is None:
        raise BrokerError(f"unreadable market clock: {dict(raw)}")
    return MarketClock(now, bool(raw.get("is_open")), next_open, next_close)


def close_results(raw: list[Json] | None) -> list[CloseResult]:
    results = []
    for item in raw or []:
        body = item.get("body") or {}
        status = int(item.get("status") or 0)
        symbol = str(item.get("symbol"))
        if 200 <= status < 300 and body.get("id"):
            try:
                results.append(CloseResult(symbol, status, order_from_json(body)))
                continue
            except MappingError as exc:
                logger.error("alpaca: closing order for {} unreadable: {}", symbol, exc)
        results.append(CloseResult(symbol, status, error=str(body.get("message") or body)))
    return results


__all__ = [
    "CalendarDay",
    "CloseResult",
    "MarketClock",
    "all_fill_activities",
    "all_orders",
    "close_results",
    "cum_qty",
    "market_clock",
]
