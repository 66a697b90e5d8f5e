"""SDK / HTTP failures -> the typed errors of `core.broker`.

The SDK raises `APIError` (HTTP status + a body that is `{"code": 8 digits, "message"}`,
or a gateway's HTML page) and lets `requests` exceptions through. Which typed error an
answer means depends on the operation (a 422 "already in ... state" is NotCancelable for a
cancel, NotReplaceable for a replace), so every mapping takes the operation's name.

Two adapter-local subclasses let the retry policy tell transport failures (worth another
try) from an authentication refusal (not worth one); callers still see BrokerUnavailable.
Nothing here puts a request, its headers or the client into a message: only the
response body and status, which never carry our keys.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import requests
from alpaca.common.exceptions import APIError

from core.broker import (
    AmbiguousOutcome,
    BrokerError,
    BrokerUnavailable,
    DuplicateClientOrderId,
    InsufficientBuyingPower,
    InsufficientQty,
    NotCancelable,
    NotFound,
    NotReplaceable,
    OrderRejected,
    RateLimited,
    UnsupportedOrder,
    WashTradeRejected,
)
from core.domain import ClientOrderId

CODE_DUPLICATE = 40010001
CODE_FORBIDDEN = 40310000
CODE_UNPROCESSABLE = 42210000
# Alpaca's limit window is one minute: a reset further away than that (or in the past)
# means our clock and the server's disagree, so the header is not trusted.
RATE_LIMIT_WINDOW_SECONDS = 60.0
_MAX_MESSAGE = 300


class Op(StrEnum):
    SUBMIT = "submit"
    REPLACE = "replace"
    CANCEL = "cancel"
    CLOSE_ALL = "close_all"
    READ = "read"


class ConnectionFailed(BrokerUnavailable):
    """No answer: refused, reset, DNS. For a request that was sent (a reset after the
    POST went out), the outcome is unknown: a mutation resolves it by lookup."""


class AuthenticationFailed(BrokerUnavailable):
    """401 / 403 without an order-rule code: the keys are wrong or revoked."""


@dataclass(frozen=True, slots=True)
class ApiAnswer:
    """The parts of an error response we use."""

    status: int | None
    code: int | None
    message: str
    headers: Mapping[str, str]


def answer_of(error: APIError) -> ApiAnswer:
    response: Any = error.response
    status = error.status_code
    text = str(error)
    code: int | None = None
    message = text
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        raw_code = body.get("code")
        code = raw_code if isinstance(raw_code, int) else None
        message = str(body.get("message") or text)
    elif "<html" in text.lower():
        message = f"gateway answered HTTP {status} (html page)"
    headers: Mapping[str, str] = {}
    if response is not None and getattr(response, "headers", None) is not None:
        headers = response.headers
    return ApiAnswer(status, code, message[:_MAX_MESSAGE], headers)


def retry_after_seconds(headers: Mapping[str, str], now: datetime) -> float | None:
    """Seconds to wait from `Retry-After` or `X-RateLimit-Reset` (epoch seconds), if the
    value is plausible for a one-minute window; otherwise None (use our own backoff)."""
    raw = headers.get("Retry-After")
    if raw is not None:
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if 0 <= value <= RATE_LIMIT_WINDOW_SECONDS:
            return value
    reset = headers.get("X-RateLimit-Reset")
    if reset is not None:
        try:
            wait = float(reset) - now.timestamp()
        except ValueError:
            return None
        if 0 <= wait <= RATE_LIMIT_WINDOW_SECONDS:
            return wait
    return None


def _already_in_state(message: str) -> bool:
    return "already in" in message and "state" in message


def map_answer(
    answer: ApiAnswer, op: Op, now: datetime, cid: ClientOrderId | None = None
) -> BrokerError:
    status, code, message = answer.status, answer.code, answer.message
    lowered = message.lower()
    label = f"HTTP {status}" + ("" if code is None else f" {code}")
    if status == 429:
        return RateLimited(f"rate limited ({label})", retry_after_seconds(answer.headers, now))
    if status is None or status >= 500:
        return AmbiguousOutcome(f"broker answered {label}: {message}", client_order_id=cid)
    if status == 404:
        return NotFound(message)
    if status == 401 or (status == 403 and code is None):
        return AuthenticationFailed(f"authentication refused ({label}): {message}")
    code_text = None if code is None else str(code)
    if "client_order_id" in lowered and "unique" in lowered:
        return DuplicateClientOrderId(message, code_text, client_order_id=cid)
    if "wash trade" in lowered:  # 403 40310000, and 422 42210000 per a known report
        return WashTradeRejected(message, code_text, client_order_id=cid)
    if status == 403:
        if "insufficient qty" in lowered:
            return InsufficientQty(message, code_text, client_order_id=cid)
        if "insufficient buying power" in lowered:
            return InsufficientBuyingPower(message, code_text, client_order_id=cid)
    if op is Op.CANCEL and _already_in_state(lowered):
        return NotCancelable(message)
    if op is Op.REPLACE and (_already_in_state(lowered) or "unable to replace" in lowered):
        if "no change" in lowered:  # an unchanged body (403): a caller error, not a state
            return OrderRejected(message, code_text, client_order_id=cid)
        return NotReplaceable(message)
    if op in (Op.SUBMIT, Op.REPLACE) and status in (400, 422):
        return UnsupportedOrder(message, code_text, client_order_id=cid)
    if op in (Op.SUBMIT, Op.REPLACE):
        return OrderRejected(message, code_text, client_order_id=cid)
    return BrokerError(f"broker refused {op} ({label}): {message}")


def map_exception(
    exc: BaseException, op: Op, now: datetime, cid: ClientOrderId | None = None
) -> BrokerError:
    """Any failure of one SDK call -> one typed error."""
    if isinstance(exc, BrokerError):
        return exc
    if isinstance(exc, APIError):
        return map_answer(answer_of(exc), op, now, cid)
    if isinstance(exc, (requests.Timeout, asyncio.TimeoutError, TimeoutError)):
        return AmbiguousOutcome(
            f"{op}: no answer in time ({type(exc).__name__})", client_order_id=cid
        )
    if isinstance(exc, requests.ConnectionError):
        return ConnectionFailed(f"{op}: connection failed ({type(exc).__name__})")
    # A 200 with a body that is not JSON, or an SDK bug: we cannot tell what happened.
    return AmbiguousOutcome(
        f"{op}: unexpected {type(exc).__name__}: {str(exc)[:_MAX_MESSAGE]}", client_order_id=cid
    )


def is_transient(error: BrokerError) -> bool:
    """Worth another try (reads) or a lookup then another try (mutations)."""
    return isinstance(error, (RateLimited, AmbiguousOutcome, ConnectionFailed))


__all__ = [
    "ApiAnswer",
    "AuthenticationFailed",
    "ConnectionFailed",
    "Op",
    "answer_of",
    "is_transient",
    "map_answer",
    "map_exception",
    "retry_after_seconds",
]
