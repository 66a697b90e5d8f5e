"""Placing and canceling without ever resending blindly.

Order-creating calls (submit, replace) follow one rule: a POST/PATCH is never resent
blindly. One attempt; on any failure that might hide a success (timeout, 5xx, connection
reset, 429, or a refusal that follows such an attempt) the order is looked up by its
client_order_id:
- found -> it is returned (the caller cannot tell the difference, as it should be);
- definitively absent -> a transient failure is retried after a backoff on the injected
  clock. The SAME client_order_id makes a second order impossible: if the first attempt
  lands late, the resend is refused "client_order_id must be unique" and the next lookup
  returns the order. A definitive refusal is raised as its typed error;
- the lookup itself failing -> AmbiguousOutcome (the caller must look again later).
A first-attempt refusal (403/422: insufficient qty, wash trade, duplicate id...) is
definitive and raised at once: nothing was placed, no lookup is needed. A refusal of a
RESEND is looked up first: "client_order_id must be unique" then usually means that an
earlier attempt landed.

A 429 is answered before the order service sees the request: as long as every failure so
far was a 429, nothing can exist, so there is nothing to look up (and a lookup would
spend the account's exhausted request budget, be refused too and turn "rate limited"
into "outcome unknown"). The same client order id is resent after the wait the server
advertised (Retry-After / X-RateLimit-Reset, capped), a bounded number of times; giving
up raises `RateLimited` saying that nothing was placed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from loguru import logger

from brokers.alpaca.errors import Op, is_transient
from brokers.alpaca.transport import Transport
from core.broker import AmbiguousOutcome, BrokerError, NotCancelable, NotFound, RateLimited
from core.domain import ClientOrderId

Json = Mapping[str, Any]


async def create_order(
    http: Transport,
    op: Op,
    cid: ClientOrderId,
    send: Callable[[], Any],
    lookup: Callable[[], Any],
) -> Json:
    """Run `send` (POST/PATCH) under the rule above; `lookup` gets the order by `cid`."""
    policy = http.policy
    uncertain = False  # an earlier attempt of ours may have created the order
    attempt = 0
    waited = 0.0
    while True:
        attempt += 1
        try:
            result: Json = await http.once(op, send, cid=cid)
            return result
        except BrokerError as error:
            transient = is_transient(error)
            if not transient and attempt == 1:
                raise  # a refusal of our only attempt: nothing was placed
            rate_limited = isinstance(error, RateLimited)
            if uncertain or not rate_limited:
                found = await _resolve(http, op, cid, error, lookup)
                if found is not None:
                    logger.warning(
                        "alpaca[{}]: {} {} hit {} but the order exists: returning it",
                        http.label,
                        op,
                        cid,
                        type(error).__name__,
                    )
                    return found
            if not transient:
                raise
            uncertain = uncertain or not rate_limited
            if attempt >= policy.mutation_attempts:
                if uncertain and not isinstance(error, AmbiguousOutcome):
                    raise AmbiguousOutcome(
                        f"{op} {cid}: gave up after {attempt} attempts ({error}); not found "
                        "at the broker, but an attempt may still land",
                        client_order_id=cid,
                    ) from None
                if isinstance(error, RateLimited) and not uncertain:
                    raise RateLimited(
                        f"{op} {cid}: rate limited by the broker on all {attempt} attempts "
                        f"(waited {waited:.0f}s in total); nothing was placed",
                        error.retry_after,
                    ) from None
                raise
            delay = policy.backoff(attempt, error)
            waited += delay
            logger.warning(
                "alpaca[{}]: {} {} failed ({}) and is not at the broker: resend {}/{} in {:.2f}s",
                http.label,
                op,
                cid,
                type(error).__name__,
                attempt,
                policy.mutation_attempts - 1,
                delay,
            )
            await http.clock.sleep(delay)


async def _resolve(
    http: Transport,
    op: Op,
    cid: ClientOrderId,
    cause: BrokerError,
    lookup: Callable[[], Any],
) -> Json | None:
    try:
        found: Json = await http.read("lookup by client_order_id", lookup)
        return found
    except NotFound:
        return None
    except BrokerError as error:
        raise AmbiguousOutcome(
            f"{op} {cid} failed ({type(cause).__name__}: {cause}) and the lookup failed too "
            f"({type(error).__name__}: {error}): the order may or may not exist",
            client_order_id=cid,
        ) from None


async def cancel_order(
    http: Transport,
    send: Callable[[], Any],
    raw_status: Callable[[], Awaitable[str | None]],
) -> None:
    """DELETE, resent on transient failures (a cancel is idempotent in intent). A resend
    answered "already in canceled/pending_cancel state" means an earlier one landed."""
    policy = http.policy
    uncertain = False
    attempt = 0
    while True:
        attempt += 1
        try:
            await http.once(Op.CANCEL, send)
            return
        except NotCancelable:
            if uncertain and await raw_status() in ("pending_cancel", "canceled"):
                return
            raise
        except BrokerError as error:
            if not is_transient(error) or attempt >= policy.mutation_attempts:
                raise
            uncertain = uncertain or not isinstance(error, RateLimited)
            await http.clock.sleep(policy.backoff(attempt, error))


__all__ = ["cancel_order", "create_order"]
