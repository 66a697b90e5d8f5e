"""Alembic environment for the ledger.

Normally `core.ledger.migrate.upgrade()` hands over an open connection in
`config.attributes["connection"]`; otherwise the URL comes from the `sqlalchemy.url`
option (e.g. `alembic -x` tooling). Autogenerate renders the ledger's own column types
as imports from `core.ledger.types` and enums as plain strings, so a migration never
depends on today's enum members. On PostgreSQL an advisory lock serialises concurrent
upgrades (two processes starting at once); SQLite's `BEGIN IMMEDIATE` already does.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection, Enum, text

from core.ledger.engine import create_engine_for
from core.ledger.models import Base
from core.ledger.types import Money, UtcDateTime

MIGRATION_LOCK_ID = 0x63656E74  # "cent"


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    if type_ != "type":
        return False
    if isinstance(obj, Money | UtcDateTime):
        autogen_context.imports.add(f"from core.ledger.types import {type(obj).__name__}")
        return f"{type(obj).__name__}()"
    if isinstance(obj, Enum) and not obj.native_enum:
        return f"sa.String(length={obj.length})"
    return False


def run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        compare_type=True,
        render_item=render_item,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        context.run_migrations()


def main() -> None:
    if context.is_offline_mode():
        raise RuntimeError("offline (SQL script) migrations are not supported for the ledger")
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_with(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection given and no sqlalchemy.url configured")
    engine = create_engine_for(url)
    try:
        with engine.connect() as own_connection:
            run_with(own_connection)
    finally:
        engine.dispose()


main()
