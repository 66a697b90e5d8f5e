"""Draft -> order: exactly once, whatever the broker or the user does twice."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from core.broker import RateLimited
from core.domain import OrderRequest, OrderRole, OrderSnapshot, OrderStatus
from core.drafts import ConfirmOutcome
from core.events import OrderFilled
from core.ledger import DraftStatus
from tests.kit.engine import EngineKit, engine_kit

D = Decimal


async def _draft(kit: EngineKit, trigger: str = "101", stop: str = "99", qty: int = 50) -> int:
    review = await kit.engine.drafts.create_buy("AAPL", D(trigger), D(stop), qty=D(qty))
    assert review.allowed, review.refusals
    return review.draft_id


async def test_double_confirm_places_one_order(tmp_path: Path) -> None:
    kit = await engine_kit(tmp_path)
    draft_id = await _draft(kit)
    first, second = await asyncio.gather(
        kit.engine.drafts.confirm(draft_id), kit.engine.drafts.confirm(draft_id)
    )
    third = await kit.engine.drafts.confirm(draft_id)  # a replayed update, later
    outcomes = sorted([first.outcome, second.outcome, third.outcome])
    assert outcomes.count(ConfirmOutcome.PLACED) == 1
    assert outcomes.count(ConfirmOutcome.ALREADY_CONFIRMED) == 2
    assert "nothing was sent again" in third.message
    assert len(await kit.broker.list_orders(open_only=False)) == 1
    assert [o.role for o in kit.ledger_orders()] == [OrderRole.ENTRY]
    await kit.engine.stop()


async def test_ambiguous_submit_resolved_by_lookup_gives_one_order(tmp_path: Path) -> None:
    kit = await engine_kit(tmp_path)
    draft_id = await _draft(kit)
    kit.broker.faults.timeout_after_accept_next_submit()
    result = await kit.engine.drafts.confirm(draft_id)
    assert result.outcome is ConfirmOutcome.PLACED, result
    broker_orders = await kit.broker.list_orders(open_only=False)
    assert len(broker_orders) == 1
    (row,) = kit.ledger_orders()
    assert row.broker_order_id == broker_orders[0].broker_order_id
    assert row.status is OrderStatus.ACCEPTED
    # The draft stays confirmed: confirming again sends nothing.
    again = await kit.engine.drafts.confirm(draft_id)
    assert again.outcome is ConfirmOutcome.ALREADY_CONFIRMED
    assert len(await kit.broker.list_orders(open_only=False)) == 1
    await kit.engine.stop()


async def test_rate_limited_submit_never_reached_then_a_new_attempt(tmp_path: Path) -> None:
    kit = await engine_kit(tmp_path)
    draft_id = await _draft(kit)
    original = kit.broker.submit

    async def throttled(request: OrderRequest) -> OrderSnapshot:
        kit.broker.submit = original  # type: ignore[method-assign]
        raise RateLimited("429 too many requests (submit)", retry_after=1.0)

    # Only the submit is throttled: an entry whose account query fails is refused before
    # any send (tests/integration/test_engine_money_safety.py).
    kit.broker.submit = throttled  # type: ignore[method-assign]
    result = await kit.engine.drafts.confirm(draft_id)
    assert result.outcome is ConfirmOutcome.NEVER_REACHED
    assert result.order is not None and result.order.status is OrderStatus.REJECTED
    assert await kit.broker.list_orders(open_only=False) == []
    retry = await kit.engine.drafts.confirm(draft_id)  # the draft was reopened
    assert retry.outcome is ConfirmOutcome.PLACED
    ids = [o.client_order_id for o in kit.ledger_orders()]
    assert ids[0].endswith("-en1") and ids[1].endswith("-en2")
    assert len(await kit.broker.list_orders(open_only=False)) == 1
    await kit.engine.stop()


async def test_unreachable_broker_leaves_the_intent_to_the_reconciler(tmp_path: Path) -> None:
    kit = await engine_kit(tmp_path)
    draft_id = await _draft(kit)
    original = kit.broker.submit

    async def unreachable(request: OrderRequest) -> OrderSnapshot:
        kit.broker.faults.unavailable(True)  # the submit's answer and the lookups are lost
        return await original(request)

    kit.broker.submit = unreachable  # type: ignore[method-assign]
    result = await kit.engine.drafts.confirm(draft_id)
    kit.broker.submit = original  # type: ignore[method-assign]
    assert result.outcome is ConfirmOutcome.UNKNOWN
    assert kit.ledger_orders()[0].status is OrderStatus.PENDING_SUBMIT
    kit.broker.faults.unavailable(False)
    # Too young to judge: the request could still be in flight.
    report = await kit.engine.reconciler.run("test")
    assert report.intents_resolved == ()
    await kit.advance(16)
    report = await kit.engine.reconciler.run("test")
    assert any("never reached the broker" in line for line in report.intents_resolved)
    (row,) = kit.ledger_orders()
    assert row.status is OrderStatus.REJECTED
    with kit.ledger.unit_of_work(read_only=True) as uow:
        assert uow.drafts.require(draft_id).status is DraftStatus.PENDING
    assert (await kit.engine.drafts.confirm(draft_id)).outcome is ConfirmOutcome.PLACED
    await kit.engine.stop()


async def test_duplicate_fill_events_count_once(tmp_path: Path) -> None:
    kit = await engine_kit(tmp_path)
    stream = kit.broker.events()  # a second subscriber records what the engine saw
    draft_id = await _draft(kit)
    await kit.engine.drafts.confirm(draft_id)
    await kit.bar("100.5", "101.5", "100.4", "101.2")
    seen = stream.pending()  # type: ignore[attr-defined]
    fill_events = [e for e in seen if e.fill is not None]
    assert len(fill_events) == 1
    notifications = kit.notification_count()
    for _ in range(3):  # the same event replayed (stream reconnect, at-least-once delivery)
        await kit.engine.handle_event(fill_events[0])
    await kit.idle()
    entry = kit.ledger_orders()[0]
    assert entry.filled_qty == D(50)
    with kit.ledger.unit_of_work(read_only=True) as uow:
        assert len(uow.fills.for_order(entry.id)) == 1
    assert len(kit.of_type(OrderFilled)) == 1
    assert kit.notification_count() == notifications
    # And only one protection order for the one fill.
    protections = [o for o in kit.ledger_orders() if o.role is OrderRole.PROTECTION]
    assert len(protections) == 1
    await kit.engine.stop()


async def test_batch_confirm_and_refusals_are_explained(tmp_path: Path) -> None:
    kit = await engine_kit(tmp_path)
    ok = await _draft(kit)
    # A 9.9 % trail puts the one stop at 91: 100 shares risk $1,000, over the $200 limit.
    too_big = (
        await kit.engine.drafts.create_buy(
            "AAPL", D("101"), D("91"), qty=D(100), trail_pct=D("9.9")
        )
    ).draft_id
    review = await kit.engine.drafts.review(too_big)
    assert not review.allowed
    assert any("per-trade limit" in r.message for r in review.refusals)
    results = await kit.engine.drafts.confirm_batch([ok, too_big, ok])
    assert [r.outcome for r in results] == [ConfirmOutcome.PLACED, ConfirmOutcome.REFUSED_RISK]
    assert "per-trade limit" in results[1].message
    with kit.ledger.unit_of_work(read_only=True) as uow:
        assert uow.drafts.require(too_big).status is DraftStatus.PENDING
    await kit.engine.stop()


async def test_drafts_expire_after_their_ttl(tmp_path: Path) -> None:
    kit = await engine_kit(tmp_path)
    draft_id = await _draft(kit)
    kit.clock.advance(31 * 60)
    result = await kit.engine.drafts.confirm(draft_id)
    assert result.outcome is ConfirmOutcome.EXPIRED
    assert await kit.broker.list_orders(open_only=False) == []
    await kit.engine.stop()
