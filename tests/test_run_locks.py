"""One active run per workflow: the lock row, its heartbeat, stale and SIGKILLed holders,
the compare-and-swap takeover, and the runner refusing a second run with no row left
behind. On SQLite and PostgreSQL; the oracle reads run_locks with the plain driver."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import _stores
import psycopg
import pytest
from _stores import Oracle, workflow_with_run

from hybridwb.config import load_settings
from hybridwb.errors import StoreError, ValidationError
from hybridwb.platform import campaigns as campaigns_module
from hybridwb.platform.campaigns import (
    Campaigns,
    as_utc,
    is_stale,
    owner_alive,
    this_host,
    this_owner,
)
from hybridwb.platform.store import Store
from hybridwb.workflows.runner import Runner, RunRefused

HOST = this_host()
ME = this_owner()
# the shared fixtures (tests/_stores.py): a store on SQLite and PostgreSQL, its oracle
store = _stores.store
oracle = _stores.oracle


def dead_pid() -> int:
    """The pid of a process that was SIGKILLed (and reaped): what a crashed run leaves."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return proc.pid


def lock_row(oracle: Oracle, wf: Any) -> tuple[str, str] | None:
    rows = oracle.rows("SELECT run_id, owner FROM run_locks WHERE workflow_id = ?", oracle.uid(wf))
    return (str(uuid.UUID(str(rows[0][0]))), rows[0][1]) if rows else None


def age_lock(oracle: Oracle, wf: Any, seconds: float) -> None:
    """Stage a heartbeat that stopped `seconds` ago (UTC, as the store keeps it)."""
    at = datetime.now(UTC) - timedelta(seconds=seconds)
    value: Any = at if oracle.postgres else at.replace(tzinfo=None).isoformat(" ")
    oracle.execute(
        "UPDATE run_locks SET heartbeat_at = ? WHERE workflow_id = ?", value, oracle.uid(wf)
    )


def test_the_first_run_takes_the_lock_and_a_second_is_refused(store: Store, oracle: Oracle) -> None:
    c = Campaigns(store.backend)
    wf, first, second = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert c.acquire(wf, first, ME, 120) is None
    assert lock_row(oracle, wf) == (str(first), ME)
    held = c.acquire(wf, second, "otherhost:1", 120)
    assert held is not None and held["run_id"] == first and held["owner"] == ME
    assert lock_row(oracle, wf) == (str(first), ME)
    assert oracle.one("SELECT COUNT(*) FROM run_locks") == 1


def test_taking_the_lock_again_for_the_same_run_and_owner_is_allowed(
    store: Store, oracle: Oracle
) -> None:
    c = Campaigns(store.backend)
    wf, run = uuid.uuid4(), uuid.uuid4()
    assert c.acquire(wf, run, ME, 120) is None
    assert c.acquire(wf, run, ME, 120) is None  # a resume by the same process
    held = c.acquire(wf, run, "otherhost:7", 120)  # the same run from another process
    assert held is not None and held["owner"] == ME
    held = c.acquire(wf, uuid.uuid4(), ME, 120)  # another run from this process
    assert held is not None and held["run_id"] == run
    assert lock_row(oracle, wf) == (str(run), ME)


def test_locks_of_two_workflows_do_not_block_each_other(store: Store, oracle: Oracle) -> None:
    c = Campaigns(store.backend)
    a, b = uuid.uuid4(), uuid.uuid4()
    ra, rb = uuid.uuid4(), uuid.uuid4()
    assert c.acquire(a, ra, ME, 120) is None
    assert c.acquire(b, rb, ME, 120) is None
    assert [lk["run_id"] for lk in c.locks()] == [ra, rb]  # acquired order
    assert c.lock(a)["run_id"] == ra and c.lock(uuid.uuid4()) is None


def test_a_lock_whose_heartbeat_stopped_is_taken_over(store: Store, oracle: Oracle) -> None:
    c = Campaigns(store.backend)
    wf, old, new = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert c.acquire(wf, old, "otherhost:1", 120) is None
    age_lock(oracle, wf, 100)
    assert c.acquire(wf, new, ME, 120) is not None, "a beat 100 s old is not stale at 120 s"
    age_lock(oracle, wf, 130)
    assert c.acquire(wf, new, ME, 120) is None
    assert lock_row(oracle, wf) == (str(new), ME)
    beat = c.lock(wf)["heartbeat_at"]
    assert (datetime.now(UTC) - as_utc(beat)).total_seconds() < 30, "the takeover beats"


