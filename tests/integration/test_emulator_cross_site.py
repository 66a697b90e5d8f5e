"""A web page open in the user's browser cannot drive the demo chat (issue 12 item 13).

A browser sends a cross-site `text/plain` POST without asking first (a "simple" request),
so a foreign page could type into the chat, tap buttons, reset it, or call the Bot API with
the emulator's well-known default token (edit the bot's cards, steal its updates). The
emulator takes control calls only as JSON, and refuses every request a browser marks as
coming from another site (Origin, Sec-Fetch-Site) or addressed to a foreign host name (DNS
rebinding). The page itself and python-telegram-bot (neither header) keep working.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.emulator import RunningEmulator, start_emulator

EVIL = "http://evil.example"


@pytest.fixture
async def emulator() -> AsyncIterator[RunningEmulator]:
    running = await start_emulator()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def chat_texts(emulator: RunningEmulator) -> list[str]:
    state = emulator.state
    conv = state.conversations.get((state.primary_bot.id, emulator.user_id))
    return [] if conv is None else [str(m.text) for m in conv.messages.values()]


async def post(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], **kwargs: Any
) -> int:
    async with session.post(url, headers=headers, **kwargs) as response:
        await response.read()
        return response.status


async def test_a_cross_site_text_plain_post_cannot_type_into_the_chat(
    emulator: RunningEmulator, session: aiohttp.ClientSession
) -> None:
    """What `fetch(url, {method: "POST", body: '{"text": "/kill"}'})` sends from any page."""
    body = b'{"text": "/buy AAPL 100 10"}'
    headers = {"Content-Type": "text/plain;charset=UTF-8", "Origin": EVIL}
    assert await post(session, f"{emulator.base}/api/send", headers, data=body) in (403, 415)
    # Even without an Origin header (an old browser, a form post): JSON only.
    plain = {"Content-Type": "text/plain"}
    assert await post(session, f"{emulator.base}/api/send", plain, data=body) == 415
    assert chat_texts(emulator) == []
    assert list(emulator.state.primary_bot.updates) == []


async def test_a_foreign_origin_or_site_is_refused_even_as_json(
    emulator: RunningEmulator, session: aiohttp.ClientSession
) -> None:
    url = f"{emulator.base}/api/send"
    for headers in (
        {"Origin": EVIL},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},  # another port on localhost is another origin
    ):
        assert await post(session, url, headers, json={"text": "hi"}) == 403, headers
    assert await post(session, f"{emulator.base}/api/reset", {"Origin": EVIL}, json={}) == 403
    async with session.get(f"{emulator.base}/api/transcript", headers={"Origin": EVIL}) as r:
        assert r.status == 403
    assert chat_texts(emulator) == []


async def test_the_page_itself_still_works(
    emulator: RunningEmulator, session: aiohttp.ClientSession
) -> None:
    own = {"Origin": emulator.base, "Sec-Fetch-Site": "same-origin"}
    assert await post(session, f"{emulator.base}/api/send", own, json={"text": "hi"}) == 200
    localhost = emulator.base.replace("127.0.0.1", "localhost")
    assert await post(session, f"{localhost}/api/send", {}, json={"text": "again"}) == 200
    assert chat_texts(emulator) == ["hi", "again"]
    async with session.ws_connect(f"{emulator.base}/api/ws", headers=own) as ws:
        assert (await ws.receive_json(timeout=3))["type"] == "sync"


async def test_a_foreign_page_cannot_read_the_chat_over_the_websocket(
    emulator: RunningEmulator, session: aiohttp.ClientSession
) -> None:
    """WebSockets are not covered by CORS: the browser connects and lets the page read."""
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await session.ws_connect(f"{emulator.base}/api/ws", headers={"Origin": EVIL})
    assert refused.value.status == 403


async def test_a_rebound_host_name_is_refused(
    emulator: RunningEmulator, session: aiohttp.ClientSession
) -> None:
    """DNS rebinding: evil.example now resolves to 127.0.0.1, so the page is same-origin
    with itself; only the Host header tells."""
    host = f"evil.example:{emulator.port}"
    headers = {"Host": host, "Origin": f"http://{host}"}
    url = f"{emulator.base}/api/send"
    assert await post(session, url, headers, json={"text": "hi"}) == 403
    assert chat_texts(emulator) == []


async def test_the_bot_api_refuses_browsers_from_other_sites(
    emulator: RunningEmulator, session: aiohttp.ClientSession
) -> None:
    url = f"{emulator.api_base_url}{emulator.token}/sendMessage"
    query = {"chat_id": str(emulator.user_id), "text": "forged"}
    cross = {"Content-Type": "text/plain", "Origin": EVIL, "Sec-Fetch-Site": "cross-site"}
    assert await post(session, url, cross, params=query, data=b"") == 403
    async with session.get(url, params=query, headers={"Sec-Fetch-Site": "cross-site"}) as r:
        assert r.status == 403  # an <img src=...> on a foreign page
    assert chat_texts(emulator) == []
    # A bot (python-telegram-bot sends neither header) is served as before.
    assert await post(session, url, {}, json=query) == 200
    assert chat_texts(emulator) == ["forged"]
