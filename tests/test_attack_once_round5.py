# ruff: noqa: F811  (the fixtures imported from round 2 are test parameters here)
"""Attack round 5 on "a workflow run messages exactly the intended customers, once".

Sources are fresh MariaDB databases, stores fresh PostgreSQL databases or SQLite files; the
oracle is direct SQL on them (pymysql / psycopg / sqlite3). Runs are driven in-process
(`wb.workflows.process`, the notebook's own call), as a notebook run by hand does.

Findings (each test here failed on main):
F1 `wb.workflows.process(workflow, run_id)` without an `owner` took no workflow lock: two
   such calls at once (two kernels) processed two runs of one workflow side by side, and
   with `once_per_recipient` each customer was messaged twice, once by each run; the same
   run processed twice at once was not refused either.
F2 a frozen target is looked up again by its key when it is sent: a row sharing that key
   (the key column not unique) added after the freeze filled the message's variables (the
   frozen customer's phone, another row's name), or displaced the frozen row.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import hybridwb
from hybridwb.errors import HybridwbError
from hybridwb.platform.campaigns import Campaigns, owner_alive, this_host
from hybridwb.workflows import audience, lock, policies
from hybridwb.workflows.process import RunTakenOver
from tests._stores import store_sql
from tests.conftest import _admin, mariadb_maker
from tests.test_attack_once_round2 import (
    DAY,
    INFO,
    any_store,  # noqa: F401  (a fixture)
    oracle,
    people,
    pg_store,  # noqa: F401  (a fixture)
    records,
    skips,
    source_url,
    start,
    workbench,
)

pytestmark = [pytest.mark.mysql, pytest.mark.postgres]
SEARCHABLE = {"name": {"displayName": "이름", "type": "string", "role": "name", "searchable": True}}


@pytest.fixture
def source() -> Iterator[Callable[..., str]]:
    yield from mariadb_maker("hybridwb_a15")


def phone(i: int) -> str:
    return f"010-5100-{i:04d}"


def members(source: Callable[..., str], n: int) -> str:
    return source(
        "CREATE TABLE members (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20))",
        rows={"members": [(f"m{i:03d}", f"회원{i}", phone(i)) for i in range(n)]},
    )


def race(
    db: str, store: str, calls: list[tuple[Any, Any]], monkeypatch: pytest.MonkeyPatch
) -> list[BaseException]:
    """Process each (workflow, run) in its own thread and workbench, at once: each waits,
    after reading the store's history for its first batch, until the other has read it too
    (or has ended), so both decide before either writes. The errors raised, in order."""
    real_seen = Campaigns.seen
    gate = threading.Barrier(len(calls))

    def seen(self: Campaigns, *a: Any, **kw: Any) -> Any:
        out = real_seen(self, *a, **kw)
        # the other call ended (refused), or this is a later batch: on without waiting
        with contextlib.suppress(threading.BrokenBarrierError):
            gate.wait(timeout=30)
        return out

    monkeypatch.setattr(Campaigns, "seen", seen)
    errors: list[BaseException] = []

    def go(workflow: Any, run_id: Any) -> None:
        w = hybridwb.connect(source=source_url(db), store=store)
        try:
            w.workflows.process(workflow, run_id, progress=False, batch_size=4, now=DAY)
        except BaseException as exc:
            errors.append(exc)
        finally:
            gate.abort()  # a call that ended no longer holds the other at the gate
            w.close()

    threads = [threading.Thread(target=go, args=call) for call in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    return errors


def twice(store: str) -> list[tuple[Any, ...]]:
    return oracle(
        store,
        "SELECT recipient, count(*) FROM send_records GROUP BY recipient HAVING count(*) > 1",
    )


def locks(store: str) -> int:
    return int(oracle(store, "SELECT count(*) FROM run_locks")[0][0])


def refused(errors: list[BaseException]) -> None:
    """Exactly one call was refused, with one line naming the active run."""
    assert len(errors) == 1, errors
    [error] = errors
    assert isinstance(error, HybridwbError), repr(error)
    assert "already has an active run" in str(error) and "\n" not in str(error), str(error)


# == F1: owner-less processing takes the workflow's lock =====================================
def test_two_runs_of_one_workflow_processed_at_once_message_each_customer_once(
    source: Callable[..., str], any_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BREAK on main: both runs sent to all ten customers (20 records, each phone twice)."""
    db = members(source, 10)
    wb = workbench(db, any_store, {"members": {**people(), "audience": True}})
    try:
        wf = wb.workflows.create(
            "once",
            target_config={"table": "members"},
            message_config={"content": INFO, "policy": {"once_per_recipient": True}},
        )
        runs = [start(wb, wf), start(wb, wf)]
    finally:
        wb.close()
    errors = race(db, any_store, [(wf["id"], r) for r in runs], monkeypatch)
    assert twice(any_store) == [], "a customer was messaged by both runs"
    refused(errors)
    assert oracle(any_store, "SELECT count(*) FROM send_records")[0][0] == 10
    assert locks(any_store) == 0  # the call that ran released the lock it took


