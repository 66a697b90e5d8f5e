"""Bot API methods about the bot itself, updates, callback queries, commands and files."""

from __future__ import annotations

import re
from typing import Any

from bot.emulator.params import Params, api_method, bad_request
from bot.emulator.state import DEFAULT_UPDATE_TYPES, BotAccount, EmulatorState, commands_key
from bot.emulator.views import chat_dict, file_dict

MAX_FILE_DOWNLOAD = 20 * 1024 * 1024
_COMMAND_NAME = re.compile(r"^[a-z0-9_]{1,32}$")
_SCOPES = frozenset(
    {
        "default",
        "all_private_chats",
        "all_group_chats",
        "all_chat_administrators",
        "chat",
        "chat_administrators",
        "chat_member",
    }
)


@api_method("getMe")
async def get_me(state: EmulatorState, bot: BotAccount, params: Params) -> Any:
    return {
        **bot.user_dict(),
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
        "can_connect_to_business": False,
        "has_main_web_app": False,
    }


@api_method("logOut", "close")
async def log_out(state: EmulatorState, bot: BotAccount, params: Params) -> Any:
    return True


@api_method("getUpdates")
async def get_updates(state: EmulatorState, bot: BotAccount, params: Params) -> Any:
    offset = params.get_int("offset")
    limit = min(max(params.get_int("limit", default=100) or 100, 1), 100)
    timeout = max(params.get_float("timeout", 0.0), 0.0)
    allowed = params.get_json("allowed_updates", error="can't parse allowed_updates JSON object")
    if allowed is not None:
        if not isinstance(allowed, list):
            raise bad_request("can't parse allowed_updates JSON object")
        if allowed:
            bot.allowed_updates = frozenset(str(kind) for kind in allowed)
        else:
            bot.allowed_updates = DEFAULT_UPDATE_TYPES
    return await state.poll_updates(bot, offset, limit, seconds=timeout)


@api_method("deleteWebhook")
async def delete_webhook(state: EmulatorState, bot: BotAccount, params: Params) -> Any:
    if params.get_bool("drop_pending_updates"):
        bot.updates.clear()
    return True


@api_method("setWebhook")
async def set_webhook(state: EmulatorState, bot: BotAccount, params: Params) -> Any:
    raise bad_request("the emulator supports getUpdates only, not webhooks")


@api_method("getWebhookInfo")
async def get_webhook_info(state: EmulatorState, bot: BotAccount, params: Params) -> Any:
    return {"url": "", "has_custom_certificate": False, "pending_update_count": len(bot.updates)}


@api_method("answerCallbackQuery")
async def answer_callback_query(state: EmulatorState, bot: BotAccount, params: Params) -> Any:
    query_id = params.get_str("callback_query_id", required=True)
    record = state.callbacks.get(query_id or "")
    if record is None or record.bot_id != bot.id or record.answered:
        raise bad_request("query is too old and response timeout expired or query ID is invalid")
    text = params.get_str("text")
    if text is not None and len(text) > 200:
        raise bad_request("MESSAGE_TOO_LONG")
    record.answered = True
    record.text = text
    record.show_alert = params.get_bool("show_alert")
    record.url = params.get_str("url")
    conv = state.conversations.get((bot.id, record.chat_id))
    message = conv.messages.get(record.message_id) if conv else None
    state.touch(message)
    return True


def _scope_and_language(params: Params) -> tuple[dict[str, Any] | None, str]:
    scope = params.get_json("scope", error="can't parse BotCommandScope JSON object")
    if scope is not None and (not isinstance(scope, dict) or scope.get("type") not in _SCOPES):
        raise bad_request("can't parse BotCommandScope JSON object")
    language = params.get_str("language_code") or ""
    if language and not re.fullmatch(r"[a-z]{2}", language):
        raise bad_request("invalid language code specified")
    return scope, language


@api_method("setMyCommands")
async def set_my_commands(state: EmulatorState, bot: BotAccount, params: Params) -> Any:
    raw = params.get_json("commands", error="can't parse commands JSON object")
    if not isinstance(raw, list) or len(raw) > 100:
        raise bad_request("can't parse commands JSON object")
    commands = []
    for item in raw:
        if not isinstance(item, dict):
            raise bad_request("can't parse BotCommand JSON object")
        command = str(item.get("command", "")).removeprefix("/")
        description = str(item.get("description", ""))
        if not _COMMAND_NAME.match(command):
            raise bad_request("BOT_COMMAND_INVALID")
        if not 1 <= len(description) <= 256:
            raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        commands.append({"command": command, "description": description})
    scope, language = _scope_and_language(params)
    key = commands_key(scope, language)
    if commands:
        bot.commands[key] = commands
    else:
        bot.commands.pop(key, None)
    state.touch()
    return True


@api_method("getMyCommands")
async def get_my_commands(state: EmulatorState, bot: BotAccount, params: Params) -> Any:
    scope, language = _scope_and_language(params)
    return bot.commands.get(commands_key(scope, language), [])


@api_method("deleteMyCommands")
async def delete_my_commands(state: EmulatorState, bot: BotAccount, params: Params) -> Any:
    scope, language = _scope_and_language(params)
    bot.commands.pop(commands_key(scope, language), None)
    state.touch()
    return True


@api_method("getFile")
async def get_file(state: EmulatorState, bot: BotAccount, params: Params) -> Any:
    file_id = params.get_str("file_id", required=True) or ""
    stored = state.files.get(file_id)
    if stored is None:
        raise bad_request("invalid file_id")
    if stored.size > MAX_FILE_DOWNLOAD:
        raise bad_request("file is too big")
    return file_dict(stored)


@api_method("getChat")
async def get_chat(state: EmulatorState, bot: BotAccount, params: Params) -> Any:
    chat_id = params.chat_id()
    state.conversation(bot, chat_id)  # 400 "chat not found" for unknown users
    return {**chat_dict(state.users[chat_id]), "accent_color_id": 0, "max_reaction_count": 11}


def _text_setting(name: str, field: str, limit: int) -> None:
    @api_method(f"setMy{name}")
    async def setter(state: EmulatorState, bot: BotAccount, params: Params) -> Any:
        value = params.get_str(field) or ""
        if len(value) > limit:
            raise bad_request(f"{field} is too long")
        bot.settings[f"{field}|{params.get_str('language_code') or ''}"] = value
        return True

    @api_method(f"getMy{name}")
    async def getter(state: EmulatorState, bot: BotAccount, params: Params) -> Any:
        key = f"{field}|{params.get_str('language_code') or ''}"
        return {field: bot.settings.get(key, "")}


_text_setting("Description", "description", 512)
_text_setting("ShortDescription", "short_description", 120)
_text_setting("Name", "name", 64)


@api_method("setChatMenuButton")
async def set_chat_menu_button(state: EmulatorState, bot: BotAccount, params: Params) -> Any:
    button = params.get_json("menu_button", error="can't parse menu button JSON object")
    if button is not None and not isinstance(button, dict):
        raise bad_request("can't parse menu button JSON object")
    bot.settings["menu_button"] = button or {"type": "default"}
    return True


@api_method("getChatMenuButton")
async def get_chat_menu_button(state: EmulatorState, bot: BotAccount, params: Params) -> Any:
    return bot.settings.get("menu_button", {"type": "commands"})
