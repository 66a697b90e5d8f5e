"""``EmulatorClient``: the user's side of the chat over the control API, for tests and demos.

    async with emulator.client() as user:
        await user.send("/start")
        card = await user.wait_for(lambda m: "Welcome" in (m["text"] or ""))
        await user.press_button("Status")

Messages are transcript entries (see ``views.transcript_entry``): dicts with ``message_id``,
``from`` ("bot"/"user"), ``text``, ``html``, ``caption``, ``keyboard``, ``photo``,
``document``, ``edit_count``, ``deleted``, ``callback_answers``...
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp

Message = dict[str, Any]


class EmulatorError(RuntimeError):
    """The control API refused a request (unknown message or button, bad input)."""

    def __init__(self, status: int, message: str):
        super().__init__(f"{status}: {message}")
        self.status = status


class EmulatorClient:
    def __init__(
        self,
        base_url: str,
        chat_id: int | None = None,
        *,
        bot: str | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.chat_id = chat_id
        self.bot = bot
        self._session = session
        self._owns_session = session is None

    async def __aenter__(self) -> EmulatorClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    def _scope(self) -> dict[str, Any]:
        scope: dict[str, Any] = {}
        if self.chat_id is not None:
            scope["chat_id"] = self.chat_id
        if self.bot is not None:
            scope["bot"] = self.bot
        return scope

    async def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        query: dict[str, Any] | None = None,
        seconds: float = 10.0,
    ) -> dict[str, Any]:
        params = {k: str(v) for k, v in {**self._scope(), **(query or {})}.items()}
        async with self.session.request(
            method,
            f"{self.base_url}{path}",
            json={**self._scope(), **body} if body is not None else None,
            params=params if method == "GET" else None,
            timeout=aiohttp.ClientTimeout(total=seconds),
        ) as response:
            data: dict[str, Any] = await response.json()
        if not data.get("ok"):
            raise EmulatorError(response.status, str(data.get("error")))
        return data

    # --- acting as the user ---------------------------------------------------------------

    async def send(self, text: str) -> Message:
        """Type ``text`` into the chat; returns the user's message."""
        result = await self._call("POST", "/api/send", {"text": text})
        message: Message = result["message"]
        return message

    async def press(self, message_id: int, data: str) -> str:
        """Tap the button with ``callback_data == data``; returns the callback query id."""
        body = {"message_id": message_id, "callback_data": data}
        result = await self._call("POST", "/api/press", body)
        return str(result["callback_query_id"])

    async def press_button(self, text_contains: str, message_id: int | None = None) -> str:
        """Tap the newest button whose label contains ``text_contains``."""
        for message in reversed(await self.bot_messages()):
            if message_id is not None and message["message_id"] != message_id:
                continue
            for row in message["keyboard"]:
                for button in row:
                    if text_contains in button["text"] and "callback_data" in button:
                        return await self.press(message["message_id"], button["callback_data"])
        raise EmulatorError(404, f"no button containing {text_contains!r}")

    # --- observing ------------------------------------------------------------------------

    async def transcript(self, since: int = 0) -> list[Message]:
        """Every message of the chat in order (deleted ones flagged), or those changed
        after revision ``since``."""
        result = await self._call("GET", "/api/transcript", query={"since": since})
        messages: list[Message] = result["messages"]
        return messages

    async def bot_messages(self) -> list[Message]:
        return [m for m in await self.transcript() if m["from"] == "bot" and not m["deleted"]]

    async def last_bot_message(self) -> Message | None:
        messages = await self.bot_messages()
        return messages[-1] if messages else None

    async def wait_for(
        self,
        predicate: Callable[[Message], bool],
        timeout: float = 5.0,  # noqa: ASYNC109 (the waiting is over HTTP, not a local await)
    ) -> Message:
        """The first (oldest) non-deleted bot message matching ``predicate``, waiting up to
        ``timeout`` seconds for one to appear or to be edited into a match."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        state = await self._call("GET", "/api/transcript")
        rev, epoch = state["rev"], state["epoch"]
        while True:
            for message in state["messages"]:
                if message["from"] == "bot" and not message["deleted"] and predicate(message):
                    found: Message = message
                    return found
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"no bot message matched within {timeout}s")
            await self._call(
                "GET",
                "/api/updates",
                query={"since": rev, "epoch": epoch, "timeout": min(remaining, 25.0)},
                seconds=remaining + 5,
            )
            state = await self._call("GET", "/api/transcript")
            rev, epoch = state["rev"], state["epoch"]

    async def wait_for_text(self, contains: str, timeout: float = 5.0) -> Message:  # noqa: ASYNC109
        """Wait for a bot message whose text or caption contains ``contains``."""
        return await self.wait_for(
            lambda m: contains in (m["text"] or "") or contains in (m["caption"] or ""), timeout
        )

    async def info(self) -> dict[str, Any]:
        """The bot, the user, and the bot's command list as the chat shows it."""
        return await self._call("GET", "/api/info")

    # --- test controls --------------------------------------------------------------------

    async def reset(self) -> None:
        await self._call("POST", "/api/reset", {})

    async def set_flood(
        self, limit: int | None, per_seconds: float = 1.0, retry_after: int = 1
    ) -> None:
        """At most ``limit`` sends/edits per chat per ``per_seconds`` (None: no limit)."""
        body = {"limit": limit, "per_seconds": per_seconds, "retry_after": retry_after}
        await self._call("POST", "/api/flood", body)
