"""The broker contract: the SAME scenarios on SimBroker, on AlpacaBroker over the fake Alpaca
(the real alpaca-py SDK on 127.0.0.1) and on IbkrBroker over the FakeGateway, so that the
three cannot drift apart. The harnesses are in `broker_harness.py`.

Broker level: submit (acknowledged, snapshot fields, Decimal prices, lookups), a reused
client order id, fill -> a trailing-stop sell for the filled quantity seen accepted, the
cancel race and the replace race (the fill wins; nothing counted twice), rejections
(insufficient qty for a second full-size sell, wash trade), extended hours (the
capability matrix refuses locally: nothing reaches the broker), a stop placed before the
open (queued). Engine level (a real TradingEngine per broker, SQLite ledger): fill ->
verified trailing stop, the partial-fill policy (wait, cancel the rest, confirm, protect
the total), the stream lost while the entry fills (reconnect -> reconcile -> the ledger
has the truth and the position is protected once), kill (canceled and flat, verified),
kill racing a fill.

DIFFERENCES, asserted as such (consistent with test_ibkr_contract.py):
- `submit` answers: Alpaca returns the POST's order (`pending_new` -> SUBMITTED), acked
  (`new` -> ACCEPTED) an instant later on the stream; SimBroker (no ack latency) and IBKR
  (`submit` waits for IB's acknowledgement) return ACCEPTED. IBKR's raw status for a stop
  is `PreSubmitted`; Alpaca/Sim say `new`.
- Cancel race: Alpaca/Sim take the cancel (204) and the fill arrives after it; IBKR's
  `cancel` waits for IB's answer and raises NotCancelable when the fill won.
- Replace race: Alpaca/Sim return the NEW order, which ends REJECTED
  (`order_replace_rejected` on the old one); IBKR modifies in place and raises
  NotReplaceable once the order filled.
- Insufficient qty and wash trade are Alpaca rules (SimBroker plays them); IB reserves no
  shares for open sells and has no wash-trade refusal of that kind: skipped on IBKR.
- Extended hours: a stop with `extended_hours` (outsideRth) is accepted on IBKR.
- Trailing stops: Alpaca/Sim report the current stop level, IBKR does not (stop_price
  None on a TRAIL order).
- A stop placed before the open without extended hours waits as `accepted` on all three
  (BROKERS.md: "market closed: no error, orders wait as accepted"; to confirm on paper).
- Stream loss: SimBroker's stream ends (the engine subscribes again and reconciles by
  itself); Alpaca's trade_updates and IBKR's socket reconnect inside the adapter, which
  runs its reconnect hook (wired to the engine's reconcile here, by the composition
  root in the app).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from core.broker import (
    BrokerEvent,
    BrokerEventKind,
    DuplicateClientOrderId,
    InsufficientQty,
    NotCancelable,
    NotReplaceable,
    UnsupportedOrder,
    WashTradeRejected,
)
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
from core.events import KillCompleted, ProtectionKind, ProtectionPlaced
from tests.integration.broker_harness import (
    KINDS,
    T0,
    AlpacaFakeHarness,
    BrokerHarness,
    IbkrFakeHarness,
    Kind,
    engine_rig,
    eventually,
    ny,
    open_harness,
)
from tests.kit.brokers import make_request

D = Decimal
S = OrderStatus
K = BrokerEventKind
EARLY = ny(9, 0)  # before anything of the day happened


def stop_buy(cid: str, qty: int = 10, **kw: Any) -> OrderRequest:
    return make_request(OrderType.STOP, client_order_id=cid, qty=qty, stop_price="100.05", **kw)


def trailing_sell(cid: str, qty: int = 10) -> OrderRequest:
    return make_request(
        OrderType.TRAILING_STOP,
        client_order_id=cid,
        side=Side.SELL,
        qty=qty,
        trail_percent="1",
        time_in_force=TimeInForce.GTC,
    )


def drain(subscription: object) -> list[BrokerEvent]:
    """What the subscription holds now (every adapter's Subscription has `pending`)."""
    events: list[BrokerEvent] = subscription.pending()  # type: ignore[attr-defined]
    return events


@pytest.fixture(params=KINDS)
async def h(request: pytest.FixtureRequest) -> AsyncIterator[BrokerHarness]:
    async with open_harness(request.param) as harness:
        yield harness


# --- broker level ------------------------------------------------------------------------


async def test_submit_is_acknowledged_with_exact_fields_and_found_again(h: BrokerHarness) -> None:
    broker = h.broker
    snap = await broker.submit(stop_buy("k-1"))
    # DIFFERENCE: Alpaca answers the POST with pending_new, acked on the stream after.
    expected_first = S.SUBMITTED if h.kind == "alpaca" else S.ACCEPTED
    assert snap.status is expected_first
    assert snap.broker_order_id and snap.client_order_id == "k-1"
    assert (snap.symbol, snap.side, snap.order_type, snap.time_in_force) == (
        "AAPL",
        Side.BUY,
        OrderType.STOP,
        TimeInForce.DAY,
    )
    for value in (snap.qty, snap.filled_qty, snap.stop_price):
        assert isinstance(value, Decimal)
    assert (snap.qty, snap.filled_qty, snap.stop_price) == (D(10), D(0), D("100.05"))
    assert snap.limit_price is None and snap.trail_percent is None
    assert snap.avg_fill_price is None
    assert snap.created_at is not None and snap.created_at.tzinfo is not None
    await h.settle()
    now = await broker.get_order(snap.broker_order_id)
    assert now.status is S.ACCEPTED
    assert now.raw_status == ("PreSubmitted" if h.kind == "ibkr" else "new")
    found = await broker.get_order_by_client_id(ClientOrderId("k-1"))
    assert found is not None and found.broker_order_id == snap.broker_order_id
    assert await broker.get_order_by_client_id(ClientOrderId("nope")) is None
    assert [o.client_order_id for o in await broker.list_orders(open_only=True)] == ["k-1"]
    assert [o.client_order_id for o in await broker.list_orders(open_only=False, since=T0)] == [
        "k-1"
    ]


async def test_a_reused_client_order_id_is_refused_even_after_a_cancel(h: BrokerHarness) -> None:
    broker = h.broker
    snap = await broker.submit(stop_buy("dup"))
    await h.settle()
    with pytest.raises(DuplicateClientOrderId):
        await broker.submit(stop_buy("dup"))
    await broker.cancel(snap.broker_order_id)
    await h.settle()
    assert (await broker.get_order(snap.broker_order_id)).status is S.CANCELED
    with pytest.raises(DuplicateClientOrderId):
        await broker.submit(stop_buy("dup"))
    with pytest.raises(NotCancelable):
        await broker.cancel(snap.broker_order_id)
    assert [cid for cid, _, _ in await h.server_orders()] == ["dup"]


async def test_a_fill_then_a_trailing_stop_for_the_filled_qty_is_accepted(
    h: BrokerHarness,
) -> None:
    broker = h.broker
    events = broker.events()
    entry = await broker.submit(stop_buy("entry"))
    await h.settle()
    await h.bar("AAPL", "100.10", "100.30", "100.05", "100.20")
    await h.settle()
    fills = [e for e in drain(events) if e.fill is not None]
    assert [(e.kind, e.order.broker_order_id) for e in fills] == [(K.FILL, entry.broker_order_id)]
    fill = fills[0].fill
    assert fill is not None and fill.execution_id and fill.client_order_id == "entry"
    assert (fill.side, fill.qty, fill.price) == (Side.BUY, D(10), D("100.10"))
    assert isinstance(fill.price, Decimal) and fill.timestamp.tzinfo is not None
    assert [(p.symbol, p.qty) for p in await broker.positions()] == [("AAPL", D(10))]

    protection = await broker.submit(trailing_sell("protect", qty=int(fill.qty)))
    await h.settle()
    seen = [e.order.status for e in drain(events) if e.order.client_order_id == "protect"]
    queried = await broker.get_order(protection.broker_order_id)
    assert S.ACCEPTED in seen or queried.status is S.ACCEPTED
    assert queried.status is S.ACCEPTED
    assert (queried.side, queried.order_type, queried.qty) == (
        Side.SELL,
        OrderType.TRAILING_STOP,
        D(10),
    )
    assert queried.trail_percent == D(1) and queried.time_in_force is TimeInForce.GTC
    if h.kind != "ibkr":  # DIFFERENCE: IB does not report a TRAIL order's stop level
        assert queried.stop_price is not None and queried.stop_price < D("100.30")


async def _race(h: BrokerHarness, start: asyncio.Task[Any]) -> BaseException | Any:
    """The request is taken (or waits for the broker); the fill happens; then the broker
    completes the request. Returns what the request call ended with."""
    await h.settle()
    await h.bar("AAPL", "100.10", "100.10", "100.10", "100.10")
    await h.release()
    await h.settle()
    try:
        return await asyncio.wait_for(start, 5)
    except (NotCancelable, NotReplaceable) as exc:
        return exc


async def _exactly_one_fill_of_ten(h: BrokerHarness, events: list[BrokerEvent]) -> None:
    fills = [e.fill for e in events if e.fill is not None]
    assert [(f.qty, f.price) for f in fills] == [(D(10), D("100.10"))]
    history = await h.broker.fills_since(EARLY)
    assert [(f.client_order_id, f.qty) for f in history] == [("race", D(10))]
    assert [(p.symbol, p.qty) for p in await h.broker.positions()] == [("AAPL", D(10))]
    assert await h.broker.list_orders(open_only=True) == []


@pytest.mark.parametrize("kind", KINDS)
async def test_cancel_race_the_fill_wins_and_counts_once(kind: Kind) -> None:
    async with open_harness(kind, slow_cancels=True) as h:
        events = h.broker.events()
        snap = await h.broker.submit(stop_buy("race"))
        await h.settle()
        outcome = await _race(h, asyncio.create_task(h.broker.cancel(snap.broker_order_id)))
        if kind == "ibkr":  # DIFFERENCE: the cancel waits for IB, which says it filled
            assert isinstance(outcome, NotCancelable)
        else:  # the request was taken (204); the fill came after it
            assert outcome is None
        final = await h.broker.get_order(snap.broker_order_id)
        assert (final.status, final.filled_qty, final.avg_fill_price) == (
            S.FILLED,
            D(10),
            D("100.10"),
        )
        seen = drain(events)
        assert K.CANCELED not in {e.kind for e in seen}
        await _exactly_one_fill_of_ten(h, seen)


@pytest.mark.parametrize("kind", KINDS)
async def test_replace_race_the_fill_wins_and_counts_once(kind: Kind) -> None:
    async with open_harness(kind, slow_replaces=True) as h:
        events = h.broker.events()
        old = await h.broker.submit(stop_buy("race"))
        await h.settle()
        start = asyncio.create_task(h.broker.replace(old.broker_order_id, stop_price=D("100.50")))
        outcome = await _race(h, start)
        final = await h.broker.get_order(old.broker_order_id)
        assert (final.status, final.filled_qty) == (S.FILLED, D(10))
        seen = drain(events)
        kinds = {e.kind for e in seen}
        assert K.REPLACED not in kinds
        if kind == "ibkr":  # DIFFERENCE: modified in place; the fill ended it first
            assert isinstance(outcome, NotReplaceable)
        else:
            assert isinstance(outcome, OrderSnapshot)
            assert outcome.broker_order_id != old.broker_order_id
            new = await h.broker.get_order(outcome.broker_order_id)
            assert new.status is S.REJECTED and new.filled_qty == 0
            assert K.ORDER_REPLACE_REJECTED in kinds
        await _exactly_one_fill_of_ten(h, seen)


async def test_a_second_full_size_sell_is_refused_for_insufficient_qty(h: BrokerHarness) -> None:
    if h.kind == "ibkr":
        pytest.skip("IB reserves no shares for open sells: a second sell is not refused")
    h.seed_position("AAPL", 10, "100")
    first = await h.broker.submit(trailing_sell("protect"))
    await h.settle()
    assert (await h.broker.get_order(first.broker_order_id)).status is S.ACCEPTED
    second = make_request(OrderType.MARKET, client_order_id="second", side=Side.SELL, qty=10)
    with pytest.raises(InsufficientQty) as caught:
        await h.broker.submit(second)
    assert "insufficient qty" in caught.value.reason
    assert await h.broker.get_order_by_client_id(ClientOrderId("second")) is None


async def test_a_sell_against_a_working_buy_is_refused_as_a_wash_trade(h: BrokerHarness) -> None:
    if h.kind == "ibkr":
        pytest.skip("IB has no wash-trade refusal of opposite orders on one symbol")
    h.seed_position("AAPL", 10, "100")
    await h.broker.submit(stop_buy("buy"))
    await h.settle()
    sell = make_request(
        OrderType.STOP, client_order_id="sell", side=Side.SELL, qty=5, stop_price="99"
    )
    with pytest.raises(WashTradeRejected) as caught:
        await h.broker.submit(sell)
    assert "wash trade" in caught.value.reason
    assert await h.broker.get_order_by_client_id(ClientOrderId("sell")) is None


@pytest.mark.parametrize("kind", KINDS)
async def test_extended_hours_orders_are_refused_locally_and_nothing_is_sent(kind: Kind) -> None:
    async with open_harness(kind, at=ny(8, 0)) as h:  # pre-market
        before = h.rest_requests if isinstance(h, AlpacaFakeHarness) else 0
        refused = [
            make_request(OrderType.MARKET, client_order_id="m", extended_hours=True),
            make_request(
                OrderType.TRAILING_STOP,
                client_order_id="t",
                side=Side.SELL,
                extended_hours=True,
            ),
        ]
        if kind != "ibkr":  # DIFFERENCE: outsideRth stops are fine at IB
            refused.append(stop_buy("s", extended_hours=True))
        for request in refused:
            with pytest.raises(UnsupportedOrder):
                await h.broker.submit(request)
        await h.settle()
        assert await h.server_orders() == []
        if isinstance(h, AlpacaFakeHarness):
            assert h.rest_requests == before  # refused before any HTTP request
        if isinstance(h, IbkrFakeHarness):
            assert "placeOrder" not in h.gateway.requests


@pytest.mark.parametrize("kind", KINDS)
async def test_a_stop_placed_before_the_open_is_queued(kind: Kind) -> None:
    async with open_harness(kind, at=ny(8, 0)) as h:
        snap = await h.broker.submit(stop_buy("early"))
        await h.settle()
        now = await h.broker.get_order(snap.broker_order_id)
        assert now.status is S.ACCEPTED and now.filled_qty == 0


# --- engine level ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_engine_fill_gets_a_verified_trailing_stop(kind: Kind, tmp_path: Path) -> None:
    async with open_harness(kind) as h:
        rig = await engine_rig(h, tmp_path)
        await rig.enter(qty=50)
        await rig.bar("100.5", "101.5", "100.4", "101.2")
        (sell,) = await rig.open_sells()
        assert (sell.order_type, sell.qty, sell.status) == (
            OrderType.TRAILING_STOP,
            D(50),
            S.ACCEPTED,
        )
        assert sell.trail_percent == D(1) and sell.time_in_force is TimeInForce.GTC
        (placed,) = rig.of_type(ProtectionPlaced)
        assert placed.protection_kind is ProtectionKind.TRAILING and placed.qty == D(50)
        assert placed.protection_order_id == sell.client_order_id
        with rig.ledger.unit_of_work(read_only=True) as uow:
            (entry,) = uow.orders.by_role(rig.engine.ctx.account.row_id, OrderRole.ENTRY)
            assert (entry.status, entry.filled_qty) == (S.FILLED, D(50))
            (link,) = uow.protection_links.active_for_entry(entry.id)
            assert link.protected_qty == D(50)
        assert await rig.position() == D(50)
        await rig.stop()


@pytest.mark.parametrize("kind", KINDS)
async def test_engine_partial_fill_waits_cancels_the_rest_and_protects_the_total(
    kind: Kind, tmp_path: Path
) -> None:
    async with open_harness(kind) as h:
        rig = await engine_rig(h, tmp_path)
        h.set_liquidity("AAPL", 20)
        await rig.enter(qty=50)
        await rig.bar("100.5", "101.5", "100.4", "101.2")
        entry = rig.ledger_orders()[0]
        assert (entry.status, entry.filled_qty) == (S.PARTIALLY_FILLED, D(20))
        assert await rig.open_sells() == []  # no sell while the buy remainder works
        await rig.advance(21)  # partial_fill_wait_seconds, then the confirmed cancel
        entry = rig.ledger_orders()[0]
        assert (entry.status, entry.filled_qty) == (S.CANCELED, D(20))
        (sell,) = await rig.open_sells()
        assert (sell.qty, sell.order_type) == (D(20), OrderType.TRAILING_STOP)
        assert await rig.position() == D(20)
        await rig.stop()


@pytest.mark.parametrize("kind", KINDS)
async def test_engine_stream_lost_while_the_entry_fills_is_reconciled(
    kind: Kind, tmp_path: Path
) -> None:
    async with open_harness(kind) as h:
        rig = await engine_rig(h, tmp_path)
        await rig.enter(qty=50)
        async with h.outage():
            await rig.bar("100.5", "101.5", "100.4", "101.2")  # filled; nobody hears it
            assert rig.ledger_orders()[0].status is S.ACCEPTED
        await rig.advance(3)  # SimBroker: the engine's resubscribe delay
        await eventually(lambda: rig.ledger_orders()[0].status is S.FILLED)
        await rig.settle()
        last = rig.engine.reconciler.last
        assert last is not None and last.reason == "stream reconnect"
        entry = rig.ledger_orders()[0]
        assert (entry.status, entry.filled_qty) == (S.FILLED, D(50))
        assert sum(f.qty for f in rig.ledger_fills()) == D(50)
        (sell,) = await rig.open_sells()
        assert (sell.qty, sell.order_type) == (D(50), OrderType.TRAILING_STOP)
        assert (await rig.engine.reconciler.run("check")).in_sync
        await rig.stop()


@pytest.mark.parametrize("kind", KINDS)
async def test_engine_kill_cancels_flattens_and_verifies(kind: Kind, tmp_path: Path) -> None:
    async with open_harness(kind) as h:
        rig = await engine_rig(h, tmp_path)
        await rig.enter(qty=50)
        await rig.bar("100.5", "101.5", "100.4", "101.2")
        assert len(await rig.open_sells()) == 1
        report = await asyncio.wait_for(rig.engine.kill.execute("test"), 10)
        assert report.all_flat
        assert [r.outcome for r in report.orders] == ["canceled"]
        assert [(p.symbol, p.qty_before, p.qty_after, p.flat) for p in report.positions] == [
            ("AAPL", D(50), D(0), True)
        ]
        await rig.settle()
        assert await h.broker.positions() == []
        assert await h.broker.list_orders(open_only=True) == []
        (event,) = rig.of_type(KillCompleted)
        assert event.all_flat
        await rig.stop()


@pytest.mark.parametrize("kind", KINDS)
async def test_engine_kill_racing_a_fill_flattens_it_too(kind: Kind, tmp_path: Path) -> None:
    async with open_harness(kind, slow_cancels=True) as h:
        rig = await engine_rig(h, tmp_path)
        await rig.enter(qty=50)
        kill = asyncio.create_task(rig.engine.kill.execute("test"))
        await rig.settle()  # the cancel is requested; the broker holds it
        assert not kill.done()
        await rig.bar("100.8", "101.5", "100.7", "101.3")  # the stop-buy fills first
        await h.release()
        report = await asyncio.wait_for(kill, 10)
        assert [r.outcome for r in report.orders] == ["filled_before_cancel"]
        assert report.all_flat and report.positions[0].qty_before == D(50)
        await rig.settle()
        assert await h.broker.positions() == []
        assert await h.broker.list_orders(open_only=True) == []
        assert not [o for o in rig.ledger_orders() if o.role is OrderRole.PROTECTION]
        await rig.stop()
