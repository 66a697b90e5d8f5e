"""Domain events: what core tells the world, and the in-process bus that carries them.

Events are immutable facts with the data a UI needs to render them; the bot formats the
text. Each has a notification `kind` (config/notifications.yaml) and a JSON payload
(`to_payload` / `event_from_payload`: Decimals as strings, datetimes ISO 8601) so that a
notification outbox row can be rendered after a restart exactly as it would have been.

Free-form data (`evidence`, a kill report, a reconcile summary) must be JSON; Decimals,
dates and enums in it become strings at construction, so an event compares equal to its
own round-trip. Mappings and lists in it are frozen (read-only views, tuples); events are
therefore comparable but not hashable.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum, StrEnum
from typing import (
    Any,
    ClassVar,
    TypeAlias,
    TypeVar,
    Union,
    get_args,
    get_origin,
    get_type_hints,
    overload,
)

from loguru import logger

from core.clock import ensure_aware
from core.domain import BrokerOrderId, ClientOrderId, DraftId, OrderRole, OrderType, Regime, Side
from core.risk import RiskReason
from core.session import SafeModeReason, SessionState, SessionTransition, SessionTrigger

JsonValue: TypeAlias = Union[  # noqa: UP007 (a recursive alias needs the string form)
    str, int, float, bool, Sequence["JsonValue"], Mapping[str, "JsonValue"], None
]
JsonMapping: TypeAlias = Mapping[str, JsonValue]


class EventPayloadError(ValueError):
    """A stored payload cannot be turned back into an event."""


class ProtectionKind(StrEnum):
    TRAILING = "trailing"
    STOP = "stop"
    ATTACHED = "attached"  # IBKR child order: exists at the broker from the fill on


class ProtectionFallback(StrEnum):
    PLAIN_STOP = "plain_stop"  # trailing refused -> plain stop at the initial stop
    FLATTEN = "flatten"  # nothing accepted -> flattened automatically (if configured)
    ALERT_ONLY = "alert_only"  # nothing accepted -> UNPROTECTED alert with [Flatten]


def _freeze(value: object) -> JsonValue:
    """JSON-only and read-only: Decimal/date/enum -> str, dict -> mapping proxy, list -> tuple."""
    if isinstance(value, Enum):
        return _freeze(value.value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return types.MappingProxyType({str(k): _freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    raise TypeError(f"event data must be JSON, got {type(value).__name__}: {value!r}")


def _encode(value: object) -> JsonValue:
    if isinstance(value, Enum):
        return _encode(value.value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, frozenset)):
        return [_encode(v) for v in value]
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in fields(value)}
    raise TypeError(f"cannot encode {type(value).__name__}: {value!r}")


def _decode(hint: Any, raw: object) -> object:
    """Rebuild a value of the annotated type from its JSON form."""
    origin = get_origin(hint)
    if origin is Union or origin is types.UnionType:
        if raw is None and type(None) in get_args(hint):
            return None
        (inner,) = [a for a in get_args(hint) if a is not type(None)]
        return _decode(inner, raw)
    if hasattr(hint, "__supertype__"):  # NewType
        return _decode(hint.__supertype__, raw)
    if origin is tuple:
        if not isinstance(raw, list):
            raise EventPayloadError(f"expected a list, got {raw!r}")
        return tuple(_decode(get_args(hint)[0], item) for item in raw)
    if origin is Mapping:
        if not isinstance(raw, dict):
            raise EventPayloadError(f"expected an object, got {raw!r}")
        return raw  # frozen by the event's __post_init__
    if not isinstance(hint, type):
        raise EventPayloadError(f"unsupported field type {hint!r}")
    if issubclass(hint, Enum):
        return hint(raw)
    if hint is datetime or hint is date:
        if not isinstance(raw, str):
            raise EventPayloadError(f"expected an ISO {hint.__name__}, got {raw!r}")
        return hint.fromisoformat(raw)
    if hint is Decimal:
        if not isinstance(raw, str):
            raise EventPayloadError(f"expected a decimal string, got {raw!r}")
        return Decimal(raw)
    if is_dataclass(hint):
        if not isinstance(raw, dict):
            raise EventPayloadError(f"expected an object for {hint.__name__}, got {raw!r}")
        return _build(hint, raw)
    if hint is float and isinstance(raw, int) and not isinstance(raw, bool):
        return float(raw)
    if not isinstance(raw, hint) or (hint is int and isinstance(raw, bool)):
        raise EventPayloadError(f"expected {hint.__name__}, got {raw!r}")
    return raw


_HINTS: dict[type[Any], dict[str, Any]] = {}


def _hints(cls: type[Any]) -> dict[str, Any]:
    found = _HINTS.get(cls)
    if found is None:
        found = _HINTS[cls] = get_type_hints(cls)
    return found


def _decimal_hints(cls: type[Any], name: str) -> tuple[Any, ...]:
    hint = _hints(cls)[name]
    return (hint, *get_args(hint))


def _build(cls: type[Any], data: Mapping[str, object]) -> Any:
    # Unknown keys are ignored (a payload written by a newer version still renders);
    # a missing key falls back to the field's default, or fails loudly.
    hints = _hints(cls)
    kwargs = {f.name: _decode(hints[f.name], data[f.name]) for f in fields(cls) if f.name in data}
    return cls(**kwargs)


@dataclass(frozen=True, slots=True, kw_only=True)
class DomainEvent:
    KIND: ClassVar[str] = "system"

    at: datetime

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, datetime):
                # Instants in UTC: an ambiguous New York wall time (the DST fall-back hour)
                # would otherwise never compare equal to its own round-trip.
                object.__setattr__(self, f.name, ensure_aware(value).astimezone(UTC))
            elif isinstance(value, Mapping):
                object.__setattr__(self, f.name, _freeze(value))
            elif isinstance(value, float) and Decimal in _decimal_hints(type(self), f.name):
                raise TypeError(f"{type(self).__name__}.{f.name}: money is Decimal, not {value!r}")

    @property
    def kind(self) -> str:
        """The notification kind (config/notifications.yaml) this event is sent as."""
        return self.KIND

    def to_payload(self) -> dict[str, JsonValue]:
        data = {f.name: _encode(getattr(self, f.name)) for f in fields(self)}
        return {"type": type(self).__name__, "data": data}


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalRaised(DomainEvent):
    KIND: ClassVar[str] = "signal"

    symbol: str
    session_date: date
    signal_time: datetime
    trigger: Decimal
    stop: Decimal
    risk_per_share: Decimal
    suggested_qty: Decimal
    regime: Regime
    evidence: JsonMapping
    signal_id: int | None = None  # the ledger row, for the [Draft it] button


@dataclass(frozen=True, slots=True, kw_only=True)
class RegimeChanged(DomainEvent):
    KIND: ClassVar[str] = "regime"

    symbol: str
    session_date: date
    previous: Regime | None  # None: the day's first verdict
    current: Regime
    evidence: JsonMapping


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderEvent(DomainEvent):
    """Common shape of the order lifecycle events."""

    KIND: ClassVar[str] = "order"

    account: str
    client_order_id: ClientOrderId
    broker_order_id: BrokerOrderId | None
    symbol: str
    side: Side
    role: OrderRole
    qty: Decimal
    filled_qty: Decimal
    avg_fill_price: Decimal | None = None
    order_type: OrderType | None = None
    stop_price: Decimal | None = None
    reason: str | None = None  # rejections and cancels: the broker's words


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderAccepted(OrderEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderPartiallyFilled(OrderEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderFilled(OrderEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCanceled(OrderEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRejected(OrderEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class ProtectionPlaced(DomainEvent):
    """ "AAPL 40 @ 191.52 filled; trailing stop 0.8% accepted (stop now 189.99)"."""

    KIND: ClassVar[str] = "protection"

    account: str
    symbol: str
    qty: Decimal
    protection_kind: ProtectionKind
    trail_pct: Decimal | None
    stop_price: Decimal | None  # the stop level now
    entry_price: Decimal | None
    entry_order_id: ClientOrderId
    protection_order_id: ClientOrderId


@dataclass(frozen=True, slots=True, kw_only=True)
class ProtectionFailed(DomainEvent):
    KIND: ClassVar[str] = "protection"

    account: str
    symbol: str
    qty: Decimal
    attempted: ProtectionKind
    reason: str
    fallback: ProtectionFallback | None  # None: nothing taken yet (a retry is coming)
    entry_order_id: ClientOrderId | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionUnprotected(DomainEvent):
    KIND: ClassVar[str] = "protection"

    account: str
    symbol: str
    qty: Decimal
    reason: str
    auto_flatten: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskLocked(DomainEvent):
    KIND: ClassVar[str] = "risk"

    account: str
    reason: str
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskRefused(DomainEvent):
    KIND: ClassVar[str] = "risk"

    account: str
    draft_id: DraftId | None
    symbol: str
    reasons: tuple[RiskReason, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionStateChanged(DomainEvent):
    KIND: ClassVar[str] = "system"

    account: str
    session_date: date
    previous: SessionState
    current: SessionState
    trigger: SessionTrigger
    cause: str

    @classmethod
    def from_transition(cls, transition: SessionTransition) -> SessionStateChanged:
        return cls(
            at=transition.at,
            account=transition.account,
            session_date=transition.session_date,
            previous=transition.previous,
            current=transition.current,
            trigger=transition.trigger,
            cause=transition.cause,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SafeModeEntered(DomainEvent):
    KIND: ClassVar[str] = "safe_mode"

    account: str
    reason: SafeModeReason
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SafeModeCleared(DomainEvent):
    KIND: ClassVar[str] = "safe_mode"

    account: str
    reason: str  # why it could be cleared (who resumed, what was checked)


@dataclass(frozen=True, slots=True, kw_only=True)
class KillCompleted(DomainEvent):
    KIND: ClassVar[str] = "system"

    account: str
    all_flat: bool  # verified at the broker, never assumed from requests sent
    report: JsonMapping


@dataclass(frozen=True, slots=True, kw_only=True)
class ReconcileCompleted(DomainEvent):
    KIND: ClassVar[str] = "system"

    account: str
    in_sync: bool
    summary: JsonMapping


@dataclass(frozen=True, slots=True)
class SymbolVerdict:
    """One line of the 09:45 snapshot: always a definite conclusion, "not today" included."""

    symbol: str
    tradable: bool
    regime: Regime | None  # None: no verdict from the classifier (no data, event day)
    reason: str  # "trend up (pct above VWAP 0.86, 2 crosses)", "CPI at 08:30", ...


@dataclass(frozen=True, slots=True, kw_only=True)
class BriefReady(DomainEvent):
    """The 09:00 pre-market brief (`core.reports.Brief`, encoded by core.reports.codec)."""

    KIND: ClassVar[str] = "brief"

    day: date
    brief: JsonMapping
    path: str = ""  # brief.json under data/reports/YYYY-MM-DD/


@dataclass(frozen=True, slots=True, kw_only=True)
class AllowPrompt(DomainEvent):
    """The 09:45 regime snapshot and the day's master switch: "Allow trading today?"."""

    KIND: ClassVar[str] = "allow_prompt"

    account: str
    day: date
    verdicts: tuple[SymbolVerdict, ...]
    allowed: bool | None = None  # the answer given so far (None: none; none means not allowed)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportReady(DomainEvent):
    """The end-of-day report: the data (`core.reports.EodReport`, encoded by
    core.reports.codec), where it was written, and its charts (one PNG per traded symbol)."""

    KIND: ClassVar[str] = "report"

    account: str
    day: date
    directory: str
    charts: tuple[str, ...]
    report: JsonMapping


