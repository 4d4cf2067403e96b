# ruff: noqa: F811  (the fixtures imported from round 2 are test parameters here)
"""Attack round 19 on "a workflow run messages exactly the intended customers, once": its
frozen target set is whole or none, and each frozen target ends with exactly one send
record or one exclusion with its reason, across any crash, fault and resume.

The newest code under attack: the freeze's pages read and turned into COPY text in the
prefetch worker (`Campaigns.frozen_pages`) while the run's thread COPies the page before;
batch rows streamed (`StreamCursor.fetchmany`); `seen` with JIT off per transaction.

Real MariaDB source, real PostgreSQL store; the oracle is direct SQL on both (pymysql as
root, psycopg), never what hybridwb reports.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import random
import string
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from hybridwb.errors import HybridwbError, InternalError, ValidationError
from hybridwb.platform.campaigns import Campaigns
from hybridwb.source.source import READ_ATTEMPTS
from hybridwb.workflows.process import RunTakenOver
from tests.conftest import _admin
from tests.test_attack_once_round2 import (  # noqa: F401  (fixtures: source, pg_store)
    DAY,
    INFO,
    oracle,
    people,
    pg_store,
    source,
    src,
    start,
    workbench,
)
from tests.test_attack_prefetch import NAME as PREFETCH
from tests.test_attack_prefetch import _members, _new_run, _nothing_left, _take_over

pytestmark = [pytest.mark.mysql, pytest.mark.postgres]


# -- oracles: direct SQL only ------------------------------------------------------------
def _ids(value: Any) -> tuple[str, str]:
    """An id as PostgreSQL and SQLite store it (with dashes, hex): `IN` either."""
    return str(value), uuid.UUID(str(value)).hex


def _run_rows(store: str, table: str, run_id: Any) -> list[str]:
    return sorted(
        str(k)
        for (k,) in oracle(
            store, f"SELECT target_key FROM {table} WHERE run_id IN (%s, %s)", _ids(run_id)
        )
    )


def _undone(store: str, run_id: Any) -> int:
    """Frozen targets of the run with neither a send record nor an exclusion."""
    return int(
        oracle(
            store,
            "SELECT count(*) FROM run_targets t WHERE t.run_id IN (%s, %s)"
            " AND NOT EXISTS (SELECT 1 FROM send_records r"
            "  WHERE r.run_id = t.run_id AND r.target_key = t.target_key)"
            " AND NOT EXISTS (SELECT 1 FROM run_skips s"
            "  WHERE s.run_id = t.run_id AND s.target_key = t.target_key)",
            _ids(run_id),
        )[0][0]
    )


def _unfrozen_done(pg_store: str, run_id: Any) -> int:
    """Send records and exclusions of the run whose target is not in its frozen set."""
    return int(
        oracle(
            pg_store,
            "SELECT (SELECT count(*) FROM send_records r WHERE r.run_id = %s AND NOT EXISTS"
            "  (SELECT 1 FROM run_targets t WHERE t.run_id = r.run_id"
            "   AND t.target_key = r.target_key))"
            " + (SELECT count(*) FROM run_skips s WHERE s.run_id = %s AND NOT EXISTS"
            "  (SELECT 1 FROM run_targets t WHERE t.run_id = s.run_id"
            "   AND t.target_key = s.target_key))",
            (str(run_id), str(run_id)),
        )[0][0]
    )


def _source_keys(db: str) -> list[str]:
    return sorted(str(k) for (k,) in src(db, "SELECT member_no FROM members"))


def _in_thread(fn: Callable[[], Any]) -> BaseException | None:
    """`fn()` in a thread of its own (another process's run), joined; what it raised."""
    raised: list[BaseException] = []

    def work() -> None:
        try:
            fn()
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(60)
    assert not thread.is_alive()
    return raised[0] if raised else None


class _Died(Exception):
    """The other process dies here."""


# -- 1. a run's lock taken over while its freeze is under way -----------------------------
# The freeze of a large set takes minutes; a process stopped that long (SIGSTOP, a laptop
# lid, a VM paused) stops beating its lock, and a contender takes the stale lock over and
# processes the same run. The old process, when it wakes, must not write into the new
# owner's frozen set: not a page it read before, not the mark, not the clear.
KW = {"progress": False, "now": DAY, "batch_size": 5}


def test_a_page_copied_after_a_takeover_does_not_join_the_new_owners_frozen_set(
    source: Callable[..., str], pg_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A has read its second page (customers 6-10) when it stops; meanwhile those five
    leave the source, B takes the lock over and completes the run (five targets, five
    records). A wakes and COPies its stale page: it must write nothing (it did: five
    frozen targets of the completed run with neither a record nor an exclusion, people
    who had left, and a frozen count of ten)."""
    wb, db = _members(source, pg_store, 10)
    wb2 = workbench(db, pg_store, {})
    main = threading.current_thread()
    real = Campaigns._copy_fresh
    copies: list[int] = []
    wf, run_id = _new_run(wb)

    def copy_fresh(self: Campaigns, tbl: Any, page: Any, *a: Any) -> None:
        if threading.current_thread() is main:
            copies.append(page.first_seq)
            if len(copies) == 2:  # A holds its second page, read before B's run
                src(db, "DELETE FROM members WHERE member_no > 5")
                _take_over(pg_store, wf["id"], run_id, "new:2")
                assert (
                    _in_thread(lambda: wb2.workflows.process(wf["id"], run_id, owner="new:2", **KW))
                    is None
                )
        real(self, tbl, page, *a)

    monkeypatch.setattr(Campaigns, "_copy_fresh", copy_fresh)
    try:
        with pytest.raises(RunTakenOver):
            wb.workflows.process(wf["id"], run_id, **KW)
    finally:
        wb.close()
        wb2.close()
    assert copies == [0, 5]
    assert _run_rows(pg_store, "run_targets", run_id) == _source_keys(db) == list("12345")
    assert _run_rows(pg_store, "send_records", run_id) == list("12345")
    assert _undone(pg_store, run_id) == 0
    assert oracle(
        pg_store, "SELECT frozen_count FROM run_state WHERE run_id = %s", (str(run_id),)
    ) == [(5,)]


def test_a_page_inserted_after_a_takeover_on_a_sqlite_store_writes_nothing(
    source: Callable[..., str], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page case on a SQLite store (a page is written by `_insert_page`, in the run's
    thread, no worker): after B took the lock over and completed the run, A's page 2 is
    not written; the frozen set is B's."""
    store = f"sqlite:///{tmp_path / 'store.db'}"
    wb, db = _members(source, store, 10)
    wb2 = workbench(db, store, {})
    main = threading.current_thread()
    real = Campaigns._insert_page
    pages: list[int] = []
    wf, run_id = _new_run(wb)

    def insert_page(self: Campaigns, *a: Any) -> None:
        if threading.current_thread() is main:
            pages.append(1)
            if len(pages) == 2:
                src(db, "DELETE FROM members WHERE member_no > 5")
                oracle(
                    store,
                    "UPDATE run_locks SET owner = %s WHERE workflow_id IN (%s, %s)",
                    ("new:2", *_ids(wf["id"])),
                )
                process_b = functools.partial(
                    wb2.workflows.process, wf["id"], run_id, owner="new:2", **KW
                )
                assert _in_thread(process_b) is None
        real(self, *a)

    monkeypatch.setattr(Campaigns, "_insert_page", insert_page)
    try:
        with pytest.raises(RunTakenOver):
            wb.workflows.process(wf["id"], run_id, **KW)
    finally:
        wb.close()
        wb2.close()
    assert _run_rows(store, "run_targets", run_id) == _source_keys(db) == list("12345")
    assert _run_rows(store, "send_records", run_id) == list("12345")
    assert _undone(store, run_id) == 0


def test_the_frozen_mark_after_a_takeover_does_not_mark_the_new_owners_half_set(
    source: Callable[..., str], pg_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A has COPied its whole set (ten) and stops before its mark; B takes over, clears
    and freezes its first page (five), and dies. A wakes and marks the run frozen: it must
    not (it did, with the five B left; the resume then took that half set as the run's
    and customers 6-10, in the source all along, were never messaged nor excluded)."""
    wb, db = _members(source, pg_store, 10)
    wb2 = workbench(db, pg_store, {})
    main = threading.current_thread()
    real_analyze, real_copy = Campaigns._analyze, Campaigns._copy_fresh
    wf, run_id = _new_run(wb)

    def analyze(self: Campaigns, *a: Any, **kw: Any) -> None:
        if threading.current_thread() is main and a[0].name == "run_targets":
            _take_over(pg_store, wf["id"], run_id, "new:2")
            died = _in_thread(lambda: wb2.workflows.process(wf["id"], run_id, owner="new:2", **KW))
            # the other process's death, an unexpected error, leaves its call as InternalError
            assert isinstance(died, InternalError) and "unexpected _Died" in str(died)
        real_analyze(self, *a, **kw)

    def copy_fresh(self: Campaigns, tbl: Any, page: Any, *a: Any) -> None:
        real_copy(self, tbl, page, *a)
        if threading.current_thread() is not main:
            raise _Died("B dies after its first page")

    monkeypatch.setattr(Campaigns, "_analyze", analyze)
    monkeypatch.setattr(Campaigns, "_copy_fresh", copy_fresh)
    try:
        with pytest.raises(RunTakenOver):
            wb.workflows.process(wf["id"], run_id, **KW)
        assert oracle(
            pg_store, "SELECT frozen_at IS NULL FROM run_state WHERE run_id = %s", (str(run_id),)
        ) == [(True,)]
        monkeypatch.setattr(Campaigns, "_analyze", real_analyze)
        monkeypatch.setattr(Campaigns, "_copy_fresh", real_copy)
        _take_over(pg_store, wf["id"], run_id, "resume:3")  # B is dead: a resume
        wb.workflows.process(wf["id"], run_id, owner="resume:3", **KW)
    finally:
        wb.close()
        wb2.close()
    everyone = _source_keys(db)
    assert len(everyone) == 10
    assert _run_rows(pg_store, "run_targets", run_id) == everyone
    assert _run_rows(pg_store, "send_records", run_id) == everyone
    assert _undone(pg_store, run_id) == 0


def test_a_clear_after_a_takeover_does_not_erase_the_new_owners_frozen_set(
    source: Callable[..., str], pg_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A has found its run not yet frozen and stops before its freeze clears the set; B
    takes over and completes the run (ten records); then five customers leave. A wakes and
    freezes: it must not touch B's frozen set (its clear erased it and froze the five left:
    five send records then had no frozen target, the run's counts no longer its truth)."""
    from hybridwb.workflows import process

    wb, db = _members(source, pg_store, 10)
    wb2 = workbench(db, pg_store, {})
    main = threading.current_thread()
    real = process._remember_freeze
    wf, run_id = _new_run(wb)

    def remember(*a: Any, **kw: Any) -> None:
        if threading.current_thread() is main:
            _take_over(pg_store, wf["id"], run_id, "new:2")
            assert (
                _in_thread(lambda: wb2.workflows.process(wf["id"], run_id, owner="new:2", **KW))
                is None
            )
            src(db, "DELETE FROM members WHERE member_no > 5")
        real(*a, **kw)

    monkeypatch.setattr(process, "_remember_freeze", remember)
    try:
        with pytest.raises(RunTakenOver):
            wb.workflows.process(wf["id"], run_id, **KW)
    finally:
        wb.close()
        wb2.close()
    ten = [str(i) for i in range(1, 11)]
    assert _run_rows(pg_store, "run_targets", run_id) == sorted(ten)
    assert _run_rows(pg_store, "send_records", run_id) == sorted(ten)
    assert _undone(pg_store, run_id) == 0
    assert _unfrozen_done(pg_store, run_id) == 0


def test_a_taken_over_process_does_not_rewrite_the_frozen_as_of(
    source: Callable[..., str], pg_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Target: members who joined more than a day ago. A starts (its clock: five days
    before B's) and stops just before it records what it freezes for; B takes over,
    freezes the ten members (joined three days before B's clock), writes one batch and
    dies. A wakes and records its own as-of time over B's before its freeze is refused: the
    resume then judged B's frozen set as of A's clock, when none of them had joined, and
    excluded the five left as gone. The resume must complete B's set: ten records."""
    from hybridwb.workflows import process

    joined = DAY - timedelta(days=3)
    rows = [
        (i, f"회원{i}", f"010-{3000 + i:04d}-{i:04d}", joined.replace(tzinfo=None))
        for i in range(1, 11)
    ]
    db = source(
        "CREATE TABLE members (member_no INT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(40),"
        " joined DATETIME)",
        rows={"members": rows},
    )
    fields = {"joined": {"displayName": "가입", "type": "datetime"}}
    mapping = {**people("number", "member_no", fields=fields), "audience": True}
    wb = workbench(db, pg_store, {"members": mapping})
    wb2 = workbench(db, pg_store, {})
    wf = wb.workflows.create(
        "older",
        target_config={
            "table": "members",
            "where": {"field": "joined", "op": "older_than", "value": {"days": 1}},
        },
        message_config={"content": INFO},
    )
    run_id = start(wb, wf)
    main = threading.current_thread()
    real_remember, real_write = process._remember_freeze, Campaigns.write_batch
    writes: list[int] = []

    def write_batch(self: Campaigns, *a: Any, **kw: Any) -> bool:
        writes.append(1)
        if len(writes) == 2:
            raise _Died("B dies after its first batch")
        return real_write(self, *a, **kw)

    def remember(*a: Any, **kw: Any) -> None:
        if threading.current_thread() is main:
            _take_over(pg_store, wf["id"], run_id, "new:2")
            b = functools.partial(wb2.workflows.process, wf["id"], run_id, owner="new:2", **KW)
            assert "unexpected _Died" in str(_in_thread(b))
        real_remember(*a, **kw)

    monkeypatch.setattr(process, "_remember_freeze", remember)
    monkeypatch.setattr(Campaigns, "write_batch", write_batch)
    try:
        with pytest.raises(RunTakenOver):
            wb.workflows.process(wf["id"], run_id, **{**KW, "now": DAY - timedelta(days=5)})
        monkeypatch.setattr(process, "_remember_freeze", real_remember)
        monkeypatch.setattr(Campaigns, "write_batch", real_write)
        _take_over(pg_store, wf["id"], run_id, "resume:3")  # B is dead: a resume
        wb.workflows.process(wf["id"], run_id, owner="resume:3", **KW)
    finally:
        wb.close()
        wb2.close()
    everyone = _source_keys(db)
    assert _run_rows(pg_store, "run_targets", run_id) == everyone
    assert _run_rows(pg_store, "run_skips", run_id) == []
    assert _run_rows(pg_store, "send_records", run_id) == everyone


# -- 2. faults inside the freeze, then the resume ------------------------------------------
def test_the_freezes_copy_connection_terminated_while_the_worker_builds_the_next_page(
    source: Callable[..., str], pg_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run's thread COPies page 2 (after beating the lock in the same transaction)
    while the worker reads page 3 and makes its COPY text; the COPY waits on a table lock
    held from outside, and its PostgreSQL backend is terminated while it waits. The page
    is written again on a new connection (its text made once, in the worker), the lock
    beat again, and the run completes: the frozen set is the source's, each sent once."""
    import psycopg

    wb, db = _members(source, pg_store, 13)
    database = pg_store.rsplit("/", 1)[1]
    main = threading.current_thread()
    real = Campaigns._copy_fresh
    copies: list[int] = []
    terminated: list[int] = []

    def killer(locker: Any) -> None:
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not terminated:
                pids = [
                    pid
                    for (pid,) in locker.execute(
                        "SELECT pid FROM pg_locks"
                        " WHERE NOT granted AND relation = 'run_targets'::regclass"
                    ).fetchall()
                ]
                for pid in pids:
                    locker.execute("SELECT pg_terminate_backend(%s)", (pid,))
                terminated.extend(pids)
                time.sleep(0.02)
        finally:
            locker.rollback()
            locker.close()

    threads: list[threading.Thread] = []

    def copy_fresh(self: Campaigns, tbl: Any, page: Any, *a: Any) -> None:
        if threading.current_thread() is main:
            copies.append(page.first_seq)
            if len(copies) == 2:
                locker = psycopg.connect(f"host=127.0.0.1 user=postgres dbname={database}")
                locker.execute("LOCK TABLE run_targets IN ACCESS EXCLUSIVE MODE")
                threads.append(threading.Thread(target=killer, args=(locker,)))
                threads[0].start()
        real(self, tbl, page, *a)

    monkeypatch.setattr(Campaigns, "_copy_fresh", copy_fresh)
    try:
        wf, run_id = _new_run(wb)
        wb.workflows.process(wf["id"], run_id, **KW)
        threads[0].join()
    finally:
        wb.close()
    assert terminated, "the page's COPY was never seen waiting"
    assert copies == [0, 5, 10]
    everyone = _source_keys(db)
    assert _run_rows(pg_store, "run_targets", run_id) == everyone
    assert _run_rows(pg_store, "send_records", run_id) == everyone
    assert oracle(
        pg_store,
        "SELECT min(seq), max(seq), count(*) FROM run_targets WHERE run_id = %s",
        (str(run_id),),
    ) == [(1, 13, 13)]
    assert _undone(pg_store, run_id) == 0


def test_a_run_stopped_between_its_last_page_and_the_mark_freezes_the_source_anew(
    source: Callable[..., str], pg_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process dies after every page is COPied and before the set is marked frozen;
    then customer 3 leaves and customer 11 arrives. The resume must freeze the set anew
    (not take the pages it finds for the frozen set: 3 would be frozen, then excluded as
    changed, and 11 never messaged): frozen set and records are the source's as of the
    resume, and 3 has neither a record nor an exclusion."""
    wb, db = _members(source, pg_store, 10)
    main = threading.current_thread()
    real = Campaigns._analyze

    def analyze(self: Campaigns, *a: Any, **kw: Any) -> None:
        if threading.current_thread() is main and a[0].name == "run_targets":
            raise KeyboardInterrupt("the process dies before the mark")
        real(self, *a, **kw)

    monkeypatch.setattr(Campaigns, "_analyze", analyze)
    try:
        wf, run_id = _new_run(wb)
        with pytest.raises(KeyboardInterrupt):
            wb.workflows.process(wf["id"], run_id, **KW)
        assert len(_run_rows(pg_store, "run_targets", run_id)) == 10  # every page was written
        monkeypatch.setattr(Campaigns, "_analyze", real)
        src(db, "DELETE FROM members WHERE member_no = 3")
        src(db, "INSERT INTO members VALUES (11, '회원11', '010-3011-0011')")
        wb.workflows.process(wf["id"], run_id, **KW)
    finally:
        wb.close()
    everyone = _source_keys(db)
    assert "3" not in everyone and "11" in everyone
    assert _run_rows(pg_store, "run_targets", run_id) == everyone
    assert _run_rows(pg_store, "send_records", run_id) == everyone
    assert _run_rows(pg_store, "run_skips", run_id) == []
    assert _undone(pg_store, run_id) == 0


# -- 3. a recipient the store's history index cannot hold ------------------------------------
def _mailboxes(n: int, lengths: dict[int, int]) -> list[tuple[int, str, str]]:
    """Members 1..n at `m<i>@example.com`, or at an address of `lengths[i]` bytes of
    random letters (nothing for the store to compress)."""
    rnd = random.Random(19)
    out = []
    for i in range(1, n + 1):
        address = f"m{i}@example.com"
        if i in lengths:
            chars = string.ascii_lowercase + string.digits
            local = "".join(rnd.choice(chars) for _ in range(lengths[i] - len("@example.com")))
            address = f"{local}@example.com"
        out.append((i, f"회원{i}", address))
    return out


@pytest.mark.parametrize("channel", ["email", "other"])
def test_a_recipient_too_long_for_the_history_index_is_excluded_not_a_run_stuck_forever(
    source: Callable[..., str], pg_store: str, channel: str
) -> None:
    """Customer 4's address is 3,000 random characters (a TEXT column, a bad import). Its
    send record cannot be written on PostgreSQL (the history's recipient index holds rows
    of at most 2,704 bytes): its batch failed, and so did every resume, so the rest of the
    frozen set never got a record or an exclusion. It must be excluded with its reason,
    and everyone else messaged once; customer 6's address of 2,600 bytes (the limit) is
    messaged, 5's of 2,601 is not."""
    rows = _mailboxes(7, {4: 3000, 5: 2601, 6: 2600})
    excluded = ["4", "5"]
    if channel == "other":  # 900 characters, 2,700 bytes: the limit counts bytes
        hangul = random.Random(7).choices([chr(c) for c in range(0xAC00, 0xD7A4)], k=900)
        rows[6] = (7, "회원7", "".join(hangul))
        excluded.append("7")
    db = source(
        "CREATE TABLE members (member_no INT PRIMARY KEY, name VARCHAR(20), email TEXT)",
        rows={"members": rows},
    )
    fields = {
        "member_no": {"displayName": "번호", "type": "number", "role": "id"},
        "name": {"displayName": "이름", "type": "string", "role": "name"},
        "email": {"displayName": "메일", "type": "string", "role": "email"},
    }
    mapping = {
        "displayName": "회원",
        "key": "member_no",
        "recipient": "email",
        "channel": channel,
        "fields": fields,
        "audience": True,
    }
    wb = workbench(db, pg_store, {"members": mapping})
    try:
        wf, run_id = _new_run(wb)
        for _ in range(2):  # a resume after a failure, if any
            try:
                wb.workflows.process(wf["id"], run_id, **{**KW, "batch_size": 2})
                break
            except HybridwbError:
                continue
    finally:
        wb.close()
    everyone = _source_keys(db)
    assert _run_rows(pg_store, "run_targets", run_id) == everyone
    assert _run_rows(pg_store, "send_records", run_id) == [k for k in everyone if k not in excluded]
    assert sorted(
        oracle(
            pg_store, "SELECT target_key, reason FROM run_skips WHERE run_id = %s", (str(run_id),)
        )
    ) == [(k, "no recipient") for k in excluded]
    stored = oracle(
        pg_store,
        "SELECT octet_length(recipient) FROM send_records WHERE run_id = %s AND target_key = '6'",
        (str(run_id),),
    )
    assert stored == [(2600,)]
    assert _undone(pg_store, run_id) == 0


def test_a_key_too_long_for_the_stores_index_refuses_the_run_in_one_line(
    source: Callable[..., str], pg_store: str
) -> None:
    """A key of 2,701 random bytes (a VARCHAR(3000) ASCII primary key: MariaDB indexes
    3,072 bytes) failed the freeze's COPY on every try: "index row size 2736 exceeds btree
    version 4 maximum 2704 for index '?'", which says neither what nor what to do. It is
    refused in one line saying both, no key in it: raised in the worker as it makes page
    2, while the run's thread COPies page 1; no set is marked frozen, nothing is sent.
    Once the key is gone, the resume freezes the set whole, keys of 2,600 bytes (the
    limit) included, and messages each once."""
    rnd = random.Random(26)

    def key(first: str, n: int) -> str:
        return first + "".join(
            rnd.choice(string.ascii_letters + string.digits) for _ in range(n - 1)
        )

    # in the source's order: a1-a5 (page 1), then a6, two keys of the limit, the long one
    keys = [f"a{i}" for i in range(1, 7)] + [key("b", 2600), key("c", 2600), key("~", 2701)]
    db = source(
        "CREATE TABLE members (code VARCHAR(3000) CHARACTER SET ascii PRIMARY KEY,"
        " name VARCHAR(20), mobile VARCHAR(40))",
        rows={"members": [(k, f"회원{i}", f"010-3{i:03d}-{i:04d}") for i, k in enumerate(keys)]},
    )
    wb = workbench(db, pg_store, {"members": {**people(), "audience": True}})
    try:
        wf, run_id = _new_run(wb)
        with pytest.raises(ValidationError) as info:
            wb.workflows.process(wf["id"], run_id, **KW)
        message = str(info.value)
        assert "\n" not in message and "longer than 2,600 bytes" in message, message
        assert keys[-1][:20] not in message
        assert oracle(
            pg_store, "SELECT frozen_at IS NULL FROM run_state WHERE run_id = %s", (str(run_id),)
        ) == [(True,)]
        assert _run_rows(pg_store, "send_records", run_id) == []
        assert _run_rows(pg_store, "run_targets", run_id) == keys[:5]  # page 1, not marked
        src(db, "DELETE FROM members WHERE code LIKE '~%'")
        wb.workflows.process(wf["id"], run_id, **KW)
    finally:
        wb.close()
    everyone = sorted(keys[:-1])
    assert _run_rows(pg_store, "run_targets", run_id) == everyone
    assert _run_rows(pg_store, "send_records", run_id) == everyone
    assert _undone(pg_store, run_id) == 0


@pytest.mark.parametrize("kills", [1, READ_ATTEMPTS])
def test_the_freezes_source_read_killed_in_the_worker_while_the_run_copies(
    source: Callable[..., str], pg_store: str, monkeypatch: pytest.MonkeyPatch, kills: int
) -> None:
    """The worker's read of page 3 waits on a table lock held from outside while the run's
    thread COPies page 2, and its MariaDB connection is KILLed while it waits: once (the
    read is sent again, the freeze completes) or on every try (the run ends with one line,
    no set marked frozen, nothing sent; the resume freezes whole). Each sent once, no
    worker or connection left."""
    from hybridwb.targets import TargetService

    wb, db = _members(source, pg_store, 13)
    real = TargetService._page
    killed: list[int] = []
    reads: list[int] = []
    threads: list[threading.Thread] = []

    def killer(locker: Any) -> None:
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and len(killed) < kills:
                with locker.cursor() as cur:
                    cur.execute(
                        "SELECT id FROM information_schema.processlist WHERE db = %s"
                        " AND command = 'Query' AND info LIKE %s AND id <> CONNECTION_ID()",
                        (db, "%member_no%"),
                    )
                    for (i,) in cur.fetchall():
                        cur.execute(f"KILL CONNECTION {int(i)}")
                        killed.append(i)
                time.sleep(0.02)
        finally:
            with locker.cursor() as cur:
                cur.execute("UNLOCK TABLES")
            locker.close()

    def page(self: Any, *a: Any, **kw: Any) -> Any:
        if threading.current_thread().name == PREFETCH:
            reads.append(1)
            if len(reads) == 3 and not threads:
                locker = _admin()
                with locker.cursor() as cur:
                    cur.execute(f"USE `{db}`")
                    cur.execute("LOCK TABLES members WRITE")
                threads.append(threading.Thread(target=killer, args=(locker,)))
                threads[0].start()
        return real(self, *a, **kw)

    monkeypatch.setattr(TargetService, "_page", page)
    failed: BaseException | None = None
    try:
        wf, run_id = _new_run(wb)
        try:
            wb.workflows.process(wf["id"], run_id, **KW)
        except HybridwbError as exc:
            failed = exc
        threads[0].join()
        assert len(killed) == kills, "the blocked read was never seen"
        _nothing_left(wb)
        assert (failed is None) == (kills == 1), repr(failed)
        if failed is not None:
            assert "\n" not in str(failed), str(failed)
            assert oracle(
                pg_store,
                "SELECT frozen_at IS NULL FROM run_state WHERE run_id = %s",
                (str(run_id),),
            ) == [(True,)]
            assert _run_rows(pg_store, "send_records", run_id) == []
            wb.workflows.process(wf["id"], run_id, **KW)
            _nothing_left(wb)
    finally:
        wb.close()
    everyone = _source_keys(db)
    assert _run_rows(pg_store, "run_targets", run_id) == everyone
    assert _run_rows(pg_store, "send_records", run_id) == everyone
    assert _undone(pg_store, run_id) == 0


# -- 4. JIT off for the history check's transaction only ------------------------------------
def test_the_history_checks_jit_off_ends_with_the_cap_locks_transaction(
    source: Callable[..., str], pg_store: str
) -> None:
    """Under a frequency cap `seen` turns JIT off in the cap lock's transaction, which
    then writes the batch and commits: after the run, every connection the store's pool
    keeps has the server's JIT setting again (a session-level setting, committed, would
    leave JIT off for whatever the connection runs next; without a cap the read's own
    transaction is rolled back, which undoes either), and each target was sent once."""
    wb, db = _members(source, pg_store, 12)
    policy = {"frequency_cap": {"messages": 1, "days": 7}}
    try:
        wf = wb.workflows.create(
            "jit",
            target_config={"table": "members"},
            message_config={"content": INFO, "policy": policy},
        )
        run_id = start(wb, wf)
        wb.workflows.process(wf["id"], run_id, **KW)
        engine = wb.store.backend.engine
        pooled = engine.pool.checkedin()
        assert pooled >= 1
        with contextlib.ExitStack() as stack:
            conns = [stack.enter_context(engine.connect()) for _ in range(pooled)]
            settings = {c.exec_driver_sql("SHOW jit").scalar_one() for c in conns}
    finally:
        wb.close()
    server = oracle(pg_store, "SELECT reset_val FROM pg_settings WHERE name = 'jit'")[0][0]
    assert settings == {server}
    assert _run_rows(pg_store, "send_records", run_id) == _source_keys(db)


# -- 5. more keys equal under the source's collation than the tie lookup reads ---------------
def _spellings(word: str) -> list[str]:
    """Every spelling of `word` in upper and lower case (2^len of them)."""
    return [
        "".join(c.upper() if up else c for c, up in zip(word, ups, strict=True))
        for ups in itertools.product([False, True], repeat=len(word))
    ]


def _ties_run(
    source: Callable[..., str], pg_store: str, word: str, batch_size: int
) -> tuple[str, Any, ValidationError | None]:
    """A view re-collating a case-sensitive key case-insensitively, keyed by it: every
    spelling of `word` a customer to the table, one key to the view's comparisons."""
    rows = [
        (k, f"회원{i}", f"010-{2000 + i:04d}-{i:04d}") for i, k in enumerate(_spellings(word), 1)
    ]
    db = source(
        "CREATE TABLE a (code VARCHAR(20) COLLATE utf8mb4_bin PRIMARY KEY, name VARCHAR(20),"
        " mobile VARCHAR(20)) CHARACTER SET utf8mb4",
        "CREATE VIEW everyone AS SELECT code COLLATE utf8mb4_general_ci AS code, name, mobile"
        " FROM a",
        rows={"a": rows},
    )
    wb = workbench(db, pg_store, {"everyone": people()})
    refused: ValidationError | None = None
    try:
        wf = wb.workflows.create(
            "ties", target_config={"table": "everyone"}, message_config={"content": INFO}
        )
        run_id = start(wb, wf)
        try:
            wb.workflows.process(wf["id"], run_id, **{**KW, "batch_size": batch_size})
        except ValidationError as exc:
            refused = exc
    finally:
        wb.close()
    return db, run_id, refused


def _whole_or_refused(pg_store: str, db: str, run_id: Any, refused: Exception | None) -> None:
    everyone = sorted(k for (k,) in src(db, "SELECT code FROM a"))
    if refused is None:
        assert sorted(_run_rows(pg_store, "run_targets", run_id)) == everyone
        assert sorted(_run_rows(pg_store, "send_records", run_id)) == everyone
        return
    assert "\n" not in str(refused) and "collation" in str(refused), str(refused)
    assert oracle(
        pg_store, "SELECT frozen_at IS NULL FROM run_state WHERE run_id = %s", (str(run_id),)
    ) == [(True,)]
    assert _run_rows(pg_store, "send_records", run_id) == []


def test_more_keys_equal_under_the_collation_than_the_tie_lookup_reads_are_not_lost(
    source: Callable[..., str], pg_store: str
) -> None:
    """The 1,024 spellings of 'abcdefghij' are 1,024 customers and one key to the view.
    The pager reads a page (20), then the keys equal to its last one (`_ties`, at most
    `TIE_LIMIT`, 1,000), then `key > last`: the 23 spellings neither read were never
    frozen, and the run messaged 1,001 of 1,024 without a word. The frozen set must be
    the whole audience, or the run refused in one line with nothing sent."""
    db, run_id, refused = _ties_run(source, pg_store, "abcdefghij", 20)
    assert len(src(db, "SELECT code FROM a")) == 1024
    _whole_or_refused(pg_store, db, run_id, refused)


@pytest.mark.parametrize("word", ["abc", "abcd"], ids=["at the limit", "past it"])
def test_keys_equal_under_the_collation_up_to_the_tie_limit_are_all_messaged(
    source: Callable[..., str], pg_store: str, monkeypatch: pytest.MonkeyPatch, word: str
) -> None:
    """With the tie lookup's limit at 8: the 8 spellings of 'abc' are each frozen and
    messaged (not refused); the 16 of 'abcd' are whole or refused, never 10 of 16."""
    from hybridwb.targets import service

    monkeypatch.setattr(service, "TIE_LIMIT", 8)
    db, run_id, refused = _ties_run(source, pg_store, word, 2)
    if word == "abc":
        assert refused is None, str(refused)
    _whole_or_refused(pg_store, db, run_id, refused)
