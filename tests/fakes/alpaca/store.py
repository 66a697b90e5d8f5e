"""The orders of the account: by id, by client_order_id (unique forever), in time order."""

from __future__ import annotations

import itertools
from datetime import datetime

from .models import FakeOrder, not_found


class OrderStore:
    def __init__(self) -> None:
        self._orders: dict[str, FakeOrder] = {}
        self._by_cid: dict[str, str] = {}
        self._seq: dict[str, int] = {}
        self._counter = itertools.count()

    def add(self, order: FakeOrder) -> None:
        self._orders[order.id] = order
        self._by_cid[order.client_order_id] = order.id
        self._seq[order.id] = next(self._counter)

    def has_client_id(self, client_order_id: str) -> bool:
        return client_order_id in self._by_cid

    def find(self, order_id: str) -> FakeOrder | None:
        return self._orders.get(order_id)

    def get(self, order_id: str) -> FakeOrder:
        """The order, or the API's 404 `order not found`."""
        order = self._orders.get(order_id)
        if order is None:
            raise not_found()
        return order

    def by_client_id(self, client_order_id: str) -> FakeOrder:
        order_id = self._by_cid.get(client_order_id)
        if order_id is None:
            raise not_found()
        return self._orders[order_id]

    def ordered(self) -> list[FakeOrder]:
        """Oldest first (creation time, then submission sequence)."""
        return sorted(self._orders.values(), key=lambda o: (o.created_at, self._seq[o.id]))

    def open(self, exclude: FakeOrder | None = None) -> list[FakeOrder]:
        return [o for o in self.ordered() if o.is_open and o is not exclude]

    def query(
        self,
        *,
        status: str = "open",
        limit: int = 50,
        after: datetime | None = None,
        until: datetime | None = None,
        direction: str = "desc",
        symbols: set[str] | None = None,
        side: str | None = None,
    ) -> list[FakeOrder]:
        """`GET /v2/orders` semantics: status open|closed|all, submitted strictly after
        `after` / before `until`, newest first unless direction is asc, at most `limit`."""
        items = self.ordered()
        if status != "all":
            items = [o for o in items if o.is_open == (status == "open")]
        items = [
            o
            for o in items
            if (not symbols or o.symbol in symbols)
            and (side is None or o.side == side)
            and (after is None or o.created_at > after)
            and (until is None or o.created_at < until)
        ]
        if direction == "desc":
            items.reverse()
        return items[:limit]
