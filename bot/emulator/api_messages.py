"""Bot API methods that create, edit and delete messages."""

from __future__ import annotations

from typing import Any

from bot.emulator.content import (
    check_caption,
    check_text,
    format_text,
    reply_markup,
)
from bot.emulator.media import extension_for, guess_mime, image_mime, image_size
from bot.emulator.params import Params, Upload, api_method, bad_request
from bot.emulator.state import BotAccount, Conversation, EmulatorState, StoredFile, StoredMessage
from bot.emulator.views import message_dict

NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)


def _reply_to(conv: Conversation, params: Params) -> int | None:
    reply = params.get_json("reply_parameters", error="can't parse reply parameters JSON object")
    allow_missing = params.get_bool("allow_sending_without_reply")
    message_id: int | None
    if isinstance(reply, dict):
        message_id = Params(reply).get_int("message_id", required=True)
        allow_missing = Params(reply).get_bool("allow_sending_without_reply", allow_missing)
    else:
        message_id = params.get_int("reply_to_message_id")
    if message_id is None:
        return None
    if conv.visible(message_id) is None:
        if allow_missing:
            return None
        raise bad_request("message to be replied not found")
    return message_id


@api_method("sendMessage")
async def send_message(state: EmulatorState, bot: BotAccount, params: Params) -> Any:
    conv = state.conversation(bot, params.chat_id())
    text, entities = format_text(params, "text", "parse_mode", "entities")
    markup = reply_markup(params)
    reply_to = _reply_to(conv, params)
    state.check_flood(conv)
    message = state.new_message(
        conv,
        from_bot=True,
        text=check_text(text),
        entities=entities,
        reply_markup=markup,
        reply_to=reply_to,
    )
    return message_dict(state, bot, message)


def _stored_upload(state: EmulatorState, upload: Upload, kind: str) -> StoredFile:
    if kind == "photo":
        size = image_size(upload.data)
        if size is None:
            raise bad_request("IMAGE_PROCESS_FAILED")
        width, height = size
        if width + height > 10_000 or max(width, height) > 20 * min(width, height):
            raise bad_request("PHOTO_INVALID_DIMENSIONS")
        mime = image_mime(upload.data)
        return state.store_file(
            upload.data,
            folder="photos",
            extension=extension_for(mime, None),
            mime_type=mime,
            size=size,
        )
    mime = guess_mime(upload.filename, upload.content_type)
    return state.store_file(
        upload.data,
        folder="documents",
        extension=extension_for(mime, upload.filename),
        mime_type=mime,
        file_name=upload.filename,
    )


def _input_file(state: EmulatorState, params: Params, field: str, kind: str) -> StoredFile:
    """The file sent as ``field``: an upload, an ``attach://`` part or a known file_id."""
    upload = params.uploads.get(field)
    if upload is not None:
        return _stored_upload(state, upload, kind)
    value = params.get_str(field)
    if value is None:
        raise bad_request(f"there is no {kind} in the request")
    if value.startswith("attach://"):
        attached = params.uploads.get(value[len("attach://") :])
        if attached is None:
            raise bad_request(f"wrong file identifier/HTTP URL specified: no part {value}")
        return _stored_upload(state, attached, kind)
    if value.lower().startswith(("http://", "https://")):
        raise bad_request("failed to get HTTP URL content: the emulator does not download URLs")
    stored = state.files.get(value)
    if stored is None:
        raise bad_request("wrong file identifier/HTTP URL specified")
    if (kind == "photo") != stored.file_path.startswith("photos/"):
        raise bad_request("type of file mismatch")
    return stored


async def _send_media(
    state: EmulatorState, bot: BotAccount, params: Params, kind: str
) -> dict[str, Any]:
    conv = state.conversation(bot, params.chat_id())
    caption, caption_entities = format_text(params, "caption", "parse_mode", "caption_entities")
    check_caption(caption)
    markup = reply_markup(params)
    reply_to = _reply_to(conv, params)
    stored = _input_file(state, params, kind, kind)
    state.check_flood(conv)
    message = state.new_message(
        conv,
        from_bot=True,
        caption=caption or None,
        caption_entities=caption_entities if caption else [],
        reply_markup=markup,
        reply_to=reply_to,
        **{kind: stored},
    )
    return message_dict(state, bot, message)


@api_method("sendPhoto")
async def send_photo(state: EmulatorState, bot: BotAccount, params: Params) -> Any:
    return await _send_media(state, bot, params, "photo")


@api_method("sendDocument")
async def send_document(state: EmulatorState, bot: BotAccount, params: Params) -> Any:
    return await _send_media(state, bot, params, "document")


