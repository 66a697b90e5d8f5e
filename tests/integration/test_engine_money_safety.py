"""Regression tests for issue 12: money safety under interleavings.

Each test reproduces one way the engine broke when tried from outside (slow sends,
reconciles landing mid-flight, racing taps, restarts) and failed on the commit before its
fix. The broker is SimBroker; a send made slow or a query made to fail is done by a thin
wrapper around SimBroker's own method (the edge), never by patching the engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from core.broker import BrokerUnavailable
from core.domain import OrderRequest, OrderRole, OrderSnapshot, OrderStatus
from core.drafts import ConfirmOutcome
from core.ledger import DraftStatus
from tests.kit.engine import EngineKit, engine_kit, risk_config

D = Decimal


def slow_submits(kit: EngineKit, seconds: float) -> None:
    """Every submit takes `seconds` on the engine clock before it reaches SimBroker."""
    original: Callable[[OrderRequest], Awaitable[OrderSnapshot]] = kit.broker.submit

    async def slow(request: OrderRequest) -> OrderSnapshot:
        await kit.clock.sleep(seconds)
        return await original(request)

    kit.broker.submit = slow  # type: ignore[method-assign]


def lost_submits(kit: EngineKit, seconds: float) -> None:
    """Every submit hangs `seconds` on the engine clock, then its answer is lost (a
    timeout: the broker never got it, which the caller cannot know)."""

    async def lost(request: OrderRequest) -> OrderSnapshot:
        await kit.clock.sleep(seconds)
        raise BrokerUnavailable(f"timeout after {seconds} s")

    kit.broker.submit = lost  # type: ignore[method-assign]


async def _draft(kit: EngineKit, trigger: str = "101", stop: str = "99", qty: int = 50) -> int:
    review = await kit.engine.drafts.create_buy("AAPL", D(trigger), D(stop), qty=D(qty))
    assert review.allowed, review.refusals
    return review.draft_id


async def _broker_orders(kit: EngineKit) -> list[OrderSnapshot]:
    return await kit.broker.list_orders(open_only=False)


async def test_a_reconcile_never_judges_an_intent_whose_send_is_in_flight(
    tmp_path: Path,
) -> None:
    """Item 1: a send slower than unacknowledged_order_seconds, a reconcile meanwhile and
    a second Confirm: still exactly one order at the broker."""
    kit = await engine_kit(tmp_path)
    draft_id = await _draft(kit)
    slow_submits(kit, 40)
    first = asyncio.get_running_loop().create_task(kit.engine.drafts.confirm(draft_id))
    await kit.advance(20)  # older than the 15 s horizon; the send has not returned
    assert not first.done()
    report = await kit.engine.reconciler.run("periodic")
    assert not any("never reached" in line for line in report.intents_resolved), report
    with kit.ledger.unit_of_work(read_only=True) as uow:
        assert uow.drafts.require(draft_id).status is DraftStatus.CONFIRMED
    # A second tap waits for the first confirm's send (one confirm at a time per account).
    second = asyncio.get_running_loop().create_task(kit.engine.drafts.confirm(draft_id))
    await kit.advance(25)
    result = await first
    assert result.outcome is ConfirmOutcome.PLACED, result
    assert (await second).outcome is ConfirmOutcome.ALREADY_CONFIRMED
    assert len(await _broker_orders(kit)) == 1
    await kit.engine.stop()


async def test_an_intent_is_judged_only_after_its_send_ended_long_enough_ago(
    tmp_path: Path,
) -> None:
    """Item 1: an ambiguous send (the answer lost) may still land: the horizon counts from
    the end of the send, not from the intent's creation."""
    kit = await engine_kit(tmp_path)
    draft_id = await _draft(kit)
    lost_submits(kit, 30)
    task = asyncio.get_running_loop().create_task(kit.engine.drafts.confirm(draft_id))
    await kit.advance(31)
    result = await task
    assert result.outcome is ConfirmOutcome.UNKNOWN, result
    report = await kit.engine.reconciler.run(
        "periodic"
    )  # 31 s after the intent, 1 s after the send
    assert report.intents_resolved == (), report
    await kit.advance(16)
    report = await kit.engine.reconciler.run("periodic")
    assert any("never reached" in line for line in report.intents_resolved), report
    await kit.engine.stop()


