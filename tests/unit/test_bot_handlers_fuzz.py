"""Fuzz the handler entry points: any command text, any typed text, any button payload
goes through the real Application (access gate, envelope, handlers, emulator-checked HTML)
and nothing raises past the handlers (the error handler is never reached)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from telegram import Update

from bot.app import build_application
from bot.callbacks import SCHEMA, Action, Arg, Value, encode
from bot.context import CentaurApp, CentaurContext
from bot.emulator import RunningEmulator, start_emulator
from bot.emulator.views import message_dict, user_dict
from bot.handlers.start_help import COMMANDS
from core.services import TradingServices
from tests.e2e.test_bot_harness import settings_for
from tests.kit.engine import EngineKit, engine_kit

FUZZ = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_ids = itertools.count(1_000)


@dataclass
class Rig:
    emulator: RunningEmulator
    kit: EngineKit
    app: CentaurApp
    errors: list[BaseException]
    anchor: int  # a bot message whose buttons get "pressed"


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
    anchor = await app.bot.send_message(emulator.user_id, "anchor")
    try:
        yield Rig(emulator, kit, app, errors, anchor.message_id)
    finally:
        await app.shutdown()
        await kit.engine.stop()
        await emulator.stop()


def _user(rig: Rig) -> dict[str, Any]:
    return {"id": rig.emulator.user_id, "is_bot": False, "first_name": "Trader", "username": "t"}


async def send_text(rig: Rig, text: str) -> None:
    entities = []
    if text.startswith("/"):
        length = len(text.split()[0]) if text.split() else 1
        entities = [{"type": "bot_command", "offset": 0, "length": length}]
    data = {
        "update_id": next(_ids),
        "message": {
            "message_id": next(_ids),
            "date": 1_740_000_000,
            "chat": {"id": rig.emulator.user_id, "type": "private"},
            "from": _user(rig),
            "text": text,
            "entities": entities,
        },
    }
    await rig.app.process_update(Update.de_json(data, rig.app.bot))


async def press(rig: Rig, payload: str) -> None:
    state = rig.emulator.state
    bot = state.primary_bot
    chat = rig.emulator.user_id
    message = state.conversation(bot, chat).visible(rig.anchor)
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
    await rig.app.process_update(Update.de_json(data, rig.app.bot))


WORDS = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=0, max_size=12
)
ARG_VALUES: dict[Arg, st.SearchStrategy[Value]] = {
    Arg.INT: st.integers(min_value=0, max_value=10**6),
    Arg.SYM: st.sampled_from(["AAPL", "MU", "ZZZZ", "QQQM", "A"]),
    Arg.DEC: st.decimals(min_value=Decimal(0), max_value=Decimal(500), places=2, allow_nan=False),
    Arg.WORD: st.sampled_from(["paper", "nope", "signal", "on", "off", "silent", "status"]),
}


@st.composite
def payloads(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        return draw(st.text(min_size=1, max_size=64).filter(lambda s: len(s.encode()) <= 64))
    action = draw(st.sampled_from([a for a in Action if a is not Action.KILL_SURE]))
    args = [draw(ARG_VALUES[kind]) for kind in SCHEMA[action]]
    try:
        return encode(action, *args)
    except ValueError:
        return "1:" + action.value


COMMAND_NAMES = [name for name, _ in COMMANDS] + ["start", "nosuch", "BUY", "buy@centaur_bot"]


@FUZZ
@given(st.sampled_from(COMMAND_NAMES), st.lists(WORDS, max_size=4))
async def test_any_command_arguments(rig: Rig, name: str, args: list[str]) -> None:
    await send_text(rig, " ".join([f"/{name}", *args]))
    assert rig.errors == []


@settings(FUZZ, max_examples=40)
@given(WORDS)
async def test_any_typed_text_even_when_a_price_was_asked(rig: Rig, text: str) -> None:
    await press(rig, encode(Action.BUY_CUSTOM, "AAPL"))  # the bot now waits for a price
    if text.strip():
        await send_text(rig, text)
    assert rig.errors == []


@settings(FUZZ, max_examples=150)
@given(payloads())
async def test_any_button_payload(rig: Rig, payload: str) -> None:
    await press(rig, payload)
    assert rig.errors == []
