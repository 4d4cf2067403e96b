"""Row level security on real PostgreSQL, tested as policies.

Every check runs as the role itself (`SET LOCAL ROLE anon|authenticated|service_role`)
inside a savepoint that is rolled back, and asks the database what that role can see and
change. The database is set up the way Supabase sets one up: its default privileges grant
ALL on every new table in `public` to `anon` and `authenticated` before hybridwb creates
any table.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import Connection, create_engine, delete, func, insert, select, text, update
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from hybridwb.platform import schema
from hybridwb.platform.backend import SqlBackend
from hybridwb.platform.schema import TABLES, now
from hybridwb.platform.store import Store

pytestmark = pytest.mark.postgres

COMMANDS = ("SELECT", "INSERT", "UPDATE", "DELETE")
ALL = set(COMMANDS)
#: what `authenticated` may do (a user whose JWT `sub` is "alice"); everything else: nothing
AUTHENTICATED = {
    "workflows": ALL,
    "template_categories": {"SELECT"},
    "message_templates": ALL,
    "table_mappings": {"SELECT", "INSERT", "UPDATE"},
    "individual_variables": ALL,
    "user_settings": ALL,  # her own rows only, see test_user_settings_are_owner_scoped
}
SERVICE_ONLY = ["workflow_runs", "send_records", "query_logs", "audit_log", "schedule_locks"]
#: the tables whose every command is checked row by row (later migrations add more tables;
#: those are covered by the catalogue checks at the end)
CHECKED = [*AUTHENTICATED, *SERVICE_ONLY]
ALICE = json.dumps({"sub": "alice", "role": "authenticated"})


def expected(role: str, table: str) -> set[str]:
    if role == "service_role":
        return ALL
    if role == "authenticated":
        return AUTHENTICATED.get(table, set())
    return set()


def expected_policies() -> set[tuple[str, str]]:
    """(table, policy name) for every access `authenticated` has: one policy per grant."""
    out = set()
    for table, commands in AUTHENTICATED.items():
        if table == "user_settings":
            out.add((table, "user_settings_owner"))
            continue
        out |= {(table, f"{table}_authenticated_{c.lower()}") for c in commands}
    return out


@pytest.fixture(scope="module")
def rls_db() -> Iterator[URL]:
    """A throwaway database prepared like Supabase's, initialised and filled with one row
    of everything (user settings for alice and bob)."""
    name = f"hybridwb_rls_{uuid.uuid4().hex[:8]}"
    admin = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = URL.create(
        "postgresql+psycopg", username="postgres", host="127.0.0.1", port=5432, database=name
    )
    try:
        with psycopg.connect(
            f"host=127.0.0.1 port=5432 user=postgres dbname={name}", autocommit=True
        ) as conn:
            for role in ("anon", "authenticated", "service_role"):
                exists = conn.execute(
                    "SELECT 1 FROM pg_roles WHERE rolname = %s", [role]
                ).fetchone()
                if not exists:
                    conn.execute(
                        f"CREATE ROLE {role} NOLOGIN{' BYPASSRLS' if role == 'service_role' else ''}"
                    )
            conn.execute("GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role")
            conn.execute(
                "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
                "GRANT ALL ON TABLES TO anon, authenticated, service_role"
            )
        store = Store(SqlBackend(url), actor="owner")
        store.init()
        wf = store.workflows.create(name="secret plan")
        store.mappings.save("customers", {"displayName": "고객"})
        store.variables.create(name="회사명", source_type="constant", source="x")
        run = store.runs.create(wf["id"])
        store.runs.add_records(
            [{"run_id": run["id"], "workflow_id": wf["id"], "target_key": "1", "recipient": "p"}]
        )
        store.claim_schedule(wf["id"], now(), "cron")
        with store.backend.engine.begin() as conn:
            conn.execute(
                insert(schema.query_logs).values(
                    id=uuid.uuid4(), query="SELECT 1", execution_time=1.0, status="success"
                )
            )
            for user in ("alice", "bob"):
                conn.execute(
                    insert(schema.user_settings).values(
                        id=uuid.uuid4(), user_name=user, key="theme", value={"dark": True}
                    )
                )
        store.close()
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def owner(rls_db: URL) -> Iterator[Connection]:
    """The table owner's connection, in a transaction rolled back after the test."""
    engine = create_engine(rls_db)
    with engine.connect() as conn:
        trans = conn.begin()
        yield conn
        trans.rollback()
    engine.dispose()


