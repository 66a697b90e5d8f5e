"""Reconcile: the broker wins; positions changed outside Centaur; missed events; restarts."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from core.domain import ClientOrderId, OrderRole, OrderStatus, OrderType, Side, Symbol
from core.events import ReconcileCompleted, SafeModeEntered
from core.ledger import DraftStatus
from core.session import SafeModeReason, SessionState
from tests.kit.brokers import AAPL, make_request
from tests.kit.engine import EngineKit, engine_kit

D = Decimal
MU = Symbol("MU")


async def _sells(kit: EngineKit, symbol: str = "AAPL") -> list[object]:
    return [
        o
        for o in await kit.broker.list_orders(open_only=True)
        if o.side is Side.SELL and o.symbol == symbol
    ]


async def test_a_position_found_at_first_start_is_adopted_and_protected(tmp_path: Path) -> None:
    kit = await engine_kit(tmp_path, seed={AAPL: (D(40), D(98))})
    report = kit.engine.reconciler.last
    assert report is not None and report.in_sync and report.adopted_positions
    assert kit.engine.day.state is not SessionState.SAFE_MODE
    (sell,) = await _sells(kit)
    assert sell.qty == D(40) and sell.order_type is OrderType.TRAILING_STOP  # type: ignore[attr-defined]
    # The next reconcile finds nothing to do.
    again = await kit.engine.reconciler.run("test")
    assert again.in_sync and not again.adopted_positions and not again.protected
    await kit.engine.stop()


async def test_a_position_changed_outside_centaur_means_safe_mode_and_protection(
    tmp_path: Path,
) -> None:
    kit = await engine_kit(tmp_path, seed={AAPL: (D(40), D(98))})
    kit.broker.seed_position(AAPL, D(70), D(99))  # 30 shares appeared without any fill
    report = await kit.engine.reconciler.run("test")
    assert not report.in_sync and report.mismatches == ("AAPL: broker 70, ledger 40",)
    assert kit.engine.day.state is SessionState.SAFE_MODE
    (entered,) = kit.of_type(SafeModeEntered)
    assert entered.reason is SafeModeReason.POSITION_MISMATCH
    sells = await _sells(kit)
    assert sum(s.qty for s in sells) == D(70)  # type: ignore[attr-defined]
    # /resume is refused until a reconcile finds the books in agreement again.
    ok, why = await kit.engine.resume("test")
    assert not ok and "mismatch" in why
    assert (await kit.engine.reconciler.run("test")).in_sync
    ok, why = await kit.engine.resume("test")
    assert ok, why
    assert kit.engine.day.state is not SessionState.SAFE_MODE
    assert kit.of_type(ReconcileCompleted)[-1].in_sync
    await kit.engine.stop()


async def test_a_position_gone_cancels_its_orphan_protection(tmp_path: Path) -> None:
    kit = await engine_kit(tmp_path, seed={AAPL: (D(40), D(98))})
    kit.broker.seed_position(AAPL, D(0), D(0))
    report = await kit.engine.reconciler.run("test")
    assert report.orphans_canceled and report.mismatches
    await kit.idle()
    assert await _sells(kit) == []
    protection = [o for o in kit.ledger_orders() if o.role is OrderRole.PROTECTION]
    assert [o.status for o in protection] == [OrderStatus.CANCELED]
    await kit.engine.stop()


async def test_an_external_order_is_adopted_and_its_fill_protected(tmp_path: Path) -> None:
    kit = await engine_kit(tmp_path)
    request = make_request(
        OrderType.MARKET, client_order_id="from-the-broker-app", symbol=AAPL, qty=10
    )
    await kit.broker.submit(request)  # placed outside Centaur
    await kit.bar("100", "100.2", "99.9", "100.1")
    rows = {o.client_order_id: o for o in kit.ledger_orders()}
    external = rows["from-the-broker-app"]
    assert external.role is OrderRole.EXTERNAL and external.status is OrderStatus.FILLED
    (sell,) = await _sells(kit)
    assert sell.qty == D(10)  # type: ignore[attr-defined]
    report = await kit.engine.reconciler.run("test")
    assert report.in_sync, report
    await kit.engine.stop()


async def test_missed_stream_events_are_recovered_by_reconcile(tmp_path: Path) -> None:
    kit = await engine_kit(tmp_path)
    review = await kit.engine.drafts.create_buy("AAPL", D("101"), D("99"), qty=D(50))
    await kit.engine.drafts.confirm(review.draft_id)
    kit.broker.faults.drop_next_events(5)  # the fill never reaches us
    await kit.bar("100.5", "101.5", "100.4", "101.2")
    assert kit.ledger_orders()[0].status is OrderStatus.ACCEPTED
    report = await kit.engine.reconciler.run("test")
    await kit.idle()
    assert report.fills_added == 1 and report.in_sync
    entry = kit.ledger_orders()[0]
    assert entry.status is OrderStatus.FILLED and entry.filled_qty == D(50)
    (sell,) = await _sells(kit)
    assert sell.qty == D(50)  # type: ignore[attr-defined]
    await kit.engine.stop()


async def test_an_intent_left_by_a_crash_is_resolved_at_restart(tmp_path: Path) -> None:
    kit = await engine_kit(tmp_path)
    review = await kit.engine.drafts.create_buy("AAPL", D("101"), D("99"), qty=D(50))
    # What a crash between "intent written" and "submit" leaves behind:
    engine = kit.engine
    request = engine.drafts._request(engine.drafts._draft(review.draft_id), attempt=1)
    with kit.ledger.unit_of_work() as uow:
        assert uow.drafts.transition_if(review.draft_id, DraftStatus.PENDING, DraftStatus.CONFIRMED)
        engine.tracker.record_intent_in(uow, request, OrderRole.ENTRY, draft_id=review.draft_id)
        uow.commit()
    kit2 = await kit.restart()
    report = kit2.engine.reconciler.last
    assert report is not None
    assert report.intents_resolved == (f"{request.client_order_id}: never reached the broker",)
    assert kit2.ledger_orders()[0].status is OrderStatus.REJECTED
    with kit2.ledger.unit_of_work(read_only=True) as uow:
        assert uow.drafts.require(review.draft_id).status is DraftStatus.PENDING
    result = await kit2.engine.drafts.confirm(review.draft_id)
    assert result.ok and result.order is not None
    assert result.order.client_order_id == ClientOrderId(request.client_order_id[:-1] + "2")
    assert len(await kit2.broker.list_orders(open_only=False)) == 1
    await kit2.engine.stop()


async def test_an_order_sent_but_not_recorded_is_adopted_at_restart(tmp_path: Path) -> None:
    kit = await engine_kit(tmp_path)
    review = await kit.engine.drafts.create_buy("AAPL", D("101"), D("99"), qty=D(50))
    engine = kit.engine
    request = engine.drafts._request(engine.drafts._draft(review.draft_id), attempt=1)
    with kit.ledger.unit_of_work() as uow:
        uow.drafts.transition_if(review.draft_id, DraftStatus.PENDING, DraftStatus.CONFIRMED)
        engine.tracker.record_intent_in(uow, request, OrderRole.ENTRY, draft_id=review.draft_id)
        uow.commit()
    await kit.broker.submit(request)  # reached the broker; the response was lost in a crash
    await engine.stop()
    await kit.bar("100.5", "101.5", "100.4", "101.2")  # it fills while we are down
    kit2 = await kit.restart()
    await kit2.idle()
    entry = kit2.ledger_orders()[0]
    assert entry.status is OrderStatus.FILLED and entry.role is OrderRole.ENTRY
    (sell,) = await _sells(kit2)
    assert sell.qty == D(50)  # type: ignore[attr-defined]
    assert (
        len([o for o in await kit2.broker.list_orders(open_only=False) if o.side is Side.BUY]) == 1
    )
    await kit2.engine.stop()


async def test_two_symbols_reconcile_independently(tmp_path: Path) -> None:
    kit = await engine_kit(tmp_path, seed={AAPL: (D(10), D(100)), MU: (D(5), D(80))})
    await kit.bar("80", "80.5", "79.5", "80.2", symbol=MU)
    report = await kit.engine.reconciler.run("test")
    assert report.in_sync
    assert {s.symbol for s in await kit.broker.list_orders(open_only=True)} == {"AAPL", "MU"}
    await kit.engine.stop()


async def test_a_lost_stream_is_resubscribed_then_reconciled(tmp_path: Path) -> None:
    kit = await engine_kit(tmp_path)
    review = await kit.engine.drafts.create_buy("AAPL", D("101"), D("99"), qty=D(50))
    await kit.engine.drafts.confirm(review.draft_id)
    stream = kit.engine._stream
    assert stream is not None
    await stream.aclose()  # type: ignore[attr-defined]
    await kit.idle()
    # Filled while nobody listens; the bar moves the clock past the resubscribe delay.
    await kit.bar("100.5", "101.5", "100.4", "101.2")
    assert kit.engine.reconciler.last is not None
    assert kit.engine.reconciler.last.reason == "stream reconnect"
    assert kit.ledger_orders()[0].status is OrderStatus.FILLED
    (sell,) = await _sells(kit)
    assert sell.qty == D(50)  # type: ignore[attr-defined]
    await kit.engine.stop()