async def test_working_entries_count_against_trades_per_day(tmp_path: Path) -> None:
    """Item 2: confirmed drafts still working count as trades."""
    kit = await engine_kit(tmp_path, risk=risk_config(max_trades_per_day=3))
    drafts = [await _draft(kit, qty=10) for _ in range(5)]
    results = [await kit.engine.drafts.confirm(d) for d in drafts]
    placed = [r for r in results if r.outcome is ConfirmOutcome.PLACED]
    assert len(placed) == 3, [r.message for r in results]
    assert all(r.outcome is ConfirmOutcome.REFUSED_RISK for r in results[3:])
    assert "trades today" in results[3].message
    assert len(await _broker_orders(kit)) == 3
    await kit.engine.stop()


async def test_working_entries_count_against_position_size(tmp_path: Path) -> None:
    """Item 2: five drafts of 50 @ 101 with a $12,000 position limit: only two work."""
    kit = await engine_kit(
        tmp_path, risk=risk_config(max_position_usd=D(12000), max_trades_per_day=10)
    )
    drafts = [await _draft(kit, qty=50) for _ in range(5)]
    results = [await kit.engine.drafts.confirm(d) for d in drafts]
    assert [r.outcome for r in results].count(ConfirmOutcome.PLACED) == 2
    assert "above the $12,000" in results[2].message or "12,000" in results[2].message
    await kit.bar("100.5", "101.5", "100.4", "101.2")
    positions = {p.symbol: p.qty for p in await kit.broker.positions()}
    assert positions["AAPL"] * D(101) <= D(12000)
    await kit.engine.stop()


async def test_concurrent_confirms_of_different_drafts_respect_the_limits(
    tmp_path: Path,
) -> None:
    """Item 2/8: racing taps on different drafts are checked one after the other."""
    kit = await engine_kit(tmp_path, risk=risk_config(max_trades_per_day=2))
    drafts = [await _draft(kit, qty=10) for _ in range(4)]
    results = await asyncio.gather(*(kit.engine.drafts.confirm(d) for d in drafts))
    assert [r.outcome for r in results].count(ConfirmOutcome.PLACED) == 2
    assert len(await _broker_orders(kit)) == 2
    await kit.engine.stop()


async def test_an_entry_whose_risk_cannot_be_checked_is_refused(tmp_path: Path) -> None:
    """Item 17: the account query fails -> refused with the reason, nothing sent, even
    when an older account snapshot is known."""
    kit = await engine_kit(tmp_path)
    draft_id = await _draft(kit)  # the review read the account once (a known snapshot)
    original = kit.broker.account

    async def failing() -> Any:
        raise BrokerUnavailable("account query timed out")

    kit.broker.account = failing  # type: ignore[method-assign]
    result = await kit.engine.drafts.confirm(draft_id)
    assert result.outcome is ConfirmOutcome.REFUSED_RISK, result
    assert "risk cannot be checked" in result.message
    assert await _broker_orders(kit) == []
    kit.broker.account = original  # type: ignore[method-assign]
    with kit.ledger.unit_of_work(read_only=True) as uow:
        assert uow.drafts.require(draft_id).status is DraftStatus.PENDING
    assert (await kit.engine.drafts.confirm(draft_id)).outcome is ConfirmOutcome.PLACED
    await kit.engine.stop()


async def test_a_confirm_in_flight_when_a_kill_starts_is_canceled_by_the_kill(
    tmp_path: Path,
) -> None:
    """Item 8: a Confirm past its halted check before the kill: the kill waits for its
    send and cancels it; "flat" means no working order at the broker either."""
    kit = await engine_kit(tmp_path)
    draft_id = await _draft(kit)
    slow_submits(kit, 5)
    confirm = asyncio.get_running_loop().create_task(kit.engine.drafts.confirm(draft_id))
    await kit.advance(1)
    kill = asyncio.get_running_loop().create_task(kit.engine.kill.execute("test"))
    await kit.advance(30)
    await confirm
    report = await kill
    open_orders = await kit.broker.list_orders(open_only=True)
    assert open_orders == [], open_orders
    assert report.all_flat
    await kit.engine.stop()


