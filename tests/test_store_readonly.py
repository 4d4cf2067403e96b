"""`%%platform` / `store.sql` reads cannot change the store, on real PostgreSQL and SQLite.

Two layers, each proven on its own: the guard refuses before sending (checked with the
server's own catalogues as the oracle), and with the guard switched off the READ ONLY
transaction (Postgres) / `PRAGMA query_only` (SQLite) and the rollback still hold.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from IPython.core.error import UsageError
from sqlalchemy.engine import URL
from sqlglot import exp

from hybridwb.errors import (
    BindError,
    HybridwbError,
    QueryTimeout,
    ReadOnlyViolation,
    StoreError,
    ValidationError,
)
from hybridwb.platform import console, readonly
from hybridwb.platform.backend import SqlBackend
from hybridwb.platform.readonly import Verdict, classify
from hybridwb.platform.store import Store
from tests._stores import _empty_pg, migrated_sqlite
from tests.test_magics import RaisingShell, shell  # noqa: F401 - the shell fixture

ATTACKS = {
    "select-into": ("SELECT * INTO t FROM workflows", "INTO"),
    "lo-import": ("SELECT lo_import('/etc/hostname')", "lo_import"),
    "lo-export": ("SELECT lo_export(1, '/tmp/x')", "lo_export"),
    "lo-unlink-in-array": ("SELECT ARRAY(SELECT lo_unlink(1))", "lo_unlink"),
    "read-file": ("SELECT pg_read_file('/etc/hostname')", "pg_read_file"),
    "read-binary-file": ("SELECT pg_read_binary_file('/etc/hostname')", "pg_read_binary_file"),
    "ls-dir-in-from": ("SELECT * FROM pg_ls_dir('.')", "pg_ls_dir"),
    "stat-file": ("SELECT pg_stat_file('postgresql.conf')", "pg_stat_file"),
    "advisory-lock": ("SELECT pg_advisory_lock(1)", "pg_advisory_lock"),
    "advisory-xact-lock": ("SELECT pg_advisory_xact_lock(1)", "pg_advisory_xact_lock"),
    "try-advisory-lock": ("SELECT pg_try_advisory_lock(1)", "pg_try_advisory_lock"),
    "advisory-shared": ("SELECT pg_advisory_lock_shared(1)", "pg_advisory_lock_shared"),
    "qualified-name": ("SELECT pg_catalog.pg_advisory_lock(1)", "pg_advisory_lock"),
    "quoted-name": ('SELECT "pg_advisory_lock"(1)', "pg_advisory_lock"),
    "upper-case": ("SELECT PG_ADVISORY_LOCK(1)", "PG_ADVISORY_LOCK"),
    "set-config": ("SELECT set_config('search_path', 'nowhere', false)", "set_config"),
    "dblink": ("SELECT * FROM dblink('host=x', 'SELECT 1') AS t(a int)", "dblink"),
    "dblink-exec": ("SELECT dblink_exec('DELETE FROM workflows')", "dblink_exec"),
    "terminate": ("SELECT pg_terminate_backend(1)", "pg_terminate_backend"),
    "cancel": ("SELECT pg_cancel_backend(1)", "pg_cancel_backend"),
    "reload-conf": ("SELECT pg_reload_conf()", "pg_reload_conf"),
    "sleep": ("SELECT pg_sleep(10)", "pg_sleep"),
    "sleep-for": ("SELECT pg_sleep_for('10 seconds')", "pg_sleep_for"),
    "notify": ("SELECT pg_notify('ch', 'x')", "pg_notify"),
    "nextval": ("SELECT nextval('s')", "nextval"),
    "setval": ("SELECT setval('s', 1)", "setval"),
    "txid": ("SELECT txid_current()", "txid_current"),
    "xact-id": ("SELECT pg_current_xact_id()", "pg_current_xact_id"),
    "sql-from-text": ("SELECT query_to_xml('DELETE FROM workflows', true, true, '')", "query_to"),
    "in-where-subquery": (
        "SELECT name FROM workflows WHERE name IN (SELECT pg_read_file('/etc/hostname'))",
        "pg_read_file",
    ),
    "in-union": ("SELECT 1 UNION SELECT pg_sleep(1)::int", "pg_sleep"),
    "in-cte": ("WITH x AS (SELECT lo_import('/etc/hostname')) SELECT * FROM x", "lo_import"),
    "unknown-function": ("SELECT my_function(1)", "my_function"),
    "data-modifying-cte": (
        "WITH d AS (DELETE FROM workflows RETURNING *) SELECT * FROM d",
        "changes data",
    ),
    "row-lock": ("SELECT * FROM workflows FOR UPDATE", "locks rows"),
    "delete": ("DELETE FROM workflows", "not a SELECT"),
    "copy-to-file": ("COPY workflows TO '/tmp/x'", "not a SELECT"),
    "set": ("SET search_path = nowhere", "not a SELECT"),
    "do-block": ("DO $$ BEGIN PERFORM pg_sleep(1); END $$", "not a SELECT"),
}
READS = {
    "count": "SELECT count(*) AS n FROM workflows",
    "json": "SELECT name, jsonb_build_object('a', 1) AS j FROM workflows ORDER BY name",
    "setting": "SELECT current_setting('search_path') AS s",
    "cte": "WITH x AS (SELECT 1 AS a) SELECT a FROM x",
    "union": "SELECT 1 AS a UNION SELECT 2 ORDER BY a",
    "series": "SELECT * FROM generate_series(1, 3) AS g",
    "string-agg": "SELECT string_agg(name, ',' ORDER BY name) AS s FROM workflows",
    "function-name-in-a-string": "SELECT 'pg_sleep(10)' AS s",
    "to-char": "SELECT to_char(created_at, 'YYYY') AS y FROM workflows ORDER BY name",
    "window": "SELECT name, row_number() OVER (ORDER BY name) AS r FROM workflows",
}


@pytest.mark.parametrize(("query", "words"), ATTACKS.values(), ids=ATTACKS.keys())
def test_guard_refuses_what_is_not_a_plain_read(query: str, words: str) -> None:
    _, verdict = classify(query, "postgres")
    assert not verdict.read
    assert words in verdict.reason


REFUSED_BY_NAME = [
    "pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_ls_waldir", "pg_stat_file",
    "lo_import", "lo_export", "lo_unlink", "lo_get", "lo_put", "lo_from_bytea",
    "pg_advisory_lock", "pg_advisory_lock_shared", "pg_advisory_xact_lock",
    "pg_try_advisory_lock", "pg_try_advisory_xact_lock", "set_config", "dblink",
    "dblink_exec", "dblink_connect", "pg_terminate_backend", "pg_cancel_backend",
    "pg_reload_conf", "pg_sleep", "pg_sleep_for", "pg_sleep_until", "pg_notify", "nextval",
    "setval", "txid_current", "txid_current_if_assigned", "pg_current_xact_id",
    "query_to_xml", "load_extension",
]  # fmt: skip


@pytest.mark.parametrize("name", REFUSED_BY_NAME)
def test_each_dangerous_function_is_refused_by_name(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused with its reason even if it were on the allowlist of harmless functions
    (the allowlist is a second, independent net)."""
    monkeypatch.setattr(readonly, "ALLOWED_UNMODELLED", frozenset({name}))
    _, verdict = classify(f"SELECT {name}(1)", "postgres")
    assert not verdict.read
    assert verdict.reason.startswith(f"{name}() ") and "not on the list" not in verdict.reason


