"""A process forked inside `Source.one_connection()` never speaks on its parent's connection.

Inside the block every read of the thread runs on one checked-out connection (the pin). A
fork there (a notebook's `multiprocessing.Pool().map` inside a search, a scheduler's
worker) gave the child the parent's pin: its reads ran on the parent's server session, and
the child's end of the block checked that connection in, which sends the next session SET
on the parent's socket without reading its reply. The parent then read that reply as its
next statement's (one reply late from then on), and the child's statements had run in the
parent's session. The child now forgets the pin at the fork (never closing or checking in
the parent's socket) and its reads open connections of their own.

Oracle: the server's CONNECTION_ID() of each read (the child's sent back through a pipe),
a user variable set in the parent's session with the plain driver on the pinned connection,
and the rows of `t` as the server counts them.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import pytest

from hybridwb.source import rawguard
from tests.test_attack_parked import _source, db  # noqa: F401 (the fixture)

pytestmark = pytest.mark.mysql


def _raw(src: Any, sql: str) -> Any:
    """One value read (or a user variable set) with the plain driver on this thread's pinned
    connection, past the driver-level guard (`rawguard.internal`: how hybridwb sends its own)."""
    raw = src._pinned.conn.connection.dbapi_connection
    with rawguard.internal(raw):
        cur = raw.cursor()
        try:
            cur.execute(sql)
            row = cur.fetchone()
            return row[0] if row else None
        finally:
            cur.close()


def _ids(src: Any) -> list[Any]:
    """The rows of a read of CONNECTION_ID() as they came (a read one reply late brings
    another statement's rows, or none)."""
    return [{k: int(v) if k == "id" else v for k, v in r.items()} for r in
            src.records("SELECT CONNECTION_ID() AS id")]  # fmt: skip


def _child(src: Any, write: int, nested: bool) -> None:
    """The child's reads inside the parent's block: their connection ids, to the parent."""
    try:
        ids = [int(src.records("SELECT CONNECTION_ID() AS id")[0]["id"])]
        if nested:
            with src.one_connection():
                ids += [int(src.records("SELECT CONNECTION_ID() AS id")[0]["id"])]
                ids += [len(src.records("SELECT a FROM t"))]
        os.write(write, ",".join(map(str, ids)).encode())
    except BaseException as exc:  # said to the parent: the test shows it
        os.write(write, f"child: {type(exc).__name__}: {exc}"[:300].encode())


class _ChildLeaves(Exception):
    """The child leaving the block by an error (the block's end closes, not parks)."""


@pytest.mark.parametrize(
    ("nested", "raises"),
    [(False, False), (True, False), (False, True)],
    ids=["read", "nested-block", "leaves-by-an-error"],
)
def test_a_child_forked_inside_one_connection_leaves_the_parents_session_alone(
    db: str,  # noqa: F811
    nested: bool,
    raises: bool,
) -> None:
    """The child reads inside the block (and, `nested`, in a block of its own) and leaves
    it as the parent's code does (or by an error); the parent waits for it to end. Before:
    the child's read ran on the parent's connection (the same id) and its block's end sent a
    SET there, so the parent's next read got the SET's reply (its rows lost)."""
    src = _source(db)
    pid = -1
    read, write = os.pipe()
    try:
        with contextlib.suppress(_ChildLeaves), src.one_connection():
            parent_id = int(src.records("SELECT CONNECTION_ID() AS id")[0]["id"])
            _raw(src, "SET @parent_mark = 42")
            assert int(_raw(src, "SELECT @parent_mark")) == 42
            pid = os.fork()
            if pid == 0:
                _child(src, write, nested)
                if raises:
                    raise _ChildLeaves
            else:
                os.close(write)
                os.waitpid(pid, 0)
                said = os.read(read, 512).decode()
                # the parent's session, after the child read and left the block
                inside = [
                    _ids(src),
                    len(src.records("SELECT a FROM t")),
                    _raw(src, "SELECT @parent_mark"),
                    _ids(src),
                ]
        if pid == 0:
            os._exit(0)
        after = [len(src.records("SELECT a FROM t")) for _ in range(3)]
    finally:
        if pid == 0:
            os._exit(1)
        os.close(read)
        src.close()
    assert not said.startswith("child:"), said
    child = [int(i) for i in said.split(",")]
    assert parent_id not in child[:2], ("the child read on the parent's connection", child)
    if nested:
        assert child[2] == 1
    assert inside == [[{"id": parent_id}], 1, 42, [{"id": parent_id}]]
    assert after == [1, 1, 1]