def test_a_lock_left_by_a_sigkilled_process_is_taken_over_at_once(
    store: Store, oracle: Oracle
) -> None:
    c = Campaigns(store.backend)
    wf, old, new = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    ghost = f"{HOST}:{dead_pid()}"
    assert c.acquire(wf, old, ghost, 120) is None
    assert c.acquire(wf, new, ME, 120) is None  # fresh heartbeat, but its owner is gone
    assert lock_row(oracle, wf) == (str(new), ME)


def test_a_live_holder_on_another_host_is_not_presumed_dead(store: Store, oracle: Oracle) -> None:
    c = Campaigns(store.backend)
    wf, old = uuid.uuid4(), uuid.uuid4()
    owner = f"elsewhere-{HOST}:{dead_pid()}"  # that pid is dead here, not necessarily there
    assert c.acquire(wf, old, owner, 120) is None
    assert c.acquire(wf, uuid.uuid4(), ME, 120) is not None
    assert lock_row(oracle, wf) == (str(old), owner)


class _Racing(Campaigns):
    """Campaigns that lets `before_read` happen between its insert and its read of the
    holder (another process acting in that gap)."""

    def __init__(self, backend: Any, before_read: Any) -> None:
        super().__init__(backend)
        self.before_read = before_read

    def lock(self, workflow_id: Any) -> dict[str, Any] | None:
        hook, self.before_read = self.before_read, None
        if hook is not None:
            hook()
        return super().lock(workflow_id)


def test_a_free_lock_is_won_by_the_insert_alone(store: Store, oracle: Oracle) -> None:
    """The insert's own row count decides a free lock: no read of the holder follows, so
    nothing another process does after the insert can be taken for the answer."""
    plain = Campaigns(store.backend)
    wf, run = uuid.uuid4(), uuid.uuid4()
    reads: list[Any] = []
    racing = _Racing(store.backend, lambda: reads.append(plain.lock(wf)))
    assert racing.acquire(wf, run, ME, 120) is None
    assert reads == [], "a won insert was read back"
    assert lock_row(oracle, wf) == (str(run), ME)


def test_a_lock_released_between_insert_and_read_is_taken(store: Store, oracle: Oracle) -> None:
    plain = Campaigns(store.backend)
    wf, old, new = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    plain.acquire(wf, old, "otherhost:1", 120)
    racing = _Racing(store.backend, lambda: plain.release(wf, old))
    assert racing.acquire(wf, new, ME, 120) is None
    assert lock_row(oracle, wf) == (str(new), ME)


def test_a_lock_released_and_retaken_in_the_gap_is_reported_held(
    store: Store, oracle: Oracle
) -> None:
    plain = Campaigns(store.backend)
    wf, old, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    plain.acquire(wf, old, "otherhost:1", 120)

    def release_and_retake() -> None:
        plain.release(wf, old)
        plain.acquire(wf, third, "otherhost:3", 120)

    racing = _Racing(store.backend, release_and_retake)
    held = racing.acquire(wf, uuid.uuid4(), ME, 120)
    assert held is not None and held["run_id"] == third
    assert lock_row(oracle, wf) == (str(third), "otherhost:3")


def test_two_contenders_for_a_stale_lock_never_both_win(store: Store, oracle: Oracle) -> None:
    """The takeover is a compare-and-swap on the old row: whoever swaps second loses."""
    plain = Campaigns(store.backend)
    wf, old, a, b = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    plain.acquire(wf, old, "otherhost:1", 120)
    age_lock(oracle, wf, 500)
    stale = plain.lock(wf)

    class _SeesStale(Campaigns):
        def lock(self, workflow_id: Any) -> dict[str, Any] | None:
            return dict(stale) if stale else None  # read before `a` swapped

    assert Campaigns(store.backend).acquire(wf, a, "otherhost:2", 120) is None
    held = _SeesStale(store.backend).acquire(wf, b, ME, 120)
    assert held is not None and held["run_id"] == old  # the swap found no row to change
    assert lock_row(oracle, wf) == (str(a), "otherhost:2")


