"""/kill with both confirmations ends flat and says so; strangers get nothing; audit."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from bot.keyboards import draft_keyboard
from core.ledger import AuditKind
from tests.e2e.test_bot_harness import STRANGER, BotRig, bot_rig, has_text


async def _protected_position(rig: BotRig) -> None:
    await rig.kit.bar("100", "100.5", "99.5", "100.2")
    await rig.command("/buy AAPL 100.51 40", has_text("Draft #1"))
    await rig.user.press_button("Confirm")
    await rig.user.wait_for(has_text("placed"))
    await rig.kit.bar("100.3", "101", "100.2", "100.9")
    await rig.user.wait_for(has_text("filled; trailing stop"))


async def test_kill_with_both_confirmations_ends_flat_and_says_so(tmp_path: Path) -> None:
    rig = await bot_rig(tmp_path)
    u = rig.user
    try:
        await _protected_position(rig)
        preview = await rig.command("/kill", has_text("exactly what it will do"))
        text = str(preview["text"])
        assert "Cancel 1 order, then flatten 1 position." in text
        assert "cancel AAPL sell trailing stop 40" in text and "flatten AAPL 40" in text
        await u.press_button("Flatten everything")
        await u.wait_for(has_text("Really flatten everything?"))
        assert await rig.kit.broker.positions()  # nothing happened on the first tap
        await u.press_button("Yes, flatten now")
        report = await u.wait_for(has_text("Kill done"), timeout=10)
        assert "all flat" in str(report["text"]) and "AAPL 40 → flat" in str(report["text"])
        assert await rig.kit.broker.positions() == []
        assert await rig.kit.broker.list_orders(open_only=True) == []
        await asyncio.sleep(0.3)
        # The KillCompleted alert is absorbed by the card that already shows the report.
        assert not [m for m in await u.bot_messages() if "Flatten/kill on" in (m["text"] or "")]
        kills = [a for a in rig.audit() if a.action == "kill_sure"]
        assert [(a.kind, a.ok, a.result) for a in kills] == [(AuditKind.BUTTON, True, "all flat")]
    finally:
        await rig.close()


async def test_a_stranger_gets_nothing_but_their_own_ids(tmp_path: Path) -> None:
    rig = await bot_rig(tmp_path)
    try:
        stranger = rig.emulator.client(chat_id=STRANGER)
        for text in ("/start", "/status", "/buy AAPL 100.51 10", "/kill", "hello"):
            await stranger.send(text)
        await stranger.send("/whoami")
        who = await stranger.wait_for(has_text("user id"))
        assert str(STRANGER) in str(who["text"])
        # A button reaching the stranger's chat (a forwarded card, a guessed payload).
        review = await rig.services.create_buy_draft("AAPL", Decimal("100.51"), Decimal("99.49"))
        await rig.app.bot.send_message(
            STRANGER, "card", reply_markup=draft_keyboard(review.draft_id)
        )
        card = await stranger.wait_for(has_text("card"))
        await stranger.press_button("Confirm", message_id=card["message_id"])
        await rig.command("/status", has_text("Working orders"))  # the owner still works
        await asyncio.sleep(0.3)
        messages = await stranger.bot_messages()
        assert [m["text"] for m in messages][:-1] == [who["text"]]  # only /whoami answered
        pressed = (await stranger.bot_messages())[-1]
        assert not any(a["answered"] for a in pressed["callback_answers"])
        assert [d.draft_id for d in await rig.services.list_drafts()] == [review.draft_id]
        assert await rig.kit.broker.list_orders(open_only=True) == []
        denied = [a for a in rig.audit() if a.kind is AuditKind.DENIED]
        assert [a.action for a in denied] == [
            "/start",
            "/status",
            "/buy",
            "/kill",
            "message",
            "/whoami",
            "button",
        ]
        assert {a.user_id for a in denied} == {STRANGER}
        owner = [a for a in rig.audit() if a.kind is AuditKind.COMMAND and a.action == "status"]
        assert owner and owner[-1].ok and owner[-1].user_id == rig.emulator.user_id
    finally:
        await rig.close()
