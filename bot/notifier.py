"""Delivers core's notification outbox to the chat: in order, once, and eventually.

A background task on the Application's loop. It takes the due rows in id order
(`NotificationService.next_due`), delivers each, and marks it: sent (with the Telegram
message id), silenced (its kind is off, or it is routine), or failed with a retry time.
On a failure it stops: later alerts wait behind the one being retried, so the chat never
shows them out of order. Between rounds it sleeps on the injected clock until the next
retry is due or core publishes an event (`wake`).

- Per-kind levels: on (sound), silent (`disable_notification`), off (silenced, kept).
- An event about a draft with a card edits that card in place (a new line on it) instead
  of sending a message; protection events and a closing fill also buzz as a message.
- Over 4096 characters: several messages, cut at line boundaries; a photo's caption is
  cut at 1024 and the rest follows. Parts already sent are not re-sent on a retry.
- Flood control: AIORateLimiter retries RetryAfter itself; if it still fails, the row is
  held until `retry_after`. Network errors back off exponentially (1 s .. 5 min) and
  retry until delivered. Telegram refusing the HTML falls back to the plain text.
"""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from loguru import logger
from telegram import Bot, InlineKeyboardMarkup
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter

from bot.context import BotData, Deps
from bot.handlers.cards import card_side
from bot.keyboards import allow_keyboard, signal_keyboard, unprotected_keyboard
from bot.render import card_line, render_event
from bot.render.day import chart_caption, render_allow_prompt, render_brief, render_report
from bot.text import esc, split_caption, split_html
from core.clock import NEW_YORK
from core.config_models import NotificationLevel
from core.domain import OrderRole
from core.events import (
    AllowPrompt,
    BriefReady,
    DomainEvent,
    KillCompleted,
    OrderEvent,
    OrderFilled,
    PositionUnprotected,
    ProtectionFailed,
    ProtectionPlaced,
    ReportReady,
    RiskRefused,
    SignalRaised,
)
from core.notifications import Notification
from core.report_service import brief_of, report_of

POLL_SECONDS = 5.0
MAX_BACKOFF = 300.0
ALLOW_PROMPT = "allow_prompt"


@dataclass(frozen=True, slots=True)
class Plan:
    """What delivering one row means."""

    text: str | None  # None: nothing to send as a message of its own
    html: bool = True
    keyboard: InlineKeyboardMarkup | None = None
    photo: Path | None = None
    # Photos sent after the text, each with its caption (the day report's charts).
    photos: tuple[tuple[Path, str], ...] = ()


@dataclass(frozen=True, slots=True)
class OnCard:
    chat_id: int
    message_id: int
    only: bool  # the card tells it all: no message of its own


def _seconds(value: object) -> float:
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value) if isinstance(value, (int, float)) else 1.0