def test_a_swap_that_loses_reports_the_current_holder(store: Store, oracle: Oracle) -> None:
    plain = Campaigns(store.backend)
    wf, old, a = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    plain.acquire(wf, old, "otherhost:1", 120)
    age_lock(oracle, wf, 500)

    class _Slow(Campaigns):
        reads = 0

        def lock(self, workflow_id: Any) -> dict[str, Any] | None:
            row = super().lock(workflow_id)
            self.reads += 1
            if self.reads == 1:  # another contender swaps right after this read
                Campaigns(store.backend).acquire(wf, a, "otherhost:2", 120)
            return row

    held = _Slow(store.backend).acquire(wf, uuid.uuid4(), ME, 120)
    assert held is not None and held["run_id"] == a and held["owner"] == "otherhost:2"


def test_heartbeat_moves_only_the_holders_lock(store: Store, oracle: Oracle) -> None:
    c = Campaigns(store.backend)
    wf, run = uuid.uuid4(), uuid.uuid4()
    c.acquire(wf, run, ME, 120)
    age_lock(oracle, wf, 1000)
    assert c.heartbeat(wf, run, "otherhost:1") is False
    assert c.heartbeat(wf, uuid.uuid4(), ME) is False
    assert is_stale(c.lock(wf), datetime.now(UTC), 120)
    assert c.heartbeat(wf, run, ME) is True
    assert not is_stale(c.lock(wf), datetime.now(UTC), 120)


def test_release_drops_only_the_named_runs_lock(store: Store, oracle: Oracle) -> None:
    c = Campaigns(store.backend)
    wf, other, run = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    c.acquire(wf, run, ME, 120)
    c.acquire(other, uuid.uuid4(), ME, 120)
    c.release(wf, uuid.uuid4())
    assert lock_row(oracle, wf) == (str(run), ME)
    c.release(wf, run)
    assert lock_row(oracle, wf) is None
    assert oracle.one("SELECT COUNT(*) FROM run_locks") == 1


def test_a_backend_neither_sql_nor_rest_cannot_hold_runs() -> None:
    with pytest.raises(StoreError) as caught:
        Campaigns(object())  # type: ignore[arg-type]
    assert str(caught.value) == (
        "Workflow runs need a SQL connection to the store; set SUPABASE_DB_URL "
        "(Supabase: Project Settings -> Database -> Connection string)."
    )


def test_campaigns_of_a_rest_backend_are_its_rpc_client() -> None:
    """`Campaigns(backend)` on the Supabase REST store gives the client of its SQL
    functions (one RPC per step that must happen as one), not a refusal."""
    from hybridwb.platform.rest import RestBackend
    from hybridwb.platform.rest_campaigns import RestCampaigns

    backend = RestBackend("https://proj.supabase.co", "key", "SUPABASE_SERVICE_ROLE_KEY")
    try:
        campaigns = Campaigns(backend)
        assert type(campaigns) is RestCampaigns and campaigns.backend is backend
    finally:
        backend.close()


def test_this_owner_is_host_and_pid() -> None:
    assert this_owner() == f"{this_host()}:{os.getpid()}"
    assert this_host().split("/")[0] == socket.gethostname()


def test_a_process_of_another_user_is_alive(monkeypatch: pytest.MonkeyPatch) -> None:
    """kill(pid, 0) answers EPERM for a live process this user may not signal."""

    def not_yours(pid: int, sig: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(campaigns_module.os, "kill", not_yours)
    assert owner_alive(f"{HOST}:4242") is True


@pytest.mark.parametrize(
    ("owner", "alive"),
    [
        (None, None),
        ("", None),
        ("no-colon", None),
        ("otherhost:1", None),
        (f"{HOST}:abc", None),
        (f"{HOST}:{os.getpid()}", True),
        (f"{HOST}:1", True),
        ("dead", False),
    ],
    ids=["none", "empty", "no-pid", "other-host", "pid-not-a-number", "me", "init", "dead"],
)
def test_owner_alive(owner: str | None, alive: bool | None) -> None:
    if owner == "dead":
        owner = f"{HOST}:{dead_pid()}"
    assert owner_alive(owner) is alive


NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("owner", "age", "stale"),
    [
        ("otherhost:1", 119.0, False),
        ("otherhost:1", 120.0, False),
        ("otherhost:1", 120.5, True),
        (ME, 1000.0, True),
        ("dead", 0.0, True),
    ],
    ids=["fresh", "at-the-limit", "past-the-limit", "old-beat-of-a-live-owner", "dead-owner"],
)
def test_is_stale(owner: str, age: float, stale: bool) -> None:
    if owner == "dead":
        owner = f"{HOST}:{dead_pid()}"
    naive_beat = (NOW - timedelta(seconds=age)).replace(tzinfo=None)  # as SQLite returns it
    assert is_stale({"owner": owner, "heartbeat_at": naive_beat}, NOW, 120) is stale
    seoul = NOW.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Seoul"))
    assert is_stale({"owner": owner, "heartbeat_at": naive_beat}, seoul, 120) is stale


