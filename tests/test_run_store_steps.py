# ruff: noqa: F811  (the fixtures imported from round 2 are test parameters here)
"""A run's store steps (each batch's check, then its write) run in a thread of their own
(`writer.StoreSteps`), in the order given, while the run renders the next batch ahead.

The mechanism on its own (order, one thread, a failure stops every later step, what is
left open is rolled back), then real runs on a MariaDB source and a PostgreSQL store: a
batch is checked only after the batch before it committed, so a recipient shared across
batches is messaged once; rendering ahead never raises an error a run would not have
raised, and never decides anything (the store's history still does).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from hybridwb.errors import HybridwbError, StoreError
from hybridwb.templating.service import TemplateService
from hybridwb.workflows import policies, writer
from tests.test_attack_once_round2 import (  # noqa: F401  (fixtures: source, pg_store)
    DAY,
    INFO,
    oracle,
    people,
    pg_store,
    records,
    skips,
    source,
    start,
    workbench,
)

NAME = "hybridwb-store"


def _threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == NAME]


# -- the mechanism -----------------------------------------------------------------------------
def test_steps_run_in_the_order_given_on_one_thread_of_their_own() -> None:
    done: list[tuple[int, str]] = []
    with writer.StoreSteps(thread=True) as steps:
        futures = [
            steps.submit(lambda i=i: done.append((i, threading.current_thread().name)) or i)
            for i in range(50)
        ]
        assert [f.result() for f in futures] == list(range(50))
    assert done == [(i, NAME) for i in range(50)]
    assert not _threads()


def test_without_a_thread_each_step_runs_when_given() -> None:
    done: list[str] = []
    with writer.StoreSteps(thread=False) as steps:
        first = steps.submit(lambda: done.append(threading.current_thread().name))
        assert first.done() and done == [threading.current_thread().name]
    assert not _threads()


@pytest.mark.parametrize("thread", [True, False])
def test_a_failed_step_fails_every_later_step_unrun_with_its_error(thread: bool) -> None:
    ran: list[int] = []
    boom = StoreError("The platform store failed: boom. Try again.")

    def fail() -> None:
        ran.append(1)
        raise boom

    with writer.StoreSteps(thread=thread) as steps:
        a = steps.submit(lambda: ran.append(0))
        b = steps.submit(fail)
        c = steps.submit(lambda: ran.append(2))  # the next batch's check: never run
        d = steps.submit(lambda: ran.append(3))
        assert a.result() is None
        for later in (b, c, d):
            with pytest.raises(StoreError) as info:
                later.result()
            assert info.value is boom
    assert ran == [0, 1]
    assert not _threads()


def test_without_a_thread_an_interrupt_in_a_step_is_raised_by_submit_at_once() -> None:
    """Ctrl-C lands in a step run in the caller's thread (a SQLite store): `submit` raises
    it there, as the caller's own code would, so the run does not go on to its next batch;
    what the step holds is released as after an error. A step's error (an `Exception`)
    stays its future's: the caller raises it from there, as with the thread."""
    ran: list[int] = []
    released: list[Any] = []

    def interrupted() -> None:
        steps.held.push(lambda kind, *_: released.append(kind))  # a cap lock it took
        ran.append(1)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), writer.StoreSteps(thread=False) as steps:
        steps.submit(lambda: ran.append(0))
        steps.submit(interrupted)
        ran.append(2)  # the run's next line (the next batch): never reached
    assert ran == [0, 1]
    assert released == [KeyboardInterrupt]


@pytest.mark.usefixtures("sigint_interrupts")
def test_an_interrupted_close_waits_for_the_running_step_and_runs_no_step_after_it() -> None:
    """An interrupt (again) while `close` waits for the thread: the step running (a
    batch's write) ends before `close` raises the interrupt, so nothing of the run is
    written after its call ended; the steps not begun never run. A wait on
    `Thread.join` would end at the interrupt (and mark the running thread as ended)."""
    import signal
    import time

    started, go = threading.Event(), threading.Event()
    ran: list[int] = []
    main = threading.main_thread().ident
    assert main is not None and threading.current_thread().ident == main

    def slow() -> None:
        started.set()
        go.wait(10)
        ran.append(1)

    def user() -> None:
        started.wait(10)
        time.sleep(0.2)  # `close` waits for the thread
        signal.pthread_kill(main, signal.SIGINT)
        time.sleep(0.3)
        go.set()

    steps = writer.StoreSteps(thread=True)
    steps.submit(slow)
    steps.submit(lambda: ran.append(2))
    helper = threading.Thread(target=user)
    helper.start()
    with pytest.raises(KeyboardInterrupt):
        steps.close()
    assert ran == [1]
    assert not [t for t in threading.enumerate() if t.name == NAME]
    helper.join()


