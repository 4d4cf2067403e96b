# ruff: noqa: F811  (the fixtures imported from round 2 are test parameters here)
"""Attacks on the run's store steps in a thread of their own (`writer.StoreSteps`, wf41).

The guarantee attacked: every frozen target ends with exactly one send record or one
exclusion, and no recipient is messaged more than the send policies allow, however the
run's steps fail, are interrupted, or race another run. Real MariaDB source, real
PostgreSQL store; the oracle is direct SQL on `send_records` / `run_skips` / `pg_locks`.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

import hybridwb
from hybridwb.errors import HybridwbError, InternalError
from hybridwb.platform.campaigns import Campaigns
from hybridwb.workflows import process as process_module
from hybridwb.workflows import rendering
from hybridwb.workflows.audience import key_text
from tests.test_attack_once_round2 import (  # noqa: F401  (fixtures: source, pg_store)
    DAY,
    INFO,
    oracle,
    people,
    pg_store,
    source,
    source_url,
    start,
    workbench,
)

pytestmark = [pytest.mark.mysql, pytest.mark.postgres]
NAME = "hybridwb-store"
MY_LOCKS = (  # pg_locks is the cluster's: this test's database only
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)
N = 12
PHONES = 4  # member i has phone i % PHONES: each phone under three keys, across batches


def _threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == NAME and t.is_alive()]


def _members(source: Callable[..., str], n: int = N, phones: int = PHONES) -> str:
    return source(
        "CREATE TABLE members (member_no INT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(40))",
        rows={"members": [(i, f"회원{i}", f"010-5555-{i % phones:04d}") for i in range(1, n + 1)]},
    )


MAPPING = {"members": {**people("number", "member_no"), "audience": True}}


def _workflow(wb: Any, policy: dict[str, Any] | None = None, content: str = INFO) -> Any:
    return wb.workflows.create(
        f"atk-{uuid.uuid4().hex[:6]}",
        target_config={"table": "members"},
        message_config={"content": content, **({"policy": policy} if policy else {})},
    )


def _pid(conn: Any) -> int:
    return int(conn.connection.dbapi_connection.info.backend_pid)


def _kill(store: str, pid: int) -> None:
    database = store.rsplit("/", 1)[1]
    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={database}") as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def _kill_idle(store: str) -> None:
    database = store.rsplit("/", 1)[1]
    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={database}") as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid() AND state = 'idle'",
            (database,),
        )


def _by_run(store: str, run_id: Any) -> tuple[dict[str, int], dict[str, int], int]:
    """(records per target, exclusions per target, frozen targets), read directly."""
    rid = str(run_id)
    recs = oracle(
        store,
        "SELECT target_key, count(*) FROM send_records WHERE run_id::text = %s GROUP BY 1",
        (rid,),
    )
    sk = oracle(
        store,
        "SELECT target_key, count(*) FROM run_skips WHERE run_id::text = %s GROUP BY 1",
        (rid,),
    )
    targets = oracle(store, "SELECT count(*) FROM run_targets WHERE run_id::text = %s", (rid,))
    return {k: n for k, n in recs}, {k: n for k, n in sk}, int(targets[0][0])


def _assert_exactly_once(store: str, run_id: Any) -> None:
    recs, sk, targets = _by_run(store, run_id)
    assert all(n == 1 for n in recs.values()), recs
    assert all(n == 1 for n in sk.values()), sk
    assert not set(recs) & set(sk), (recs, sk)
    assert len(recs) + len(sk) == targets, (recs, sk, targets)
    per_phone = oracle(
        store,
        "SELECT recipient, count(*) FROM send_records WHERE run_id::text = %s "
        "GROUP BY 1 HAVING count(*) > 1",
        (str(run_id),),
    )
    assert per_phone == [], per_phone


def _assert_nothing_left(store: str, wb: Any) -> None:
    assert oracle(store, MY_LOCKS) == [(0,)]
    assert wb.store.backend.engine.pool.checkedout() == 0
    assert not _threads()


POLICIES = [
    pytest.param(None, id="once per run"),
    pytest.param({"frequency_cap": {"messages": 1, "days": 7}}, id="cap of one"),
]


# -- a store connection killed at each step, then a resume ------------------------------------
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("at", ["check", "between", "write"])
def test_a_store_connection_killed_at_each_step_then_resumed_messages_each_phone_once(
    source: Callable[..., str],
    pg_store: str,
    monkeypatch: pytest.MonkeyPatch,
    policy: dict[str, Any] | None,
    at: str,
) -> None:
    """The second batch's connection is terminated by the server: in its history check
    (`seen`), between the check and the write, or in the write (after the records went
    in, before the commit). The run fails; nothing is left held; the resume ends every
    target with one record or one exclusion, each phone messaged once."""
    wb = workbench(_members(source), pg_store, MAPPING)
    real_seen, real_write = Campaigns.seen, Campaigns.write_batch
    calls = {"seen": 0, "write": 0}
    armed = {"on": True}

    def seen(self: Campaigns, *a: Any, within: Any = None, **kw: Any) -> Any:
        calls["seen"] += 1
        if armed["on"] and at == "check" and calls["seen"] == 2:
            if within is not None:
                _kill(pg_store, _pid(within))
            else:  # every pooled connection: the one the read checks out is dead
                _kill_idle(pg_store)
        return real_seen(self, *a, within=within, **kw)

    def write_batch(self: Campaigns, *a: Any, within: Any = None, **kw: Any) -> Any:
        calls["write"] += 1
        if armed["on"] and calls["write"] == 2 and within is not None:
            if at == "between":
                _kill(pg_store, _pid(within))
            elif at == "write":
                out = real_write(self, *a, within=within, **kw)
                _kill(pg_store, _pid(within))
                return out
        if armed["on"] and calls["write"] == 2 and within is None and at != "check":
            raise HybridwbError("The platform store failed: connection lost. Try again.")
        return real_write(self, *a, within=within, **kw)

    monkeypatch.setattr(Campaigns, "seen", seen)
    monkeypatch.setattr(Campaigns, "write_batch", write_batch)
    try:
        wf = _workflow(wb, policy)
        run_id = start(wb, wf)
        try:
            wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=3)
            failed = False
        except HybridwbError:
            failed = True
        assert failed or (at == "check" and policy is None)  # a read on its own is retried
        _assert_nothing_left(pg_store, wb)
        armed["on"] = False
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=3)
        _assert_nothing_left(pg_store, wb)
    finally:
        wb.close()
    _assert_exactly_once(pg_store, run_id)
    recs, _, _ = _by_run(pg_store, run_id)
    assert len(recs) == PHONES


# -- interrupts and errors in the run's own thread at each point -------------------------------
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("where", ["render ahead", "decide", "after write given", "next read"])
@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_an_interrupt_in_the_runs_thread_at_each_point_then_resumed_messages_each_phone_once(
    source: Callable[..., str],
    pg_store: str,
    monkeypatch: pytest.MonkeyPatch,
    policy: dict[str, Any] | None,
    where: str,
    error: type[BaseException],
) -> None:
    """The run's own thread is interrupted on its second batch while the store thread has
    a step queued or running: rendering ahead (check 2 queued), deciding (the lock held),
    right after giving write 2 (write queued), reading batch 3 (check 3 not given)."""
    wb = workbench(_members(source), pg_store, MAPPING)
    n = {"render": 0, "decide": 0, "sleep": 0}
    real_ahead, real_decide = rendering.render_ahead, rendering.decide_and_render
    armed = {"on": True}

    def render_ahead(*a: Any, **kw: Any) -> Any:
        n["render"] += 1
        if armed["on"] and where == "render ahead" and n["render"] == 2:
            raise error("stop")
        return real_ahead(*a, **kw)

    def decide(*a: Any, **kw: Any) -> Any:
        n["decide"] += 1
        if armed["on"] and where == "decide" and n["decide"] == 2:
            raise error("stop")
        return real_decide(*a, **kw)

    def sleep(seconds: float) -> None:
        n["sleep"] += 1
        if armed["on"] and where == "after write given" and n["sleep"] == 2:
            raise error("stop")

    monkeypatch.setattr(rendering, "render_ahead", render_ahead)
    monkeypatch.setattr(rendering, "decide_and_render", decide)
    monkeypatch.setattr(process_module.time, "sleep", sleep)
    real_pending = Campaigns.pending

    def pending(self: Campaigns, *a: Any, **kw: Any) -> Any:
        out = real_pending(self, *a, **kw)
        if armed["on"] and where == "next read" and a[1] >= 6:  # reading the third batch
            raise error("stop")
        return out

    monkeypatch.setattr(Campaigns, "pending", pending)
    try:
        wf = _workflow(wb, policy)
        run_id = start(wb, wf)
        # an unexpected error leaves the public call as `InternalError` (its type named)
        with pytest.raises(error if error is KeyboardInterrupt else InternalError):
            wb.workflows.process(
                wf["id"], run_id, progress=False, now=DAY, batch_size=3, batch_pause=0.01
            )
        _assert_nothing_left(pg_store, wb)
        armed["on"] = False
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=3)
        _assert_nothing_left(pg_store, wb)
    finally:
        wb.close()
    _assert_exactly_once(pg_store, run_id)
    assert len(_by_run(pg_store, run_id)[0]) == PHONES


# -- two workflows under one cap, racing, batches of one ---------------------------------------
@pytest.mark.parametrize("sizes", [(1, 1), (1, 3), (2, 5)], ids=lambda s: f"batches {s}")
def test_two_workflows_racing_under_one_cap_never_message_a_phone_over_it(
    source: Callable[..., str], pg_store: str, sizes: tuple[int, int]
) -> None:
    """Each phone under three keys; two workflows under a cap of one message each, run at
    once by two workbenches (two pools, as two processes), each with its store thread
    holding the cap lock across its check and write: each phone messaged once in all."""
    db = _members(source, 24, 8)
    wb = workbench(db, pg_store, MAPPING)
    policy = {"frequency_cap": {"messages": 1, "days": 7}}
    wfs = [_workflow(wb, policy), _workflow(wb, policy)]
    runs = [start(wb, wf) for wf in wfs]
    wb.close()
    errors: list[BaseException] = []
    gate = threading.Barrier(2)

    def go(wf: dict[str, Any], run_id: Any, size: int) -> None:
        w = hybridwb.connect(source=source_url(db), store=pg_store)
        try:
            gate.wait()
            w.workflows.process(wf["id"], run_id, progress=False, batch_size=size, now=DAY)
        except BaseException as exc:
            errors.append(exc)
        finally:
            w.close()

    threads = [
        threading.Thread(target=go, args=(wf, r, s))
        for wf, r, s in zip(wfs, runs, sizes, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    over = oracle(
        pg_store, "SELECT recipient, count(*) FROM send_records GROUP BY 1 HAVING count(*) > 1"
    )
    assert over == []
    assert oracle(pg_store, "SELECT count(DISTINCT recipient) FROM send_records") == [(8,)]
    for run_id in runs:
        recs, sk, targets = _by_run(pg_store, run_id)
        assert len(recs) + len(sk) == targets == 24
    assert oracle(pg_store, MY_LOCKS) == [(0,)]


# -- once per recipient across runs, cooldown: a second run after the first ---------------------
@pytest.mark.parametrize(
    "policy",
    [{"once_per_recipient": True}, {"cooldown_days": 3}],
    ids=["once per recipient", "cooldown"],
)
def test_a_second_run_of_a_workflow_messages_no_phone_again(
    source: Callable[..., str], pg_store: str, policy: dict[str, Any]
) -> None:
    wb = workbench(_members(source), pg_store, MAPPING)
    try:
        wf = _workflow(wb, policy)
        first = start(wb, wf)
        wb.workflows.process(wf["id"], first, progress=False, now=DAY, batch_size=1)
        second = start(wb, wf)
        wb.workflows.process(wf["id"], second, progress=False, now=DAY, batch_size=2)
        _assert_nothing_left(pg_store, wb)
    finally:
        wb.close()
    _assert_exactly_once(pg_store, first)
    _assert_exactly_once(pg_store, second)
    assert len(_by_run(pg_store, first)[0]) == PHONES
    assert _by_run(pg_store, second)[0] == {}


# -- text COPY: keys and content with the characters COPY escapes --------------------------------
NASTY = ["a\tb", "c\nd", "e\\f", "\\N", "g\rh", "i\\.", "\\", "j\r\nk", "'\"", "null"]


def test_keys_and_content_with_copy_escapes_are_stored_as_they_are(
    source: Callable[..., str], pg_store: str
) -> None:
    db = source(
        "CREATE TABLE members (code VARCHAR(20) PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(40))",
        rows={
            "members": [(f"k{i}{s}", f"n{s}{i}", f"010-6666-{i:04d}") for i, s in enumerate(NASTY)]
            + [(f"dup{s}", s, "010-6666-0000") for s in NASTY[:3]]
        },
    )
    wb = workbench(db, pg_store, {"members": {**people(), "audience": True}})
    try:
        wf = _workflow(wb, None, content="{{ 이름 }}|\t|\\N|")
        run_id = start(wb, wf)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=4)
        _assert_nothing_left(pg_store, wb)
    finally:
        wb.close()
    _assert_exactly_once(pg_store, run_id)
    stored = dict(
        oracle(
            pg_store,
            "SELECT target_key, content FROM send_records WHERE run_id::text = %s",
            (str(run_id),),
        )
    )
    sk = dict(
        oracle(
            pg_store,
            "SELECT target_key, reason FROM run_skips WHERE run_id::text = %s",
            (str(run_id),),
        )
    )
    names = {f"k{i}{s}": f"n{s}{i}" for i, s in enumerate(NASTY)}
    names.update({f"dup{s}": s for s in NASTY[:3]})
    want = {key_text(k): f"{v}|\t|\\N|" for k, v in names.items()}
    assert set(stored) | set(sk) == set(want) and not set(stored) & set(sk)
    assert {k: want[k] for k in stored} == stored  # each text as it was rendered
    assert len(stored) == len(NASTY)  # one per phone: the dup keys share k0..k2's phones
    frozen = oracle(
        pg_store, "SELECT target_key FROM run_targets WHERE run_id::text = %s", (str(run_id),)
    )
    assert {k for (k,) in frozen} == set(want)


# -- a dry run writes no record, and a real run after it sends every phone once ---------------
def test_a_dry_run_then_a_real_run_messages_each_phone_once(
    source: Callable[..., str], pg_store: str
) -> None:
    wb = workbench(_members(source), pg_store, MAPPING)
    try:
        wf = _workflow(wb, {"frequency_cap": {"messages": 1, "days": 7}})
        dry = wb.store.runs.create(wf["id"], {}, dry_run=True)["id"]
        wb.workflows.process(wf["id"], dry, progress=False, now=DAY, batch_size=2, dry_run=True)
        _assert_nothing_left(pg_store, wb)
        assert _by_run(pg_store, dry)[0] == {}
        real = start(wb, wf)
        wb.workflows.process(wf["id"], real, progress=False, now=DAY, batch_size=2)
    finally:
        wb.close()
    _assert_exactly_once(pg_store, real)
    assert len(_by_run(pg_store, real)[0]) == PHONES


# -- the analyze step fails: the batch before it stays written, none after it is checked ------
def test_a_failed_analyze_step_stops_the_run_after_its_batch_and_a_resume_ends_it(
    source: Callable[..., str], pg_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    wb = workbench(_members(source), pg_store, MAPPING)
    monkeypatch.setattr(process_module, "ANALYZE_AFTER", 1)  # an analyze after each batch
    real = Campaigns.analyze_history
    calls = {"n": 0, "armed": True}

    def analyze(self: Campaigns) -> None:
        calls["n"] += 1
        if calls["armed"] and calls["n"] == 1:
            raise HybridwbError("The platform store failed: analyze. Try again.")
        real(self)

    monkeypatch.setattr(Campaigns, "analyze_history", analyze)
    try:
        wf = _workflow(wb, {"frequency_cap": {"messages": 1, "days": 7}})
        run_id = start(wb, wf)
        with pytest.raises(HybridwbError, match="analyze"):
            wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=3)
        _assert_nothing_left(pg_store, wb)
        recs, sk, _ = _by_run(pg_store, run_id)
        assert len(recs) + len(sk) == 3  # the first batch, written before the analyze
        calls["armed"] = False
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=3)
        _assert_nothing_left(pg_store, wb)
    finally:
        wb.close()
    _assert_exactly_once(pg_store, run_id)
    assert len(_by_run(pg_store, run_id)[0]) == PHONES


# -- an interrupt while the store thread waits for the cap lock another run holds ------------
@pytest.mark.usefixtures("sigint_interrupts")
def test_an_interrupt_while_the_check_waits_for_the_cap_lock_writes_nothing_and_leaves_nothing(
    source: Callable[..., str], pg_store: str
) -> None:
    """Another run holds the cap lock; the run's first check waits for it in the store
    thread and the run's own thread waits for the check: a real SIGINT to the run's
    thread. The run stops with KeyboardInterrupt once the check ends (the other run lets
    go); nothing is written, no lock, connection or thread is left; a resume ends it."""
    import signal
    import time

    from hybridwb.workflows import policies

    wb = workbench(_members(source), pg_store, MAPPING)
    database = pg_store.rsplit("/", 1)[1]
    other = psycopg.connect(f"host=127.0.0.1 user=postgres dbname={database}", autocommit=True)
    other.execute("SELECT pg_advisory_lock(hashtext(%s))", (policies.cap_space("sms"),))
    main = threading.main_thread().ident
    assert main is not None and threading.current_thread().ident == main

    def interrupt() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # the store thread waits for the lock
            waiting = oracle(
                pg_store,
                MY_LOCKS + " AND NOT granted",
            )
            if waiting[0][0]:
                break
            time.sleep(0.05)
        signal.pthread_kill(main, signal.SIGINT)
        time.sleep(0.5)
        other.execute("SELECT pg_advisory_unlock(hashtext(%s))", (policies.cap_space("sms"),))

    try:
        wf = _workflow(wb, {"frequency_cap": {"messages": 1, "days": 7}})
        run_id = start(wb, wf)
        helper = threading.Thread(target=interrupt)
        helper.start()
        with pytest.raises(KeyboardInterrupt):
            wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=3)
        helper.join()
        _assert_nothing_left(pg_store, wb)
        assert _by_run(pg_store, run_id)[:2] == ({}, {})
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=3)
        _assert_nothing_left(pg_store, wb)
    finally:
        other.close()
        wb.close()
    _assert_exactly_once(pg_store, run_id)
    assert len(_by_run(pg_store, run_id)[0]) == PHONES


# -- a phone under several keys across batches, under each policy and batch size --------------
@pytest.mark.parametrize(
    "policy",
    [
        None,
        {"once_per_recipient": True},
        {"cooldown_days": 2},
        {"frequency_cap": {"messages": 1, "days": 7}},
        {"frequency_cap": {"messages": 2, "days": 7}},
    ],
    ids=["once per run", "once per recipient", "cooldown", "cap 1", "cap 2"],
)
@pytest.mark.parametrize("size", [1, 2, 5])
def test_a_phone_under_keys_in_many_batches_is_messaged_once_per_run(
    source: Callable[..., str], pg_store: str, policy: dict[str, Any] | None, size: int
) -> None:
    wb = workbench(_members(source, 15, 3), pg_store, MAPPING)
    try:
        wf = _workflow(wb, policy)
        run_id = start(wb, wf)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=size)
        _assert_nothing_left(pg_store, wb)
    finally:
        wb.close()
    _assert_exactly_once(pg_store, run_id)
    assert len(_by_run(pg_store, run_id)[0]) == 3


# -- quiet hours begin mid-run: the clock is read in the store thread, per check --------------
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("size", [1, 4])
@pytest.mark.parametrize("mode", ["wait", "exclude"])
def test_quiet_hours_beginning_mid_run_stop_the_batches_checked_after_them(
    source: Callable[..., str],
    pg_store: str,
    policy: dict[str, Any] | None,
    size: int,
    mode: str,
) -> None:
    """The clock reads 20:59:50 KST at the run's start and first check, then 21:00:10
    from the second check on: only the first batch may message anyone (no member has
    night consent); the other targets wait (pending) or are excluded."""
    from datetime import datetime, timedelta

    from tests.test_attack_once_round2 import AD, CONSENTING, SEOUL, _consenting

    db = _consenting(source, 12)
    wb = workbench(db, pg_store, {"members": CONSENTING})
    reads: list[str] = []

    def clock() -> datetime:
        reads.append(threading.current_thread().name)
        base = datetime(2026, 3, 2, 20, 59, 50, tzinfo=SEOUL)
        return base if len(reads) <= 2 else base + timedelta(seconds=20)

    try:
        wb.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
        wf = wb.workflows.create(
            f"qh-{uuid.uuid4().hex[:6]}",
            target_config={"table": "members"},
            message_config={
                "template": "세일",
                "quiet_hours": mode,
                **({"policy": policy} if policy else {}),
            },
        )
        run_id = start(wb, wf)
        wb.workflows.process(wf["id"], run_id, progress=False, batch_size=size, clock=clock)
        _assert_nothing_left(pg_store, wb)
    finally:
        wb.close()
    recs, sk, targets = _by_run(pg_store, run_id)
    assert len(recs) == size, (recs, sk)
    assert reads[1:] and set(reads[1:]) == {NAME}
    if mode == "exclude":
        assert len(recs) + len(sk) == targets
    else:
        assert len(recs) + len(sk) < targets


# -- a second interrupt while the run waits for its store thread -------------------------------
@pytest.mark.usefixtures("sigint_interrupts")
@pytest.mark.parametrize("owner", [None, "me:1"], ids=["own lock per call", "owner given"])
def test_a_second_interrupt_during_the_store_threads_write_leaves_no_write_for_after_the_run(
    source: Callable[..., str], pg_store: str, monkeypatch: pytest.MonkeyPatch, owner: str | None
) -> None:
    """Members 1 and 2 share phone P, batches of one. Batch 1's write is slow (a store
    that answers late); the user interrupts the kernel, and again while the run waits for
    the store thread to finish. Once the run call has ended, nothing of it may still
    write: a resume then decides from the history as it is. Here the resume runs while
    that write is still in flight, after member 1 changed phone in the source: if batch
    1's write commits after the resume's check, P is messaged twice (key 1 by the old
    write, key 2 by the resume), and key 1 ends with a record and an exclusion or two
    outcomes decided apart. With an owner given (`hybridwb run`'s), the late write's
    heartbeat still holds; without, each call's own lock is gone by then (the write fails).
    """
    import signal
    import time

    from tests.test_attack_once_round2 import src

    db = _members(source, 2, 1)  # members 1 and 2: one phone
    wb = workbench(db, pg_store, MAPPING)
    real_write = Campaigns.write_batch
    writing, go, resume_checked, old_done = (threading.Event() for _ in range(4))
    calls = {"n": 0}

    def write_batch(self: Campaigns, *a: Any, **kw: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:  # batch 1 of the interrupted run: late
            writing.set()
            go.wait(30)
            out = real_write(self, *a, **kw)
            old_done.set()
            return out
        resume_checked.set()  # the resume decided its batch from the history it read
        old_done.wait(10)
        return real_write(self, *a, **kw)

    monkeypatch.setattr(Campaigns, "write_batch", write_batch)
    main = threading.main_thread().ident
    assert main is not None and threading.current_thread().ident == main

    def user() -> None:
        writing.wait(30)
        time.sleep(0.3)  # the run waits for batch 2's check, queued behind the write
        signal.pthread_kill(main, signal.SIGINT)
        time.sleep(0.5)  # the run waits for its store thread to end
        signal.pthread_kill(main, signal.SIGINT)
        resume_checked.wait(5)
        go.set()

    helper = threading.Thread(target=user)
    try:
        wf = _workflow(wb)
        run_id = start(wb, wf)
        if owner:
            assert Campaigns(wb.store.backend).acquire(wf["id"], run_id, owner, 600) is None
        helper.start()
        with pytest.raises(KeyboardInterrupt):
            wb.workflows.process(
                wf["id"], run_id, progress=False, now=DAY, batch_size=1, owner=owner
            )
        # not `is_alive()`: an interrupted join marks a running thread as ended
        alive_after_run = any(t.name == NAME for t in threading.enumerate())
        src(db, "UPDATE members SET mobile = '010-7777-0001' WHERE member_no = 1")
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=2, owner=owner)
        helper.join()
        _assert_nothing_left(pg_store, wb)
    finally:
        go.set()
        wb.close()
    _assert_exactly_once(pg_store, run_id)
    assert not alive_after_run  # no step of the run outlives its call


# -- a takeover while a write is queued: nothing more is written by the old process -----------
@pytest.mark.parametrize("policy", POLICIES)
def test_a_takeover_between_batches_stops_the_run_and_writes_nothing_after_it(
    source: Callable[..., str], pg_store: str, monkeypatch: pytest.MonkeyPatch, policy: Any
) -> None:
    from hybridwb.workflows.process import RunTakenOver

    wb = workbench(_members(source), pg_store, MAPPING)
    campaigns = Campaigns(wb.store.backend)
    real = Campaigns.seen
    calls = {"n": 0}

    def seen(self: Campaigns, *a: Any, **kw: Any) -> Any:
        calls["n"] += 1
        out = real(self, *a, **kw)
        if calls["n"] == 2:  # another process takes the run over in batch 2's check
            database = pg_store.rsplit("/", 1)[1]
            with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={database}") as admin:
                admin.execute("UPDATE run_locks SET owner = 'other:2'")
        return out

    monkeypatch.setattr(Campaigns, "seen", seen)
    try:
        wf = _workflow(wb, policy)
        run_id = start(wb, wf)
        assert campaigns.acquire(wf["id"], run_id, "me:1", 600) is None
        with pytest.raises(RunTakenOver):
            wb.workflows.process(
                wf["id"], run_id, progress=False, now=DAY, batch_size=3, owner="me:1"
            )
        _assert_nothing_left(pg_store, wb)
        recs, sk, _ = _by_run(pg_store, run_id)
        assert len(recs) + len(sk) == 3  # batch 1 only
        wb.workflows.process(
            wf["id"], run_id, progress=False, now=DAY, batch_size=3, owner="other:2"
        )
    finally:
        wb.close()
    _assert_exactly_once(pg_store, run_id)
    assert len(_by_run(pg_store, run_id)[0]) == PHONES


# -- a SQLite store: the steps run in the run's thread; an interrupt in a write ---------------
def test_an_interrupt_after_a_write_on_a_sqlite_store_writes_no_later_batch(
    source: Callable[..., str], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = f"sqlite:///{tmp_path / 'store.db'}"
    wb = workbench(_members(source), store, MAPPING)
    real = Campaigns.write_batch
    calls = {"n": 0}

    def write_batch(self: Campaigns, *a: Any, **kw: Any) -> Any:
        calls["n"] += 1
        out = real(self, *a, **kw)
        if calls["n"] == 2:
            raise KeyboardInterrupt  # after batch 2 committed
        return out

    monkeypatch.setattr(Campaigns, "write_batch", write_batch)
    try:
        wf = _workflow(wb, {"frequency_cap": {"messages": 1, "days": 7}})
        run_id = start(wb, wf)
        with pytest.raises(KeyboardInterrupt):
            wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=3)
        assert calls["n"] == 2
        monkeypatch.setattr(Campaigns, "write_batch", real)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=3)
    finally:
        wb.close()
    rid = uuid.UUID(str(run_id)).hex
    recs = oracle(store, "SELECT target_key, recipient FROM send_records WHERE run_id = %s", (rid,))
    sk = oracle(store, "SELECT target_key FROM run_skips WHERE run_id = %s", (rid,))
    assert len(recs) == len({r for _, r in recs}) == PHONES
    assert len(recs) + len(sk) == len({k for k, _ in recs} | {k for (k,) in sk}) == N


# -- a SQLite store: Ctrl-C lands in a step run in the run's thread; the run stops there -------
def _ends_on_file(store: str, run_id: Any) -> tuple[dict[str, int], dict[str, int], list[str]]:
    """(records per target, exclusions per target, frozen keys in frozen order), read
    directly from the SQLite file."""
    rid = uuid.UUID(str(run_id)).hex
    recs = oracle(
        store, "SELECT target_key, count(*) FROM send_records WHERE run_id = %s GROUP BY 1", (rid,)
    )
    sk = oracle(
        store, "SELECT target_key, count(*) FROM run_skips WHERE run_id = %s GROUP BY 1", (rid,)
    )
    frozen = oracle(
        store, "SELECT target_key FROM run_targets WHERE run_id = %s ORDER BY seq", (rid,)
    )
    return {k: n for k, n in recs}, {k: n for k, n in sk}, [k for (k,) in frozen]


@pytest.mark.usefixtures("sigint_interrupts")
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("at", ["check", "write before commit", "write after commit"])
def test_an_interrupt_in_a_sqlite_stores_step_stops_the_run_there_and_a_resume_ends_it(
    source: Callable[..., str],
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    policy: dict[str, Any] | None,
    at: str,
) -> None:
    """A SQLite store's steps run in the run's own thread, so Ctrl-C lands in them: here a
    real SIGINT in batch 2's history check, in its write after the rows went in and before
    the commit, or right after the commit. The run raises KeyboardInterrupt from there:
    nothing more is read, rendered, checked, paused for or written (batch 3 is not begun),
    the file holds exactly the batches committed before the interrupt (batch 2 rolled back
    unless it committed), the cap's file lock is free, and a resume ends every target with
    one record or one exclusion, each phone messaged once."""
    import fcntl
    import signal

    from hybridwb.workflows import audience

    path = tmp_path / "store.db"
    store = f"sqlite:///{path}"
    wb = workbench(_members(source), store, MAPPING)
    real_seen, real_write = Campaigns.seen, Campaigns.write_batch
    real_insert, real_pending = Campaigns._insert_batch, Campaigns.pending
    real_fetch, real_render = audience.fetch, rendering.render_ahead
    calls = {"seen": 0, "write": 0, "insert": 0}
    state: dict[str, Any] = {"armed": True, "run_id": None}
    after: list[str] = []  # what the run did after the interrupt was raised
    when: list[int] = []  # records + exclusions on the file when it was raised

    def interrupt() -> None:
        recs, sk, _ = _ends_on_file(store, state["run_id"])
        when.append(len(recs) + len(sk))
        state["armed"] = False
        signal.raise_signal(signal.SIGINT)  # what Ctrl-C does: raised here, at once
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

    def insert(*a: Any, **kw: Any) -> None:
        real_insert(*a, **kw)
        calls["insert"] += 1
        if state["armed"] and at == "write before commit" and calls["insert"] == 2:
            interrupt()

    def write_batch(self: Campaigns, *a: Any, **kw: Any) -> Any:
        calls["write"] += 1
        out = real_write(self, *a, **kw)
        if state["armed"] and at == "write after commit" and calls["write"] == 2:
            interrupt()
        return out

    monkeypatch.setattr(Campaigns, "seen", noting("check", seen))
    monkeypatch.setattr(Campaigns, "_insert_batch", staticmethod(insert))
    monkeypatch.setattr(Campaigns, "write_batch", noting("write", write_batch))
    monkeypatch.setattr(Campaigns, "pending", noting("store read", real_pending))
    monkeypatch.setattr(audience, "fetch", noting("source read", real_fetch))
    monkeypatch.setattr(rendering, "render_ahead", noting("render", real_render))
    monkeypatch.setattr(process_module.time, "sleep", noting("pause", lambda s: None))
    try:
        wf = _workflow(wb, policy)
        run_id = state["run_id"] = start(wb, wf)
        with pytest.raises(KeyboardInterrupt):
            wb.workflows.process(
                wf["id"], run_id, progress=False, now=DAY, batch_size=3, batch_pause=0.01
            )
        assert after == []  # the interrupt surfaced in the step it interrupted
        recs, sk, frozen = _ends_on_file(store, run_id)
        written = 6 if at == "write after commit" else 3  # batch 2 only if it committed
        assert when == [written]
        assert set(recs) | set(sk) == set(frozen[:written]) and not set(recs) & set(sk)
        if policy is not None:  # the cap's lock is free: another process takes it at once
            with open(f"{path}.recipients.lock", "a+b") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=3)
    finally:
        wb.close()
    recs, sk, frozen = _ends_on_file(store, run_id)
    assert all(n == 1 for n in recs.values()) and all(n == 1 for n in sk.values()), (recs, sk)
    assert not set(recs) & set(sk) and set(recs) | set(sk) == set(frozen) and len(frozen) == N
    rid = uuid.UUID(str(run_id)).hex
    phones = oracle(store, "SELECT recipient FROM send_records WHERE run_id = %s", (rid,))
    assert len(phones) == len(set(phones)) == PHONES
