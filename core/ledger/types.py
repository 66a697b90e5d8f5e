"""Column types and ledger-only enumerations.

Why custom types: the ledger must behave identically on SQLite (default, single user) and
PostgreSQL (server deployment).

- `Money` keeps Decimals exact. PostgreSQL has a real `NUMERIC(24, 10)`; SQLite's NUMERIC
  affinity silently turns "191.5234" into a binary float, so there the value is stored as
  its canonical decimal string instead. Both backends get the same rounding (10 places,
  half away from zero, as PostgreSQL does) and the same overflow error (more than 14
  integer digits), and both return a normalised `Decimal` ("191.5200000000" -> "191.52").
  Consequence: on SQLite, ordering or arithmetic on a Money column inside SQL compares
  strings. Filter on money in Python, never in a WHERE clause (equality is fine: the
  stored string is canonical).
- `UtcDateTime` stores instants. A naive datetime is refused (it is a bug: which zone?);
  aware values are converted to UTC and come back as UTC-aware on both backends. On
  SQLite they are stored as fixed-width UTC text, so ordering and range filters in SQL
  are chronological there too.

The enumerations here are states owned by the ledger's own rows (drafts, notifications,
protection links...). Order states, sides and types come from `core.domain`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import DateTime, Dialect, Numeric, String
from sqlalchemy.types import TypeDecorator, TypeEngine

from core.clock import ensure_aware
from core.domain import MoneyError, to_decimal

MONEY_PRECISION = 24
MONEY_SCALE = 10
_QUANTUM = Decimal(1).scaleb(-MONEY_SCALE)
_MAX_INTEGER_DIGITS = MONEY_PRECISION - MONEY_SCALE
_SQLITE_MONEY_LENGTH = MONEY_PRECISION + 2  # digits, sign and decimal point


def normalize_decimal(value: Decimal) -> Decimal:
    """Strip trailing zeros without switching to exponent notation ("100", not "1E+2")."""
    if value == 0:
        return Decimal(0)  # also turns -0 into 0
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


def to_money(value: Decimal | int | str) -> Decimal:
    """The exact Decimal a Money column will hold: rounded to 10 places, overflow refused."""
    number = to_decimal(value)
    rounded = number.quantize(_QUANTUM, rounding=ROUND_HALF_UP)
    if rounded.adjusted() >= _MAX_INTEGER_DIGITS:
        raise MoneyError(
            f"{value!r} does not fit NUMERIC({MONEY_PRECISION}, {MONEY_SCALE}): "
            f"more than {_MAX_INTEGER_DIGITS} integer digits"
        )
    return normalize_decimal(rounded)


def to_utc(value: datetime) -> datetime:
    """The same instant in UTC; a naive datetime raises `NaiveDatetimeError`."""
    return ensure_aware(value).astimezone(UTC)


class Money(TypeDecorator[Decimal]):
    """Exact decimal: NUMERIC(24, 10) on PostgreSQL, canonical decimal text on SQLite."""

    impl = Numeric(MONEY_PRECISION, MONEY_SCALE, asdecimal=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(_SQLITE_MONEY_LENGTH))
        return dialect.type_descriptor(Numeric(MONEY_PRECISION, MONEY_SCALE, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        money = to_money(value)
        return format(money, "f") if dialect.name == "sqlite" else money

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if isinstance(value, float):  # never written by us; refuse to guess
            raise MoneyError(f"Money column returned a float {value!r}: column type is wrong")
        return normalize_decimal(Decimal(value))

    @property
    def python_type(self) -> type[Decimal]:
        return Decimal


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware instant: TIMESTAMPTZ on PostgreSQL, UTC text on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(DateTime(timezone=False))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"UtcDateTime needs a datetime, got {type(value).__name__}")
        utc = to_utc(value)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"UtcDateTime column returned {type(value).__name__}")
        if value.tzinfo is None:  # SQLite: stored as UTC without an offset
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    @property
    def python_type(self) -> type[datetime]:
        return datetime


ENUM_LENGTH = 32
"""Stored length of every enumeration column: room to add values without a migration."""


class BrokerKind(StrEnum):
    SIM = "sim"
    ALPACA = "alpaca"
    IBKR = "ibkr"


class AccountMode(StrEnum):
    PAPER = "paper"
    LIVE = "live"


class DraftStatus(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    CANCELED = "canceled"
    EXPIRED = "expired"


class SignalStatus(StrEnum):
    NEW = "new"
    DRAFTED = "drafted"
    SKIPPED = "skipped"
    EXPIRED = "expired"


class EventSource(StrEnum):
    """Who caused an order event."""

    BROKER = "broker"
    ENGINE = "engine"
    RECONCILE = "reconcile"
    USER = "user"


class PositionSource(StrEnum):
    BROKER = "broker"
    LEDGER = "ledger"


class ProtectionKind(StrEnum):
    TRAILING = "trailing"
    STOP = "stop"
    ATTACHED = "attached"


class ProtectionStatus(StrEnum):
    ACTIVE = "active"
    SUPERSEDED = "superseded"
    CANCELED = "canceled"
    CLOSED = "closed"


class NotificationStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    SILENCED = "silenced"
    FAILED = "failed"


class AuditKind(StrEnum):
    COMMAND = "command"
    BUTTON = "button"
    DENIED = "denied"
