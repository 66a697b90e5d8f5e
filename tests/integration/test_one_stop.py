"""Issue 12 item 10: one stop. The distance that sizes a trade is the distance of the
protection placed at the fill; the draft card, the loss lock, /status and the report all
use that one level, and a trailing stop shown after the fill is the broker's.

The kit's default trail is 1 % (no history, `default_trail_pct`): a stop-buy at 101
freezes a stop at 101 x 0.99 = 99.99, whatever structural low the signal gave (99).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from brokers.sim import SimBroker
from core.calendar import xnys
from core.domain import OrderRole, OrderType, Side, TickRounding, round_to_tick
from core.reports import StopSource, build_eod_report
from core.status import BadgeKind, StatusQueries
from tests.kit.engine import EngineKit, engine_kit

D = Decimal
TRIGGER, STRUCTURE_LOW = D("101"), D("99")
ONE_STOP = D("99.99")  # 101 * (1 - 1/100), the protection's first level at a fill at 101


async def _protection_snapshot(broker: SimBroker) -> object:
    (sell,) = [o for o in await broker.list_orders(open_only=True) if o.side is Side.SELL]
    assert sell.order_type is OrderType.TRAILING_STOP
    return sell


async def _filled_at_trigger(kit: EngineKit, **draft: Decimal) -> int:
    review = await kit.engine.drafts.create_buy("AAPL", TRIGGER, STRUCTURE_LOW, **draft)
    assert (await kit.engine.drafts.confirm(review.draft_id)).ok
    await kit.bar("100.5", "101.5", "100.4", "101.2")  # the stop-buy fills at 101
    return review.draft_id


async def test_the_card_risk_is_the_distance_of_the_protection_placed_at_the_fill(
    tmp_path: Path,
) -> None:
    kit = await engine_kit(tmp_path)
    review = await kit.engine.drafts.create_buy("AAPL", TRIGGER, STRUCTURE_LOW)
    assert review.stop == ONE_STOP and review.r_per_share == TRIGGER - ONE_STOP
    assert review.structure_stop == STRUCTURE_LOW and review.trail_pct == D(1)
    # $100 of risk over R = 1.01 is 99 shares (the signal's R of 2 would size 50).
    assert review.qty == D(99) and review.risk_usd == D(99) * (TRIGGER - ONE_STOP)
    assert (await kit.engine.drafts.confirm(review.draft_id)).ok
    await kit.bar("100.5", "101.5", "100.4", "101.2")
    sell = await _protection_snapshot(kit.broker)
    assert sell.trail_percent == review.trail_pct  # type: ignore[attr-defined]
    level = round_to_tick(sell.stop_price, TickRounding.DOWN)  # type: ignore[attr-defined]
    assert level == review.stop
    assert review.qty * (TRIGGER - level) == review.risk_usd
    await kit.engine.stop()


async def test_the_frozen_trail_is_used_at_the_fill_not_a_later_trail(tmp_path: Path) -> None:
    kit = await engine_kit(tmp_path)
    review = await kit.engine.drafts.create_buy("AAPL", TRIGGER, STRUCTURE_LOW, qty=D(50))
    assert (await kit.engine.drafts.confirm(review.draft_id)).ok
    # A /trail after the confirm applies to later drafts; this entry keeps its 1 %.
    await kit.engine.edits.set_trail("AAPL", D("2.5"), "test")
    await kit.bar("100.5", "101.5", "100.4", "101.2")
    sell = await _protection_snapshot(kit.broker)
    assert sell.trail_percent == D(1)  # type: ignore[attr-defined]
    later = await kit.engine.drafts.create_buy("AAPL", D("102"), STRUCTURE_LOW, qty=D(10))
    assert later.trail_pct == D("2.5")
    assert later.stop == round_to_tick(D("102") * D("0.975"), TickRounding.DOWN)
    await kit.engine.stop()


async def test_editing_the_stop_sets_the_trail_the_protection_will_use(tmp_path: Path) -> None:
    kit = await engine_kit(tmp_path)
    review = await kit.engine.drafts.create_buy("AAPL", TRIGGER, STRUCTURE_LOW, qty=D(50))
    edited = await kit.engine.drafts.edit(review.draft_id, stop=D("98.98"))
    assert edited.trail_pct == D(2)  # (101 - 98.98) / 101 = 2 %
    assert edited.stop == D("98.98") and edited.structure_stop == STRUCTURE_LOW
    assert (await kit.engine.drafts.confirm(review.draft_id)).ok
    await kit.bar("100.5", "101.5", "100.4", "101.2")
    sell = await _protection_snapshot(kit.broker)
    assert sell.trail_percent == D(2)  # type: ignore[attr-defined]
    assert round_to_tick(sell.stop_price, TickRounding.DOWN) == edited.stop  # type: ignore[attr-defined]
    await kit.engine.stop()


async def test_status_shows_the_broker_stop_which_never_moves_down(tmp_path: Path) -> None:
    kit = await engine_kit(tmp_path)
    await _filled_at_trigger(kit, qty=D(50))
    await kit.bar("101.2", "103", "101.1", "102.9")  # the high-water mark rises to 103
    queries = StatusQueries(kit.engine)
    (position,), ok = await queries.positions()
    assert ok and position.protection.kind is BadgeKind.TRAILING
    high = position.protection.level
    assert high == D("101.97") and not position.protection.estimated  # 103 x 0.99, broker's
    await kit.bar("102.9", "102.9", "102.0", "102.1")  # the last price falls, above the stop
    (position,), _ = await queries.positions()
    assert position.protection.level == high  # 102.1 x 0.99 = 101.08 would be a move down
    await kit.engine.stop()


async def test_without_broker_truth_the_stop_is_estimated_from_the_high_water_mark(
    tmp_path: Path,
) -> None:
    kit = await engine_kit(tmp_path)
    await _filled_at_trigger(kit, qty=D(50))
    await kit.bar("101.2", "103", "101.1", "102.9")
    await kit.bar("102.9", "102.9", "102.0", "102.1")
    kit.broker.faults.unavailable()  # neither positions nor orders can be read
    (position,), ok = await StatusQueries(kit.engine).positions()
    badge = position.protection
    assert not ok
    assert badge.estimated and badge.level == D("101.97")  # from the high 103, not 102.1
    await kit.engine.stop()


async def test_the_report_draws_the_protection_stop_not_the_signal_stop(tmp_path: Path) -> None:
    kit = await engine_kit(tmp_path)
    await _filled_at_trigger(kit, qty=D(50))
    await kit.bar("101.2", "103", "101.1", "102.9")
    await kit.engine.reconciler.run("test")  # the broker reports the raised level
    await kit.bar("102.9", "102.9", "101.5", "101.6")  # through 101.97: stopped out
    await kit.idle()
    assert not [o for o in await kit.broker.positions() if o.qty]
    report = build_eod_report(kit.ledger, "paper", kit.engine.day.day, xnys(), {})
    (trade,) = report.trades
    assert trade.initial_stop == ONE_STOP
    levels = [p.level for p in trade.stop_path]
    assert STRUCTURE_LOW not in levels
    assert levels[0] == ONE_STOP and levels[-1] == D("101.97")
    assert trade.stop_path[-1].source is StopSource.TRAIL
    await kit.engine.stop()


async def test_a_trade_stopped_at_its_protection_loses_one_r_in_the_loss_lock(
    tmp_path: Path,
) -> None:
    kit = await engine_kit(tmp_path)
    review = await kit.engine.drafts.create_buy("AAPL", TRIGGER, STRUCTURE_LOW)
    assert review.risk_usd is not None and review.r_per_share is not None
    assert (await kit.engine.drafts.confirm(review.draft_id)).ok
    await kit.bar("100.5", "101.5", "100.4", "101.2")  # filled at 101, trail from 101
    await kit.bar("101", "101", "99.5", "99.6")  # through the first level: out at 99.99
    await kit.idle()
    assert not [p for p in await kit.broker.positions() if p.qty]
    book = kit.engine.risk.day_book()
    # The loss is the card's risk, and the loss lock counts it as exactly one R.
    assert book.realized == -review.risk_usd
    assert book.realized_r == D(-1)
    with kit.ledger.unit_of_work(read_only=True) as uow:
        exits = uow.orders.by_role(kit.engine.ctx.account.row_id, OrderRole.PROTECTION)
        assert exits and exits[0].trail_percent == review.trail_pct
    await kit.engine.stop()
