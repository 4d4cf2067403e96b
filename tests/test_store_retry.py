"""Retries on transient errors only, and writes that report the truth after a retry.

The errors are real: produced by SQLite and PostgreSQL (a refused port, a terminated
backend, a missing table). The one injected fault is a lost commit acknowledgement: the
driver's commit succeeds and then raises the error a dropped connection gives, which is
what a client sees when the server committed and the network failed before the reply.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from hybridwb.errors import StoreError, ValidationError
from hybridwb.platform.backend import SqlBackend
from hybridwb.platform.retry import is_connectivity, is_transient
from hybridwb.platform.schema import now
from hybridwb.platform.store import Store
from tests._stores import _empty_pg, migrated_sqlite
from tests.test_store import _reset_pg


def sqlite_error(sql: str, tmp_path: Path) -> sqlite3.Error:
    conn = sqlite3.connect(tmp_path / "e.db")
    try:
        conn.execute(sql)
    except sqlite3.Error as exc:
        return exc
    finally:
        conn.close()
    raise AssertionError("no error")


def locked_error(tmp_path: Path) -> sqlite3.Error:
    holder = sqlite3.connect(tmp_path / "l.db", isolation_level=None)
    holder.execute("CREATE TABLE IF NOT EXISTS t (a)")
    holder.execute("BEGIN EXCLUSIVE")
    other = sqlite3.connect(tmp_path / "l.db", timeout=0)
    try:
        other.execute("INSERT INTO t VALUES (1)")
    except sqlite3.Error as exc:
        return exc
    finally:
        other.close()
        holder.close()
    raise AssertionError("no error")


def pg_error(
    sql: str, dbname: str = "postgres", port: int = 5432, user: str = "postgres"
) -> psycopg.Error:
    try:
        with psycopg.connect(
            f"host=127.0.0.1 port={port} user={user} dbname={dbname} connect_timeout=2"
        ) as conn:
            conn.execute(sql)
    except psycopg.Error as exc:
        return exc
    raise AssertionError("no error")


def terminated_error() -> psycopg.Error:
    victim = psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres")
    pid = victim.info.backend_pid
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as k:
        k.execute("SELECT pg_terminate_backend(%s)", [pid])
    try:
        victim.execute("SELECT 1")
    except psycopg.Error as exc:
        return exc
    finally:
        victim.close()
    raise AssertionError("no error")


CASES: dict[str, tuple[Callable[[Path], BaseException], bool, bool]] = {
    # id: (make the real error, transient?, connectivity?)
    "sqlite-syntax": (lambda p: sqlite_error("SELEC 1", p), False, False),
    "sqlite-no-such-table": (lambda p: sqlite_error("SELECT * FROM nope", p), False, False),
    "sqlite-cannot-open": (
        lambda p: sqlite3.connect(p / "no" / "dir.db").execute("SELECT 1"),  # type: ignore[arg-type, return-value]
        False,
        False,
    ),
    "sqlite-locked": (locked_error, True, False),
    "pg-refused": (lambda p: pg_error("SELECT 1", port=1), True, True),
    "pg-admin-shutdown": (lambda p: terminated_error(), True, True),
    "pg-syntax": (lambda p: pg_error("SELEC 1"), False, False),
    "pg-no-such-table": (lambda p: pg_error("SELECT * FROM nope"), False, False),
    "pg-unique": (
        lambda p: pg_error(
            "CREATE TEMP TABLE u (a int UNIQUE); INSERT INTO u VALUES (1); INSERT INTO u VALUES (1)"
        ),
        False,
        False,
    ),
    "pg-timeout": (
        lambda p: pg_error("SET statement_timeout = 50; SELECT pg_sleep(1)"),
        False,
        False,
    ),
    # a refused login or a missing database: the server answered, at connect (no SQLSTATE)
    "pg-no-such-role": (lambda p: pg_error("SELECT 1", user="hybridwb_no_such_role"), False, False),
    "pg-no-such-database": (
        lambda p: pg_error("SELECT 1", dbname="hybridwb_no_such_db"),
        False,
        False,
    ),
    "pg-serialization": (lambda p: psycopg.errors.SerializationFailure("conflict"), True, False),
    "pg-deadlock": (lambda p: psycopg.errors.DeadlockDetected("deadlock"), True, False),
}


@pytest.mark.parametrize(("make", "transient", "connectivity"), CASES.values(), ids=CASES.keys())
def test_only_transient_errors_are_retried(
    make: Callable[[Path], BaseException], transient: bool, connectivity: bool, tmp_path: Path
) -> None:
    try:
        error = make(tmp_path)
    except sqlite3.Error as exc:  # the cannot-open case raises while connecting
        error = exc
    wrapped = DBAPIError(None, None, error)  # type: ignore[arg-type]
    assert is_transient(wrapped) is transient
    assert is_connectivity(wrapped) is connectivity


# -- through the store ------------------------------------------------------------------


def count_statements(backend: SqlBackend, word: str) -> list[str]:
    seen: list[str] = []

    @event.listens_for(backend.engine, "before_cursor_execute")
    def _count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if word in statement:
            seen.append(statement)

    return seen


def test_a_missing_table_fails_at_once_and_is_not_called_unreachable(tmp_path: Path) -> None:
    st = Store(SqlBackend(URL.create("sqlite", database=str(tmp_path / "s.db")), base_delay=0))
    st.init()
    with sqlite3.connect(tmp_path / "s.db") as conn:
        conn.execute("DROP TABLE individual_variables")
    seen = count_statements(st.backend, "individual_variables")  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="no such table") as info:
        st.variables.list()
    assert "unreachable" not in str(info.value) and "running" not in str(info.value)
    assert len(seen) == 1


@pytest.mark.postgres
def test_an_unreachable_postgres_is_retried_then_called_unreachable() -> None:
    url = URL.create(
        "postgresql+psycopg", username="postgres", password="pw-canary-77", host="127.0.0.1",
        port=1, database="x",
    )  # fmt: skip
    backend = SqlBackend(url, base_delay=0)
    connects: list[int] = []
    event.listen(backend.engine, "do_connect", lambda *a: connects.append(1))
    with pytest.raises(StoreError, match="unreachable .* Is it running") as info:
        Store(backend).workflows.list()
    assert len(connects) == 3
    assert "pw-canary-77" not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("user", "database", "says"),
    [
        ("hybridwb_no_such_role", "postgres", "refused the login \\(no such user\\)"),
        ("postgres", "hybridwb_no_such_db", "database does not exist"),
    ],
    ids=["no-such-role", "no-such-database"],
)
def test_a_refused_login_or_missing_database_fails_at_the_first_connect(
    user: str, database: str, says: str
) -> None:
    """The server answered the connect and said no: another try cannot help, and each one
    only kept the user waiting (three connects and two pauses per call, ~0.6 s; `hybridwb
    doctor` with a wrong user waited 2.4 s). Counted by SQLAlchemy's connect event."""
    url = URL.create("postgresql+psycopg", username=user, host="127.0.0.1", database=database)
    backend = SqlBackend(url, base_delay=0)
    connects: list[int] = []
    event.listen(backend.engine, "do_connect", lambda *a: connects.append(1))
    with pytest.raises(StoreError, match=says) as info:
        Store(backend).workflows.list()
    assert len(connects) == 1
    assert "unreachable" not in str(info.value) and "running" not in str(info.value)
    assert "hybridwb_no_such" not in str(info.value)  # server text in quotes is not shown