async def test_a_kill_report_is_not_flat_while_an_order_works_at_the_broker(
    tmp_path: Path,
) -> None:
    """Item 8: the kill's verification looks at the broker's working orders too."""
    kit = await engine_kit(tmp_path)
    draft_id = await _draft(kit)
    await kit.engine.drafts.confirm(draft_id)
    original = kit.broker.cancel

    async def ignored(broker_order_id: Any) -> None:
        return None  # the broker never gets the cancel

    kit.broker.cancel = ignored  # type: ignore[method-assign]
    task = asyncio.get_running_loop().create_task(kit.engine.kill.execute("test"))
    await kit.advance(60)
    report = await task
    assert not report.all_flat
    assert kit.engine.ctx.halted, "a kill that is not flat keeps the account halted"
    kit.broker.cancel = original  # type: ignore[method-assign]
    await kit.engine.stop()


async def test_a_kill_while_the_broker_is_down_retries_until_flat(tmp_path: Path) -> None:
    """Item 9: not flat -> stays halted, retries when the broker is back, reports flat."""
    kit = await engine_kit(tmp_path)
    draft_id = await _draft(kit)
    await kit.engine.drafts.confirm(draft_id)
    await kit.bar("100.5", "101.5", "100.4", "101.2")
    assert {p.symbol for p in await kit.broker.positions()} == {"AAPL"}
    kit.broker.faults.unavailable(True)
    task = asyncio.get_running_loop().create_task(kit.engine.kill.execute("test"))
    await kit.advance(60)
    report = await task
    assert not report.all_flat
    assert kit.engine.ctx.halted
    draft2 = (await kit.engine.drafts.create_buy("AAPL", D("105"), D("103"), qty=D(5))).draft_id
    refused = await kit.engine.drafts.confirm(draft2)
    assert refused.outcome is ConfirmOutcome.REFUSED_RISK
    kit.broker.faults.unavailable(False)
    for _ in range(6):
        await kit.engine.tick()
        await kit.advance(10)
    assert await kit.broker.positions() == []
    assert await kit.broker.list_orders(open_only=True) == []
    assert not kit.engine.ctx.halted
    from core.events import KillCompleted

    reports = kit.of_type(KillCompleted)
    assert reports[-1].all_flat
    assert not reports[0].all_flat
    await kit.engine.stop()


async def test_a_kill_not_flat_before_a_restart_is_retried_after_it(tmp_path: Path) -> None:
    """Item 9: the halt and the retry survive a restart."""
    kit = await engine_kit(tmp_path)
    draft_id = await _draft(kit)
    await kit.engine.drafts.confirm(draft_id)
    await kit.bar("100.5", "101.5", "100.4", "101.2")
    kit.broker.faults.unavailable(True)
    task = asyncio.get_running_loop().create_task(kit.engine.kill.execute("test"))
    await kit.advance(60)
    assert not (await task).all_flat
    kit.broker.faults.unavailable(False)
    kit = await kit.restart()
    for _ in range(6):
        await kit.engine.tick()
        await kit.advance(10)
    assert await kit.broker.positions() == []
    assert not kit.engine.ctx.halted
    await kit.engine.stop()


def _role_count(kit: EngineKit, role: OrderRole) -> int:
    return sum(1 for o in kit.ledger_orders() if o.role is role)


def _status(kit: EngineKit, cid_suffix: str) -> OrderStatus:
    return next(o.status for o in kit.ledger_orders() if o.client_order_id.endswith(cid_suffix))


async def test_a_reconcile_never_applies_a_snapshot_older_than_a_stream_event(
    tmp_path: Path,
) -> None:
    """Item 6: the entry fills on the stream while the reconcile is between its order
    query and applying it: the ledger must not go back to ACCEPTED."""
    kit = await engine_kit(tmp_path)
    draft_id = await _draft(kit)
    await kit.engine.drafts.confirm(draft_id)
    original = kit.broker.fills_since

    async def fill_meanwhile(since: Any) -> Any:
        kit.broker.fills_since = original  # type: ignore[method-assign]
        await kit.bar("100.5", "101.5", "100.4", "101.2")  # the stream reports the fill
        assert _status(kit, "-en1") is OrderStatus.FILLED
        return await original(since)

    kit.broker.fills_since = fill_meanwhile  # type: ignore[method-assign]
    await kit.engine.reconciler.run("periodic")
    assert _status(kit, "-en1") is OrderStatus.FILLED
    protections = [o for o in kit.ledger_orders() if o.role is OrderRole.PROTECTION]
    assert protections and all(p.status is OrderStatus.ACCEPTED for p in protections)
    report = await kit.engine.reconciler.run("periodic")
    assert report.in_sync, report
    await kit.engine.stop()