@api_method("sendMediaGroup")
async def send_media_group(state: EmulatorState, bot: BotAccount, params: Params) -> Any:
    conv = state.conversation(bot, params.chat_id())
    media = params.get_json("media", error="can't parse media JSON object")
    if not isinstance(media, list) or not 2 <= len(media) <= 10:
        raise bad_request("media must include 2-10 items")
    kinds = {item.get("type") if isinstance(item, dict) else None for item in media}
    if not kinds <= {"photo", "document"}:
        raise bad_request("the emulator supports only photo and document media groups")
    if len(kinds) > 1:
        raise bad_request("document can't be mixed with other media types")
    reply_to = _reply_to(conv, params)
    prepared = []
    for item in media:
        item_params = Params(item, params.uploads)
        caption, caption_entities = format_text(
            item_params, "caption", "parse_mode", "caption_entities"
        )
        check_caption(caption)
        kind = str(item["type"])
        prepared.append(
            (kind, _input_file(state, item_params, "media", kind), caption, caption_entities)
        )
    state.check_flood(conv)
    group = state.next_media_group_id()
    messages = []
    for kind, stored, caption, caption_entities in prepared:
        message = state.new_message(
            conv,
            from_bot=True,
            caption=caption or None,
            caption_entities=caption_entities if caption else [],
            reply_to=reply_to,
            media_group_id=group,
            **{kind: stored},
        )
        messages.append(message_dict(state, bot, message))
    return messages


def _editable(
    state: EmulatorState, bot: BotAccount, params: Params
) -> tuple[Conversation, StoredMessage]:
    if params.has("inline_message_id"):
        raise bad_request("the emulator does not support inline messages")
    conv = state.conversation(bot, params.chat_id())
    message = conv.visible(params.need_int("message_id"))
    if message is None:
        raise bad_request("message to edit not found")
    if not message.from_bot:
        raise bad_request("message can't be edited")
    return conv, message


@api_method("editMessageText")
async def edit_message_text(state: EmulatorState, bot: BotAccount, params: Params) -> Any:
    conv, message = _editable(state, bot, params)
    text, entities = format_text(params, "text", "parse_mode", "entities")
    text = check_text(text)
    markup = reply_markup(params, inline_only=True)
    if message.text is None:
        raise bad_request("there is no text in the message to edit")
    if (text, entities, markup) == (message.text, message.entities, message.reply_markup):
        raise bad_request(NOT_MODIFIED)
    state.check_flood(conv)
    state.record_edit(message, text=text, entities=entities, reply_markup=markup)
    return message_dict(state, bot, message)


@api_method("editMessageCaption")
async def edit_message_caption(state: EmulatorState, bot: BotAccount, params: Params) -> Any:
    conv, message = _editable(state, bot, params)
    caption, entities = format_text(params, "caption", "parse_mode", "caption_entities")
    check_caption(caption)
    markup = reply_markup(params, inline_only=True)
    if message.photo is None and message.document is None:
        raise bad_request("there is no caption in the message to edit")
    caption, entities = (caption, entities) if caption else (None, [])
    current = (message.caption, message.caption_entities, message.reply_markup)
    if (caption, entities, markup) == current:
        raise bad_request(NOT_MODIFIED)
    state.check_flood(conv)
    state.record_edit(message, caption=caption, caption_entities=entities, reply_markup=markup)
    return message_dict(state, bot, message)


@api_method("editMessageReplyMarkup")
async def edit_message_reply_markup(state: EmulatorState, bot: BotAccount, params: Params) -> Any:
    conv, message = _editable(state, bot, params)
    markup = reply_markup(params, inline_only=True)
    if markup == message.reply_markup:
        raise bad_request(NOT_MODIFIED)
    state.check_flood(conv)
    state.record_edit(message, reply_markup=markup)
    return message_dict(state, bot, message)


@api_method("deleteMessage")
async def delete_message(state: EmulatorState, bot: BotAccount, params: Params) -> Any:
    conv = state.conversation(bot, params.chat_id())
    message = conv.visible(params.need_int("message_id"))
    if message is None:
        raise bad_request("message to delete not found")
    message.deleted = True
    state.touch(message)
    return True


@api_method("deleteMessages")
async def delete_messages(state: EmulatorState, bot: BotAccount, params: Params) -> Any:
    conv = state.conversation(bot, params.chat_id())
    ids = params.get_json("message_ids", error="can't parse message_ids JSON object")
    if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
        raise bad_request("message_ids must include 1-100 identifiers")
    for message_id in ids:
        message = conv.visible(int(message_id))
        if message is not None:
            message.deleted = True
            state.touch(message)
    return True


@api_method("sendChatAction")
async def send_chat_action(state: EmulatorState, bot: BotAccount, params: Params) -> Any:
    conv = state.conversation(bot, params.chat_id())
    action = params.get_str("action", required=True)
    if action not in CHAT_ACTIONS:
        raise bad_request("wrong parameter action in request")
    state.set_chat_action(conv, action)
    return True
