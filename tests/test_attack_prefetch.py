# ruff: noqa: F811  (the fixtures imported from round 2 are test parameters here)
"""Attacks on "a run messages exactly the intended customers, once each" now that the run
reads its next batch in a worker thread (`prefetch.ahead`) while it writes this one.

Real MariaDB source, real PostgreSQL store; the oracle is direct SQL on the store (psycopg)
and on the source (pymysql as root), never what the run reports.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from hybridwb.errors import HybridwbError
from hybridwb.platform.campaigns import Campaigns
from hybridwb.source.source import READ_ATTEMPTS
from hybridwb.workflows import audience, prefetch
from hybridwb.workflows.process import RunTakenOver
from tests.conftest import _admin
from tests.test_attack_once_round2 import (  # noqa: F401  (fixtures: source, pg_store)
    DAY,
    INFO,
    frozen,
    oracle,
    people,
    pg_store,
    records,
    skips,
    source,
    src,
    start,
    workbench,
)

pytestmark = [pytest.mark.mysql, pytest.mark.postgres]
NAME = "hybridwb-prefetch"
N = 23


def _workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == NAME]


def _nothing_left(wb: Any) -> None:
    assert not _workers()
    assert wb.store.backend.engine.pool.checkedout() == 0
    # the source keeps its last read's connection aside for the next (source/checkout.py)
    assert wb.source.engine.pool.checkedout() == len(wb.source._parking._parked)


def _rows(n: int = N) -> list[tuple[int, str, str]]:
    return [(i, f"회원{i}", f"010-{3000 + i:04d}-{i:04d}") for i in range(1, n + 1)]


def _members(source: Callable[..., str], pg_store: str, n: int = N) -> tuple[Any, str]:
    db = source(
        "CREATE TABLE members (member_no INT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(40))",
        rows={"members": _rows(n)},
    )
    mapping = {"members": {**people("number", "member_no"), "audience": True}}
    return workbench(db, pg_store, mapping), db


def _new_run(wb: Any, **message: Any) -> tuple[Any, Any]:
    wf = wb.workflows.create(
        f"atk-{uuid.uuid4().hex[:6]}",
        target_config={"table": "members"},
        message_config={"content": INFO, **message},
    )
    return wf, start(wb, wf)


def _keys(pg_store: str, run_id: Any) -> list[int]:
    return sorted(int(k) for k, _ in records(pg_store, run_id))


def _take_over(pg_store: str, wf_id: Any, run_id: Any, owner: str) -> None:
    oracle(
        pg_store,
        "UPDATE run_locks SET owner = %s, heartbeat_at = now() WHERE workflow_id = %s "
        "RETURNING owner",
        (owner, str(wf_id)),
    )


# -- 1. a takeover while the worker holds the next batch's read ----------------------------------
def test_a_takeover_while_the_worker_reads_ahead_writes_nothing_more(
    source: Callable[..., str], pg_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lock is taken over while the worker reads batch 3 (and the run writes batch 2):
    the old run stops at its next write, so after the takeover it adds no record and no
    exclusion; the new owner completes the frozen set, each target once."""
    wb, _ = _members(source, pg_store)
    original = audience.fetch
    at_takeover: list[int] = []
    wf, run_id = _new_run(wb)
    Campaigns(wb.store.backend).acquire(wf["id"], run_id, "old:1", 120)

    def fetch(*args: Any, **kw: Any) -> Any:
        out = original(*args, **kw)
        if threading.current_thread().name == NAME and len(at_takeover) == 0:
            keys = args[3]
            if "11" in [str(k) for k in keys]:  # the third batch of five
                _take_over(pg_store, wf["id"], run_id, "new:2")
                at_takeover.append(
                    len(records(pg_store, run_id)) + sum(skips(pg_store, run_id).values())
                )
        return out

    monkeypatch.setattr(audience, "fetch", fetch)
    try:
        with pytest.raises(RunTakenOver):
            wb.workflows.process(
                wf["id"], run_id, owner="old:1", progress=False, now=DAY, batch_size=5
            )
        _nothing_left(wb)
        written = len(records(pg_store, run_id)) + sum(skips(pg_store, run_id).values())
        assert at_takeover and written == at_takeover[0] <= 10
        monkeypatch.setattr(audience, "fetch", original)
        wb.workflows.process(wf["id"], run_id, owner="new:2", progress=False, now=DAY, batch_size=5)
        _nothing_left(wb)
    finally:
        wb.close()
    assert _keys(pg_store, run_id) == list(range(1, N + 1))
    assert skips(pg_store, run_id) == {}