class Notifier:
    def __init__(
        self, bot: Bot, deps: Deps, data: BotData, *, poll_seconds: float = POLL_SECONDS
    ) -> None:
        self._bot = bot
        self._deps = deps
        self._data = data
        self._service = deps.notifications
        self._clock = deps.clock
        self._poll = poll_seconds
        self._progress: dict[int, int] = {}  # row id -> parts already sent
        self._task: asyncio.Task[None] | None = None
        self._warned_no_chat = False

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self.run(), name="notifier")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run(self) -> None:
        while True:
            try:
                await self.drain()
            except asyncio.CancelledError:
                raise
            except Exception:
                # A bug must not end delivery for good: log, nap, try again.
                logger.exception("notifier: round failed")
            await self._nap()

    async def _nap(self) -> None:
        retry_at = self._service.next_retry_at()
        seconds = self._poll
        if retry_at is not None:
            seconds = min(seconds, max(0.0, (retry_at - self._clock.now()).total_seconds()))
        await self._service.wait(seconds)

    async def drain(self) -> int:
        """Deliver everything due, in order; returns how many rows were settled."""
        settled = 0
        while due := self._service.next_due():
            for notification in due:
                if not await self.deliver(notification):
                    return settled
                settled += 1
        return settled

    # --- one row ---------------------------------------------------------------------------

    async def deliver(self, n: Notification) -> bool:
        """Settle one row; False when it is held for a retry (stop, keep the order)."""
        chat = n.chat_id or self._deps.access.home_chat
        if chat is None:
            if not self._warned_no_chat:
                logger.warning("notifier: no TELEGRAM_ALLOWED_USERS: alerts stay queued")
                self._warned_no_chat = True
            return False
        level = self._data.alerts.level(n.kind)
        event = n.event()
        if level is NotificationLevel.OFF or self._symbol_muted(event):
            self._service.mark_silenced(n.id)
            return True
        try:
            return await self._deliver(n, event, chat, silent=level is NotificationLevel.SILENT)
        except RetryAfter as exc:
            with warnings.catch_warnings():  # PTB 22 warns about the attribute's future type
                warnings.simplefilter("ignore")
                wait = _seconds(exc.retry_after)
            self._hold(n, f"flood control: retry after {wait:.0f} s", wait)
            return False
        except Forbidden as exc:
            self._hold(n, f"forbidden: {exc}", MAX_BACKOFF)
            return False
        except BadRequest as exc:
            return await self._refused(n, chat, exc)
        except NetworkError as exc:  # includes TimedOut
            self._hold(n, f"network: {exc}", min(MAX_BACKOFF, 2.0 ** min(n.attempts, 9)))
            return False

    async def _deliver(
        self, n: Notification, event: DomainEvent | None, chat: int, *, silent: bool
    ) -> bool:
        if isinstance(event, KillCompleted) and self._absorbed_by_kill_card(n, event):
            return True
        on_card = await self._on_card(event) if event is not None else None
        if on_card is not None and on_card.only:
            self._service.mark_sent(n.id, on_card.message_id, on_card.chat_id)
            return True
        try:
            plan = self._plan(n, event)
        except Exception:  # a rendering bug must not block every alert behind this one
            logger.exception("notifier: #{} could not be rendered; sending its plain text", n.id)
            plan = Plan(n.text, html=False)
        if plan.text is None:
            self._service.mark_silenced(n.id)
            return True
        message_id = await self._send(n, chat, plan, silent=silent)
        self._service.mark_sent(n.id, message_id, chat)
        self._progress.pop(n.id, None)
        return True

    def _hold(self, n: Notification, error: str, seconds: float) -> None:
        logger.warning("notifier: #{} held {:.0f} s: {}", n.id, seconds, error)
        self._service.mark_failed(n.id, error, self._clock.now() + timedelta(seconds=seconds))

    async def _refused(self, n: Notification, chat: int, exc: BadRequest) -> bool:
        """Telegram refused the message itself: plain text once, else give up on it (a
        poison message must not block every alert behind it)."""
        reason = str(exc)
        if "chat not found" in reason.lower():
            self._hold(n, reason, MAX_BACKOFF)
            return False
        logger.error("notifier: #{} refused ({}); sending the plain text", n.id, reason)
        try:
            message_id = await self._send(n, chat, Plan(n.text, html=False), silent=False)
        except BadRequest as again:
            self._service.mark_failed(n.id, f"{reason}; plain: {again}", None, give_up=True)
            return True
        self._service.mark_sent(n.id, message_id, chat)
        return True

    # --- what to send ------------------------------------------------------------------------

    def _symbol_muted(self, event: DomainEvent | None) -> bool:
        if not isinstance(event, SignalRaised):
            return False
        today = self._clock.now().astimezone(NEW_YORK).date()
        return self._data.alerts.symbol_muted(event.symbol, today)

    def _plan(self, n: Notification, event: DomainEvent | None) -> Plan:
        photo = Path(n.photo_path) if n.photo_path else None
        if event is None:
            html = (n.parse_mode or "").upper() == "HTML"
            keyboard = allow_keyboard() if n.kind == ALLOW_PROMPT else None
            return Plan(n.text, html=html, keyboard=keyboard, photo=photo)
        day = self._day_plan(n, event)
        if day is not None:
            return day
        text = render_event(event)
        keyboard = None
        if isinstance(event, SignalRaised):
            keyboard = signal_keyboard(event.signal_id, event.symbol)
        elif isinstance(event, PositionUnprotected) and not event.auto_flatten:
            keyboard = unprotected_keyboard(event.symbol, event.account)
        return Plan(text, keyboard=keyboard, photo=photo)

    def _day_plan(self, n: Notification, event: DomainEvent) -> Plan | None:
        """The scheduled pushes (bot.render.day); None for any other event."""
        try:
            if isinstance(event, BriefReady):
                return Plan(render_brief(brief_of(event)))
            if isinstance(event, AllowPrompt):
                return Plan(render_allow_prompt(event), keyboard=allow_keyboard())
            if isinstance(event, ReportReady):
                report = report_of(event)
                charts = tuple(Path(c) for c in event.charts)
                photos = tuple((c, chart_caption(report, c)) for c in charts if c.is_file())
                return Plan(render_report(report, charts), photos=photos)
        except ValueError as exc:  # ReportFormatError: a payload this version cannot read
            logger.error("notifier: #{} unreadable {}: {}", n.id, type(event).__name__, exc)
            return Plan(n.text, html=False)
        return None

    def _absorbed_by_kill_card(self, n: Notification, event: KillCompleted) -> bool:
        entry = self._data.kill_cards.get(event.account)
        if entry is None or event.at < entry[2]:
            return False
        del self._data.kill_cards[event.account]
        self._service.mark_sent(n.id, entry[1], entry[0])
        return True

    async def _on_card(self, event: DomainEvent) -> OnCard | None:
        """Put the event on its draft's card, if the draft has one."""
        draft_id = self._draft_of(event)
        if draft_id is None:
            return None
        desk = self._data.cards
        card = desk.card(draft_id)
        if card is None:
            return None
        try:
            line = card_line(event, card_side(card))
        except Exception:
            logger.exception("notifier: card line for draft {} failed", draft_id)
            return None
        if line is not None:
            await desk.add_line(draft_id, line)
        # Protection news and a closing fill also buzz as a message of their own.
        loud = line is not None and (
            isinstance(event, (ProtectionPlaced, ProtectionFailed))
            or (isinstance(event, OrderFilled) and event.role is not OrderRole.ENTRY)
        )
        return OnCard(card.chat_id, card.message_id, only=not loud)

    def _draft_of(self, event: DomainEvent) -> int | None:
        if isinstance(event, RiskRefused):
            return event.draft_id
        if isinstance(event, OrderEvent):
            return self._service.draft_for_order(event.client_order_id)
        if isinstance(event, ProtectionPlaced):
            return self._service.draft_for_order(event.entry_order_id)
        if isinstance(event, ProtectionFailed) and event.entry_order_id is not None:
            return self._service.draft_for_order(event.entry_order_id)
        return None

    # --- sending -------------------------------------------------------------------------------

    async def _send(self, n: Notification, chat: int, plan: Plan, *, silent: bool) -> int | None:
        """Send `plan` (in parts); returns the first message's id."""
        text = plan.text or ""
        if not plan.html:
            text = esc(text)
        first_id: int | None = None
        done = self._progress.get(n.id, 0)
        if plan.photo is not None and plan.photo.is_file():
            caption, parts = split_caption(text)
            if done == 0:
                with plan.photo.open("rb") as handle:
                    message = await self._bot.send_photo(
                        chat,
                        handle,
                        caption=caption or None,
                        parse_mode=ParseMode.HTML,
                        disable_notification=silent,
                        reply_markup=None if parts else plan.keyboard,
                    )
                first_id = message.message_id
                self._progress[n.id] = done = 1
            offset = 1
        else:
            parts = split_html(text) or ["(empty alert)"]
            offset = 0
        for i, part in enumerate(parts, start=offset):
            if i < done:
                continue
            last = i == len(parts) - 1 + offset
            message = await self._bot.send_message(
                chat,
                part,
                parse_mode=ParseMode.HTML,
                disable_notification=silent,
                reply_markup=plan.keyboard if last else None,
            )
            first_id = first_id or message.message_id
            self._progress[n.id] = i + 1
        # Photos after the text (the report's charts), each a message of its own.
        start = offset + len(parts)
        for j, (photo, caption) in enumerate(plan.photos, start=start):
            if j < done or not photo.is_file():
                continue
            with photo.open("rb") as handle:
                message = await self._bot.send_photo(
                    chat,
                    handle,
                    caption=caption[:1024] or None,
                    parse_mode=ParseMode.HTML,
                    disable_notification=silent,
                )
            first_id = first_id or message.message_id
            self._progress[n.id] = j + 1
        return first_id


__all__ = ["Notifier", "Plan"]
