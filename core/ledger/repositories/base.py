"""What every repository shares: its session, the clock, get/add, and insert-if-absent.

`_insert_unique` is how "at most once" is made safe on both SQLite and PostgreSQL: look
first (the common case), then insert inside a SAVEPOINT; if a concurrent writer got there
first, the unique constraint fires, only the savepoint is rolled back, and the existing
row is returned. The surrounding transaction stays usable either way.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import ClassVar, Generic, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.clock import Clock
from core.ledger.models import Base
from core.ledger.types import to_utc

RowT = TypeVar("RowT", bound=Base)


class LedgerLookupError(LookupError):
    """A row that must exist does not."""


class Repository(Generic[RowT]):
    row_type: ClassVar[type[Base]]

    def __init__(self, session: Session, clock: Clock) -> None:
        self._session = session
        self._clock = clock

    def _at(self, at: datetime | None) -> datetime:
        """`at` in UTC, or now from the clock."""
        return to_utc(at if at is not None else self._clock.now())

    def get(self, row_id: int) -> RowT | None:
        row = self._session.get(self.row_type, row_id)
        return row  # type: ignore[return-value]

    def require(self, row_id: int) -> RowT:
        row = self.get(row_id)
        if row is None:
            raise LedgerLookupError(f"{self.row_type.__tablename__} id {row_id} not found")
        return row

    def add(self, row: RowT) -> RowT:
        """Insert a row and flush, so its `id` is known."""
        self._session.add(row)
        self._session.flush()
        return row

    def _insert_unique(self, row: RowT, find: Callable[[], RowT | None]) -> tuple[RowT, bool]:
        """Insert unless `find()` already sees the row; returns (row, inserted)."""
        existing = find()
        if existing is not None:
            return existing, False
        try:
            with self._session.begin_nested():
                self._session.add(row)
        except IntegrityError:
            existing = find()
            if existing is None:  # a different constraint failed: not a duplicate
                raise
            return existing, False
        return row, True
