"""Platform stores for tests, on SQLite and on the shared PostgreSQL, and an oracle that
reads (and, to stage a crash, writes) their rows with the plain driver (sqlite3 / psycopg),
never through the store code under test.

    from _stores import Oracle, store  # noqa: F401  (`store` is a fixture: sqlite, postgres)

    def test_x(store, oracle): ...
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import _pg_reuse
import psycopg
import pytest
from sqlalchemy.engine import URL

from hybridwb.platform.backend import SqlBackend
from hybridwb.platform.store import Store

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


def store_sql(store: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Direct SQL on a store given by its URL text (sqlite3 / psycopg; `%s` placeholders),
    committed; the rows it returns, if any. An oracle: never the store code under test."""
    if store.startswith("sqlite"):
        with sqlite3.connect(store.removeprefix("sqlite:///")) as conn:
            return conn.execute(sql.replace("%s", "?"), params).fetchall()
    database = store.rsplit("/", 1)[1]
    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={database}") as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def fresh_pg_database(prefix: str = "hybridwb_s", *, migrated: bool = False) -> Iterator[URL]:
    """A PostgreSQL database for one test (use as a fixture body:
    `yield from fresh_pg_database()`): empty, or `migrated` (the store's schema at head, no
    seed rows), copied from a template this process migrated once (`pg_template`). After
    the test it is made fresh again and kept for the next test of this process when the
    catalog shows it is what a fresh one is (`_pg_reuse`), else dropped; `prefix` names
    the ones made here."""
    kind = "migrated" if migrated else "empty"
    pool = _READY.setdefault(f"pool-{kind}", [])
    if pool:
        name, expected = pool.pop()
    else:
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        copy = f' TEMPLATE "{pg_template()}"' if migrated else ""
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"{copy}')
        expected = _pg_reuse.fingerprint(name)
    try:
        yield URL.create("postgresql+psycopg", username="postgres", host="127.0.0.1", database=name)
    finally:
        if _pg_reuse.reset(name, expected, migrated=migrated):
            pool.append((name, expected))
        else:
            _drop_database(name)


def pg_store_with_contacts(prefix: str, recipient: str, *, unique: bool) -> Iterator[str]:
    """A migrated PostgreSQL store (`fresh_pg_database`) that also holds a table
    `contacts (recipient text)` with one row, `recipient`: a value a statement on the store
    can read and an error could echo. Yields the database's name; the table is dropped
    after, so the database can be used again."""
    for url in fresh_pg_database(prefix, migrated=True):
        database = str(url.database)
        dsn = f"host=127.0.0.1 user=postgres dbname={database}"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"CREATE TABLE contacts (recipient text{' UNIQUE' if unique else ''})")
            conn.execute("INSERT INTO contacts VALUES (%s)", (recipient,))
        try:
            yield database
        finally:
            with contextlib.suppress(psycopg.Error), psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("SET lock_timeout = '5s'")
                conn.execute("DROP TABLE IF EXISTS contacts")


def _drop_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def reset_pg(url: URL) -> None:
    """An empty public schema in the session's PostgreSQL database."""
    with psycopg.connect(
        f"host=127.0.0.1 user=postgres dbname={url.database}", autocommit=True
    ) as conn:
        conn.execute(
            "DROP SCHEMA public CASCADE; CREATE SCHEMA public; GRANT ALL ON SCHEMA public TO public"
        )


class Oracle:
    """Direct SQL on a store's database: `?` placeholders, ids given as UUIDs or text."""

    def __init__(self, url: URL) -> None:
        self.url = url
        self.postgres = url.get_backend_name() == "postgresql"

    def uid(self, value: Any) -> Any:
        """An id as the database holds it (SQLite: 32 hex digits; PostgreSQL: uuid text)."""
        u = uuid.UUID(str(value))
        return str(u) if self.postgres else u.hex

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        if self.postgres:
            with psycopg.connect(
                f"host=127.0.0.1 user=postgres dbname={self.url.database}", autocommit=True
            ) as conn:
                return list(conn.execute(sql.replace("?", "%s"), params).fetchall())
        with sqlite3.connect(str(self.url.database)) as conn:
            return list(conn.execute(sql, params).fetchall())

    def one(self, sql: str, *params: Any) -> Any:
        [(value,)] = self.rows(sql, *params)
        return value

    def execute(self, sql: str, *params: Any) -> None:
        if self.postgres:
            with psycopg.connect(
                f"host=127.0.0.1 user=postgres dbname={self.url.database}", autocommit=True
            ) as conn:
                conn.execute(sql.replace("?", "%s"), params)
            return
        with sqlite3.connect(str(self.url.database)) as conn:
            conn.execute(sql, params)


#: migrated once per session, then copied (SQLite, and PostgreSQL as a template) or emptied
#: (PostgreSQL's session database): a migration costs one to two seconds, which per test
#: would dominate these suites
_READY: dict[str, Any] = {}
TEMPLATE_PREFIX = "hybridwb_tmpl_"


