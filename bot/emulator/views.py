"""JSON views of the state: Bot API objects (for the bot) and transcripts (for tests/page)."""

from __future__ import annotations

import html
from typing import Any

from bot.emulator.html_text import entities_to_html
from bot.emulator.state import (
    BotAccount,
    CallbackRecord,
    Conversation,
    EmulatorState,
    StoredFile,
    StoredMessage,
    UserAccount,
    visible_commands,
)


def user_dict(user: UserAccount) -> dict[str, Any]:
    data: dict[str, Any] = {"id": user.id, "is_bot": False, "first_name": user.first_name}
    if user.last_name:
        data["last_name"] = user.last_name
    if user.username:
        data["username"] = user.username
    data["language_code"] = user.language_code
    return data


def chat_dict(user: UserAccount) -> dict[str, Any]:
    data: dict[str, Any] = {"id": user.id, "type": "private", "first_name": user.first_name}
    if user.last_name:
        data["last_name"] = user.last_name
    if user.username:
        data["username"] = user.username
    return data


def photo_sizes(stored: StoredFile) -> list[dict[str, Any]]:
    return [
        {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "width": stored.width or 0,
            "height": stored.height or 0,
            "file_size": stored.size,
        }
    ]


def document_dict(stored: StoredFile) -> dict[str, Any]:
    data: dict[str, Any] = {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "mime_type": stored.mime_type,
        "file_size": stored.size,
    }
    if stored.file_name:
        data["file_name"] = stored.file_name
    return data


def file_dict(stored: StoredFile) -> dict[str, Any]:
    return {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": stored.size,
        "file_path": stored.file_path,
    }


def message_dict(
    state: EmulatorState, bot: BotAccount, message: StoredMessage, *, nested: bool = False
) -> dict[str, Any]:
    """A Bot API Message object as the bot sees it."""
    user = state.ensure_user(message.chat_id)
    data: dict[str, Any] = {
        "message_id": message.message_id,
        "from": bot.user_dict() if message.from_bot else user_dict(user),
        "chat": chat_dict(user),
        "date": message.date,
    }
    if message.edit_date is not None:
        data["edit_date"] = message.edit_date
    if message.media_group_id:
        data["media_group_id"] = message.media_group_id
    if message.text is not None:
        data["text"] = message.text
        if message.entities:
            data["entities"] = message.entities
    if message.photo is not None:
        data["photo"] = photo_sizes(message.photo)
    if message.document is not None:
        data["document"] = document_dict(message.document)
    if message.caption:
        data["caption"] = message.caption
        if message.caption_entities:
            data["caption_entities"] = message.caption_entities
    if message.reply_markup is not None:
        data["reply_markup"] = message.reply_markup
    if message.reply_to is not None and not nested:
        conv = state.conversations.get((message.bot_id, message.chat_id))
        original = conv.messages.get(message.reply_to) if conv else None
        if original is not None and not original.deleted:
            data["reply_to_message"] = message_dict(state, bot, original, nested=True)
    return data


def callback_dict(record: CallbackRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "data": record.data,
        "user_id": record.user_id,
        "answered": record.answered,
        "text": record.text,
        "show_alert": record.show_alert,
        "url": record.url,
    }


def _media_url(stored: StoredFile) -> str:
    return f"/media/{stored.file_id}"


def transcript_entry(message: StoredMessage) -> dict[str, Any]:
    """One message for the control API and the web page (URLs are relative to the server)."""
    keyboard = (message.reply_markup or {}).get("inline_keyboard") or []
    entry: dict[str, Any] = {
        "message_id": message.message_id,
        "chat_id": message.chat_id,
        "from": "bot" if message.from_bot else "user",
        "date": message.date,
        "text": message.text,
        "entities": message.entities,
        "html": _html(message.text, message.entities),
        "caption": message.caption,
        "caption_entities": message.caption_entities,
        "caption_html": _html(message.caption, message.caption_entities),
        "keyboard": keyboard,
        "photo": None,
        "document": None,
        "reply_to_message_id": message.reply_to,
        "media_group_id": message.media_group_id,
        "edit_count": len(message.history),
        "edited": message.edit_date is not None,
        "deleted": message.deleted,
        "callback_answers": [callback_dict(record) for record in message.callbacks],
        "rev": message.rev,
    }
    if message.photo is not None:
        entry["photo"] = {
            "file_id": message.photo.file_id,
            "url": _media_url(message.photo),
            "width": message.photo.width,
            "height": message.photo.height,
        }
    if message.document is not None:
        entry["document"] = {
            "file_id": message.document.file_id,
            "url": _media_url(message.document),
            "file_name": message.document.file_name,
            "mime_type": message.document.mime_type,
            "file_size": message.document.size,
        }
    return entry


def _html(text: str | None, entities: list[dict[str, Any]]) -> str | None:
    if text is None:
        return None
    return entities_to_html(text, entities) if entities else html.escape(text, quote=False)


def transcript(state: EmulatorState, conv: Conversation | None, since: int = 0) -> dict[str, Any]:
    """Messages of one chat changed after revision ``since`` (all of them for 0), in order."""
    messages = []
    action = None
    if conv is not None:
        messages = [transcript_entry(m) for m in conv.messages.values() if m.rev > since]
        action = state.current_action(conv)
    return {
        "rev": state.rev,
        "epoch": state.epoch,
        "chat_id": conv.chat_id if conv else None,
        "chat_action": action,
        "messages": messages,
    }


def bot_info(state: EmulatorState, bot: BotAccount, chat_id: int) -> dict[str, Any]:
    user = state.ensure_user(chat_id)
    commands = visible_commands(bot, chat_id, user.language_code)
    return {
        "bot": bot.user_dict(),
        "user": user_dict(user),
        "chat_id": chat_id,
        "commands": commands,
        "epoch": state.epoch,
    }
