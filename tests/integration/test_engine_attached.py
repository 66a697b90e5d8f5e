"""A real TradingEngine over IbkrBroker + FakeGateway: entries carry attached protection.

Confirm writes the entry and its attached trailing-stop child (linked, kind ATTACHED) in
one unit of work before the gateway sees either; a parent fill (full or partial) leaves
exactly ONE protection (the child, re-sized by the adapter); a refused attachment falls
back to the post-fill path; SimBroker keeps the post-fill path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from brokers.ibkr import AttachedProtectionRefused, IbkrBroker
from core.attached_entry import supports_attached
from core.domain import (
    ClientOrderId,
    OrderRequest,
    OrderRole,
    OrderSnapshot,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from core.draft_models import ConfirmOutcome
from core.engine_context import EngineOptions
from core.events import ProtectionPlaced
from core.ids import Purpose, client_order_id, draft_scope
from core.ledger import OrderRow, ProtectionKind, ProtectionLinkRow, ProtectionStatus
from tests.integration.broker_harness import (
    EngineRig,
    IbkrFakeHarness,
    assert_no_duplicate_and_protected,
    engine_rig,
    open_harness,
)
from tests.kit.engine import engine_kit

D = Decimal
S = OrderStatus
FILL_BAR = ("100.5", "101.5", "100.4", "101.2")  # crosses the 101 trigger


@pytest.fixture
async def ib() -> AsyncIterator[IbkrFakeHarness]:
    async with open_harness("ibkr") as h:
        assert isinstance(h, IbkrFakeHarness)
        yield h


async def _rig(h: IbkrFakeHarness, tmp_path: Path, *, attached: bool = True) -> EngineRig:
    options = EngineOptions(tick_seconds=1.0, attached_protection=attached)
    rig = await engine_rig(h, tmp_path, options=options)
    assert supports_attached(rig.engine.ctx.broker)
    return rig


def _ids(rig: EngineRig, draft_id: int, attempt: int = 1) -> tuple[str, str]:
    ns = rig.engine.ctx.account.namespace
    scope = draft_scope(draft_id)
    return (
        client_order_id(ns, scope, Purpose.ENTRY, attempt),
        client_order_id(ns, scope, Purpose.ATTACHED, attempt),
    )


def _links(rig: EngineRig) -> list[ProtectionLinkRow]:
    with rig.ledger.unit_of_work(read_only=True) as uow:
        rows = uow.session.scalars(select(ProtectionLinkRow).order_by(ProtectionLinkRow.id))
        return list(rows.all())


def _protections(rig: EngineRig) -> list[OrderRow]:
    return [o for o in rig.ledger_orders() if o.role is OrderRole.PROTECTION]


async def _draft(rig: EngineRig, qty: int = 50) -> int:
    review = await rig.engine.drafts.create_buy("AAPL", D("101"), D("99"), qty=D(qty))
    return review.draft_id


async def test_confirm_writes_both_linked_intents_before_the_gateway_sees_them(
    ib: IbkrFakeHarness, tmp_path: Path
) -> None:
    rig = await _rig(ib, tmp_path)
    seen: list[tuple[str, dict[str, S], list[tuple[ProtectionKind, ProtectionStatus]]]] = []
    client: Any = ib.gateway.ib.client
    place = client.placeOrder

    def spy(order_id: int, contract: Any, order: Any) -> None:
        rows = {o.client_order_id: o.status for o in rig.ledger_orders()}
        links = [(link.kind, link.status) for link in _links(rig)]
        seen.append((order.orderRef, rows, links))
        place(order_id, contract, order)

    client.placeOrder = spy
    draft_id = await _draft(rig)
    entry_cid, child_cid = _ids(rig, draft_id)
    result = await rig.engine.drafts.confirm(draft_id)
    await rig.settle()
    assert result.outcome is ConfirmOutcome.PLACED, result
    assert "attached" in result.message

    # Parent then child, each placed exactly once, both intents already committed and
    # linked (PENDING_SUBMIT) when the gateway received the first message.
    assert [ref for ref, _, _ in seen] == [entry_cid, child_cid]
    for _, rows, links in seen:
        assert rows == {entry_cid: S.PENDING_SUBMIT, child_cid: S.PENDING_SUBMIT}
        assert links == [(ProtectionKind.ATTACHED, ProtectionStatus.ACTIVE)]

    entry, child = rig.ledger_orders()
    assert (entry.client_order_id, entry.role, entry.status) == (
        entry_cid,
        OrderRole.ENTRY,
        S.ACCEPTED,
    )
    assert (child.client_order_id, child.role, child.status) == (
        child_cid,
        OrderRole.PROTECTION,
        S.ACCEPTED,
    )
    assert child.side is Side.SELL and child.order_type is OrderType.TRAILING_STOP
    assert child.qty == D(50) and child.parent_order_id == entry.id
    assert child.trail_percent == D(1)  # the trail policy's default (no bars yet)
    (link,) = _links(rig)
    assert (link.entry_order_id, link.protection_order_id, link.protected_qty) == (
        entry.id,
        child.id,
        D(50),
    )
    held_child = ib.gateway.order(child_cid)
    assert held_child.order.parentId == ib.gateway.order(entry_cid).order_id

    # A double tap sends nothing.
    again = await rig.engine.drafts.confirm(draft_id)
    assert again.outcome is ConfirmOutcome.ALREADY_CONFIRMED
    await rig.settle()
    assert [ref for ref, _, _ in seen] == [entry_cid, child_cid]
    await rig.stop()


async def test_parent_fill_activates_the_child_and_places_no_second_protection(
    ib: IbkrFakeHarness, tmp_path: Path
) -> None:
    rig = await _rig(ib, tmp_path)
    draft_id = await rig.enter(qty=50)
    _, child_cid = _ids(rig, draft_id)
    await rig.bar(*FILL_BAR)
    await rig.advance(30)  # past partial_fill_wait and the protection confirm timeout
    await rig.engine.reconciler.run("test")
    await rig.settle()

    assert await rig.position() == D(50)
    assert ib.gateway.order(child_cid).status == "Submitted"  # activated by the fill
    (protection,) = _protections(rig)
    assert protection.client_order_id == child_cid and protection.status is S.ACCEPTED
    (sell,) = await rig.open_sells()
    assert sell.client_order_id == child_cid and sell.qty == D(50)
    assert not rig.of_type(ProtectionPlaced)  # the post-fill path placed nothing
    (link,) = _links(rig)
    assert link.status is ProtectionStatus.ACTIVE and link.kind is ProtectionKind.ATTACHED
    await assert_no_duplicate_and_protected(rig)
    await rig.stop()


async def test_partial_parent_fill_resizes_the_child_and_keeps_one_protection(
    ib: IbkrFakeHarness, tmp_path: Path
) -> None:
    rig = await _rig(ib, tmp_path)
    ib.set_liquidity("AAPL", "20")
    draft_id = await rig.enter(qty=50)
    entry_cid, child_cid = _ids(rig, draft_id)
    await rig.bar(*FILL_BAR)
    assert await rig.position() == D(20)
    state = rig.engine.ctx.broker
    assert isinstance(state, IbkrBroker)
    attached = state.attached_state(ClientOrderId(entry_cid))
    assert attached is not None and attached.in_sync and attached.child_qty == D(20)
    assert ib.gateway.order(child_cid).order.totalQuantity == 20
    assert len(_protections(rig)) == 1

    # The engine's partial-fill policy cancels the remainder after the wait: still one
    # protection, covering exactly what is held.
    await rig.advance(30)
    await rig.engine.reconciler.run("test")
    await rig.settle()
    (protection,) = _protections(rig)
    assert protection.client_order_id == child_cid
    (sell,) = await rig.open_sells()
    assert sell.client_order_id == child_cid and sell.qty == D(20)
    assert not rig.of_type(ProtectionPlaced)
    await assert_no_duplicate_and_protected(rig)
    await rig.stop()


async def test_refused_attachment_places_the_entry_alone_and_protects_after_the_fill(
    ib: IbkrFakeHarness, tmp_path: Path
) -> None:
    rig = await _rig(ib, tmp_path)
    draft_id = await _draft(rig)
    entry_cid, child_cid = _ids(rig, draft_id)
    ib.gateway.reject_refs[child_cid] = (201, "Order rejected - reason: TRAIL not allowed")
    result = await rig.engine.drafts.confirm(draft_id)
    await rig.settle()
    assert result.ok, result
    assert "attached protection refused" in result.message
    retry_cid, _ = _ids(rig, draft_id, attempt=2)
    assert result.order is not None and result.order.client_order_id == retry_cid

    rows = {o.client_order_id: o for o in rig.ledger_orders()}
    assert rows[child_cid].status is S.REJECTED
    assert rows[entry_cid].status is S.CANCELED  # taken back by the adapter, unfilled
    (link,) = _links(rig)
    assert link.status is ProtectionStatus.CANCELED

    await rig.bar(*FILL_BAR)
    await rig.advance(15)
    (placed,) = rig.of_type(ProtectionPlaced)
    assert placed.protection_kind.value == "trailing"
    (sell,) = await rig.open_sells()
    assert sell.qty == D(50) and sell.order_type is OrderType.TRAILING_STOP
    assert sell.client_order_id.endswith("-ts1")
    # (assert_no_duplicate_and_protected counts the canceled first attempt as a live entry)
    assert await rig.position() == D(50)
    entries = [o for o in rig.ledger_orders() if o.role is OrderRole.ENTRY]
    assert [(o.client_order_id, o.status) for o in entries] == [
        (entry_cid, S.CANCELED),
        (retry_cid, S.FILLED),
    ]
    await rig.stop()


async def test_refusal_after_the_parent_filled_protects_through_the_post_fill_path(
    ib: IbkrFakeHarness, tmp_path: Path
) -> None:
    """The fill won the race with the refusal: the adapter raises with `.parent` FILLED;
    the engine must see the fill and place the usual trailing stop."""
    rig = await _rig(ib, tmp_path)
    broker = rig.engine.ctx.broker
    assert isinstance(broker, IbkrBroker)
    submit = broker.attached.submit

    async def fill_then_refuse(
        entry: OrderRequest, trail: Decimal, child_id: ClientOrderId, **kw: Any
    ) -> tuple[OrderSnapshot, OrderSnapshot]:
        parent, _ = await submit(entry, trail, child_id, **kw)
        held = ib.gateway.order(entry.client_order_id)
        ib.gateway.set_status(ib.gateway.order(child_id), "Cancelled")
        ib.gateway.fill(held, 50, 101.0, activate_children=False)
        ib.gateway.positions["AAPL"] = (50.0, 101.0)
        await ib.settle()
        now = await broker.get_order(parent.broker_order_id)
        assert now.status is S.FILLED
        raise AttachedProtectionRefused("child refused late", client_order_id=child_id, parent=now)

    broker.attached.submit = fill_then_refuse  # type: ignore[method-assign,assignment]
    draft_id = await _draft(rig)
    entry_cid, child_cid = _ids(rig, draft_id)
    result = await rig.engine.drafts.confirm(draft_id)
    assert result.ok, result
    await rig.advance(15)

    rows = {o.client_order_id: o for o in rig.ledger_orders()}
    assert rows[entry_cid].status is S.FILLED and rows[entry_cid].filled_qty == D(50)
    assert rows[child_cid].status in (S.REJECTED, S.CANCELED)  # IB's Cancelled may come first
    (placed,) = rig.of_type(ProtectionPlaced)
    assert placed.protection_kind.value == "trailing"
    (sell,) = await rig.open_sells()
    assert sell.client_order_id.endswith("-ts1") and sell.qty == D(50)
    links = {(link.kind, link.status) for link in _links(rig)}
    assert links == {
        (ProtectionKind.ATTACHED, ProtectionStatus.CANCELED),
        (ProtectionKind.TRAILING, ProtectionStatus.ACTIVE),
    }
    await assert_no_duplicate_and_protected(rig)
    await rig.stop()


async def test_reconcile_keeps_the_child_of_a_working_parent(
    ib: IbkrFakeHarness, tmp_path: Path
) -> None:
    rig = await _rig(ib, tmp_path)
    draft_id = await rig.enter(qty=50)
    _, child_cid = _ids(rig, draft_id)
    await rig.engine.reconciler.run("periodic")
    await rig.settle()
    assert ib.gateway.order(child_cid).status == "PreSubmitted"
    await rig.stop()


async def test_ibkr_without_the_option_keeps_the_post_fill_path(
    ib: IbkrFakeHarness, tmp_path: Path
) -> None:
    rig = await _rig(ib, tmp_path, attached=False)
    await rig.enter(qty=50)
    assert [o.role for o in rig.ledger_orders()] == [OrderRole.ENTRY]
    await rig.bar(*FILL_BAR)
    (placed,) = rig.of_type(ProtectionPlaced)
    assert placed.protection_kind.value == "trailing"
    assert [link.kind for link in _links(rig)] == [ProtectionKind.TRAILING]
    await assert_no_duplicate_and_protected(rig)
    await rig.stop()


async def test_sim_keeps_the_post_fill_path(tmp_path: Path) -> None:
    kit = await engine_kit(tmp_path)
    assert not supports_attached(kit.engine.ctx.broker)
    review = await kit.engine.drafts.create_buy("AAPL", D("101"), D("99"), qty=D(50))
    result = await kit.engine.drafts.confirm(review.draft_id)
    assert result.ok and "attached" not in result.message
    with kit.ledger.unit_of_work(read_only=True) as uow:
        assert len(uow.session.scalars(select(OrderRow)).all()) == 1
    await kit.bar("100.5", "101.5", "100.4", "101.2")
    (placed,) = kit.of_type(ProtectionPlaced)
    assert placed.protection_kind.value == "trailing"
    with kit.ledger.unit_of_work(read_only=True) as uow:
        orders = list(uow.session.scalars(select(OrderRow).order_by(OrderRow.id)).all())
        links = list(uow.session.scalars(select(ProtectionLinkRow)).all())
    assert [o.client_order_id.rsplit("-", 1)[1] for o in orders] == ["en1", "ts1"]
    assert [link.kind for link in links] == [ProtectionKind.TRAILING]
    assert TimeInForce.GTC is orders[1].time_in_force
    await kit.engine.stop()


async def test_the_attached_child_trails_by_the_percent_frozen_on_the_draft(
    ib: IbkrFakeHarness, tmp_path: Path
) -> None:
    """Issue 12 item 10: the draft was sized on a 1 % trail; a /trail between the draft
    and its confirm applies to later drafts, so the child still trails by 1 %."""
    rig = await _rig(ib, tmp_path)
    draft_id = await _draft(rig)
    await rig.engine.edits.set_trail("AAPL", D("2.5"), "test")
    assert (await rig.engine.drafts.confirm(draft_id)).ok
    _, child_cid = _ids(rig, draft_id)
    (child,) = [o for o in _protections(rig) if o.client_order_id == child_cid]
    assert child.trail_percent == D(1)
    await rig.stop()
