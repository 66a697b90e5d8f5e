"""`Ledger` and its unit of work: the only way code touches the ledger database.

Why a unit of work: an order intent, its event and the outbox message announcing it must
be written together or not at all. So every use case opens one unit of work, changes
rows through the typed repositories, and calls `commit()` explicitly. Leaving the block
without committing (an exception, an early return) rolls back: a half-done change is
never persisted by accident. There is no global session.

Timestamps: `created_at` and `updated_at` come from the injected `Clock` (never the
database's own clock), stamped at flush time: `created_at` on insert when not set,
`updated_at` on insert and on every update that did not set it explicitly.

`unit_of_work(read_only=True)` is for queries (status cards, reports): on SQLite it does
not take the write lock, and any attempt to write through it raises `ReadOnlyError`.

Rows returned by repositories stay readable after the unit of work closes, provided
nothing uncommitted was written (`expire_on_commit=False`, and a clean close does not
expire them). When uncommitted writes are rolled back, every row of that unit of work is
expired, since its in-memory state no longer matches the database. To change a row, load
it again in a new unit of work (or `session.add` it there: its `version` then guards
against overwriting a newer change).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Engine, event, inspect
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, sessionmaker

from core.clock import Clock, LiveClock
from core.ledger.engine import READ_ONLY_OPTION
from core.ledger.repositories.market import (
    DraftRepository,
    PositionRepository,
    RegimeRepository,
    SignalRepository,
)
from core.ledger.repositories.orders import (
    FillRepository,
    OrderEventRepository,
    OrderRepository,
    ProtectionLinkRepository,
)
from core.ledger.repositories.outbox import AuditRepository, NotificationRepository
from core.ledger.repositories.session import (
    AccountRepository,
    RiskEventRepository,
    SessionStateRepository,
    TradingDayRepository,
)
from core.ledger.types import to_utc

_CLOCK_KEY = "centaur_clock"
_READ_ONLY_KEY = "centaur_read_only"
_UNCOMMITTED_KEY = "centaur_uncommitted_writes"
RowT = TypeVar("RowT")


class ReadOnlyError(RuntimeError):
    """A write was attempted through a read-only unit of work."""


def _before_orm_execute(state: ORMExecuteState) -> None:
    if state.is_select:
        return
    if state.session.info.get(_READ_ONLY_KEY):
        raise ReadOnlyError("this unit of work is read-only")
    state.session.info[_UNCOMMITTED_KEY] = True


def _after_flush(session: Session, _context: Any) -> None:
    session.info[_UNCOMMITTED_KEY] = True


def _transaction_ended(session: Session) -> None:
    session.info.pop(_UNCOMMITTED_KEY, None)


def _soft_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    if not previous_transaction.nested:  # a savepoint leaves the outer writes pending
        _transaction_ended(session)


def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    if session.info.get(_READ_ONLY_KEY) and (session.new or session.dirty or session.deleted):
        raise ReadOnlyError("this unit of work is read-only")
    clock: Clock = session.info[_CLOCK_KEY]
    now = to_utc(clock.now())
    for row in session.new:
        if hasattr(row, "created_at") and row.created_at is None:
            row.created_at = now
        if hasattr(row, "updated_at") and row.updated_at is None:
            row.updated_at = now
    for row in session.dirty:
        if not hasattr(row, "updated_at") or not session.is_modified(row):
            continue
        if not inspect(row).attrs.updated_at.history.has_changes():
            row.updated_at = now


class UnitOfWork:
    """One transaction and the repositories that work inside it."""

    def __init__(self, session: Session, clock: Clock) -> None:
        self.session = session
        self.clock = clock
        self.accounts = AccountRepository(session, clock)
        self.drafts = DraftRepository(session, clock)
        self.orders = OrderRepository(session, clock)
        self.order_events = OrderEventRepository(session, clock)
        self.fills = FillRepository(session, clock)
        self.positions = PositionRepository(session, clock)
        self.protection_links = ProtectionLinkRepository(session, clock)
        self.signals = SignalRepository(session, clock)
        self.regimes = RegimeRepository(session, clock)
        self.session_states = SessionStateRepository(session, clock)
        self.trading_days = TradingDayRepository(session, clock)
        self.risk_events = RiskEventRepository(session, clock)
        self.notifications = NotificationRepository(session, clock)
        self.audit = AuditRepository(session, clock)

    def now(self) -> datetime:
        return to_utc(self.clock.now())

    def add(self, row: RowT) -> RowT:
        """Add any row and flush it, so its `id` is known."""
        self.session.add(row)
        self.session.flush()
        return row

    def flush(self) -> None:
        self.session.flush()

    def commit(self) -> None:
        """Make everything so far durable; the unit of work stays usable afterwards."""
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()


class Ledger:
    """Entry point: `with ledger.unit_of_work() as uow: ...; uow.commit()`."""

    def __init__(self, engine: Engine, clock: Clock | None = None) -> None:
        self.engine = engine
        self.clock: Clock = clock if clock is not None else LiveClock()
        self._sessions = sessionmaker(
            bind=engine, expire_on_commit=False, autoflush=True, info={_CLOCK_KEY: self.clock}
        )
        self._read_only_engine = engine.execution_options(**{READ_ONLY_OPTION: True})
        event.listen(self._sessions, "before_flush", _before_flush)
        event.listen(self._sessions, "do_orm_execute", _before_orm_execute)
        event.listen(self._sessions, "after_flush", _after_flush)
        event.listen(self._sessions, "after_commit", _transaction_ended)
        event.listen(self._sessions, "after_soft_rollback", _soft_rollback)

    @contextmanager
    def unit_of_work(self, *, read_only: bool = False) -> Iterator[UnitOfWork]:
        """A unit of work; `read_only=True` for queries (no write lock on SQLite)."""
        if read_only:
            session = self._sessions(bind=self._read_only_engine, info={_READ_ONLY_KEY: True})
        else:
            session = self._sessions()
        try:
            yield UnitOfWork(session, self.clock)
        finally:
            # Anything not committed is discarded, exception or not. Roll back explicitly
            # (expiring rows) only when there is something to discard; otherwise closing
            # ends the transaction and leaves the rows readable.
            if session.info.get(_UNCOMMITTED_KEY):
                session.rollback()
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()
