"""Engine factory: one place that knows how to open the ledger database correctly.

SQLite (the default, a file under `data/db/`) needs care to be a trustworthy ledger:
- WAL journal, so the bot can read while the engine writes, and `synchronous=FULL`, so a
  committed order intent survives a power cut (volume is tiny; durability is not).
- `foreign_keys=ON` (off by default in SQLite!) and a `busy_timeout`, so a second writer
  waits instead of failing at once.
- Python's sqlite3 module (before 3.12) does not BEGIN before SELECTs or SAVEPOINTs,
  which breaks savepoints and "read then write" transactions. SQLAlchemy is told to take
  over: the driver's own transaction handling is disabled and every transaction starts
  with `BEGIN IMMEDIATE`, taking the write lock up front. A unit of work that reads and
  then writes can therefore never fail half-way with SQLITE_BUSY; writers queue instead.
  Connections carrying the `READ_ONLY_OPTION` execution option start with a plain
  (deferred) `BEGIN` instead: readers never wait for the write lock.
  Consequence for asyncio code: a write unit of work must never stay open across an
  `await` (another coroutine opening one on the same thread would wait for a lock that
  cannot be released). Keep units of work short and synchronous.

PostgreSQL is reached with `postgresql+psycopg://` (psycopg 3); a bare `postgresql://`
URL is upgraded to that driver. There, read-only connections run `SET TRANSACTION READ
ONLY`, so the database itself refuses a write from a reader. The caller decides the URL
(e.g. from `CENTAUR_DB_URL`); this module never reads the environment.

JSON columns are serialised with a codec that writes Decimal as a string (exact) and
datetimes/dates as ISO 8601, so evidence and payload dicts may carry domain values.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

DEFAULT_DB_RELATIVE_PATH = Path("data/db/centaur.db")
SQLITE_BUSY_TIMEOUT_MS = 10_000
READ_ONLY_OPTION = "ledger_read_only"
"""Execution option (see `Engine.execution_options`) marking read-only transactions."""


def default_db_url(root: Path) -> str:
    """`sqlite:///<root>/data/db/centaur.db` (absolute, so the working dir does not matter)."""
    return f"sqlite:///{(root / DEFAULT_DB_RELATIVE_PATH).resolve()}"


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def json_dumps(value: Any) -> str:
    """The JSON codec of every ledger engine (Decimal -> exact string)."""
    return json.dumps(value, default=_json_default, ensure_ascii=False, sort_keys=True)


def normalize_url(url: str | URL) -> URL:
    """Parse a database URL; plain `postgresql://` gets the psycopg 3 driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def is_sqlite_memory(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def create_engine_for(url: str | URL, *, echo: bool = False) -> Engine:
    """An engine configured for the ledger; creates the SQLite file's folder if needed."""
    parsed = normalize_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _create_sqlite_engine(parsed, echo=echo)
    if backend == "postgresql":
        return _create_postgres_engine(parsed, echo=echo)
    raise ValueError(f"unsupported ledger database {parsed.render_as_string()!r}")


def _is_read_only(connection: Connection) -> bool:
    return bool(connection.get_execution_options().get(READ_ONLY_OPTION, False))


def _create_postgres_engine(url: URL, *, echo: bool) -> Engine:
    engine = create_engine(url, echo=echo, pool_pre_ping=True, json_serializer=json_dumps)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if _is_read_only(connection):
            connection.exec_driver_sql("SET TRANSACTION READ ONLY")

    return engine


def _create_sqlite_engine(url: URL, *, echo: bool) -> Engine:
    memory = is_sqlite_memory(url)
    if memory:
        # One shared connection, or every checkout would see a different empty database.
        engine = create_engine(
            url,
            echo=echo,
            json_serializer=json_dumps,
            poolclass=StaticPool,
            connect_args={"check_same_thread": False},
        )
    else:
        assert url.database is not None
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, json_serializer=json_dumps)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (see docstring).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            if not memory:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN" if _is_read_only(connection) else "BEGIN IMMEDIATE")

    return engine