async def test_a_position_appearing_on_an_always_flat_account_is_a_mismatch(
    tmp_path: Path,
) -> None:
    """Item 14: the first reconcile learns the account; a position that appears later on
    an account that was always flat is unexplained: SAFE MODE, not "in sync"."""
    from core.session import SessionState

    kit = await engine_kit(tmp_path)
    first = await kit.engine.reconciler.run("periodic")
    assert first.in_sync and first.positions == ()
    kit.broker.seed_position("AAPL", D(10), D("150.25"))
    report = await kit.engine.reconciler.run("periodic")
    assert not report.in_sync, report
    assert report.mismatches
    assert kit.engine.day.state is SessionState.SAFE_MODE
    await kit.engine.stop()


async def test_a_position_appearing_between_runs_on_a_flat_account_is_a_mismatch(
    tmp_path: Path,
) -> None:
    """Item 14: the same across a restart."""
    from core.session import SessionState

    kit = await engine_kit(tmp_path)
    kit.broker.seed_position("AAPL", D(10), D("150.25"))
    kit = await kit.restart()
    assert kit.engine.reconciler.last is not None
    assert not kit.engine.reconciler.last.in_sync
    assert kit.engine.day.state is SessionState.SAFE_MODE
    await kit.engine.stop()


async def test_the_first_reconcile_of_a_new_account_adopts_silently_at_the_broker_price(
    tmp_path: Path,
) -> None:
    """Item 14: a brand-new account with a position: adopted (first sight), in sync, and
    the adoption carries the broker's average price."""
    from core.book import ADOPTED

    kit = await engine_kit(tmp_path, seed={"AAPL": (D(10), D("150.25"))})
    assert kit.engine.reconciler.last is not None and kit.engine.reconciler.last.in_sync
    with kit.ledger.unit_of_work(read_only=True) as uow:
        rows = [
            r
            for r in uow.risk_events.for_day(kit.engine.ctx.account.row_id, kit.engine.ctx.today())
            if r.kind == ADOPTED
        ]
    assert rows and D(str(rows[0].detail["price"])) == D("150.25")
    await kit.engine.stop()


async def _open_sells(kit: EngineKit) -> list[OrderSnapshot]:
    from core.domain import Side

    return [o for o in await kit.broker.list_orders(open_only=True) if o.side is Side.SELL]


async def test_a_restart_during_the_partial_fill_wait_resumes_it_and_protects(
    tmp_path: Path,
) -> None:
    """Item 3: after a restart mid-wait, the buy remainder is canceled (confirmed) and the
    filled shares protected; no sell is sent while the remainder works (a wash trade)."""
    from brokers.sim.config import PartialFills
    from core.events import PositionUnprotected, ProtectionFailed

    kit = await engine_kit(tmp_path, sim={"partial_fills": PartialFills(chunks=(D(20),))})
    draft_id = await _draft(kit)
    await kit.engine.drafts.confirm(draft_id)
    await kit.bar("100.5", "101.5", "100.4", "101.2")
    assert kit.ledger_orders()[0].filled_qty == D(20)
    await kit.advance(5)
    kit = await kit.restart()
    rejected = [o for o in kit.ledger_orders() if o.status is OrderStatus.REJECTED]
    assert rejected == [], [o.reject_reason for o in rejected]
    await kit.advance(20)
    entry = kit.ledger_orders()[0]
    assert entry.status is OrderStatus.CANCELED and entry.filled_qty == D(20)
    sells = await _open_sells(kit)
    assert sum((s.qty for s in sells), D(0)) == D(20)
    await kit.engine.reconciler.run("periodic")
    rejected = [o for o in kit.ledger_orders() if o.status is OrderStatus.REJECTED]
    assert rejected == [], [o.reject_reason for o in rejected]
    assert kit.of_type(PositionUnprotected) == [] and kit.of_type(ProtectionFailed) == []
    await kit.engine.stop()


