"""The ledger's tables, as typed SQLAlchemy 2 ORM classes.

Why it is shaped this way:
- Every row has an integer `id` and a UTC `created_at`; ids only grow (SQLite
  AUTOINCREMENT), so "id order" is "insertion order" (the notification outbox relies on it).
- `created_at` / `updated_at` are stamped from the injected `Clock` by the unit of work
  (see `uow.py`), never from the database server's clock: a replay or demo at 10x speed
  writes simulated times consistently.
- `Mapped[Decimal]` is `Money`, `Mapped[datetime]` is `UtcDateTime`, enums are stored as
  their string values (non-native, 32 chars, no CHECK: adding a value needs no migration),
  `dict[str, Any]` is JSON (not mutation-tracked: assign a new dict to change one).
  See `types.py` for why.
- Rows are named `...Row` so they never shadow the domain's `Fill`, `Position`, `Regime`.
- No ORM relationships: repositories run explicit queries, so nothing lazy-loads behind the
  engine's back, and rows stay usable after their unit of work has closed.
- Values are checked when assigned, not only when flushed: a naive datetime raises
  `NaiveDatetimeError` (and a float `MoneyError`) at the line that made the mistake, and
  the attribute holds exactly what the database will (UTC; Decimal rounded to 10 places).
- A constraint naming convention keeps names identical on SQLite and PostgreSQL, which is
  what lets Alembic autogenerate compare models against either database.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Enum,
    ForeignKey,
    Index,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Mapper, mapped_column

from core.domain import (
    TERMINAL_STATUSES,
    OrderRole,
    OrderStatus,
    OrderType,
    Regime,
    Side,
    TimeInForce,
)
from core.ledger.types import (
    ENUM_LENGTH,
    AccountMode,
    AuditKind,
    BrokerKind,
    DraftStatus,
    EventSource,
    Money,
    NotificationStatus,
    PositionSource,
    ProtectionKind,
    ProtectionStatus,
    SignalStatus,
    UtcDateTime,
    to_money,
    to_utc,
)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SYMBOL_LENGTH = 16
_SQLITE_AUTOINCREMENT = {"sqlite_autoincrement": True}


def _enum_values(enum_cls: type[enum.Enum]) -> list[str]:
    return [str(member.value) for member in enum_cls]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        Decimal: Money(),
        datetime: UtcDateTime(),
        dict[str, Any]: JSON(none_as_null=True),
        enum.Enum: Enum(
            enum.Enum,
            native_enum=False,
            length=ENUM_LENGTH,
            values_callable=_enum_values,
            validate_strings=True,
        ),
    }


def _checked_datetime(_target: Any, value: Any, _old: Any, _initiator: Any) -> Any:
    return None if value is None else to_utc(value)


def _checked_money(_target: Any, value: Any, _old: Any, _initiator: Any) -> Any:
    return None if value is None else to_money(value)


@event.listens_for(Base, "mapper_configured", propagate=True)
def _validate_on_assignment(mapper: Mapper[Any], cls: type[Any]) -> None:
    for prop in mapper.column_attrs:
        column_type = prop.columns[0].type
        if isinstance(column_type, UtcDateTime):
            event.listen(getattr(cls, prop.key), "set", _checked_datetime, retval=True)
        elif isinstance(column_type, Money):
            event.listen(getattr(cls, prop.key), "set", _checked_money, retval=True)


class _Row:
    """Columns every table has, placed first."""

    id: Mapped[int] = mapped_column(primary_key=True, sort_order=-2)
    created_at: Mapped[datetime] = mapped_column(sort_order=-1)


Json = dict[str, Any]


class AccountRow(_Row, Base):
    __tablename__ = "accounts"
    __table_args__ = (_SQLITE_AUTOINCREMENT,)

    name: Mapped[str] = mapped_column(String(64), unique=True)
    broker: Mapped[BrokerKind]
    mode: Mapped[AccountMode]
    external_account_id: Mapped[str | None] = mapped_column(String(64))


class SignalRow(_Row, Base):
    __tablename__ = "signals"
    __table_args__ = (
        UniqueConstraint("symbol", "session_date", "signal_time"),
        Index("ix_signals_session_date_symbol", "session_date", "symbol"),
        _SQLITE_AUTOINCREMENT,
    )

    symbol: Mapped[str] = mapped_column(String(SYMBOL_LENGTH))
    session_date: Mapped[date]
    signal_time: Mapped[datetime]
    trigger: Mapped[Decimal]
    stop: Mapped[Decimal]
    regime: Mapped[Regime | None]
    evidence: Mapped[Json | None]
    status: Mapped[SignalStatus] = mapped_column(default=SignalStatus.NEW)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)


class DraftRow(_Row, Base):
    __tablename__ = "drafts"
    __table_args__ = (
        Index("ix_drafts_account_id_status", "account_id", "status"),
        _SQLITE_AUTOINCREMENT,
    )

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    symbol: Mapped[str] = mapped_column(String(SYMBOL_LENGTH))
    side: Mapped[Side]
    order_type: Mapped[OrderType]
    trigger_price: Mapped[Decimal | None]
    limit_price: Mapped[Decimal | None]
    # The stop that sizes the trade: the trigger less the frozen `trail_percent`, the
    # protection's first level at a fill at the trigger (docs/one-stop.md).
    initial_stop: Mapped[Decimal | None]
    qty: Mapped[Decimal]
    risk_dollars: Mapped[Decimal | None]
    # Decided (or set by the trader) when the draft is made; the protection uses it.
    trail_percent: Mapped[Decimal | None]
    structure_stop: Mapped[Decimal | None]  # the signal's structural low: information only
    signal_id: Mapped[int | None] = mapped_column(ForeignKey("signals.id"), index=True)
    status: Mapped[DraftStatus] = mapped_column(default=DraftStatus.PENDING)
    batch_id: Mapped[str | None] = mapped_column(String(64), index=True)
    expires_at: Mapped[datetime | None]
    confirmed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    note: Mapped[str | None] = mapped_column(Text)


class OrderRow(_Row, Base):
    """An order intent, written before the broker is called, then kept true to the broker.

    `version` is optimistic concurrency: a stale writer gets `StaleDataError` on flush.
    A replacement of an entry order keeps the same `draft_id`, so one draft can own
    several entry rows over time (only one non-terminal); hence no unique index on it.
    """

    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_account_id_status", "account_id", "status"),
        Index("ix_orders_account_id_symbol", "account_id", "symbol"),
        _SQLITE_AUTOINCREMENT,
    )

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    draft_id: Mapped[int | None] = mapped_column(ForeignKey("drafts.id"), index=True)
    # Alpaca allows 128 characters; adopted external orders keep theirs.
    client_order_id: Mapped[str] = mapped_column(String(128), unique=True)
    broker_order_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    symbol: Mapped[str] = mapped_column(String(SYMBOL_LENGTH))
    side: Mapped[Side]
    order_type: Mapped[OrderType]
    time_in_force: Mapped[TimeInForce]
    qty: Mapped[Decimal]
    limit_price: Mapped[Decimal | None]
    # A trailing stop's: its current level as the broker last reported it (None before).
    stop_price: Mapped[Decimal | None]
    trail_percent: Mapped[Decimal | None]
    hwm: Mapped[Decimal | None]  # a trailing stop's high-water mark, as last reported
    extended_hours: Mapped[bool] = mapped_column(default=False)
    role: Mapped[OrderRole]
    status: Mapped[OrderStatus] = mapped_column(default=OrderStatus.PENDING_SUBMIT)
    filled_qty: Mapped[Decimal] = mapped_column(default=Decimal(0))
    avg_fill_price: Mapped[Decimal | None]
    reject_reason: Mapped[str | None] = mapped_column(Text)
    parent_order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    replaces_order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    submitted_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column()
    order_ref: Mapped[str | None] = mapped_column(String(128), index=True)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def remaining_qty(self) -> Decimal:
        return self.qty - self.filled_qty


class OrderEventRow(_Row, Base):
    __tablename__ = "order_events"
    __table_args__ = (
        Index("ix_order_events_order_id_at", "order_id", "at"),
        _SQLITE_AUTOINCREMENT,
    )

    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    at: Mapped[datetime]
    from_status: Mapped[OrderStatus | None]
    to_status: Mapped[OrderStatus | None]
    kind: Mapped[str] = mapped_column(String(ENUM_LENGTH))
    source: Mapped[EventSource]
    detail: Mapped[Json | None]


class FillRow(_Row, Base):
    __tablename__ = "fills"
    __table_args__ = (
        Index("ix_fills_symbol_at", "symbol", "at"),
        _SQLITE_AUTOINCREMENT,
    )

    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    execution_id: Mapped[str] = mapped_column(String(128), unique=True)
    symbol: Mapped[str] = mapped_column(String(SYMBOL_LENGTH))
    side: Mapped[Side]
    qty: Mapped[Decimal]
    price: Mapped[Decimal]
    commission: Mapped[Decimal] = mapped_column(default=Decimal(0))
    at: Mapped[datetime]


class PositionRow(_Row, Base):
    """A position snapshot. A position that went flat needs a qty-0 snapshot to say so."""

    __tablename__ = "positions"
    __table_args__ = (
        Index("ix_positions_account_id_symbol_at", "account_id", "symbol", "at"),
        _SQLITE_AUTOINCREMENT,
    )

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    symbol: Mapped[str] = mapped_column(String(SYMBOL_LENGTH))
    qty: Mapped[Decimal]
    avg_entry_price: Mapped[Decimal]
    market_price: Mapped[Decimal | None]
    source: Mapped[PositionSource]
    at: Mapped[datetime]


class ProtectionLinkRow(_Row, Base):
    __tablename__ = "protection_links"
    __table_args__ = (
        UniqueConstraint("entry_order_id", "protection_order_id"),
        Index("ix_protection_links_entry_order_id_status", "entry_order_id", "status"),
        _SQLITE_AUTOINCREMENT,
    )

    entry_order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    protection_order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    protected_qty: Mapped[Decimal]
    kind: Mapped[ProtectionKind]
    status: Mapped[ProtectionStatus] = mapped_column(default=ProtectionStatus.ACTIVE)
    updated_at: Mapped[datetime]


class RegimeRow(_Row, Base):
    """One row per announced regime change of a symbol."""

    __tablename__ = "regimes"
    __table_args__ = (
        Index("ix_regimes_session_date_symbol_at", "session_date", "symbol", "at"),
        _SQLITE_AUTOINCREMENT,
    )

    symbol: Mapped[str] = mapped_column(String(SYMBOL_LENGTH))
    session_date: Mapped[date]
    at: Mapped[datetime]
    label: Mapped[Regime]
    evidence: Mapped[Json | None]


class SessionStateRow(_Row, Base):
    """Every session state transition with its cause (states are owned by core.session)."""

    __tablename__ = "session_states"
    __table_args__ = (
        Index("ix_session_states_account_id_session_date", "account_id", "session_date"),
        _SQLITE_AUTOINCREMENT,
    )

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    session_date: Mapped[date]
    at: Mapped[datetime]
    from_state: Mapped[str | None] = mapped_column(String(ENUM_LENGTH))
    to_state: Mapped[str] = mapped_column(String(ENUM_LENGTH))
    trigger: Mapped[str | None] = mapped_column(String(ENUM_LENGTH))
    cause: Mapped[str] = mapped_column(Text)


class TradingDayRow(_Row, Base):
    """What must survive a restart within a day: the allow/deny answer, LOCKED, SAFE MODE.

    `trading_allowed` is None until the human answers (None means not allowed).
    `safe_mode_reason` holds the active reasons, comma-separated when there are several.
    """

    __tablename__ = "trading_days"
    __table_args__ = (UniqueConstraint("account_id", "session_date"), _SQLITE_AUTOINCREMENT)

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    session_date: Mapped[date]
    trading_allowed: Mapped[bool | None]
    locked_reason: Mapped[str | None] = mapped_column(Text)
    locked_at: Mapped[datetime | None]
    safe_mode_reason: Mapped[str | None] = mapped_column(Text)
    cooldown_until: Mapped[datetime | None]
    trades_count: Mapped[int] = mapped_column(default=0)
    realized_pnl: Mapped[Decimal] = mapped_column(default=Decimal(0))
    updated_at: Mapped[datetime]


class RiskEventRow(_Row, Base):
    __tablename__ = "risk_events"
    __table_args__ = (
        Index("ix_risk_events_account_id_session_date", "account_id", "session_date"),
        _SQLITE_AUTOINCREMENT,
    )

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    session_date: Mapped[date]
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(48))
    blocking: Mapped[bool]
    detail: Mapped[Json | None]


class NotificationRow(_Row, Base):
    """The outbox: a message is written here first, then sent, so none is lost.

    `not_before` lets the sender back off (Telegram flood control's retry_after).
    """

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_status_id", "status", "id"), _SQLITE_AUTOINCREMENT)

    kind: Mapped[str] = mapped_column(String(48))
    text: Mapped[str] = mapped_column(Text)
    payload: Mapped[Json | None]
    status: Mapped[NotificationStatus] = mapped_column(default=NotificationStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    not_before: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    dedupe_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    parse_mode: Mapped[str | None] = mapped_column(String(16))
    photo_path: Mapped[str | None] = mapped_column(Text)


class AuditRow(_Row, Base):
    """Every command and button press: who, what, result (denied ones too)."""

    __tablename__ = "audit"
    __table_args__ = (Index("ix_audit_at", "at"), _SQLITE_AUTOINCREMENT)

    at: Mapped[datetime]
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    kind: Mapped[AuditKind]
    action: Mapped[str] = mapped_column(String(64))
    args: Mapped[str | None] = mapped_column(Text)
    result: Mapped[str | None] = mapped_column(Text)
    ok: Mapped[bool]
