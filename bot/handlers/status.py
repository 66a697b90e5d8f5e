"""/status: the account at a glance, with [Refresh] editing the same message in place."""

from __future__ import annotations

from telegram import Update
from telegram.ext import CallbackQueryHandler

from bot.callbacks import Action, Callback, pattern
from bot.context import CentaurApp, CentaurContext
from bot.handlers.common import (
    Answer,
    Outcome,
    Screen,
    button,
    command,
    command_handler,
    edit_query,
    reply,
)
from bot.keyboards import status_keyboard
from bot.parsing import no_args
from bot.render import render_status


async def status_screen(context: CentaurContext) -> Screen:
    snapshot = await context.services.status()
    return Screen(render_status(snapshot), status_keyboard())


@command("status")
async def status(update: Update, context: CentaurContext) -> Outcome:
    no_args(context.args or [], "status")
    await reply(update, context, await status_screen(context))
    return "shown"


@button("status_refresh")
async def refresh(
    update: Update, context: CentaurContext, _cb: Callback, answer: Answer
) -> Outcome:
    await answer()
    await edit_query(update, context, await status_screen(context))
    return "refreshed"


def register(app: CentaurApp) -> None:
    app.add_handler(command_handler("status", status))
    app.add_handler(CallbackQueryHandler(refresh, pattern=pattern(Action.STATUS_REFRESH)))


__all__ = ["refresh", "register", "status", "status_screen"]
