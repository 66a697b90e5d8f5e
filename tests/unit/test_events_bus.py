"""Domain events: kinds, JSON round-trip of every type, frozen data; the event bus."""

from __future__ import annotations

import json
import types
from collections.abc import Mapping
from dataclasses import FrozenInstanceError, fields, is_dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from enum import Enum
from typing import Any, Union, get_args, get_origin, get_type_hints

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from loguru import logger

import core.events as events_module
from core.clock import NEW_YORK
from core.config_models import NOTIFICATION_KINDS
from core.domain import ClientOrderId, OrderRole, Regime, Side
from core.events import (
    EVENT_TYPES,
    DomainEvent,
    EventBus,
    EventPayloadError,
    KillCompleted,
    OrderEvent,
    OrderFilled,
    OrderRejected,
    PositionUnprotected,
    RiskLocked,
    SafeModeEntered,
    SessionStateChanged,
    SignalRaised,
    event_from_payload,
)
from core.risk import RiskCode, RiskReason
from core.session import SafeModeReason, SessionState, SessionTransition, SessionTrigger

AT = datetime(2024, 3, 12, 15, 0, tzinfo=UTC)

EXPECTED_KINDS = {
    "SignalRaised": "signal",
    "RegimeChanged": "regime",
    "OrderAccepted": "order",
    "OrderPartiallyFilled": "order",
    "OrderFilled": "order",
    "OrderCanceled": "order",
    "OrderRejected": "order",
    "ProtectionPlaced": "protection",
    "ProtectionFailed": "protection",
    "PositionUnprotected": "protection",
    "RiskLocked": "risk",
    "RiskRefused": "risk",
    "SessionStateChanged": "system",
    "SafeModeEntered": "safe_mode",
    "SafeModeCleared": "safe_mode",
    "KillCompleted": "system",
    "ReconcileCompleted": "system",
    "BriefReady": "brief",
    "AllowPrompt": "allow_prompt",
    "ReportReady": "report",
}


def all_subclasses(cls: type) -> set[type]:
    out: set[type] = set()
    sub: type
    for sub in cls.__subclasses__():
        out |= {sub} | all_subclasses(sub)
    return out


def test_every_event_type_is_registered_with_a_known_kind() -> None:
    # dataclass(slots=True) leaves the pre-slots class objects behind: keep the module's own.
    concrete = {
        c
        for c in all_subclasses(DomainEvent)
        if c is not OrderEvent and getattr(events_module, c.__name__, None) is c
    }
    assert set(EVENT_TYPES.values()) == concrete
    assert {name: cls.KIND for name, cls in EVENT_TYPES.items()} == EXPECTED_KINDS
    assert all(kind in NOTIFICATION_KINDS for kind in EXPECTED_KINDS.values())


# -- strategies built from the field annotations, so a new field is covered automatically
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
json_mappings = st.dictionaries(st.text(max_size=8), json_values, max_size=5)
aware = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, NEW_YORK]),
)


def strategy_for(hint: Any) -> st.SearchStrategy[Any]:
    origin = get_origin(hint)
    if origin is Union or origin is types.UnionType:
        return st.one_of(*(strategy_for(arg) for arg in get_args(hint)))
    if hint is type(None):
        return st.none()
    if hasattr(hint, "__supertype__"):
        return strategy_for(hint.__supertype__)
    if origin is tuple:
        return st.lists(strategy_for(get_args(hint)[0]), max_size=3).map(tuple)
    if origin is Mapping:
        return json_mappings
    if isinstance(hint, type) and issubclass(hint, Enum):
        return st.sampled_from(list(hint))
    if hint is datetime:
        return aware
    if hint is date:
        return st.dates()
    if hint is Decimal:
        return st.decimals(allow_nan=False, allow_infinity=False)
    if is_dataclass(hint):
        return st.builds(hint, **fields_strategies(hint))  # type: ignore[arg-type]
    return {str: st.text(max_size=20), int: st.integers(), bool: st.booleans()}[hint]


def fields_strategies(cls: type) -> dict[str, st.SearchStrategy[Any]]:
    hints = get_type_hints(cls)
    return {f.name: strategy_for(hints[f.name]) for f in fields(cls)}


