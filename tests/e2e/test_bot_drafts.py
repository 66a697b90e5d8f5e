"""Drafts end to end: built only with buttons, confirmed, filled on replayed bars,
protected, the card edited in place; double taps; stale buttons after a restart; /sell."""

from __future__ import annotations

import asyncio
from pathlib import Path

from core.domain import OrderRole, OrderType, Side
from tests.e2e.test_bot_harness import BotRig, bot_rig, has_text, press_shown_button


def buttons(message: dict[str, object]) -> dict[str, str]:
    rows = message["keyboard"]
    assert isinstance(rows, list)
    return {b["text"]: b["callback_data"] for row in rows for b in row if "callback_data" in b}


def answers(message: dict[str, object], data: str) -> list[str]:
    found = message["callback_answers"]
    assert isinstance(found, list)
    return [a["text"] or "" for a in found if a["data"] == data and a["answered"]]


async def entry_orders(rig: BotRig) -> list[object]:
    return [o for o in await rig.kit.broker.list_orders(open_only=False) if o.side is Side.BUY]


async def _card_with_buttons_only(rig: BotRig) -> dict[str, object]:
    """/start -> Buy -> AAPL -> High+tick -> 1x: the draft card (one message throughout)."""
    u = rig.user
    await rig.kit.bar("100", "100.5", "99.5", "100.2")
    await rig.command("/start", has_text("Centaur"))
    await u.press_button("Buy")
    picker = await u.wait_for(has_text("pick a symbol"))
    await u.press_button("AAPL")
    await u.wait_for(has_text("pick the trigger"))
    await u.press_button("High+tick")
    await u.wait_for(has_text("Pick the size"))
    await u.press_button("1x")
    card = await u.wait_for(has_text("Draft #1"))
    assert card["message_id"] == picker["message_id"]  # the picker became the card
    assert {"✅ Confirm", "✏️ Edit", "✖ Cancel"} <= set(buttons(card))
    return card


async def test_a_draft_made_with_buttons_fills_and_is_protected_on_one_card(tmp_path: Path) -> None:
    rig = await bot_rig(tmp_path)
    try:
        card = await _card_with_buttons_only(rig)
        text = card["text"]
        assert isinstance(text, str)
        # The one stop: the trigger less the 1% trail the protection will get (not the
        # signal's low), and the size from that distance (docs/one-stop.md).
        assert "Trigger 100.51 · stop 99.50 · qty 99" in text and "% of equity" in text
        assert "Buying power" in text and "session: trading allowed" in text
        await rig.user.press_button("Confirm")
        await rig.user.wait_for(has_text("placed"))
        await rig.kit.bar("100.3", "101", "100.2", "100.9")  # trades through the trigger
        alert = await rig.user.wait_for(has_text("filled; trailing stop 1%"))
        assert alert["message_id"] != card["message_id"]  # protection is a loud alert
        final = await rig.user.wait_for(
            lambda m: m["message_id"] == card["message_id"] and "protected" in (m["text"] or "")
        )
        lines = str(final["text"]).splitlines()
        assert any("placed" in x for x in lines) and any("filled 99 @ 100.51" in x for x in lines)
        assert final["keyboard"] == [] and final["edit_count"] >= 4
        bot_messages = await rig.user.bot_messages()
        assert len(bot_messages) == 3  # the menu, the card, the protection alert
        (sell,) = [
            o for o in await rig.kit.broker.list_orders(open_only=True) if o.side is Side.SELL
        ]
        assert sell.order_type is OrderType.TRAILING_STOP
        await rig.kit.bar("100.8", "100.8", "99.0", "99.2")  # through the trailing stop
        await rig.user.wait_for(has_text("stop hit"))
        closed = await rig.user.wait_for(
            lambda m: m["message_id"] == card["message_id"] and "closed: sold 99" in m["text"]
        )
        assert [x for x in str(closed["text"]).splitlines() if "closed" in x]
        assert await rig.kit.broker.positions() == []
    finally:
        await rig.close()


