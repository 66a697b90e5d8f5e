"""The real python-telegram-bot ``Bot`` against the Bot API emulator on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from telegram import Bot, BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, InputMediaPhoto
from telegram.constants import ParseMode
from telegram.error import BadRequest, EndPointNotFound, InvalidToken, RetryAfter

from bot.emulator import EmulatorClient, EmulatorError, RunningEmulator, start_emulator
from bot.emulator.testing import make_png


@pytest.fixture
async def emulator() -> AsyncIterator[RunningEmulator]:
    running = await start_emulator(now=lambda: 1_750_000_000.0)
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def bot(emulator: RunningEmulator) -> AsyncIterator[Bot]:
    client = Bot(
        emulator.token, base_url=emulator.api_base_url, base_file_url=emulator.file_base_url
    )
    async with client:
        yield client


@pytest.fixture
async def user(emulator: RunningEmulator) -> AsyncIterator[EmulatorClient]:
    async with emulator.client() as client:
        yield client


def keyboard(*pairs: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(t, callback_data=d) for t, d in pairs]])


async def test_get_me(bot: Bot) -> None:
    me = await bot.get_me()
    assert me.is_bot and me.username == "centaur_bot" and me.id == 123456789
    assert me.can_join_groups is True


async def test_send_message_with_html_and_keyboard(
    bot: Bot, user: EmulatorClient, emulator: RunningEmulator
) -> None:
    sent = await bot.send_message(
        emulator.user_id,
        "  <b>AAPL</b> &amp; <i>MU</i> &lt;3 <a href='https://example.org'>x</a>\n",
        parse_mode=ParseMode.HTML,
        reply_markup=keyboard(("Allow", "allow"), ("Not today", "deny")),
    )
    assert sent.text == "AAPL & MU <3 x"
    assert [(e.type, e.offset, e.length) for e in sent.entities] == [
        ("bold", 0, 4),
        ("italic", 7, 2),
        ("text_link", 13, 1),
    ]
    assert sent.chat.id == emulator.user_id and sent.chat.type == "private"
    assert sent.from_user is not None and sent.from_user.is_bot
    assert sent.date.timestamp() == 1_750_000_000
    assert sent.reply_markup is not None
    assert sent.reply_markup.inline_keyboard[0][1].callback_data == "deny"
    [entry] = await user.transcript()
    assert entry["from"] == "bot" and entry["message_id"] == sent.message_id
    assert entry["html"] == '<b>AAPL</b> &amp; <i>MU</i> &lt;3 <a href="https://example.org">x</a>'
    assert [b["text"] for b in entry["keyboard"][0]] == ["Allow", "Not today"]


async def test_edit_not_modified_and_markup_semantics(
    bot: Bot, user: EmulatorClient, emulator: RunningEmulator
) -> None:
    markup = keyboard(("Refresh", "refresh"))
    sent = await bot.send_message(emulator.user_id, "<b>status</b>", "HTML", reply_markup=markup)
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text(
            "<b>status</b>",
            emulator.user_id,
            sent.message_id,
            parse_mode="HTML",
            reply_markup=markup,
        )
    edited = await bot.edit_message_text(
        "status v2", emulator.user_id, sent.message_id, reply_markup=markup
    )
    assert isinstance(edited, type(sent)) and edited.text == "status v2" and edited.edit_date
    # Without reply_markup, Telegram removes the keyboard; then only the markup edit is new.
    await bot.edit_message_text("status v2", emulator.user_id, sent.message_id)
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_reply_markup(emulator.user_id, sent.message_id)
    [entry] = await user.transcript()
    assert entry["edit_count"] == 2 and entry["keyboard"] == [] and entry["edited"]
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("x", emulator.user_id, 999)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("<foo>x</foo>", 'Unsupported start tag "foo" at byte offset 0'),
        ("<b>unclosed", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("price < 5", 'Unsupported start tag "" at byte offset 6'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("<b", "Unclosed start tag at byte offset 0"),
        ('<span class="x">y</span>', 'Tag "span" must have class "tg-spoiler"'),
    ],
)
async def test_html_errors(bot: Bot, emulator: RunningEmulator, text: str, error: str) -> None:
    with pytest.raises(BadRequest, match="Can't parse entities") as caught:
        await bot.send_message(emulator.user_id, text, parse_mode="HTML")
    assert error.lower() in str(caught.value).lower()  # PTB lower-cases the description


async def test_text_and_caption_limits(bot: Bot, emulator: RunningEmulator) -> None:
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(emulator.user_id, "x" * 4097)
    assert (await bot.send_message(emulator.user_id, "x" * 4096)).text == "x" * 4096
    # the limit counts the parsed text, not the markup
    await bot.send_message(emulator.user_id, "<b>" + "y" * 4096 + "</b>", parse_mode="HTML")
    with pytest.raises(BadRequest, match="Message text is empty"):
        await bot.send_message(emulator.user_id, "<b> </b>", parse_mode="HTML")
    with pytest.raises(BadRequest, match="Message caption is too long"):
        await bot.send_photo(emulator.user_id, make_png(), caption="c" * 1025)
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(42, "who?")


async def test_button_validation(bot: Bot, emulator: RunningEmulator) -> None:
    with pytest.raises(BadRequest, match="Button_data_invalid"):
        await bot.send_message(emulator.user_id, "x", reply_markup=keyboard(("b", "d" * 65)))
    ok = await bot.send_message(emulator.user_id, "x", reply_markup=keyboard(("b", "é" * 32)))
    assert ok.reply_markup is not None


async def test_photo_and_document_upload_and_download(
    bot: Bot, user: EmulatorClient, emulator: RunningEmulator
) -> None:
    png = make_png(7, 5)
    sent = await bot.send_photo(emulator.user_id, png, caption="<b>chart</b>", parse_mode="HTML")
    photo = sent.photo[-1]
    assert (photo.width, photo.height, photo.file_size) == (7, 5, len(png))
    assert sent.caption == "chart" and sent.caption_entities[0].type == "bold"
    file = await bot.get_file(photo.file_id)
    assert file.file_path is not None and file.file_path.startswith(emulator.file_base_url)
    assert bytes(await file.download_as_bytearray()) == png
    # re-sending by file_id does not upload again
    again = await bot.send_photo(emulator.user_id, photo.file_id)
    assert again.photo[-1].file_id == photo.file_id

    doc = await bot.send_document(emulator.user_id, b"date,pnl\n", filename="report.csv")
    assert doc.document is not None and doc.document.file_name == "report.csv"
    assert doc.document.mime_type == "text/csv"
    data = await (await bot.get_file(doc.document.file_id)).download_as_bytearray()
    assert bytes(data) == b"date,pnl\n"

    with pytest.raises(BadRequest, match="Image_process_failed"):
        await bot.send_photo(emulator.user_id, b"not an image")
    entries = await user.transcript()
    assert entries[0]["photo"]["url"] == f"/media/{photo.file_id}"
    assert entries[0]["caption_html"] == "<b>chart</b>"
    assert entries[2]["document"]["file_name"] == "report.csv"
    photo_url = emulator.base + entries[0]["photo"]["url"]
    async with aiohttp.ClientSession() as session, session.get(photo_url) as response:
        assert response.content_type == "image/png" and await response.read() == png


async def test_media_group(bot: Bot, emulator: RunningEmulator) -> None:
    media = [InputMediaPhoto(make_png(3, 3), caption="one"), InputMediaPhoto(make_png(4, 4))]
    messages = await bot.send_media_group(emulator.user_id, media)
    assert len(messages) == 2 and messages[0].media_group_id == messages[1].media_group_id
    assert messages[1].photo[-1].width == 4 and messages[0].caption == "one"


async def test_unknown_method_and_token(bot: Bot, emulator: RunningEmulator) -> None:
    # Telegram answers 404 "Not Found" for unknown methods; PTB names the endpoint
    with pytest.raises(EndPointNotFound, match="Endpoint 'fooBar' not found"):
        await bot.do_api_request("fooBar")
    stranger = Bot("1:wrong", base_url=emulator.api_base_url)
    with pytest.raises(InvalidToken, match="rejected by the server"):
        async with stranger:  # initialize() calls getMe, which answers 401 Unauthorized
            pass
    await stranger.shutdown()
    # method names are case-insensitive, and GET + query parameters work
    async with aiohttp.ClientSession() as session:
        url = f"{emulator.api_base_url}{emulator.token}/GETME"
        async with session.get(url) as response:
            assert (await response.json())["result"]["username"] == "centaur_bot"
        json_body = {
            "chat_id": emulator.user_id,
            "text": "json",
            "reply_markup": {"inline_keyboard": [[{"text": "a", "callback_data": "a"}]]},
        }
        url = f"{emulator.api_base_url}{emulator.token}/sendMessage"
        async with session.post(url, json=json_body) as response:
            assert (await response.json())["result"]["reply_markup"]["inline_keyboard"]


async def test_flood_control_raises_retry_after(
    bot: Bot, user: EmulatorClient, emulator: RunningEmulator
) -> None:
    await user.set_flood(2, per_seconds=60, retry_after=3)
    await bot.send_message(emulator.user_id, "one")
    await bot.send_message(emulator.user_id, "two")
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(emulator.user_id, "three")
    assert "Retry in 3 seconds" in str(caught.value) or "0:00:03" in str(caught.value)
    await user.set_flood(None)
    await bot.send_message(emulator.user_id, "three")
    assert [m["text"] for m in await user.transcript()] == ["one", "two", "three"]


async def test_long_poll_wakes_promptly_and_offsets_confirm(bot: Bot, user: EmulatorClient) -> None:
    started = time.monotonic()
    poll = asyncio.create_task(bot.get_updates(timeout=10))
    await asyncio.sleep(0.2)
    await user.send("/start@centaur_bot now")
    updates = await asyncio.wait_for(poll, 3)
    assert time.monotonic() - started < 2
    [update] = updates
    assert update.message is not None and update.message.text == "/start@centaur_bot now"
    assert update.message.from_user is not None and not update.message.from_user.is_bot
    [entity] = update.message.entities
    assert (entity.type, entity.offset, entity.length) == ("bot_command", 0, 18)
    # unconfirmed updates come again; a higher offset forgets them
    assert [u.update_id for u in await bot.get_updates(timeout=0)] == [update.update_id]
    assert await bot.get_updates(offset=update.update_id + 1, timeout=0) == ()
    for text in ("a", "b", "c"):
        await user.send(text)
    latest = await bot.get_updates(offset=-1, timeout=0)
    assert [u.message.text for u in latest if u.message] == ["c"]
    assert len(await bot.get_updates(timeout=0)) == 1


async def test_drop_pending_updates_and_allowed_updates(bot: Bot, user: EmulatorClient) -> None:
    await user.send("old")
    assert (await bot.get_webhook_info()).pending_update_count == 1
    assert await bot.delete_webhook(drop_pending_updates=True)
    assert await bot.get_updates(timeout=0) == ()
    await bot.get_updates(timeout=0, allowed_updates=["callback_query"])
    await user.send("ignored, messages are not allowed")
    assert await bot.get_updates(timeout=0) == ()


async def test_callback_query_answer_and_delete(
    bot: Bot, user: EmulatorClient, emulator: RunningEmulator
) -> None:
    sent = await bot.send_message(emulator.user_id, "Draft?", reply_markup=keyboard(("Yes", "y")))
    with pytest.raises(EmulatorError, match="404"):
        await user.press(sent.message_id, "nope")
    query_id = await user.press_button("Yes")
    [update] = await bot.get_updates(timeout=1)
    query = update.callback_query
    assert query is not None and query.id == query_id and query.data == "y"
    assert query.message is not None and query.message.message_id == sent.message_id
    assert query.from_user.id == emulator.user_id and query.chat_instance
    assert await query.answer("Drafted", show_alert=True)
    with pytest.raises(BadRequest, match="Query is too old"):
        await query.answer()
    [entry] = await user.transcript()
    assert entry["callback_answers"][0] | {"answered": True} == {
        "id": query_id,
        "data": "y",
        "user_id": emulator.user_id,
        "answered": True,
        "text": "Drafted",
        "show_alert": True,
        "url": None,
    }
    assert await bot.delete_message(emulator.user_id, sent.message_id)
    with pytest.raises(BadRequest, match="Message to delete not found"):
        await bot.delete_message(emulator.user_id, sent.message_id)
    assert (await user.transcript())[0]["deleted"] is True
    with pytest.raises(EmulatorError, match="404"):
        await user.press(sent.message_id, "y")


async def test_commands_chat_action_and_reply(
    bot: Bot, user: EmulatorClient, emulator: RunningEmulator
) -> None:
    await bot.set_my_commands([BotCommand("status", "Account status"), BotCommand("kill", "Flat")])
    assert [c.command for c in await bot.get_my_commands()] == ["status", "kill"]
    assert (await user.info())["commands"][0] == {
        "command": "status",
        "description": "Account status",
    }
    with pytest.raises(BadRequest, match="Bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Bad-Name", "x")])
    assert await bot.delete_my_commands()
    assert await bot.get_my_commands() == ()

    assert await bot.send_chat_action(emulator.user_id, "typing")
    first = await bot.send_message(emulator.user_id, "first")
    reply = await bot.send_message(emulator.user_id, "second", reply_to_message_id=first.message_id)
    assert reply.reply_to_message is not None
    assert reply.reply_to_message.message_id == first.message_id
    with pytest.raises(BadRequest, match="Message to be replied not found"):
        await bot.send_message(emulator.user_id, "x", reply_to_message_id=999)


async def test_wait_for_and_reset(
    bot: Bot, user: EmulatorClient, emulator: RunningEmulator
) -> None:
    async def later() -> None:
        await asyncio.sleep(0.2)
        await bot.send_message(emulator.user_id, "late hello")

    task = asyncio.create_task(later())
    found = await user.wait_for_text("late", timeout=3)
    await task
    assert found["text"] == "late hello"
    with pytest.raises(TimeoutError):
        await user.wait_for(lambda m: m["text"] == "never", timeout=0.3)
    await user.reset()
    assert await user.transcript() == []
    # update ids never restart, so a running bot's offset stays valid after a reset
    await user.send("after reset")
    assert len(await bot.get_updates(timeout=0)) == 1
