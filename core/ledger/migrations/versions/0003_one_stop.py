"""One stop (issue 12 item 10): a draft's structural low, an order's broker high-water mark.

- `drafts.structure_stop`: the signal's (or the trader's) structural low, shown as
  information only. `drafts.initial_stop` is now the stop that sizes the trade: the
  trigger less the draft's frozen `drafts.trail_percent`, which is also the protection's
  trail at the fill.
- `orders.hwm`: a trailing stop's high-water mark as the broker last reported it; its
  level is kept in `orders.stop_price` (Alpaca and IBKR report a trailing stop's current
  level as its stop price).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.ledger.types import Money

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # batch mode keeps SQLite and PostgreSQL on one code path (a plain ADD COLUMN on both).
    with op.batch_alter_table("drafts") as batch:
        batch.add_column(sa.Column("structure_stop", Money(), nullable=True))
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("hwm", Money(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("hwm")
    with op.batch_alter_table("drafts") as batch:
        batch.drop_column("structure_stop")
