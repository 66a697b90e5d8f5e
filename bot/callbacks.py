"""Callback data: a small versioned codec, at most 64 bytes, pointing at ledger rows.

Format: `<version>:<action>[:<arg>]*`, e.g. `1:dc:42` (confirm draft 42) or
`1:bz:AAPL:101.2:99.5:50` (buy AAPL, trigger 101.20, stop 99.50, 50 shares).

Why this shape:
- Buttons carry *references* (draft id, order row id, signal id) and the exact values
  shown on the button, never state kept in memory: a button keeps working after a
  restart, and what it does is decided by the ledger's row at the time of the tap
  (a confirmed draft says so, an expired one says so).
- Every action has a fixed argument schema; decoding checks it strictly, so a forged
  or garbled payload is a clean `CallbackError`, never an exception deep in a handler.
- The version lets a future layout change tell an old button from garbage
  (`StaleCallback`: "this button is from an older version").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

VERSION = "1"
SEP = ":"
MAX_BYTES = 64


class CallbackError(ValueError):
    """Not callback data this bot could have made."""


class StaleCallback(CallbackError):
    """Made by another version of the bot (the button predates an upgrade)."""


class Arg(StrEnum):
    INT = "int"  # a ledger row id, a count, an epoch second
    SYM = "sym"  # a US stock symbol
    DEC = "dec"  # a price or quantity
    WORD = "word"  # a command, account name, notification kind or level


_PATTERNS: dict[Arg, re.Pattern[str]] = {
    Arg.INT: re.compile(r"(0|[1-9][0-9]{0,11})", re.ASCII),
    Arg.SYM: re.compile(r"[A-Z][A-Z0-9.\-]{0,9}", re.ASCII),
    Arg.DEC: re.compile(r"(0|[1-9][0-9]{0,6})(\.[0-9]{1,4})?", re.ASCII),
    Arg.WORD: re.compile(r"[a-z][a-z0-9_\-]{0,31}", re.ASCII),
}


class Action(StrEnum):
    MENU = "m"  # open a command from the menu (word: command)
    CLOSE = "x"  # remove the keyboard
    STATUS_REFRESH = "sr"
    BUY_SYMBOL = "bs"  # (sym)
    BUY_TRIGGER = "bt"  # (sym, trigger, stop)
    BUY_CUSTOM = "bc"  # (sym) -> typed price
    BUY_SIZE = "bz"  # (sym, trigger, stop, qty) -> creates the draft
    SELL_SYMBOL = "ss"  # (sym)
    SELL_STOP = "sp"  # (sym, stop) -> creates the draft
    SELL_CUSTOM = "sc"  # (sym) -> typed price
    DRAFT_CONFIRM = "dc"  # (draft)
    DRAFT_EDIT = "de"  # (draft)
    DRAFT_CANCEL = "dx"  # (draft)
    DRAFT_VIEW = "dv"  # (draft)
    DRAFT_TRIGGER = "dt"  # (draft) -> typed price
    DRAFT_STOP = "dp"  # (draft) -> typed price
    DRAFT_QTY = "dq"  # (draft, qty)
    LIST_TOGGLE = "dl"  # (draft) select in /drafts
    LIST_CONFIRM_SELECTED = "dk"
    LIST_CONFIRM_RANGE = "da"  # (first draft, last draft)
    ORDER_CANCEL = "oc"  # (order row)
    ORDER_CANCEL_SURE = "oy"  # (order row) second tap for a protection order
    FLATTEN = "fl"  # (sym, account)
    FLATTEN_SURE = "fy"  # (sym, account)
    PROTECT_RETRY = "pr"  # (sym, account)
    KILL_PREVIEWED = "k1"  # (issued at, epoch seconds)
    KILL_SURE = "k2"  # (issued at, epoch seconds)
    KILL_ABORT = "k0"
    DAY_ALLOW = "ya"
    DAY_DENY = "yd"
    SIGNAL_DRAFT = "sd"  # (signal)
    SIGNAL_SKIP = "sk"  # (signal)
    SIGNAL_MUTE = "sm"  # (sym)
    ACCOUNT_USE = "au"  # (account)
    MUTE_SET = "mk"  # (kind, level)


SCHEMA: dict[Action, tuple[Arg, ...]] = {
    Action.MENU: (Arg.WORD,),
    Action.CLOSE: (),
    Action.STATUS_REFRESH: (),
    Action.BUY_SYMBOL: (Arg.SYM,),
    Action.BUY_TRIGGER: (Arg.SYM, Arg.DEC, Arg.DEC),
    Action.BUY_CUSTOM: (Arg.SYM,),
    Action.BUY_SIZE: (Arg.SYM, Arg.DEC, Arg.DEC, Arg.DEC),
    Action.SELL_SYMBOL: (Arg.SYM,),
    Action.SELL_STOP: (Arg.SYM, Arg.DEC),
    Action.SELL_CUSTOM: (Arg.SYM,),
    Action.DRAFT_CONFIRM: (Arg.INT,),
    Action.DRAFT_EDIT: (Arg.INT,),
    Action.DRAFT_CANCEL: (Arg.INT,),
    Action.DRAFT_VIEW: (Arg.INT,),
    Action.DRAFT_TRIGGER: (Arg.INT,),
    Action.DRAFT_STOP: (Arg.INT,),
    Action.DRAFT_QTY: (Arg.INT, Arg.DEC),
    Action.LIST_TOGGLE: (Arg.INT,),
    Action.LIST_CONFIRM_SELECTED: (),
    Action.LIST_CONFIRM_RANGE: (Arg.INT, Arg.INT),
    Action.ORDER_CANCEL: (Arg.INT,),
    Action.ORDER_CANCEL_SURE: (Arg.INT,),
    Action.FLATTEN: (Arg.SYM, Arg.WORD),
    Action.FLATTEN_SURE: (Arg.SYM, Arg.WORD),
    Action.PROTECT_RETRY: (Arg.SYM, Arg.WORD),
    Action.KILL_PREVIEWED: (Arg.INT,),
    Action.KILL_SURE: (Arg.INT,),
    Action.KILL_ABORT: (),
    Action.DAY_ALLOW: (),
    Action.DAY_DENY: (),
    Action.SIGNAL_DRAFT: (Arg.INT,),
    Action.SIGNAL_SKIP: (Arg.INT,),
    Action.SIGNAL_MUTE: (Arg.SYM,),
    Action.ACCOUNT_USE: (Arg.WORD,),
    Action.MUTE_SET: (Arg.WORD, Arg.WORD),
}

Value = int | str | Decimal


@dataclass(frozen=True, slots=True)
class Callback:
    action: Action
    args: tuple[Value, ...] = ()

    def integer(self, i: int) -> int:
        value = self.args[i]
        assert isinstance(value, int)
        return value

    def decimal(self, i: int) -> Decimal:
        value = self.args[i]
        assert isinstance(value, Decimal)
        return value

    def text(self, i: int) -> str:
        value = self.args[i]
        assert isinstance(value, str)
        return value


def _format(kind: Arg, value: Value) -> str:
    if kind is Arg.INT:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"expected a non-negative int, got {value!r}")
        text = str(value)
    elif kind is Arg.DEC:
        if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
            raise ValueError(f"expected a non-negative Decimal, got {value!r}")
        text = f"{value.normalize():f}" if value != 0 else "0"
        if "." in text:
            text = text.rstrip("0").rstrip(".")
    else:
        text = str(value)
    if not _PATTERNS[kind].fullmatch(text):
        raise ValueError(f"{value!r} is not a valid {kind} argument")
    return text


def encode(action: Action, *args: Value) -> str:
    """Callback data for `action`; raises ValueError on a programming error (bad argument,
    or more than 64 bytes)."""
    schema = SCHEMA[action]
    if len(args) != len(schema):
        raise ValueError(f"{action.name} takes {len(schema)} argument(s), got {len(args)}")
    data = SEP.join(
        [VERSION, action.value, *(_format(k, v) for k, v in zip(schema, args, strict=True))]
    )
    if len(data.encode("utf-8")) > MAX_BYTES:
        raise ValueError(f"callback data over {MAX_BYTES} bytes: {data!r}")
    return data


def _parse(kind: Arg, text: str) -> Value:
    if not _PATTERNS[kind].fullmatch(text):
        raise CallbackError(f"bad {kind} argument {text!r}")
    if kind is Arg.INT:
        return int(text)
    if kind is Arg.DEC:
        return Decimal(text)
    return text


def decode(data: object) -> Callback:
    """The callback behind `data`; `CallbackError` (or `StaleCallback`) when it is not ours."""
    if not isinstance(data, str) or not data:
        raise CallbackError("no callback data")
    if len(data.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise CallbackError("callback data too long")
    version, _, rest = data.partition(SEP)
    if version != VERSION:
        if re.fullmatch(r"[0-9]{1,3}", version, re.ASCII):
            raise StaleCallback(f"callback version {version}, this bot speaks {VERSION}")
        raise CallbackError("not a callback of this bot")
    parts = rest.split(SEP) if rest else [""]
    try:
        action = Action(parts[0])
    except ValueError:
        raise CallbackError(f"unknown action {parts[0]!r}") from None
    schema = SCHEMA[action]
    values = parts[1:]
    if len(values) != len(schema):
        raise CallbackError(f"{action.name} takes {len(schema)} argument(s)")
    return Callback(action, tuple(_parse(k, v) for k, v in zip(schema, values, strict=True)))


def pattern(*actions: Action) -> re.Pattern[str]:
    """A CallbackQueryHandler pattern for these actions (any version: the handler's
    decode says whether the button is stale)."""
    codes = "|".join(re.escape(a.value) for a in actions)
    return re.compile(rf"^[0-9]{{1,3}}{SEP}(?:{codes})(?:{SEP}|$)")


__all__ = [
    "MAX_BYTES",
    "SCHEMA",
    "VERSION",
    "Action",
    "Arg",
    "Callback",
    "CallbackError",
    "StaleCallback",
    "decode",
    "encode",
    "pattern",
]
