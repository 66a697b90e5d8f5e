"""Logging: a human console sink and a rotating JSON-lines file, both redacted.

Secrets must never reach a log, including through third-party libraries (httpx logs every
Telegram URL, and the bot token is part of that URL) and exception tracebacks. So:
- stdlib logging is routed into loguru, where one patcher redacts every record;
- the patcher redacts the message, every `extra` value and the formatted traceback (the
  traceback is rendered to text, redacted, and the raw exception dropped), before any sink
  sees the record;
- known secret values are replaced exactly, and token-shaped strings by pattern, so a
  secret we were never told about (a token pasted into the chat) is still caught.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger

if TYPE_CHECKING:
    from loguru import Record

REDACTED = "[REDACTED]"

_PATTERNS = [
    # Telegram bot token: <bot id>:<35 url-safe chars>
    re.compile(r"\b\d{6,12}:[A-Za-z0-9_-]{30,}\b"),
    # Alpaca key ids (PK... / AK...) and 40-char secret keys
    re.compile(r"\b(?:PK|AK|CK)[A-Z0-9]{16,}\b"),
    re.compile(r"(?i)(secret[_-]?key|api[_-]?key|key[_-]?id|password|token)(\s*[=:]\s*)(\S+)"),
    # user:password@ in URLs
    re.compile(r"(?<=://)([^:/@\s]+):([^@/\s]+)@"),
]


class Redactor:
    def __init__(self) -> None:
        self._secrets: list[str] = []

    def add(self, values: Iterable[str]) -> None:
        for value in values:
            if value and len(value) >= 4 and value not in self._secrets:
                self._secrets.append(value)
        # Longest first, so a secret containing another is replaced whole.
        self._secrets.sort(key=len, reverse=True)

    def clear(self) -> None:
        self._secrets.clear()

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        text = _PATTERNS[0].sub(REDACTED, text)
        text = _PATTERNS[1].sub(REDACTED, text)
        text = _PATTERNS[2].sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
        return _PATTERNS[3].sub(lambda m: f"{m.group(1)}:{REDACTED}@", text)


redact = Redactor()


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_redact_value(v) for v in value)
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return redact(str(value))


def _patch(record: Record) -> None:
    record["message"] = redact(record["message"])
    extra = record["extra"]
    for key in list(extra):
        extra[key] = _redact_value(extra[key])
    exception = record["exception"]
    if exception is not None and exception.type is not None:
        text = "".join(
            traceback.format_exception(exception.type, exception.value, exception.traceback)
        )
        extra["traceback"] = redact(text)
        record["exception"] = None
    else:
        extra.setdefault("traceback", "")


class _InterceptHandler(logging.Handler):
    """Send stdlib logging (httpx, telegram, apscheduler, alembic) through loguru."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + "".join(traceback.format_exception(*record.exc_info))
        logger.opt(depth=6).log(level, "{}: {}", record.name, message)


CONSOLE_FORMAT = (
    "<green>{time:HH:mm:ss}</green> <level>{level: <7}</level> "
    "<cyan>{name}</cyan> {message}{extra[traceback]}"
)


def setup_logging(
    *,
    log_dir: Path | None,
    level: str = "INFO",
    secrets: Iterable[str] = (),
    console: bool = True,
    console_stream: Any = None,
) -> None:
    """(Re)configure every sink. Safe to call more than once (tests do)."""
    redact.add(secrets)
    logger.remove()
    logger.configure(patcher=_patch, extra={"traceback": ""})
    if console:
        logger.add(
            console_stream or sys.stderr,
            level=level,
            format=CONSOLE_FORMAT,
            colorize=console_stream is None and sys.stderr.isatty(),
            backtrace=False,
            diagnose=False,
        )
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        logger.add(
            log_dir / "centaur.jsonl",
            level="DEBUG",
            serialize=True,
            rotation="20 MB",
            retention=10,
            encoding="utf-8",
            backtrace=False,
            diagnose=False,
            enqueue=False,
        )
    logging.basicConfig(handlers=[_InterceptHandler()], level=logging.INFO, force=True)
    # httpx logs full request URLs at INFO; they carry the bot token (redacted anyway).
    for noisy in ("httpx", "httpcore", "apscheduler.executors.default"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