def test_one_run_processed_twice_at_once_is_refused_once(
    source: Callable[..., str], any_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BREAK on main: both calls processed the run (no refusal). Three keys share a phone,
    one in each batch."""
    db = members(source, 10)
    shared = "+82 10-5100-0000"  # m000's phone, spelled another way
    for code in ("m004", "m008"):
        execute(db, "UPDATE members SET mobile = %s WHERE code = %s", (shared, code))
    wb = workbench(db, any_store, {"members": {**people(), "audience": True}})
    try:
        wf = wb.workflows.create(
            "again", target_config={"table": "members"}, message_config={"content": INFO}
        )
        run_id = start(wb, wf)
    finally:
        wb.close()
    errors = race(db, any_store, [(wf["id"], run_id), (wf["id"], run_id)], monkeypatch)
    assert twice(any_store) == []
    refused(errors)
    assert len(records(any_store, run_id)) == 8
    assert skips(any_store, run_id) == {policies.DUPLICATE: 2}
    assert locks(any_store) == 0


def test_processing_without_an_owner_is_refused_while_a_runner_holds_the_workflow(
    source: Callable[..., str], any_store: str
) -> None:
    """A run started by `hybridwb run` (its lock held by a live process) cannot be
    processed beside it by a notebook's own call; nothing is written, the lock stays."""
    db = members(source, 5)
    wb = workbench(db, any_store, {"members": {**people(), "audience": True}})
    try:
        wf = wb.workflows.create(
            "held", target_config={"table": "members"}, message_config={"content": INFO}
        )
        run_id, other = start(wb, wf), start(wb, wf)
        alive = f"{this_host()}:{os.getpid()}"
        assert Campaigns(wb.store.backend).acquire(wf["id"], run_id, alive, 120) is None
        for target in (run_id, other):  # the held run itself, and another run of the workflow
            with pytest.raises(HybridwbError, match="already has an active run"):
                wb.workflows.process(wf["id"], target, progress=False, now=DAY)
        assert Campaigns(wb.store.backend).lock(wf["id"])["owner"] == alive
        # the holder goes on: its own calls (with its owner) are not refused
        wb.workflows.process(wf["id"], run_id, owner=alive, progress=False, now=DAY)
    finally:
        wb.close()
    assert records(any_store, other) == []
    assert len(records(any_store, run_id)) == 5
    assert locks(any_store) == 1  # the runner releases its own lock, not the call


def test_an_owner_less_call_releases_its_lock_also_when_it_fails(
    source: Callable[..., str], any_store: str
) -> None:
    """After a call that raised (a template variable missing in strict mode raises, and
    a bad argument too), the workflow can run again: no lock is left behind."""
    db = members(source, 3)
    wb = workbench(db, any_store, {"members": {**people(), "audience": True}})
    try:
        wf = wb.workflows.create(
            "fails", target_config={"table": "members"}, message_config={"content": INFO}
        )
        run_id = start(wb, wf)
        with pytest.raises(HybridwbError):
            wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=0)
        assert locks(any_store) == 0
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY)
        assert locks(any_store) == 0
    finally:
        wb.close()
    assert len(records(any_store, run_id)) == 3


