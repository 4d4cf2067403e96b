# ruff: noqa: F811  (the fixtures imported from round 2 are test parameters here)
"""A run reads its next batch in a worker thread (`prefetch.ahead`) while it writes this one.

The mechanism on its own (order, one batch ahead, errors, stopping), then a real run on a
MariaDB source and a PostgreSQL store: the reads do happen in the worker, an error there
is the run's one-line error, and a run that fails or dies mid-way leaves no thread and no
checked-out connection behind and is resumed to exactly the frozen set, once each.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hybridwb.errors import HybridwbError, QueryError, StoreError
from hybridwb.platform.campaigns import Campaigns
from hybridwb.workflows import audience, prefetch
from tests.test_attack_once_round2 import (  # noqa: F401  (fixtures: source, pg_store)
    DAY,
    INFO,
    people,
    pg_store,
    records,
    skips,
    source,
    start,
    workbench,
)

NAME = "hybridwb-prefetch"


def _workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == NAME]


class Producer:
    """An iterator that notes where and how far it ran, and whether it was closed."""

    def __init__(self, n: int, fail_at: int | None = None, delay: float = 0.0) -> None:
        self.n, self.fail_at, self.delay = n, fail_at, delay
        self.made = 0
        self.threads: set[str] = set()
        self.closed_in: str | None = None

    def __iter__(self) -> Iterator[int]:
        return self.gen()

    def gen(self) -> Iterator[int]:
        try:
            for i in range(self.n):
                self.threads.add(threading.current_thread().name)
                if self.delay:
                    time.sleep(self.delay)
                if i == self.fail_at:
                    raise StoreError("The platform store failed: boom. Try again.")
                self.made += 1
                yield i
        finally:
            self.closed_in = threading.current_thread().name


# -- the mechanism -----------------------------------------------------------------------------
def test_items_come_in_order_from_a_worker_thread() -> None:
    p = Producer(7)
    with prefetch.ahead(iter(p)) as items:
        assert list(items) == list(range(7))
    assert p.threads == {NAME}
    assert not _workers()


def test_without_a_thread_the_items_are_made_here() -> None:
    p = Producer(3)
    with prefetch.ahead(iter(p), thread=False) as items:
        assert list(items) == [0, 1, 2]
    assert p.threads == {threading.current_thread().name}


def test_at_most_one_batch_is_read_ahead() -> None:
    p = Producer(10)
    with prefetch.ahead(iter(p)) as items:
        for used, _ in enumerate(items, 1):
            time.sleep(0.02)  # time for the worker to run further, if it would
            assert p.made <= used + 1
    assert not _workers()


def test_an_error_in_the_worker_is_raised_here_as_it_was() -> None:
    p = Producer(5, fail_at=2)
    got = []
    failed = pytest.raises(StoreError, match="^The platform store failed: boom. Try again.$")
    with failed as info, prefetch.ahead(iter(p)) as items:
        got.extend(items)
    assert got == [0, 1]
    assert "\n" not in str(info.value)
    assert not _workers()


def test_a_failure_here_stops_the_worker_and_closes_its_iterator_there() -> None:
    p = Producer(100, delay=0.01)
    with pytest.raises(KeyboardInterrupt), prefetch.ahead(iter(p)) as items:
        for i in items:
            if i == 3:
                raise KeyboardInterrupt
    assert not _workers()
    assert p.closed_in == NAME  # the generator's finally ran in its own thread
    assert p.made <= 5


def test_leaving_early_while_the_worker_is_in_a_slow_read_waits_for_it() -> None:
    p = Producer(5, delay=0.3)
    with prefetch.ahead(iter(p)) as items:
        assert next(items) == 0
    assert not _workers()
    assert p.closed_in == NAME


# -- a real run: MariaDB source, PostgreSQL store ----------------------------------------------
N = 23  # batches of 5: the fifth is short


def _members(source: Callable[..., str], pg_store: str) -> Any:
    db = source(
        "CREATE TABLE members (member_no INT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(40))",
        rows={"members": [(i, f"회원{i}", f"010-{3000 + i:04d}-{i:04d}") for i in range(1, N + 1)]},
    )
    return workbench(db, pg_store, {"members": {**people("number", "member_no"), "audience": True}})


def _new_run(wb: Any) -> tuple[Any, Any]:
    wf = wb.workflows.create(
        f"ahead-{uuid.uuid4().hex[:6]}",
        target_config={"table": "members"},
        message_config={"content": INFO},
    )
    return wf, start(wb, wf)


def _nothing_left(wb: Any) -> None:
    assert not _workers()
    assert wb.store.backend.engine.pool.checkedout() == 0
    # the source keeps its last read's connection aside for the next (source/checkout.py)
    assert wb.source.engine.pool.checkedout() == len(wb.source._parking._parked)


def _exactly_once(pg_store: str, run_id: Any) -> None:
    got = records(pg_store, run_id)
    assert sorted(int(k) for k, _ in got) == list(range(1, N + 1))
    assert skips(pg_store, run_id) == {}


@pytest.mark.mysql
@pytest.mark.postgres
def test_a_run_reads_its_batches_in_the_worker(
    source: Callable[..., str], pg_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    wb = _members(source, pg_store)
    where: list[str] = []
    original = audience.fetch

    def fetch(*args: Any, **kw: Any) -> Any:
        where.append(threading.current_thread().name)
        return original(*args, **kw)

    monkeypatch.setattr(audience, "fetch", fetch)
    try:
        wf, run_id = _new_run(wb)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=5)
        _nothing_left(wb)
    finally:
        wb.close()
    assert where == [NAME] * 5
    _exactly_once(pg_store, run_id)


@pytest.mark.mysql
@pytest.mark.postgres
def test_the_history_check_is_read_in_the_cap_locks_transaction(
    source: Callable[..., str], pg_store: str
) -> None:
    """Under a frequency cap, each batch's legacy check and history sums are read on the
    connection holding the cap lock, inside its transaction, after the lock was taken:
    as of the lock, with no connection of their own to check out, ping and roll back."""
    from sqlalchemy import event

    wb = _members(source, pg_store)
    seen: list[tuple[tuple[int, int], str]] = []  # ((server process, transaction), kind)

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        kind = (
            "lock"
            if "pg_advisory_xact_lock" in statement
            else "legacy"
            if "~" in statement
            else "history"
            if "unnest" in statement
            else None
        )
        if kind:
            pid = conn.connection.dbapi_connection.info.backend_pid
            seen.append(((pid, id(conn.get_transaction())), kind))

    engine = wb.store.backend.engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        wf = wb.workflows.create(
            f"cap-{uuid.uuid4().hex[:6]}",
            target_config={"table": "members"},
            message_config={
                "content": INFO,
                "policy": {"frequency_cap": {"messages": 3, "days": 7}},
            },
        )
        run_id = start(wb, wf)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=5)
        _nothing_left(wb)
    finally:
        event.remove(engine, "before_cursor_execute", note)
        wb.close()
    batches = [seen[i : i + 3] for i in range(0, len(seen), 3)]
    assert len(batches) == 5 and len(seen) == 15
    for (lock_pid, a), (legacy_pid, b), (history_pid, c) in batches:
        assert (a, b, c) == ("lock", "legacy", "history")
        assert lock_pid == legacy_pid == history_pid
    _exactly_once(pg_store, run_id)


@pytest.mark.mysql
@pytest.mark.postgres
def test_a_source_error_in_the_worker_is_the_runs_one_line_error_and_a_resume_completes(
    source: Callable[..., str], pg_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    wb = _members(source, pg_store)
    original = audience.fetch
    calls: list[int] = []

    def failing(*args: Any, **kw: Any) -> Any:
        calls.append(1)
        if len(calls) == 3:
            raise QueryError("The source refused the read: gone away. Try again.")
        return original(*args, **kw)

    try:
        wf, run_id = _new_run(wb)
        monkeypatch.setattr(audience, "fetch", failing)
        with pytest.raises(HybridwbError, match="^The source refused the read") as info:
            wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=5)
        assert isinstance(info.value, QueryError) and "\n" not in str(info.value)
        _nothing_left(wb)
        assert len(records(pg_store, run_id)) == 10  # the two batches read before it
        monkeypatch.setattr(audience, "fetch", original)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=5)
        _nothing_left(wb)
    finally:
        wb.close()
    _exactly_once(pg_store, run_id)


@pytest.mark.mysql
@pytest.mark.postgres
@pytest.mark.parametrize("crash_after_write", [True, False])
def test_a_run_dying_mid_batch_leaves_no_worker_and_resumes_to_exactly_once(
    source: Callable[..., str],
    pg_store: str,
    monkeypatch: pytest.MonkeyPatch,
    crash_after_write: bool,
) -> None:
    wb = _members(source, pg_store)
    original = Campaigns.write_batch
    calls: list[int] = []

    def dying(self: Any, *args: Any, **kw: Any) -> bool:
        calls.append(1)
        if len(calls) == 3:
            if crash_after_write:
                original(self, *args, **kw)
            raise KeyboardInterrupt("the process dies")
        return original(self, *args, **kw)

    try:
        wf, run_id = _new_run(wb)
        monkeypatch.setattr(Campaigns, "write_batch", dying)
        with pytest.raises(KeyboardInterrupt):
            wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=5)
        _nothing_left(wb)
        assert len(records(pg_store, run_id)) == (15 if crash_after_write else 10)
        monkeypatch.setattr(Campaigns, "write_batch", original)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=5)
        _nothing_left(wb)
    finally:
        wb.close()
    _exactly_once(pg_store, run_id)


def test_the_switch_interval_is_lowered_while_the_worker_runs_and_restored_after() -> None:
    before = sys.getswitchinterval()
    with prefetch.ahead(iter(Producer(2))) as items:
        assert sys.getswitchinterval() == min(before, prefetch.SWITCH)
        list(items)
    assert sys.getswitchinterval() == before
    with pytest.raises(KeyboardInterrupt), prefetch.ahead(iter(Producer(2))):
        raise KeyboardInterrupt
    assert sys.getswitchinterval() == before