@pytest.mark.parametrize("name", sorted(EVENT_TYPES))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_payload_round_trip(name: str, data: st.DataObject) -> None:
    cls = EVENT_TYPES[name]
    event = data.draw(st.builds(cls, **fields_strategies(cls)))
    text = json.dumps(event.to_payload(), allow_nan=False)  # plain JSON, nothing custom
    back = event_from_payload(json.loads(text))
    assert back == event
    assert type(back) is cls and back.kind == EXPECTED_KINDS[name]


def test_payload_shape() -> None:
    event = RiskLocked(at=AT, account="paper", reason="daily loss", detail="-$312.50")
    assert event.to_payload() == {
        "type": "RiskLocked",
        "data": {
            "at": "2024-03-12T15:00:00+00:00",
            "account": "paper",
            "reason": "daily loss",
            "detail": "-$312.50",
        },
    }
    fill = OrderFilled(
        at=AT,
        account="paper",
        client_order_id=ClientOrderId("c-1"),
        broker_order_id=None,
        symbol="AAPL",
        side=Side.BUY,
        role=OrderRole.ENTRY,
        qty=Decimal("40"),
        filled_qty=Decimal("40"),
        avg_fill_price=Decimal("191.52"),
    )
    data = fill.to_payload()["data"]
    assert isinstance(data, dict)
    assert (data["avg_fill_price"], data["side"], data["role"]) == ("191.52", "buy", "entry")


def signal(evidence: Mapping[str, Any]) -> SignalRaised:
    return SignalRaised(
        at=AT,
        symbol="AAPL",
        session_date=date(2024, 3, 12),
        signal_time=AT,
        trigger=Decimal("191.52"),
        stop=Decimal("190.80"),
        risk_per_share=Decimal("0.72"),
        suggested_qty=Decimal(138),
        regime=Regime.TREND_UP,
        evidence=evidence,
    )


def test_evidence_is_frozen_json() -> None:
    event = signal(
        {"pct_above": 0.86, "crosses": [1, 2], "level": Decimal("1.50"), "day": date(2024, 3, 12)}
    )
    assert event.evidence["level"] == "1.50" and event.evidence["day"] == "2024-03-12"
    assert event.evidence["crosses"] == (1, 2)
    with pytest.raises(TypeError):
        event.evidence["pct_above"] = 1.0  # type: ignore[index]
    with pytest.raises(FrozenInstanceError):
        event.symbol = "MU"  # type: ignore[misc]
    assert event_from_payload(json.loads(json.dumps(event.to_payload()))) == event
    with pytest.raises(TypeError, match="must be JSON"):
        signal({"when": time(9, 30)})


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError):
        RiskLocked(at=datetime(2024, 3, 12, 15, 0), account="paper", reason="x", detail="y")


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "Nope", "data": {}},
        {"data": {}},
        {"type": "RiskLocked", "data": {"at": "2024-03-12T15:00:00+00:00"}},  # fields missing
        {"type": "RiskLocked", "data": {"at": 5, "account": "a", "reason": "r", "detail": "d"}},
        {
            "type": "SafeModeEntered",
            "data": {"at": "2024-03-12T15:00:00+00:00", "account": "a", "reason": "bogus"},
        },
        {
            "type": "KillCompleted",
            "data": {
                "at": "2024-03-12T15:00:00+00:00",
                "account": "a",
                "all_flat": "yes",
                "report": {},
            },
        },
    ],
)
def test_bad_payloads_raise(payload: dict[str, Any]) -> None:
    with pytest.raises(EventPayloadError):
        event_from_payload(payload)


def test_unknown_keys_are_ignored_for_forward_compatibility() -> None:
    payload = SafeModeEntered(at=AT, account="a", reason=SafeModeReason.STALE_DATA).to_payload()
    data = payload["data"]
    assert isinstance(data, dict)
    data["added_later"] = 1
    assert event_from_payload(payload) == SafeModeEntered(
        at=AT, account="a", reason=SafeModeReason.STALE_DATA
    )


def test_risk_reasons_round_trip() -> None:
    from core.events import RiskRefused

    event = RiskRefused(
        at=AT,
        account="paper",
        draft_id=None,
        symbol="AAPL",
        reasons=(RiskReason(RiskCode.COOLDOWN, "cooldown after a stop-out until 10:42"),),
    )
    assert event_from_payload(event.to_payload()) == event


