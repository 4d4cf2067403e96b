"""Campaigns: the frozen target set, exclusions, run state, one run per workflow, ad templates.

Idempotent on purpose: 0001 creates every table of the current schema module, so on a fresh
database these tables and columns already exist when this revision runs.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from hybridwb.platform import schema

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

NEW_COLUMNS: dict[str, list[sa.Column[Any]]] = {
    "message_templates": [
        sa.Column("advertising", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("sender", sa.String(100)),
    ],
}


def upgrade() -> None:
    if op.get_context().as_sql:
        # an offline script starts from an empty database, where 0001 already created
        # every table, column and index of the schema module: nothing to add here
        return
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    existing = set(inspector.get_table_names())
    for name in schema.CAMPAIGN_TABLES:
        if name in existing:
            continue
        table = schema.metadata.tables[name]
        uniques = [
            sa.UniqueConstraint(*[c.name for c in con.columns], name=con.name)
            for con in table.constraints
            if isinstance(con, sa.UniqueConstraint) and con.name
        ]
        op.create_table(name, *[c._copy() for c in table.columns], *uniques)
        if bind.dialect.name == "postgresql":
            # exclusions and frozen sets hold recipients: the service role only
            # (as 0003 does for the tables it finds: the service role only)
            op.execute(f'ALTER TABLE "{name}" ENABLE ROW LEVEL SECURITY')
            op.execute(f'REVOKE ALL ON "{name}" FROM PUBLIC')
            op.execute(
                "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') "
                f'THEN REVOKE ALL ON "{name}" FROM anon, authenticated; '
                f'GRANT SELECT, INSERT, UPDATE, DELETE ON "{name}" TO service_role; '
                "END IF; END $$"
            )
    for table_name, columns in NEW_COLUMNS.items():
        have = {c["name"] for c in inspector.get_columns(table_name)}
        for column in columns:
            if column.name not in have:
                op.add_column(table_name, column)
    indexes = {i["name"] for i in inspector.get_indexes("send_records")}
    if "ix_send_records_recipient" not in indexes:
        op.create_index("ix_send_records_recipient", "send_records", ["recipient", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_send_records_recipient", table_name="send_records")
    for table_name, columns in NEW_COLUMNS.items():
        for column in columns:
            op.drop_column(table_name, column.name)
    for name in reversed(schema.CAMPAIGN_TABLES):
        op.drop_table(name)
