"""The error handler: log it (redacted by core.logs), tell the user one honest line.

Refusals core explains (a bad price, a locked day) never get here: the handler envelope
answers them. What arrives here is unexpected, so the reply does not guess what state
things are in: it points at /status. Network trouble talking to Telegram is only logged
(the user cannot be told anyway, and AIORateLimiter / the notifier retry).
"""

from __future__ import annotations

import contextlib

from loguru import logger
from telegram import Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError

from bot.context import CentaurApp, CentaurContext
from bot.text import esc


async def on_error(update: object, context: CentaurContext) -> None:
    error = context.error
    # BadRequest is a NetworkError subclass in PTB, but it is our mistake, not the network's.
    if isinstance(error, (NetworkError, RetryAfter)) and not isinstance(error, BadRequest):
        logger.warning("telegram: {}: {}", type(error).__name__, error)
        return
    logger.opt(exception=error).error("update failed: {}", type(error).__name__)
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    user = update.effective_user
    if not context.deps.access.allows(user.id if user else None, update.effective_chat.id):
        return
    if update.callback_query is not None:
        # Already answered by the handler? Then the message below says it.
        with contextlib.suppress(TelegramError):
            await update.callback_query.answer("Something went wrong.")
    text = (
        f"⚠️ Something went wrong ({esc(type(error).__name__)}). It is logged. "
        "Check /status before trying again."
    )
    try:
        await context.bot.send_message(update.effective_chat.id, text, parse_mode=ParseMode.HTML)
    except TelegramError as exc:
        logger.warning("could not report the error to the chat: {}", exc)


def register(app: CentaurApp) -> None:
    app.add_error_handler(on_error)


__all__ = ["on_error", "register"]