# -- 2. the MariaDB connection killed in the middle of the worker's read ------------------------
@pytest.mark.parametrize("kills", [1, READ_ATTEMPTS])
def test_a_source_connection_killed_mid_read_in_the_worker(
    source: Callable[..., str], pg_store: str, monkeypatch: pytest.MonkeyPatch, kills: int
) -> None:
    """Batch 3's read (in the worker) waits on a table lock held from outside, and its
    MariaDB connection is KILLed while it waits, once (the read is sent again: the run
    completes) or on every try (the run ends with one line, nothing past batch 2 written,
    and a resume completes). No worker or connection is left; each target is sent once."""
    wb, db = _members(source, pg_store)
    original = audience.fetch
    killed: list[int] = []

    def killer(locker: Any) -> None:
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and len(killed) < kills:
                with locker.cursor() as cur:
                    cur.execute(
                        "SELECT id FROM information_schema.processlist WHERE db = %s "
                        "AND command = 'Query' AND info LIKE %s AND id <> CONNECTION_ID()",
                        (db, "%member_no%"),
                    )
                    ids = [r[0] for r in cur.fetchall()]
                    for i in ids:
                        cur.execute(f"KILL CONNECTION {int(i)}")
                    killed.extend(ids)
                time.sleep(0.05)
        finally:
            with locker.cursor() as cur:
                cur.execute("UNLOCK TABLES")
            locker.close()

    threads: list[threading.Thread] = []

    def fetch(*args: Any, **kw: Any) -> Any:
        if not threads and "11" in [str(k) for k in args[3]]:
            locker = _admin()
            with locker.cursor() as cur:
                cur.execute(f"USE `{db}`")
                cur.execute("LOCK TABLES members WRITE")
            threads.append(threading.Thread(target=killer, args=(locker,)))
            threads[0].start()
        return original(*args, **kw)

    monkeypatch.setattr(audience, "fetch", fetch)
    failed: BaseException | None = None
    try:
        wf, run_id = _new_run(wb)
        began = time.monotonic()
        try:
            wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=5)
        except HybridwbError as exc:
            failed = exc
        threads[0].join()
        assert len(killed) == kills, "the blocked read was never seen"
        assert time.monotonic() - began < 25
        _nothing_left(wb)
        assert (failed is None) == (kills == 1), repr(failed)
        if failed is not None:
            assert "\n" not in str(failed), str(failed)
            assert len(records(pg_store, run_id)) == 10  # the two batches before the kill
            wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=5)
            _nothing_left(wb)
    finally:
        wb.close()
    assert _keys(pg_store, run_id) == list(range(1, N + 1))
    assert skips(pg_store, run_id) == {}