@pytest.mark.postgres
def test_a_syntax_error_on_postgres_is_not_retried(pg_db: URL) -> None:
    _reset_pg(pg_db)
    st = Store(SqlBackend(pg_db, base_delay=0))
    st.init()
    seen = count_statements(st.backend, "nope")  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="failed") as info:
        st.sql("SELECT * FROM nope")
    assert "unreachable" not in str(info.value)
    assert len(seen) == 1
    st.close()


# -- idempotent writes: a lost commit acknowledgement ------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = migrated_sqlite(tmp_path / "platform.db")  # init below seeds it
    else:
        url = request.getfixturevalue("pg_db")
        _empty_pg(url)  # at head, no rows: init below seeds it
    st = Store(SqlBackend(url, base_delay=0), actor="tester")
    st.init()
    yield st
    st.close()


def lose_next_commit_ack(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The next commit reaches the database, then the reply is lost (the driver raises
    the error of a dropped connection)."""
    backend = store.backend
    assert isinstance(backend, SqlBackend)
    dialect = backend.engine.dialect
    real = dialect.do_commit
    lost: list[int] = []

    def commit(dbapi_connection: Any) -> None:
        real(dbapi_connection)
        if not lost:
            lost.append(1)
            if backend.name == "sqlite":
                raise sqlite3.OperationalError("database is locked")
            raise psycopg.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(dialect, "do_commit", commit)
    return lost


def count(store: Store, table: str, **where: Any) -> int:
    """Counted on a fresh connection of its own (not through the code under test)."""
    backend = store.backend
    assert isinstance(backend, SqlBackend)
    if backend.name == "sqlite":
        sql = f"SELECT count(*) FROM {table}" + "".join(
            f" {'WHERE' if i == 0 else 'AND'} {k} = ?" for i, k in enumerate(where)
        )
        with sqlite3.connect(backend.url.database) as conn:  # type: ignore[arg-type]
            return int(conn.execute(sql, list(where.values())).fetchone()[0])
    sql = f"SELECT count(*) FROM {table}" + "".join(
        f" {'WHERE' if i == 0 else 'AND'} {k} = %s" for i, k in enumerate(where)
    )
    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={backend.url.database}") as conn:
        return int(conn.execute(sql, list(where.values())).fetchone()[0])  # type: ignore[index]


def test_a_create_retried_after_a_lost_ack_reports_success_once(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    lost = lose_next_commit_ack(store, monkeypatch)
    row = store.workflows.create(name="welcome")
    assert lost == [1]
    assert count(store, "workflows", name="welcome") == 1
    assert count(store, "audit_log", entity_id=str(row["id"])) == 1


def test_records_retried_after_a_lost_ack_are_counted_as_written(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    wf = store.workflows.create(name="w")
    run = store.runs.create(wf["id"])
    records = [
        {"run_id": run["id"], "workflow_id": wf["id"], "target_key": str(i)} for i in range(5)
    ]
    lose_next_commit_ack(store, monkeypatch)
    assert store.runs.add_records(records) == 5
    assert count(store, "send_records") == 5
    assert store.runs.add_records(records) == 0  # and a real second call still says 0


def test_a_schedule_claim_retried_after_a_lost_ack_is_still_ours(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    wf = store.workflows.create(name="w")
    slot = now()
    lose_next_commit_ack(store, monkeypatch)
    assert store.claim_schedule(wf["id"], slot, "me") is True
    assert store.claim_schedule(wf["id"], slot, "someone else") is False
    assert count(store, "schedule_locks") == 1


def test_a_real_duplicate_id_is_still_refused(store: Store) -> None:
    from hybridwb.platform.backend import Op

    row = store.workflows.create(name="one")
    with pytest.raises(ValidationError, match="nothing was saved"):
        store.backend.apply([Op("insert", "workflows", {**row, "name": "two"})])
    assert count(store, "workflows") == 1


def test_the_retrying_helper_retries_transient_errors_only(tmp_path: Path) -> None:
    from hybridwb.platform.backend import retrying

    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise DBAPIError(None, None, locked_error(tmp_path))  # type: ignore[arg-type]
        return "ok"

    assert retrying(flaky, base_delay=0) == "ok" and len(calls) == 2
    calls.clear()

    def broken() -> str:
        calls.append(1)
        raise DBAPIError(None, None, sqlite_error("SELEC 1", tmp_path))  # type: ignore[arg-type]

    with pytest.raises(DBAPIError):
        retrying(broken, base_delay=0)
    assert len(calls) == 1
