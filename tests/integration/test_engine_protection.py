"""Fill -> protection: verified, with its fallback ladder, partial fills and edits."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from brokers.sim import PartialFills
from core.domain import OrderRole, OrderStatus, OrderType, Side
from core.events import (
    PositionUnprotected,
    ProtectionFailed,
    ProtectionFallback,
    ProtectionKind,
    ProtectionPlaced,
)
from core.ledger import ProtectionStatus
from tests.kit.brokers import AAPL, ny
from tests.kit.engine import EngineKit, engine_kit, protection_config

D = Decimal


async def _enter(kit: EngineKit, qty: int = 50, *, fill: bool = True) -> int:
    review = await kit.engine.drafts.create_buy("AAPL", D("101"), D("99"), qty=D(qty))
    result = await kit.engine.drafts.confirm(review.draft_id)
    assert result.ok, result
    if fill:
        await kit.bar("100.5", "101.5", "100.4", "101.2")
    return review.draft_id


async def _open_sells(kit: EngineKit) -> list[object]:
    return [o for o in await kit.broker.list_orders(open_only=True) if o.side is Side.SELL]


async def test_fill_gets_a_verified_trailing_stop_linked_to_the_entry(tmp_path: Path) -> None:
    kit = await engine_kit(tmp_path)
    await _enter(kit)
    (sell,) = await _open_sells(kit)
    assert sell.order_type is OrderType.TRAILING_STOP and sell.qty == D(50)  # type: ignore[attr-defined]
    (placed,) = kit.of_type(ProtectionPlaced)
    assert placed.protection_kind is ProtectionKind.TRAILING and placed.trail_pct == D(1)
    with kit.ledger.unit_of_work(read_only=True) as uow:
        entry = uow.orders.by_role(kit.engine.ctx.account.row_id, OrderRole.ENTRY)[0]
        (link,) = uow.protection_links.active_for_entry(entry.id)
        assert link.protected_qty == D(50)
    status = await kit.engine.ctx.broker.positions()
    assert status[0].qty == D(50)
    await kit.engine.stop()


async def test_trailing_refused_falls_back_to_the_plain_stop(tmp_path: Path) -> None:
    kit = await engine_kit(tmp_path)
    await _enter(kit, fill=False)
    kit.broker.faults.reject_next("trailing stops are disabled", "40310000")
    await kit.bar("100.5", "101.5", "100.4", "101.2")
    (sell,) = await _open_sells(kit)
    # The plain stop sits at the draft's one stop: 101 less the frozen 1 % trail, the
    # level the trailing stop would have started at (docs/one-stop.md), not the low 99.
    assert sell.order_type is OrderType.STOP and sell.stop_price == D("99.99")  # type: ignore[attr-defined]
    (failed,) = kit.of_type(ProtectionFailed)
    assert failed.attempted is ProtectionKind.TRAILING
    assert failed.fallback is ProtectionFallback.PLAIN_STOP
    assert "disabled" in failed.reason
    (placed,) = kit.of_type(ProtectionPlaced)
    assert placed.protection_kind is ProtectionKind.STOP
    await kit.engine.stop()


async def test_everything_refused_alerts_unprotected_and_flattens_if_configured(
    tmp_path: Path,
) -> None:
    kit = await engine_kit(
        tmp_path, protection=protection_config(auto_flatten_when_unprotected=True)
    )
    await _enter(kit, fill=False)
    kit.broker.faults.reject_next("no trailing")
    kit.broker.faults.reject_next("no stops either")
    await kit.bar("100.5", "101.5", "100.4", "101.2")
    (alert,) = kit.of_type(PositionUnprotected)
    assert alert.auto_flatten and alert.qty == D(50)
    assert [f.fallback for f in kit.of_type(ProtectionFailed)] == [
        ProtectionFallback.PLAIN_STOP,
        ProtectionFallback.FLATTEN,
    ]
    assert await kit.broker.positions() == []
    flatten = [o for o in kit.ledger_orders() if o.role is OrderRole.FLATTEN]
    assert len(flatten) == 1 and flatten[0].status is OrderStatus.FILLED
    await kit.engine.stop()


async def test_unprotected_without_auto_flatten_keeps_the_position_and_says_so(
    tmp_path: Path,
) -> None:
    kit = await engine_kit(tmp_path)
    await _enter(kit, fill=False)
    kit.broker.faults.reject_next("no trailing")
    kit.broker.faults.reject_next("no stops")
    await kit.bar("100.5", "101.5", "100.4", "101.2")
    (alert,) = kit.of_type(PositionUnprotected)
    assert not alert.auto_flatten and "no stops" in alert.reason
    assert (await kit.broker.positions())[0].qty == D(50)
    assert kit.notification_count("protection") >= 3  # two failures and the alert
    # The [Retry] button: protection works again now.
    results = await kit.engine.protection.ensure_symbol("AAPL", "retry")
    assert results and results[0].protected
    await kit.engine.stop()


async def test_partial_fill_waits_cancels_the_rest_and_protects_the_total(tmp_path: Path) -> None:
    kit = await engine_kit(tmp_path, sim={"partial_fills": PartialFills(chunks=(D(20),))})
    await _enter(kit)
    entry = kit.ledger_orders()[0]
    assert entry.status is OrderStatus.PARTIALLY_FILLED and entry.filled_qty == D(20)
    assert await _open_sells(kit) == []  # no sell while the buy remainder works (wash trade)
    await kit.advance(21)  # partial_fill_wait_seconds, then the cancel (confirmed at once)
    entry = kit.ledger_orders()[0]
    assert entry.status is OrderStatus.CANCELED and entry.filled_qty == D(20)
    (sell,) = await _open_sells(kit)
    assert sell.qty == D(20)  # type: ignore[attr-defined]
    await kit.engine.stop()


async def test_partial_fill_then_a_fill_racing_the_cancel_protects_everything(
    tmp_path: Path,
) -> None:
    kit = await engine_kit(
        tmp_path, sim={"partial_fills": PartialFills(chunks=(D(20),)), "cancel_latency": 5.0}
    )
    await _enter(kit)
    await kit.advance(20.5)  # the wait is over: the cancel is requested, pending 5 s
    entry = kit.ledger_orders()[0]
    assert entry.status is OrderStatus.PENDING_CANCEL
    await kit.bar("101.3", "101.6", "101.2", "101.5")  # the remainder fills first
    await kit.advance(6)
    entry = kit.ledger_orders()[0]
    assert entry.status is OrderStatus.FILLED and entry.filled_qty == D(50)
    sells = await _open_sells(kit)
    assert sum(s.qty for s in sells) == D(50)  # type: ignore[attr-defined]
    assert (await kit.broker.positions())[0].qty == D(50)
    await kit.engine.stop()


async def test_stop_sell_draft_replaces_the_protection(tmp_path: Path) -> None:
    kit = await engine_kit(tmp_path)
    await _enter(kit)
    review = await kit.engine.drafts.create_sell("AAPL", D("100.40"))
    assert review.qty == D(50) and review.allowed
    result = await kit.engine.drafts.confirm(review.draft_id)
    assert result.ok, result
    (sell,) = await _open_sells(kit)
    assert sell.order_type is OrderType.STOP and sell.stop_price == D("100.40")  # type: ignore[attr-defined]
    old = [o for o in kit.ledger_orders() if o.order_type is OrderType.TRAILING_STOP]
    assert old[0].status is OrderStatus.CANCELED
    with kit.ledger.unit_of_work(read_only=True) as uow:
        statuses = {link.status for link in uow.protection_links.for_protection_order(old[0].id)}
        assert statuses == {ProtectionStatus.CANCELED}
    await kit.engine.stop()


async def test_set_trail_replaces_the_trailing_stop(tmp_path: Path) -> None:
    kit = await engine_kit(tmp_path)
    await _enter(kit)
    results = await kit.engine.edits.set_trail("AAPL", D("2.5"), "test")
    assert results and all(r.protected for r in results)
    (sell,) = await _open_sells(kit)
    assert sell.trail_percent == D("2.5") and sell.qty == D(50)  # type: ignore[attr-defined]
    (old,) = [o for o in kit.ledger_orders() if o.trail_percent == D(1)]
    assert old.status is OrderStatus.REPLACED
    # A restart keeps the day's /trail for new protection.
    kit2 = await kit.restart()
    assert kit2.engine.protection.trail_pct("AAPL")[0] == D("2.5")
    await kit2.engine.stop()


async def test_protection_outside_regular_hours_is_queued_and_alerted(tmp_path: Path) -> None:
    kit = await engine_kit(tmp_path, at=ny(8, 0), seed={AAPL: (D(30), D(100))})
    (sell,) = await _open_sells(kit)
    assert sell.qty == D(30) and sell.raw_status == "accepted"  # type: ignore[attr-defined]
    alerts = kit.of_type(PositionUnprotected)
    assert alerts and "queued" in alerts[0].reason
    await kit.engine.stop()