# -- 3. the freeze's worker fails mid-way ----------------------------------------------------------
def test_a_source_error_in_the_freezes_worker_freezes_nothing_and_a_resume_freezes_whole(
    source: Callable[..., str], pg_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The freeze reads its pages in the worker; the third page fails. No set is marked
    frozen and nothing is sent; the resume freezes the whole set and sends each once."""
    from hybridwb.targets import TargetService

    wb, _ = _members(source, pg_store)
    original = TargetService.iter

    def failing(self: Any, *args: Any, **kw: Any) -> Any:
        for i, page in enumerate(original(self, *args, **kw)):
            if i == 2:
                from hybridwb.errors import QueryError

                raise QueryError("The source refused the read: gone away. Try again.")
            yield page

    try:
        wf, run_id = _new_run(wb)
        monkeypatch.setattr(TargetService, "iter", failing)
        with pytest.raises(HybridwbError, match="^The source refused the read") as info:
            wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=5)
        assert "\n" not in str(info.value)
        _nothing_left(wb)
        assert Campaigns(wb.store.backend).state(run_id)["frozen_at"] is None
        assert records(pg_store, run_id) == [] and skips(pg_store, run_id) == {}
        monkeypatch.setattr(TargetService, "iter", original)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=5)
        _nothing_left(wb)
    finally:
        wb.close()
    assert frozen(pg_store, run_id) == N
    assert _keys(pg_store, run_id) == list(range(1, N + 1))


# -- 4. batches of one, a limit, a crash after each step, resumed ---------------------------------
@pytest.mark.parametrize("batch_size", [1, 2])
def test_batches_of_one_with_a_limit_crashing_at_every_step_end_exactly_once(
    source: Callable[..., str],
    pg_store: str,
    monkeypatch: pytest.MonkeyPatch,
    batch_size: int,
) -> None:
    """Limit 7 of 12 targets. Every pass dies at a different point: before its k-th write,
    or right after it (the commit made); then a resume. The limit's seven are each sent
    once; no one past the limit is ever written."""
    wb, _ = _members(source, pg_store, 12)
    original = Campaigns.write_batch
    kw = {"progress": False, "now": DAY, "batch_size": batch_size, "limit": 7}
    try:
        for k in range(1, 8):
            for after in (False, True):
                wf, run_id = _new_run(wb)
                monkeypatch.setattr(Campaigns, "write_batch", _dying(original, k, after))
                with contextlib.suppress(KeyboardInterrupt):
                    wb.workflows.process(wf["id"], run_id, **kw)
                _nothing_left(wb)
                monkeypatch.setattr(Campaigns, "write_batch", original)
                wb.workflows.process(wf["id"], run_id, **kw)
                _nothing_left(wb)
                assert frozen(pg_store, run_id) == 7, (k, after)
                assert _keys(pg_store, run_id) == list(range(1, 8)), (k, after)
                assert skips(pg_store, run_id) == {}, (k, after)
    finally:
        wb.close()


def _dying(original: Callable[..., bool], k: int, after: bool) -> Callable[..., bool]:
    """`write_batch` that kills the process at its k-th call, before or after the commit."""
    calls: list[int] = []

    def dying(self: Any, *args: Any, **kw: Any) -> bool:
        calls.append(1)
        if len(calls) == k:
            if after:
                original(self, *args, **kw)
            raise KeyboardInterrupt("the process dies")
        return original(self, *args, **kw)

    return dying


# -- 5. two runs in one process: the switch interval -------------------------------------------
def test_overlapping_runs_in_one_process_restore_the_switch_interval() -> None:
    """Two runs in threads of one process: the first ends while the second still reads
    ahead. Each saved the interval it found, so the second, ending last, must not leave
    its lowered value behind as the process's interval."""
    before = sys.getswitchinterval()
    assert before > prefetch.SWITCH
    first = prefetch.ahead(iter(range(3)))
    second = prefetch.ahead(iter(range(3)))
    try:
        list(first.__enter__())
        list(second.__enter__())
        first.__exit__(None, None, None)
        assert sys.getswitchinterval() == prefetch.SWITCH  # the second still runs
        second.__exit__(None, None, None)
        assert sys.getswitchinterval() == before
    finally:
        sys.setswitchinterval(before)
    assert not _workers()


# -- 6. the cap lock's connection dies mid-batch ------------------------------------------------
def test_the_cap_holds_when_the_cap_locks_connection_dies_mid_batch(
    source: Callable[..., str], pg_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workflow A holds the cap lock (an advisory lock on a connection of its own) and has
    read the history; that connection is then terminated (a store restart, an idle-in-
    transaction timeout, a network cut). Workflow B, sharing A's recipients under a cap of
    one message a week, runs to the end meanwhile. A must not then write: every recipient
    has at most one record, and A's failure is one line."""
    wb, db = _members(source, pg_store, 6)
    policy = {"frequency_cap": {"messages": 1, "days": 7}}
    wf_a, run_a = _new_run(wb, policy=policy)
    wf_b, run_b = _new_run(wb, policy=policy)
    real_seen = Campaigns.seen
    done: list[Any] = []

    def seen(self: Campaigns, recipients: Any, workflow_id: Any, *a: Any, **kw: Any) -> Any:
        out = real_seen(self, recipients, workflow_id, *a, **kw)
        if str(workflow_id) == str(wf_a["id"]) and not done:
            oracle(
                pg_store,
                "SELECT pg_terminate_backend(pid) FROM pg_locks "  # this database's only
                "WHERE locktype = 'advisory' AND granted AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())",
            )
            other = workbench(db, pg_store, {})
            try:
                done.append(other.workflows.process(wf_b["id"], run_b, progress=False, now=DAY))
            finally:
                other.close()
        return out

    monkeypatch.setattr(Campaigns, "seen", seen)
    failed: BaseException | None = None
    try:
        wb.workflows.process(wf_a["id"], run_a, progress=False, now=DAY, batch_size=10)
    except BaseException as exc:  # judged below
        failed = exc
    finally:
        wb.close()
    assert done, "B never ran"
    twice = oracle(
        pg_store,
        "SELECT recipient, count(*) FROM send_records GROUP BY recipient HAVING count(*) > 1",
    )
    assert twice == [], f"{len(twice)} recipients over a 1-message cap; A: {failed!r}"
    assert len(records(pg_store, run_b)) == 6
    assert isinstance(failed, HybridwbError) and "\n" not in str(failed), repr(failed)


def test_a_fresh_batch_meeting_an_existing_key_inside_the_cap_lock_is_written_once(
    source: Callable[..., str], pg_store: str
) -> None:
    """A first-pass batch (COPY straight in) written in the cap lock's transaction meets a
    key that exists after all: the COPY's failure is rolled back to its savepoint, not the
    lock's whole transaction, and the batch is written again skipping that key."""
    wb, _ = _members(source, pg_store, 3)
    try:
        wf, run_id = _new_run(wb)
        campaigns = Campaigns(wb.store.backend)
        common = {"channel": "sms", "skips": [], "fresh": True}
        first = [("1", "+821030010001", "hi")]
        with campaigns.recipient_lock("test") as conn:
            assert campaigns.write_batch(
                run_id, wf["id"], None, records=first, within=conn, **common
            )
        both = [*first, ("2", "+821030020002", "hi")]
        with campaigns.recipient_lock("test") as conn:
            assert campaigns.write_batch(
                run_id, wf["id"], None, records=both, within=conn, **common
            )
    finally:
        wb.close()
    assert sorted(records(pg_store, run_id)) == [("1", "+821030010001"), ("2", "+821030020002")]


# -- 7. the store connection of the worker's pending read killed mid-read ---------------------
def test_the_store_connection_of_the_workers_read_killed_mid_read(
    source: Callable[..., str], pg_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker's read of batch 3's pending targets waits on a table lock held from
    outside, and its PostgreSQL backend is terminated while it waits: the read is sent
    again, the run completes, each target once, and nothing is left behind."""
    import psycopg

    wb, _ = _members(source, pg_store)
    database = pg_store.rsplit("/", 1)[1]
    original = Campaigns.pending
    calls: list[int] = []
    terminated: list[int] = []

    def killer(locker: Any) -> None:
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not terminated:
                pids = [
                    r[0]
                    for r in locker.execute(
                        "SELECT pid FROM pg_locks "
                        "WHERE NOT granted AND relation = 'run_targets'::regclass"
                    ).fetchall()
                ]
                for pid in pids:
                    locker.execute("SELECT pg_terminate_backend(%s)", (pid,))
                terminated.extend(pids)
                time.sleep(0.05)
        finally:
            locker.rollback()  # the table lock ends
            locker.close()

    threads: list[threading.Thread] = []

    def pending(self: Any, *args: Any, **kw: Any) -> Any:
        calls.append(1)
        if len(calls) == 3:
            locker = psycopg.connect(f"host=127.0.0.1 user=postgres dbname={database}")
            locker.execute("LOCK TABLE run_targets IN ACCESS EXCLUSIVE MODE")
            threads.append(threading.Thread(target=killer, args=(locker,)))
            threads[0].start()
        return original(self, *args, **kw)

    monkeypatch.setattr(Campaigns, "pending", pending)
    try:
        wf, run_id = _new_run(wb)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=5)
        threads[0].join()
        assert terminated, "the blocked read was never seen"
        _nothing_left(wb)
    finally:
        wb.close()
    assert _keys(pg_store, run_id) == list(range(1, N + 1))
    assert skips(pg_store, run_id) == {}
