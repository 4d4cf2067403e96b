"""Attack round 27: a forked child (multiprocessing's default start on Linux, a notebook's
`Pool().map` over a function that reads) never speaks on its parent's pooled sockets.

Round 20-odd made the child forget the parent's *parked* connection; the pool's idle
connections were still the parent's sockets in the child. The child took one from the pool,
read the reply to the session SET the parent had sent at checkin, and sent its statements on
the parent's server session: parent and child then read each other's replies (a lost
connection, a result of the other's statement, or a read waiting `read_timeout` for a reply
the other process took). Now the child disposes of its copy of every source's pools at the
fork, without closing the parent's sockets (`Engine.dispose(close=False)`).

Oracle: the server's CONNECTION_ID() of each read (the child's sent back through a pipe)
against the ids of the parent's connections, as root lists them in the processlist.
"""

from __future__ import annotations

import os

import pytest

from tests._mysql import root
from tests.test_attack_parked import _source, db  # noqa: F401 (the fixture)

pytestmark = pytest.mark.mysql


def _connections(name: str) -> set[int]:
    conn = root()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id FROM information_schema.processlist WHERE db = %s", (name,))
            return {int(r[0]) for r in cur.fetchall()}
    finally:
        conn.close()


def test_a_forked_child_never_takes_its_parents_pooled_connections(db: str) -> None:  # noqa: F811
    """Before: the child's reads ran on the parent's idle pooled connection (the same server
    connection id). Mutation: drop the `os.register_at_fork` hook in source.py -> fails."""
    src = _source(db)
    try:
        src.records("SELECT a FROM t")  # parked
        src.table_names()  # a second connection, idle in the pool
        with src.engine.connect() as conn:  # (the pool's, checked in again after)
            conn.exec_driver_sql("SELECT 1").fetchall()
        parents = _connections(db)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: its reads' connection ids to the parent, then out
            try:
                ids = [int(src.records("SELECT CONNECTION_ID() AS id")[0]["id"])]
                with src.engine.connect() as conn:
                    ids.append(int(conn.exec_driver_sql("SELECT CONNECTION_ID()").scalar()))
                os.write(write, ",".join(map(str, ids)).encode())
            except BaseException as exc:  # said to the parent: the test shows it
                os.write(write, f"child: {type(exc).__name__}: {exc}"[:200].encode())
            finally:
                os._exit(0)
        os.close(write)
        os.waitpid(pid, 0)
        said = os.read(read, 256).decode()
        assert not said.startswith("child:"), said
        child = {int(i) for i in said.split(",") if i}
        os.close(read)
        again = [len(src.records("SELECT a FROM t")) for _ in range(3)]
        with src.engine.connect() as conn:
            pooled = conn.exec_driver_sql("SELECT COUNT(*) FROM t").scalar()
    finally:
        src.close()
    assert len(child) >= 1 and not child & parents, (child, parents)
    assert again == [1, 1, 1] and pooled == 1
