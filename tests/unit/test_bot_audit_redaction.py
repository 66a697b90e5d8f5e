"""The audit table never keeps a secret (issue 12 item 13).

Whatever a user types after a command goes into the audit row's `args`, and refusals put
core's words into `result`: a bot token or broker key pasted into the chat (by mistake, or
echoed in an error) must be redacted there exactly as in the logs (core/logs.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from core.audit import TEXT_LENGTH, AuditLog
from core.clock import SimClock
from core.ledger import AuditKind, AuditRow, Ledger
from core.logs import REDACTED, redact
from tests.e2e.test_bot_harness import bot_rig, has_text
from tests.kit.brokers import ny
from tests.kit.engine import file_ledger

TELEGRAM_TOKEN = "7312345678:AAHk2xYQ9Zr8p_vLmN3bC4dE5fG6hI7jK8l"
ALPACA_KEY = "PKZ3XQ7R2M9TLW4YB8NC"
KNOWN_SECRET = "correct-horse-battery-staple"


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return file_ledger(tmp_path / "ledger.db", SimClock(ny(9, 50)))


@pytest.fixture
def known_secret() -> Iterator[str]:
    redact.add([KNOWN_SECRET])
    try:
        yield KNOWN_SECRET
    finally:
        redact.clear()


def rows(ledger: Ledger) -> list[AuditRow]:
    with ledger.unit_of_work(read_only=True) as uow:
        return list(uow.session.scalars(select(AuditRow).order_by(AuditRow.id)).all())


def test_token_shaped_arguments_and_results_are_redacted(ledger: Ledger) -> None:
    audit = AuditLog(ledger)
    audit.record(
        AuditKind.COMMAND,
        "buy",
        ok=False,
        user_id=1,
        chat_id=1,
        args=f"AAPL {TELEGRAM_TOKEN} secret_key=hunter2hunter2",
        result=f"refused: bad key {ALPACA_KEY}",
    )
    (row,) = rows(ledger)
    stored = f"{row.action} {row.args} {row.result}"
    for secret in (TELEGRAM_TOKEN, "AAHk2xYQ9Zr8p", ALPACA_KEY, "hunter2hunter2"):
        assert secret not in stored
    assert row.args is not None and row.args.startswith("AAPL ") and REDACTED in row.args
    assert row.result is not None and REDACTED in row.result


def test_known_secrets_are_redacted(ledger: Ledger, known_secret: str) -> None:
    AuditLog(ledger).record(
        AuditKind.BUTTON, "menu", ok=True, user_id=1, chat_id=1, args=f"x {known_secret} y"
    )
    (row,) = rows(ledger)
    assert row.args == f"x {REDACTED} y"


def test_a_token_cut_by_the_length_limit_is_still_redacted(ledger: Ledger) -> None:
    """Redacted before it is shortened: a token cut in half no longer looks like one."""
    filler = "x " * ((TEXT_LENGTH - 20) // 2)
    AuditLog(ledger).record(
        AuditKind.COMMAND, "buy", ok=False, user_id=1, chat_id=1, args=filler + TELEGRAM_TOKEN
    )
    (row,) = rows(ledger)
    assert row.args is not None and len(row.args) <= TEXT_LENGTH
    assert "AAHk2xYQ9" not in row.args


async def test_a_token_typed_after_a_command_is_not_kept(tmp_path: Path) -> None:
    rig = await bot_rig(tmp_path)
    try:
        await rig.command(f"/buy AAPL {TELEGRAM_TOKEN}", has_text("buy"))
        buys = [a for a in rig.audit() if a.action == "buy"]
        assert buys and all(TELEGRAM_TOKEN not in f"{a.args} {a.result}" for a in buys)
        assert "AAHk2xYQ9Z" not in str([(a.args, a.result) for a in rig.audit()])
    finally:
        await rig.close()
