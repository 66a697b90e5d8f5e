"""Load-bearing safety checks (issue 12 item 11): each guard on money has a test here that
fails without it (scripts/mutate_safety.py deletes or inverts each guard and runs these).

The broker is SimBroker, driven through its own fault injection or a thin wrapper around
one of its methods (the edge); the engine is never patched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from brokers.sim.config import PartialFills
from core.domain import (
    AccountSnapshot,
    ClientOrderId,
    OrderRequest,
    OrderSnapshot,
    OrderStatus,
    OrderType,
    Position,
    Side,
    Symbol,
)
from core.drafts import ConfirmOutcome
from core.events import PositionUnprotected, ProtectionFailed, ProtectionPlaced
from core.ledger import DraftStatus
from core.session import SessionState
from tests.kit.engine import EngineKit, engine_kit, protection_config, risk_config

D = Decimal
STOPS = (OrderType.TRAILING_STOP, OrderType.STOP)


async def _draft(kit: EngineKit, trigger: str = "101", stop: str = "99", qty: int = 50) -> int:
    review = await kit.engine.drafts.create_buy("AAPL", D(trigger), D(stop), qty=D(qty))
    assert review.allowed, review.refusals
    return review.draft_id


async def _all_orders(kit: EngineKit) -> list[OrderSnapshot]:
    return await kit.broker.list_orders(open_only=False)


async def _open_stops(kit: EngineKit) -> list[OrderSnapshot]:
    return [
        o
        for o in await kit.broker.list_orders(open_only=True)
        if o.side is Side.SELL and o.order_type in STOPS
    ]


async def _stops_sent_after(kit: EngineKit, before: set[str]) -> list[OrderSnapshot]:
    """Protective stops that reached the broker since `before` (its order ids then)."""
    return [
        o
        for o in await _all_orders(kit)
        if o.broker_order_id not in before and o.side is Side.SELL and o.order_type in STOPS
    ]


def _ignore_cancels(kit: EngineKit) -> None:
    async def ignored(broker_order_id: Any) -> None:
        return None  # the broker never gets the cancel

    kit.broker.cancel = ignored  # type: ignore[method-assign]


def _slow_account(kit: EngineKit, seconds: float) -> None:
    original: Callable[[], Awaitable[AccountSnapshot]] = kit.broker.account

    async def slow() -> AccountSnapshot:
        await kit.clock.sleep(seconds)
        return await original()

    kit.broker.account = slow  # type: ignore[method-assign]


# --- confirm ---------------------------------------------------------------------------------


async def test_a_confirm_while_a_kill_left_the_account_halted_places_nothing(
    tmp_path: Path,
) -> None:
    """A kill that is not flat (the broker ignored its cancel) keeps the account halted:
    a Confirm then is refused and nothing reaches the broker, though every risk rule
    passes."""
    kit = await engine_kit(tmp_path)
    await kit.engine.drafts.confirm(await _draft(kit, qty=10))
    _ignore_cancels(kit)
    kill = asyncio.get_running_loop().create_task(kit.engine.kill.execute("test"))
    await kit.advance(30)
    assert not (await kill).all_flat
    assert kit.engine.ctx.halted
    before = len(await _all_orders(kit))
    second = await _draft(kit, trigger="102", stop="100", qty=10)
    result = await kit.engine.drafts.confirm(second)
    assert result.outcome is ConfirmOutcome.REFUSED_RISK, result
    assert "kill" in result.message
    assert len(await _all_orders(kit)) == before
    with kit.ledger.unit_of_work(read_only=True) as uow:
        assert uow.drafts.require(second).status is DraftStatus.PENDING
    await kit.engine.stop()


async def test_a_draft_canceled_during_the_confirms_risk_check_is_not_sent(
    tmp_path: Path,
) -> None:
    """The user cancels the draft while the confirm waits for the broker's account: the
    PENDING -> CONFIRMED step finds it canceled and sends nothing."""
    kit = await engine_kit(tmp_path)
    draft_id = await _draft(kit)
    _slow_account(kit, 5)
    confirm = asyncio.get_running_loop().create_task(kit.engine.drafts.confirm(draft_id))
    await kit.advance(1)
    assert not confirm.done()
    assert await kit.engine.drafts.cancel(draft_id)
    await kit.advance(10)
    result = await confirm
    assert result.outcome is not ConfirmOutcome.PLACED, result
    assert await _all_orders(kit) == []
    with kit.ledger.unit_of_work(read_only=True) as uow:
        assert uow.drafts.require(draft_id).status is DraftStatus.CANCELED
    await kit.engine.stop()


# --- the protection ladder -------------------------------------------------------------------


async def test_a_protection_the_broker_rejects_after_taking_it_falls_back_to_a_plain_stop(
    tmp_path: Path,
) -> None:
    """The trailing stop is taken, then rejected by the broker (an asynchronous reject):
    it never protected anything, so the ladder goes on to the plain stop, which works."""
    kit = await engine_kit(tmp_path, sim={"ack_latency": 1.0})
    await kit.engine.drafts.confirm(await _draft(kit))
    await kit.advance(2)
    kit.broker.faults.reject_next("trailing stops are disabled", asynchronous=True)
    await kit.bar("100.5", "101.5", "100.4", "101.2")
    await kit.advance(15)
    (stop,) = await _open_stops(kit)
    assert stop.order_type is OrderType.STOP and stop.qty == D(50), stop
    failed = kit.of_type(ProtectionFailed)
    assert failed and "disabled" in failed[0].reason, failed
    placed = kit.of_type(ProtectionPlaced)
    assert [p.protection_kind.value for p in placed] == ["stop"], placed
    await kit.engine.stop()


async def test_a_protection_never_acknowledged_is_not_counted_as_protection(
    tmp_path: Path,
) -> None:
    """The broker takes the stops but never acknowledges them within the confirm timeout
    (still SUBMITTED when asked): they are taken back and the position is reported
    UNPROTECTED, never announced as protected."""
    kit = await engine_kit(tmp_path, sim={"ack_latency": 60.0})
    await kit.engine.drafts.confirm(await _draft(kit))
    await kit.advance(61)
    await kit.bar("100.5", "101.5", "100.4", "101.2")
    assert (await kit.broker.positions())[0].qty == D(50)
    await kit.advance(50)
    assert kit.of_type(ProtectionPlaced) == []
    failed = kit.of_type(ProtectionFailed)
    assert failed and all("not acknowledged" in f.reason for f in failed), failed
    assert kit.of_type(PositionUnprotected), kit.events
    await kit.engine.stop()


# --- no protection is sent while a kill runs -------------------------------------------------


async def test_a_kill_during_the_partial_fill_wait_sends_no_protection(tmp_path: Path) -> None:
    """The entry is partly filled and its protection task waits for the rest; the kill
    cancels the remainder, which ends the wait: the task must not protect (the kill is
    flattening those shares)."""
    kit = await engine_kit(tmp_path, sim={"partial_fills": PartialFills(chunks=(D(20),))})
    await kit.engine.drafts.confirm(await _draft(kit))
    await kit.bar("100.5", "101.5", "100.4", "101.2")
    assert kit.ledger_orders()[0].filled_qty == D(20)
    before = {o.broker_order_id for o in await _all_orders(kit)}
    kill = asyncio.get_running_loop().create_task(kit.engine.kill.execute("test"))
    await kit.advance(40)
    report = await kill
    assert report.all_flat, report
    assert await _stops_sent_after(kit, before) == []
    await kit.engine.stop()


async def test_a_kill_canceling_the_protection_does_not_reprotect(tmp_path: Path) -> None:
    """The kill cancels the protection; the protection's end must not trigger a new stop
    while the kill flattens (a stop and a market sell of the same shares)."""
    kit = await engine_kit(tmp_path)
    await kit.engine.drafts.confirm(await _draft(kit))
    await kit.bar("100.5", "101.5", "100.4", "101.2")
    assert len(await _open_stops(kit)) == 1
    before = {o.broker_order_id for o in await _all_orders(kit)}
    kill = asyncio.get_running_loop().create_task(kit.engine.kill.execute("test"))
    await kit.advance(40)
    assert (await kill).all_flat
    await kit.advance(20)
    assert await _stops_sent_after(kit, before) == []
    await kit.engine.stop()


async def test_a_fill_staged_before_a_kill_is_not_protected_during_it(tmp_path: Path) -> None:
    """The fill's transaction stages the trailing stop's intent; a kill starts before the
    protection task gets the symbol: the staged stop is never sent."""
    kit = await engine_kit(tmp_path)
    await kit.engine.drafts.confirm(await _draft(kit))
    before = {o.broker_order_id for o in await _all_orders(kit)}
    lock = kit.engine.ctx.locks("AAPL")
    await lock.acquire()  # the protection task waits for the symbol
    try:
        await kit.bar("100.5", "101.5", "100.4", "101.2")
        assert (await kit.broker.positions())[0].qty == D(50)
        kill = asyncio.get_running_loop().create_task(kit.engine.kill.execute("test"))
        await asyncio.sleep(0)
        assert kit.engine.ctx.halted
    finally:
        lock.release()
    await kit.advance(40)
    assert (await kill).all_flat
    assert await _stops_sent_after(kit, before) == []
    await kit.engine.stop()


async def test_a_fill_during_a_kill_writes_no_protection_intent(tmp_path: Path) -> None:
    """While the account is halted (a kill not flat: its cancel was ignored), the entry
    fills: no protection intent is even written; the kill's retry flattens the shares."""
    kit = await engine_kit(tmp_path)
    await kit.engine.drafts.confirm(await _draft(kit))
    _ignore_cancels(kit)
    kill = asyncio.get_running_loop().create_task(kit.engine.kill.execute("test"))
    await kit.advance(30)
    assert not (await kill).all_flat
    await kit.bar("100.5", "101.5", "100.4", "101.2")
    assert (await kit.broker.positions())[0].qty == D(50)
    from core.domain import OrderRole

    protections = [o for o in kit.ledger_orders() if o.role is OrderRole.PROTECTION]
    assert protections == [], [(o.client_order_id, o.status) for o in protections]
    await kit.engine.stop()