@pytest.mark.parametrize("query", READS.values(), ids=READS.keys())
def test_guard_admits_plain_reads(query: str) -> None:
    assert classify(query, "postgres")[1].read


@pytest.mark.parametrize(
    "query",
    ["SELECT load_extension('/tmp/evil.so')", "SELECT readfile('/etc/hostname')", "DELETE FROM t"],
    ids=["load-extension", "readfile", "delete"],
)
def test_guard_refuses_sqlite_specials(query: str) -> None:
    assert not classify(query, "sqlite")[1].read


@pytest.mark.parametrize(
    ("query", "words"),
    [("", "empty"), ("SELECT 1; SELECT 2", "exactly one statement")],
    ids=["empty", "two-statements"],
)
def test_guard_answers_bad_input_in_one_line(query: str, words: str) -> None:
    with pytest.raises(ValidationError, match=words) as info:
        classify(query, "postgres")
    assert "\n" not in str(info.value)


# -- Postgres: the guard, then the READ ONLY transaction on its own ---------------------


@pytest.fixture
def pg(pg_db: URL) -> Iterator[Store]:
    _empty_pg(pg_db)  # at head, no rows: init below seeds it
    st = Store(SqlBackend(pg_db, attempts=1), actor="tester")
    st.init()
    st.workflows.create(name="b")
    st.workflows.create(name="a")
    yield st
    st.close()


@pytest.fixture(scope="module")
def pg_reads() -> Iterator[tuple[Store, URL]]:
    """A store in its own database for the read-only tests (initialised once)."""
    name = f"hybridwb_ro_{uuid.uuid4().hex[:8]}"
    admin = "host=127.0.0.1 user=postgres dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = URL.create("postgresql+psycopg", username="postgres", host="127.0.0.1", database=name)
    st = Store(SqlBackend(url), actor="tester")
    st.init()
    st.workflows.create(name="b")
    st.workflows.create(name="a")
    yield st, url
    st.close()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def oracle(url: URL, sql: str) -> object:
    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={url.database}") as conn:
        row = conn.execute(sql).fetchone()
        return row[0] if row else None


