"""`build_application`: the one function that wires the Telegram bot.

    app = build_application(services, settings, clock=clock)
    await start_bot(app)        # inside the process's one event loop (with the engines)
    ...
    await stop_bot(app)

The Bot API base URL comes from TELEGRAM_API_BASE_URL (Telegram's by default), and the
file URL is derived from it, so the same bot runs against Telegram or the local emulator
unchanged. Polling drops the updates queued while the bot was offline: a command typed
an hour ago ("/buy ...", a [Confirm] tap) must not act now. Sends go through
AIORateLimiter (Telegram's flood limits; RetryAfter is waited out and retried).

Updates are handled concurrently (`KillFirstProcessor`): a Confirm can sit minutes in a
failing broker's retries, and a /kill tapped meanwhile must not queue behind it. Ordinary
updates share ORDINARY_UPDATES slots; /kill and its buttons never wait for one of those.
Handlers therefore never assume they run alone: every in-flight guard checks and claims
in one step with no await in between (see bot/context.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, cast

from loguru import logger
from telegram import BotCommand, LinkPreviewOptions, Update
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    BaseUpdateProcessor,
    ContextTypes,
    Defaults,
    TypeHandler,
)

from bot.access import AccessPolicy, gate
from bot.callbacks import Action, CallbackError, decode
from bot.context import BotData, CentaurApp, CentaurContext, Deps, UserData
from bot.handlers import register_all
from bot.handlers.cards import CardDesk
from bot.handlers.start_help import COMMANDS
from bot.notifier import POLL_SECONDS, Notifier
from core.audit import AuditLog
from core.clock import Clock
from core.notifications import NotificationService
from core.report_service import ReportService
from core.services import TradingServices
from core.settings import TELEGRAM_DEFAULT_API_BASE_URL, Settings

ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]
RATE_LIMIT_RETRIES = 3
# Ordinary updates in flight at once. Each may hold a broker call, so the number is kept
# small; more wait in order for a free slot.
ORDINARY_UPDATES = 16
# The library's own bound on everything in flight (its default for "concurrent"). Kill
# updates count only against this one, so they find a slot while ORDINARY_UPDATES are busy.
ALL_UPDATES = 256
KILL_ACTIONS = frozenset({Action.KILL_PREVIEWED, Action.KILL_SURE, Action.KILL_ABORT})


def is_kill(update: object) -> bool:
    """/kill, the menu's Kill button, or one of the kill card's buttons."""
    if not isinstance(update, Update):
        return False
    message = update.message
    if message is not None and message.text:
        word = message.text.split(maxsplit=1)[0] if message.text.strip() else ""
        return word.split("@", 1)[0].lower() == "/kill"
    query = update.callback_query
    if query is None:
        return False
    try:
        callback = decode(query.data)
    except CallbackError:
        return False
    if callback.action is Action.MENU:
        return callback.args == ("kill",)
    return callback.action in KILL_ACTIONS


class KillFirstProcessor(BaseUpdateProcessor):
    """Concurrent updates, with /kill never queued behind slow ordinary ones.

    The base class bounds all updates (`ALL_UPDATES`); ordinary updates also take one of
    `ordinary` slots, kill updates do not. Strangers' updates are ordinary: the access
    gate drops them at once, so they hold a slot only for that moment.
    """

    def __init__(self, ordinary: int = ORDINARY_UPDATES, total: int = ALL_UPDATES) -> None:
        if not 0 < ordinary < total:
            raise ValueError(f"need 0 < ordinary ({ordinary}) < total ({total})")
        super().__init__(total)
        self._ordinary = asyncio.Semaphore(ordinary)

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        if is_kill(update):
            await coroutine
            return
        async with self._ordinary:
            await coroutine

    async def initialize(self) -> None:
        """Nothing to allocate: the semaphore is made with the processor."""

    async def shutdown(self) -> None:
        """Nothing to free: updates in flight are awaited by the Application itself."""


def file_base_url(api_base_url: str) -> str:
    """https://api.telegram.org/bot -> https://api.telegram.org/file/bot (same host)."""
    base = api_base_url.rstrip("/")
    if base.endswith("/bot"):
        return base[: -len("/bot")] + "/file/bot"
    return base + "/file/bot"


