"""The audit trail port the bot writes through: who did what, with what result.

`TradingServices` already audits the actions it performs (confirm, cancel, kill...).
This port records the *interaction* itself (every command and button press by an
allowed user, and every update from a stranger that was refused), so that the bot never
touches the database directly and the audit table answers "what did the phone do".

Every text is redacted as log lines are (core/logs.py: known secrets, token-shaped
strings) before it is stored, and before it is shortened: whatever a user types after a
command lands in `args`, and a token pasted into the chat must not be kept in the ledger.
"""

from __future__ import annotations

from loguru import logger

from core.ledger import AuditKind, Ledger
from core.logs import redact

ACTION_LENGTH = 64  # the column's width
TEXT_LENGTH = 2000  # keep one row small; the chat has the full answer


def _stored(text: str, length: int) -> str:
    """Redacted first: a token cut in half by the limit would no longer look like one."""
    return redact(text)[:length]


class AuditLog:
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def record(
        self,
        kind: AuditKind,
        action: str,
        *,
        ok: bool,
        user_id: int | None,
        chat_id: int | None,
        args: str | None = None,
        result: str | None = None,
    ) -> None:
        """Write one row. Never raises: a failing audit write must not fail the user's action
        (it is logged loudly instead)."""
        try:
            with self._ledger.unit_of_work() as uow:
                uow.audit.record(
                    kind,
                    _stored(action, ACTION_LENGTH),
                    ok=ok,
                    user_id=user_id,
                    chat_id=chat_id,
                    args=None if args is None else _stored(args, TEXT_LENGTH),
                    result=None if result is None else _stored(result, TEXT_LENGTH),
                )
                uow.commit()
        except Exception:
            logger.exception("audit: could not record {} {}", kind, _stored(action, ACTION_LENGTH))


__all__ = ["AuditLog"]