EVENT_TYPES: Mapping[str, type[DomainEvent]] = {
    cls.__name__: cls
    for cls in (
        SignalRaised,
        RegimeChanged,
        OrderAccepted,
        OrderPartiallyFilled,
        OrderFilled,
        OrderCanceled,
        OrderRejected,
        ProtectionPlaced,
        ProtectionFailed,
        PositionUnprotected,
        RiskLocked,
        RiskRefused,
        SessionStateChanged,
        SafeModeEntered,
        SafeModeCleared,
        KillCompleted,
        ReconcileCompleted,
        BriefReady,
        AllowPrompt,
        ReportReady,
    )
}


def event_from_payload(payload: Mapping[str, object]) -> DomainEvent:
    """The event `to_payload` produced (raises EventPayloadError when it cannot)."""
    name, data = payload.get("type"), payload.get("data")
    cls = EVENT_TYPES.get(name) if isinstance(name, str) else None
    if cls is None or not isinstance(data, dict):
        raise EventPayloadError(f"not an event payload: type={name!r}")
    try:
        event: DomainEvent = _build(cls, data)
    except (TypeError, ValueError, KeyError, InvalidOperation) as exc:
        if isinstance(exc, EventPayloadError):
            raise
        raise EventPayloadError(f"{name}: {exc}") from exc
    return event