@pytest.mark.postgres
@pytest.mark.parametrize("thread", [True, False])
def test_what_a_step_leaves_open_is_rolled_back_at_close_and_what_a_step_closes_commits(
    pg_store: str, thread: bool
) -> None:
    """A check holds the cap lock's transaction open for its batch's write, which commits
    it. A run that stops between the two (an error while rendering, an interrupt) must
    not commit what that transaction did: it ends as after an error, in its own thread."""
    engine = sa.create_engine(pg_store)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE steps_probe (n int)")
    threads: list[str] = []

    def open_and_insert(n: int) -> Any:
        conn = steps.held.enter_context(engine.begin())
        conn.exec_driver_sql(f"INSERT INTO steps_probe VALUES ({n})")
        return conn

    def close() -> None:
        threads.append(threading.current_thread().name)
        steps.held.close()

    try:
        with writer.StoreSteps(thread=thread) as steps:
            steps.submit(lambda: open_and_insert(1)).result()
            steps.submit(close).result()  # a write: committed with the lock's release
            steps.submit(lambda: open_and_insert(2)).result()  # checked, never written
        assert sorted(n for (n,) in oracle(pg_store, "SELECT n FROM steps_probe")) == [1]
        assert threads == [NAME if thread else threading.current_thread().name]
        assert engine.pool.checkedout() == 0
    finally:
        engine.dispose()
    assert not _threads()


# -- real runs: MariaDB source, PostgreSQL store ------------------------------------------------
def _shared_phone(source: Callable[..., str], pg_store: str, n: int) -> Any:
    """`n` members, keys 1..n; members 1..n share one phone (keys differ)."""
    db = source(
        "CREATE TABLE members (member_no INT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(40))",
        rows={"members": [(i, f"회원{i}", "010-5555-0001") for i in range(1, n + 1)]},
    )
    return workbench(db, pg_store, {"members": {**people("number", "member_no"), "audience": True}})


def _workflow(wb: Any, policy: dict[str, Any] | None = None, content: str = INFO) -> Any:
    return wb.workflows.create(
        f"steps-{uuid.uuid4().hex[:6]}",
        target_config={"table": "members"},
        message_config={"content": content, **({"policy": policy} if policy else {})},
    )


@pytest.mark.mysql
@pytest.mark.postgres
@pytest.mark.parametrize(
    "policy",
    [None, {"frequency_cap": {"messages": 1, "days": 7}}],
    ids=["no cap", "cap of one"],
)
def test_a_recipient_shared_across_batches_is_messaged_once(
    source: Callable[..., str], pg_store: str, policy: dict[str, Any] | None
) -> None:
    """Six keys with one phone, one per batch: each batch's check must see the batch
    before it committed (the duplicate is a record of this run), or every batch would
    message the phone again. The oracle is the store's rows, read directly."""
    wb = _shared_phone(source, pg_store, 6)
    try:
        wf = _workflow(wb, policy)
        run_id = start(wb, wf)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=1)
    finally:
        wb.close()
    assert [k for k, _ in records(pg_store, run_id)] == ["1"]
    assert skips(pg_store, run_id) == {policies.DUPLICATE: 5}
    assert not _threads()


@pytest.mark.mysql
@pytest.mark.postgres
def test_each_batch_is_checked_after_the_batch_before_it_committed(
    source: Callable[..., str], pg_store: str
) -> None:
    """The store's statements, as the server got them: per batch the cap lock, the
    history check, the records; the next batch's lock only after the commit."""
    wb = _shared_phone(source, pg_store, 7)
    order: list[tuple[str, int]] = []  # (what, server process of its connection)

    def pid(conn: Any) -> int:
        return int(conn.connection.dbapi_connection.info.backend_pid)

    def statement(conn: Any, cursor: Any, text: str, *args: Any) -> None:
        if "pg_advisory_xact_lock" in text:
            order.append(("lock", pid(conn)))
        elif "unnest" in text:
            order.append(("check", pid(conn)))

    engine = wb.store.backend.engine
    sa.event.listen(engine, "before_cursor_execute", statement)
    sa.event.listen(engine, "commit", lambda conn: order.append(("commit", pid(conn))))
    try:
        wf = _workflow(wb, {"frequency_cap": {"messages": 3, "days": 7}})
        run_id = start(wb, wf)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=2)
    finally:
        wb.close()
    locks = [i for i, (what, _) in enumerate(order) if what == "lock"]
    assert len(locks) == 4, order  # batches of 2, 2, 2, 1
    for n, at in enumerate(locks):
        holder = order[at][1]
        mine = [what for what, p in order[at + 1 :] if p == holder]
        assert mine[:2] == ["check", "commit"], order  # checked, then committed on the lock
        if n + 1 < len(locks):  # the lock's commit comes before the next batch's lock
            done = next(i for i in range(at + 1, len(order)) if order[i] == ("commit", holder))
            assert done < locks[n + 1], order
    assert len(records(pg_store, run_id)) == 1