@pytest.fixture
def guard_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """Layer 1 switched off: every statement counts as a read."""
    monkeypatch.setattr(console, "classify", lambda q, d: (exp.Command(this="x"), Verdict(True)))


@pytest.mark.postgres
@pytest.mark.parametrize("query", READS.values(), ids=READS.keys())
def test_reads_return_what_postgres_returns_directly(
    pg_reads: tuple[Store, URL], query: str
) -> None:
    store, url = pg_reads
    df = store.sql(query)
    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={url.database}") as conn:
        direct = [tuple(r) for r in conn.execute(query).fetchall()]
    assert [tuple(r) for r in df.itertuples(index=False)] == direct


@pytest.mark.postgres
@pytest.mark.parametrize("layer", ["guard", "read-only-transaction"])
def test_select_into_creates_no_table(pg: Store, pg_db: URL, layer: str, request) -> None:
    if layer != "guard":
        request.getfixturevalue("guard_off")
    expected = ReadOnlyViolation if layer == "guard" else StoreError
    with pytest.raises(expected, match="INTO"):
        pg.sql("SELECT * INTO t FROM workflows")
    assert oracle(pg_db, "SELECT to_regclass('public.t')") is None


@pytest.mark.postgres
@pytest.mark.parametrize("layer", ["guard", "rollback"])
def test_lo_import_creates_no_large_object(pg: Store, pg_db: URL, layer: str, request) -> None:
    before = oracle(pg_db, "SELECT count(*) FROM pg_largeobject_metadata")
    if layer == "guard":
        with pytest.raises(ReadOnlyViolation, match="lo_import"):
            pg.sql("SELECT lo_import('/etc/hostname')")
    else:
        request.getfixturevalue("guard_off")
        pg.sql("SELECT lo_import('/etc/hostname')")  # Postgres allows it in READ ONLY...
    # ...but the read is rolled back, so nothing stays
    assert oracle(pg_db, "SELECT count(*) FROM pg_largeobject_metadata") == before


