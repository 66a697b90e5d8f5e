"""Domain events -> the notifications outbox, so that no alert is lost to a crash.

Two ways in, one row per fact:
- `stage(uow, event)`: inside the unit of work that commits the change the event
  announces (a fill, a lock, a protection placed). Change and alert are then durable
  together: a crash cannot keep one and lose the other.
- `Outbox` is also an `EventBus` subscriber: events published by code that did not stage
  them (other components, tests) are written in their own short unit of work.

Both compute the same `dedupe_key` from the fact itself (not from when it was
published), so an event that was staged and then published, or replayed after a restart
(a reconcile re-applying a fill), is enqueued once. The bot renders `payload`
(`event.to_payload()`); `text` is a plain fallback line.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict

from loguru import logger
from sqlalchemy import event as sa_event
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from core.events import (
    DomainEvent,
    EventBus,
    JsonValue,
    OrderEvent,
    ProtectionPlaced,
    ReconcileCompleted,
    Unsubscribe,
)
from core.ledger import Ledger, NotificationRow, NotificationStatus, UnitOfWork

_KEYS = "centaur_outbox_keys"
_REMEMBERED = 4096  # dedupe keys kept in memory to skip a database round trip


def dedupe_key(event: DomainEvent) -> str:
    """Identity of the fact: one notification per order step, per protection order, ..."""
    name = type(event).__name__
    if isinstance(event, OrderEvent):
        return f"{name}:{event.account}:{event.client_order_id}:{event.filled_qty.normalize():f}"
    if isinstance(event, ProtectionPlaced):
        return f"{name}:{event.account}:{event.protection_order_id}"
    body = json.dumps(event.to_payload(), sort_keys=True, separators=(",", ":"))
    return f"{name}:{hashlib.sha256(body.encode()).hexdigest()[:40]}"


def fallback_text(event: DomainEvent, payload: dict[str, JsonValue] | None = None) -> str:
    """One line for a client that cannot render the payload."""
    data = (payload or event.to_payload())["data"]
    assert isinstance(data, dict)
    keys = ("account", "symbol", "qty", "filled_qty", "reason", "cause", "current", "detail")
    parts = [f"{k}={data[k]}" for k in keys if data.get(k) not in (None, "")]
    return f"{type(event).__name__}: " + ", ".join(parts)


def worth_notifying(event: DomainEvent) -> bool:
    # A reconcile that found nothing wrong runs every minute: not worth a message.
    return not (isinstance(event, ReconcileCompleted) and event.in_sync)


class Outbox:
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._seen: OrderedDict[str, None] = OrderedDict()

    def attach(self, bus: EventBus) -> Unsubscribe:
        return bus.subscribe(self.on_event)

    def stage(self, uow: UnitOfWork, event: DomainEvent) -> bool:
        """Enqueue inside the caller's unit of work (it commits). True if it was new."""
        if not worth_notifying(event):
            return False
        key = dedupe_key(event)
        if key in self._seen:
            return False
        inserted = self._insert(uow, event, key)
        # Remembered only once committed: a rolled-back alert must be written again.
        session = uow.session
        keys: list[str] = session.info.setdefault(_KEYS, [])
        if not keys:
            sa_event.listen(session, "after_commit", self._committed, once=True)
        keys.append(key)
        return inserted

    def _insert(self, uow: UnitOfWork, event: DomainEvent, key: str) -> bool:
        """One `INSERT ... ON CONFLICT (dedupe_key) DO NOTHING`: a replay is a no-op, and
        there is neither a look-up nor a savepoint on the fill -> protection path."""
        payload = event.to_payload()
        values = {
            "created_at": uow.now(),
            "kind": event.kind,
            "text": fallback_text(event, payload),
            "payload": payload,
            "status": NotificationStatus.PENDING,
            "attempts": 0,
            "dedupe_key": key,
        }
        dialect = uow.session.get_bind().dialect.name
        insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
        statement = (
            insert(NotificationRow)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
        )
        result = uow.session.execute(statement)
        return bool(getattr(result, "rowcount", 0) == 1)

    def _committed(self, session: Session) -> None:
        for key in session.info.pop(_KEYS, []):
            self._remember(key)

    async def on_event(self, event: DomainEvent) -> None:
        if not worth_notifying(event) or dedupe_key(event) in self._seen:
            return
        try:
            with self._ledger.unit_of_work() as uow:
                self.stage(uow, event)
                uow.commit()
        except Exception:
            # The bus isolates handlers anyway; say which alert could not be stored.
            logger.exception("outbox: could not store {}", type(event).__name__)
            raise

    def _remember(self, key: str) -> None:
        self._seen[key] = None
        while len(self._seen) > _REMEMBERED:
            self._seen.popitem(last=False)


__all__ = ["Outbox", "dedupe_key", "fallback_text", "worth_notifying"]
