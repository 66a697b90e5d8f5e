"""Kill: preview, cancel and flatten with confirmation, a fill racing the cancel, any state."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from core.domain import OrderRole, OrderType, Symbol
from core.events import KillCompleted
from core.services import TradingServices
from core.session import SafeModeReason, SessionState
from tests.kit.brokers import AAPL, ny
from tests.kit.engine import EngineKit, engine_kit

D = Decimal
MU = Symbol("MU")


async def _protected_position(kit: EngineKit) -> None:
    review = await kit.engine.drafts.create_buy("AAPL", D("101"), D("99"), qty=D(50))
    assert (await kit.engine.drafts.confirm(review.draft_id)).ok
    await kit.bar("100.5", "101.5", "100.4", "101.2")


async def test_preview_lists_exactly_what_will_happen(tmp_path: Path) -> None:
    kit = await engine_kit(tmp_path)
    await _protected_position(kit)
    review = await kit.engine.drafts.create_buy("MU", D("81"), D("79"), qty=D(10))
    assert (await kit.engine.drafts.confirm(review.draft_id)).ok
    services = TradingServices({"paper": kit.engine}, "paper")
    (preview,) = await services.kill_preview()
    assert {(o.symbol, o.role) for o in preview.orders} == {
        ("AAPL", OrderRole.PROTECTION.value),
        ("MU", OrderRole.ENTRY.value),
    }
    assert [(p.symbol, p.qty) for p in preview.positions] == [("AAPL", D(50))]
    await kit.engine.stop()


async def test_kill_cancels_confirms_flattens_and_verifies(tmp_path: Path) -> None:
    kit = await engine_kit(tmp_path)
    await _protected_position(kit)
    report = await kit.engine.kill.execute("test")
    assert report.all_flat
    assert [r.outcome for r in report.orders] == ["canceled"]
    assert [(p.symbol, p.qty_before, p.qty_after, p.flat) for p in report.positions] == [
        ("AAPL", D(50), D(0), True)
    ]
    assert await kit.broker.positions() == []
    assert await kit.broker.list_orders(open_only=True) == []
    (event,) = kit.of_type(KillCompleted)
    assert event.all_flat
    await kit.engine.stop()


async def test_a_fill_racing_the_cancel_is_flattened_too(tmp_path: Path) -> None:
    kit = await engine_kit(tmp_path, sim={"cancel_latency": 5.0})
    await kit.bar("100", "100.2", "99.9", "100.1")
    review = await kit.engine.drafts.create_buy("AAPL", D("101"), D("99"), qty=D(50))
    assert (await kit.engine.drafts.confirm(review.draft_id)).ok
    kill = asyncio.create_task(kit.engine.kill.execute("test"))
    await kit.idle()  # the cancel is requested; it takes 5 s at the broker
    assert not kill.done()
    await kit.bar("100.8", "101.5", "100.7", "101.3")  # the stop-buy fills first
    await kit.advance(6)
    report = await asyncio.wait_for(kill, 5)
    assert [r.outcome for r in report.orders] == ["filled_before_cancel"]
    assert report.all_flat and report.positions[0].qty_before == D(50)
    assert await kit.broker.positions() == []
    # No protection was left behind for the raced fill.
    assert await kit.broker.list_orders(open_only=True) == []
    assert not [o for o in kit.ledger_orders() if o.role is OrderRole.PROTECTION]
    await kit.engine.stop()


async def test_kill_works_in_safe_mode_and_when_locked(tmp_path: Path) -> None:
    kit = await engine_kit(tmp_path, seed={AAPL: (D(10), D(100)), MU: (D(5), D(80))})
    await kit.bar("80", "80.5", "79.5", "80.2", symbol=MU)
    await kit.engine.day.enter_safe_mode(SafeModeReason.INTERNAL_ERROR, "test")
    assert kit.engine.day.state is SessionState.SAFE_MODE
    report = await kit.engine.kill.execute("test")
    assert report.all_flat and {p.symbol for p in report.positions} == {"AAPL", "MU"}
    assert await kit.broker.positions() == []
    await kit.engine.stop()


async def test_outside_regular_hours_flattens_with_a_marketable_limit(tmp_path: Path) -> None:
    kit = await engine_kit(tmp_path, at=ny(16, 30), seed={AAPL: (D(10), D(100))})
    await kit.bar("100", "100.1", "99.9", "100")  # an after-hours print
    report = await kit.engine.kill.execute("test")
    (position,) = report.positions
    flatten = [o for o in kit.ledger_orders() if o.role is OrderRole.FLATTEN]
    assert flatten and flatten[0].order_type is OrderType.LIMIT and flatten[0].extended_hours
    assert position.flat and report.all_flat
    await kit.engine.stop()


async def test_without_a_price_outside_hours_the_report_says_not_flat(tmp_path: Path) -> None:
    kit = await engine_kit(tmp_path, at=ny(6, 0), seed={AAPL: (D(10), D(100))}, warm_bar=False)
    report = await kit.engine.kill.execute("test")
    assert not report.all_flat
    (position,) = report.positions
    assert not position.flat and "no last price" in position.detail
    await kit.engine.stop()