E = TypeVar("E", bound=DomainEvent)
HandlerResult: TypeAlias = Awaitable[None] | None
Unsubscribe: TypeAlias = Callable[[], None]


@dataclass(frozen=True, slots=True)
class _Subscription:
    handler: Callable[[Any], HandlerResult]
    event_types: tuple[type[DomainEvent], ...]

    def wants(self, event: DomainEvent) -> bool:
        return not self.event_types or isinstance(event, self.event_types)


class EventBus:
    """In-process publish/subscribe, handlers called in subscription order.

    A handler that raises is logged and skipped: one broken renderer must not keep the
    ledger writer or the other subscribers from seeing the event, nor fail the publisher.
    """

    def __init__(self) -> None:
        self._subscriptions: list[_Subscription] = []

    @overload
    def subscribe(self, handler: Callable[[DomainEvent], HandlerResult]) -> Unsubscribe: ...

    @overload
    def subscribe(
        self, handler: Callable[[E], HandlerResult], event_type: type[E], /, *more: type[E]
    ) -> Unsubscribe: ...

    def subscribe(
        self, handler: Callable[[Any], HandlerResult], *event_types: type[DomainEvent]
    ) -> Unsubscribe:
        """Call `handler` for events of these types (all events when none is given)."""
        subscription = _Subscription(handler, tuple(event_types))
        self._subscriptions.append(subscription)

        def unsubscribe() -> None:
            if subscription in self._subscriptions:
                self._subscriptions.remove(subscription)

        return unsubscribe

    async def publish(self, event: DomainEvent) -> int:
        """Deliver `event`; returns how many handlers failed (they are logged)."""
        failures = 0
        # A snapshot: a handler that subscribes or unsubscribes affects the next event only.
        for subscription in list(self._subscriptions):
            if not subscription.wants(event):
                continue
            try:
                result = subscription.handler(event)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:  # isolation is the point; CancelledError still passes
                failures += 1
                name = getattr(subscription.handler, "__qualname__", repr(subscription.handler))
                logger.opt(exception=exc).error(
                    "event handler {} failed on {}", name, type(event).__name__
                )
        return failures
