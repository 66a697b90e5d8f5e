"""The emulator's web chat in headless Chromium, driven over the Chrome DevTools Protocol.

A real python-telegram-bot Application serves the chat; the page must render its HTML,
keyboard, photo and document, and a click on a button in the DOM must reach the bot as a
callback_query. Skipped when Debian's /usr/bin/chromium is not installed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes

from bot.emulator import RunningEmulator, start_emulator
from bot.emulator.testing import chart_png

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (/usr/bin/chromium)"),
]


class DevTools:
    """A minimal CDP client for one page target over aiohttp's websocket client."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._next_id = 0
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(message.data)
            future = self._pending.pop(data.get("id", -1), None)
            if future is not None and not future.done():
                future.set_result(data)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[self._next_id] = future
        await self.ws.send_json({"id": self._next_id, "method": method, "params": params})
        reply = await asyncio.wait_for(future, 15)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def js(self, expression: str) -> Any:
        result = await self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"JS error in {expression!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_js(self, expression: str, seconds: float = 8.0) -> Any:
        """Poll ``expression`` until truthy; errors count as "not yet" (a page may still be
        loading after a navigation)."""
        deadline = asyncio.get_running_loop().time() + seconds
        last_error: RuntimeError | None = None
        while True:
            try:
                value = await self.js(expression)
            except RuntimeError as exc:
                value, last_error = None, exc
            if value:
                return value
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"page never satisfied: {expression}") from last_error
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


async def screenshot(page: DevTools, path: Path) -> None:
    shot = await page.call("Page.captureScreenshot", format="png")
    image = base64.b64decode(shot["data"])
    assert len(image) > 10_000 and image.startswith(b"\x89PNG")

    def save() -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(image)

    await asyncio.to_thread(save)


@pytest.fixture
async def chromium(tmp_path: Path) -> AsyncIterator[int]:
    """Headless Chromium; yields its DevTools port."""
    process = await asyncio.create_subprocess_exec(
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--remote-debugging-port=0",
        f"--user-data-dir={tmp_path / 'profile'}",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    port = None
    try:
        async with asyncio.timeout(30):
            while port is None:
                line = (await process.stderr.readline()).decode(errors="replace")
                if not line:
                    raise RuntimeError("chromium exited before DevTools started")
                found = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
                port = int(found.group(1)) if found else None
        drain = asyncio.create_task(process.stderr.read())
        yield port
        drain.cancel()
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


@pytest.fixture
async def emulator() -> AsyncIterator[RunningEmulator]:
    running = await start_emulator()
    try:
        yield running
    finally:
        await running.stop()


def build_bot(emulator: RunningEmulator, pressed: asyncio.Queue[str]) -> Application:  # type: ignore[type-arg]
    app = (
        Application.builder()
        .token(emulator.token)
        .base_url(emulator.api_base_url)
        .base_file_url(emulator.file_base_url)
        .build()
    )

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = update.effective_chat
        assert chat is not None
        await context.bot.send_message(
            chat.id,
            "<b>Pre-market brief</b> · <i>normal session</i>\n"
            "AAPL gap <code>+0.42%</code>, ATR20 <code>3.18</code>\n"
            "<blockquote>CPI at 08:30 ET</blockquote>"
            "<tg-spoiler>secret</tg-spoiler> &lt;img src=x onerror=alert(1)&gt;",
            parse_mode="HTML",
        )
        await context.bot.send_photo(
            chat.id, chart_png(), caption="<b>AAPL</b> 5m · VWAP", parse_mode="HTML"
        )
        await context.bot.send_document(chat.id, b"date,pnl\n2025-01-02,12.5\n", filename="pnl.csv")
        keyboard = InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton("Allow", callback_data="allow"),
                    InlineKeyboardButton("Not today", callback_data="deny"),
                ],
                [InlineKeyboardButton("Status", callback_data="status")],
            ]
        )
        await context.bot.send_message(chat.id, "Allow trading today?", reply_markup=keyboard)

    async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None and query.data is not None
        await pressed.put(query.data)
        await query.answer("Trading allowed ✓")
        await query.edit_message_text("Trading <b>allowed</b> for today.", parse_mode="HTML")

    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(button))
    return app


