"""The day's master switch and SAFE MODE: /allow, /deny, /resume, [Allow] [Not today]."""

from __future__ import annotations

from telegram import Update
from telegram.ext import CallbackQueryHandler

from bot.callbacks import Action, Callback, pattern
from bot.context import CentaurApp, CentaurContext
from bot.handlers.common import (
    Answer,
    Outcome,
    Result,
    Screen,
    actor_of,
    button,
    command,
    command_handler,
    edit_query,
    reply,
)
from bot.parsing import no_args
from bot.render import render_day_answer, render_resume

QUESTION = "Allow trading today?"


async def answer_day(update: Update, context: CentaurContext, allowed: bool) -> Screen:
    services, actor = context.services, actor_of(update)
    if allowed:
        state = await services.allow_today(actor=actor)
    else:
        state = await services.deny_today(actor=actor)
    return Screen(render_day_answer(allowed, state))


@command("allow")
async def allow(update: Update, context: CentaurContext) -> Outcome:
    no_args(context.args or [], "allow")
    await reply(update, context, await answer_day(update, context, True))
    return "allowed"


@command("deny")
async def deny(update: Update, context: CentaurContext) -> Outcome:
    no_args(context.args or [], "deny")
    await reply(update, context, await answer_day(update, context, False))
    return "denied"


@command("resume")
async def resume(update: Update, context: CentaurContext) -> Outcome:
    no_args(context.args or [], "resume")
    ok, message = await context.services.resume(actor=actor_of(update))
    await reply(update, context, Screen(render_resume(ok, message)))
    return Result(ok, message)


@button("day_answer")
async def day_button(
    update: Update, context: CentaurContext, cb: Callback, answer: Answer
) -> Outcome:
    allowed = cb.action is Action.DAY_ALLOW
    await answer("Trading allowed today" if allowed else "Not today")
    # The prompt becomes the answer: no stale [Allow] left to tap by mistake later. The
    # 09:45 snapshot above the question (the verdict per symbol) stays.
    screen = await answer_day(update, context, allowed)
    await edit_query(update, context, Screen(_keep_snapshot(update, screen.text)))
    return "allowed" if allowed else "denied"


def _keep_snapshot(update: Update, answer_text: str) -> str:
    """The prompt's snapshot (everything above its question) followed by the answer."""
    query = update.callback_query
    message = query.message if query is not None else None
    text = getattr(message, "text_html", None) if message is not None else None
    if not isinstance(text, str) or QUESTION not in text or "\n\n" not in text:
        return answer_text
    snapshot = text.rsplit("\n\n", 1)[0]
    return f"{snapshot}\n\n{answer_text}"


def register(app: CentaurApp) -> None:
    app.add_handler(command_handler("allow", allow))
    app.add_handler(command_handler("deny", deny))
    app.add_handler(command_handler("resume", resume))
    app.add_handler(
        CallbackQueryHandler(day_button, pattern=pattern(Action.DAY_ALLOW, Action.DAY_DENY))
    )


__all__ = ["allow", "answer_day", "deny", "register", "resume"]
