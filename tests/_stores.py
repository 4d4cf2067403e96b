"""Platform stores for tests, on SQLite and on the shared PostgreSQL, and an oracle that
reads (and, to stage a crash, writes) their rows with the plain driver (sqlite3 / psycopg),
never through the store code under test.

    from _stores import Oracle, store  # noqa: F401  (`store` is a fixture: sqlite, postgres)

    def test_x(store, oracle): ...
"""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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


def fresh_pg_database(prefix: str = "hybridwb_s") -> Iterator[URL]:
    """A new, empty PostgreSQL database for one test, dropped after (use as a fixture body:
    `yield from fresh_pg_database()`)."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield URL.create("postgresql+psycopg", username="postgres", host="127.0.0.1", database=name)
    finally:
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


#: migrated once per session, then copied (SQLite) or emptied (PostgreSQL): a migration
#: costs about a second, which per test would dominate these suites
_READY: dict[str, Any] = {}


def _empty_pg(url: URL) -> None:
    key = f"pg:{url.database}"
    if key not in _READY:
        reset_pg(url)
        st = Store(SqlBackend(url))
        st.init(seed=False)
        st.close()
        _READY[key] = True
        return
    with psycopg.connect(
        f"host=127.0.0.1 user=postgres dbname={url.database}", autocommit=True
    ) as conn:
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version'"
            )
        ]
        conn.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE")


def _sqlite_copy(tmp_path: Path, factory: pytest.TempPathFactory) -> URL:
    template = _READY.get("sqlite")
    if template is None:
        template = factory.mktemp("store-template") / "platform.db"
        st = Store(SqlBackend(URL.create("sqlite", database=str(template))))
        st.init(seed=False)
        st.close()
        _READY["sqlite"] = template
    target = tmp_path / "platform.db"
    shutil.copy(template, target)
    return URL.create("sqlite", database=str(target))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    """An initialised, empty store: SQLite in the test's directory, or the session's
    PostgreSQL database with every table emptied."""
    if request.param == "sqlite":
        url = _sqlite_copy(tmp_path, tmp_path_factory)
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
