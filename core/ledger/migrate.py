"""Schema migrations, driven from code: `upgrade(url)` brings any ledger database to head.

Why programmatic: startup migrates automatically and the CLI (`centaur db ...`) must work
from any working directory, so there is no alembic.ini; the script location is this
package's `migrations/` folder. Entry points: `upgrade`, `current`, `head`,
`is_up_to_date`, `model_differences` (models vs database, [] when they agree), and for
authors of a schema change `autogenerate_revision` (write the next migration by diffing
the models against a database at head; then review it, as 0001 was).

SQLite needs one precaution: future migrations that alter tables do it in "batch" mode
(copy, drop, rename), which must run with foreign keys OFF. The pragma cannot change
inside a transaction, so it is switched off on the raw connection before the migration
transaction starts, the result is checked with `PRAGMA foreign_key_check`, and it is
switched back on before the connection returns to the pool.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from core.ledger.engine import create_engine_for
from core.ledger.models import Base

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# The newest migration in MIGRATIONS_DIR (a test checks it against Alembic's own head).
# Start-up reads the version table and, when it says this, skips importing Alembic.
HEAD_REVISION = "0003"


class MigrationError(RuntimeError):
    """The database could not be brought to a consistent schema."""


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    return config


@contextmanager
def _connection(target: str | URL | Engine) -> Iterator[Connection]:
    engine = target if isinstance(target, Engine) else create_engine_for(target)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        if engine is not target:
            engine.dispose()


def _set_sqlite_foreign_keys(connection: Connection, enabled: bool) -> None:
    raw: Any = connection.connection.driver_connection
    raw.execute(f"PRAGMA foreign_keys={'ON' if enabled else 'OFF'}")


def _recorded_revision(connection: Connection) -> str | None:
    """The version table's revision without Alembic (None: no table or no row)."""
    try:
        value = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except SQLAlchemyError:
        value = None
    connection.rollback()
    return None if value is None else str(value)


def upgrade(target: str | URL | Engine, revision: str = "head") -> None:
    """Migrate the database at `target` (a URL or an engine) up to `revision`."""
    with _connection(target) as connection:
        if revision == "head" and _recorded_revision(connection) == HEAD_REVISION:
            return  # already current: start-up need not import Alembic
    from alembic import command

    config = alembic_config()
    with _connection(target) as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            _set_sqlite_foreign_keys(connection, False)
        try:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
            if sqlite:
                problems = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                connection.commit()
                if problems:
                    raise MigrationError(f"foreign key violations after migration: {problems}")
        finally:
            if sqlite:
                _set_sqlite_foreign_keys(connection, True)


def current(target: str | URL | Engine) -> str | None:
    """The revision the database is at (None for an empty, never-migrated database)."""
    from alembic.migration import MigrationContext

    with _connection(target) as connection:
        revision = MigrationContext.configure(connection).get_current_revision()
        connection.rollback()
        return revision


def head() -> str:
    """The newest revision this code knows."""
    from alembic.script import ScriptDirectory

    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if revision is None:
        raise MigrationError(f"no migrations found in {MIGRATIONS_DIR}")
    return revision


# Longer names, as app/cli.py and app/doctor.py call them.
current_revision = current
head_revision = head


def is_up_to_date(target: str | URL | Engine) -> bool:
    return current(target) == head()


def autogenerate_revision(target: str | URL | Engine, message: str, rev_id: str) -> None:
    """Write `versions/<rev_id>_<message>.py` from the models' differences to `target`."""
    from alembic import command

    config = alembic_config()
    with _connection(target) as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True, rev_id=rev_id)


def model_differences(target: str | URL | Engine) -> list[Any]:
    """What autogenerate would change to make the database match the models ([] = agree)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with _connection(target) as connection:
        context = MigrationContext.configure(
            connection,
            opts={"compare_type": True, "target_metadata": Base.metadata},
        )
        differences: list[Any] = compare_metadata(context, Base.metadata)
        connection.rollback()
        return differences
