"""What every handler shares: the audit + error envelope, replies, edits, button answers.

Handlers stay thin (parse -> service -> render) because the envelope does the rest:
- `@command(name)`: runs the handler; bad input (`UsageError`) is answered with one
  line and the usage; a refusal from core (ValueError, LookupError, an illegal session
  step, a broker error) with one line of why; anything else goes to the error handler.
  Every outcome is written to the audit table (who, what, arguments, result).
- `@button(name)`: decodes the callback data first (a garbled or old button is answered
  with why and goes no further), gives the handler an `Answer` that answers the callback
  query at most once (a handler answers early, or with the reason a button is stale),
  and answers it anyway at the end so the phone's spinner always stops.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from loguru import logger
from telegram import InlineKeyboardMarkup, Message, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest
from telegram.ext import CommandHandler, filters

from bot.callbacks import Callback, CallbackError, StaleCallback, decode
from bot.context import CentaurContext
from bot.parsing import UsageError
from bot.render.info import render_problem, render_usage
from bot.text import split_html
from core.broker import BrokerError
from core.ledger import AuditKind
from core.services import Actor
from core.session import IllegalSessionTransition

ANSWER_LIMIT = 190  # answerCallbackQuery text: 200 characters at most
# Refusals core explains in words: shown to the user, not treated as bugs.
USER_ERRORS: tuple[type[Exception], ...] = (
    ValueError,
    LookupError,
    IllegalSessionTransition,
    BrokerError,
)


@dataclass(frozen=True, slots=True)
class Screen:
    text: str
    keyboard: InlineKeyboardMarkup | None = None


@dataclass(frozen=True, slots=True)
class Result:
    ok: bool
    text: str


Outcome = Result | str | None
CommandFn = Callable[[Update, CentaurContext], Awaitable[Outcome]]
Handler = Callable[[Update, CentaurContext], Coroutine[Any, Any, None]]


class Answer:
    """Answers one callback query at most once."""

    def __init__(self, update: Update) -> None:
        self._query = update.callback_query
        self.done = False

    async def __call__(self, text: str | None = None, *, alert: bool = False) -> None:
        if self.done or self._query is None:
            return
        self.done = True
        short = None if text is None else text[:ANSWER_LIMIT]
        try:
            await self._query.answer(short, show_alert=alert)
        except BadRequest as exc:  # too old to answer (after a restart): nothing to do
            logger.debug("callback answer failed: {}", exc)


ButtonFn = Callable[[Update, CentaurContext, Callback, Answer], Awaitable[Outcome]]


def reason(exc: BaseException) -> str:
    """One line for the chat (a KeyError's str() would wrap its message in quotes)."""
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    return str(exc) or type(exc).__name__


def actor_of(update: Update) -> Actor:
    user, chat = update.effective_user, update.effective_chat
    name = "telegram"
    if user is not None:
        name = f"tg:{user.username or user.id}"
    return Actor(
        user_id=user.id if user is not None else None,
        chat_id=chat.id if chat is not None else None,
        name=name,
    )


def _audit(
    context: CentaurContext,
    update: Update,
    kind: AuditKind,
    action: str,
    args: str,
    ok: bool,
    result: str,
) -> None:
    actor = actor_of(update)
    context.deps.audit.record(
        kind, action, ok=ok, user_id=actor.user_id, chat_id=actor.chat_id, args=args, result=result
    )


def _settle(outcome: Outcome) -> tuple[bool, str]:
    if isinstance(outcome, Result):
        return outcome.ok, outcome.text
    return True, outcome or "ok"


async def send(
    context: CentaurContext, chat_id: int, screen: Screen, *, silent: bool = False
) -> Message:
    """Send a screen as one or more messages (the keyboard goes under the last part)."""
    parts = split_html(screen.text) or ["(empty)"]
    message: Message | None = None
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        message = await context.bot.send_message(
            chat_id,
            part,
            parse_mode=ParseMode.HTML,
            reply_markup=screen.keyboard if last else None,
            disable_notification=silent,
        )
    assert message is not None
    return message


async def reply(update: Update, context: CentaurContext, screen: Screen) -> Message:
    chat = update.effective_chat
    assert chat is not None
    return await send(context, chat.id, screen)


async def edit(context: CentaurContext, chat_id: int, message_id: int, screen: Screen) -> None:
    """Edit a message in place; an unchanged text is fine (a Refresh with nothing new)."""
    parts = split_html(screen.text) or ["(empty)"]
    try:
        await context.bot.edit_message_text(
            parts[0],
            chat_id=chat_id,
            message_id=message_id,
            parse_mode=ParseMode.HTML,
            reply_markup=screen.keyboard if len(parts) == 1 else None,
        )
    except BadRequest as exc:
        if "not modified" not in str(exc).lower():
            raise
    for i, part in enumerate(parts[1:], start=2):  # rare: a card that outgrew one message
        keyboard = screen.keyboard if i == len(parts) else None
        await context.bot.send_message(
            chat_id, part, parse_mode=ParseMode.HTML, reply_markup=keyboard
        )


async def edit_query(update: Update, context: CentaurContext, screen: Screen) -> None:
    """Edit the message whose button was pressed."""
    query = update.callback_query
    assert query is not None and query.message is not None
    await edit(context, query.message.chat.id, query.message.message_id, screen)


def query_ids(update: Update) -> tuple[int, int]:
    query = update.callback_query
    assert query is not None and query.message is not None
    return query.message.chat.id, query.message.message_id


def command(name: str) -> Callable[[CommandFn], Handler]:
    def decorate(fn: CommandFn) -> Handler:
        @functools.wraps(fn)
        async def wrapper(update: Update, context: CentaurContext) -> None:
            args = " ".join(context.args or [])
            try:
                outcome = await fn(update, context)
            except UsageError as exc:
                await reply(update, context, Screen(render_usage(exc.reason, exc.usage)))
                outcome = Result(False, f"usage: {exc.reason}")
            except USER_ERRORS as exc:
                await reply(update, context, Screen(render_problem(reason(exc))))
                outcome = Result(False, f"refused: {reason(exc)}")
            except Exception as exc:
                _audit(context, update, AuditKind.COMMAND, name, args, False, f"error: {exc!r}")
                raise
            ok, text = _settle(outcome)
            _audit(context, update, AuditKind.COMMAND, name, args, ok, text)

        return wrapper

    return decorate


def button(name: str) -> Callable[[ButtonFn], Handler]:
    def decorate(fn: ButtonFn) -> Handler:
        @functools.wraps(fn)
        async def wrapper(update: Update, context: CentaurContext) -> None:
            query = update.callback_query
            assert query is not None
            data = query.data or ""
            answer = Answer(update)
            try:
                callback = decode(data)
            except StaleCallback:
                await answer(
                    "This button is from an older version: send the command again.", alert=True
                )
                _audit(context, update, AuditKind.BUTTON, name, data, False, "stale version")
                return
            except CallbackError:
                await answer("This button no longer works: send the command again.")
                _audit(context, update, AuditKind.BUTTON, name, data, False, "bad callback data")
                return
            try:
                outcome = await fn(update, context, callback, answer)
            except USER_ERRORS as exc:
                if answer.done:
                    chat = update.effective_chat
                    assert chat is not None
                    await send(context, chat.id, Screen(render_problem(reason(exc))))
                else:
                    await answer(reason(exc), alert=True)
                outcome = Result(False, f"refused: {reason(exc)}")
            except Exception as exc:
                await answer()
                _audit(context, update, AuditKind.BUTTON, name, data, False, f"error: {exc!r}")
                raise
            await answer()
            ok, text = _settle(outcome)
            _audit(context, update, AuditKind.BUTTON, name, data, ok, text)

        return wrapper

    return decorate


def first_name(update: Update) -> str:
    user = update.effective_user
    return user.first_name if user is not None and user.first_name else "there"


def words(args: Sequence[str] | None) -> list[str]:
    return list(args or [])


def command_handler(name: str, fn: Handler) -> CommandHandler[CentaurContext, None]:
    """A command for new messages only: editing an old "/buy ..." must not run it again."""
    return CommandHandler(name, fn, filters=filters.UpdateType.MESSAGE)


__all__ = [
    "USER_ERRORS",
    "Answer",
    "Result",
    "Screen",
    "actor_of",
    "button",
    "command",
    "command_handler",
    "edit",
    "edit_query",
    "first_name",
    "query_ids",
    "reason",
    "reply",
    "send",
    "words",
]
