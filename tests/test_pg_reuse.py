"""A PostgreSQL test database is used again only when it is what a fresh one is
(`_pg_reuse`, `_stores.fresh_pg_database`). The oracle is independent of the fingerprint:
`pg_dump --schema-only` of the database against a fresh copy of the same template, the row
counts read directly, and `pg_database` for whether a database was kept or dropped."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable

import _stores
import psycopg
import pytest

pytestmark = pytest.mark.postgres


def _sql(database: str, *statements: str) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    with psycopg.connect(_stores._pg_reuse.admin_dsn(database), autocommit=True) as conn:
        for statement in statements:
            cur = conn.execute(statement)
            rows = list(cur.fetchall()) if cur.description else []
    return rows


def _exists(database: str) -> bool:
    return bool(_sql("postgres", f"SELECT 1 FROM pg_database WHERE datname = '{database}'"))


def _schema_dump(database: str) -> str:
    pg_dump = shutil.which("pg_dump") or "/usr/lib/postgresql/15/bin/pg_dump"
    done = subprocess.run(
        [pg_dump, "--schema-only", "-h", "127.0.0.1", "-U", "postgres", database],
        capture_output=True,
        text=True,
        check=True,
    )
    return "\n".join(
        line
        for line in done.stdout.splitlines()
        if not line.startswith(("-- Dumped", "\\restrict", "\\unrestrict"))  # a random key
    )


def _take(*, migrated: bool) -> tuple[str, Callable[[], None]]:
    """A database from `fresh_pg_database`, and the call that ends its test."""
    it = _stores.fresh_pg_database("hybridwb_reuse", migrated=migrated)
    name = str(next(it).database)

    def release() -> None:
        with pytest.raises(StopIteration):
            next(it)

    return name, release


def _public_rows(database: str) -> dict[str, int]:
    tables = [
        str(t)
        for (t,) in _sql(
            database,
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'alembic_version'",
        )
    ]
    return {t: int(str(_sql(database, f'SELECT count(*) FROM "{t}"')[0][0])) for t in tables}


def test_a_used_migrated_database_comes_back_as_a_fresh_copy() -> None:
    name, release = _take(migrated=True)
    fresh = _dump_of_a_fresh_copy()
    _sql(
        name,
        "INSERT INTO template_categories (id, name, created_at) "
        "VALUES (gen_random_uuid(), 'c', now())",
        "ANALYZE template_categories",
    )
    holder = psycopg.connect(_stores._pg_reuse.admin_dsn(name))  # a session left open
    holder.execute("SELECT count(*) FROM template_categories")  # inside a transaction: holds a lock
    release()
    again, release_again = _take(migrated=True)
    try:
        assert again == name  # used again
        assert _public_rows(again) and set(_public_rows(again).values()) == {0}
        assert _schema_dump(again) == fresh
        assert _sql(again, "SELECT version_num FROM alembic_version")
        assert not _sql(
            again,
            "SELECT 1 FROM pg_statistic s JOIN pg_class c ON c.oid = s.starelid "
            "WHERE c.relname = 'template_categories'",
        )
    finally:
        release_again()
        holder.close()


def _dump_of_a_fresh_copy() -> str:
    copy = "hybridwb_reuse_oracle"
    _sql("postgres", f'DROP DATABASE IF EXISTS "{copy}"')
    _sql("postgres", f'CREATE DATABASE "{copy}" TEMPLATE "{_stores.pg_template()}"')
    try:
        return _schema_dump(copy)
    finally:
        _sql("postgres", f'DROP DATABASE "{copy}"')


CHANGES = {
    "trigger": "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS "
    "$$BEGIN RAISE EXCEPTION 'x'; END$$; CREATE TRIGGER boom BEFORE INSERT ON workflows "
    "FOR EACH ROW EXECUTE FUNCTION boom()",
    "column": "ALTER TABLE workflows ADD COLUMN extra int",
    "default": "ALTER TABLE workflows ALTER COLUMN status SET DEFAULT 'x'",
    "not-null dropped": "ALTER TABLE workflows ALTER COLUMN trigger_type DROP NOT NULL",
    "index": "CREATE INDEX extra_ix ON workflows (status)",
    "table dropped": "DROP TABLE query_logs",
    "database setting": "ALTER DATABASE {db} SET timezone = 'Asia/Seoul'",
    "grant": "GRANT ALL ON workflows TO anon",
    "row security off": "ALTER TABLE workflows DISABLE ROW LEVEL SECURITY",
    "policy": "CREATE POLICY extra ON workflows FOR SELECT TO anon USING (true)",
    "view": "CREATE VIEW extra_v AS SELECT 1 AS one",
    "schema": "CREATE SCHEMA extra",
    "function body": "CREATE OR REPLACE FUNCTION now_plus() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "version stamped": "UPDATE alembic_version SET version_num = 'old'",
}


@pytest.mark.parametrize("change", list(CHANGES), ids=list(CHANGES))
def test_a_database_a_test_changed_is_dropped_not_used_again(change: str) -> None:
    name, release = _take(migrated=True)
    try:
        _sql(name, CHANGES[change].format(db=f'"{name}"'))
    finally:
        release()
    assert not _exists(name)


def test_a_used_empty_database_comes_back_empty_and_a_changed_one_is_dropped() -> None:
    name, release = _take(migrated=False)
    before = _schema_dump(name)
    _sql(name, "CREATE TABLE t (a int)", "INSERT INTO t VALUES (1)")
    release()
    again, release_again = _take(migrated=False)
    assert again == name
    assert _schema_dump(again) == before
    assert not _sql(again, "SELECT 1 FROM pg_tables WHERE schemaname = 'public'")
    _sql(again, f'ALTER DATABASE "{again}" SET search_path = x')
    release_again()
    assert not _exists(again)