def test_session_state_changed_from_a_transition() -> None:
    transition = SessionTransition(
        "paper",
        date(2024, 3, 12),
        SessionState.TRADING_ALLOWED,
        SessionState.LOCKED,
        SessionTrigger.LOSS_LIMIT_HIT,
        "day loss -$300.00",
        AT,
    )
    event = SessionStateChanged.from_transition(transition)
    assert (event.previous, event.current, event.cause, event.at) == (
        SessionState.TRADING_ALLOWED,
        SessionState.LOCKED,
        "day loss -$300.00",
        AT,
    )


# -- the bus


def locked(n: int = 0) -> RiskLocked:
    return RiskLocked(at=AT, account="paper", reason=f"r{n}", detail="")


def unprotected() -> PositionUnprotected:
    return PositionUnprotected(
        at=AT, account="paper", symbol="AAPL", qty=Decimal(1), reason="x", auto_flatten=False
    )


def rejected() -> OrderRejected:
    return OrderRejected(
        at=AT,
        account="paper",
        client_order_id=ClientOrderId("c"),
        broker_order_id=None,
        symbol="AAPL",
        side=Side.SELL,
        role=OrderRole.PROTECTION,
        qty=Decimal(1),
        filled_qty=Decimal(0),
        reason="wash trade",
    )


async def test_handlers_run_in_subscription_order_sync_and_async() -> None:
    bus, seen = EventBus(), []

    def first(event: DomainEvent) -> None:
        seen.append(("first", type(event).__name__))

    async def second(event: DomainEvent) -> None:
        seen.append(("second", type(event).__name__))

    def third(event: DomainEvent) -> None:
        seen.append(("third", type(event).__name__))

    bus.subscribe(first)
    bus.subscribe(second)
    bus.subscribe(third)
    assert await bus.publish(locked()) == 0
    assert seen == [("first", "RiskLocked"), ("second", "RiskLocked"), ("third", "RiskLocked")]


async def test_type_filters_include_subclasses() -> None:
    bus = EventBus()
    orders: list[OrderEvent] = []
    protection: list[DomainEvent] = []
    bus.subscribe(orders.append, OrderEvent)
    bus.subscribe(protection.append, PositionUnprotected, KillCompleted)
    for event in (locked(), rejected(), unprotected()):
        await bus.publish(event)
    assert [type(e) for e in orders] == [OrderRejected]
    assert [type(e) for e in protection] == [PositionUnprotected]


async def test_a_failing_handler_is_logged_and_isolated() -> None:
    bus, seen, logged = EventBus(), list[DomainEvent](), list[Any]()

    def broken(event: DomainEvent) -> None:
        raise RuntimeError("renderer bug")

    async def broken_async(event: DomainEvent) -> None:
        raise KeyError("missing")

    bus.subscribe(broken)
    bus.subscribe(broken_async)
    bus.subscribe(seen.append)
    sink = logger.add(lambda message: logged.append(message), level="ERROR", format="{message}")
    try:
        failures = await bus.publish(locked())
    finally:
        logger.remove(sink)
    assert failures == 2
    assert seen == [locked()]
    assert len(logged) == 2 and "broken" in logged[0] and "RiskLocked" in logged[0]
    assert "RuntimeError" in logged[0].record["exception"].type.__name__


async def test_unsubscribe_and_snapshot_during_publish() -> None:
    bus, seen = EventBus(), []

    def late(event: DomainEvent) -> None:
        seen.append("late")

    def subscriber(event: DomainEvent) -> None:
        seen.append("subscriber")
        bus.subscribe(late)  # takes effect from the next event

    unsubscribe = bus.subscribe(subscriber)
    await bus.publish(locked(1))
    assert seen == ["subscriber"]
    unsubscribe()
    unsubscribe()  # idempotent
    await bus.publish(locked(2))
    assert seen == ["subscriber", "late"]


def test_float_money_is_refused() -> None:
    float_qty: Any = 1.5
    with pytest.raises(TypeError, match="money is Decimal"):
        PositionUnprotected(
            at=AT, account="paper", symbol="AAPL", qty=float_qty, reason="x", auto_flatten=False
        )
