"""What a driven replay waits for: events seen on the bus, and work not yet settled.

`EventLog` records every domain event published (a scripted user waits for "the signal
alert was published"). `OutboxProbe` answers "is anything still on its way to the chat?"
cheaply: it asks the ledger only after an event was published since the outbox was last
found empty (and every `every`-th time anyway, for rows queued without an event).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from core.events import DomainEvent, EventBus, Unsubscribe
from core.notifications import NotificationService

E = TypeVar("E", bound=DomainEvent)


class EventLog:
    def __init__(self, bus: EventBus) -> None:
        self.events: list[DomainEvent] = []
        self._unsubscribe: Unsubscribe = bus.subscribe(self.events.append)

    def close(self) -> None:
        self._unsubscribe()

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]

    def seen(
        self, kind: type[DomainEvent], where: Callable[[DomainEvent], bool] | None = None
    ) -> bool:
        return any(isinstance(e, kind) and (where is None or where(e)) for e in self.events)


class OutboxProbe:
    def __init__(self, notifications: NotificationService, bus: EventBus, every: int = 50) -> None:
        self._notifications = notifications
        self._dirty = True
        self._calls = 0
        self._every = every
        self._unsubscribe = bus.subscribe(self._mark)

    def _mark(self, _event: DomainEvent) -> None:
        self._dirty = True

    def close(self) -> None:
        self._unsubscribe()

    def __call__(self) -> bool:
        """True while a notification is due and not yet delivered."""
        self._calls += 1
        if not self._dirty and self._calls % self._every:
            return False
        pending = bool(self._notifications.next_due(limit=1))
        self._dirty = pending
        return pending


__all__ = ["EventLog", "OutboxProbe"]
