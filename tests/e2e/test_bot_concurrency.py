"""The bot handles updates concurrently: a /kill is answered while a Confirm is stuck in a
slow broker call, and the bot's own in-flight guards hold when taps really overlap.

A slow broker is SimBroker with `submit` held on an asyncio.Event (the test decides when
the send lands), so nothing here depends on how long anything takes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bot.app import ORDINARY_UPDATES
from core.domain import OrderRequest, OrderSnapshot
from core.draft_models import ConfirmResult
from tests.e2e.test_bot_harness import BotRig, bot_rig, has_text

HANG_GUARD = 20.0  # seconds: only stops a broken run from hanging the suite


@contextmanager
def stuck_submits(rig: BotRig) -> Iterator[tuple[asyncio.Event, asyncio.Event]]:
    """Every submit waits for `release`; `entered` is set once a submit is inside."""
    broker = rig.kit.broker
    original = broker.submit
    entered, release = asyncio.Event(), asyncio.Event()

    async def stuck(request: OrderRequest) -> OrderSnapshot:
        entered.set()
        await release.wait()
        return await original(request)

    broker.submit = stuck  # type: ignore[method-assign]
    try:
        yield entered, release
    finally:
        release.set()
        broker.submit = original  # type: ignore[method-assign]


async def test_kill_is_answered_while_a_confirm_is_stuck_in_the_broker(tmp_path: Path) -> None:
    rig = await bot_rig(tmp_path)
    try:
        await rig.kit.bar("100", "100.5", "99.5", "100.2")
        await rig.command("/buy AAPL 100.51 40", has_text("Draft #1"))
        with stuck_submits(rig) as (entered, release):
            await rig.user.press_button("Confirm")
            await asyncio.wait_for(entered.wait(), HANG_GUARD)
            preview = await rig.command("/kill", has_text("exactly what it will do"))
            assert "Cancel" in str(preview["text"])
            # The Confirm is still inside the broker call: the kill did not wait for it.
            assert not release.is_set()
            assert not [m for m in await rig.user.bot_messages() if "placed" in (m["text"] or "")]
            release.set()
            await rig.user.wait_for(has_text("placed"))
    finally:
        await rig.close()


async def test_kill_is_answered_even_when_every_ordinary_slot_is_busy(tmp_path: Path) -> None:
    """More Confirms in flight than the bot runs ordinary updates at once: /kill still has
    its own slots and is not queued behind them. Core's confirm is held here (not the
    broker), so every tap stays in flight whatever core's own locks and checks do."""
    rig = await bot_rig(tmp_path)
    try:
        await rig.kit.bar("100", "100.5", "99.5", "100.2")
        count = ORDINARY_UPDATES + 2
        for i in range(1, count + 1):
            await rig.command(f"/buy AAPL 100.51 {i}", has_text(f"Draft #{i}"))
        cards = [m for m in await rig.user.bot_messages() if "Draft #" in (m["text"] or "")]
        assert len(cards) == count
        release = asyncio.Event()
        inside: list[int] = []
        original = rig.services.confirm_draft

        async def held(draft_id: int, **kwargs: Any) -> ConfirmResult:
            inside.append(draft_id)
            await release.wait()
            return await original(draft_id, **kwargs)

        rig.services.confirm_draft = held  # type: ignore[method-assign]
        try:
            for card in cards:
                await rig.user.press_button("Confirm", message_id=card["message_id"])
            await rig.command("/kill", has_text("exactly what it will do"))
            assert not release.is_set()
            assert len(inside) <= ORDINARY_UPDATES  # the rest wait for an ordinary slot
        finally:
            release.set()
            rig.services.confirm_draft = original  # type: ignore[method-assign]
    finally:
        await rig.close()
