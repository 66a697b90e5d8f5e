"""The bot's in-flight guards hold when updates really overlap.

The Application handles updates concurrently (bot/app.py), so two taps of one button can
be inside their handlers at once. Each test feeds two updates through the real
Application at the same moment (`asyncio.gather` of `process_update`) and counts how
many reach core: every guard must check and claim before its first await.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from telegram import Update

from bot.app import build_application, is_kill
from bot.callbacks import Action, encode
from bot.context import CentaurApp, CentaurContext
from bot.emulator import RunningEmulator, start_emulator
from bot.emulator.views import message_dict, user_dict
from core.services import TradingServices
from tests.e2e.test_bot_harness import settings_for
from tests.kit.engine import EngineKit, engine_kit

HANG_GUARD = 20.0  # seconds: only stops a broken run from hanging the suite
_ids = itertools.count(5_000)


@dataclass
class Rig:
    emulator: RunningEmulator
    kit: EngineKit
    services: TradingServices
    app: CentaurApp
    errors: list[BaseException]
    release: asyncio.Event = field(default_factory=asyncio.Event)
    crowded: asyncio.Event = field(default_factory=asyncio.Event)
    inside: int = 0  # counted core calls so far
    crowd: int = 2  # this many counted calls at once release them

    def anchor(self, message_id: int) -> dict[str, Any]:
        state = self.emulator.state
        bot = state.primary_bot
        message = state.conversation(bot, self.emulator.user_id).visible(message_id)
        assert message is not None
        return message_dict(state, bot, message)

    async def message(self, text: str = "anchor") -> int:
        return (await self.app.bot.send_message(self.emulator.user_id, text)).message_id

    def tap(self, message_id: int, payload: str) -> Update:
        state = self.emulator.state
        bot = state.primary_bot
        chat = self.emulator.user_id
        message = state.conversation(bot, chat).visible(message_id)
        assert message is not None
        record = state.new_callback(bot, message, chat, payload)
        data = {
            "update_id": next(_ids),
            "callback_query": {
                "id": record.id,
                "from": user_dict(state.ensure_user(chat)),
                "message": message_dict(state, bot, message),
                "chat_instance": "1",
                "data": payload,
            },
        }
        update = Update.de_json(data, self.app.bot)
        assert update is not None
        return update

    def text(self, text: str) -> Update:
        entities = []
        if text.startswith("/"):
            entities = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        data = {
            "update_id": next(_ids),
            "message": {
                "message_id": next(_ids),
                "date": 1_740_000_000,
                "chat": {"id": self.emulator.user_id, "type": "private"},
                "from": {"id": self.emulator.user_id, "is_bot": False, "first_name": "T"},
                "text": text,
                "entities": entities,
            },
        }
        update = Update.de_json(data, self.app.bot)
        assert update is not None
        return update

    async def together(self, *updates: Update) -> None:
        """Process the updates at the same moment, as the concurrent Application does.

        Counted core calls are held until one update has finished (it was turned away)
        or two have reached core: so a guard with a gap between its check and its claim
        is caught however quickly core answers, and nothing depends on timing."""
        self.release.clear()
        self.crowded.clear()
        self.inside = 0
        self.crowd = min(2, len(updates))
        tasks = [asyncio.create_task(self.app.process_update(u)) for u in updates]
        crowded = asyncio.create_task(self.crowded.wait())
        await asyncio.wait([*tasks, crowded], return_when=asyncio.FIRST_COMPLETED)
        self.release.set()
        await asyncio.gather(*tasks)
        crowded.cancel()
        assert self.errors == []

    def count_calls(self, name: str) -> list[Any]:
        """Record every call of `services.<name>`; it runs once `together` releases it."""
        calls: list[Any] = []
        original: Callable[..., Awaitable[Any]] = getattr(self.services, name)

        async def counted(*args: Any, **kwargs: Any) -> Any:
            calls.append(args)
            self.inside += 1
            if self.inside >= self.crowd:
                self.crowded.set()
            await self.release.wait()
            return await original(*args, **kwargs)

        setattr(self.services, name, counted)
        return calls


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    emulator = await start_emulator()
    kit = await engine_kit(tmp_path)
    await kit.bar("100", "100.5", "99.5", "100.2")
    services = TradingServices({"paper": kit.engine}, "paper")
    app = build_application(services, settings_for(emulator, tmp_path), clock=kit.clock)
    errors: list[BaseException] = []

    async def record(_update: object, context: CentaurContext) -> None:
        assert context.error is not None
        errors.append(context.error)

    app.add_error_handler(record)
    await app.initialize()
    try:
        yield Rig(emulator, kit, services, app, errors)
    finally:
        await app.shutdown()
        await kit.engine.stop()
        await emulator.stop()


async def _draft(rig: Rig, qty: str = "10") -> int:
    review = await rig.services.create_buy_draft("AAPL", Decimal("100.51"), Decimal("99.49"))
    if qty != "10":
        await rig.services.edit_draft(review.draft_id, qty=Decimal(qty))
    return review.draft_id


async def test_two_confirm_taps_of_one_draft_reach_core_once(rig: Rig) -> None:
    draft_id = await _draft(rig)
    card = await rig.message()
    calls = rig.count_calls("confirm_draft")
    tap = encode(Action.DRAFT_CONFIRM, draft_id)
    await rig.together(rig.tap(card, tap), rig.tap(card, tap))
    assert len(calls) == 1
    assert len(await rig.kit.broker.list_orders(open_only=True)) == 1


async def test_a_batch_confirm_tapped_twice_reaches_core_once(rig: Rig) -> None:
    first, last = await _draft(rig), await _draft(rig, "5")
    listing = await rig.message()
    calls = rig.count_calls("confirm_drafts")
    tap = encode(Action.LIST_CONFIRM_RANGE, first, last)
    await rig.together(rig.tap(listing, tap), rig.tap(listing, tap))
    assert len(calls) == 1


async def test_a_card_confirm_and_a_batch_confirm_of_one_draft_reach_core_once(rig: Rig) -> None:
    draft_id = await _draft(rig)
    card, listing = await rig.message(), await rig.message()
    single, batch = rig.count_calls("confirm_draft"), rig.count_calls("confirm_drafts")
    await rig.together(
        rig.tap(card, encode(Action.DRAFT_CONFIRM, draft_id)),
        rig.tap(listing, encode(Action.LIST_CONFIRM_RANGE, draft_id, draft_id)),
    )
    assert len(single) + len(batch) == 1


async def test_a_size_picker_tapped_twice_makes_one_draft(rig: Rig) -> None:
    picker = await rig.message()
    calls = rig.count_calls("create_buy_draft")
    tap = encode(Action.BUY_SIZE, "AAPL", Decimal("100.51"), Decimal("99.49"), Decimal(10))
    await rig.together(rig.tap(picker, tap), rig.tap(picker, tap))
    assert len(calls) == 1
    assert len(await rig.services.list_drafts()) == 1


async def test_kill_confirmed_twice_at_once_kills_once(rig: Rig) -> None:
    second = await rig.message()
    calls = rig.count_calls("kill")
    tap = encode(Action.KILL_SURE, int(rig.kit.clock.now().timestamp()))
    await rig.together(rig.tap(second, tap), rig.tap(second, tap))
    assert len(calls) == 1


async def test_flatten_confirmed_twice_at_once_flattens_once(rig: Rig) -> None:
    rig.kit.broker.seed_position("AAPL", Decimal(10), Decimal(100))
    question = await rig.message()
    calls = rig.count_calls("flatten")
    tap = encode(Action.FLATTEN_SURE, "AAPL", "paper")
    await rig.together(rig.tap(question, tap), rig.tap(question, tap))
    assert len(calls) == 1


async def test_protect_retry_tapped_twice_at_once_protects_once(rig: Rig) -> None:
    alert = await rig.message()
    calls = rig.count_calls("protect")
    tap = encode(Action.PROTECT_RETRY, "AAPL", "paper")
    await rig.together(rig.tap(alert, tap), rig.tap(alert, tap))
    assert len(calls) == 1


async def test_two_typed_answers_to_one_question_are_taken_once(rig: Rig) -> None:
    rig.kit.broker.seed_position("AAPL", Decimal(10), Decimal(100))
    picker = await rig.message()
    await rig.together(rig.tap(picker, encode(Action.SELL_CUSTOM, "AAPL")))
    calls = rig.count_calls("create_sell_draft")
    await rig.together(rig.text("99.10"), rig.text("99.20"))
    assert len(calls) == 1


async def test_a_wrong_typed_answer_keeps_the_question_open(rig: Rig) -> None:
    rig.kit.broker.seed_position("AAPL", Decimal(10), Decimal(100))
    picker = await rig.message()
    await rig.together(rig.tap(picker, encode(Action.SELL_CUSTOM, "AAPL")))
    calls = rig.count_calls("create_sell_draft")
    await rig.together(rig.text("ninety"))
    await rig.together(rig.text("99.10"))
    assert len(calls) == 1


async def test_a_draft_being_confirmed_cannot_be_edited_meanwhile(rig: Rig) -> None:
    draft_id = await _draft(rig)
    card = await rig.message()
    release, entered = asyncio.Event(), asyncio.Event()
    original = rig.services.confirm_draft

    async def held(draft: int, **kwargs: Any) -> Any:
        entered.set()
        await release.wait()
        return await original(draft, **kwargs)

    rig.services.confirm_draft = held  # type: ignore[method-assign]
    edits = rig.count_calls("edit_draft")
    confirming = asyncio.create_task(
        rig.app.process_update(rig.tap(card, encode(Action.DRAFT_CONFIRM, draft_id)))
    )
    try:
        await asyncio.wait_for(entered.wait(), HANG_GUARD)
        await rig.together(rig.tap(card, encode(Action.DRAFT_QTY, draft_id, Decimal(20))))
        assert edits == []
    finally:
        release.set()
        await confirming
    assert rig.errors == []


@pytest.mark.parametrize(
    ("payload", "kill"),
    [
        (encode(Action.KILL_PREVIEWED, 1), True),
        (encode(Action.KILL_SURE, 1), True),
        (encode(Action.KILL_ABORT), True),
        (encode(Action.MENU, "kill"), True),
        (encode(Action.MENU, "status"), False),
        (encode(Action.DRAFT_CONFIRM, 1), False),
        ("garbage", False),
    ],
)
async def test_kill_buttons_are_told_apart(rig: Rig, payload: str, kill: bool) -> None:
    assert is_kill(rig.tap(await rig.message(), payload)) is kill


@pytest.mark.parametrize(
    ("text", "kill"),
    [
        ("/kill", True),
        ("/kill@centaur_bot", True),
        ("/KILL", True),
        ("/killer", False),
        ("kill", False),
        ("/status", False),
    ],
)
async def test_kill_commands_are_told_apart(rig: Rig, text: str, kill: bool) -> None:
    assert is_kill(rig.text(text)) is kill