def _ids(conn: Connection) -> dict[str, Any]:
    return {
        "workflow": conn.execute(select(schema.workflows.c.id)).scalars().first(),
        "run": conn.execute(select(schema.workflow_runs.c.id)).scalars().first(),
    }


def new_row(table: str, ids: dict[str, Any]) -> dict[str, Any]:
    """A valid new row for each table (ids of the seeded workflow and run)."""
    tag, stamp = uuid.uuid4().hex[:8], now()
    rows: dict[str, dict[str, Any]] = {
        "workflows": {"name": f"w{tag}", "created_at": stamp, "updated_at": stamp},
        "template_categories": {"name": f"c{tag}", "created_at": stamp},
        "message_templates": {"name": f"t{tag}", "content": "x", "created_at": stamp,
                              "updated_at": stamp},
        "table_mappings": {"name": "customers", "config": {}, "version": 99, "created_at": stamp,
                           "updated_at": stamp},
        "individual_variables": {"name": f"v{tag}", "source_type": "constant", "source": "x",
                                 "created_at": stamp, "updated_at": stamp},
        "workflow_runs": {"workflow_id": ids["workflow"], "created_at": stamp},
        "send_records": {"run_id": ids["run"], "workflow_id": ids["workflow"],
                         "target_key": tag, "created_at": stamp},
        "query_logs": {"query": "SELECT 1", "execution_time": 1.0, "status": "success"},
        "audit_log": {"actor": "x", "action": "create", "entity": "workflow", "at": stamp},
        "user_settings": {"user_name": "alice", "key": f"k{tag}", "value": {}},
        "schedule_locks": {"workflow_id": ids["workflow"], "scheduled_for": stamp,
                           "owner": "x", "locked_at": stamp},
    }  # fmt: skip
    row = rows[table]
    if "id" in schema.metadata.tables[table].c:
        row["id"] = uuid.uuid4()
    return row


def can(conn: Connection, role: str, table: str, command: str, claims: str = ALICE) -> bool:
    """Whether `role` can run `command` on `table` on at least one row (asked as the role)."""
    tbl = schema.metadata.tables[table]
    ids = _ids(conn)
    savepoint = conn.begin_nested()
    try:
        conn.execute(text("SELECT set_config('request.jwt.claims', :c, true)"), {"c": claims})
        conn.execute(text(f"SET LOCAL ROLE {role}"))  # role names are the three constants
        if command == "SELECT":
            return int(conn.execute(select(func.count()).select_from(tbl)).scalar_one()) > 0
        if command == "INSERT":
            conn.execute(insert(tbl).values(**new_row(table, ids)))
            return True
        col = next(c for c in tbl.columns if c.name not in {"id", "config", "value"})
        stmt = update(tbl).values({col.name: col}) if command == "UPDATE" else delete(tbl)
        return conn.execute(stmt).rowcount > 0
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) in ("42501",):  # insufficient privilege / RLS
            return False
        raise
    finally:
        savepoint.rollback()


@pytest.mark.parametrize("role", ["anon", "authenticated", "service_role"])
@pytest.mark.parametrize("table", CHECKED)
def test_each_role_can_do_exactly_what_the_policies_allow(
    owner: Connection, role: str, table: str
) -> None:
    allowed = {c for c in COMMANDS if can(owner, role, table, c)}
    assert allowed == expected(role, table)


@pytest.mark.parametrize("table", SERVICE_ONLY)
def test_service_tables_are_invisible_to_authenticated(owner: Connection, table: str) -> None:
    """The audit log and the recipients in send_records are the service role's only."""
    assert not any(can(owner, "authenticated", table, c) for c in COMMANDS)
    assert can(owner, "service_role", table, "SELECT")


def test_the_policies_are_exactly_the_tested_ones(owner: Connection) -> None:
    found = set(
        owner.execute(
            text("SELECT tablename, policyname FROM pg_policies WHERE schemaname = 'public'")
        )
        .tuples()
        .all()
    )
    assert found == expected_policies()


