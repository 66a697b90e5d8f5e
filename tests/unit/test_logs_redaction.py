"""Secrets never reach a log: not the console, not the JSON file, not via stdlib logging,
not in a traceback."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger

from core.logs import REDACTED, redact, setup_logging

TOKEN = "7312345678:AAH3kJ9xQ2mZ8vN4pL6tR1sW0yU5eI7oAbC"
ALPACA_KEY = "PKZ8Q3M1N7V2B5X9C4L6"
ALPACA_SECRET = "uJ4sT9wQ2eR7yU1iO5pA3sD6fG8hJ0kL2zX4cV6b"


@pytest.fixture
def sinks(tmp_path: Path) -> Iterator[tuple[io.StringIO, Path]]:
    console = io.StringIO()
    setup_logging(
        log_dir=tmp_path / "logs",
        level="DEBUG",
        secrets=[TOKEN, ALPACA_KEY, ALPACA_SECRET],
        console_stream=console,
    )
    yield console, tmp_path / "logs" / "centaur.jsonl"
    logger.remove()
    redact.clear()


def _everything(console: io.StringIO, file: Path) -> str:
    logger.complete()
    return console.getvalue() + file.read_text()


def test_known_secrets_redacted_in_every_sink(sinks: tuple[io.StringIO, Path]) -> None:
    console, file = sinks
    logger.info("connecting with key {} and secret {}", ALPACA_KEY, ALPACA_SECRET)
    logger.bind(token=TOKEN, nested={"k": [ALPACA_SECRET]}).warning("bound values")
    text = _everything(console, file)
    for secret in (TOKEN, ALPACA_KEY, ALPACA_SECRET):
        assert secret not in text
    assert REDACTED in console.getvalue()
    for line in file.read_text().splitlines():
        json.loads(line)  # every line of the file sink is one JSON object


def test_stdlib_logging_from_libraries_is_redacted(sinks: tuple[io.StringIO, Path]) -> None:
    console, file = sinks
    logging.getLogger("telegram.ext").warning(
        "HTTP Request: POST https://api.telegram.org/bot%s/getUpdates", TOKEN
    )
    text = _everything(console, file)
    assert TOKEN not in text
    assert "getUpdates" in text


def test_traceback_is_redacted(sinks: tuple[io.StringIO, Path]) -> None:
    console, file = sinks
    try:
        raise RuntimeError(f"auth failed for {ALPACA_SECRET}")
    except RuntimeError:
        logger.exception("broker call failed")
    text = _everything(console, file)
    assert ALPACA_SECRET not in text
    assert "RuntimeError" in text


def test_unknown_token_shaped_strings_are_redacted_by_pattern(
    sinks: tuple[io.StringIO, Path],
) -> None:
    console, file = sinks
    stranger_token = "5123456789:ZZH3kJ9xQ2mZ8vN4pL6tR1sW0yU5eI7oXyZ"
    logger.info("user pasted {} and api_key=abcd1234secret", stranger_token)
    text = _everything(console, file)
    assert stranger_token not in text
    assert "abcd1234secret" not in text


def test_database_url_password_redacted(sinks: tuple[io.StringIO, Path]) -> None:
    console, file = sinks
    logger.info("db at postgresql+psycopg://centaur:hunter22@db:5432/centaur")
    assert "hunter22" not in _everything(console, file)