@pytest.mark.postgres
@pytest.mark.parametrize(
    "query", ["SELECT pg_advisory_lock(1)", "SELECT pg_try_advisory_lock(1)"], ids=["lock", "try"]
)
def test_advisory_lock_is_refused_and_no_lock_stays(pg: Store, pg_db: URL, query: str) -> None:
    pg.sql("SELECT 1")  # a pooled connection exists
    with pytest.raises(ReadOnlyViolation, match="lock"):
        pg.sql(query)
    held = (  # in this database: other tests on the server hold locks of their own
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "
        "(SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    assert oracle(pg_db, held) == 0  # asked from another connection
    assert oracle(pg_db, "SELECT pg_try_advisory_lock(1)") is True


@pytest.mark.postgres
@pytest.mark.parametrize("layer", ["guard", "rollback"])
def test_set_config_does_not_break_the_next_read(pg: Store, layer: str, request) -> None:
    if layer == "guard":
        with pytest.raises(ReadOnlyViolation, match="set_config"):
            pg.sql("SELECT set_config('search_path', 'nowhere', false)")
    else:
        request.getfixturevalue("guard_off")
        pg.sql("SELECT set_config('search_path', 'nowhere', false)")
    for _ in range(3):  # the pool hands the same connection back
        assert pg.sql("SELECT count(*) AS n FROM workflows")["n"].iloc[0] == 2
        assert "nowhere" not in pg.sql("SELECT current_setting('search_path') AS s")["s"].iloc[0]


@pytest.mark.postgres
def test_writes_fail_in_the_read_only_transaction_without_the_guard(
    pg: Store, pg_db: URL, guard_off: None
) -> None:
    with pytest.raises(StoreError, match="read-only transaction"):
        pg.sql("DELETE FROM workflows")
    assert oracle(pg_db, "SELECT count(*) FROM workflows") == 2


@pytest.mark.postgres
def test_a_long_read_is_stopped_by_the_statement_timeout(pg: Store) -> None:
    started = time.monotonic()
    with pytest.raises(QueryTimeout, match="time limit"):
        pg.sql("SELECT count(*) FROM generate_series(1, 1000000000)", timeout=0.3)
    assert time.monotonic() - started < 5
    assert pg.sql("SELECT 1 AS one")["one"].iloc[0] == 1  # the connection is fine after


@pytest.mark.postgres
def test_write_is_audited_in_the_same_transaction_without_literals(pg: Store, pg_db: URL) -> None:
    df = pg.sql(
        "UPDATE workflows SET description = '010-1234-5678' WHERE name = :n", {"n": "a"}, write=True
    )
    assert df["rows_affected"].iloc[0] == 1
    row = oracle(pg_db, "SELECT after::text FROM audit_log WHERE action = 'sql'")
    assert row is not None and "UPDATE workflows" in row
    assert "010-1234-5678" not in row
    with pytest.raises(ValidationError, match="not-null"):
        pg.sql("UPDATE workflows SET name = NULL", write=True)  # fails: no audit row either
    assert oracle(pg_db, "SELECT count(*) FROM audit_log WHERE action = 'sql'") == 1


# -- SQLite: PRAGMA query_only ----------------------------------------------------------


@pytest.fixture
def lite(tmp_path: Path) -> Iterator[Store]:
    st = Store(SqlBackend(migrated_sqlite(tmp_path / "p.db")), actor="t")
    st.init()  # seeds the migrated copy
    st.workflows.create(name="a")
    yield st
    st.close()


def sqlite_count(st: Store, table: str) -> int:
    with sqlite3.connect(st.backend.url.database) as conn:  # type: ignore[attr-defined]
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_sqlite_reads_are_query_only_without_the_guard(lite: Store, guard_off: None) -> None:
    with pytest.raises(StoreError, match="readonly|read-only|query_only"):
        lite.sql("DELETE FROM workflows")
    assert sqlite_count(lite, "workflows") == 1
    lite.workflows.create(name=f"after-{uuid.uuid4().hex[:4]}")  # query_only was reset
    assert sqlite_count(lite, "workflows") == 2


def test_sqlite_write_is_audited(lite: Store) -> None:
    before = sqlite_count(lite, "audit_log")
    lite.sql("UPDATE workflows SET status = 'active'", write=True)
    assert sqlite_count(lite, "audit_log") == before + 1


def test_sqlite_long_read_is_stopped(lite: Store) -> None:
    query = (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
        "SELECT count(*) FROM (SELECT x FROM c LIMIT 1000000000)"
    )
    started = time.monotonic()
    with pytest.raises(QueryTimeout):
        lite.sql(query, timeout=0.3)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"timeout": "5"}, ValidationError, "timeout must be a positive number"),
        ({"timeout": -1}, ValidationError, "timeout must be a positive number"),
        ({"limit": "abc"}, ValidationError, "limit must be a positive whole number"),
        ({"limit": 0}, ValidationError, "limit must be a positive whole number"),
        ({"params": [1, 2]}, BindError, "params must be a dict"),
    ],
    ids=["timeout-text", "timeout-negative", "limit-text", "limit-zero", "params-list"],
)
def test_bad_arguments_are_one_line_errors(
    lite: Store, kwargs: dict, error: type[HybridwbError], words: str
) -> None:
    with pytest.raises(error, match=words) as info:
        lite.sql("SELECT 1", **kwargs)
    assert type(info.value) is error and "\n" not in str(info.value)


def test_platform_magic_write_is_audited_and_reads_refuse_locks(
    shell: RaisingShell,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db = tmp_path / ".hybridwb" / "platform.db"
    shell.run_cell("n = '가입 환영 (SMS)'")
    shell.run_cell(
        "%%platform --write\nUPDATE message_templates SET usage_count = 7 WHERE name = :n"
    )
    assert "1 rows changed (audited)" in capsys.readouterr().out
    with sqlite3.connect(db) as conn:
        audited = conn.execute("SELECT actor, after FROM audit_log WHERE action = 'sql'").fetchall()
        assert conn.execute("SELECT max(usage_count) FROM message_templates").fetchone() == (7,)
    assert len(audited) == 1 and "UPDATE message_templates" in audited[0][1]
    with pytest.raises(UsageError, match="load_extension"):
        shell.run_cell("%%platform\nSELECT load_extension('/tmp/x.so')")


def test_a_big_read_is_cut_at_the_row_cap_and_says_so(
    lite: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(console, "ROW_CAP", 50)
    query = (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 1000) SELECT x FROM c"
    )
    df = lite.sql(query)
    assert len(df) == 50 and df.attrs["hybridwb"]["truncated"] is True
    assert len(lite.sql(query, limit=10)) == 10
    small = lite.sql("SELECT 1 AS one")
    assert small.attrs["hybridwb"]["truncated"] is False


@pytest.mark.parametrize(
    "query",
    ["SELECT pg_advisory_lock(1)", "SELECT * INTO t FROM workflows", "DELETE FROM workflows"],
    ids=["lock", "into", "delete"],
)
def test_a_refused_statement_is_never_sent(lite: Store, query: str) -> None:
    from sqlalchemy import event

    sent: list[str] = []
    engine = lite.backend.engine  # type: ignore[attr-defined]
    event.listen(engine, "before_cursor_execute", lambda c, cur, stmt, *a: sent.append(stmt))
    with pytest.raises(ReadOnlyViolation):
        lite.sql(query)
    assert sent == []
