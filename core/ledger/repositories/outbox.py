"""The notification outbox and the audit trail.

Outbox: a message is committed here in the same transaction as the change it announces,
then a sender delivers pending rows in id order (oldest first) and marks them. A
restart or Telegram flood control therefore delays messages but never loses or reorders
them. A `dedupe_key` makes "announce this once" idempotent (e.g. "fill:<execution id>").

Audit: every command and button press, allowed or denied, with its result.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select

from core.ledger.models import AuditRow, NotificationRow
from core.ledger.repositories.base import Repository
from core.ledger.types import AuditKind, NotificationStatus


class NotificationRepository(Repository[NotificationRow]):
    row_type = NotificationRow

    def enqueue(
        self,
        kind: str,
        text: str,
        *,
        payload: dict[str, Any] | None = None,
        dedupe_key: str | None = None,
        chat_id: int | None = None,
        parse_mode: str | None = None,
        photo_path: str | None = None,
        not_before: datetime | None = None,
        status: NotificationStatus = NotificationStatus.PENDING,
    ) -> tuple[NotificationRow, bool]:
        """Queue a message; with a `dedupe_key` already queued, returns (existing, False).

        Pass `status=SILENCED` to keep a muted kind's message for the record without
        sending it.
        """
        row = NotificationRow(
            kind=kind,
            text=text,
            payload=payload,
            status=status,
            attempts=0,
            dedupe_key=dedupe_key,
            chat_id=chat_id,
            parse_mode=parse_mode,
            photo_path=photo_path,
            not_before=None if not_before is None else self._at(not_before),
        )
        if dedupe_key is None:
            return self.add(row), True
        return self._insert_unique(row, lambda: self.by_dedupe_key(dedupe_key))

    def by_dedupe_key(self, dedupe_key: str) -> NotificationRow | None:
        stmt = select(NotificationRow).where(NotificationRow.dedupe_key == dedupe_key)
        return self._session.scalars(stmt).one_or_none()

    def pending(
        self, *, limit: int = 100, due_at: datetime | None = None
    ) -> Sequence[NotificationRow]:
        """Pending messages in id (= creation) order; with `due_at`, only those not held back."""
        stmt = select(NotificationRow).where(NotificationRow.status == NotificationStatus.PENDING)
        if due_at is not None:
            stmt = stmt.where(
                or_(
                    NotificationRow.not_before.is_(None),
                    NotificationRow.not_before <= self._at(due_at),
                )
            )
        return self._session.scalars(stmt.order_by(NotificationRow.id).limit(limit)).all()

    def mark_sent(
        self,
        notification: NotificationRow,
        *,
        message_id: int | None = None,
        at: datetime | None = None,
    ) -> None:
        notification.status = NotificationStatus.SENT
        notification.attempts += 1
        notification.sent_at = self._at(at)
        notification.message_id = message_id
        notification.last_error = None
        self._session.flush()

    def mark_failed(
        self,
        notification: NotificationRow,
        error: str,
        *,
        retry_at: datetime | None = None,
        give_up: bool = False,
    ) -> None:
        """Count a failed attempt; it stays pending (held until `retry_at`) unless `give_up`."""
        notification.attempts += 1
        notification.last_error = error
        notification.not_before = None if retry_at is None else self._at(retry_at)
        if give_up:
            notification.status = NotificationStatus.FAILED
        self._session.flush()

    def mark_silenced(self, notification: NotificationRow) -> None:
        notification.status = NotificationStatus.SILENCED
        self._session.flush()

    def recent(self, limit: int = 50) -> Sequence[NotificationRow]:
        """Newest first, any status."""
        stmt = select(NotificationRow).order_by(NotificationRow.id.desc()).limit(limit)
        return self._session.scalars(stmt).all()


class AuditRepository(Repository[AuditRow]):
    row_type = AuditRow

    def record(
        self,
        kind: AuditKind,
        action: str,
        *,
        ok: bool,
        user_id: int | None = None,
        chat_id: int | None = None,
        args: str | None = None,
        result: str | None = None,
        at: datetime | None = None,
    ) -> AuditRow:
        return self.add(
            AuditRow(
                kind=kind,
                action=action,
                ok=ok,
                user_id=user_id,
                chat_id=chat_id,
                args=args,
                result=result,
                at=self._at(at),
            )
        )

    def recent(self, limit: int = 50, *, user_id: int | None = None) -> Sequence[AuditRow]:
        """Newest first."""
        stmt = select(AuditRow)
        if user_id is not None:
            stmt = stmt.where(AuditRow.user_id == user_id)
        return self._session.scalars(stmt.order_by(AuditRow.id.desc()).limit(limit)).all()
