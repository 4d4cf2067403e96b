# ruff: noqa: F811  (the fixture imported from the round-27 reconnect tests is a parameter here)
"""Attack round 29 (found here and, at the same time, fixed on main by f2713c1, whose fix this
branch keeps): a child forked inside `one_connection()` never speaks on the parent's
pinned connection.

Round 27 made a forked child drop its copy of the source's pools, round 28 its parked
connection; the connection `one_connection()` pins is kept in a thread-local, and the
thread that forks is the child's only thread. A notebook that wraps a batch of reads in
`with wb.source.one_connection():` and maps a function over a `Pool` inside it had every
worker send its statements on the parent's session; and a child that left the block
(`os.fork()` in a script) checked the parent's connection back in, its SET sent on the
parent's socket, whose next read then took that reply as its own.

Oracle: the server's CONNECTION_ID() of each read, the child's through a pipe, and the rows
the parent reads after the child is gone.
"""

from __future__ import annotations

import os

import pytest

from tests.test_attack_round27_reconnect import _source, writer  # noqa: F401

pytestmark = pytest.mark.mysql

ID = "SELECT CONNECTION_ID() AS id"


@pytest.mark.parametrize("driver", ["pymysql", "mysqldb"])
def test_a_child_forked_inside_one_connection_reads_on_a_connection_of_its_own(
    writer: tuple[str, str, str], driver: str
) -> None:
    src = _source(*writer, driver=driver)
    try:
        read, write = os.pipe()
        ids: list[str] = []
        pid = -1
        try:
            with src.one_connection():
                mine = src.records(ID)[0]["id"]
                pid = os.fork()
                if pid == 0:
                    ids.append(str(src.records(ID)[0]["id"]))
                else:
                    os.close(write)
                    os.waitpid(pid, 0)
                    child = os.read(read, 256).decode()
                    os.close(read)
                    again = src.records(ID)[0]["id"]
            if pid == 0:  # the child left the block, as a forked script does, and reads on
                ids.append(str(src.records(ID)[0]["id"]))
        except BaseException as exc:
            if pid != 0:
                raise
            ids.append(f"child: {type(exc).__name__}: {exc}"[:200])
        finally:
            if pid == 0:
                os.write(write, ",".join(ids).encode())
                os._exit(0)
        rows = [src.records("SELECT a FROM t ORDER BY a") for _ in range(3)]
    finally:
        src.close()
    inside, outside = child.split(",")
    assert inside != str(mine), "the child read on the parent's pinned connection"
    assert outside != str(mine), "the child parked the parent's connection and read on it"
    assert inside.isdigit() and outside.isdigit(), child
    assert again == mine
    assert rows == [[{"a": 1}, {"a": 2}]] * 3
