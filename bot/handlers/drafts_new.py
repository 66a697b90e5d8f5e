"""Starting a draft: /buy and /sell with arguments, or entirely with buttons.

/buy -> watchlist -> trigger presets (the signal's trigger, last high + one tick, or a
typed price) -> size presets from the risk budget -> the draft card. The same message is
edited at every step and finally becomes the card, so the chat stays one message long.
/sell -> held positions -> stop presets (or a typed price) -> the stop-sell draft card.

The initial stop when the trader gives only a trigger: today's signal stop for the symbol
if it is below the trigger, else one tick under the last bar's low, else 1% under the
trigger. The card shows it, and [Edit] changes it.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from telegram import Update
from telegram.ext import CallbackQueryHandler

from bot.callbacks import Action, Callback, pattern
from bot.context import CentaurApp, CentaurContext, PendingInput
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
    query_ids,
    reply,
    send,
)
from bot.handlers.drafts_card import INPUT_TIMEOUT, open_card
from bot.keyboards import (
    sell_positions_keyboard,
    sell_stop_keyboard,
    size_keyboard,
    trigger_keyboard,
    watchlist_keyboard,
)
from bot.parsing import parse_buy, parse_sell
from bot.render import (
    TriggerOption,
    render_buy_picker,
    render_prompt,
    render_sell_picker,
    render_sell_stop_picker,
    render_size_picker,
    render_trigger_picker,
)
from core.clock import NEW_YORK
from core.domain import TickRounding, round_to_tick, tick_size
from core.ledger import SignalRow

FALLBACK_STOP = Decimal("0.99")
SELL_OFFSETS = (Decimal("0.5"), Decimal("1"))


def _today(context: CentaurContext) -> date:
    return context.now().astimezone(NEW_YORK).date()


def todays_signal(context: CentaurContext, symbol: str) -> SignalRow | None:
    signal = context.services.latest_signal(symbol)
    if signal is None or signal.session_date != _today(context):
        return None
    return signal


def default_stop(context: CentaurContext, symbol: str, trigger: Decimal) -> Decimal:
    signal = todays_signal(context, symbol)
    if signal is not None and signal.stop < trigger:
        return signal.stop
    bar = context.services.last_bar(symbol)
    if bar is not None and bar.low < trigger:
        below = bar.low - tick_size(bar.low)
        if below > 0:
            return round_to_tick(below, TickRounding.DOWN)
    return round_to_tick(trigger * FALLBACK_STOP, TickRounding.DOWN)


def trigger_options(context: CentaurContext, symbol: str) -> list[TriggerOption]:
    options = []
    signal = todays_signal(context, symbol)
    if signal is not None and signal.stop < signal.trigger:
        options.append(TriggerOption("Signal", signal.trigger, signal.stop))
    bar = context.services.last_bar(symbol)
    if bar is not None:
        trigger = round_to_tick(bar.high + tick_size(bar.high), TickRounding.UP)
        options.append(TriggerOption("High+tick", trigger, default_stop(context, symbol, trigger)))
    return options


def watchlist_screen(context: CentaurContext) -> Screen:
    symbols = list(context.deps.settings.watchlist.watchlist)
    return Screen(render_buy_picker(symbols), watchlist_keyboard(symbols) if symbols else None)


def trigger_screen(context: CentaurContext, symbol: str) -> Screen:
    options = trigger_options(context, symbol)
    bar = context.services.last_bar(symbol)
    text = render_trigger_picker(symbol, bar, todays_signal(context, symbol), options)
    return Screen(text, trigger_keyboard(symbol, options))


async def size_screen(
    context: CentaurContext, symbol: str, trigger: Decimal, stop: Decimal
) -> Screen:
    # `stop` (the structure low) travels on to the draft as information; the picker shows
    # and sizes from the one stop, the protection's first level.
    one_stop, presets = await context.services.size_presets(symbol, trigger)
    if not stop < trigger:
        presets = ()
    text = render_size_picker(symbol, trigger, one_stop, len(presets))
    return Screen(text, size_keyboard(symbol, trigger, stop, presets))


async def sell_screen(context: CentaurContext) -> Screen:
    positions = [p for p in await context.services.positions() if p.qty > 0]
    keyboard = sell_positions_keyboard(positions) if positions else None
    return Screen(render_sell_picker(positions), keyboard)


async def sell_stop_screen(context: CentaurContext, symbol: str) -> Screen:
    held = [p for p in await context.services.positions() if p.symbol == symbol and p.qty > 0]
    if not held:
        return Screen(f"No {symbol} position to sell.")
    position = held[0]
    bar = context.services.last_bar(symbol)
    last = position.market_price or (bar.close if bar is not None else None)
    options = []
    if bar is not None and bar.low > tick_size(bar.low):
        low = round_to_tick(bar.low - tick_size(bar.low), TickRounding.DOWN)
        options.append(TriggerOption("Low-tick", low, low))
    if last is not None:
        for offset in SELL_OFFSETS:
            level = round_to_tick(last * (1 - offset / 100), TickRounding.DOWN)
            options.append(TriggerOption(f"-{offset}%", level, level))
    text = render_sell_stop_picker(position, bar)
    return Screen(text, sell_stop_keyboard(symbol, options))


def claim_picker(context: CentaurContext, chat_id: int, message_id: int) -> Result | None:
    """A second tap on a picker that already became a draft card, or is becoming one right
    now, makes no second draft. None: the picker is claimed for this tap; the caller
    releases it (`context.bot_data.picking`) once the draft is made or refused. No await
    between the check and the claim: updates run concurrently."""
    data = context.bot_data
    draft_id = data.drafted_from.get((chat_id, message_id))
    if draft_id is not None:
        return Result(False, f"double tap: already draft {draft_id}")
    if not data.picking.claim((chat_id, message_id)):
        return Result(False, "double tap: the draft is being made")
    return None


@command("buy")
async def buy(update: Update, context: CentaurContext) -> Outcome:
    args = parse_buy(context.args or [])
    if args.symbol is None:
        await reply(update, context, watchlist_screen(context))
        return "watchlist"
    if args.trigger is None:
        await reply(update, context, trigger_screen(context, args.symbol))
        return f"{args.symbol}: trigger presets"
    stop = default_stop(context, args.symbol, args.trigger)
    if args.qty is None and args.risk_usd is None:
        await reply(update, context, await size_screen(context, args.symbol, args.trigger, stop))
        return f"{args.symbol}: size presets"
    review = await context.services.create_buy_draft(
        args.symbol,
        args.trigger,
        stop,
        qty=args.qty,
        risk_usd=args.risk_usd,
        actor=actor_of(update),
    )
    chat = update.effective_chat
    assert chat is not None
    await open_card(context, review, chat.id)
    return f"draft {review.draft_id}"


@command("sell")
async def sell(update: Update, context: CentaurContext) -> Outcome:
    args = parse_sell(context.args or [])
    if args.symbol is None:
        await reply(update, context, await sell_screen(context))
        return "positions"
    if args.trigger is None:
        await reply(update, context, await sell_stop_screen(context, args.symbol))
        return f"{args.symbol}: stop presets"
    review = await context.services.create_sell_draft(
        args.symbol, args.trigger, qty=args.qty, actor=actor_of(update)
    )
    chat = update.effective_chat
    assert chat is not None
    await open_card(context, review, chat.id)
    return f"draft {review.draft_id}"


@button("buy_pick")
async def buy_pick(
    update: Update, context: CentaurContext, cb: Callback, answer: Answer
) -> Outcome:
    await answer()
    symbol = cb.text(0)
    if cb.action is Action.BUY_SYMBOL:
        await edit_query(update, context, trigger_screen(context, symbol))
        return f"{symbol}: trigger presets"
    if cb.action is Action.BUY_TRIGGER:
        trigger, stop = cb.decimal(1), cb.decimal(2)
        await edit_query(update, context, await size_screen(context, symbol, trigger, stop))
        return f"{symbol} @ {trigger}: size presets"
    trigger, stop, qty = cb.decimal(1), cb.decimal(2), cb.decimal(3)
    chat_id, message_id = query_ids(update)
    if (done := claim_picker(context, chat_id, message_id)) is not None:
        return done
    with context.bot_data.picking.holding([(chat_id, message_id)]):
        review = await context.services.create_buy_draft(
            symbol, trigger, stop, qty=qty, actor=actor_of(update)
        )
        context.bot_data.drafted_from[(chat_id, message_id)] = review.draft_id
    await open_card(context, review, chat_id, message_id)
    return f"draft {review.draft_id}"


@button("sell_pick")
async def sell_pick(
    update: Update, context: CentaurContext, cb: Callback, answer: Answer
) -> Outcome:
    await answer()
    symbol = cb.text(0)
    if cb.action is Action.SELL_SYMBOL:
        await edit_query(update, context, await sell_stop_screen(context, symbol))
        return f"{symbol}: stop presets"
    chat_id, message_id = query_ids(update)
    if (done := claim_picker(context, chat_id, message_id)) is not None:
        return done
    with context.bot_data.picking.holding([(chat_id, message_id)]):
        review = await context.services.create_sell_draft(
            symbol, cb.decimal(1), actor=actor_of(update)
        )
        context.bot_data.drafted_from[(chat_id, message_id)] = review.draft_id
    await open_card(context, review, chat_id, message_id)
    return f"draft {review.draft_id}"


@button("custom_price")
async def custom_price(
    update: Update, context: CentaurContext, cb: Callback, answer: Answer
) -> Outcome:
    await answer()
    symbol = cb.text(0)
    chat_id, message_id = query_ids(update)
    buying = cb.action is Action.BUY_CUSTOM
    kind = "buy_trigger" if buying else "sell_stop"
    context.state.pending = PendingInput(
        kind, chat_id, message_id, context.now() + INPUT_TIMEOUT, symbol=symbol
    )
    prompt = (
        render_prompt(f"the {symbol} trigger, optionally followed by the stop", "191.52 189.90")
        if buying
        else render_prompt(f"the {symbol} stop-sell level", "189.90")
    )
    await send(context, chat_id, Screen(prompt))
    return f"asked {kind}"


def register(app: CentaurApp) -> None:
    app.add_handler(command_handler("buy", buy))
    app.add_handler(command_handler("sell", sell))
    app.add_handler(
        CallbackQueryHandler(
            buy_pick, pattern=pattern(Action.BUY_SYMBOL, Action.BUY_TRIGGER, Action.BUY_SIZE)
        )
    )
    app.add_handler(
        CallbackQueryHandler(sell_pick, pattern=pattern(Action.SELL_SYMBOL, Action.SELL_STOP))
    )
    app.add_handler(
        CallbackQueryHandler(custom_price, pattern=pattern(Action.BUY_CUSTOM, Action.SELL_CUSTOM))
    )


__all__ = [
    "claim_picker",
    "default_stop",
    "register",
    "sell_screen",
    "size_screen",
    "trigger_options",
    "watchlist_screen",
]
