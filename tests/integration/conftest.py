"""Ledger fixtures: every ledger test runs on SQLite and, when configured, on PostgreSQL.

PostgreSQL runs only when `CENTAUR_TEST_PG_URL` is set (e.g.
`postgresql+psycopg://postgres@127.0.0.1:5432/test`); otherwise those cases are skipped.
Each PostgreSQL test gets its own fresh schema (dropped afterwards) selected through the
connection's `search_path`, so tests are isolated from each other and from anyone else
using the same database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url

from core.clock import SimClock
from core.ledger import (
    AccountMode,
    AccountRow,
    BrokerKind,
    Ledger,
    create_engine_for,
    upgrade,
)

PG_URL_ENV = "CENTAUR_TEST_PG_URL"
T0 = datetime(2026, 3, 2, 14, 45, tzinfo=UTC)  # a Monday, 09:45 New York time


def _backends() -> list[object]:
    pg_missing = not os.environ.get(PG_URL_ENV)
    return [
        pytest.param("sqlite", id="sqlite"),
        pytest.param(
            "postgresql",
            id="postgresql",
            marks=[
                pytest.mark.postgres,
                pytest.mark.skipif(pg_missing, reason=f"{PG_URL_ENV} is not set"),
            ],
        ),
    ]


@pytest.fixture(params=_backends())
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a fresh SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    base = make_url(os.environ[PG_URL_ENV])
    schema = f"ledger_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    try:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        scoped = base.update_query_dict({"options": f"-csearch_path={schema}"})
        yield scoped.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


@pytest.fixture
def db_engine(db_url: str) -> Iterator[Engine]:
    """An engine on a database migrated to head."""
    engine = create_engine_for(db_url)
    upgrade(engine)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def sim_clock() -> SimClock:
    return SimClock(T0)


@pytest.fixture
def ledger(db_engine: Engine, sim_clock: SimClock) -> Ledger:
    return Ledger(db_engine, sim_clock)


@pytest.fixture
def account(ledger: Ledger) -> AccountRow:
    with ledger.unit_of_work() as uow:
        row = uow.accounts.ensure("paper-main", broker=BrokerKind.SIM, mode=AccountMode.PAPER)
        uow.commit()
        return row