async def test_an_order_placed_outside_during_the_kill_means_not_flat(tmp_path: Path) -> None:
    """Orders keep appearing at the broker while the kill runs (placed outside Centaur,
    e.g. in the broker's own app): the report says flat only if, at its end, the broker
    lists no working order, whatever the cancel passes believed."""
    kit = await engine_kit(tmp_path)
    await kit.engine.drafts.confirm(await _draft(kit))
    await kit.bar("100.5", "101.5", "100.4", "101.2")
    original: Callable[[], Awaitable[list[Position]]] = kit.broker.positions
    placed: list[str] = []

    async def positions_while_someone_places_orders() -> list[Position]:
        out = await original()
        cid = f"outside-{len(placed) + 1}"
        request = OrderRequest(
            ClientOrderId(cid), Symbol("MSFT"), Side.BUY, D(1), OrderType.LIMIT, limit_price=D(50)
        )
        await kit.broker.submit(request)
        placed.append(cid)
        return out

    kill = asyncio.get_running_loop().create_task(kit.engine.kill.execute("test"))
    await asyncio.sleep(0)
    kit.broker.positions = positions_while_someone_places_orders  # type: ignore[method-assign]
    await kit.advance(40)
    report = await kill
    kit.broker.positions = original  # type: ignore[method-assign]
    assert placed
    assert await kit.broker.list_orders(open_only=True) != []
    assert not report.all_flat, report
    await kit.engine.stop()


