"""The emulator's control API, WebSocket, page assets and command line, over 127.0.0.1."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from telegram import Bot
from telegram.error import Conflict

from bot.emulator import EmulatorClient, EmulatorError, RunningEmulator, start_emulator


@pytest.fixture
async def emulator() -> AsyncIterator[RunningEmulator]:
    running = await start_emulator(user_first_name="Ada")
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def bot_call(
    session: aiohttp.ClientSession, emulator: RunningEmulator, method: str, **body: Any
) -> dict[str, Any]:
    url = f"{emulator.api_base_url}{emulator.token}/{method}"
    async with session.post(url, json=body) as response:
        data: dict[str, Any] = await response.json()
        return data


async def test_page_and_assets_are_served(
    emulator: RunningEmulator, session: aiohttp.ClientSession
) -> None:
    async with session.get(emulator.url) as response:
        page = await response.text()
    assert response.status == 200 and "/static/chat.js" in page
    assert "://" not in page  # no CDN or other outside resource
    for asset in ("chat.js", "chat.css"):
        async with session.get(f"{emulator.base}/static/{asset}") as response:
            assert response.status == 200


async def test_websocket_pushes_snapshot_then_changes(
    emulator: RunningEmulator, session: aiohttp.ClientSession
) -> None:
    async with session.ws_connect(f"{emulator.base}/api/ws?chat_id={emulator.user_id}") as ws:
        first = await ws.receive_json(timeout=3)
        assert first["type"] == "sync" and first["reset"] and first["messages"] == []
        await bot_call(session, emulator, "sendMessage", chat_id=emulator.user_id, text="hi")
        pushed = await ws.receive_json(timeout=3)
        assert [m["text"] for m in pushed["messages"]] == ["hi"] and not pushed["reset"]
        await bot_call(
            session, emulator, "sendChatAction", chat_id=emulator.user_id, action="typing"
        )
        assert (await ws.receive_json(timeout=3))["chat_action"] == "typing"
        await bot_call(
            session, emulator, "editMessageText", chat_id=emulator.user_id, message_id=1, text="yo"
        )
        edited = await ws.receive_json(timeout=3)
        assert edited["messages"][0]["text"] == "yo" and edited["messages"][0]["edit_count"] == 1
        async with session.post(f"{emulator.base}/api/reset", json={}) as response:
            assert response.status == 200
        after_reset = await ws.receive_json(timeout=3)
        assert after_reset["reset"] and after_reset["messages"] == []


async def test_long_poll_endpoint_for_the_page(
    emulator: RunningEmulator, session: aiohttp.ClientSession
) -> None:
    async with session.get(f"{emulator.base}/api/transcript") as response:
        state = await response.json()
    url = f"{emulator.base}/api/updates?since={state['rev']}&epoch={state['epoch']}&timeout=10"
    waiting = asyncio.create_task(session.get(url))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    async with EmulatorClient(emulator.base, emulator.user_id) as user:
        await user.send("ping")
    response = await asyncio.wait_for(waiting, 3)
    body = await response.json()
    response.release()
    assert [m["text"] for m in body["messages"]] == ["ping"]
    assert body["messages"][0]["from"] == "user"


async def test_control_errors(emulator: RunningEmulator, session: aiohttp.ClientSession) -> None:
    async with emulator.client() as user:
        with pytest.raises(EmulatorError, match="404"):
            await user.press(5, "x")
        with pytest.raises(EmulatorError, match="400"):
            await user.send("   ")
        with pytest.raises(EmulatorError, match="no button"):
            await user.press_button("nothing")
        info = await user.info()
        assert info["user"]["first_name"] == "Ada" and info["bot"]["username"] == "centaur_bot"
    json_array = {"Content-Type": "application/json"}
    async with session.post(f"{emulator.base}/api/send", data=b"[1]", headers=json_array) as r:
        assert r.status == 400
    # a new user talks to the bot: the chat is created on first contact
    async with EmulatorClient(emulator.base, chat_id=777) as other:
        await other.send("hello")
    result = await bot_call(session, emulator, "sendMessage", chat_id=777, text="hi 777")
    assert result["ok"] and result["result"]["chat"]["first_name"] == "User 777"


async def test_second_get_updates_terminates_the_first(emulator: RunningEmulator) -> None:
    async with (
        Bot(emulator.token, base_url=emulator.api_base_url) as first,
        Bot(emulator.token, base_url=emulator.api_base_url) as second,
    ):
        older = asyncio.create_task(first.get_updates(timeout=10))
        await asyncio.sleep(0.2)
        assert await second.get_updates(timeout=0) == ()
        with pytest.raises(Conflict, match="terminated by other getUpdates request"):
            await asyncio.wait_for(older, 3)


async def test_stop_releases_pending_long_polls() -> None:
    emulator = await start_emulator()
    bot = Bot(emulator.token, base_url=emulator.api_base_url)
    async with bot:
        poll = asyncio.create_task(bot.get_updates(timeout=30))
        await asyncio.sleep(0.2)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await emulator.stop()
        assert await asyncio.wait_for(poll, 5) == ()
        assert loop.time() - started < 3


async def test_command_line_prints_the_chat_url() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.emulator",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match and int(match.group(1)) > 0, line
        async with aiohttp.ClientSession() as session, session.get(match.group(0)) as response:
            assert response.status == 200
    finally:
        process.terminate()
        await process.wait()
