"""Read-only commands and settings: /positions /orders /pnl /regime /signals /account
/live /whoami /mute /unmute."""

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
from bot.keyboards import accounts_keyboard, levels_keyboard
from bot.parsing import (
    no_args,
    parse_account,
    parse_kind,
    parse_optional_date,
    parse_optional_symbol,
    parse_period,
)
from bot.render import (
    render_account_switched,
    render_accounts,
    render_level_changed,
    render_levels,
    render_live,
    render_orders,
    render_pnl,
    render_positions,
    render_regimes,
    render_signals,
    render_whoami,
)
from core.clock import NEW_YORK
from core.config_models import NOTIFICATION_KINDS_ALWAYS_DELIVERED, NotificationLevel


async def positions_screen(context: CentaurContext) -> Screen:
    services = context.services
    return Screen(render_positions(await services.positions(), services.active_account))


def orders_screen(context: CentaurContext) -> Screen:
    services = context.services
    return Screen(render_orders(services.orders(), services.active_account))


def pnl_screen(context: CentaurContext, period: str = "day") -> Screen:
    return Screen(render_pnl(context.services.pnl(period)))


def regime_screen(context: CentaurContext, symbol: str | None = None) -> Screen:
    return Screen(render_regimes(context.services.regime(symbol), symbol))


def signals_screen(context: CentaurContext, args: list[str] | None = None) -> Screen:
    today = context.now().astimezone(NEW_YORK).date()
    day = parse_optional_date(args or [], today, "signals")
    rows = context.services.signals(day)
    return Screen(render_signals(rows, (day or today).isoformat()))


def levels_screen(context: CentaurContext) -> Screen:
    alerts = context.bot_data.alerts
    today = context.now().astimezone(NEW_YORK).date()
    return Screen(
        render_levels(alerts.levels(), alerts.muted_symbols(today)),
        levels_keyboard(alerts.levels(), NOTIFICATION_KINDS_ALWAYS_DELIVERED),
    )


@command("positions")
async def positions(update: Update, context: CentaurContext) -> Outcome:
    no_args(context.args or [], "positions")
    await reply(update, context, await positions_screen(context))
    return "shown"


@command("orders")
async def orders(update: Update, context: CentaurContext) -> Outcome:
    no_args(context.args or [], "orders")
    await reply(update, context, orders_screen(context))
    return "shown"


@command("pnl")
async def pnl(update: Update, context: CentaurContext) -> Outcome:
    period = parse_period(context.args or [])
    await reply(update, context, pnl_screen(context, period))
    return f"shown {period}"


@command("regime")
async def regime(update: Update, context: CentaurContext) -> Outcome:
    symbol = parse_optional_symbol(context.args or [], "regime")
    await reply(update, context, regime_screen(context, symbol))
    return "shown"


@command("signals")
async def signals(update: Update, context: CentaurContext) -> Outcome:
    await reply(update, context, signals_screen(context, context.args or []))
    return "shown"


@command("account")
async def account(update: Update, context: CentaurContext) -> Outcome:
    name = parse_account(context.args or [])
    services = context.services
    if name is None:
        accounts = services.accounts()
        await reply(update, context, Screen(render_accounts(accounts), accounts_keyboard(accounts)))
        return "listed"
    services.use_account(name)  # KeyError names the accounts there are
    (active,) = [a for a in services.accounts() if a.name == name]
    await reply(update, context, Screen(render_account_switched(active)))
    return f"active: {name}"


@button("account_use")
async def account_use(
    update: Update, context: CentaurContext, cb: Callback, answer: Answer
) -> Outcome:
    services = context.services
    name = cb.text(0)
    services.use_account(name)
    await answer(f"Active account: {name}")
    accounts = services.accounts()
    await edit_query(
        update, context, Screen(render_accounts(accounts), accounts_keyboard(accounts))
    )
    return f"active: {name}"


@command("live")
async def live(update: Update, context: CentaurContext) -> Outcome:
    no_args(context.args or [], "live")
    enabled = context.deps.settings.secrets.CENTAUR_LIVE
    await reply(update, context, Screen(render_live(context.services.accounts(), enabled)))
    return "shown"


@command("whoami")
async def whoami(update: Update, context: CentaurContext) -> Outcome:
    user, chat = update.effective_user, update.effective_chat
    text = render_whoami(
        user.id if user else None, chat.id if chat else None, user.username if user else None
    )
    await reply(update, context, Screen(text))
    return "shown"


@command("mute")
async def mute(update: Update, context: CentaurContext) -> Outcome:
    kind = parse_kind(context.args or [], "mute")
    if kind is None:
        await reply(update, context, levels_screen(context))
        return "listed"
    level = context.bot_data.alerts.set(kind, NotificationLevel.OFF)
    note = (
        "alerts that protect money are silenced, never dropped"
        if level is not NotificationLevel.OFF
        else ""
    )
    await reply(update, context, Screen(render_level_changed(kind, level, note)))
    return f"{kind}: {level}"


@command("unmute")
async def unmute(update: Update, context: CentaurContext) -> Outcome:
    kind = parse_kind(context.args or [], "unmute")
    alerts = context.bot_data.alerts
    if kind is None:
        alerts.reset()
        await reply(update, context, levels_screen(context))
        return "all reset"
    level = alerts.set(kind, NotificationLevel.ON)
    await reply(update, context, Screen(render_level_changed(kind, level)))
    return f"{kind}: {level}"


@button("mute_set")
async def mute_set(
    update: Update, context: CentaurContext, cb: Callback, answer: Answer
) -> Outcome:
    kind = cb.text(0)
    try:
        wanted = NotificationLevel(cb.text(1))
    except ValueError:
        await answer("This button no longer works.")
        return "bad level"
    level = context.bot_data.alerts.set(kind, wanted)
    await answer(f"{kind}: {level.value}")
    await edit_query(update, context, levels_screen(context))
    return f"{kind}: {level}"


def register(app: CentaurApp) -> None:
    for name, fn in (
        ("positions", positions),
        ("orders", orders),
        ("pnl", pnl),
        ("regime", regime),
        ("signals", signals),
        ("account", account),
        ("live", live),
        ("whoami", whoami),
        ("mute", mute),
        ("unmute", unmute),
    ):
        app.add_handler(command_handler(name, fn))
    app.add_handler(CallbackQueryHandler(account_use, pattern=pattern(Action.ACCOUNT_USE)))
    app.add_handler(CallbackQueryHandler(mute_set, pattern=pattern(Action.MUTE_SET)))


__all__ = [
    "levels_screen",
    "orders_screen",
    "pnl_screen",
    "positions_screen",
    "regime_screen",
    "register",
    "signals_screen",
]
