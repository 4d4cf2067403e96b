"""Attack round 28: a forked child never speaks on its parent's pooled store connections.

Round 27 made a forked child (multiprocessing's default start on Linux: a notebook's
`Pool().map` over a function that uses the workbench) drop its copies of every *source*
pool at the fork. The platform store's pool was left out: the child took the parent's idle
PostgreSQL connection (its pool_pre_ping and its statements on the parent's server
session, the parent and the child reading each other's replies), and a child that began a
transaction there and died left it open on the parent's session: the parent's next
transaction ran inside it and its COMMIT committed the child's half-done writes.

Oracle: `pg_backend_pid()` of each side's connection, and the rows as direct SQL reads them.
"""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

from hybridwb.platform.backend import SqlBackend

pytestmark = pytest.mark.postgres


def _child(write: int, body: str, backend: SqlBackend) -> None:
    """In the forked child: run `body`, tell the parent what it saw, and leave at once."""
    try:
        said = ""
        if body == "pid":
            with backend.engine.connect() as conn:
                said = str(conn.execute(text("SELECT pg_backend_pid()")).scalar())
        elif body == "half":  # a transaction begun, a row written, then the process dies
            conn = backend.engine.connect()
            conn.execute(text("INSERT INTO atk28_fork (note) VALUES ('child, never committed')"))
            said = "begun"
        os.write(write, said.encode())
    except BaseException as exc:  # said to the parent: the test shows it
        os.write(write, f"child: {type(exc).__name__}: {exc}"[:200].encode())
    finally:
        os._exit(0)


def _fork(backend: SqlBackend, body: str) -> str:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        _child(write, body, backend)
    os.close(write)
    os.waitpid(pid, 0)
    said = os.read(read, 256).decode()
    os.close(read)
    assert not said.startswith("child:"), said
    return said


@pytest.fixture
def backend(pg_db: URL) -> SqlBackend:
    table = "atk28_fork"
    b = SqlBackend(pg_db)
    with b.engine.begin() as conn:
        conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
        conn.execute(text(f"CREATE TABLE {table} (note text)"))
    yield b
    with b.engine.begin() as conn:
        conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
    b.close()


def test_a_forked_child_never_takes_the_parents_pooled_store_connection(
    backend: SqlBackend,
) -> None:
    with backend.engine.connect() as conn:  # idle in the pool after
        parent = int(conn.execute(text("SELECT pg_backend_pid()")).scalar())

    child = int(_fork(backend, "pid"))

    assert child != parent, "the child spoke on the parent's server session"
    with backend.engine.connect() as conn:
        assert int(conn.execute(text("SELECT pg_backend_pid()")).scalar()) == parent


def test_a_dead_childs_half_done_write_is_never_committed_by_the_parent(
    backend: SqlBackend, pg_db: URL
) -> None:
    with backend.engine.connect() as conn:
        conn.execute(text("SELECT 1"))  # a connection idle in the pool

    assert _fork(backend, "half") == "begun"
    mine = uuid.uuid4().hex
    with backend.engine.begin() as conn:
        conn.execute(text("INSERT INTO atk28_fork (note) VALUES (:n)"), {"n": mine})

    import psycopg

    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={pg_db.database}") as conn:
        notes = sorted(r[0] for r in conn.execute("SELECT note FROM atk28_fork"))
    assert notes == [mine], notes