def build_application(
    services: TradingServices,
    settings: Settings,
    *,
    clock: Clock,
    notifications: NotificationService | None = None,
    audit: AuditLog | None = None,
    poll_seconds: float = POLL_SECONDS,
    reports: ReportService | None = None,
) -> CentaurApp:
    """The bot: handlers, access gate, error handler, command menu, notifier, base URL."""
    secrets = settings.secrets
    if secrets.TELEGRAM_BOT_TOKEN is None:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set")
    api_url = secrets.TELEGRAM_API_BASE_URL or TELEGRAM_DEFAULT_API_BASE_URL
    owned = notifications is None
    notifications = notifications or NotificationService.for_services(services, clock)
    audit = audit or AuditLog(services.engine().ctx.ledger)
    access = AccessPolicy.from_secrets(secrets)
    context_types = ContextTypes(context=CentaurContext, bot_data=BotData, user_data=UserData)
    builder = (
        Application.builder()
        .token(secrets.TELEGRAM_BOT_TOKEN.get_secret_value())
        .base_url(api_url)
        .base_file_url(file_base_url(api_url))
        .context_types(context_types)
        .concurrent_updates(KillFirstProcessor())
        .rate_limiter(AIORateLimiter(max_retries=RATE_LIMIT_RETRIES))
        .defaults(
            Defaults(
                parse_mode=ParseMode.HTML,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        )
        .job_queue(None)
        .post_init(_post_init)
        .post_stop(_post_stop)
        .post_shutdown(_post_shutdown)
    )
    app = cast(CentaurApp, builder.build())
    reports = reports or ReportService(settings.data_dir)
    deps = Deps(services, settings, clock, notifications, audit, access, reports)
    app.bot_data.configure(deps, CardDesk(app.bot, notifications))
    app.bot_data.notifier = Notifier(app.bot, deps, app.bot_data, poll_seconds=poll_seconds)
    app.bot_data.owns_notifications = owned
    app.add_handler(TypeHandler(Update, gate), group=-1)
    register_all(app)
    if not access.users:
        logger.warning("TELEGRAM_ALLOWED_USERS is empty: the bot will answer nobody")
    return app


async def _post_init(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    try:
        await app.bot.set_my_commands([BotCommand(name, text[:256]) for name, text in COMMANDS])
    except TelegramError as exc:  # the menu is a convenience: the bot works without it
        logger.warning("could not set the command menu: {}", exc)
    notifier = app.bot_data.notifier
    if isinstance(notifier, Notifier):
        notifier.start()


async def _post_stop(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    notifier = app.bot_data.notifier
    if isinstance(notifier, Notifier):
        await notifier.stop()


async def _post_shutdown(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    await _post_stop(app)
    data = app.bot_data
    if isinstance(data, BotData) and data.owns_notifications:
        data.deps.notifications.close()  # stop listening to the engines' buses


async def start_bot(app: CentaurApp, *, poll_timeout: float = 10.0) -> None:
    """Start inside a running loop (what `run_polling` does, minus owning the loop)."""
    await app.initialize()
    if app.post_init is not None:
        await app.post_init(app)
    assert app.updater is not None
    await app.updater.start_polling(
        poll_interval=0.0,
        timeout=int(poll_timeout),
        drop_pending_updates=True,
        allowed_updates=ALLOWED_UPDATES,
    )
    await app.start()


async def stop_bot(app: CentaurApp) -> None:
    if app.updater is not None and app.updater.running:
        await app.updater.stop()
    if app.running:
        await app.stop()
    if app.post_stop is not None:
        await app.post_stop(app)
    await app.shutdown()
    if app.post_shutdown is not None:
        await app.post_shutdown(app)


def run_bot(app: CentaurApp) -> None:
    """Own the loop and poll until a stop signal (the bot alone, no engine in-process)."""
    app.run_polling(drop_pending_updates=True, allowed_updates=ALLOWED_UPDATES)


__all__ = [
    "ALLOWED_UPDATES",
    "ORDINARY_UPDATES",
    "KillFirstProcessor",
    "build_application",
    "file_base_url",
    "is_kill",
    "run_bot",
    "start_bot",
    "stop_bot",
]
