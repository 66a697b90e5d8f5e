"""The notification outbox as the bot sees it: what is due, and how each delivery ended.

The bot never touches the database: it asks `next_due()` for pending messages in id
(= creation) order, and reports `mark_sent` / `mark_failed(retry_at)` / `mark_silenced`.
Order is the contract: `next_due()` stops at the first message that is held back (a
flood-control or network retry), so a later alert is never delivered before an earlier
one. A sent row carries its Telegram message id, so a delivered alert is never sent
twice and an undelivered one is still pending after a restart.

Waking: the sender sleeps on the injected clock, and `wake()` (called for every event
published on the engines' buses, after the outbox subscriber has stored it) ends the
sleep at once. Code that enqueues rows without publishing an event calls `wake()` too.

Cards: a draft card is one Telegram message edited in place through the draft's life.
Its location (chat id, message id) and the lines it shows are kept in the notifications
table as a row of kind "card" (status sent, `dedupe_key` "card:<key>"), so a restarted bot
still edits the same message. That table already has the chat/message id columns; no
migration is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from core.clock import Clock
from core.events import DomainEvent, EventBus, EventPayloadError, Unsubscribe, event_from_payload
from core.ledger import Ledger, NotificationRow, NotificationStatus

if TYPE_CHECKING:
    from core.services import TradingServices

CARD_KIND = "card"
_MAX_CHAIN = 8  # order -> parent/linked entry hops when looking for a draft


@dataclass(frozen=True, slots=True)
class Notification:
    """One pending outbox row, detached from its unit of work."""

    id: int
    kind: str
    text: str
    payload: Mapping[str, Any] | None
    chat_id: int | None
    parse_mode: str | None
    photo_path: str | None
    attempts: int
    not_before: datetime | None
    created_at: datetime

    def event(self) -> DomainEvent | None:
        """The domain event this row announces, or None (a plain text row, or a payload
        this version cannot read: the fallback `text` is sent instead)."""
        if not self.payload:
            return None
        try:
            return event_from_payload(self.payload)
        except EventPayloadError:
            return None

    @classmethod
    def of(cls, row: NotificationRow) -> Notification:
        return cls(
            id=row.id,
            kind=row.kind,
            text=row.text,
            payload=dict(row.payload) if row.payload else None,
            chat_id=row.chat_id,
            parse_mode=row.parse_mode,
            photo_path=row.photo_path,
            attempts=row.attempts,
            not_before=row.not_before,
            created_at=row.created_at,
        )


@dataclass(frozen=True, slots=True)
class Card:
    key: str
    chat_id: int
    message_id: int
    data: Mapping[str, Any]


class NotificationService:
    def __init__(self, ledger: Ledger, clock: Clock, buses: Iterable[EventBus] = ()) -> None:
        self._ledger = ledger
        self._clock = clock
        self._wake = asyncio.Event()
        self._unsubscribe: list[Unsubscribe] = [bus.subscribe(self._on_event) for bus in buses]

    @classmethod
    def for_services(cls, services: TradingServices, clock: Clock) -> NotificationService:
        """Over the engines' shared ledger, woken by every engine's bus."""
        engines = [services.engine(a.name) for a in services.accounts()]
        ledgers = {id(e.ctx.ledger): e.ctx.ledger for e in engines}
        if len(ledgers) != 1:
            raise ValueError("the notification outbox needs every account on one ledger")
        (ledger,) = ledgers.values()
        return cls(ledger, clock, [e.bus for e in engines])

    def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()

    # --- waking ----------------------------------------------------------------------------

    def _on_event(self, _event: DomainEvent) -> None:
        # The outbox subscribed before us on each bus, so the row is committed by now.
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    async def wait(self, seconds: float) -> None:
        """Until `wake()` or `seconds` of the clock's time, whichever comes first."""
        if self._wake.is_set():
            self._wake.clear()
            return
        waiter = asyncio.ensure_future(self._wake.wait())
        sleeper = asyncio.ensure_future(self._clock.sleep(max(0.0, seconds)))
        try:
            await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (waiter, sleeper):
                task.cancel()
            for task in (waiter, sleeper):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self._wake.clear()

    # --- the queue -------------------------------------------------------------------------

    def next_due(self, limit: int = 50) -> list[Notification]:
        """Pending messages in id order, up to (not including) the first one held back."""
        now = self._clock.now()
        with self._ledger.unit_of_work(read_only=True) as uow:
            rows = uow.notifications.pending(limit=limit)
        due: list[Notification] = []
        for row in rows:
            if row.not_before is not None and row.not_before > now:
                break
            due.append(Notification.of(row))
        return due

    def next_retry_at(self) -> datetime | None:
        """When the head of the queue may be tried again (None: nothing is held back)."""
        with self._ledger.unit_of_work(read_only=True) as uow:
            rows = uow.notifications.pending(limit=1)
        if not rows or rows[0].not_before is None:
            return None
        return rows[0].not_before

    def mark_sent(self, notification_id: int, message_id: int | None, chat_id: int | None) -> None:
        with self._ledger.unit_of_work() as uow:
            row = uow.notifications.require(notification_id)
            if chat_id is not None:
                row.chat_id = chat_id
            uow.notifications.mark_sent(row, message_id=message_id)
            uow.commit()

    def mark_failed(
        self,
        notification_id: int,
        error: str,
        retry_at: datetime | None,
        *,
        give_up: bool = False,
    ) -> None:
        with self._ledger.unit_of_work() as uow:
            row = uow.notifications.require(notification_id)
            uow.notifications.mark_failed(row, error[:2000], retry_at=retry_at, give_up=give_up)
            uow.commit()

    def mark_silenced(self, notification_id: int) -> None:
        with self._ledger.unit_of_work() as uow:
            uow.notifications.mark_silenced(uow.notifications.require(notification_id))
            uow.commit()

    def enqueue_text(
        self,
        kind: str,
        text: str,
        *,
        html: bool = False,
        photo_path: str | None = None,
        chat_id: int | None = None,
    ) -> int:
        """Queue a plain message (a report, a brief) and wake the sender."""
        with self._ledger.unit_of_work() as uow:
            row, _ = uow.notifications.enqueue(
                kind,
                text,
                parse_mode="HTML" if html else None,
                photo_path=photo_path,
                chat_id=chat_id,
            )
            uow.commit()
            row_id = row.id
        self.wake()
        return row_id

    # --- draft cards -----------------------------------------------------------------------

    def remember_card(
        self, key: str, chat_id: int, message_id: int, data: Mapping[str, Any]
    ) -> None:
        """Where card `key` lives and what it shows (insert, or move/update an existing one)."""
        dedupe = f"{CARD_KIND}:{key}"
        with self._ledger.unit_of_work() as uow:
            row = uow.notifications.by_dedupe_key(dedupe)
            if row is None:
                row, _ = uow.notifications.enqueue(
                    CARD_KIND, key, payload=dict(data), dedupe_key=dedupe, chat_id=chat_id
                )
                uow.notifications.mark_sent(row, message_id=message_id)
            else:
                row.payload = dict(data)  # JSON is not mutation-tracked: assign a new dict
                row.chat_id = chat_id
                row.message_id = message_id
            uow.commit()

    def card(self, key: str) -> Card | None:
        with self._ledger.unit_of_work(read_only=True) as uow:
            row = uow.notifications.by_dedupe_key(f"{CARD_KIND}:{key}")
        if row is None or row.chat_id is None or row.message_id is None:
            return None
        return Card(key, row.chat_id, row.message_id, dict(row.payload or {}))

    def draft_for_order(self, client_order_id: str) -> int | None:
        """The draft an order serves: its own, or its entry's (protection, replacements)."""
        with self._ledger.unit_of_work(read_only=True) as uow:
            row = uow.orders.by_client_order_id(client_order_id)
            for _ in range(_MAX_CHAIN):
                if row is None:
                    return None
                if row.draft_id is not None:
                    return row.draft_id
                parent = row.parent_order_id or row.replaces_order_id
                if parent is None:
                    links = uow.protection_links.for_protection_order(row.id)
                    parent = links[0].entry_order_id if links else None
                row = uow.orders.get(parent) if parent is not None else None
        return None

    def status_counts(self) -> dict[NotificationStatus, int]:
        """For /status-like diagnostics and tests."""
        from sqlalchemy import func, select

        with self._ledger.unit_of_work(read_only=True) as uow:
            stmt = (
                select(NotificationRow.status, func.count())
                .where(NotificationRow.kind != CARD_KIND)
                .group_by(NotificationRow.status)
            )
            return {status: int(n) for status, n in uow.session.execute(stmt).all()}


__all__ = ["CARD_KIND", "Card", "Notification", "NotificationService"]