def test_as_utc_labels_naive_and_converts_aware() -> None:
    naive = datetime(2026, 3, 1, 12, 0)
    assert as_utc(naive) == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    kst = datetime(2026, 3, 1, 21, 0, tzinfo=__import__("zoneinfo").ZoneInfo("Asia/Seoul"))
    assert as_utc(kst) == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert as_utc(kst).utcoffset() == timedelta(0)


# -- the runner: a second run is refused before it writes anything -----------------------


def _runner(store: Store, tmp_path: Path) -> Runner:
    return Runner(load_settings(tmp_path, {}), store)


def test_the_runner_refuses_a_second_active_run_and_writes_no_row(
    store: Store, oracle: Oracle, tmp_path: Path
) -> None:
    wf = store.workflows.create(name="weekly")
    holder = uuid.uuid4()
    Campaigns(store.backend).acquire(wf["id"], holder, "otherhost:9", 120)
    with pytest.raises(RunRefused) as caught:
        _runner(store, tmp_path).run("weekly", progress=False)
    message = str(caught.value)
    assert message.startswith(f"Workflow 'weekly' already has an active run ({holder}, otherhost:9")
    assert message.endswith("); wait for it to finish.") and "\n" not in message
    assert oracle.one("SELECT COUNT(*) FROM workflow_runs") == 0
    assert oracle.one("SELECT COUNT(*) FROM run_state") == 0
    assert lock_row(oracle, wf["id"]) == (str(holder), "otherhost:9")


def test_resuming_a_succeeded_run_is_refused(store: Store, tmp_path: Path) -> None:
    _wf, run = workflow_with_run(store)
    store.runs.update(run, status="succeeded")
    with pytest.raises(ValidationError) as caught:
        _runner(store, tmp_path).run(None, resume=run, progress=False)
    assert str(caught.value) == f"Run {run} already succeeded; there is nothing to resume."


def test_a_refused_run_leaves_the_stale_marking_undone(
    store: Store, oracle: Oracle, tmp_path: Path
) -> None:
    """Runs are marked stale only once this run holds the lock (after `acquire`)."""
    wf, run = workflow_with_run(store, "weekly")
    store.runs.update(run, status="running")
    Campaigns(store.backend).acquire(wf, run, "otherhost:9", 120)
    with pytest.raises(RunRefused):
        _runner(store, tmp_path).run("weekly", progress=False)
    assert oracle.one("SELECT status FROM workflow_runs") == "running"


# -- the recipient lock: one batch at a time under a global frequency cap -------------------


