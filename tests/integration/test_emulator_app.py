"""A real python-telegram-bot ``Application`` polling the emulator, driven by a scripted user."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import (
    AIORateLimiter,
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
)

from bot.emulator import RunningEmulator, start_emulator

Context = ContextTypes.DEFAULT_TYPE


@pytest.fixture
async def emulator() -> AsyncIterator[RunningEmulator]:
    running = await start_emulator()
    try:
        yield running
    finally:
        await running.stop()


def build_app(emulator: RunningEmulator, rate_limiter: AIORateLimiter | None = None) -> Application:  # type: ignore[type-arg]
    builder = (
        Application.builder()
        .token(emulator.token)
        .base_url(emulator.api_base_url)
        .base_file_url(emulator.file_base_url)
    )
    if rate_limiter is not None:
        builder = builder.rate_limiter(rate_limiter)  # type: ignore[arg-type]
    app = builder.build()
    seen: list[str] = []
    app.bot_data["seen"] = seen

    async def start(update: Update, context: Context) -> None:
        assert update.effective_message is not None
        seen.append(update.effective_message.text or "")
        keyboard = InlineKeyboardMarkup(
            [
                [InlineKeyboardButton("Allow", callback_data="allow")],
                [InlineKeyboardButton("Not today", callback_data="deny")],
            ]
        )
        await update.effective_message.reply_html(
            "<b>Allow trading today?</b>", reply_markup=keyboard
        )

    async def on_button(update: Update, context: Context) -> None:
        query = update.callback_query
        assert query is not None
        seen.append(f"button:{query.data}")
        await query.answer("Trading allowed" if query.data == "allow" else "Not today")
        await query.edit_message_text(f"Switch: <b>{query.data}</b>", parse_mode="HTML")

    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(on_button))
    return app


async def run_polling(app: Application, drop_pending: bool = False) -> None:  # type: ignore[type-arg]
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0.0, timeout=5, drop_pending_updates=drop_pending)


async def stop_polling(app: Application) -> None:  # type: ignore[type-arg]
    assert app.updater is not None
    await app.updater.stop()
    await app.stop()
    await app.shutdown()


async def test_command_and_button_round_trip(emulator: RunningEmulator) -> None:
    app = build_app(emulator)
    await run_polling(app)
    try:
        async with emulator.client() as user:
            await user.send("/start")
            card = await user.wait_for(lambda m: bool(m["keyboard"]), timeout=5)
            assert card["html"] == "<b>Allow trading today?</b>"
            await user.press_button("Allow")
            edited = await user.wait_for(lambda m: m["edit_count"] == 1, timeout=5)
            assert edited["message_id"] == card["message_id"]
            assert edited["html"] == "Switch: <b>allow</b>" and edited["keyboard"] == []
            [answer] = edited["callback_answers"]
            assert answer["answered"] and answer["text"] == "Trading allowed"
        assert app.bot_data["seen"] == ["/start", "button:allow"]
    finally:
        await stop_polling(app)


async def test_drop_pending_updates_on_start(emulator: RunningEmulator) -> None:
    async with emulator.client() as user:
        await user.send("/start stale")
        app = build_app(emulator)
        await run_polling(app, drop_pending=True)
        try:
            await user.send("/start fresh")
            await user.wait_for(lambda m: bool(m["keyboard"]), timeout=5)
            await asyncio.sleep(0.1)
            assert app.bot_data["seen"] == ["/start fresh"]
            assert len(await user.bot_messages()) == 1
        finally:
            await stop_polling(app)


async def test_rate_limiter_retries_after_flood_control(emulator: RunningEmulator) -> None:
    app = build_app(emulator, AIORateLimiter(max_retries=2))
    emulator.set_flood(1, per_seconds=1.0, retry_after=1)
    async with app:
        await app.bot.send_message(emulator.user_id, "first")
        await app.bot.send_message(emulator.user_id, "second, after a RetryAfter and a wait")
    refused = [c for c in emulator.calls if c.get("error_code") == 429]
    assert len(refused) == 1
    async with emulator.client() as user:
        assert len(await user.bot_messages()) == 2
