"""The callback codec: round trip, 64 bytes, versions, garbage."""

from __future__ import annotations

import contextlib
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.callbacks import (
    MAX_BYTES,
    SCHEMA,
    Action,
    Arg,
    Callback,
    CallbackError,
    StaleCallback,
    Value,
    decode,
    encode,
    pattern,
)

VALUES: dict[Arg, st.SearchStrategy[Value]] = {
    Arg.INT: st.integers(min_value=0, max_value=10**12 - 1),
    Arg.SYM: st.from_regex(r"\A[A-Z][A-Z0-9.\-]{0,9}\Z"),
    Arg.DEC: st.decimals(
        min_value=Decimal(0), max_value=Decimal("9999999.9999"), places=4, allow_nan=False
    ),
    Arg.WORD: st.from_regex(r"\A[a-z][a-z0-9_\-]{0,31}\Z"),
}


@st.composite
def callbacks(draw: st.DrawFn) -> Callback:
    action = draw(st.sampled_from(list(Action)))
    return Callback(action, tuple(draw(VALUES[kind]) for kind in SCHEMA[action]))


def test_examples() -> None:
    assert encode(Action.DRAFT_CONFIRM, 42) == "1:dc:42"
    assert encode(Action.BUY_SIZE, "AAPL", Decimal("101.20"), Decimal("99.5"), Decimal(50)) == (
        "1:bz:AAPL:101.2:99.5:50"
    )
    assert decode("1:bz:AAPL:101.2:99.5:50") == Callback(
        Action.BUY_SIZE, ("AAPL", Decimal("101.2"), Decimal("99.5"), Decimal(50))
    )
    assert decode("1:sr") == Callback(Action.STATUS_REFRESH)


def test_every_action_has_a_schema() -> None:
    assert set(SCHEMA) == set(Action)


@settings(max_examples=400)
@given(callbacks())
def test_round_trip_within_64_bytes(callback: Callback) -> None:
    try:
        data = encode(callback.action, *callback.args)
    except ValueError as exc:  # only when the arguments really cannot fit
        assert "64 bytes" in str(exc)
        return
    assert len(data.encode()) <= MAX_BYTES
    back = decode(data)
    assert back.action is callback.action
    assert all(
        (a == b) if not isinstance(a, Decimal) else a == Decimal(str(b))
        for a, b in zip(back.args, callback.args, strict=True)
    )


def test_the_longest_real_buttons_fit() -> None:
    worst = encode(
        Action.BUY_SIZE,
        "ABCDEFGHIJ",
        Decimal("9999999.9999"),
        Decimal("9999999.9999"),
        Decimal(9999999),
    )
    assert len(worst) <= MAX_BYTES
    assert len(encode(Action.FLATTEN_SURE, "ABCDEFGHIJ", "a" * 32)) <= MAX_BYTES


def test_versions() -> None:
    with pytest.raises(StaleCallback):
        decode("0:dc:42")
    with pytest.raises(StaleCallback):
        decode("2:dc:42")
    assert pattern(Action.DRAFT_CONFIRM).match("2:dc:42")  # routed, then told it is stale
    assert not pattern(Action.DRAFT_CONFIRM).match("1:dcx:42")


@pytest.mark.parametrize(
    "data",
    [
        "",
        "1",
        "1:",
        "1:zz",
        "1:dc",
        "1:dc:",
        "1:dc:-1",
        "1:dc:01",
        "1:dc:4:2",
        "1:dc:1e5",
        "1:dc:٤٢",  # Arabic-Indic digits are digits to Python, not to us
        "1:bz:aapl:1:1:1",
        "1:bz:AAPL:NaN:1:1",
        "1:bz:AAPL:1.23456:1:1",
        "x:dc:1",
        "1:dc:1" + "0" * 80,
    ],
)
def test_garbage_is_a_clean_error(data: str) -> None:
    with pytest.raises(CallbackError):
        decode(data)


@settings(max_examples=500)
@given(st.one_of(st.text(max_size=80), st.binary(max_size=80).map(lambda b: b.decode("latin-1"))))
def test_arbitrary_data_never_escapes_as_another_error(data: str) -> None:
    with contextlib.suppress(CallbackError):
        decode(data)


def test_encode_refuses_programming_errors() -> None:
    with pytest.raises(ValueError):
        encode(Action.DRAFT_CONFIRM)
    with pytest.raises(ValueError):
        encode(Action.DRAFT_CONFIRM, -1)
    with pytest.raises(ValueError):
        encode(Action.BUY_SYMBOL, "aapl")
    with pytest.raises(ValueError):
        encode(Action.DRAFT_QTY, 1, Decimal("NaN"))
