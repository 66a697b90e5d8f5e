"""Deterministic client order ids (also used as IBKR `orderRef`).

A client order id is derived from WHAT the order is for, never from how many times we
tried to send it: a retry of the same intent reuses the same id, so the broker's
uniqueness rule turns a blind resend into a harmless `DuplicateClientOrderId` instead of
a second order.

Shape: `<namespace>-<scope>-<purpose><attempt>`, at most 48 characters, e.g.
`k3x9ab-d17-en1` (entry of draft 17, first attempt) or `k3x9ab-o42-ts1` (trailing stop
protecting entry order 42).

How the ids stay unique forever (Alpaca refuses a reused id even years later):
- `namespace` is derived from the ledger's account row (its creation instant, in base 36):
  a ledger recreated from scratch against the same broker account gets a new namespace,
  so its draft 1 does not collide with the old ledger's draft 1.
- `scope` is a ledger row id (drafts and orders use SQLite AUTOINCREMENT / PostgreSQL
  sequences: never reused) or, for work that has no row of its own (protecting a position
  adopted from the broker, a kill's flatten), the symbol.
- `attempt` counts the intents already written for the same scope and purpose (read from
  the ledger, where intents are written before any broker call and never deleted). A new
  attempt exists only when the previous intent is known to have failed (rejected, never
  reached the broker): that is a new order, not a retry of the old one.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum

from core.domain import ClientOrderId

MAX_LENGTH = 48
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_SCOPE = re.compile(r"^[a-z][a-z0-9.]{0,20}$")
_NAMESPACE = re.compile(r"^[a-z0-9]{1,10}$")


class Purpose(StrEnum):
    """Why the order exists; two letters in the id."""

    ENTRY = "en"  # a confirmed stop-buy draft
    ATTACHED = "at"  # the trailing stop attached to an entry at the broker (IBKR child)
    TRAILING = "ts"  # trailing-stop protection of a fill
    PLAIN_STOP = "sp"  # the fallback plain stop at the initial stop
    USER_STOP = "us"  # a stop-sell draft replacing the protection
    RETRAIL = "tr"  # /trail: the replacement of a trailing stop
    FLATTEN = "fl"  # kill / unprotected auto-flatten / end of day


def base36(number: int) -> str:
    if number < 0:
        raise ValueError(f"base36 of a negative number {number}")
    digits = ""
    while True:
        number, rest = divmod(number, 36)
        digits = _ALPHABET[rest] + digits
        if number == 0:
            return digits


def namespace_for(account_created_at: datetime) -> str:
    """The account row's creation instant in base 36 (6 characters until 2038+)."""
    return base36(int(account_created_at.timestamp()))


def draft_scope(draft_id: int) -> str:
    return f"d{draft_id}"


def order_scope(order_id: int) -> str:
    return f"o{order_id}"


def symbol_scope(symbol: str) -> str:
    return "s" + symbol.lower().replace("-", ".")


def prefix(namespace: str, scope: str, purpose: Purpose) -> str:
    """Everything but the attempt number (the ledger counts intents by this prefix)."""
    if not _NAMESPACE.match(namespace):
        raise ValueError(f"bad client id namespace {namespace!r}")
    if not _SCOPE.match(scope):
        raise ValueError(f"bad client id scope {scope!r}")
    return f"{namespace}-{scope}-{purpose.value}"


def client_order_id(namespace: str, scope: str, purpose: Purpose, attempt: int) -> ClientOrderId:
    if attempt < 1:
        raise ValueError(f"attempts count from 1, got {attempt}")
    value = f"{prefix(namespace, scope, purpose)}{attempt}"
    if len(value) > MAX_LENGTH:
        raise ValueError(f"client order id {value!r} is longer than {MAX_LENGTH}")
    return ClientOrderId(value)


def attempt_of(client_id: str, id_prefix: str) -> int | None:
    """The attempt number of `client_id` if it carries `id_prefix`, else None."""
    if not client_id.startswith(id_prefix):
        return None
    tail = client_id[len(id_prefix) :]
    return int(tail) if tail.isdigit() else None


def next_attempt(existing: list[str], id_prefix: str) -> int:
    """One more than the highest attempt among `existing` ids with this prefix."""
    attempts = [a for a in (attempt_of(cid, id_prefix) for cid in existing) if a is not None]
    return max(attempts, default=0) + 1


__all__ = [
    "MAX_LENGTH",
    "Purpose",
    "attempt_of",
    "base36",
    "client_order_id",
    "draft_scope",
    "namespace_for",
    "next_attempt",
    "order_scope",
    "prefix",
    "symbol_scope",
]