async def test_a_reconcile_while_a_kill_is_not_flat_sends_no_protection(tmp_path: Path) -> None:
    """The kill canceled the protection but its flatten was refused: the account stays
    halted and the kill retries. A reconcile meanwhile must not put a stop back on the
    shares the kill is selling."""
    kit = await engine_kit(tmp_path)
    await kit.engine.drafts.confirm(await _draft(kit))
    await kit.bar("100.5", "101.5", "100.4", "101.2")
    assert len(await _open_stops(kit)) == 1
    for _ in range(2):  # the flatten, and the kill's second pass at it
        kit.broker.faults.reject_next("market orders are not accepted now")
    kill = asyncio.get_running_loop().create_task(kit.engine.kill.execute("test"))
    await kit.advance(12)
    assert not (await kill).all_flat
    assert (await kit.broker.positions())[0].qty == D(50)
    kit.broker.faults.clear()
    before = {o.broker_order_id for o in await _all_orders(kit)}
    await kit.engine.reconciler.run("periodic")
    await kit.advance(1)
    assert await _stops_sent_after(kit, before) == []
    await kit.engine.stop()


# --- reconcile, tracker and placement --------------------------------------------------------


async def test_a_reconcile_does_not_count_a_recorded_fill_twice(tmp_path: Path) -> None:
    """A partial fill seen on the stream, then a reconcile that lists it with a new one:
    the recorded fill is not counted again (the entry stays partly filled, 40 of 50)."""
    kit = await engine_kit(
        tmp_path,
        sim={"partial_fills": PartialFills(chunks=(D(30), D(10)))},
        protection=protection_config(partial_fill_wait_seconds=600),
    )
    await kit.engine.drafts.confirm(await _draft(kit))
    await kit.bar("100.5", "101.5", "100.4", "101.2")
    assert kit.ledger_orders()[0].filled_qty == D(30)
    kit.broker.faults.drop_next_events(1)  # the second partial fill's event
    await kit.bar("101.2", "101.6", "101.1", "101.4")
    await kit.engine.reconciler.run("periodic")
    entry = kit.ledger_orders()[0]
    assert entry.filled_qty == D(40), (entry.status, entry.filled_qty)
    assert entry.status is OrderStatus.PARTIALLY_FILLED, entry.status
    await kit.engine.stop()


