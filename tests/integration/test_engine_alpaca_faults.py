"""The trading engine on AlpacaBroker over the fake Alpaca (real alpaca-py SDK, 127.0.0.1),
with the faults Alpaca really produces. Every scenario ends the same way, checked by
`assert_no_duplicate_and_protected`: NO duplicate order at the broker and NO long
position without live sell protection covering it exactly.

- a 429 storm on the entry's submit, on the protection's submit, and one longer than the
  adapter's budget (UNPROTECTED alert, then the next reconcile protects);
- a 504 (and a connection closed without an answer) AFTER the order was created;
- the trade_updates stream dropped during a partial fill (the rest fills unheard);
- the trailing stop rejected: the fallback plain stop is taken;
- a cancel answered 204, then a fill before the cancel completes.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from core.domain import OrderRole, OrderStatus, OrderType
from core.events import (
    PositionUnprotected,
    ProtectionFailed,
    ProtectionFallback,
    ProtectionKind,
    ProtectionPlaced,
)
from tests.integration.broker_harness import (
    AlpacaFakeHarness,
    EngineRig,
    assert_no_duplicate_and_protected,
    engine_rig,
    open_harness,
)
from tests.kit.engine import protection_config

D = Decimal
S = OrderStatus
ORDERS = "POST /v2/orders"
FILL_BAR = ("100.5", "101.5", "100.4", "101.2")


@asynccontextmanager
async def alpaca_rig(
    tmp_path: Path, *, slow_cancels: bool = False, **engine: Any
) -> AsyncIterator[tuple[AlpacaFakeHarness, EngineRig]]:
    async with open_harness("alpaca", slow_cancels=slow_cancels) as h:
        assert isinstance(h, AlpacaFakeHarness)
        rig = await engine_rig(h, tmp_path, **engine)
        try:
            yield h, rig
        finally:
            await rig.stop()


def created(h: AlpacaFakeHarness, cid: str) -> int:
    """How many orders the fake created under `cid` (a resend that landed would be 2)."""
    return sum(1 for e in h.fake.engine.events if e.event == "pending_new" and _cid(e) == cid)


def _cid(event: object) -> str:
    return str(event.order.get("client_order_id"))  # type: ignore[attr-defined]


def entry_of(rig: EngineRig) -> object:
    (entry,) = [o for o in rig.ledger_orders() if o.role is OrderRole.ENTRY]
    return entry


async def one_trailing_stop(rig: EngineRig, qty: int = 50) -> None:
    (sell,) = await rig.open_sells()
    assert (sell.order_type, sell.qty, sell.status) == (OrderType.TRAILING_STOP, D(qty), S.ACCEPTED)


async def test_429_storm_on_the_entry_submit_places_it_once(tmp_path: Path) -> None:
    async with alpaca_rig(tmp_path) as (h, rig):
        h.fake.faults.throttle_next(ORDERS, n=3)
        before = h.alpaca.requests_sent
        await rig.enter(qty=50)
        entry = entry_of(rig)
        assert entry.status is S.ACCEPTED  # type: ignore[attr-defined]
        assert created(h, entry.client_order_id) == 1  # type: ignore[attr-defined]
        # Three refused POSTs (a 429 places nothing: no lookup needed), then the POST.
        assert h.alpaca.requests_sent - before >= 4
        await rig.bar(*FILL_BAR)
        await one_trailing_stop(rig)
        await assert_no_duplicate_and_protected(rig)


async def test_429_storm_on_the_protection_submit_protects_once(tmp_path: Path) -> None:
    async with alpaca_rig(tmp_path) as (h, rig):
        await rig.enter(qty=50)
        h.fake.faults.throttle_next(ORDERS, n=3)
        before = h.alpaca.requests_sent
        await rig.bar(*FILL_BAR)
        assert h.alpaca.requests_sent - before >= 4  # 3 x 429 (nothing to look up), the POST
        await one_trailing_stop(rig)
        (placed,) = rig.of_type(ProtectionPlaced)
        assert created(h, placed.protection_order_id) == 1
        assert not rig.of_type(ProtectionFailed)
        await assert_no_duplicate_and_protected(rig)


async def test_429_storm_beyond_the_budget_alerts_then_reconcile_protects(
    tmp_path: Path,
) -> None:
    async with alpaca_rig(tmp_path) as (h, rig):
        await rig.enter(qty=50)
        h.fake.faults.throttle_next(ORDERS, n=8)  # 4 attempts for each rung of the ladder
        await rig.bar(*FILL_BAR)
        assert [f.fallback for f in rig.of_type(ProtectionFailed)] == [
            ProtectionFallback.PLAIN_STOP,
            ProtectionFallback.ALERT_ONLY,
        ]
        (alert,) = rig.of_type(PositionUnprotected)
        assert alert.qty == D(50)
        assert await rig.open_sells() == []
        refused = [o for o in rig.ledger_orders() if o.role is OrderRole.PROTECTION]
        assert [o.status for o in refused] == [S.REJECTED, S.REJECTED]  # never reached
        # The storm is over: the next reconcile (periodic, or the [Retry]) protects.
        report = await rig.engine.reconciler.run("periodic")
        await rig.settle()
        assert report.protected == ("AAPL 50: protected",)
        await one_trailing_stop(rig)
        await assert_no_duplicate_and_protected(rig)


async def test_504_after_the_orders_were_created_is_resolved_by_lookup(tmp_path: Path) -> None:
    async with alpaca_rig(tmp_path) as (h, rig):
        h.fake.faults.drop_response_next(ORDERS)  # the entry is created; we get a 504
        await rig.enter(qty=50)
        entry = entry_of(rig)
        assert entry.status is S.ACCEPTED and entry.broker_order_id  # type: ignore[attr-defined]
        assert created(h, entry.client_order_id) == 1  # type: ignore[attr-defined]
        h.fake.faults.drop_response_next(ORDERS, mode="close")  # no answer at all
        await rig.bar(*FILL_BAR)
        await one_trailing_stop(rig)
        (placed,) = rig.of_type(ProtectionPlaced)
        assert created(h, placed.protection_order_id) == 1
        assert h.fake.faults.dropped_responses == [f"{ORDERS}"] * 2
        await assert_no_duplicate_and_protected(rig)


async def test_stream_dropped_during_a_partial_fill_protects_the_total(tmp_path: Path) -> None:
    # A wait longer than the bars: the gap is closed by the reconnect's reconcile, not
    # by the partial-fill policy's cancel (which would look the order up by itself).
    slow = protection_config(partial_fill_wait_seconds=600)
    async with alpaca_rig(tmp_path, protection=slow) as (h, rig):
        h.set_liquidity("AAPL", 20)
        await rig.enter(qty=50)
        await rig.bar(*FILL_BAR)
        entry = entry_of(rig)
        assert (entry.status, entry.filled_qty) == (S.PARTIALLY_FILLED, D(20))  # type: ignore[attr-defined]
        async with h.outage():
            h.set_liquidity("AAPL", None)
            await rig.bar("101.3", "101.6", "101.2", "101.5")  # the rest fills, unheard
            # ... but the bar crossed the working entry's trigger: the engine asks the
            # broker (REST still answers) instead of waiting for the reconnect.
            await rig.settle()
            last = rig.engine.reconciler.last
            assert last is not None and last.reason == "entry trigger crossed, fill not seen"
            assert last.fills_added == 1
        await rig.settle()
        assert not [e for e in h.fake.engine.events if e.event == "pending_cancel"]
        entry = entry_of(rig)
        assert (entry.status, entry.filled_qty) == (S.FILLED, D(50))  # type: ignore[attr-defined]
        assert sorted(f.qty for f in rig.ledger_fills()) == [D(20), D(30)]
        await one_trailing_stop(rig)
        assert await rig.position() == D(50)
        await assert_no_duplicate_and_protected(rig)


async def test_trailing_stop_rejected_falls_back_to_the_plain_stop(tmp_path: Path) -> None:
    async with alpaca_rig(tmp_path) as (h, rig):
        await rig.enter(qty=50)
        body = {"code": 40310000, "message": "trailing stop orders are not permitted"}
        h.fake.faults.fail_next(ORDERS, status=403, body=json.dumps(body))
        await rig.bar(*FILL_BAR)
        (sell,) = await rig.open_sells()
        # The plain stop sits at the draft's one stop: trigger 101 less the 1% trail.
        assert (sell.order_type, sell.stop_price, sell.qty) == (
            OrderType.STOP,
            D("99.99"),
            D(50),
        )
        (failed,) = rig.of_type(ProtectionFailed)
        assert failed.attempted is ProtectionKind.TRAILING
        assert failed.fallback is ProtectionFallback.PLAIN_STOP
        assert "not permitted" in failed.reason
        (placed,) = rig.of_type(ProtectionPlaced)
        assert placed.protection_kind is ProtectionKind.STOP
        assert not rig.of_type(PositionUnprotected)
        await assert_no_duplicate_and_protected(rig)


async def test_cancel_204_then_a_fill_counts_once_and_protects_the_total(
    tmp_path: Path,
) -> None:
    async with alpaca_rig(tmp_path, slow_cancels=True) as (h, rig):
        h.set_liquidity("AAPL", 20)
        await rig.enter(qty=50)
        await rig.bar(*FILL_BAR)
        await rig.advance(20.5)  # the wait is over: DELETE answered 204, pending_cancel
        entry = entry_of(rig)
        assert entry.status is S.PENDING_CANCEL  # type: ignore[attr-defined]
        h.set_liquidity("AAPL", None)
        await rig.bar("101.3", "101.6", "101.2", "101.5")  # the remainder fills first
        await h.release()  # the cancel completes: nothing left to cancel
        await rig.advance(2)
        entry = entry_of(rig)
        assert (entry.status, entry.filled_qty) == (S.FILLED, D(50))  # type: ignore[attr-defined]
        assert sorted(f.qty for f in rig.ledger_fills()) == [D(20), D(30)]
        assert not [e for e in h.fake.engine.events if e.event == "canceled"]
        sells = await rig.open_sells()
        assert sum(s.qty for s in sells) == D(50)
        assert await rig.position() == D(50)
        await assert_no_duplicate_and_protected(rig)
