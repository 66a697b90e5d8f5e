"""The emulator's world: bots, users, private chats, messages, updates, files, flood control.

Everything lives on one asyncio loop; nothing here blocks or uses threads. Identifiers are
deterministic (message ids per chat from 1, update ids and file ids from 1), except that
update ids never restart, not even on reset, so a running bot's confirmed offset stays
valid. ``now`` (epoch seconds) stamps message dates only; long-poll timeouts and flood
windows use the loop's monotonic clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from bot.emulator.models import (
    CHAT_ACTION_SECONDS,
    DEFAULT_UPDATE_TYPES,
    BotAccount,
    CallbackRecord,
    Conversation,
    FloodControl,
    Notifier,
    StoredFile,
    StoredMessage,
    UserAccount,
    commands_key,
    visible_commands,
)
from bot.emulator.params import ApiError

__all__ = [
    "DEFAULT_UPDATE_TYPES",
    "BotAccount",
    "CallbackRecord",
    "Conversation",
    "EmulatorState",
    "FloodControl",
    "StoredFile",
    "StoredMessage",
    "UserAccount",
    "commands_key",
    "visible_commands",
]


class EmulatorState:
    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self.now = now
        self.bots: dict[str, BotAccount] = {}
        self.users: dict[int, UserAccount] = {}
        self.conversations: dict[tuple[int, int], Conversation] = {}
        self.files: dict[str, StoredFile] = {}
        self.files_by_path: dict[str, StoredFile] = {}
        self.callbacks: dict[str, CallbackRecord] = {}
        self.flood: FloodControl | None = None
        self.rev = 0
        self.epoch = 1
        self.closed = False
        self.changed = Notifier()
        self._next_update_id = 1
        self._next_file = 1
        self._next_callback = 1
        self._next_media_group = 1

    # --- accounts -------------------------------------------------------------------------

    def add_bot(self, token: str, username: str, first_name: str | None = None) -> BotAccount:
        prefix = token.split(":", 1)[0]
        bot_id = int(prefix) if prefix.isdigit() else 1_000_000 + len(self.bots) + 1
        account = BotAccount(bot_id, token, first_name or username, username)
        self.bots[token] = account
        return account

    def add_user(
        self,
        user_id: int,
        first_name: str,
        username: str | None = None,
        last_name: str | None = None,
    ) -> UserAccount:
        user = UserAccount(user_id, first_name, last_name, username)
        self.users[user_id] = user
        return user

    def ensure_user(self, user_id: int) -> UserAccount:
        return self.users.get(user_id) or self.add_user(user_id, f"User {user_id}")

    def bot_by_id(self, bot_id: int) -> BotAccount | None:
        return next((b for b in self.bots.values() if b.id == bot_id), None)

    @property
    def primary_bot(self) -> BotAccount:
        return next(iter(self.bots.values()))

    def conversation(self, bot: BotAccount, chat_id: int) -> Conversation:
        """The chat with an existing user, created on first use; 400 "chat not found"."""
        if chat_id not in self.users:
            raise ApiError(400, "Bad Request: chat not found")
        key = (bot.id, chat_id)
        conv = self.conversations.get(key)
        if conv is None:
            conv = self.conversations[key] = Conversation(bot.id, chat_id)
        return conv

    # --- change tracking ------------------------------------------------------------------

    def touch(self, message: StoredMessage | None = None) -> int:
        self.rev += 1
        if message is not None:
            message.rev = self.rev
        self.changed.notify()
        return self.rev

    async def wait_changed(self, since_rev: int, epoch: int, seconds: float) -> None:
        """Return once the revision passes ``since_rev``, the epoch changes, or ``seconds``."""
        deadline = asyncio.get_running_loop().time() + seconds
        while self.rev <= since_rev and self.epoch == epoch and not self.closed:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0 or not await self.changed.wait(remaining):
                return

    # --- messages -------------------------------------------------------------------------

    def new_message(self, conv: Conversation, *, from_bot: bool, **fields: Any) -> StoredMessage:
        message = StoredMessage(
            message_id=conv.next_message_id,
            chat_id=conv.chat_id,
            bot_id=conv.bot_id,
            from_bot=from_bot,
            date=int(self.now()),
            **fields,
        )
        conv.next_message_id += 1
        conv.messages[message.message_id] = message
        if from_bot:
            conv.chat_action = None  # a message ends the "typing…" status, as in Telegram
        self.touch(message)
        return message

    def record_edit(self, message: StoredMessage, **changes: Any) -> None:
        message.history.append({"date": message.edit_date or message.date, **message.content()})
        for name, value in changes.items():
            setattr(message, name, value)
        message.edit_date = int(self.now())
        self.touch(message)

    def set_chat_action(self, conv: Conversation, action: str) -> None:
        conv.chat_action = action
        conv.chat_action_until = asyncio.get_running_loop().time() + CHAT_ACTION_SECONDS
        conv.action_rev = self.touch()

    def current_action(self, conv: Conversation) -> str | None:
        if conv.chat_action and asyncio.get_running_loop().time() < conv.chat_action_until:
            return conv.chat_action
        return None

    def next_media_group_id(self) -> str:
        group = f"{self._next_media_group:08d}"
        self._next_media_group += 1
        return group

    # --- flood control --------------------------------------------------------------------

    def check_flood(self, conv: Conversation) -> None:
        """Count one send/edit against the chat's window; 429 with retry_after if over."""
        if self.flood is None:
            return
        now = asyncio.get_running_loop().time()
        while conv.sends and conv.sends[0] <= now - self.flood.per_seconds:
            conv.sends.popleft()
        if len(conv.sends) >= self.flood.limit:
            retry = self.flood.retry_after
            raise ApiError(429, f"Too Many Requests: retry after {retry}", {"retry_after": retry})
        conv.sends.append(now)

    # --- updates --------------------------------------------------------------------------

    def enqueue_update(self, bot: BotAccount, kind: str, payload: dict[str, Any]) -> int | None:
        """Queue an update unless the bot's allowed_updates excludes it; its id, or None."""
        if kind not in bot.allowed_updates:
            return None
        update_id = self._next_update_id
        self._next_update_id += 1
        bot.updates.append({"update_id": update_id, kind: payload})
        bot.notifier.notify()
        return update_id

    def confirm_updates(self, bot: BotAccount, offset: int | None) -> None:
        if offset is None or offset == 0:
            return
        if offset < 0:
            while len(bot.updates) > -offset:
                bot.updates.popleft()
            return
        while bot.updates and bot.updates[0]["update_id"] < offset:
            bot.updates.popleft()

    async def poll_updates(
        self, bot: BotAccount, offset: int | None, limit: int, seconds: float
    ) -> list[dict[str, Any]]:
        """getUpdates: confirm, then return queued updates, waiting up to ``seconds``.

        A newer getUpdates ends an older pending one with Telegram's 409 Conflict.
        """
        bot.poll_generation += 1
        generation = bot.poll_generation
        bot.notifier.notify()  # wake (and so terminate) an older long poll
        self.confirm_updates(bot, offset)
        deadline = asyncio.get_running_loop().time() + seconds
        while not bot.updates and not self.closed:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            await bot.notifier.wait(remaining)
            if bot.poll_generation != generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )
        return list(bot.updates)[:limit]

    # --- files ----------------------------------------------------------------------------

    def store_file(
        self,
        data: bytes,
        *,
        folder: str,
        extension: str,
        mime_type: str,
        file_name: str | None = None,
        size: tuple[int, int] | None = None,
    ) -> StoredFile:
        number = self._next_file
        self._next_file += 1
        kind = "Ag" if folder == "photos" else "BQ"
        stored = StoredFile(
            file_id=f"{kind}ACEmu{number:06d}",
            file_unique_id=f"AQEmu{number:06d}",
            file_path=f"{folder}/file_{number}.{extension}",
            data=data,
            mime_type=mime_type,
            file_name=file_name,
            width=size[0] if size else None,
            height=size[1] if size else None,
        )
        self.files[stored.file_id] = stored
        self.files_by_path[stored.file_path] = stored
        return stored

    # --- callback queries -----------------------------------------------------------------

    def new_callback(
        self, bot: BotAccount, message: StoredMessage, user_id: int, data: str
    ) -> CallbackRecord:
        record = CallbackRecord(
            id=f"{bot.id}{self._next_callback:010d}",
            bot_id=bot.id,
            chat_id=message.chat_id,
            message_id=message.message_id,
            user_id=user_id,
            data=data,
        )
        self._next_callback += 1
        self.callbacks[record.id] = record
        message.callbacks.append(record)
        self.touch(message)
        return record

    # --- lifecycle ------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget chats, queued updates, files, callbacks and flood control; keep accounts."""
        self.conversations.clear()
        self.files.clear()
        self.files_by_path.clear()
        self.callbacks.clear()
        self.flood = None
        for bot in self.bots.values():
            bot.updates.clear()
        self.epoch += 1
        self.touch()

    def close(self) -> None:
        """Release every long poll and waiter at once (server shutdown)."""
        self.closed = True
        self.changed.notify()
        for bot in self.bots.values():
            bot.notifier.notify()
