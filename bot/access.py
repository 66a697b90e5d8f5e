"""Who may use the bot: checked before any handler runs, for messages and button presses.

`gate` is a `TypeHandler(Update)` in group -1. An allowed user's update passes through;
anything else ends there with `ApplicationHandlerStop`: no reply, no answer to a button
(a stranger learns nothing, not even that a button did anything), one audit row and a
rate-limited log line. The one exception is `/whoami`, which answers anyone with their
own ids and nothing else (so the owner can find the id to put in TELEGRAM_ALLOWED_USERS).

Rules: the user id must be in TELEGRAM_ALLOWED_USERS (empty = nobody: fail closed). The
chat must be the user's private chat, or one listed in TELEGRAM_ALLOWED_CHATS: an allowed
user in a random group cannot make the bot talk there.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from loguru import logger
from telegram import Update
from telegram.ext import ApplicationHandlerStop

from bot.context import CentaurContext
from bot.render.info import render_whoami
from core.ledger import AuditKind
from core.settings import Secrets

LOG_EVERY = timedelta(minutes=1)
AUDIT_PER_WINDOW = 10  # audit rows per stranger per LOG_EVERY (a flood must not fill the table)


def _ordered_ids(raw: str) -> list[int]:
    """The ids in the order written (Secrets has already validated them)."""
    out = []
    for part in raw.replace(";", ",").split(","):
        part = part.strip()
        if part.lstrip("-").isdigit():
            out.append(int(part))
    return out


class AccessPolicy:
    def __init__(self, users: Iterable[int], chats: Iterable[int] = ()) -> None:
        self._users_ordered = list(users)
        self._chats_ordered = list(chats)
        self.users = frozenset(self._users_ordered)
        self.chats = frozenset(self._chats_ordered)
        # stranger id -> (window start, updates seen in the window)
        self._strangers: dict[int, tuple[datetime, int]] = {}

    @classmethod
    def from_secrets(cls, secrets: Secrets) -> AccessPolicy:
        return cls(
            _ordered_ids(secrets.TELEGRAM_ALLOWED_USERS),
            _ordered_ids(secrets.TELEGRAM_ALLOWED_CHATS),
        )

    @property
    def home_chat(self) -> int | None:
        """Where alerts go: the first allowed chat, else the first allowed user's private chat."""
        if self._chats_ordered:
            return self._chats_ordered[0]
        return self._users_ordered[0] if self._users_ordered else None

    def allows(self, user_id: int | None, chat_id: int | None) -> bool:
        if user_id is None or chat_id is None or user_id not in self.users:
            return False
        return chat_id == user_id or chat_id in self.chats

    def note_stranger(self, user_id: int, now: datetime) -> tuple[bool, bool, int]:
        """(write an audit row?, write a log line?, updates in this window) for a stranger."""
        start, count = self._strangers.get(user_id, (now, 0))
        if now - start >= LOG_EVERY:
            start, count = now, 0
        count += 1
        self._strangers[user_id] = (start, count)
        return count <= AUDIT_PER_WINDOW, count == 1, count


def _command(update: Update) -> str | None:
    message = update.message
    text = message.text if message is not None else None
    if not text or not text.startswith("/"):
        return None
    return text.split()[0][1:].split("@")[0].lower()[:32]


def _what(update: Update) -> str:
    if update.callback_query is not None:
        return "button"
    command = _command(update)
    if command is not None:
        return f"/{command}"
    return "message" if update.message is not None else "update"


async def gate(update: object, context: CentaurContext) -> None:
    if not isinstance(update, Update):
        raise ApplicationHandlerStop
    user, chat = update.effective_user, update.effective_chat
    user_id = user.id if user is not None else None
    chat_id = chat.id if chat is not None else None
    deps = context.deps
    if deps.access.allows(user_id, chat_id):
        return
    if _command(update) == "whoami" and update.message is not None:
        await update.message.reply_html(
            render_whoami(user_id, chat_id, user.username if user is not None else None)
        )
    key = user_id if user_id is not None else 0
    audit, log, count = deps.access.note_stranger(key, context.now())
    what = _what(update)
    if audit:
        deps.audit.record(
            AuditKind.DENIED,
            what,
            ok=False,
            user_id=user_id,
            chat_id=chat_id,
            args=None,
            result="stranger: ignored",
        )
    if log:
        # No message text in the log: a stranger's words are not ours to keep.
        logger.warning("access: ignored {} from stranger user={} chat={}", what, user_id, chat_id)
    elif count == AUDIT_PER_WINDOW + 1:
        logger.warning("access: stranger user={} keeps trying; auditing paused", user_id)
    raise ApplicationHandlerStop


__all__ = ["AccessPolicy", "gate"]
