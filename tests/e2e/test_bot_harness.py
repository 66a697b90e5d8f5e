"""The bot end to end: the real PTB Application polling the Bot API emulator, on top of a
whole engine (SimClock + SimBroker + SQLite ledger, tests/kit/engine.py).

`bot_rig()` builds it; the other tests/e2e/test_bot_*.py modules import it. The tests in
this module check the basics: /start with its menu and the command list, /status.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.app import build_application, start_bot, stop_bot
from bot.context import CentaurApp
from bot.emulator import EmulatorClient, RunningEmulator, start_emulator
from bot.emulator.client import Message
from bot.emulator.views import message_dict, user_dict
from core.ledger import AuditRow
from core.services import TradingServices
from core.settings import DEFAULT_CONFIG_DIR, Settings, load_settings
from tests.kit.engine import EngineKit, engine_kit

STRANGER = 424242


def settings_for(emulator: RunningEmulator, data_dir: Path, **env: str) -> Settings:
    environ = {
        "TELEGRAM_BOT_TOKEN": emulator.token,
        "TELEGRAM_ALLOWED_USERS": str(emulator.user_id),
        "TELEGRAM_API_BASE_URL": emulator.api_base_url,
        "CENTAUR_DATA_DIR": str(data_dir),
        **env,
    }
    return load_settings(DEFAULT_CONFIG_DIR, env_file=None, environ=environ)


@dataclass
class BotRig:
    kit: EngineKit
    emulator: RunningEmulator
    services: TradingServices
    settings: Settings
    app: CentaurApp
    user: EmulatorClient

    async def restart_bot(self) -> None:
        """A new Application on the same ledger (the process restarted)."""
        await stop_bot(self.app)
        self.app = build_application(self.services, self.settings, clock=self.kit.clock)
        await start_bot(self.app, poll_timeout=1)

    async def close(self) -> None:
        await stop_bot(self.app)
        await self.user.close()
        await self.kit.engine.stop()
        await self.emulator.stop()

    async def command(
        self,
        text: str,
        expect: Callable[[Message], bool],
        timeout: float = 5,  # noqa: ASYNC109 (the wait is the emulator's long poll)
    ) -> Message:
        await self.user.send(text)
        return await self.user.wait_for(expect, timeout=timeout)

    def audit(self) -> list[AuditRow]:
        with self.kit.ledger.unit_of_work(read_only=True) as uow:
            return list(uow.session.scalars(select(AuditRow).order_by(AuditRow.id)).all())


async def bot_rig(tmp_path: Path, **kit_options: Any) -> BotRig:
    emulator = await start_emulator()
    kit = await engine_kit(tmp_path, **kit_options)
    services = TradingServices({"paper": kit.engine}, "paper")
    settings = settings_for(emulator, tmp_path)
    app = build_application(services, settings, clock=kit.clock)
    await start_bot(app, poll_timeout=1)
    return BotRig(kit, emulator, services, settings, app, emulator.client())


def press_shown_button(rig: BotRig, message_id: int, data: str, chat_id: int | None = None) -> None:
    """Tap a button the phone still shows although the bot has since edited it away
    (a second device, a slow client): Telegram delivers such taps, so the bot must cope."""
    state = rig.emulator.state
    chat = chat_id or rig.emulator.user_id
    bot = state.primary_bot
    message = state.conversation(bot, chat).visible(message_id)
    assert message is not None
    record = state.new_callback(bot, message, chat, data)
    payload = {
        "id": record.id,
        "from": user_dict(state.ensure_user(chat)),
        "message": message_dict(state, bot, message),
        "chat_instance": "1",
        "data": data,
    }
    state.enqueue_update(bot, "callback_query", payload)


def has_text(fragment: str) -> Callable[[Message], bool]:
    return lambda m: fragment in (m["text"] or "")


async def test_start_shows_the_menu_and_the_command_list(tmp_path: Path) -> None:
    rig = await bot_rig(tmp_path)
    try:
        menu = await rig.command("/start", has_text("Centaur"))
        labels = [b["text"] for row in menu["keyboard"] for b in row]
        assert "📊 Status" in labels and "🧨 Kill" in labels
        info = await rig.user.info()
        assert [c["command"] for c in info["commands"]][:3] == ["status", "buy", "sell"]
        await rig.user.press_button("Status")
        card = await rig.user.wait_for(has_text("Working orders"))
        assert "trading allowed" in card["text"]
    finally:
        await rig.close()


async def test_status_refresh_edits_the_same_message(tmp_path: Path) -> None:
    rig = await bot_rig(tmp_path)
    try:
        card = await rig.command("/status", has_text("Working orders"))
        assert "as of 09:50 ET" in card["text"]
        await rig.kit.advance(60)
        await rig.user.press_button("Refresh", message_id=card["message_id"])
        fresh = await rig.user.wait_for(
            lambda m: m["message_id"] == card["message_id"] and m["edit_count"] == 1
        )
        assert "as of 09:51 ET" in fresh["text"] and fresh["keyboard"] == card["keyboard"]
        assert len(await rig.user.bot_messages()) == 1
    finally:
        await rig.close()
