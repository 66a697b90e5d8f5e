"""Strict parsing of command arguments: a value, or `UsageError` with one line of why.

Strict means: ASCII digits only (Python's Decimal would accept Arabic-Indic digits,
"NaN", "1e3" and "Infinity"), bounded sizes, no trailing junk, and every command says its
correct usage when the input is wrong. Nothing here raises anything but `UsageError`
(the fuzz tests hold that); the handlers turn it into a one-line reply.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from core.config_models import NOTIFICATION_KINDS, SYMBOL_PATTERN
from core.logs import redact

USAGE: dict[str, str] = {
    "buy": "/buy SYM [trigger] [qty|$risk]   e.g. /buy AAPL 191.50 $100",
    "sell": "/sell SYM [trigger] [qty]   e.g. /sell AAPL 189.90",
    "trail": "/trail SYM PCT%   e.g. /trail AAPL 1.2%",
    "pnl": "/pnl [day|week|month]",
    "regime": "/regime [SYM]",
    "signals": "/signals [YYYY-MM-DD|today|yesterday]",
    "report": "/report [YYYY-MM-DD|today|yesterday]",
    "account": "/account [name]",
    "mute": "/mute [kind]   kinds: " + ", ".join(NOTIFICATION_KINDS),
    "unmute": "/unmute [kind]",
    "cancel": "/cancel [SYM]",
    "price": "a price like 191.52, optionally followed by the stop: 191.52 189.90",
}
PERIODS = ("day", "week", "month")

_PRICE = re.compile(r"\$?([0-9]{1,7})(?:\.([0-9]{1,4}))?", re.ASCII)
_QTY = re.compile(r"[1-9][0-9]{0,6}", re.ASCII)
_RISK = re.compile(r"\$([0-9]{1,6})(?:\.([0-9]{1,2}))?", re.ASCII)
_PCT = re.compile(r"([0-9]{1,2})(?:\.([0-9]{1,3}))?%?", re.ASCII)
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})", re.ASCII)
_ACCOUNT = re.compile(r"[a-z][a-z0-9_\-]{0,31}", re.ASCII)
_SHOWN = 24  # echo at most this much of a bad argument


class UsageError(ValueError):
    """Bad input: `reason` is one line, `usage` the correct form."""

    def __init__(self, reason: str, usage: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.usage = usage


def shown(text: str) -> str:
    """A bad argument, shortened for the reply (the caller escapes it). Redacted first:
    the reply is also the audit row's result, and a token cut short no longer looks like
    one to the audit's own redaction."""
    text = redact(text.replace("\n", " "))
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def _decimal(whole: str, frac: str | None) -> Decimal:
    return Decimal(f"{whole}.{frac}") if frac else Decimal(whole)


def parse_symbol(text: str, usage: str) -> str:
    symbol = text.strip().upper()
    if not symbol.isascii() or not SYMBOL_PATTERN.match(symbol):
        raise UsageError(f"'{shown(text)}' is not a US stock symbol", usage)
    return symbol


def parse_price(text: str, usage: str) -> Decimal:
    match = _PRICE.fullmatch(text.strip())
    if match is None:
        raise UsageError(f"'{shown(text)}' is not a price (like 191.52)", usage)
    value = _decimal(match.group(1), match.group(2))
    if value <= 0:
        raise UsageError("a price must be above zero", usage)
    return value


def parse_qty(text: str, usage: str) -> Decimal:
    if not _QTY.fullmatch(text.strip()):
        raise UsageError(f"'{shown(text)}' is not a whole number of shares", usage)
    return Decimal(text.strip())


def parse_risk(text: str, usage: str) -> Decimal:
    match = _RISK.fullmatch(text.strip())
    if match is None:
        raise UsageError(f"'{shown(text)}' is not a $ risk (like $100)", usage)
    value = _decimal(match.group(1), match.group(2))
    if value <= 0:
        raise UsageError("the $ risk must be above zero", usage)
    return value


def parse_percent(text: str, usage: str) -> Decimal:
    match = _PCT.fullmatch(text.strip())
    if match is None:
        raise UsageError(f"'{shown(text)}' is not a percentage (like 1.2%)", usage)
    value = _decimal(match.group(1), match.group(2))
    if not Decimal(0) < value < Decimal(50):
        raise UsageError("the percentage must be above 0 and below 50", usage)
    return value


def parse_date(text: str, today: date, usage: str) -> date:
    word = text.strip().lower()
    if word == "today":
        return today
    if word == "yesterday":
        return today - timedelta(days=1)
    match = _DATE.fullmatch(word)
    if match is None:
        raise UsageError(f"'{shown(text)}' is not a date (YYYY-MM-DD)", usage)
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        raise UsageError(f"'{shown(text)}' is not a calendar date", usage) from None