async def test_a_double_tapped_confirm_places_one_order(tmp_path: Path) -> None:
    rig = await bot_rig(tmp_path)
    try:
        card = await _card_with_buttons_only(rig)
        data = buttons(card)["✅ Confirm"]
        message_id = card["message_id"]
        assert isinstance(message_id, int)
        await rig.user.press(message_id, data)
        await rig.user.press(message_id, data)  # before the bot has answered the first
        done = await rig.user.wait_for(
            lambda m: m["message_id"] == message_id and len(answers(m, data)) == 2
        )
        assert len(await entry_orders(rig)) == 1
        entries = [o for o in rig.kit.ledger_orders() if o.role is OrderRole.ENTRY]
        assert len(entries) == 1
        assert any("already" in a for a in answers(done, data))
    finally:
        await rig.close()


async def test_stale_buttons_after_a_restart_say_why(tmp_path: Path) -> None:
    rig = await bot_rig(tmp_path)
    u = rig.user
    try:
        await rig.kit.bar("100", "100.5", "99.5", "100.2")
        first = await rig.command("/buy AAPL 100.51 $100", has_text("Draft #1"))
        confirm_first = buttons(first)["✅ Confirm"]
        second = await rig.command("/buy AAPL 100.61 $50", has_text("Draft #2"))
        confirm_second = buttons(second)["✅ Confirm"]
        third = await rig.command("/buy AAPL 100.71 $50", has_text("Draft #3"))
        confirm_third = buttons(third)["✅ Confirm"]
        await rig.restart_bot()
        # Draft 1 confirmed elsewhere (/drafts, only the first one ticked).
        listing = await rig.command("/drafts", has_text("Pending drafts (3)"))
        await u.press(listing["message_id"], buttons(listing)["▫️ #1 AAPL"])
        ticked = await u.wait_for(lambda m: "Confirm selected (1)" in str(buttons(m)))
        await u.press(ticked["message_id"], buttons(ticked)["✅ Confirm selected (1)"])
        await u.wait_for(has_text("Batch confirm"))
        # The card lost its buttons when the batch confirmed it; a phone that still shows
        # the old [Confirm] taps it anyway.
        press_shown_button(rig, first["message_id"], confirm_first)
        stale = await u.wait_for(lambda m: bool(answers(m, confirm_first)))
        assert "confirmed already" in answers(stale, confirm_first)[0]
        assert len(await entry_orders(rig)) == 1
        # Draft 3: the price moved past its trigger meanwhile.
        await rig.kit.bar("100.6", "100.75", "100.55", "100.74")
        await u.press(third["message_id"], confirm_third)
        moved = await u.wait_for(lambda m: bool(answers(m, confirm_third)))
        assert "already at or above the trigger" in answers(moved, confirm_third)[0]
        # Draft 2 expires (30 min), and the bot restarts once more.
        await rig.kit.advance(31 * 60)
        await rig.restart_bot()
        await u.press(second["message_id"], confirm_second)
        expired = await u.wait_for(lambda m: bool(answers(m, confirm_second)))
        assert "expired" in answers(expired, confirm_second)[0]
        assert len(await entry_orders(rig)) == 1
    finally:
        await rig.close()


async def test_sell_replaces_the_protection(tmp_path: Path) -> None:
    rig = await bot_rig(tmp_path)
    try:
        await rig.kit.bar("100", "100.5", "99.5", "100.2")
        await rig.command("/buy AAPL 100.51 40", has_text("Draft #1"))
        await rig.user.press_button("Confirm")
        await rig.user.wait_for(has_text("placed"))
        await rig.kit.bar("100.3", "101", "100.2", "100.9")
        await rig.user.wait_for(has_text("filled; trailing stop 1%"))
        card = await rig.command("/sell AAPL 99.80", has_text("stop-sell AAPL"))
        assert "Replaces this position's protection" in str(card["text"])
        await rig.user.press_button("Confirm", message_id=card["message_id"])
        await rig.user.wait_for(has_text("replaces the protection"))
        await asyncio.sleep(0.1)
        sells = [o for o in await rig.kit.broker.list_orders(open_only=True) if o.side is Side.SELL]
        assert len(sells) == 1
        assert sells[0].order_type is OrderType.STOP and str(sells[0].stop_price) == "99.8"
    finally:
        await rig.close()
