"""Risk and session: the daily loss lock survives restarts, cooldown, SAFE MODE watchdogs."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from core.domain import OrderRole, OrderStatus
from core.drafts import ConfirmOutcome
from core.events import RiskLocked, SafeModeEntered, SessionStateChanged
from core.risk import RiskCode
from core.session import SafeModeReason, SessionState
from core.status import BadgeKind, StatusQueries
from tests.kit.brokers import ny
from tests.kit.engine import EngineKit, engine_kit, sessions_config

D = Decimal


async def _filled_entry(kit: EngineKit, qty: int = 50) -> None:
    review = await kit.engine.drafts.create_buy("AAPL", D("101"), D("99"), qty=D(qty))
    assert (await kit.engine.drafts.confirm(review.draft_id)).ok
    await kit.bar("100.5", "101.5", "100.4", "101.2")


async def test_daily_loss_locks_the_day_and_a_restart_keeps_it(tmp_path: Path) -> None:
    kit = await engine_kit(tmp_path)
    await _filled_entry(kit)
    await kit.bar("94", "94.5", "93.5", "94.2")  # gap down through the trailing stop
    assert await kit.broker.positions() == []
    (locked,) = kit.of_type(RiskLocked)
    assert locked.reason == RiskCode.DAILY_LOSS_USD.value
    assert kit.engine.day.state is SessionState.LOCKED
    pnl = StatusQueries(kit.engine).pnl("day")
    # R is the one stop's distance, 101 less the frozen 1 % trail: 1.01 a share.
    assert pnl.realized == D(-350) and pnl.realized_r == D(-350) / (50 * D("1.01"))

    kit2 = await kit.restart()
    assert kit2.engine.day.state is SessionState.LOCKED
    review = await kit2.engine.drafts.create_buy("AAPL", D("95"), D("94"), qty=D(10))
    result = await kit2.engine.drafts.confirm(review.draft_id)
    assert result.outcome is ConfirmOutcome.REFUSED_RISK
    assert RiskCode.LOCKED in {r.code for r in result.reasons}
    assert await kit2.broker.list_orders(open_only=True) == []
    await kit2.engine.stop()


async def test_a_stop_out_starts_the_cooldown(tmp_path: Path) -> None:
    kit = await engine_kit(tmp_path, sessions=sessions_config(stale_data_seconds=3600))
    await _filled_entry(kit, qty=10)
    await kit.bar("100.0", "100.1", "99.5", "99.6")  # trailing stop at 100.188 triggers
    assert await kit.broker.positions() == []
    assert kit.engine.day.state is SessionState.COOLDOWN
    review = await kit.engine.drafts.create_buy("AAPL", D("101"), D("99"), qty=D(10))
    assert RiskCode.COOLDOWN in {r.code for r in review.refusals}
    kit.clock.advance(15 * 60)
    await kit.engine.tick()
    assert kit.engine.day.state is SessionState.TRADING_ALLOWED
    await kit.engine.stop()


async def test_stale_data_means_safe_mode_until_bars_come_back(tmp_path: Path) -> None:
    kit = await engine_kit(tmp_path)
    await kit.bar("100", "100.1", "99.9", "100")
    kit.clock.advance(181)
    await kit.engine.tick()
    assert kit.engine.day.state is SessionState.SAFE_MODE
    assert kit.of_type(SafeModeEntered)[0].reason is SafeModeReason.STALE_DATA
    review = await kit.engine.drafts.create_buy("AAPL", D("101"), D("99"), qty=D(10))
    assert RiskCode.SAFE_MODE in {r.code for r in review.refusals}
    ok, why = await kit.engine.resume("test")
    assert not ok and "no bar" in why
    await kit.bar("100", "100.1", "99.9", "100")
    ok, why = await kit.engine.resume("test")
    assert ok, why
    assert kit.engine.day.state is SessionState.TRADING_ALLOWED
    await kit.engine.stop()


async def test_a_broker_down_too_long_means_safe_mode_until_it_is_back(tmp_path: Path) -> None:
    kit = await engine_kit(tmp_path)
    await kit.engine.broker_down(125)
    assert kit.engine.day.state is SessionState.SAFE_MODE
    assert kit.of_type(SafeModeEntered)[0].reason is SafeModeReason.BROKER_UNREACHABLE
    ok, why = await kit.engine.resume("test")
    assert not ok and "broker connection is still down" in why
    kit.engine.broker_back()  # the adapter reconnected (then the engine reconciles)
    await kit.bar("100", "100.1", "99.9", "100")
    ok, why = await kit.engine.resume("test")
    assert ok, why
    assert kit.engine.day.state is SessionState.TRADING_ALLOWED
    await kit.engine.stop()


async def test_an_unacknowledged_order_means_safe_mode(tmp_path: Path) -> None:
    kit = await engine_kit(tmp_path, sim={"ack_latency": 3600.0})
    review = await kit.engine.drafts.create_buy("AAPL", D("101"), D("99"), qty=D(10))
    result = await kit.engine.drafts.confirm(review.draft_id)
    assert result.outcome is ConfirmOutcome.SENT
    await kit.bar("100", "100.1", "99.9", "100")
    kit.clock.advance(16)
    await kit.engine.tick()
    assert kit.engine.day.state is SessionState.SAFE_MODE
    reasons = {e.reason for e in kit.of_type(SafeModeEntered)}
    assert SafeModeReason.UNACKNOWLEDGED_ORDER in reasons
    # Protection and cancels still work in SAFE MODE.
    order = kit.engine.tracker.require(result.order.client_order_id)  # type: ignore[union-attr]
    view = await kit.engine.placer.cancel_and_confirm(order, 10)
    assert view.status is OrderStatus.CANCELED
    await kit.engine.stop()


async def test_the_session_is_restored_and_every_transition_recorded(tmp_path: Path) -> None:
    kit = await engine_kit(tmp_path, at=ny(9, 0), allow=False)
    assert kit.engine.day.state is SessionState.PREMARKET
    await kit.engine.day.answer(True, "test")
    kit.clock.set(ny(9, 45))
    await kit.bar("100", "100.1", "99.9", "100")  # fresh data (else: stale, SAFE MODE)
    await kit.engine.tick()
    assert kit.engine.day.state is SessionState.TRADING_ALLOWED
    changes = [(e.previous, e.current) for e in kit.of_type(SessionStateChanged)]
    assert (SessionState.PREMARKET, SessionState.OPENING_NO_TRADE) in changes
    kit2 = await kit.restart(allow=False)
    assert kit2.engine.day.state is SessionState.TRADING_ALLOWED
    with kit2.ledger.unit_of_work(read_only=True) as uow:
        history = uow.session_states.history(kit2.engine.ctx.account.row_id, kit2.engine.day.day)
        assert [h.to_state for h in history][-1] == "trading_allowed"
        assert len(history) >= 4
    await kit2.engine.stop()


async def test_status_snapshot(tmp_path: Path) -> None:
    kit = await engine_kit(tmp_path)
    await _filled_entry(kit)
    status = await StatusQueries(kit.engine).status()
    assert status.day_switch == "allowed" and status.session_state is SessionState.IN_POSITION
    (position,) = status.positions
    assert position.qty == D(50) and position.protection.kind is BadgeKind.TRAILING
    assert position.protection.qty == D(50) and position.protection.level is not None
    assert [o.role for o in status.working_orders] == [OrderRole.PROTECTION]
    assert status.equity is not None and status.trades_today == 1
    assert status.last_reconcile is not None and status.last_reconcile.in_sync
    await kit.engine.stop()