def _raising_render(monkeypatch: pytest.MonkeyPatch, bad: set[str]) -> None:
    """Rendering the row of a member named in `bad` raises a template error (what a
    filter failing on a value does): the run's error, if that message is rendered."""
    original = TemplateService.renderer

    def renderer(self: TemplateService, *args: Any, **kw: Any) -> Any:
        one = original(self, *args, **kw)

        def render(row: dict[str, Any], related: Any = None) -> Any:
            if row.get("name") in bad:
                raise HybridwbError("The template failed on this row's value.")
            return one(row, related)

        return render

    monkeypatch.setattr(TemplateService, "renderer", renderer)


@pytest.mark.mysql
@pytest.mark.postgres
def test_a_render_error_of_a_message_never_sent_is_never_raised(
    source: Callable[..., str], pg_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Member 2 shares member 1's phone: it is a duplicate, never rendered by a run that
    decides first. Rendering ahead renders it before the history is read, and its error
    must stay unraised; the run completes as it did."""
    wb = _shared_phone(source, pg_store, 2)
    _raising_render(monkeypatch, {"회원2"})
    try:
        wf = _workflow(wb)
        run_id = start(wb, wf)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=5)
    finally:
        wb.close()
    assert [k for k, _ in records(pg_store, run_id)] == ["1"]
    assert skips(pg_store, run_id) == {policies.DUPLICATE: 1}


@pytest.mark.mysql
@pytest.mark.postgres
def test_a_render_error_of_a_message_to_send_is_the_runs_error_and_nothing_of_its_batch_is_written(
    source: Callable[..., str], pg_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = source(
        "CREATE TABLE members (member_no INT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(40))",
        rows={"members": [(i, f"회원{i}", f"010-5555-{i:04d}") for i in range(1, 7)]},
    )
    wb = workbench(db, pg_store, {"members": {**people("number", "member_no"), "audience": True}})
    _raising_render(monkeypatch, {"회원4"})
    try:
        wf = _workflow(wb, {"frequency_cap": {"messages": 1, "days": 7}})
        run_id = start(wb, wf)
        with pytest.raises(HybridwbError, match="^The template failed on this row's value.$"):
            wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=3)
        assert wb.store.backend.engine.pool.checkedout() == 0
    finally:
        wb.close()
    assert sorted(k for k, _ in records(pg_store, run_id)) == ["1", "2", "3"]
    # the second batch's check took the cap lock: it was rolled back, not left held
    assert oracle(
        pg_store,
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "
        "(SELECT oid FROM pg_database WHERE datname = current_database())",
    ) == [(0,)]
    assert not _threads()


@pytest.mark.mysql
@pytest.mark.postgres
def test_related_rows_unreadable_while_rendering_ahead_are_read_again_when_rendering(
    source: Callable[..., str], pg_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed read of the related rows (a source hiccup) is not the run's error: the
    rows are read again (since `snap58` in the batch's own snapshot, `batches.read_related`),
    and every target is sent."""
    wb = _shared_phone(source, pg_store, 1)
    original = TemplateService.related
    calls: list[int] = []

    def related(self: TemplateService, report: Any, rows: list[dict[str, Any]]) -> Any:
        calls.append(len(rows))
        if len(calls) == 1:
            raise StoreError("The source failed: gone away. Try again.")
        return original(self, report, rows)

    monkeypatch.setattr(TemplateService, "related", related)
    try:
        wf = _workflow(wb)
        run_id = start(wb, wf)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=5)
    finally:
        wb.close()
    assert len(calls) >= 2
    assert [k for k, _ in records(pg_store, run_id)] == ["1"]