async def test_auto_flatten_cancels_the_working_buy_before_selling(tmp_path: Path) -> None:
    """Item 3: the ladder's last rung flattens; a buy remainder still working would make the
    sell a wash trade: it is canceled first."""
    from brokers.sim.config import PartialFills
    from tests.kit.engine import protection_config

    kit = await engine_kit(
        tmp_path,
        sim={"partial_fills": PartialFills(chunks=(D(20),))},
        protection=protection_config(auto_flatten_when_unprotected=True),
    )
    draft_id = await _draft(kit)
    await kit.engine.drafts.confirm(draft_id)
    await kit.bar("100.5", "101.5", "100.4", "101.2")
    async with kit.engine.ctx.locks("AAPL"):  # the ladder calls it with the lock held
        await kit.engine._auto_flatten("AAPL", "test")
    await kit.advance(10)
    assert await kit.broker.positions() == []
    assert await kit.broker.list_orders(open_only=True) == []
    await kit.engine.stop()


async def test_a_stop_buy_is_refused_on_the_card_while_a_protective_sell_works(
    tmp_path: Path,
) -> None:
    """Item 15: Alpaca (and SimBroker, its rules) refuse a stop-buy against an open sell of
    the symbol as a wash trade: the card says so and nothing is sent."""
    kit = await engine_kit(tmp_path)
    first = await _draft(kit)
    await kit.engine.drafts.confirm(first)
    await kit.bar("100.5", "101.5", "100.4", "101.2")
    assert len(await _open_sells(kit)) == 1  # the protection
    review = await kit.engine.drafts.create_buy("AAPL", D("103"), D("101"), qty=D(10))
    assert not review.allowed
    assert any("wash trade" in r.message for r in review.refusals), review.refusals
    result = await kit.engine.drafts.confirm(review.draft_id)
    assert result.outcome is ConfirmOutcome.REFUSED_RISK
    assert "wash trade" in result.message
    buys = [o for o in await kit.broker.list_orders(open_only=False) if o.side.value == "buy"]
    assert len(buys) == 1
    await kit.engine.stop()


async def test_protection_is_resized_when_the_position_shrinks(tmp_path: Path) -> None:
    """Item 5: an outside sale of 20 of 50 shares (possible at IBKR, where sells do not
    reserve shares): the 50-share stop would leave the account 20 short when it triggers.
    The reconcile re-sizes the protection to the position."""
    kit = await engine_kit(tmp_path)
    draft_id = await _draft(kit)
    await kit.engine.drafts.confirm(draft_id)
    await kit.bar("100.5", "101.5", "100.4", "101.2")
    (sell,) = await _open_sells(kit)
    assert sell.qty == D(50)
    kit.broker.seed_position("AAPL", D(30), D(101))  # 20 sold outside Centaur
    await kit.engine.reconciler.run("periodic")
    await kit.advance(15)
    sells = await _open_sells(kit)
    assert sum((s.qty for s in sells), D(0)) == D(30), sells
    await kit.engine.stop()


async def test_a_lost_fill_event_is_protected_within_one_bar(tmp_path: Path) -> None:
    """Item 16: the stream's fill event is lost; the bar that crosses the working entry's
    trigger makes the engine ask the broker at once, well before the periodic reconcile."""
    kit = await engine_kit(tmp_path)
    draft_id = await _draft(kit)
    await kit.engine.drafts.confirm(draft_id)
    await kit.engine.reconciler.run("periodic")  # the next periodic one is 60 s away
    kit.broker.faults.drop_next_events(1)  # the fill event
    await kit.bar("100.5", "101.5", "100.4", "101.2")
    assert (await kit.broker.positions())[0].qty == D(50)
    await kit.advance(5)
    sells = await _open_sells(kit)
    assert sum((s.qty for s in sells), D(0)) == D(50), kit.ledger_orders()
    await kit.engine.stop()


async def test_a_fractional_remainder_left_out_of_protection_is_alerted_once(
    tmp_path: Path,
) -> None:
    """Item 13: whole shares are protected (a GTC stop takes no fractions); the fraction
    left unprotected is said once, not silently floored away."""
    from core.events import PositionUnprotected

    kit = await engine_kit(tmp_path, seed={"AAPL": (D("10.5"), D("100"))})
    sells = await _open_sells(kit)
    assert sum((s.qty for s in sells), D(0)) == D(10)
    alerts = [a for a in kit.of_type(PositionUnprotected) if a.symbol == "AAPL"]
    assert len(alerts) == 1 and alerts[0].qty == D("0.5"), alerts
    assert "fraction" in alerts[0].reason
    await kit.engine.reconciler.run("periodic")
    assert len([a for a in kit.of_type(PositionUnprotected) if a.symbol == "AAPL"]) == 1
    await kit.engine.stop()


