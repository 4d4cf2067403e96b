"""Round 34: attacks on "a run's status is never moved backwards by a late or repeated write".

Round 33 made every status write name the end it expects (`Runs.reopen`: the `finished_at`
as read; `Runs.update_open`: no end, `finished_at IS NULL`). Tried here:

- the `finished_at` round trip: a resume reopens an ended run from the value read back, on
  SQLite (text), PostgreSQL (timestamptz, a session time zone other than UTC, microseconds)
  and REST (ISO text with an offset): it matches on each;
- a write of the first open period sent late and landing in the second one (after a
  resume's reopen, before its end). `IS NULL` alone was the same condition in both periods
  (the end goes NULL -> T1 -> NULL -> T2), so the late write matched (three breaks, fixed:
  every reopen now stamps a new `started_at` unless a kernel goes on with its runner's
  period, and `update_open` names the period's start as read):
  * the first end (`failed`, its PATCH answered 504, retried and written) run by the server
    while the resume is running wrote `failed` and its `finished_at` over the resumed run,
    and the resume's own end then wrote nothing: the run the resume finished stayed
    `failed`;
  * `mark_stale`'s `stale` of the first period landed on the resumed, running run;
  * end to end (`Runner.run`, papermill replaced): the first run's late `failed` landed
    while the resume's kernel worked; the resume's `_finish` saw an end, wrote no status and
    kept its lock: the run read `failed` and the workflow stayed locked until stale.

The oracle is plain SQL on the store (psycopg, sqlite3), never hybridwb's own reading.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import respx
from _postgrest import PostgrestBridge, migrated_database
from _stores import migrated_sqlite
from sqlalchemy.engine import make_url

from hybridwb.platform.backend import SqlBackend
from hybridwb.platform.rest import RestBackend
from hybridwb.platform.store import Store
from tests.test_attack_rest_round30 import BASE, KEY, REST, oracle
from tests.test_attack_round33_rest_order import _Late

pytestmark = pytest.mark.postgres

#: an end with microseconds, in a zone that is neither UTC nor a whole hour away
ODD = timezone(timedelta(hours=5, minutes=45))
END = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture(scope="module")
def dsn() -> Iterator[str]:
    yield from migrated_database("hybridwb_r34")


def _pg_status(dsn: str, rid: Any) -> tuple[str, datetime | None]:
    [(status, ended)] = oracle(
        dsn, "SELECT status, finished_at FROM workflow_runs WHERE id = %s", rid
    )
    return status, ended


def _rest(bridge: PostgrestBridge) -> Iterator[Store]:
    with respx.mock(base_url=REST, assert_all_called=False) as router:
        bridge.mount(router)
        store = Store(RestBackend(BASE, KEY, "SUPABASE_SERVICE_ROLE_KEY", base_delay=0), actor="t")
        try:
            yield store
        finally:
            store.close()


@pytest.fixture
def late(dsn: str) -> Iterator[tuple[_Late, Store]]:
    bridge = _Late(dsn)
    for store in _rest(bridge):
        yield bridge, store


# -- 1. the end's round trip: a resume reopens the run from the end as read back ------------
def _ended(store: Store, at: datetime) -> Any:
    rid = store.runs.create(uuid.uuid4(), {})["id"]
    store.runs.update_open(store.runs.get(rid), status="failed", finished_at=at, error="boom")
    return rid


@pytest.mark.parametrize("at", [END, END.astimezone(ODD), END.replace(microsecond=0)])
def test_sqlite_reopens_an_ended_run_from_its_end_as_read(tmp_path: Path, at: datetime) -> None:
    store = Store(SqlBackend(migrated_sqlite(tmp_path / "s.db")), actor="t")
    try:
        rid = _ended(store, at)
        store.runs.reopen(store.runs.get(rid), error=None)
        with sqlite3.connect(tmp_path / "s.db") as conn:
            row = conn.execute(
                "SELECT status, finished_at FROM workflow_runs WHERE id = ?", (rid.hex,)
            ).fetchall()
        assert row == [("running", None)]
    finally:
        store.close()


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kathmandu", "America/St_Johns"])
@pytest.mark.parametrize("at", [END, END.astimezone(ODD), END.replace(microsecond=0)])
def test_postgresql_reopens_from_its_end_as_read_in_any_session_zone(
    dsn: str, zone: str, at: datetime
) -> None:
    db = dsn.rsplit("dbname=", 1)[1]
    url = make_url(f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}").update_query_dict(
        {"options": f"-c timezone={zone}"}
    )
    store = Store(SqlBackend(url), actor="t")
    try:
        rid = _ended(store, at)
        read = store.runs.get(rid)["finished_at"]
        assert read == at  # the same instant, in the session's zone
        store.runs.reopen(store.runs.get(rid), error=None)
        assert _pg_status(dsn, rid) == ("running", None)
    finally:
        store.close()


@pytest.mark.parametrize("at", [END, END.astimezone(ODD), END.replace(microsecond=0)])
def test_rest_reopens_from_its_end_as_read(dsn: str, at: datetime) -> None:
    for store in _rest(PostgrestBridge(dsn)):
        rid = _ended(store, at)
        assert isinstance(store.runs.get(rid)["finished_at"], str)  # ISO text, an offset
        store.runs.reopen(store.runs.get(rid), error=None)
        assert _pg_status(dsn, rid) == ("running", None)


def test_a_resume_from_a_stale_read_reopens_nothing_and_says_nothing(dsn: str) -> None:
    """Known, kept: a reopen from an end that moved on writes nothing (round 33's point);
    the caller is not told (`update` returns None), so the runner's own read must be fresh:
    `process.py` reopens from a read of its own, which does reopen."""
    for store in _rest(PostgrestBridge(dsn)):
        rid = _ended(store, END)
        old = store.runs.get(rid)
        store.runs.reopen(old)
        store.runs.update_open(
            store.runs.get(rid), status="succeeded", finished_at=END + timedelta(1)
        )
        assert store.runs.reopen(old) is None
        assert _pg_status(dsn, rid)[0] == "succeeded"


# -- 2. a write of the first open period landing in the second ------------------------------
def test_a_late_end_from_before_a_resume_does_not_end_the_resumed_run(
    late: tuple[_Late, Store], dsn: str
) -> None:
    bridge, store = late
    rid = store.runs.create(uuid.uuid4(), {})["id"]
    store.runs.reopen(store.runs.get(rid))  # the kernel's `running`
    bridge.hold = "failed"  # the runner's end: answered 504, sent again, written
    store.runs.update_open(
        store.runs.get(rid), status="failed", finished_at=datetime.now(UTC), error="boom"
    )
    assert _pg_status(dsn, rid)[0] == "failed"
    store.runs.reopen(store.runs.get(rid), error=None)  # `hybridwb run --resume`
    store.runs.reopen(store.runs.get(rid), started_at=datetime.now(UTC))  # its kernel
    bridge.release()  # the first attempt of the old end, run by the server now
    store.runs.update_open(  # the resume's end
        store.runs.get(rid), status="succeeded", finished_at=datetime.now(UTC), error=None
    )
    status, ended = _pg_status(dsn, rid)
    assert (status, ended is not None) == ("succeeded", True)


def test_a_late_stale_from_before_a_resume_does_not_mark_the_resumed_run(
    late: tuple[_Late, Store], dsn: str
) -> None:
    bridge, store = late
    rid = store.runs.create(uuid.uuid4(), {})["id"]
    store.runs.reopen(store.runs.get(rid))
    bridge.hold = "stale"  # mark_stale's write: answered 504, sent again, written
    store.runs.update_open(store.runs.get(rid), status="stale", error="its heartbeat stopped")
    store.runs.reopen(store.runs.get(rid), error=None)  # the resume
    bridge.release()
    assert _pg_status(dsn, rid) == ("running", None)


def _kernel(monkeypatch: pytest.MonkeyPatch, body: Any) -> None:
    """papermill's `execute_notebook` as `body()`: the kernel's work."""
    import papermill

    monkeypatch.setattr(papermill, "execute_notebook", lambda *a, **kw: body())


@pytest.mark.parametrize(
    "released",
    [
        False,
        True,
    ],
    ids=["control: no late write", "the late end lands"],
)
def test_hybridwb_run_resume_is_not_ended_by_the_first_runs_late_end(
    late: tuple[_Late, Store],
    dsn: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    released: bool,
) -> None:
    import papermill

    from hybridwb.config import load_settings
    from hybridwb.workflows.runner import Runner

    bridge, store = late
    wf = store.workflows.create(name=f"r34-{uuid.uuid4().hex[:6]}", message_config={"content": "x"})
    runner = Runner(load_settings(tmp_path, {}), store)

    def boom() -> None:
        raise papermill.PapermillExecutionError(1, 1, "x", "ValueError", "boom", [])

    _kernel(monkeypatch, boom)
    bridge.hold = "failed"  # the first run's end: answered 504, sent again, written
    first = runner.run(wf["id"], progress=False)
    assert _pg_status(dsn, first["id"])[0] == "failed"
    _kernel(monkeypatch, bridge.release if released else lambda: None)  # the old PATCH
    runner.run(resume=first["id"], workflow=None, progress=False)
    status, _ = _pg_status(dsn, first["id"])
    locks = oracle(dsn, "SELECT owner FROM run_locks WHERE run_id = %s", first["id"])
    assert (status, locks) == ("empty", [])  # the resume's own end, its lock released