def test_the_lock_of_a_dead_process_that_processed_without_an_owner_is_taken_over(
    source: Callable[..., str], pg_store: str
) -> None:
    """A kernel killed in the middle leaves its lock; its owner names the dead process, so
    the next call takes the lock over at once instead of being refused until it is stale."""
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    owner = f"{this_host()}:{int(dead.stdout)}#0a1b2c3d"
    assert owner_alive(owner) is False
    assert owner_alive(f"{this_host()}:{os.getpid()}#0a1b2c3d") is True
    db = members(source, 3)
    wb = workbench(db, pg_store, {"members": {**people(), "audience": True}})
    try:
        wf = wb.workflows.create(
            "dead", target_config={"table": "members"}, message_config={"content": INFO}
        )
        run_id = start(wb, wf)
        assert Campaigns(wb.store.backend).acquire(wf["id"], run_id, owner, 120) is None
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY)
    finally:
        wb.close()
    assert len(records(pg_store, run_id)) == 3
    assert locks(pg_store) == 0


def test_an_owner_less_call_taken_over_stops_and_leaves_the_new_holders_lock(
    source: Callable[..., str], any_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The call's lock is taken over after its freeze: it writes nothing, and at its end it
    releases only its own lock, not the new holder's."""
    db = members(source, 6)
    wb = workbench(db, any_store, {"members": {**people(), "audience": True}})
    real_freeze = Campaigns.freeze

    def freeze(self: Campaigns, *a: Any, **kw: Any) -> Any:
        out = real_freeze(self, *a, **kw)
        store_sql(
            any_store,
            "UPDATE run_locks SET owner = %s WHERE CAST(workflow_id AS TEXT) IN (%s, %s)",
            ("new:2", str(wf["id"]), uuid.UUID(str(wf["id"])).hex),
        )
        return out

    monkeypatch.setattr(Campaigns, "freeze", freeze)
    try:
        wf = wb.workflows.create(
            "taken", target_config={"table": "members"}, message_config={"content": INFO}
        )
        run_id = start(wb, wf)
        with pytest.raises(RunTakenOver):
            wb.workflows.process(wf["id"], run_id, progress=False, now=DAY)
    finally:
        wb.close()
    assert records(any_store, run_id) == []
    assert oracle(any_store, "SELECT owner FROM run_locks") == [("new:2",)]


def test_a_long_owner_less_call_keeps_its_lock_fresh(
    source: Callable[..., str], any_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A freeze longer than a contender's stale limit: the call's heartbeat keeps its lock,
    so the contender is refused and the call completes."""
    monkeypatch.setattr(lock, "BEAT_EVERY_S", 0.05)
    db = members(source, 4)
    wb = workbench(db, any_store, {"members": {**people(), "audience": True}})
    real_freeze = Campaigns.freeze
    contender: list[Any] = []

    def freeze(self: Campaigns, *a: Any, **kw: Any) -> Any:
        out = real_freeze(self, *a, **kw)
        time.sleep(1.0)  # a large set's freeze, past the contender's 0.5 s stale limit
        contender.append(self.acquire(wf["id"], uuid.uuid4(), "other:1", 0.5))
        return out

    monkeypatch.setattr(Campaigns, "freeze", freeze)
    try:
        wf = wb.workflows.create(
            "long", target_config={"table": "members"}, message_config={"content": INFO}
        )
        run_id = start(wb, wf)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY)
    finally:
        wb.close()
    assert contender and contender[0] is not None, "the contender took a lock still in use"
    assert len(records(any_store, run_id)) == 4
    assert locks(any_store) == 0


def execute(db: str, sql: str, params: tuple[Any, ...]) -> None:
    """Direct SQL on the MariaDB source as root, committed."""
    conn = _admin()
    try:
        with conn.cursor() as cur:
            cur.execute(f"USE `{db}`")
            cur.execute(sql, params)
        conn.commit()
    finally:
        conn.close()


# == F2: a frozen target's key shared by another row when it is sent ===========================
#: rows added after the freeze under frozen keys: (code, name, mobile)
NEWCOMERS = {
    "same phone": ("m001", "다른이", phone(1)),  # m001's phone: only the name is another's
    "other phone": ("m002", "다른이", "010-5999-0002"),
}


@pytest.mark.parametrize("newcomer", list(NEWCOMERS))
@pytest.mark.parametrize(
    "target",
    [{"table": "members", "keyword": "회원"}, {"table": "members"}],
    ids=["keyword", "table"],
)
def test_a_key_shared_after_the_freeze_excludes_its_target_instead_of_picking_a_row(
    source: Callable[..., str],
    any_store: str,
    monkeypatch: pytest.MonkeyPatch,
    target: dict[str, Any],
    newcomer: str,
) -> None:
    """BREAK on main: the row added after the freeze under m001's key (same phone, another
    name) filled m001's message: '다른이님, …' went to m001's phone; under m002's key
    (another phone) it displaced m002's row, and m002 was excluded as 'recipient changed'.
    Neither row is sure to be the frozen customer: the target is excluded as key not unique."""
    db = source(
        "CREATE TABLE members (code VARCHAR(10) NOT NULL, name VARCHAR(20), "
        "mobile VARCHAR(20), KEY (code), KEY (name))",
        rows={"members": [(f"m{i:03d}", f"회원{i}", phone(i)) for i in range(6)]},
    )
    # not marked the audience: its key is not checked unique on save (the target names it)
    wb = workbench(db, any_store, {"members": people(fields=SEARCHABLE)})
    real_freeze = Campaigns.freeze

    def freeze(self: Campaigns, *a: Any, **kw: Any) -> Any:
        out = real_freeze(self, *a, **kw)
        execute(db, "INSERT INTO members VALUES (%s, %s, %s)", NEWCOMERS[newcomer])
        return out

    monkeypatch.setattr(Campaigns, "freeze", freeze)
    try:
        wf = wb.workflows.create("shared", target_config=target, message_config={"content": INFO})
        run_id = start(wb, wf)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=2)
    finally:
        wb.close()
    code = NEWCOMERS[newcomer][0]
    sent = oracle(any_store, "SELECT target_key, content FROM send_records ORDER BY target_key")
    assert [(str(k), str(c)) for k, c in sent] == [
        (f"m{i:03d}", f"회원{i}님, 이번 달 안내입니다.") for i in range(6) if f"m{i:03d}" != code
    ]
    assert skips(any_store, run_id) == {audience.KEY_NOT_UNIQUE: 1}
    assert oracle(any_store, "SELECT target_key FROM run_skips")[0][0] == code


# == a run of another workflow ===============================================================
@pytest.mark.parametrize("owner", [None, "runner:1"], ids=["owner-less", "with an owner"])
def test_a_run_of_another_workflow_is_refused_before_anything_is_read_or_written(
    source: Callable[..., str], any_store: str, owner: str | None
) -> None:
    """Processing B's run as A would freeze and send B's run under A's lock and policies
    (A's once-per-recipient, A's history), while B's lock guards nothing: refused in one
    line, the run left as it was (no target frozen, no record, no lock)."""
    db = members(source, 3)
    wb = workbench(db, any_store, {"members": {**people(), "audience": True}})
    try:
        wf_a, wf_b = (
            wb.workflows.create(
                f"{name}-{uuid.uuid4().hex[:6]}",
                target_config={"table": "members"},
                message_config={"content": INFO, "policy": {"once_per_recipient": True}},
            )
            for name in ("a", "b")
        )
        run_b = start(wb, wf_b)
        with pytest.raises(HybridwbError, match="is a run of another workflow") as info:
            wb.workflows.process(
                wf_a["id"], run_b, progress=False, batch_size=4, now=DAY, owner=owner
            )
        assert "\n" not in str(info.value)
    finally:
        wb.close()
    assert records(any_store, run_b) == []
    assert oracle(any_store, "SELECT count(*) FROM run_targets")[0][0] == 0
    assert locks(any_store) == 0
