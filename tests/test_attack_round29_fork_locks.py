# ruff: noqa: F811  (the fixture imported from the round-27 reconnect tests is a parameter here)
"""Attack round 29: a child forked while another thread of its parent held one of the read
path's locks still reads.

Round 28 gave a forked child fresh locks for the query log and the store's image. The read
path has more, each held for a moment by every read: the process's guard verdicts
(`VERDICTS`, every statement's check), and each source's own (its prepared statements and
schema names, its parked connection, its result cache, its list of views). A notebook's
`Pool().map` forked while a background thread (a run's read-ahead, a widget's search) was
inside one of them inherited it held, and no thread of the child would ever release it:
the child's first read waited forever.

The parent's thread holds the lock for the whole fork here (the moment made wide);
oracle: the rows the child read, sent back through a pipe, against root's own count.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _fork import held_by_a_thread, in_child

from hybridwb.config import Settings
from hybridwb.platform.store import open_store
from hybridwb.source import Source
from hybridwb.source.verdicts import VERDICTS
from tests.test_attack_round27_reconnect import _source, writer  # noqa: F401

pytestmark = pytest.mark.mysql

#: the lock a parent's thread holds at the fork, by where it lives
LOCKS: dict[str, Callable[[Source], Any]] = {
    "verdicts": lambda src: VERDICTS._lock,
    "source": lambda src: src._lock,
    "parking": lambda src: src._parking._lock,
    "views": lambda src: src._views._lock,
    "results": lambda src: src._cache._lock,
}


@pytest.mark.parametrize("held", list(LOCKS))
def test_a_child_forked_while_a_parent_thread_holds_a_read_lock_still_reads(
    writer: tuple[str, str, str], held: str
) -> None:
    src = _source(*writer, driver="pymysql")
    try:
        assert src.records("SELECT a FROM t ORDER BY a", cache_ttl=30) == [{"a": 1}, {"a": 2}]
        with held_by_a_thread(LOCKS[held](src)):  # a thread of the parent, mid read
            said = in_child(
                lambda: [
                    src.records("SELECT a FROM t WHERE a > 1"),
                    src.records("SELECT a FROM t ORDER BY a", cache_ttl=30),
                ],
                wait=10,
            )
    finally:
        src.close()
    assert said == repr([[{"a": 2}], [{"a": 1}, {"a": 2}]]), said


def test_a_child_forked_while_a_parent_thread_holds_a_store_backends_lock_still_writes(
    tmp_path: Path,
) -> None:
    """The store's backend takes its lock at every use (`SqlBackend.engine`): the query log's
    hand-over and a run's store steps use it from threads of their own. Oracle: the
    templates the child made, counted with sqlite3."""
    store = open_store(Settings(store_url=f"sqlite:///{tmp_path / 'platform.db'}"))
    store.init()
    before = len(store.templates.list())

    def create() -> None:
        store.templates.create(name="fork", content="안녕하세요", message_type="SMS")

    try:
        with held_by_a_thread(store.backend._lock):  # type: ignore[attr-defined]
            said = in_child(create, wait=10)
    finally:
        store.close()
    assert said == "ok", said
    with sqlite3.connect(tmp_path / "platform.db") as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM message_templates")]
    assert len(names) == before + 1 and "fork" in names