@pytest.mark.parametrize(("table", "policy"), sorted(expected_policies()), ids=lambda v: str(v))
def test_dropping_a_policy_takes_its_access_away(
    owner: Connection, table: str, policy: str
) -> None:
    """Each policy is what grants its access: without it the same check is refused."""
    commands = (
        AUTHENTICATED[table] if policy.endswith("_owner") else {policy.rsplit("_", 1)[1].upper()}
    )
    before = {c for c in commands if can(owner, "authenticated", table, c)}
    assert before == commands
    owner.execute(text(f'DROP POLICY "{policy}" ON "{table}"'))  # names from pg_policies
    after = {c for c in commands if can(owner, "authenticated", table, c)}
    assert after == set()


def test_user_settings_are_owner_scoped(owner: Connection) -> None:
    bob = json.dumps({"sub": "bob"})
    total = owner.execute(select(func.count()).select_from(schema.user_settings)).scalar_one()
    assert total == 2
    owner.execute(text("SELECT set_config('request.jwt.claims', :c, true)"), {"c": bob})
    owner.execute(text("SET LOCAL ROLE authenticated"))
    names = owner.execute(select(schema.user_settings.c.user_name)).scalars().all()
    assert names == ["bob"]
    with pytest.raises(DBAPIError, match="row-level security"), owner.begin_nested():
        owner.execute(
            insert(schema.user_settings).values(id=uuid.uuid4(), user_name="alice", key="x")
        )
    owner.execute(text("RESET ROLE"))
    assert not can(owner, "authenticated", "user_settings", "SELECT", claims="{}")


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_alembic_version_is_never_exposed(owner: Connection, role: str) -> None:
    """Not after Supabase's default grants, and not even after a GRANT ALL on every table."""
    privilege = owner.execute(
        text("SELECT has_table_privilege(:r, 'alembic_version', 'SELECT, INSERT, UPDATE, DELETE')"),
        {"r": role},
    ).scalar()
    assert privilege is False
    owner.execute(text(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}"))
    savepoint = owner.begin_nested()
    owner.execute(text(f"SET LOCAL ROLE {role}"))
    assert owner.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 0
    assert owner.execute(text("DELETE FROM alembic_version")).rowcount == 0
    assert owner.execute(text("SELECT count(*) FROM audit_log")).scalar() == 0
    savepoint.rollback()


def test_every_table_has_row_level_security_and_nothing_for_anon(owner: Connection) -> None:
    """Also covers tables later migrations add: none may be left open."""
    rows = owner.execute(
        text(
            "SELECT c.relname, c.relrowsecurity, has_table_privilege('anon', c.oid, "
            "'SELECT, INSERT, UPDATE, DELETE') FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'"
        )
    ).all()
    assert {r[0] for r in rows} >= {*TABLES, "alembic_version"}
    assert [r[0] for r in rows if not r[1] or r[2]] == []


def test_rest_anon_key_sees_nothing_even_with_a_grant(owner: Connection) -> None:
    """RLS holds on its own: a GRANT re-opened by hand still shows anon no row."""
    owner.execute(text("GRANT ALL ON ALL TABLES IN SCHEMA public TO anon"))
    for table in CHECKED:
        assert not can(owner, "anon", table, "SELECT"), table


def test_tables_without_a_policy_are_closed_to_anon_and_authenticated(owner: Connection) -> None:
    names = owner.execute(
        text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = 'r'"
        )
    ).scalars()
    for table in set(names) - set(AUTHENTICATED):
        for role in ("anon", "authenticated"):
            granted = owner.execute(
                text("SELECT has_table_privilege(:r, :t, 'SELECT, INSERT, UPDATE, DELETE')"),
                {"r": role, "t": f'public."{table}"'},
            ).scalar()
            assert granted is False, (role, table)


def test_upgrading_a_0002_store_replaces_the_open_policies(pg_db: URL) -> None:
    from alembic import command

    from hybridwb.platform import migrate
    from tests.test_store import _reset_pg

    _reset_pg(pg_db)
    backend = SqlBackend(pg_db)
    with backend.engine.begin() as conn:
        cfg = migrate._config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
        assert conn.execute(
            text("SELECT count(*) FROM pg_policies WHERE policyname LIKE '%_authenticated_rw'")
        ).scalar()
    Store(backend).init()
    with backend.engine.connect() as conn:
        found = set(
            conn.execute(
                text("SELECT tablename, policyname FROM pg_policies WHERE schemaname = 'public'")
            ).tuples()
        )
    backend.close()
    assert found == expected_policies()