async def test_chat_page_renders_and_buttons_reach_the_bot(
    chromium: int, emulator: RunningEmulator, tmp_path: Path
) -> None:
    pressed: asyncio.Queue[str] = asyncio.Queue()
    app = build_bot(emulator, pressed)
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0.0, timeout=5)
    session = aiohttp.ClientSession()
    try:
        async with emulator.client() as user:
            await user.send("/start")
            await user.wait_for(lambda m: bool(m["keyboard"]), timeout=10)

        async with session.put(f"http://127.0.0.1:{chromium}/json/new?about:blank") as response:
            target = await response.json(content_type=None)
        page = DevTools(await session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0))
        try:
            await page.call(
                "Emulation.setDeviceMetricsOverride",
                width=400,
                height=860,
                deviceScaleFactor=2,
                mobile=True,
            )
            await page.call("Page.enable")
            await page.call("Page.navigate", url=emulator.url)
            await page.wait_js(
                "document.querySelectorAll('.kb-btn').length === 3 &&"
                " [...document.images].every(i => i.complete && i.naturalWidth > 0) &&"
                " document.body.dataset.conn === 'live'"
            )
            rows = await page.js(
                "[...document.querySelectorAll('.row')].map(r => r.className + '|' + r.innerText)"
            )
            assert len(rows) == 5
            assert rows[0].startswith("row user") and "/start" in rows[0]
            assert rows[1].startswith("row bot") and "Pre-market brief" in rows[1]
            assert await page.js("document.querySelector('.row.bot b').textContent") == (
                "Pre-market brief"
            )
            assert await page.js("document.querySelectorAll('.row.bot blockquote').length") == 1
            # escaped markup stays text: no element is injected
            assert await page.js("document.querySelectorAll('#messages img').length") == 1
            assert "<img src=x onerror=alert(1)>" in rows[1]
            assert await page.js("document.querySelector('img.photo').naturalWidth") == 480
            doc_href = await page.js("document.querySelector('a.doc').getAttribute('href')")
            assert doc_href.startswith("/media/")
            assert "pnl.csv" in rows[3]

            shots = Path(os.environ.get("EMULATOR_SCREENSHOT_DIR", tmp_path))
            await asyncio.sleep(0.4)  # let the bubbles' entry animation finish
            await screenshot(page, shots / "emulator_chat_keyboard.png")

            await page.js("document.querySelector('.kb-btn[data-callback=\"allow\"]').click()")
            assert await asyncio.wait_for(pressed.get(), 10) == "allow"
            await page.wait_js(
                "document.querySelector('.row:last-child').innerText.includes('allowed for today')"
                " && !document.getElementById('toast').hidden"
            )
            assert await page.js("document.getElementById('toast').textContent") == (
                "Trading allowed ✓"
            )
            assert await page.js("document.querySelectorAll('.kb-btn').length") == 0

            # typing into the composer sends a user message
            await page.js(
                "document.getElementById('input').value = 'hello from the page';"
                "document.getElementById('composer').requestSubmit()"
            )
            async with emulator.client() as user:
                for _ in range(100):
                    texts = [m["text"] for m in await user.transcript() if m["from"] == "user"]
                    if "hello from the page" in texts:
                        break
                    await asyncio.sleep(0.05)
                assert "hello from the page" in texts
            await page.wait_js("document.querySelector('.row:last-child.user') !== null")

            await asyncio.sleep(1.0)  # let the edit highlight fade before the picture
            await screenshot(page, shots / "emulator_chat_after_press.png")

            # the long-polling fallback renders the same chat and live changes
            await page.call("Page.navigate", url=emulator.url + "?transport=poll")
            await page.wait_js(
                "document.body.dataset.conn === 'polling' &&"
                " document.querySelectorAll('.row').length === 6"
            )
            await app.bot.send_message(emulator.user_id, "<i>polled</i>", parse_mode="HTML")
            await page.wait_js(
                "document.querySelector('.row:last-child i')?.textContent === 'polled'"
            )
        finally:
            await page.close()
    finally:
        await session.close()
        await app.updater.stop()
        await app.stop()
        await app.shutdown()