async def test_a_snapshot_with_fewer_fills_never_shrinks_the_ledger(tmp_path: Path) -> None:
    """A query answered from a lagging replica: the order with fewer shares filled than
    the stream already reported. Filled quantity only grows."""
    kit = await engine_kit(tmp_path)
    await kit.engine.drafts.confirm(await _draft(kit))
    await kit.bar("100.5", "101.5", "100.4", "101.2")
    entry = kit.ledger_orders()[0]
    assert entry.filled_qty == D(50)
    snapshot = await kit.broker.get_order_by_client_id(entry.client_order_id)
    assert snapshot is not None
    from dataclasses import replace

    lagging = replace(snapshot, filled_qty=D(20), status=OrderStatus.PARTIALLY_FILLED)
    await kit.engine.tracker.apply_snapshots([lagging])
    assert kit.ledger_orders()[0].filled_qty == D(50)
    await kit.engine.stop()


async def test_an_ambiguous_send_not_found_yet_stays_unknown(tmp_path: Path) -> None:
    """A 5xx: the lookup finds nothing, but a request can still land: the outcome stays
    unknown (no 'never reached', the draft is not reopened for a second order)."""
    kit = await engine_kit(tmp_path)
    draft_id = await _draft(kit)
    kit.broker.faults.server_error_next_submit()
    result = await kit.engine.drafts.confirm(draft_id)
    assert result.outcome is ConfirmOutcome.UNKNOWN, result
    with kit.ledger.unit_of_work(read_only=True) as uow:
        assert uow.drafts.require(draft_id).status is DraftStatus.CONFIRMED
    assert kit.ledger_orders()[0].status is OrderStatus.PENDING_SUBMIT
    await kit.engine.stop()


async def test_an_ambiguous_send_that_was_placed_is_found_by_lookup(tmp_path: Path) -> None:
    """The broker took the order and the answer was lost: the lookup by client order id
    finds it, so the confirm reports it placed (no second order can follow)."""
    kit = await engine_kit(tmp_path)
    draft_id = await _draft(kit)
    kit.broker.faults.timeout_after_accept_next_submit()
    result = await kit.engine.drafts.confirm(draft_id)
    assert result.outcome is ConfirmOutcome.PLACED, result
    assert len(await _all_orders(kit)) == 1
    await kit.engine.stop()


# --- the daily loss lock ---------------------------------------------------------------------


async def test_a_daily_loss_reached_locks_the_day(tmp_path: Path) -> None:
    """The protection stops the trade out for a loss beyond the $ daily limit: the watch
    LOCKS the day."""
    kit = await engine_kit(tmp_path, risk=risk_config(max_daily_loss_usd=D(20)))
    await kit.engine.drafts.confirm(await _draft(kit))
    await kit.bar("100.5", "101.5", "100.4", "101.2")
    assert (await kit.broker.positions())[0].qty == D(50)
    await kit.bar("101", "101", "95", "95")  # through the trailing stop: about -$50
    await kit.advance(5)
    assert await kit.broker.positions() == []
    assert await kit.engine.risk.watch_loss()
    assert kit.engine.day.m.state is SessionState.LOCKED
    await kit.engine.stop()
