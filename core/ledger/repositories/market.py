"""Signals, regimes, drafts and position snapshots: what the market and the human proposed.

Drafts change state with a conditional UPDATE (`... WHERE status = 'pending'`), so a
double tap on [Confirm], even from two processes, confirms exactly once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select, update

from core.domain import ZERO, Position, Regime, Symbol
from core.ledger.models import DraftRow, PositionRow, RegimeRow, SignalRow
from core.ledger.repositories.base import Repository
from core.ledger.types import DraftStatus, PositionSource, SignalStatus


class SignalRepository(Repository[SignalRow]):
    row_type = SignalRow

    def add_if_new(self, signal: SignalRow) -> tuple[SignalRow, bool]:
        """Insert unless (symbol, session_date, signal_time) exists; returns (row, inserted)."""
        return self._insert_unique(
            signal, lambda: self.find(signal.symbol, signal.session_date, signal.signal_time)
        )

    def find(self, symbol: str, session_date: date, signal_time: datetime) -> SignalRow | None:
        stmt = select(SignalRow).where(
            SignalRow.symbol == symbol,
            SignalRow.session_date == session_date,
            SignalRow.signal_time == signal_time,
        )
        return self._session.scalars(stmt).one_or_none()

    def for_day(
        self,
        session_date: date,
        *,
        symbol: str | None = None,
        statuses: Iterable[SignalStatus] | None = None,
    ) -> Sequence[SignalRow]:
        stmt = select(SignalRow).where(SignalRow.session_date == session_date)
        if symbol is not None:
            stmt = stmt.where(SignalRow.symbol == symbol)
        if statuses is not None:
            stmt = stmt.where(SignalRow.status.in_(tuple(statuses)))
        return self._session.scalars(stmt.order_by(SignalRow.signal_time, SignalRow.id)).all()

    def set_status(self, signal: SignalRow, status: SignalStatus) -> None:
        signal.status = status
        self._session.flush()


class RegimeRepository(Repository[RegimeRow]):
    row_type = RegimeRow

    def record(
        self,
        symbol: str,
        session_date: date,
        label: Regime,
        *,
        evidence: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> RegimeRow:
        return self.add(
            RegimeRow(
                symbol=symbol,
                session_date=session_date,
                label=label,
                evidence=evidence,
                at=self._at(at),
            )
        )

    def latest(self, symbol: str, session_date: date) -> RegimeRow | None:
        stmt = (
            select(RegimeRow)
            .where(RegimeRow.symbol == symbol, RegimeRow.session_date == session_date)
            .order_by(RegimeRow.at.desc(), RegimeRow.id.desc())
            .limit(1)
        )
        return self._session.scalars(stmt).first()

    def history(self, session_date: date, symbol: str | None = None) -> Sequence[RegimeRow]:
        stmt = select(RegimeRow).where(RegimeRow.session_date == session_date)
        if symbol is not None:
            stmt = stmt.where(RegimeRow.symbol == symbol)
        return self._session.scalars(stmt.order_by(RegimeRow.at, RegimeRow.id)).all()

    def latest_by_symbol(self, session_date: date) -> dict[str, RegimeRow]:
        return {row.symbol: row for row in self.history(session_date)}


class DraftRepository(Repository[DraftRow]):
    row_type = DraftRow

    def pending(self, account_id: int) -> Sequence[DraftRow]:
        stmt = select(DraftRow).where(
            DraftRow.account_id == account_id, DraftRow.status == DraftStatus.PENDING
        )
        return self._session.scalars(stmt.order_by(DraftRow.id)).all()

    def in_batch(self, batch_id: str) -> Sequence[DraftRow]:
        stmt = select(DraftRow).where(DraftRow.batch_id == batch_id).order_by(DraftRow.id)
        return self._session.scalars(stmt).all()

    def due_to_expire(self, now: datetime | None = None) -> Sequence[DraftRow]:
        """Pending drafts whose `expires_at` has passed."""
        stmt = select(DraftRow).where(
            DraftRow.status == DraftStatus.PENDING,
            DraftRow.expires_at.is_not(None),
            DraftRow.expires_at <= self._at(now),
        )
        return self._session.scalars(stmt.order_by(DraftRow.id)).all()

    def transition_if(
        self,
        draft_id: int,
        from_status: DraftStatus,
        to_status: DraftStatus,
        at: datetime | None = None,
    ) -> bool:
        """Atomically move a draft from `from_status` to `to_status`; False if it was not there.

        Confirming stamps `confirmed_at`. This is the idempotency guard for confirms.
        """
        moment = self._at(at)
        values: dict[str, Any] = {"status": to_status, "updated_at": moment}
        if to_status is DraftStatus.CONFIRMED:
            values["confirmed_at"] = moment
        stmt = (
            update(DraftRow)
            .where(DraftRow.id == draft_id, DraftRow.status == from_status)
            .values(**values)
            .execution_options(synchronize_session="fetch")
        )
        result = self._session.execute(stmt)
        return bool(getattr(result, "rowcount", 0) == 1)


class PositionRepository(Repository[PositionRow]):
    row_type = PositionRow

    def record(
        self,
        account_id: int,
        position: Position,
        source: PositionSource,
        at: datetime | None = None,
    ) -> PositionRow:
        return self.add(
            PositionRow(
                account_id=account_id,
                symbol=position.symbol,
                qty=position.qty,
                avg_entry_price=position.avg_entry_price,
                market_price=position.market_price,
                source=source,
                at=self._at(at),
            )
        )

    def record_all(
        self,
        account_id: int,
        positions: Iterable[Position],
        source: PositionSource,
        at: datetime | None = None,
    ) -> list[PositionRow]:
        """Snapshot a complete picture: symbols held before but absent now get a qty-0 row."""
        moment = self._at(at)
        rows = [self.record(account_id, position, source, moment) for position in positions]
        seen = {row.symbol for row in rows}
        for symbol in self.latest(account_id, source):
            if symbol not in seen:
                flat = Position(symbol=Symbol(symbol), qty=ZERO, avg_entry_price=ZERO)
                rows.append(self.record(account_id, flat, source, moment))
        return rows

    def latest(
        self,
        account_id: int,
        source: PositionSource | None = None,
        *,
        include_flat: bool = False,
    ) -> dict[str, PositionRow]:
        """The newest snapshot per symbol (by `at`, then id); flat ones left out by default."""
        newest_first = (PositionRow.at.desc(), PositionRow.id.desc())
        rank = func.row_number().over(partition_by=PositionRow.symbol, order_by=newest_first)
        ranked = select(PositionRow.id.label("id"), rank.label("rank")).where(
            PositionRow.account_id == account_id
        )
        if source is not None:
            ranked = ranked.where(PositionRow.source == source)
        sub = ranked.subquery()
        stmt = (
            select(PositionRow)
            .join(sub, sub.c.id == PositionRow.id)
            .where(sub.c.rank == 1)
            .order_by(PositionRow.symbol)
        )
        rows = self._session.scalars(stmt).all()
        return {row.symbol: row for row in rows if include_flat or row.qty != 0}

    def latest_for(
        self, account_id: int, symbol: str, source: PositionSource | None = None
    ) -> PositionRow | None:
        stmt = select(PositionRow).where(
            PositionRow.account_id == account_id, PositionRow.symbol == symbol
        )
        if source is not None:
            stmt = stmt.where(PositionRow.source == source)
        stmt = stmt.order_by(PositionRow.at.desc(), PositionRow.id.desc()).limit(1)
        return self._session.scalars(stmt).first()
