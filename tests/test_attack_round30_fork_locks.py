# ruff: noqa: F811  (the fixture imported from the round-27 reconnect tests is a parameter here)
"""Round 30 residue: the locks round 29 left a forked child inheriting held.

Round 29 gave a forked child fresh locks for the read path (guard verdicts, each source's
own, the store backend's). Six more module or object locks were still taken as they were
at the fork: the raw-guard class cache's (every new MySQLdb connection), the REST owner's
seq counter's (every REST run's statistics), the read-ahead's switch interval's and the
cyclic collector's (every run's start and end), the papermill import's (every scheduled
run), and each query log sink's (every batch of the query log written). A thread of the
parent inside one at the fork (a `Pool().map` forked while a run, a widget or the log's
hand-over was busy) left it held in the child, whose first use waited forever.

The parent's thread holds the lock for the whole fork here (the moment made wide); the
child works in a thread it waits 10 s for. Oracle: the child's result through a pipe and,
for the sinks, the query log rows the child wrote, by direct SQL on the store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import _stores
import pytest
from _fork import held_by_a_thread, in_child
from _stores import Oracle

from hybridwb.config import Settings
from hybridwb.platform import rest_campaigns
from hybridwb.platform.store import Store
from hybridwb.source import rawguard
from hybridwb.source.querylog import QueryLogEntry
from hybridwb.workbench import _OwnStoreSink
from hybridwb.workflows import heap, prefetch, runner
from tests.test_attack_round27_reconnect import _source, writer  # noqa: F401

store = _stores.store
oracle = _stores.oracle

WAIT = 10.0


@pytest.mark.mysql
def test_a_child_forked_while_the_raw_guards_class_lock_is_held_still_connects(
    writer: tuple[str, str, str],
) -> None:
    """Every new MySQLdb connection takes the guarded class from `rawguard._LOCK`."""

    def read() -> Any:
        src = _source(*writer, driver="mysqldb")
        try:
            return src.records("SELECT a FROM t ORDER BY a")
        finally:
            src.close()

    assert read() == [{"a": 1}, {"a": 2}]  # the class made in the parent first
    with held_by_a_thread(rawguard._LOCK):
        said = in_child(read, wait=WAIT)
    assert said == repr([{"a": 1}, {"a": 2}]), said


def test_a_child_forked_while_the_rest_seq_lock_is_held_still_counts_on() -> None:
    parent = rest_campaigns.next_seq()
    with held_by_a_thread(rest_campaigns._seq_lock):
        said = in_child(lambda: rest_campaigns.next_seq() > parent, wait=WAIT)
    assert said == "True", said


def test_a_child_forked_while_the_read_aheads_switch_lock_is_held_still_reads_ahead() -> None:
    def read() -> Any:
        with prefetch.ahead(iter([1, 2, 3])) as items:
            return list(items)

    with held_by_a_thread(prefetch._SWITCH.lock):
        said = in_child(read, wait=WAIT)
    assert said == "[1, 2, 3]", said


def test_a_child_forked_while_the_collectors_lock_is_held_still_runs() -> None:
    def run() -> Any:
        with heap.frozen_heap():
            return "ran"

    with held_by_a_thread(heap._GC.lock):
        said = in_child(run, wait=WAIT)
    assert said == "'ran'", said


def test_a_child_forked_while_the_papermill_import_lock_is_held_still_imports() -> None:
    with held_by_a_thread(runner._IMPORTING):
        said = in_child(lambda: runner.papermill().__name__, wait=30)
    assert said == "'papermill'", said


def _entry(query: str) -> QueryLogEntry:
    return QueryLogEntry("db", query, 0.001, 1, "success")


def test_a_child_forked_while_a_collected_workbenchs_sink_is_busy_still_logs(
    store: Store, oracle: Oracle
) -> None:
    """`_OwnStoreSink`: the sink of a workbench collected without close()."""
    url = store.backend.url  # type: ignore[attr-defined]
    sink = _OwnStoreSink(Settings(store_url=url.render_as_string(hide_password=False)))
    try:
        with held_by_a_thread(sink._lock):
            said = in_child(lambda: sink.write_query_logs([_entry("SELECT 9 -- child")]), WAIT)
    finally:
        sink.close()
    assert said == "ok", said
    assert oracle.rows("SELECT query FROM query_logs") == [("SELECT 9 -- child",)]


def test_a_child_forked_while_a_workbenchs_sink_is_busy_still_logs(
    shop: Any, tmp_path: Path
) -> None:
    """`_StoreSink`: the sink of a workbench alive (it is held while a batch is written)."""
    import sqlite3

    sink = shop.querylog.sink
    with held_by_a_thread(sink._lock):
        said = in_child(lambda: sink.write_query_logs([_entry("SELECT 9 -- child")]), WAIT)
    assert said == "ok", said
    with sqlite3.connect(tmp_path / ".hybridwb" / "platform.db") as conn:
        rows = conn.execute("SELECT query FROM query_logs").fetchall()
    assert rows == [("SELECT 9 -- child",)]
