"""Accounts and the per-day trading state that must survive a restart.

`trading_days` holds one row per account and session date: the allow/deny answer, LOCKED
and SAFE MODE reasons, trade count and realised P&L. `session_states` is the append-only
history of state-machine transitions with their causes; `risk_events` records every risk
decision worth explaining later.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import select

from core.ledger.models import AccountRow, RiskEventRow, SessionStateRow, TradingDayRow
from core.ledger.repositories.base import LedgerLookupError, Repository
from core.ledger.types import AccountMode, BrokerKind


class AccountRepository(Repository[AccountRow]):
    row_type = AccountRow

    def by_name(self, name: str) -> AccountRow | None:
        return self._session.scalars(select(AccountRow).where(AccountRow.name == name)).first()

    def require_name(self, name: str) -> AccountRow:
        account = self.by_name(name)
        if account is None:
            raise LedgerLookupError(f"account {name!r} not found")
        return account

    def ensure(
        self,
        name: str,
        *,
        broker: BrokerKind,
        mode: AccountMode,
        external_account_id: str | None = None,
    ) -> AccountRow:
        """Get the account by name, creating it if absent (config is the source of accounts).

        An existing account keeps its broker and mode: a config that changes them is a
        different account and must use a different name. The external id is filled in
        when it was unknown.
        """
        row = AccountRow(
            name=name, broker=broker, mode=mode, external_account_id=external_account_id
        )
        account, _ = self._insert_unique(row, lambda: self.by_name(name))
        if account.broker != broker or account.mode != mode:
            raise ValueError(
                f"account {name!r} is {account.broker}/{account.mode} in the ledger, "
                f"not {broker}/{mode}"
            )
        if account.external_account_id is None and external_account_id is not None:
            account.external_account_id = external_account_id
            self._session.flush()
        return account

    def all(self) -> Sequence[AccountRow]:
        return self._session.scalars(select(AccountRow).order_by(AccountRow.id)).all()


class TradingDayRepository(Repository[TradingDayRow]):
    row_type = TradingDayRow

    def find(self, account_id: int, session_date: date) -> TradingDayRow | None:
        stmt = select(TradingDayRow).where(
            TradingDayRow.account_id == account_id, TradingDayRow.session_date == session_date
        )
        return self._session.scalars(stmt).one_or_none()

    def get_or_create(self, account_id: int, session_date: date) -> TradingDayRow:
        """The day's row; a new one starts unanswered (not allowed), unlocked, zero trades."""
        row = TradingDayRow(account_id=account_id, session_date=session_date)
        day, _ = self._insert_unique(row, lambda: self.find(account_id, session_date))
        return day

    def recent(self, account_id: int, limit: int = 30) -> Sequence[TradingDayRow]:
        """Newest first."""
        stmt = (
            select(TradingDayRow)
            .where(TradingDayRow.account_id == account_id)
            .order_by(TradingDayRow.session_date.desc())
            .limit(limit)
        )
        return self._session.scalars(stmt).all()

    def between(self, account_id: int, first: date, last: date) -> Sequence[TradingDayRow]:
        """Days in [first, last], oldest first (week and month P&L)."""
        stmt = (
            select(TradingDayRow)
            .where(
                TradingDayRow.account_id == account_id,
                TradingDayRow.session_date >= first,
                TradingDayRow.session_date <= last,
            )
            .order_by(TradingDayRow.session_date)
        )
        return self._session.scalars(stmt).all()


class SessionStateRepository(Repository[SessionStateRow]):
    row_type = SessionStateRow

    def record(
        self,
        account_id: int,
        session_date: date,
        *,
        to_state: str,
        cause: str,
        from_state: str | None = None,
        trigger: str | None = None,
        at: datetime | None = None,
    ) -> SessionStateRow:
        return self.add(
            SessionStateRow(
                account_id=account_id,
                session_date=session_date,
                from_state=from_state,
                to_state=to_state,
                trigger=trigger,
                cause=cause,
                at=self._at(at),
            )
        )

    def latest(self, account_id: int, session_date: date) -> SessionStateRow | None:
        stmt = (
            select(SessionStateRow)
            .where(
                SessionStateRow.account_id == account_id,
                SessionStateRow.session_date == session_date,
            )
            .order_by(SessionStateRow.at.desc(), SessionStateRow.id.desc())
            .limit(1)
        )
        return self._session.scalars(stmt).first()

    def history(self, account_id: int, session_date: date) -> Sequence[SessionStateRow]:
        stmt = (
            select(SessionStateRow)
            .where(
                SessionStateRow.account_id == account_id,
                SessionStateRow.session_date == session_date,
            )
            .order_by(SessionStateRow.at, SessionStateRow.id)
        )
        return self._session.scalars(stmt).all()


class RiskEventRepository(Repository[RiskEventRow]):
    row_type = RiskEventRow

    def record(
        self,
        account_id: int,
        session_date: date,
        *,
        kind: str,
        blocking: bool,
        detail: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> RiskEventRow:
        return self.add(
            RiskEventRow(
                account_id=account_id,
                session_date=session_date,
                kind=kind,
                blocking=blocking,
                detail=detail,
                at=self._at(at),
            )
        )

    def any_of_kind(self, account_id: int, kind: str) -> bool:
        """Whether the account ever recorded an event of this kind (any day)."""
        stmt = (
            select(RiskEventRow.id)
            .where(RiskEventRow.account_id == account_id, RiskEventRow.kind == kind)
            .limit(1)
        )
        return self._session.scalars(stmt).first() is not None

    def for_day(
        self, account_id: int, session_date: date, *, blocking_only: bool = False
    ) -> Sequence[RiskEventRow]:
        stmt = select(RiskEventRow).where(
            RiskEventRow.account_id == account_id, RiskEventRow.session_date == session_date
        )
        if blocking_only:
            stmt = stmt.where(RiskEventRow.blocking.is_(True))
        return self._session.scalars(stmt.order_by(RiskEventRow.at, RiskEventRow.id)).all()
