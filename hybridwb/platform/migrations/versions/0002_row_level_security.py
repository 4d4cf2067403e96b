"""Row level security on Postgres: service role all, authenticated read/write, anon nothing.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

from hybridwb.platform.schema import TABLES

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ROLES = ("anon", "authenticated", "service_role")


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    # Supabase has these roles; a plain Postgres gets them so the policies can name them
    for role in ROLES:
        extra = " BYPASSRLS" if role == "service_role" else ""
        op.execute(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') "
            f"THEN CREATE ROLE {role} NOLOGIN{extra}; END IF; END $$"
        )
    op.execute("GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role")
    for table in TABLES:
        op.execute(f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY')
        op.execute(f'REVOKE ALL ON "{table}" FROM anon')
        op.execute(
            f'GRANT SELECT, INSERT, UPDATE, DELETE ON "{table}" TO authenticated, service_role'
        )
        op.execute(
            f'CREATE POLICY "{table}_service_role_all" ON "{table}" FOR ALL TO service_role '
            "USING (true) WITH CHECK (true)"
        )
        op.execute(
            f'CREATE POLICY "{table}_authenticated_rw" ON "{table}" FOR ALL TO authenticated '
            "USING (true) WITH CHECK (true)"
        )


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f'DROP POLICY IF EXISTS "{table}_service_role_all" ON "{table}"')
        op.execute(f'DROP POLICY IF EXISTS "{table}_authenticated_rw" ON "{table}"')
        op.execute(f'ALTER TABLE "{table}" DISABLE ROW LEVEL SECURITY')
