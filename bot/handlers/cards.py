"""Draft cards: one Telegram message per draft, edited in place through its whole life
(draft -> submitted -> filled -> protected -> closed) instead of a stream of messages.

Where a card lives and the lines it shows are stored through core's NotificationService
(the ledger), so a restarted bot keeps editing the same message. Handlers and the
notifier both add lines; a lock per card makes each read-modify-write-edit atomic, so a
fill arriving while the confirm is still being answered is never lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from loguru import logger
from telegram import Bot, InlineKeyboardMarkup
from telegram.constants import ParseMode
from telegram.error import BadRequest

from bot.render import card_data, render_card, render_card_head
from bot.text import split_html
from core.domain import Side
from core.drafts import DraftReview
from core.notifications import Card, NotificationService


def card_key(draft_id: int) -> str:
    return f"draft:{draft_id}"


def card_side(card: Card) -> Side:
    return Side.SELL if card.data.get("side") == "sell" else Side.BUY


def card_text(data: Mapping[str, Any]) -> str:
    lines = [str(line) for line in data.get("lines", [])]
    return render_card(str(data.get("head", "")), lines)


class CardDesk:
    def __init__(self, bot: Bot, notifications: NotificationService) -> None:
        self._bot = bot
        self._notifications = notifications
        self._locks: dict[int, asyncio.Lock] = {}

    def lock(self, draft_id: int) -> asyncio.Lock:
        return self._locks.setdefault(draft_id, asyncio.Lock())

    def card(self, draft_id: int) -> Card | None:
        return self._notifications.card(card_key(draft_id))

    def remember(self, review: DraftReview, chat_id: int, message_id: int) -> None:
        """The card of `review` is this message (its timeline starts or is kept)."""
        old = self.card(review.draft_id)
        lines = list(old.data.get("lines", [])) if old is not None else []
        data = card_data(render_card_head(review), review.account, lines)
        data["side"] = review.side.value
        self._notifications.remember_card(card_key(review.draft_id), chat_id, message_id, data)

    async def add_line(
        self,
        draft_id: int,
        line: str,
        *,
        first: bool = False,
        head: str | None = None,
        keyboard: InlineKeyboardMarkup | None = None,
    ) -> Card | None:
        """Add a timeline line and re-render the card in place (None: the draft has none).

        `first` puts the line before those already there: the confirm's own result is
        written after the confirm returns, when the broker's "accepted" may already be on
        the card, and it must read in the order things happened.
        """
        async with self.lock(draft_id):
            card = self.card(draft_id)
            if card is None:
                return None
            data = dict(card.data)
            lines = [str(x) for x in data.get("lines", [])]
            if line not in lines:
                lines = [line, *lines] if first else [*lines, line]
            data["lines"] = lines
            if head is not None:
                data["head"] = head
            self._notifications.remember_card(card.key, card.chat_id, card.message_id, data)
            card = Card(card.key, card.chat_id, card.message_id, data)
            await self.show(card, keyboard)
            return card

    async def show(self, card: Card, keyboard: InlineKeyboardMarkup | None = None) -> None:
        """Edit the card's message to its stored content; a deleted message is re-sent."""
        text = split_html(card_text(card.data))[0]
        try:
            await self._bot.edit_message_text(
                text,
                chat_id=card.chat_id,
                message_id=card.message_id,
                parse_mode=ParseMode.HTML,
                reply_markup=keyboard,
            )
        except BadRequest as exc:
            reason = str(exc).lower()
            if "not modified" in reason:
                return
            if "not found" not in reason and "can't be edited" not in reason:
                raise
            logger.info("card {} is gone ({}); sending it again", card.key, exc)
            message = await self._bot.send_message(
                card.chat_id, text, parse_mode=ParseMode.HTML, reply_markup=keyboard
            )
            self._notifications.remember_card(card.key, card.chat_id, message.message_id, card.data)


__all__ = ["CardDesk", "card_key", "card_side", "card_text"]
