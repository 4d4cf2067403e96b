"""The read path takes and parks its connection without a context manager now
(`Parking.take` / `park`, issue 17); what `Parking.reader` promised still holds:

* a connection is parked only after a read (or a `one_connection` block) that raised
  nothing: after an error it goes back to the pool, whose checkin decides;
* a forked child never reads on its parent's parked connection, now that the process is
  told by a pid read again only in a forked child (`os.register_at_fork`), not by a
  `getpid` system call per read.

Oracles: the server's CONNECTION_ID() of each read (the child's sent back through a pipe);
what is parked.
"""

from __future__ import annotations

import os

import pytest

from hybridwb.errors import HybridwbError
from tests.test_attack_parked import _source, db  # noqa: F401 (the fixture)

pytestmark = pytest.mark.mysql


def test_a_forked_child_reads_on_a_connection_of_its_own(db: str) -> None:  # noqa: F811
    """Mutation: drop the `os.register_at_fork` hook in checkout.py: the child takes the
    parked connection of its parent (the same server connection id)."""
    src = _source(db)
    try:
        parent = int(src.records("SELECT CONNECTION_ID() AS id")[0]["id"])  # parked now
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: one read, its connection id to the parent, then out
            try:
                child = int(src.records("SELECT CONNECTION_ID() AS id")[0]["id"])
                os.write(write, str(child).encode())
            finally:
                os._exit(0)
        os.close(write)
        os.waitpid(pid, 0)
        child = int(os.read(read, 64).decode() or 0)
        os.close(read)
        again = int(src.records("SELECT CONNECTION_ID() AS id")[0]["id"])
    finally:
        src.close()
    assert child and child != parent
    assert again == parent  # the parent's own connection, still parked for it


def test_a_read_that_failed_parks_nothing(db: str) -> None:  # noqa: F811
    """Mutation: in Source._execute, park the connection when run_mysql raised."""
    src = _source(db)
    try:
        with pytest.raises(HybridwbError):
            src.records("SELECT no_such_column FROM t")
        assert src._parking._parked == []
        assert len(src.records("SELECT a FROM t")) == 1  # and the next read is whole
        assert len(src._parking._parked) == 1
    finally:
        src.close()


def test_a_one_connection_block_that_raised_parks_nothing(db: str) -> None:  # noqa: F811
    """Mutation: in Source.one_connection, park the connection when the block raised."""
    src = _source(db)
    try:
        with pytest.raises(RuntimeError), src.one_connection():
            assert len(src.records("SELECT a FROM t")) == 1
            raise RuntimeError("the caller's own error")
        assert src._parking._parked == []
        with src.one_connection():
            assert len(src.records("SELECT a FROM t")) == 1
        assert len(src._parking._parked) == 1
    finally:
        src.close()