def _at_most(args: Sequence[str], n: int, command: str) -> None:
    if len(args) > n:
        extra = " ".join(args[n:])
        raise UsageError(f"unexpected '{shown(extra)}'", USAGE.get(command, f"/{command}"))


def no_args(args: Sequence[str], command: str) -> None:
    if args:
        raise UsageError(f"/{command} takes no arguments", f"/{command}")


@dataclass(frozen=True, slots=True)
class BuyArgs:
    symbol: str | None = None
    trigger: Decimal | None = None
    qty: Decimal | None = None
    risk_usd: Decimal | None = None


def parse_buy(args: Sequence[str]) -> BuyArgs:
    usage = USAGE["buy"]
    _at_most(args, 3, "buy")
    if not args:
        return BuyArgs()
    symbol = parse_symbol(args[0], usage)
    trigger = parse_price(args[1], usage) if len(args) > 1 else None
    qty = risk = None
    if len(args) > 2:
        size = args[2].strip()
        if size.startswith("$"):
            risk = parse_risk(size, usage)
        else:
            qty = parse_qty(size, usage)
    return BuyArgs(symbol, trigger, qty, risk)


@dataclass(frozen=True, slots=True)
class SellArgs:
    symbol: str | None = None
    trigger: Decimal | None = None
    qty: Decimal | None = None


def parse_sell(args: Sequence[str]) -> SellArgs:
    usage = USAGE["sell"]
    _at_most(args, 3, "sell")
    if not args:
        return SellArgs()
    symbol = parse_symbol(args[0], usage)
    trigger = parse_price(args[1], usage) if len(args) > 1 else None
    qty = parse_qty(args[2], usage) if len(args) > 2 else None
    return SellArgs(symbol, trigger, qty)


def parse_trail(args: Sequence[str]) -> tuple[str, Decimal]:
    usage = USAGE["trail"]
    if len(args) != 2:
        raise UsageError("/trail needs a symbol and a percentage", usage)
    return parse_symbol(args[0], usage), parse_percent(args[1], usage)


def parse_period(args: Sequence[str]) -> str:
    _at_most(args, 1, "pnl")
    if not args:
        return "day"
    word = args[0].strip().lower()
    if word not in PERIODS:
        raise UsageError(f"'{shown(args[0])}' is not day, week or month", USAGE["pnl"])
    return word


def parse_optional_symbol(args: Sequence[str], command: str) -> str | None:
    _at_most(args, 1, command)
    return parse_symbol(args[0], USAGE[command]) if args else None


def parse_optional_date(args: Sequence[str], today: date, command: str) -> date | None:
    _at_most(args, 1, command)
    return parse_date(args[0], today, USAGE[command]) if args else None


def parse_account(args: Sequence[str]) -> str | None:
    _at_most(args, 1, "account")
    if not args:
        return None
    name = args[0].strip().lower()
    if not _ACCOUNT.fullmatch(name):
        raise UsageError(f"'{shown(args[0])}' is not an account name", USAGE["account"])
    return name


def parse_kind(args: Sequence[str], command: str) -> str | None:
    _at_most(args, 1, command)
    if not args:
        return None
    kind = args[0].strip().lower()
    if kind not in NOTIFICATION_KINDS:
        raise UsageError(f"'{shown(args[0])}' is not a notification kind", USAGE["mute"])
    return kind


def parse_price_reply(text: str, *, with_stop: bool) -> tuple[Decimal, Decimal | None]:
    """A typed answer to "which price?": `191.52` or, for a buy, `191.52 189.90`."""
    usage = USAGE["price"] if with_stop else "a price like 189.90"
    parts = text.split()
    if not parts or len(parts) > (2 if with_stop else 1):
        raise UsageError("send just the price", usage)
    price = parse_price(parts[0], usage)
    stop = parse_price(parts[1], usage) if len(parts) > 1 else None
    if stop is not None and stop >= price:
        raise UsageError("the stop must be below the trigger", usage)
    return price, stop


__all__ = [
    "PERIODS",
    "USAGE",
    "BuyArgs",
    "SellArgs",
    "UsageError",
    "no_args",
    "parse_account",
    "parse_buy",
    "parse_date",
    "parse_kind",
    "parse_optional_date",
    "parse_optional_symbol",
    "parse_percent",
    "parse_period",
    "parse_price",
    "parse_price_reply",
    "parse_qty",
    "parse_risk",
    "parse_sell",
    "parse_symbol",
    "parse_trail",
    "shown",
]
