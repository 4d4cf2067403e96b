"""Target keys and recipients of any length: `text` instead of VARCHAR(200) / VARCHAR(300).

A customer table keyed by e-mail (`VARCHAR(255)`; a mailbox may be 254 characters) froze
nothing on Postgres: the COPY of a key past 200 characters failed the freeze, so nobody in
that audience was messaged, and the error quoted the address. The store now keeps what the
source holds: `target_key` of `run_targets`, `run_skips` and `send_records`, and their
`recipient`, become `text`.

On Postgres `varchar` to `text` is binary-coercible: no table is rewritten and no index is
rebuilt, so the change is instant whatever the history's size. SQLite does not enforce a
VARCHAR's length, so there is nothing to change there (its tables keep their declared type;
the embedded store was never limited). The downgrade narrows the columns again, and fails
when a stored value is longer.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

#: (table, column, the width it had before this revision)
WIDENED = [
    ("run_targets", "target_key", 200),
    ("run_targets", "recipient", 300),
    ("run_skips", "target_key", 200),
    ("send_records", "target_key", 200),
    ("send_records", "recipient", 300),
]


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for table, column, width in WIDENED:
        op.alter_column(table, column, type_=sa.Text(), existing_type=sa.String(width))


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for table, column, width in WIDENED:
        op.alter_column(table, column, type_=sa.String(width), existing_type=sa.Text())
