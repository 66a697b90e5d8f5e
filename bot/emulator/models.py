"""The emulator's records: accounts, chats, messages, files, callback queries, flood limits."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any

DEFAULT_UPDATE_TYPES = frozenset({"message", "edited_message", "callback_query"})
CHAT_ACTION_SECONDS = 5.0


class Notifier:
    """Wakes every waiter on ``notify()``; waiters re-check their own condition."""

    def __init__(self) -> None:
        self._waiters: set[asyncio.Future[None]] = set()

    def notify(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    async def wait(self, seconds: float) -> bool:
        """Wait for the next ``notify()``; False after ``seconds``."""
        if seconds <= 0:
            return False
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        try:
            async with asyncio.timeout(seconds):
                await waiter
            return True
        except TimeoutError:
            return False
        finally:
            self._waiters.discard(waiter)


@dataclass
class UserAccount:
    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str = "en"


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes
    mime_type: str
    file_name: str | None = None
    width: int | None = None
    height: int | None = None

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class CallbackRecord:
    id: str
    bot_id: int
    chat_id: int
    message_id: int
    user_id: int
    data: str
    answered: bool = False
    text: str | None = None
    show_alert: bool = False
    url: str | None = None


@dataclass
class StoredMessage:
    message_id: int
    chat_id: int
    bot_id: int
    from_bot: bool
    date: int
    text: str | None = None
    entities: list[dict[str, Any]] = field(default_factory=list)
    caption: str | None = None
    caption_entities: list[dict[str, Any]] = field(default_factory=list)
    photo: StoredFile | None = None
    document: StoredFile | None = None
    reply_markup: dict[str, Any] | None = None
    reply_to: int | None = None
    media_group_id: str | None = None
    edit_date: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    deleted: bool = False
    callbacks: list[CallbackRecord] = field(default_factory=list)
    rev: int = 0

    def content(self) -> dict[str, Any]:
        """The editable content, as compared by "message is not modified"."""
        return {
            "text": self.text,
            "entities": self.entities,
            "caption": self.caption,
            "caption_entities": self.caption_entities,
            "reply_markup": self.reply_markup,
        }


@dataclass
class Conversation:
    """The private chat between one bot and one user (chat id == user id)."""

    bot_id: int
    chat_id: int
    messages: dict[int, StoredMessage] = field(default_factory=dict)
    next_message_id: int = 1
    chat_action: str | None = None
    chat_action_until: float = 0.0
    action_rev: int = 0
    sends: deque[float] = field(default_factory=deque)

    def visible(self, message_id: int) -> StoredMessage | None:
        message = self.messages.get(message_id)
        return None if message is None or message.deleted else message


@dataclass
class BotAccount:
    id: int
    token: str
    first_name: str
    username: str
    updates: deque[dict[str, Any]] = field(default_factory=deque)
    allowed_updates: frozenset[str] = DEFAULT_UPDATE_TYPES
    commands: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    notifier: Notifier = field(default_factory=Notifier)
    poll_generation: int = 0

    def user_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "is_bot": True,
            "first_name": self.first_name,
            "username": self.username,
        }


@dataclass
class FloodControl:
    """At most ``limit`` sends or edits per chat in any ``per_seconds`` window, else 429."""

    limit: int
    per_seconds: float = 1.0
    retry_after: int = 1


def commands_key(scope: dict[str, Any] | None, language_code: str | None) -> str:
    """The key under which setMyCommands stores a (scope, language) list."""
    scope = scope or {"type": "default"}
    parts = [str(scope.get("type", "default"))]
    if "chat_id" in scope:
        parts.append(str(scope["chat_id"]))
    if "user_id" in scope:
        parts.append(str(scope["user_id"]))
    return ":".join(parts) + "|" + (language_code or "")


def visible_commands(bot: BotAccount, chat_id: int, language_code: str) -> list[dict[str, str]]:
    """The command list Telegram would show in a private chat, by scope precedence."""
    for scope in ({"type": "chat", "chat_id": chat_id}, {"type": "all_private_chats"}, None):
        for language in (language_code, ""):
            commands = bot.commands.get(commands_key(scope, language))
            if commands:
                return commands
    return []