def _held_elsewhere(oracle: Oracle, database: Any) -> bool:
    """Whether the recipient lock is held, seen from outside the code: PostgreSQL's
    pg_locks (an advisory lock), or a non-blocking flock on SQLite's lock file."""
    import fcntl

    if oracle.postgres:
        return bool(
            oracle.one(
                "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        )
    with open(f"{database}.recipients.lock", "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def test_the_recipient_lock_is_exclusive_while_held_and_free_after(
    store: Store, oracle: Oracle
) -> None:
    import threading
    import time

    database = store.backend.engine.url.database
    c = Campaigns(store.backend)
    other = Campaigns(store.backend)
    entered = threading.Event()

    def contender() -> None:
        with other.recipient_lock("hybridwb:recipients:sms"):
            entered.set()

    with c.recipient_lock("hybridwb:recipients:sms"):
        assert _held_elsewhere(oracle, database)
        thread = threading.Thread(target=contender)
        thread.start()
        time.sleep(0.5)
        assert not entered.is_set(), "a second holder entered while the lock was held"
    assert entered.wait(10), "the lock was not given up"
    thread.join(10)
    assert not _held_elsewhere(oracle, database)


def test_a_recipient_lock_is_released_when_its_block_raises(store: Store, oracle: Oracle) -> None:
    c = Campaigns(store.backend)
    with pytest.raises(RuntimeError), c.recipient_lock("hybridwb:recipients:sms"):
        raise RuntimeError("boom")
    assert not _held_elsewhere(oracle, store.backend.engine.url.database)


@pytest.mark.postgres
def test_recipient_locks_of_two_channels_do_not_block_each_other(pg_db: Any) -> None:
    import threading

    from hybridwb.platform.backend import SqlBackend

    _stores._empty_pg(pg_db)
    st = Store(SqlBackend(pg_db))
    try:
        c = Campaigns(st.backend)
        entered = threading.Event()

        def other_channel() -> None:
            with Campaigns(st.backend).recipient_lock("hybridwb:recipients:email"):
                entered.set()

        with c.recipient_lock("hybridwb:recipients:sms"):
            thread = threading.Thread(target=other_channel)
            thread.start()
            assert entered.wait(10), "another channel's lock waited for this one"
        thread.join(10)
    finally:
        st.close()


def test_an_in_memory_store_takes_no_file_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.engine import URL

    from hybridwb.platform.backend import SqlBackend

    monkeypatch.chdir(tmp_path)
    for database in (":memory:", "file::memory:?cache=shared"):
        c = Campaigns(SqlBackend(URL.create("sqlite", database=database)))
        with c.recipient_lock("hybridwb:recipients:sms"):
            pass
    assert list(tmp_path.iterdir()) == []


def test_a_lock_naming_a_run_of_another_workflow_is_refused(store: Store, oracle: Oracle) -> None:
    """acquire(W2, a run of W1) is refused by the database (migration 0009), in a line; W1's
    frozen set stays, and the clear that lock would have allowed finds no lock. Nor can a
    stale lock of W2 be taken over for it, nor a run be created under another workflow
    than the lock naming its id."""
    w1, r1 = workflow_with_run(store, "w1")
    w2 = store.workflows.create(name="w2")["id"]
    c = Campaigns(store.backend)
    assert c.freeze(r1, [[("k1", "+8210"), ("k2", "+8211")]]) == 2
    with pytest.raises(ValidationError) as caught:
        c.acquire(w2, r1, ME, 120)
    assert "run of its own workflow" in str(caught.value) and "\n" not in str(caught.value)
    assert lock_row(oracle, w2) is None
    assert c.freeze(r1, [], workflow_id=w2, owner=ME) is None
    assert oracle.one("SELECT COUNT(*) FROM run_targets WHERE run_id = ?", oracle.uid(r1)) == 2
    r2 = store.runs.create(w2)["id"]
    assert c.acquire(w2, r2, "otherhost:1", 120) is None
    age_lock(oracle, w2, 600)
    with pytest.raises(ValidationError):
        c.acquire(w2, r1, ME, 120)
    assert lock_row(oracle, w2) == (str(r2), "otherhost:1")
    with pytest.raises((sqlite3.IntegrityError, psycopg.errors.CheckViolation)):
        oracle.execute(  # nor by a plain UPDATE of the row
            "UPDATE run_locks SET run_id = ? WHERE workflow_id = ?", oracle.uid(r1), oracle.uid(w2)
        )
    assert lock_row(oracle, w2) == (str(r2), "otherhost:1")
    w3, taken = store.workflows.create(name="w3")["id"], uuid.uuid4()
    assert c.acquire(w3, taken, ME, 120) is None  # the runner locks before it creates the run
    with pytest.raises(ValidationError) as caught:
        store.runs.create(w1, run_id=taken)
    assert "lock of another workflow" in str(caught.value) and "\n" not in str(caught.value)
    assert oracle.one("SELECT COUNT(*) FROM workflow_runs WHERE id = ?", oracle.uid(taken)) == 0
    assert store.runs.create(w3, run_id=taken)["id"] == taken
