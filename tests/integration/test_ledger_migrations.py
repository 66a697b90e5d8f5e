"""Migrations: empty -> head, idempotent, and models and migrations agree on both backends."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from core.ledger import Base, create_engine_for, current, default_db_url, head, upgrade
from core.ledger.migrate import is_up_to_date, model_differences


def test_upgrade_from_empty_to_head(db_url: str) -> None:
    assert current(db_url) is None
    assert not is_up_to_date(db_url)

    upgrade(db_url)

    assert current(db_url) == head() == "0003"
    engine = create_engine_for(db_url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert set(Base.metadata.tables) | {"alembic_version"} == tables


def test_upgrade_twice_is_a_no_op(db_url: str) -> None:
    upgrade(db_url)
    upgrade(db_url)
    assert is_up_to_date(db_url)


def test_models_and_migrations_agree(db_url: str) -> None:
    upgrade(db_url)
    assert model_differences(db_url) == []


def test_comparison_does_see_a_difference(db_url: str) -> None:
    """Guard against a vacuous comparison: a missing index must be reported."""
    upgrade(db_url)
    engine = create_engine_for(db_url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP INDEX ix_audit_at")
    finally:
        engine.dispose()
    differences = model_differences(db_url)
    assert [d[0] for d in differences] == ["add_index"]
    assert differences[0][1].name == "ix_audit_at"


def test_upgrade_accepts_an_engine(db_url: str) -> None:
    engine = create_engine_for(db_url)
    try:
        upgrade(engine)
        assert current(engine) == head()
    finally:
        engine.dispose()


def test_default_url_is_under_data_db_and_folder_is_created(tmp_path: Path) -> None:
    url = default_db_url(tmp_path)
    assert url == f"sqlite:///{tmp_path.resolve()}/data/db/centaur.db"
    engine = create_engine_for(url)
    try:
        upgrade(engine)
        assert (tmp_path / "data" / "db" / "centaur.db").is_file()
    finally:
        engine.dispose()


def test_sqlite_connection_pragmas(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'p.db'}")
    try:
        with engine.connect() as connection:
            pragma = connection.exec_driver_sql
            assert pragma("PRAGMA journal_mode").scalar() == "wal"
            assert pragma("PRAGMA foreign_keys").scalar() == 1
            assert pragma("PRAGMA busy_timeout").scalar() == 10_000
    finally:
        engine.dispose()


def test_plain_postgresql_url_gets_the_psycopg_driver() -> None:
    engine = create_engine_for("postgresql://user@localhost/db")
    try:
        assert engine.dialect.driver == "psycopg"
    finally:
        engine.dispose()


def test_unsupported_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        create_engine_for("mysql://user@localhost/db")


def test_0002_widens_client_order_ids_and_keeps_rows(db_url: str) -> None:
    from sqlalchemy import text

    upgrade(db_url, "0001")
    engine = create_engine_for(db_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO accounts (id, created_at, name, broker, mode) "
                    "VALUES (1, '2024-03-05 14:00:00+00:00', 'a', 'sim', 'paper')"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO orders (id, created_at, account_id, client_order_id, symbol, "
                    "side, order_type, time_in_force, qty, extended_hours, role, status, "
                    "filled_qty, version, updated_at) VALUES (1, '2024-03-05 14:00:00+00:00', 1, "
                    ":cid, 'AAPL', 'buy', 'stop', 'day', '10', false, 'entry', 'accepted', '0', "
                    "1, '2024-03-05 14:00:00+00:00')"
                ),
                {"cid": "x" * 64},
            )
        upgrade(db_url, "0002")
        assert current(db_url) == "0002"
        with engine.begin() as connection:
            assert connection.execute(text("SELECT client_order_id FROM orders")).scalar() == (
                "x" * 64
            )
            connection.execute(text("UPDATE orders SET client_order_id = :cid"), {"cid": "y" * 128})
            stored = connection.execute(text("SELECT client_order_id FROM orders")).scalar()
        assert stored == "y" * 128
    finally:
        engine.dispose()


def test_head_constant_is_alembics_head(db_url: str) -> None:
    from core.ledger.migrate import HEAD_REVISION

    assert head() == HEAD_REVISION
    upgrade(db_url)
    upgrade(db_url)  # the fast path: already at head
    assert current(db_url) == HEAD_REVISION


def test_0003_adds_the_structure_stop_and_the_broker_hwm_and_keeps_rows(db_url: str) -> None:
    from sqlalchemy import text

    upgrade(db_url, "0002")
    engine = create_engine_for(db_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO accounts (id, created_at, name, broker, mode) "
                    "VALUES (1, '2024-03-05 14:00:00+00:00', 'a', 'sim', 'paper')"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO drafts (id, created_at, account_id, symbol, side, order_type, "
                    "trigger_price, initial_stop, qty, status, updated_at) VALUES "
                    "(1, '2024-03-05 14:00:00+00:00', 1, 'AAPL', 'buy', 'stop', '101', '99', "
                    "'50', 'pending', '2024-03-05 14:00:00+00:00')"
                )
            )
        upgrade(db_url)
        assert current(db_url) == "0003"
        with engine.begin() as connection:
            row = connection.execute(text("SELECT initial_stop, structure_stop FROM drafts")).one()
            assert row.structure_stop is None and row.initial_stop is not None
            connection.execute(text("UPDATE drafts SET structure_stop = '98.5'"))
            assert connection.execute(text("SELECT hwm FROM orders")).all() == []
    finally:
        engine.dispose()
