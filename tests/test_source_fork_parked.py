"""A forked child never reads on its parent's parked connection (checkout.py), now that the
process is told by a pid read again only in a forked child (`os.register_at_fork`), not
by a `getpid` system call per read.

Oracle: the server's CONNECTION_ID() of each read, the child's sent back through a pipe.
"""

from __future__ import annotations

import os

import pytest

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
