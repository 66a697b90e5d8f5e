"""Widen orders.client_order_id and orders.order_ref to 128 characters.

Alpaca allows client order ids of up to 128 characters; an order placed outside Centaur
with a long id must still be adopted by the reconciler.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # batch mode: SQLite has no ALTER COLUMN, so it copies the table; PostgreSQL alters.
    with op.batch_alter_table("orders") as batch:
        batch.alter_column(
            "client_order_id",
            existing_type=sa.String(length=64),
            type_=sa.String(length=128),
            existing_nullable=False,
        )
        batch.alter_column(
            "order_ref",
            existing_type=sa.String(length=64),
            type_=sa.String(length=128),
            existing_nullable=True,
        )


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.alter_column(
            "order_ref",
            existing_type=sa.String(length=128),
            type_=sa.String(length=64),
            existing_nullable=True,
        )
        batch.alter_column(
            "client_order_id",
            existing_type=sa.String(length=128),
            type_=sa.String(length=64),
            existing_nullable=False,
        )
