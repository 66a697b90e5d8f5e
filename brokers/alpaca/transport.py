"""Running the synchronous SDK from the event loop, with our timeouts and retry policy.

- Every SDK call runs in a worker thread (`asyncio.to_thread`) under an overall
  `asyncio.wait_for`; the SDK's requests session gets an explicit (connect, read) timeout,
  which it otherwise never sets. The overall timeout also covers what the read timeout
  does not (DNS, a server trickling bytes).
- The SDK's hidden resend (`RESTClient._retry`: 429/504 retried 3 more times, 3 s apart,
  POST included -- alpaca/common/rest.py `_request`) is switched off: this module owns the
  policy. Idempotent reads are retried on 429 / 5xx / timeouts / connection failures with
  exponential backoff on the injected clock (honouring the rate-limit reset header when
  it is plausible). Mutations get exactly ONE attempt here; the adapter resolves their
  failures by looking the order up (see `adapter.py`).
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from loguru import logger

from brokers.alpaca.errors import Op, is_transient, map_exception
from core.broker import BrokerError, RateLimited
from core.clock import Clock
from core.domain import ClientOrderId

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    connect_timeout: float = 3.05  # seconds; a little over a TCP retransmit window
    read_timeout: float = 10.0
    call_timeout: float = 15.0  # overall per attempt, thread included
    read_attempts: int = 4  # a GET is tried at most this often
    mutation_attempts: int = 4  # POST/PATCH, each resend only after a negative lookup
    backoff_base: float = 0.5  # then 1, 2, 4 ... seconds, capped
    backoff_max: float = 8.0
    rate_limit_max_wait: float = 30.0

    def backoff(self, attempt: int, error: BrokerError | None = None) -> float:
        """Delay before try `attempt + 1`: the server's reset for a 429 when it gave a
        plausible one, else exponential with equal jitter (so many clients that failed
        together do not come back together)."""
        if isinstance(error, RateLimited) and error.retry_after is not None:
            wait = max(float(error.retry_after), self.backoff_base)
            return min(wait, self.rate_limit_max_wait)
        ceiling = min(self.backoff_max, self.backoff_base * 2.0 ** max(0, attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


class RequestCounter:
    """HTTP requests actually sent (counted in the session, so SDK-internal ones too)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def bump(self) -> None:
        with self._lock:
            self.value += 1


def prepare_client(client: Any, policy: RetryPolicy, counter: RequestCounter) -> None:
    """Turn off the SDK's resend and give its requests session a timeout and a counter.
    `client` is an alpaca-py RESTClient (TradingClient, StockHistoricalDataClient)."""
    client._retry = 0  # rest.py: `while retry >= 0` -> exactly one request
    session = client._session
    original = session.request
    timeout = (policy.connect_timeout, policy.read_timeout)

    def request(method: str, url: str, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", timeout)
        counter.bump()
        return original(method, url, **kwargs)

    session.request = request


class Transport:
    """One account's REST calls: `once` for mutations, `read` for idempotent queries."""

    def __init__(self, clock: Clock, policy: RetryPolicy, label: str) -> None:
        self.clock = clock
        self.policy = policy
        self.label = label  # account name for logs; never a key
        self.requests = RequestCounter()

    async def once(self, op: Op, call: Callable[[], T], *, cid: ClientOrderId | None = None) -> T:
        """One attempt; any failure comes back as a typed BrokerError."""
        try:
            return await asyncio.wait_for(asyncio.to_thread(call), self.policy.call_timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise map_exception(exc, op, self.clock.now(), cid) from None

    async def read(self, what: str, call: Callable[[], T]) -> T:
        """An idempotent GET, retried on transient failures."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self.once(Op.READ, call)
            except BrokerError as error:
                if not is_transient(error) or attempt >= self.policy.read_attempts:
                    raise
                delay = self.policy.backoff(attempt, error)
                logger.warning(
                    "alpaca[{}]: {} failed ({}: {}); retry {}/{} in {:.2f}s",
                    self.label,
                    what,
                    type(error).__name__,
                    error,
                    attempt,
                    self.policy.read_attempts - 1,
                    delay,
                )
                await self.clock.sleep(delay)


__all__ = ["RequestCounter", "RetryPolicy", "Transport", "prepare_client"]