async def test_a_stop_sell_whose_outcome_is_unknown_is_not_reopened(tmp_path: Path) -> None:
    """A stop-sell draft whose send's answer was lost may be at the broker: the draft is
    not reopened, so a second Confirm cannot send a second stop-sell."""
    kit = await engine_kit(tmp_path)
    draft_id = await _draft(kit)
    await kit.engine.drafts.confirm(draft_id)
    await kit.bar("100.5", "101.5", "100.4", "101.2")
    review = await kit.engine.drafts.create_sell("AAPL", D("100.40"))
    original = kit.broker.submit

    async def lost_once(request: OrderRequest) -> OrderSnapshot:
        kit.broker.submit = original  # type: ignore[method-assign]
        await original(request)  # it reached the broker; the answer is lost
        raise BrokerUnavailable("timeout")

    kit.broker.submit = lost_once  # type: ignore[method-assign]
    get_by_cid = kit.broker.get_order_by_client_id

    async def lookup_fails(cid: Any) -> Any:
        raise BrokerUnavailable("lookup timed out")

    kit.broker.get_order_by_client_id = lookup_fails  # type: ignore[method-assign]
    task = asyncio.get_running_loop().create_task(kit.engine.drafts.confirm(review.draft_id))
    await kit.advance(30)
    result = await task
    kit.broker.get_order_by_client_id = get_by_cid  # type: ignore[method-assign]
    assert result.outcome is not ConfirmOutcome.REJECTED, result
    with kit.ledger.unit_of_work(read_only=True) as uow:
        assert uow.drafts.require(review.draft_id).status is DraftStatus.CONFIRMED
    again = await kit.engine.drafts.confirm(review.draft_id)
    assert again.outcome is ConfirmOutcome.ALREADY_CONFIRMED
    stops = [
        o
        for o in await kit.broker.list_orders(open_only=False)
        if o.order_type.value == "stop" and o.side.value == "sell"
    ]
    assert len(stops) == 1, stops
    await kit.engine.stop()


async def test_a_fill_is_protected_even_while_another_entry_of_the_symbol_works(
    tmp_path: Path,
) -> None:
    """Found by the engine model: two stop-buys on one symbol, the lower one fills; the
    sell that protects it would be a wash trade against the other, still working. Held
    shares outrank a waiting entry: it is canceled (said in the chat) and the fill is
    protected."""
    from core.events import PositionUnprotected, ProtectionFailed

    kit = await engine_kit(tmp_path, risk=risk_config(max_trades_per_day=5))
    low = await _draft(kit, trigger="101", qty=20)
    high = await _draft(kit, trigger="103", qty=20)
    assert (await kit.engine.drafts.confirm(low)).outcome is ConfirmOutcome.PLACED
    assert (await kit.engine.drafts.confirm(high)).outcome is ConfirmOutcome.PLACED
    await kit.bar("100.5", "101.5", "100.4", "101.2")  # only the 101 trigger
    await kit.advance(12)
    sells = await _open_sells(kit)
    assert sum((s.qty for s in sells), D(0)) == D(20), kit.ledger_orders()
    assert kit.of_type(PositionUnprotected) == []
    (said,) = kit.of_type(ProtectionFailed)
    assert "wash trade" in said.reason
    assert _status(kit, "-d2-en1") is OrderStatus.CANCELED
    await kit.engine.stop()


async def test_shares_appearing_while_an_entry_works_are_protected(tmp_path: Path) -> None:
    """Found by the engine model (shrunk): shares appear outside Centaur while one of our
    stop-buys works on the symbol; the reconcile protects them (canceling the entry that
    would make the sell a wash trade) instead of alerting UNPROTECTED forever."""
    kit = await engine_kit(tmp_path)
    draft_id = await _draft(kit, trigger="103", qty=10)
    kit.broker.seed_position("AAPL", D(1), D(100))
    assert (await kit.engine.drafts.confirm(draft_id)).outcome is ConfirmOutcome.PLACED
    await kit.engine.reconciler.run("periodic")
    await kit.advance(12)
    await kit.engine.reconciler.run("periodic")
    sells = await _open_sells(kit)
    assert sum((s.qty for s in sells), D(0)) == D(1), kit.ledger_orders()
    await kit.engine.stop()
