"""Client order ids: deterministic, bounded, unique per (namespace, scope, purpose, attempt)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.ids import (
    MAX_LENGTH,
    Purpose,
    attempt_of,
    base36,
    client_order_id,
    draft_scope,
    namespace_for,
    next_attempt,
    order_scope,
    prefix,
    symbol_scope,
)


def test_the_same_intent_always_gets_the_same_id() -> None:
    ns = namespace_for(datetime(2026, 3, 2, 14, 45, tzinfo=UTC))
    first = client_order_id(ns, draft_scope(17), Purpose.ENTRY, 1)
    assert first == client_order_id(ns, draft_scope(17), Purpose.ENTRY, 1)
    assert first == f"{ns}-d17-en1"


def test_ids_differ_by_every_part() -> None:
    ns = "abc123"
    ids = {
        client_order_id(ns, draft_scope(1), Purpose.ENTRY, 1),
        client_order_id(ns, draft_scope(1), Purpose.ENTRY, 2),
        client_order_id(ns, draft_scope(2), Purpose.ENTRY, 1),
        client_order_id(ns, order_scope(1), Purpose.TRAILING, 1),
        client_order_id(ns, order_scope(1), Purpose.PLAIN_STOP, 1),
        client_order_id("abc124", draft_scope(1), Purpose.ENTRY, 1),
    }
    assert len(ids) == 6


def test_a_recreated_ledger_gets_another_namespace() -> None:
    one = namespace_for(datetime(2026, 3, 2, 14, 45, tzinfo=UTC))
    two = namespace_for(datetime(2026, 3, 2, 14, 45, 1, tzinfo=UTC))
    assert one != two


def test_length_stays_within_limits() -> None:
    ns = namespace_for(datetime(2099, 12, 31, tzinfo=UTC))
    longest = client_order_id(ns, symbol_scope("BRK.B-WXYZ"), Purpose.FLATTEN, 99999)
    assert len(longest) <= MAX_LENGTH
    big = client_order_id(ns, order_scope(10**12), Purpose.TRAILING, 10**6)
    assert len(big) <= MAX_LENGTH


def test_attempts_are_counted_from_existing_ids() -> None:
    p = prefix("ns1", draft_scope(5), Purpose.ENTRY)
    existing = [f"{p}1", f"{p}2", "ns1-d50-en1", "other"]
    assert attempt_of(f"{p}2", p) == 2
    assert attempt_of("ns1-d50-en1", p) is None  # d50 is not d5
    assert next_attempt(existing, p) == 3
    assert next_attempt([], p) == 1


def test_bad_parts_are_refused() -> None:
    with pytest.raises(ValueError):
        client_order_id("ns", draft_scope(1), Purpose.ENTRY, 0)
    with pytest.raises(ValueError):
        prefix("Bad NS", draft_scope(1), Purpose.ENTRY)
    with pytest.raises(ValueError):
        prefix("ns", "1d", Purpose.ENTRY)


def test_base36() -> None:
    assert base36(0) == "0"
    assert base36(35) == "z"
    assert base36(36) == "10"
    with pytest.raises(ValueError):
        base36(-1)
