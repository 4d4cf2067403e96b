# ruff: noqa: F811  (the fixtures imported are test parameters here)
"""Round 22: Ctrl-C (a real SIGINT, `signal.raise_signal`) at chosen moments of a run.

The guarantee attacked: the run stops where the interrupt lands (nothing checked, written
or rendered after it), what committed stays, what was open is rolled back, no lock,
connection or thread is left, and a resume ends every frozen target with one record or
one exclusion, each phone messaged once. The oracle is direct SQL on the store
(`send_records`, `run_skips`, `run_targets`, `run_locks`, `pg_locks`, `pg_stat_activity`)
and `threading.enumerate()`.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import URL

import hybridwb
from hybridwb.platform.campaigns import Campaigns
from hybridwb.workflows import audience, rendering
from hybridwb.workflows import process as process_module
from tests.test_attack_once_round2 import (  # noqa: F401  (fixtures: source)
    DAY,
    oracle,
    source,
    start,
    workbench,
)
from tests.test_attack_store_steps import (
    MAPPING,
    MY_LOCKS,
    PHONES,
    POLICIES,
    N,
    _assert_exactly_once,
    _by_run,
    _ends_on_file,
    _members,
    _workflow,
)
from tests.test_campaign_runs import (  # noqa: F401  (fixtures: crm, crm_db, pg_store)
    HYBRIDWB,
    TIER_A,
    _kernels,
    crm,
    crm_db,
    frozen_keys,
    pg,
    pg_store,
    record_keys,
)

pytestmark = [pytest.mark.postgres]
RUN_THREADS = ("hybridwb-store", "hybridwb-prefetch", "hybridwb-heartbeat")


def _run_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name in RUN_THREADS and t.is_alive()]


def _sqlite_members(path: Path, n: int = N, phones: int = PHONES) -> str:
    """A SQLite source with the members of `test_attack_store_steps` (phone i % phones)."""
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE members (member_no INTEGER PRIMARY KEY, name TEXT, mobile TEXT)")
        conn.executemany(
            "INSERT INTO members VALUES (?, ?, ?)",
            [(i, f"회원{i}", f"010-5555-{i % phones:04d}") for i in range(1, n + 1)],
        )
    return f"sqlite:///{path}"


def _ends(store: str, run_id: Any) -> tuple[dict[str, int], dict[str, int], Any]:
    """(records per target, exclusions per target, frozen), on either store."""
    return _ends_on_file(store, run_id) if store.startswith("sqlite") else _by_run(store, run_id)


def _open_in_store(store: str) -> list[tuple[Any, ...]]:
    """Sessions of the store's database other than the oracle's that hold a transaction."""
    database = store.rsplit("/", 1)[1]
    return oracle(
        store,
        "SELECT pid, state FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid() "
        "AND (state LIKE 'idle in transaction%%' OR state = 'active')",
        (database,),
    )


# -- a PostgreSQL store with a SQLite source: the store's steps run in the run's thread -------
@pytest.mark.usefixtures("sigint_interrupts")
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("at", ["check", "write before commit", "write after commit", "analyze"])
def test_an_interrupt_in_a_postgres_stores_inline_step_stops_the_run_there(
    pg_store: URL,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    policy: dict[str, Any] | None,
    at: str,
) -> None:
    """A PostgreSQL store read with a SQLite source runs its steps in the run's thread
    (`Processor._can_prefetch` is False): a real SIGINT in batch 2's history check (under
    the cap's advisory lock), in its write after the rows went in and before the commit,
    right after `write_batch` (committed, or under a cap not yet: its commit is the cap
    lock's release), or in the history's ANALYZE after batch 1. The run raises
    KeyboardInterrupt from there: nothing more is read, rendered, checked or written; the
    store holds exactly the batches committed before (batch 2 only if it committed), no
    advisory lock, open transaction, checked-out connection, run lock or thread is left,
    and a resume ends every target once, each phone messaged once."""
    src = _sqlite_members(tmp_path / "source.db")
    store = pg_store.render_as_string(hide_password=False)
    wb = hybridwb.connect(source=src, store=store)
    wb.store.init()
    for table, mapping in MAPPING.items():
        wb.mappings.save(table, mapping)
    assert wb.source.is_sqlite and wb.store.backend.name == "postgresql"  # steps inline
    real_seen, real_write = Campaigns.seen, Campaigns.write_batch
    real_copy, real_pending = Campaigns._copy_batch, Campaigns.pending
    real_analyze = Campaigns.analyze_history
    real_fetch, real_render = audience.fetch, rendering.render_ahead
    calls = {"seen": 0, "write": 0, "copy": 0}
    state: dict[str, Any] = {"armed": True, "run_id": None}
    after: list[str] = []
    when: list[int] = []

    def interrupt() -> None:
        recs, sk, _ = _by_run(store, state["run_id"])
        when.append(len(recs) + len(sk))
        state["armed"] = False
        signal.raise_signal(signal.SIGINT)
        after.append("went on past the signal")

    def noting(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*a: Any, **kw: Any) -> Any:
            if when:
                after.append(name)
            return real(*a, **kw)

        return call

    def seen(self: Campaigns, *a: Any, **kw: Any) -> Any:
        calls["seen"] += 1
        if state["armed"] and at == "check" and calls["seen"] == 2:
            interrupt()
        return real_seen(self, *a, **kw)

    def copy(*a: Any, **kw: Any) -> None:
        real_copy(*a, **kw)
        calls["copy"] += 1
        if state["armed"] and at == "write before commit" and calls["copy"] == 2:
            interrupt()

    def write_batch(self: Campaigns, *a: Any, **kw: Any) -> Any:
        calls["write"] += 1
        out = real_write(self, *a, **kw)
        if state["armed"] and at == "write after commit" and calls["write"] == 2:
            interrupt()
        return out

    def analyze(self: Campaigns) -> None:
        if state["armed"] and at == "analyze":  # after batch 1 (its first 3 records)
            interrupt()
        real_analyze(self)

    monkeypatch.setattr(Campaigns, "seen", noting("check", seen))
    monkeypatch.setattr(Campaigns, "_copy_batch", staticmethod(copy))
    monkeypatch.setattr(Campaigns, "write_batch", noting("write", write_batch))
    monkeypatch.setattr(Campaigns, "analyze_history", noting("analyze", analyze))
    monkeypatch.setattr(Campaigns, "pending", noting("store read", real_pending))
    monkeypatch.setattr(audience, "fetch", noting("source read", real_fetch))
    monkeypatch.setattr(rendering, "render_ahead", noting("render", real_render))
    monkeypatch.setattr(process_module.time, "sleep", noting("pause", lambda s: None))
    monkeypatch.setattr(process_module, "ANALYZE_AFTER", 1)  # an ANALYZE after each write
    try:
        wf = _workflow(wb, policy)
        run_id = state["run_id"] = start(wb, wf)
        with pytest.raises(KeyboardInterrupt):
            wb.workflows.process(
                wf["id"], run_id, progress=False, now=DAY, batch_size=3, batch_pause=0.01
            )
        assert after == []  # the interrupt surfaced in the step it interrupted
        recs, sk, _ = _by_run(store, run_id)
        # batch 2 only if it committed: under a cap its write commits with the cap lock's
        # release after `write_batch` returns, so an interrupt there rolls it back
        written = 6 if at == "write after commit" and policy is None else 3
        assert when == [written] and len(recs) + len(sk) == written
        assert oracle(store, MY_LOCKS) == [(0,)]
        assert _open_in_store(store) == []
        assert oracle(store, "SELECT count(*) FROM run_locks") == [(0,)]
        assert wb.store.backend.engine.pool.checkedout() == 0
        assert _run_threads() == []
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=3)
    finally:
        wb.close()
    _assert_exactly_once(store, run_id)
    assert len(_by_run(store, run_id)[0]) == PHONES


# -- Ctrl-C in the process that runs the notebook (`wb.workflows.run`, a notebook's cell) ------
@pytest.mark.mysql
@pytest.mark.usefixtures("sigint_interrupts")
def test_ctrl_c_in_the_runs_parent_stops_its_kernel_and_leaves_no_run_lock(
    crm: hybridwb.Workbench, pg_store: URL
) -> None:
    """`wb.workflows.run` from a notebook (papermill's kernel in a session of its own, so
    Ctrl-C reaches the calling process only): a real SIGINT once some batches are written.
    The run's kernel is stopped (no record is written after the call returns), the run is
    marked failed with its lock released, and another process's resume (`hybridwb run
    --resume`) completes the frozen set: one record or one exclusion per target. Before,
    the run stayed `running` and its lock stayed held by this (living) process, so the
    resume was refused as "already has an active run" until the heartbeat went stale."""
    wf = crm.workflows.create("ctrl-c", target_config=TIER_A, message_config={"template": "안내"})
    interrupted = threading.Event()

    def press_ctrl_c() -> None:  # what Ctrl-C (a notebook's interrupt) does, once 20 are written
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            rows = pg(pg_store, "SELECT count(*) FROM send_records")
            if rows[0][0] >= 20:
                interrupted.set()
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.05)

    presser = threading.Thread(target=press_ctrl_c, daemon=True)
    presser.start()
    with pytest.raises(KeyboardInterrupt):
        crm.workflows.run(
            wf["id"], parameters={"batch_size": 10, "batch_pause": 0.3}, progress=False
        )
    presser.join()
    assert interrupted.is_set()
    assert _kernels(os.getpid()) == []  # the run's kernel is gone
    [(run_id, status)] = pg(pg_store, "SELECT id::text, status FROM workflow_runs")
    written = len(record_keys(pg_store, run_id))
    time.sleep(1.0)
    assert len(record_keys(pg_store, run_id)) == written < 60  # nothing written after
    assert status == "failed"
    assert pg(pg_store, "SELECT count(*) FROM run_locks") == [(0,)]
    assert _run_threads() == []
    resumed = subprocess.run(
        [HYBRIDWB, "run", "--resume", run_id, "-p", "batch_pause", "0"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    keys = record_keys(pg_store, run_id)
    skipped = [k for (k,) in pg(pg_store, "SELECT target_key FROM run_skips")]
    assert len(keys) == len(set(keys)) and not set(keys) & set(skipped)
    assert set(keys) | set(skipped) == frozen_keys(pg_store, run_id)
    assert pg(pg_store, "SELECT status FROM workflow_runs") == [("succeeded",)]
    assert pg(pg_store, "SELECT count(*) FROM run_locks") == [(0,)]


# -- Ctrl-C while the run takes its lock, remembers and freezes its set, on both stores ------
FREEZE_POINTS = ["lock taken", "heartbeat", "stats", "page 2 written", "before the mark"]


@pytest.fixture(params=["postgres", "sqlite"])
def a_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url: URL = request.getfixturevalue("pg_store")
    return url.render_as_string(hide_password=False)


def _nothing_held(store: str, wb: hybridwb.Workbench) -> None:
    """No run lock row, no thread of the run, no checked-out connection; on PostgreSQL no
    advisory lock or open transaction, on SQLite a writer can begin at once."""
    assert oracle(store, "SELECT count(*) FROM run_locks") == [(0,)]
    assert _run_threads() == []
    assert wb.store.backend.engine.pool.checkedout() == 0
    if store.startswith("sqlite"):
        with sqlite3.connect(store.removeprefix("sqlite:///"), timeout=0) as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.rollback()
    else:
        assert oracle(store, MY_LOCKS) == [(0,)]
        assert _open_in_store(store) == []


@pytest.mark.mysql
@pytest.mark.usefixtures("sigint_interrupts")
@pytest.mark.parametrize("at", FREEZE_POINTS)
def test_an_interrupt_before_the_set_is_frozen_leaves_nothing_and_a_resume_freezes_it_whole(
    source: Callable[..., str],
    a_store: str,
    monkeypatch: pytest.MonkeyPatch,
    at: str,
) -> None:
    """A real SIGINT during `process` (no owner given: the call takes the workflow's lock
    itself) right after the lock is taken, in the first heartbeat, right after the frozen
    as-of time is stored, after the frozen set's second page is written (a MariaDB source
    and PostgreSQL store read the pages in a worker), or between its last page and the
    mark. The call raises it; no lock, thread, connection or transaction is left; nothing
    is sent; and the next call freezes the whole set and ends each target once."""
    store = a_store
    wb = workbench(_members(source), store, MAPPING)
    real_acquire, real_beat = Campaigns.acquire, Campaigns.heartbeat
    real_stats, real_analyze = Campaigns.set_stats, Campaigns._analyze
    real_copy, real_insert = Campaigns._copy_fresh, Campaigns._insert_page
    state = {"armed": True, "pages": 0}

    def interrupt() -> None:
        state["armed"] = False
        signal.raise_signal(signal.SIGINT)

    def after(point: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*a: Any, **kw: Any) -> Any:
            out = real(*a, **kw)
            if point == "page 2 written":
                state["pages"] += 1
            armed = state["armed"] and at == point
            if armed and (point != "page 2 written" or state["pages"] == 2):
                interrupt()
            return out

        return call

    def analyze(self: Campaigns, table: Any, columns: Any) -> None:
        if state["armed"] and at == "before the mark" and table.name == "run_targets":
            interrupt()
        real_analyze(self, table, columns)

    monkeypatch.setattr(Campaigns, "acquire", after("lock taken", real_acquire))
    monkeypatch.setattr(Campaigns, "heartbeat", after("heartbeat", real_beat))
    monkeypatch.setattr(Campaigns, "set_stats", after("stats", real_stats))
    monkeypatch.setattr(Campaigns, "_copy_fresh", after("page 2 written", real_copy))
    monkeypatch.setattr(Campaigns, "_insert_page", after("page 2 written", real_insert))
    monkeypatch.setattr(Campaigns, "_analyze", analyze)
    try:
        wf = _workflow(wb)
        run_id = start(wb, wf)
        with pytest.raises(KeyboardInterrupt):
            wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=3)
        assert not state["armed"]
        _nothing_held(store, wb)
        recs = oracle(store, "SELECT count(*) FROM send_records") + oracle(
            store, "SELECT count(*) FROM run_skips"
        )
        assert recs == [(0,), (0,)]
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=3)
        _nothing_held(store, wb)
    finally:
        wb.close()
    rid = run_id if not store.startswith("sqlite") else uuid.UUID(str(run_id)).hex
    frozen = oracle(store, "SELECT count(*) FROM run_targets WHERE run_id = %s", (str(rid),))
    assert frozen == [(N,)]
    recs, sk, _ = _ends(store, run_id)
    assert all(n == 1 for n in recs.values()) and all(n == 1 for n in sk.values())
    assert len(recs) + len(sk) == N and not set(recs) & set(sk) and len(recs) == PHONES


# -- Ctrl-C while the run waits for the worker's next batch, and again while it stops it ------
def _press_ctrl_c_in_the_main_thread() -> None:
    """Ctrl-C as the run's thread gets it while it waits on a lock (its next batch from the
    worker): a SIGINT to that thread, which wakes the wait to raise KeyboardInterrupt."""
    signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)


@pytest.mark.mysql
@pytest.mark.usefixtures("sigint_interrupts")
@pytest.mark.parametrize("presses", [1, 2], ids=["once", "twice"])
def test_an_interrupt_while_the_worker_reads_the_next_batch_stops_the_run_with_no_thread_left(
    source: Callable[..., str],
    pg_store: URL,
    monkeypatch: pytest.MonkeyPatch,
    presses: int,
) -> None:
    """A MariaDB source and a PostgreSQL store: the worker reads batch 2 from the source
    (slowly) while the run's thread, batch 1 written, waits for it; Ctrl-C then, and (twice) again while the
    run stops the worker. The call raises KeyboardInterrupt only once the worker has
    ended: no thread of the run outlives the call, batch 2 is never checked, rendered or
    written, and a resume ends each target once."""
    store = pg_store.render_as_string(hide_password=False)
    wb = workbench(_members(source), store, MAPPING)
    real_fetch, real_render = audience.fetch, rendering.render_ahead
    real_seen, real_write = Campaigns.seen, Campaigns.write_batch
    state = {"armed": True, "fetches": 0}
    after: list[str] = []

    def fetch(*a: Any, **kw: Any) -> Any:
        state["fetches"] += 1
        if state["armed"] and state["fetches"] == 2:  # in the worker, batch 2's read
            state["armed"] = False
            assert written.wait(10)  # batch 1 is written: the run waits for batch 2 only
            time.sleep(0.05)
            after.append("pressed")
            _press_ctrl_c_in_the_main_thread()
            if presses == 2:
                time.sleep(0.15)  # the run's thread is stopping the worker now
                _press_ctrl_c_in_the_main_thread()
            time.sleep(0.4)  # a slow read goes on
        return real_fetch(*a, **kw)

    def noting(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*a: Any, **kw: Any) -> Any:
            if after:
                after.append(name)
            return real(*a, **kw)

        return call

    written = threading.Event()

    def write_batch(*a: Any, **kw: Any) -> Any:
        out = real_write(*a, **kw)
        written.set()
        return out

    monkeypatch.setattr(audience, "fetch", fetch)
    monkeypatch.setattr(rendering, "render_ahead", noting("render", real_render))
    monkeypatch.setattr(Campaigns, "seen", noting("check", real_seen))
    monkeypatch.setattr(Campaigns, "write_batch", noting("write", write_batch))
    try:
        wf = _workflow(wb)
        run_id = start(wb, wf)
        with pytest.raises(KeyboardInterrupt):
            wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=3)
        assert _run_threads() == []  # at once: the worker ended before the call did
        assert after == ["pressed"]
        recs, sk, _ = _by_run(store, run_id)
        assert len(recs) + len(sk) == 3  # batch 1 only
        _nothing_held(store, wb)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=3)
    finally:
        wb.close()
    _assert_exactly_once(store, run_id)
    assert len(_by_run(store, run_id)[0]) == PHONES


# -- a second Ctrl-C while the call releases the workflow's lock ------------------------------
@pytest.mark.mysql
@pytest.mark.usefixtures("sigint_interrupts")
def test_a_second_interrupt_while_the_lock_is_released_still_releases_it(
    source: Callable[..., str], a_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C in batch 2's check, then again as the call releases the workflow's lock it
    took (`lock.held`): the lock is released all the same and KeyboardInterrupt raised, so
    the resume (another call, another owner) is not refused as "already has an active
    run" for the two minutes until the row went stale."""
    store = a_store
    wb = workbench(_members(source), store, MAPPING)
    real_seen, real_release = Campaigns.seen, Campaigns.release
    state = {"seen": 0, "armed": True, "releases": 0}

    def seen(self: Campaigns, *a: Any, **kw: Any) -> Any:
        state["seen"] += 1
        if state["armed"] and state["seen"] == 2:
            signal.raise_signal(signal.SIGINT)
        return real_seen(self, *a, **kw)

    def release(self: Campaigns, *a: Any, **kw: Any) -> None:
        state["releases"] += 1
        if state["armed"]:
            state["armed"] = False
            signal.raise_signal(signal.SIGINT)  # again, before its DELETE
        real_release(self, *a, **kw)

    monkeypatch.setattr(Campaigns, "seen", seen)
    monkeypatch.setattr(Campaigns, "release", release)
    try:
        wf = _workflow(wb)
        run_id = start(wb, wf)
        with pytest.raises(KeyboardInterrupt):
            wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=3)
        assert not state["armed"]
        _nothing_held(store, wb)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=3)
    finally:
        wb.close()
    recs, sk, _ = _ends(store, run_id)
    assert all(n == 1 for n in recs.values()) and all(n == 1 for n in sk.values())
    assert len(recs) + len(sk) == N and not set(recs) & set(sk) and len(recs) == PHONES


# -- Ctrl-C while the store thread writes batch 1 and batch 2's check waits its turn ---------
@pytest.mark.mysql
@pytest.mark.usefixtures("sigint_interrupts")
@pytest.mark.parametrize("policy", POLICIES)
def test_an_interrupt_while_a_check_is_queued_behind_a_write_checks_no_more(
    source: Callable[..., str],
    pg_store: URL,
    monkeypatch: pytest.MonkeyPatch,
    policy: dict[str, Any] | None,
) -> None:
    """A MariaDB source and a PostgreSQL store: the store thread is writing batch 1 while
    batch 2's check waits behind it in its queue, and Ctrl-C lands in the run's thread
    (rendering batch 2 ahead). The write in progress ends and commits; batch 2's check,
    not begun, is never run (before, it ran after the interrupt: it took the cap lock,
    waiting for any other run holding it, and read the history, all to be rolled back);
    nothing is left and a resume ends each target once."""
    store = pg_store.render_as_string(hide_password=False)
    wb = workbench(_members(source), store, MAPPING)
    real_seen, real_write = Campaigns.seen, Campaigns.write_batch
    real_render = rendering.render_ahead
    state = {"armed": True, "renders": 0}
    began, go_on = threading.Event(), threading.Event()
    after: list[str] = []

    def write_batch(*a: Any, **kw: Any) -> Any:
        if state["armed"]:
            began.set()  # batch 1's write is in progress
            assert go_on.wait(10)  # the run's thread has given check 2 and renders batch 2
            time.sleep(0.2)  # it handles its interrupt meanwhile
        return real_write(*a, **kw)

    def seen(*a: Any, **kw: Any) -> Any:
        if not state["armed"]:
            after.append("check")
        return real_seen(*a, **kw)

    def render_ahead(*a: Any, **kw: Any) -> Any:
        state["renders"] += 1
        if state["armed"] and state["renders"] == 2:
            assert began.wait(10)
            state["armed"] = False
            go_on.set()
            signal.raise_signal(signal.SIGINT)
        return real_render(*a, **kw)

    monkeypatch.setattr(Campaigns, "write_batch", write_batch)
    monkeypatch.setattr(Campaigns, "seen", seen)
    monkeypatch.setattr(rendering, "render_ahead", render_ahead)
    try:
        wf = _workflow(wb, policy)
        run_id = start(wb, wf)
        with pytest.raises(KeyboardInterrupt):
            wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=3)
        assert after == []  # batch 2's check, given before the interrupt, never ran
        recs, sk, _ = _by_run(store, run_id)
        assert len(recs) + len(sk) == 3  # batch 1's write, in progress, committed
        _nothing_held(store, wb)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=3)
    finally:
        wb.close()
    _assert_exactly_once(store, run_id)
    assert len(_by_run(store, run_id)[0]) == PHONES


# -- Ctrl-C in `wb.workflows.run` after the lock is taken, before the kernel starts -----------
@pytest.mark.mysql
@pytest.mark.usefixtures("sigint_interrupts")
@pytest.mark.parametrize("at", ["lock taken", "stale runs marked", "run row written"])
def test_an_interrupt_before_the_runs_kernel_starts_leaves_no_lock(
    source: Callable[..., str],
    a_store: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    at: str,
) -> None:
    """`wb.workflows.run` takes the workflow's lock for a new run id, marks stale runs,
    writes the run's row and state, then starts the kernel. A real SIGINT right after the
    lock is taken, after the stale runs are marked, or after the run's row is written:
    the lock is released (before, it stayed under this living process's owner for a run
    whose row may not exist, and the workflow's next run was refused as "already has an
    active run" until the heartbeat went stale), and the next run goes ahead."""
    from hybridwb.platform.repos import Runs
    from hybridwb.workflows import runner as runner_module

    monkeypatch.setenv("HYBRIDWB_REPORTS", str(tmp_path / "reports"))
    store = a_store
    wb = workbench(_members(source), store, MAPPING)
    real_acquire, real_mark = Campaigns.acquire, runner_module.Runner.mark_stale
    real_create = Runs.create
    state = {"armed": True}

    def after(point: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*a: Any, **kw: Any) -> Any:
            out = real(*a, **kw)
            if state["armed"] and at == point:
                state["armed"] = False
                signal.raise_signal(signal.SIGINT)
            return out

        return call

    monkeypatch.setattr(Campaigns, "acquire", after("lock taken", real_acquire))
    monkeypatch.setattr(runner_module.Runner, "mark_stale", after("stale runs marked", real_mark))
    monkeypatch.setattr(Runs, "create", after("run row written", real_create))
    try:
        wf = _workflow(wb)
        with pytest.raises(KeyboardInterrupt):
            wb.workflows.run(wf["id"], progress=False)
        assert not state["armed"]
        _nothing_held(store, wb)
        assert _kernels(os.getpid()) == []
        # the workflow's next run takes its lock (another process here: another owner)
        other = Campaigns(wb.store.backend).acquire(wf["id"], uuid.uuid4(), "elsewhere:1", 120)
        assert other is None
    finally:
        wb.close()


# -- Ctrl-C in the run's last steps: the final statistics, the template's use ----------------
@pytest.mark.mysql
@pytest.mark.usefixtures("sigint_interrupts")
@pytest.mark.parametrize("at", ["final stats", "after the last write"])
def test_an_interrupt_after_the_last_batch_leaves_nothing_and_a_resume_counts_the_rows(
    source: Callable[..., str], a_store: str, monkeypatch: pytest.MonkeyPatch, at: str
) -> None:
    """A real SIGINT right after the last batch's write, or as the run writes its final
    counts and statistics: every batch stays committed, nothing is held, and the resume
    (with nothing left to send) writes the run's counts from the rows."""
    from hybridwb.platform.repos import Runs

    store = a_store
    wb = workbench(_members(source), store, MAPPING)
    real_update, real_write = Runs.update, Campaigns.write_batch
    state = {"armed": True, "writes": 0}

    def update(self: Runs, run_id: Any, **fields: Any) -> Any:
        if state["armed"] and at == "final stats" and "target_count" in fields:
            state["armed"] = False
            signal.raise_signal(signal.SIGINT)
        return real_update(self, run_id, **fields)

    def write_batch(*a: Any, **kw: Any) -> Any:
        out = real_write(*a, **kw)
        state["writes"] += 1
        if state["armed"] and at == "after the last write" and state["writes"] == N // 3:
            state["armed"] = False
            signal.raise_signal(signal.SIGINT)
        return out

    monkeypatch.setattr(Runs, "update", update)
    monkeypatch.setattr(Campaigns, "write_batch", write_batch)
    try:
        wf = _workflow(wb)
        run_id = start(wb, wf)
        with pytest.raises(KeyboardInterrupt):
            wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=3)
        assert not state["armed"]
        _nothing_held(store, wb)
        recs, sk, _ = _ends(store, run_id)
        assert len(recs) + len(sk) == N  # every batch committed
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=3)
        _nothing_held(store, wb)
    finally:
        wb.close()
    recs, sk, _ = _ends(store, run_id)
    assert len(recs) + len(sk) == N and len(recs) == PHONES
    rid = str(run_id) if not store.startswith("sqlite") else uuid.UUID(str(run_id)).hex
    row = oracle(
        store,
        "SELECT target_count, sent_count, skipped_count FROM workflow_runs WHERE id = %s",
        (rid,),
    )
    assert row == [(N, PHONES, N - PHONES)]
