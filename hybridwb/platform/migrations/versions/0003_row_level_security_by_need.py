"""Row level security by need: what the UI reads and writes, nothing else.

0002 gave `authenticated` every command on every table (`USING (true)`), including the
audit log and the recipients in `send_records`, and left `alembic_version` to Supabase's
default grants (which give `anon` everything). From here on:

- `authenticated` reads workflows, template categories, templates, table mappings and
  individual variables; it creates, edits and deletes workflows, templates and
  variables, and adds/activates mapping versions (never deletes history);
- `user_settings` rows are their owner's only (`user_name` = the JWT's `sub`);
- `workflow_runs`, `send_records`, `query_logs`, `audit_log`, `schedule_locks` are the
  service role's only; `anon` gets nothing anywhere;
- `alembic_version` is revoked from `anon`, `authenticated` and PUBLIC and has row level
  security on without a policy, so a default grant cannot expose it again.

Each privilege is granted *and* allowed by a policy for exactly one command, so dropping
any policy takes that access away (tests/test_store_rls.py proves it policy by policy).
The service role bypasses row level security on Supabase (and in the roles 0002 creates);
it gets a policy only where it does not.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from hybridwb.platform.schema import TABLES

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

READ = (
    "workflows",
    "template_categories",
    "message_templates",
    "table_mappings",
    "individual_variables",
)
WRITE = {
    "workflows": ("INSERT", "UPDATE", "DELETE"),
    "message_templates": ("INSERT", "UPDATE", "DELETE"),
    "individual_variables": ("INSERT", "UPDATE", "DELETE"),
    "table_mappings": ("INSERT", "UPDATE"),
}
#: table -> the column holding the owner's id (the JWT `sub`, Supabase's auth.uid())
OWNED = {"user_settings": "user_name"}
JWT_SUB = "(current_setting('request.jwt.claims', true)::jsonb ->> 'sub')"


def _q(name: str) -> str:
    return op.get_context().dialect.identifier_preparer.quote(name)


def _policy(table: str, command: str) -> str:
    return _q(f"{table}_authenticated_{command.lower()}")


def _existing() -> list[str]:
    """Our tables that exist now: 0001 creates the tables of the current schema module, so
    on an older database a table a later revision adds is not there yet (offline, for
    `hybridwb init --sql`, every table is, as 0001 has just created them)."""
    if context.is_offline_mode():
        return list(TABLES)
    have = set(sa.inspect(op.get_bind()).get_table_names())
    return [t for t in TABLES if t in have]


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    tables = _existing()
    for table in [*tables, "alembic_version"]:
        t = _q(table)
        op.execute(f"DROP POLICY IF EXISTS {_q(table + '_service_role_all')} ON {t}")
        op.execute(f"DROP POLICY IF EXISTS {_q(table + '_authenticated_rw')} ON {t}")
        op.execute(f"ALTER TABLE {t} ENABLE ROW LEVEL SECURITY")
        op.execute(f"REVOKE ALL ON {t} FROM anon, authenticated, PUBLIC")
    for table in tables:
        t = _q(table)
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {t} TO service_role")
        op.execute(
            "DO $$ BEGIN IF NOT (SELECT rolbypassrls FROM pg_roles WHERE rolname = 'service_role') "
            f"THEN CREATE POLICY {_q(table + '_service_role_all')} ON {t} FOR ALL TO service_role "
            "USING (true) WITH CHECK (true); END IF; END $$"
        )
    for table in READ:
        op.execute(f"GRANT SELECT ON {_q(table)} TO authenticated")
        op.execute(
            f"CREATE POLICY {_policy(table, 'SELECT')} ON {_q(table)} FOR SELECT "
            "TO authenticated USING (true)"
        )
    for table, commands in WRITE.items():
        for command in commands:
            op.execute(f"GRANT {command} ON {_q(table)} TO authenticated")
            using = "" if command == "INSERT" else " USING (true)"
            check = "" if command == "DELETE" else " WITH CHECK (true)"
            op.execute(
                f"CREATE POLICY {_policy(table, command)} ON {_q(table)} FOR {command} "
                f"TO authenticated{using}{check}"
            )
    for table, column in OWNED.items():
        owner = f"{_q(column)} = {JWT_SUB}"
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {_q(table)} TO authenticated")
        op.execute(
            f"CREATE POLICY {_q(table + '_owner')} ON {_q(table)} FOR ALL TO authenticated "
            f"USING ({owner}) WITH CHECK ({owner})"
        )


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for table in TABLES:
        t = _q(table)
        for command in ("SELECT", "INSERT", "UPDATE", "DELETE"):
            op.execute(f"DROP POLICY IF EXISTS {_policy(table, command)} ON {t}")
        op.execute(f"DROP POLICY IF EXISTS {_q(table + '_owner')} ON {t}")
        op.execute(f"DROP POLICY IF EXISTS {_q(table + '_service_role_all')} ON {t}")
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {t} TO authenticated, service_role")
        op.execute(
            f"CREATE POLICY {_q(table + '_service_role_all')} ON {t} FOR ALL TO service_role "
            "USING (true) WITH CHECK (true)"
        )
        op.execute(
            f"CREATE POLICY {_q(table + '_authenticated_rw')} ON {t} FOR ALL TO authenticated "
            "USING (true) WITH CHECK (true)"
        )
    op.execute(f"ALTER TABLE {_q('alembic_version')} DISABLE ROW LEVEL SECURITY")
