"""Validation of message content as Telegram does it: text, captions, parse modes, keyboards."""

from __future__ import annotations

import re
from typing import Any

from bot.emulator.html_text import HtmlParseError, parse_html, sort_entities, strip_text
from bot.emulator.params import Params, bad_request

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64

_BUTTON_ACTIONS = (
    "callback_data",
    "url",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
    "web_app",
)
_COMMAND_RE = re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,64})?")
_URL_RE = re.compile(r"^(https?|tg)://[^\s]+$", re.IGNORECASE)


def format_text(
    params: Params, text_field: str, mode_field: str, entities_field: str
) -> tuple[str | None, list[dict[str, Any]]]:
    """Apply the parse mode (HTML only) or explicit entities, then trim like Telegram."""
    text = params.get_str(text_field)
    if text is None:
        return None, []
    mode = (params.get_str(mode_field) or "").strip()
    entities: list[dict[str, Any]] = []
    if mode.lower() == "html":
        try:
            text, entities = parse_html(text)
        except HtmlParseError as exc:
            raise bad_request(f"can't parse entities: {exc}") from None
    elif mode:
        raise bad_request(f"unsupported parse_mode {mode!r}: the emulator implements HTML only")
    else:
        raw = params.get_json(entities_field, error="can't parse entities JSON object")
        if raw is not None:
            entities = _check_entities(raw)
    return strip_text(text, entities)


def _check_entities(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise bad_request("can't parse entities JSON object")
    checked = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise bad_request('can\'t parse MessageEntity: Field "type" must be of type String')
        try:
            offset, length = int(item["offset"]), int(item["length"])
        except (KeyError, TypeError, ValueError):
            raise bad_request("can't parse MessageEntity: wrong offset or length") from None
        if offset >= 0 and length > 0:
            checked.append({**item, "offset": offset, "length": length})
    return sort_entities(checked)


def check_text(text: str | None) -> str:
    if not text:
        raise bad_request("message text is empty")
    if len(text) > MAX_TEXT:
        raise bad_request("message is too long")
    return text


def check_caption(caption: str | None) -> None:
    if caption is not None and len(caption) > MAX_CAPTION:
        raise bad_request("message caption is too long")


def reply_markup(params: Params, *, inline_only: bool = False) -> dict[str, Any] | None:
    """The validated inline keyboard to store on the message, or None.

    Reply keyboards, ForceReply and ReplyKeyboardRemove are validated loosely and accepted,
    but Telegram does not echo them in the Message, so neither does the emulator.
    """
    markup = params.get_json("reply_markup", error="can't parse reply keyboard markup JSON object")
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        keyboard = [row for row in _inline_keyboard(markup["inline_keyboard"]) if row]
        return {"inline_keyboard": keyboard} if keyboard else None
    if inline_only:
        raise bad_request("inline keyboard expected")
    if not ({"keyboard", "remove_keyboard", "force_reply"} & markup.keys()):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "keyboard" in markup and not isinstance(markup["keyboard"], list):
        raise bad_request('field "keyboard" must be of type Array')
    return None


def _inline_keyboard(rows: Any) -> list[list[dict[str, Any]]]:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request('field "inline_keyboard" must be of type Array')
    return [[_button(button) for button in row] for row in rows]


def _button(button: Any) -> dict[str, Any]:
    if not isinstance(button, dict):
        raise bad_request(
            "can't parse inline keyboard button: InlineKeyboardButton must be an Object"
        )
    text = button.get("text")
    if not isinstance(text, str):
        raise bad_request(
            'can\'t parse inline keyboard button: Field "text" must be of type String'
        )
    if not text.strip():
        raise bad_request("BUTTON_TEXT_INVALID")
    actions = [name for name in _BUTTON_ACTIONS if name in button]
    if not actions:
        raise bad_request(
            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
        )
    if "callback_data" in button:
        data = button["callback_data"]
        if not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA:
            raise bad_request("BUTTON_DATA_INVALID")
    if "url" in button:
        url = button["url"]
        if not isinstance(url, str) or not _URL_RE.match(url):
            raise bad_request("BUTTON_URL_INVALID")
    return {key: value for key, value in button.items() if key == "text" or key in _BUTTON_ACTIONS}


def user_text_entities(text: str) -> list[dict[str, Any]]:
    """Entities Telegram attaches to a user's text: every /command becomes a bot_command."""
    entities = []
    for match in _COMMAND_RE.finditer(text):
        prefix = text[: match.start()]
        offset = len(prefix.encode("utf-16-le")) // 2
        length = len(match.group(0).encode("utf-16-le")) // 2
        entities.append({"type": "bot_command", "offset": offset, "length": length})
    return entities
