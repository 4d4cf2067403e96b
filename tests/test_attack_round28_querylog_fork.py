"""Attack round 28: a forked child never writes its parent's query log entries.

A notebook reads a few times (the entries wait in the query log for a batch), then
`multiprocessing.Pool().map` runs a function that reads too: each forked worker inherited
the parent's pending entries, and the first batch it handed over (or its flush at exit)
wrote them to the store as well as the parent's own flush did; each read of the parent was
logged once per worker, over again (usage statistics and the audit of who read what
counted reads nobody made). A worker forked while another thread of the parent was handing
a batch over inherited that lock held, and its flush waited forever.

Oracle: the `query_logs` rows, by direct SQL on the store.
"""

from __future__ import annotations

import _stores
from _fork import held_by_a_thread, in_child
from _stores import Oracle

from hybridwb.platform.store import Store
from hybridwb.source.querylog import QueryLog, QueryLogEntry

store = _stores.store
oracle = _stores.oracle


def _entry(query: str) -> QueryLogEntry:
    return QueryLogEntry("db", query, 0.001, 1, "success")


def test_a_forked_child_never_writes_its_parents_pending_entries(
    store: Store, oracle: Oracle
) -> None:
    log = QueryLog(batch_size=200)
    log.sink = store
    for n in range(3):
        log.record(_entry(f"SELECT {n} -- parent"))

    def child() -> None:
        log.record(_entry("SELECT 9 -- child"))
        log.flush()  # as its exit, or its batch, hands them over

    assert in_child(child) == "ok"
    log.flush()

    rows = oracle.rows("SELECT query, count(*) FROM query_logs GROUP BY query ORDER BY query")
    assert rows == [
        ("SELECT 0 -- parent", 1),
        ("SELECT 1 -- parent", 1),
        ("SELECT 2 -- parent", 1),
        ("SELECT 9 -- child", 1),
    ]


def test_a_child_forked_during_a_hand_over_can_still_flush(store: Store, oracle: Oracle) -> None:
    log = QueryLog(batch_size=200)
    log.sink = store
    with held_by_a_thread(log._handing):  # another thread of the parent, mid hand-over

        def child() -> None:
            log.record(_entry("SELECT 9 -- child"))
            log.flush()

        said = in_child(child, wait=10)
    assert said == "ok", said
    assert oracle.rows("SELECT query FROM query_logs") == [("SELECT 9 -- child",)]
