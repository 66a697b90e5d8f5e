"""Fan-out of broker events for adapters implementing `Broker.events()`.

Every subscriber gets its own queue, in publication order; a subscription is registered
when it is created, so nothing published between `events()` and the first `anext` is
lost. SimBroker, the Alpaca adapter and the IBKR adapter all publish through this hub.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from core.broker import BrokerEvent


class Subscription:
    """An async iterator over events published after it was created. It is registered
    when created (not on first iteration), so nothing published in between is missed."""

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
        """Take whatever is queued without waiting (handy in tests)."""
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
        # A copy: a subscriber closing itself while we deliver must not skip another.
        for subscription in list(self._subscribers):
            subscription.put(event)

    def close(self) -> None:
        self._closed = True
        for subscription in self._subscribers:
            subscription.put(None)
        self._subscribers.clear()
