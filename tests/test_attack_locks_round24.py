"""Round 24: a lock names a run of its own workflow however the rows are written.

Migration 0009's triggers checked a new lock row and a run's `workflow_id`, but not (a) a
run whose *id* is changed to the id a lock of another workflow names, nor (b) on
PostgreSQL, a lock row and a run row written at the same time by two transactions: each
trigger looked for the other row before it was committed, both committed, and W2's lock
named W1's run (its holder could then clear W1's frozen set). Oracle: direct SQL.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from typing import Any

import _stores
import psycopg
import pytest
from _stores import Oracle

from hybridwb.platform.campaigns import Campaigns
from hybridwb.platform.store import Store

store = _stores.store
oracle = _stores.oracle


def test_a_run_cannot_take_the_id_a_lock_of_another_workflow_names(
    store: Store, oracle: Oracle
) -> None:
    w1, w2 = (store.workflows.create(name=n)["id"] for n in ("w1", "w2"))
    named = uuid.uuid4()
    assert Campaigns(store.backend).acquire(w2, named, "me:1", 120) is None
    r1 = store.runs.create(w1)["id"]
    with pytest.raises((sqlite3.IntegrityError, psycopg.errors.CheckViolation)):
        oracle.execute(
            "UPDATE workflow_runs SET id = ? WHERE id = ?", oracle.uid(named), oracle.uid(r1)
        )
    assert oracle.one("SELECT COUNT(*) FROM workflow_runs WHERE id = ?", oracle.uid(named)) == 0
    # its own workflow's lock, or a run no lock names, is changed as before
    r2 = store.runs.create(w2)["id"]
    oracle.execute(
        "UPDATE workflow_runs SET id = ? WHERE id = ?", oracle.uid(named), oracle.uid(r2)
    )
    oracle.execute(
        "UPDATE workflow_runs SET id = ? WHERE id = ?", oracle.uid(uuid.uuid4()), oracle.uid(r1)
    )


RUN = (
    "INSERT INTO workflow_runs (id, workflow_id, status, parameters, dry_run, target_count,"
    " rendered_count, skipped_count, failed_count, sent_count, missing_variables, stats,"
    " created_at) VALUES (%s, %s, 'running', '{}', false, 0, 0, 0, 0, 0, '[]', '{}', now())"
)
LOCK = (
    "INSERT INTO run_locks (workflow_id, run_id, owner, acquired_at, heartbeat_at)"
    " VALUES (%s, %s, 'thief:1', now(), now())"
)


@pytest.mark.postgres
@pytest.mark.parametrize("first", ["lock", "run"])
def test_a_lock_and_a_run_of_another_workflow_written_at_once_are_not_both_kept(
    pg_db: Any, first: str
) -> None:
    """One transaction writes W2's lock naming id X (or W1's run X) and waits; another
    writes the other row. The second waits for the first to end, then is refused."""
    from tests.test_rest_campaigns import lock_waits

    st = Store(_stores.SqlBackend(pg_db), actor="o")
    try:
        st.init(seed=False)
        w1, w2 = (str(st.workflows.create(name=f"{n}-{uuid.uuid4()}")["id"]) for n in "ab")
    finally:
        st.close()
    dsn = f"host=127.0.0.1 port=5432 user=postgres dbname={pg_db.database}"
    x = str(uuid.uuid4())
    sql = {"lock": (LOCK, (w2, x)), "run": (RUN, (x, w1))}
    second = "run" if first == "lock" else "lock"
    errors: list[BaseException] = []
    with psycopg.connect(dsn) as a:
        a.execute(*sql[first])

        def other() -> None:
            try:
                with psycopg.connect(dsn, autocommit=True) as b:
                    b.execute(*sql[second])
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=other)
        thread.start()
        waited = lock_waits(dsn, "INSERT INTO%", thread)
        a.commit()
    thread.join()
    assert waited == 1
    assert [type(e) for e in errors] == [psycopg.errors.CheckViolation]
    with psycopg.connect(dsn, autocommit=True) as conn:
        kept = conn.execute(
            "SELECT count(*) FROM run_locks l JOIN workflow_runs r ON r.id = l.run_id"
            " WHERE r.workflow_id <> l.workflow_id AND r.id = %s",
            (x,),
        ).fetchone()
    assert kept == (0,)
