"""The initial platform schema: every table of hybridwb.platform.schema as of 0.1.

Revision ID: 0001
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import Table, UniqueConstraint

from hybridwb.platform import schema

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _create(table: Table) -> None:
    uniques = [
        UniqueConstraint(*[c.name for c in con.columns], name=con.name)
        for con in table.constraints
        if isinstance(con, UniqueConstraint) and con.name
    ]
    op.create_table(table.name, *[c._copy() for c in table.columns], *uniques)
    for index in table.indexes:
        op.create_index(index.name, table.name, [c.name for c in index.columns])


def upgrade() -> None:
    for table in schema.metadata.sorted_tables:
        _create(table)


def downgrade() -> None:
    for table in reversed(schema.metadata.sorted_tables):
        op.drop_table(table.name)
