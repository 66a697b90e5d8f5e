"""Fan-out of BrokerEvents: every `events()` call gets its own queue, in publication order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from core.broker import BrokerEvent


class Subscription:
    """Registered when created (not on first iteration): nothing published in between is
    missed. Ends when the hub closes."""

    def __init__(self, hub: EventHub) -> None:
        self._hub = hub
        self._queue: asyncio.Queue[BrokerEvent | None] = asyncio.Queue()
        self._done = False

    def put(self, event: BrokerEvent | None) -> None:
        self._queue.put_nowait(event)

    def __aiter__(self) -> AsyncIterator[BrokerEvent]:
        return self

    async def __anext__(self) -> BrokerEvent:
        if self._done:
            raise StopAsyncIteration
        event = await self._queue.get()
        if event is None:
            self._done = True
            raise StopAsyncIteration
        return event

    def pending(self) -> list[BrokerEvent]:
        """Whatever is queued, without waiting (handy in tests)."""
        taken: list[BrokerEvent] = []
        while not self._queue.empty():
            event = self._queue.get_nowait()
            if event is None:
                self._done = True
                break
            taken.append(event)
        return taken

    async def aclose(self) -> None:
        self._hub.unsubscribe(self)
        self.put(None)


class EventHub:
    def __init__(self) -> None:
        self._subscribers: list[Subscription] = []
        self._closed = False

    def subscribe(self) -> Subscription:
        subscription = Subscription(self)
        if self._closed:
            subscription.put(None)
        else:
            self._subscribers.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self._subscribers:
            self._subscribers.remove(subscription)

    def publish(self, event: BrokerEvent) -> None:
        for subscription in self._subscribers:
            subscription.put(event)

    def close(self) -> None:
        self._closed = True
        for subscription in self._subscribers:
            subscription.put(None)
        self._subscribers.clear()