def pg_template() -> str:
    """A PostgreSQL database migrated to head (no seed rows) once per process, to copy test
    databases from; closed to connections, so a copy never finds it in use (autovacuum
    included). `drop_templates` removes it when the session ends."""
    name = _READY.get("pg-template")
    if name is None:
        # the maker's pid in the name: one a killed session left (its pid gone) is dropped
        name = f"{TEMPLATE_PREFIX}{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            _drop_orphan_templates(conn)
            conn.execute(f'CREATE DATABASE "{name}"')
        st = Store(
            SqlBackend(
                URL.create(
                    "postgresql+psycopg", username="postgres", host="127.0.0.1", database=name
                )
            )
        )
        st.init(seed=False)
        st.close()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false')
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
        _READY["pg-template"] = name
    return str(name)


def _drop_orphan_templates(conn: psycopg.Connection) -> None:
    """Drop the templates whose maker (the pid in the name) is gone: a session killed
    before `drop_templates` ran (a template cannot be dropped until it is made a plain
    database again)."""
    rows = conn.execute(
        "SELECT datname FROM pg_database WHERE datname LIKE %s", (TEMPLATE_PREFIX + "%",)
    ).fetchall()
    for (name,) in rows:
        pid = name[len(TEMPLATE_PREFIX) :].partition("_")[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue  # an older name (no pid) or a living session's
        try:
            conn.execute(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE false')
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except psycopg.Error:
            # another worker starting at the same moment is dropping the same orphan (it
            # is gone, or invalid while its drop runs): that worker finishes it; one left
            # invalid by a drop that was killed can only be dropped
            with contextlib.suppress(psycopg.Error):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sqlite_template() -> Path:
    """A SQLite store file migrated to head (no seed rows) once per process, to copy."""
    template = _READY.get("sqlite")
    if template is None:
        import tempfile

        template = Path(tempfile.mkdtemp(prefix="hybridwb-store-template-")) / "platform.db"
        st = Store(SqlBackend(URL.create("sqlite", database=str(template))))
        st.init(seed=False)
        st.close()
        _READY["sqlite"] = template
    return Path(template)


def migrated_sqlite(target: Path) -> URL:
    """A SQLite store file at `target`, migrated: a copy of `sqlite_template`."""
    shutil.copy(sqlite_template(), target)
    return URL.create("sqlite", database=str(target))


def drop_templates() -> None:
    """The templates this process made, dropped (the session's end)."""
    for kind in ("migrated", "empty"):
        for used, _ in _READY.pop(f"pool-{kind}", []):
            _drop_database(used)
    name = _READY.pop("pg-template", None)
    if name is not None:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE false')
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    template = _READY.pop("sqlite", None)
    if template is not None:
        shutil.rmtree(Path(template).parent, ignore_errors=True)


def _empty_pg(url: URL) -> None:
    """The session's database as the store's schema at head with no rows: emptied in
    place when its catalog is still the migrated one (`_pg_reuse.reset`), else made again."""
    key = f"pg:{url.database}"
    expected = _READY.get(key)
    database = str(url.database)
    if expected is not None and _pg_reuse.reset(
        database, expected, migrated=True, end_sessions=False
    ):
        return
    reset_pg(url)
    st = Store(SqlBackend(url))
    st.init(seed=False)
    st.close()
    _READY[key] = _pg_reuse.fingerprint(database)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An initialised, empty store: SQLite in the test's directory, or the session's
    PostgreSQL database with every table emptied."""
    if request.param == "sqlite":
        url = migrated_sqlite(tmp_path / "platform.db")
    else:
        url = request.getfixturevalue("pg_db")
        _empty_pg(url)
    st = Store(SqlBackend(url), actor="tester")
    yield st
    st.close()


@pytest.fixture
def oracle(store: Store) -> Oracle:
    return Oracle(store.backend.url)


def workflow_with_run(store: Store, name: str = "wf", **run: Any) -> tuple[Any, Any]:
    """A workflow and one queued run of it: (workflow id, run id)."""
    wf = store.workflows.create(name=name)
    row = store.runs.create(wf["id"], **run)
    return wf["id"], row["id"]


def rewrite_logs_with_core(store: Store, stored: list[Any], entries: list[Any]) -> None:
    """Replace the store's query log rows with `entries` written by SQLAlchemy Core, each
    with the id its row in `stored` has (rows as read back by the plain driver, id first):
    the oracle the store's own fast write of query logs is compared with."""
    from sqlalchemy import insert

    from hybridwb.platform import schema

    core = schema.metadata.tables["query_logs"]
    with store.backend.engine.begin() as conn:
        conn.execute(core.delete())
        for row, e in zip(stored, entries, strict=True):
            conn.execute(
                insert(core).values(
                    id=uuid.UUID(str(row[0])),
                    timestamp=e.timestamp,
                    database=e.database,
                    query=e.query,
                    execution_time=e.executionTime,
                    result_count=e.resultCount,
                    status=e.status,
                    error_message=e.errorMessage,
                    kind=e.kind,
                )
            )


def dies_at_batch(n: int) -> Callable[..., Any]:
    """`Campaigns.write_batch` as a kernel that dies at its `n`-th batch (the call raises,
    nothing of that batch written); put it on the class with `monkeypatch.setattr`."""
    from hybridwb.platform.campaigns import Campaigns

    real = Campaigns.write_batch
    calls = {"n": 0}

    def write_batch(*a: Any, **kw: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == n:
            raise RuntimeError("the kernel died")
        return real(*a, **kw)

    return write_batch
