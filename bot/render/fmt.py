"""Number, time and label formatting shared by every `render_*` (pure, no markup)."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from core.clock import NEW_YORK

SUB_PENNY = Decimal("0.0001")
CENT = Decimal("0.01")
NA = "n/a"


def money(value: Decimal | None) -> str:
    """$1,234.56 / -$46.00."""
    if value is None:
        return NA
    amount = value.quantize(CENT, rounding=ROUND_HALF_UP)
    sign = "-" if amount < 0 else ""
    return f"{sign}${abs(amount):,.2f}"


def signed_money(value: Decimal | None) -> str:
    """+$10.00 / -$46.00 (P&L reads better with the sign)."""
    if value is None:
        return NA
    text = money(value)
    return text if text.startswith("-") or value.quantize(CENT) == 0 else f"+{text}"


def price(value: Decimal | None) -> str:
    """At least two decimals, up to the sub-dollar tick's four; no thousands separator
    (a price is something the trader may type back)."""
    if value is None:
        return NA
    if value == value.quantize(CENT):
        return f"{value.quantize(CENT):f}"
    # Average fill prices (with simulated friction) can carry more digits than any tick:
    # show four, which is what a trader can read and type back.
    shown = value.quantize(SUB_PENNY, rounding=ROUND_HALF_UP)
    if shown == shown.quantize(CENT):
        return f"{shown.quantize(CENT):f}"
    return f"{shown.normalize():f}"


def qty(value: Decimal | None) -> str:
    if value is None:
        return NA
    if value == value.to_integral_value():
        return f"{int(value):,}"
    return f"{value.normalize():f}"


def pct(value: Decimal | None, places: int = 2) -> str:
    if value is None:
        return NA
    quantum = Decimal(1).scaleb(-places)
    text = f"{value.quantize(quantum, rounding=ROUND_HALF_UP):f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text}%"


def r_multiple(value: Decimal | None) -> str:
    if value is None:
        return NA
    return f"{value.quantize(CENT, rounding=ROUND_HALF_UP):+f}R"


def hhmm(moment: datetime | None) -> str:
    """New York wall time: the trader's clock, whatever the server's zone."""
    if moment is None:
        return NA
    return moment.astimezone(NEW_YORK).strftime("%H:%M")


def stamp(moment: datetime | None) -> str:
    if moment is None:
        return NA
    return moment.astimezone(NEW_YORK).strftime("%Y-%m-%d %H:%M ET")


def label(value: object) -> str:
    """An enum value as words: trading_allowed -> trading allowed; safe_mode -> SAFE MODE."""
    text = str(getattr(value, "value", value))
    if text == "safe_mode":
        return "SAFE MODE"
    return text.replace("_", " ")


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


__all__ = [
    "NA",
    "hhmm",
    "label",
    "money",
    "pct",
    "plural",
    "price",
    "qty",
    "r_multiple",
    "signed_money",
    "stamp",
]
