"""Round 33: over REST, a status write sent late, and a row deleted between two pages.

- A status PATCH whose answer is lost (the gateway's 504) is sent again, and the first
  attempt may still be run by the server after the writes that followed (queued in its
  pool). It wrote `running` over the run's `succeeded`, or an old end over a later one.
  Every status write now names the run's end it expects (`Runs.reopen`, `update_open`):
  one sent late finds the end moved on and writes nothing.
- A read past PostgREST's `db-max-rows` paged by offset: a row of an earlier page deleted
  meanwhile shifted the rest by one, and the row at the page's edge was never read (a run
  not marked stale, a mapping, a workflow, a record, a variable missing). It pages by
  keyset on (order, key) now.

The stand-in (tests/_postgrest.py) answers from a real PostgreSQL database, here capped at
50 rows a read; every outcome is read back with plain psycopg.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
import respx
from _postgrest import PostgrestBridge, migrated_database
from psycopg.types.json import Jsonb
from sqlalchemy.engine import make_url

from hybridwb.platform.backend import SqlBackend
from hybridwb.platform.rest import RestBackend
from hybridwb.platform.store import Store
from hybridwb.workflows.runner import stale_runs
from tests.test_attack_rest_round30 import BASE, KEY, REST, insert, oracle

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def dsn() -> Iterator[str]:
    yield from migrated_database("hybridwb_r33")


# -- 1. a status write sent late ------------------------------------------------------------
class _Late(PostgrestBridge):
    """The stand-in; the first PATCH of `workflow_runs` whose body sets `status` to `hold`
    is not run: the gateway answers 504 (the client sends it again), and `release()` runs
    it later, as the server would once its pool gets to it."""

    def __init__(self, dsn: str) -> None:
        super().__init__(dsn)
        self.hold: str | None = None
        self.held: httpx.Request | None = None

    def table(self, request: httpx.Request, table: str) -> httpx.Response:
        if (
            request.method == "PATCH"
            and table == "workflow_runs"
            and self.held is None
            and self.hold is not None
            and f'"status":"{self.hold}"' in request.content.decode().replace(" ", "")
        ):
            self.held = request
            return httpx.Response(504, json={"code": "504", "message": "gateway timeout"})
        return super().table(request, table)

    def release(self) -> None:
        assert self.held is not None, "no request was held"
        super().table(self.held, "workflow_runs")


@pytest.fixture
def late(dsn: str) -> Iterator[tuple[_Late, Store]]:
    bridge = _Late(dsn)
    with respx.mock(base_url=REST, assert_all_called=False) as router:
        bridge.mount(router)
        store = Store(RestBackend(BASE, KEY, "SUPABASE_SERVICE_ROLE_KEY", base_delay=0), actor="t")
        yield bridge, store
        store.close()


def _status(dsn: str, rid: Any) -> tuple[str, bool]:
    [(status, ended)] = oracle(
        dsn, "SELECT status, finished_at IS NOT NULL FROM workflow_runs WHERE id = %s", rid
    )
    return status, ended


def _end(store: Store, rid: Any, status: str) -> None:
    """An end as `Runner._finish`, `outcome.ended` and `pending.flush` write it."""
    store.runs.update_open(
        store.runs.get(rid), status=status, finished_at=datetime.now(UTC), error=None
    )


def _running_then_succeeded(bridge: _Late, store: Store, rid: Any) -> None:
    """The kernel's `running` (process.py) is the late one; the runner ends the run."""
    bridge.hold = "running"
    store.runs.reopen(store.runs.get(rid), started_at=datetime.now(UTC))
    _end(store, rid, "succeeded")


def _failed_then_resumed_and_succeeded(bridge: _Late, store: Store, rid: Any) -> None:
    """The first end (`failed`) is the late one; a resume reopens the run and ends it."""
    store.runs.reopen(store.runs.get(rid))
    bridge.hold = "failed"
    _end(store, rid, "failed")
    store.runs.reopen(store.runs.get(rid), error=None)  # `hybridwb run --resume`
    _end(store, rid, "succeeded")


def _resume_then_succeeded(bridge: _Late, store: Store, rid: Any) -> None:
    """The resume's reopen (the runner's) is the late one; the resumed run ends."""
    store.runs.reopen(store.runs.get(rid))
    _end(store, rid, "failed")
    bridge.hold = "running"
    store.runs.reopen(store.runs.get(rid), error=None)
    _end(store, rid, "succeeded")


def _stale_then_resumed_and_succeeded(bridge: _Late, store: Store, rid: Any) -> None:
    """`mark_stale`'s `stale` is the late one; the run is resumed and ends."""
    store.runs.reopen(store.runs.get(rid))
    bridge.hold = "stale"
    store.runs.update_open(store.runs.get(rid), status="stale", error="its heartbeat stopped")
    store.runs.reopen(store.runs.get(rid), error=None)
    _end(store, rid, "succeeded")


@pytest.mark.parametrize(
    "story",
    [
        _running_then_succeeded,
        _failed_then_resumed_and_succeeded,
        _resume_then_succeeded,
        _stale_then_resumed_and_succeeded,
    ],
    ids=["running over succeeded", "failed over a later end", "a resume over its end", "stale"],
)
def test_a_status_write_run_late_by_the_server_leaves_the_runs_later_end(
    late: tuple[_Late, Store], dsn: str, story: Callable[[_Late, Store, Any], None]
) -> None:
    """BREAK: the held write, run after the retry and the writes that followed, wrote its
    status over the run's later end (`succeeded`)."""
    bridge, store = late
    rid = store.runs.create(uuid.uuid4(), {})["id"]
    story(bridge, store, rid)
    assert _status(dsn, rid) == ("succeeded", True)
    bridge.release()  # the first attempt, late
    assert _status(dsn, rid) == ("succeeded", True)


def test_the_sql_store_guards_the_same_transitions(dsn: str) -> None:
    """The same writes on the SQL store (the same `Runs` methods, one UPDATE each): a reopen
    or an end computed from the run as it was before its end writes nothing."""
    url = make_url("postgresql+psycopg://postgres@127.0.0.1:5432/" + dsn.rsplit("dbname=", 1)[1])
    store = Store(SqlBackend(url), actor="t")
    try:
        rid = store.runs.create(uuid.uuid4(), {})["id"]
        before = store.runs.get(rid)
        store.runs.reopen(before)
        _end(store, rid, "succeeded")
        store.runs.reopen(before)  # as read before the end
        store.runs.update_open(store.runs.get(rid), status="stale")
        _end(store, rid, "failed")
        assert _status(dsn, rid) == ("succeeded", True)
        store.runs.reopen(store.runs.get(rid))  # as read now: a resume
        assert _status(dsn, rid) == ("running", False)
    finally:
        store.close()


# -- 2. a row deleted between two pages -----------------------------------------------------
MAX_ROWS = 50
AT = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def paged(dsn: str) -> Iterator[tuple[PostgrestBridge, Store]]:
    bridge = PostgrestBridge(dsn, max_rows=MAX_ROWS)
    with respx.mock(base_url=REST, assert_all_called=False) as router:
        bridge.mount(router)
        store = Store(RestBackend(BASE, KEY, "SUPABASE_SERVICE_ROLE_KEY", base_delay=0), actor="t")
        yield bridge, store
        store.close()


def _rows(dsn: str, tag: str) -> tuple[str, str, Callable[[Store], set[str]]]:
    """60 rows (over the cap of 50) of the read `tag`, and: the table, its order (as the
    read asks for it), and the read (the names it returns)."""
    n = 60
    if tag == "records":
        rid = uuid.uuid4()
        insert(
            dsn,
            "INSERT INTO send_records (id, run_id, workflow_id, target_key, recipient, channel,"
            " status, created_at) VALUES (%s, %s, %s, %s, %s, 'sms', 'queued', %s)",
            [
                (uuid.uuid4(), rid, uuid.uuid4(), f"r{i:03d}", "010", AT + timedelta(seconds=i))
                for i in range(n)
            ],
        )
        return (
            "send_records",
            "created_at",
            lambda s: {r["target_key"] for r in s.runs.records(rid)},
        )
    if tag == "mappings.active":  # one version each: the order ties, the key decides
        insert(
            dsn,
            "INSERT INTO table_mappings (id, name, config, is_active, version, created_at,"
            " updated_at) VALUES (%s, %s, %s, true, 1, %s, %s)",
            [(uuid.uuid4(), f"m{i:03d}", Jsonb({}), AT, AT) for i in range(n)],
        )
        return "table_mappings", "version", lambda s: set(s.mappings.active())
    if tag == "stale runs":  # running, no lock: each is stale
        insert(
            dsn,
            "INSERT INTO workflow_runs (id, workflow_id, status, parameters, dry_run,"
            " target_count, rendered_count, skipped_count, failed_count, sent_count,"
            " missing_variables, stats, created_at, report_path) VALUES (%s, %s, 'running',"
            " '{}', false, 0, 0, 0, 0, 0, '[]', '{}', %s, %s)",
            [(uuid.uuid4(), uuid.uuid4(), AT, f"s{i:03d}") for i in range(n)],
        )
        return "workflow_runs", "id", lambda s: {r["report_path"] for r in stale_runs(s)}
    if tag == "workflows":  # the scheduler's listing
        insert(
            dsn,
            "INSERT INTO workflows (id, name, status, trigger_type, trigger_config,"
            " target_config, message_config, variables, schedule_config, created_at,"
            " updated_at) VALUES (%s, %s, 'active', 'schedule', '{}', '{}', '{}', '{}', '{}',"
            " %s, %s)",
            [(uuid.uuid4(), f"w{i:03d}", AT + timedelta(seconds=i), AT) for i in range(n)],
        )
        return "workflows", "created_at", lambda s: {w["name"] for w in s.workflows.list()}
    insert(  # template variables
        dsn,
        "INSERT INTO individual_variables (id, name, source_type, source, usage_count,"
        " created_at, updated_at) VALUES (%s, %s, 'constant', 'x', 0, %s, %s)",
        [(uuid.uuid4(), f"v{i:03d}", AT + timedelta(seconds=i), AT) for i in range(n)],
    )
    return "individual_variables", "created_at", lambda s: {v["name"] for v in s.variables.list()}


def execute(dsn: str, statement: str) -> None:
    """A statement of the test's own (its table and column names only), by psycopg."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(statement)  # type: ignore[arg-type]  # the test's own text


NAME = {
    "send_records": "target_key",
    "table_mappings": "name",
    "workflow_runs": "report_path",
    "workflows": "name",
    "individual_variables": "name",
}


@pytest.mark.parametrize(
    "tag", ["records", "mappings.active", "stale runs", "workflows", "variables"]
)
def test_a_row_of_an_earlier_page_deleted_between_pages_skips_no_other_row(
    paged: tuple[PostgrestBridge, Store],
    dsn: str,
    monkeypatch: pytest.MonkeyPatch,
    tag: str,
) -> None:
    """BREAK: right after each page of 50 rows (the cap) is answered, the first row of the
    read's order is deleted; paged by offset, the next page started at the 51st of the
    rows left, and the row that had been 51st was never read. Every row left is read."""
    bridge, store = paged
    for table in NAME:  # each case on tables of its own rows only
        execute(dsn, f"DELETE FROM {table}")
    table, order, read = _rows(dsn, tag)
    name = NAME[table]
    run, deleted = bridge._run, []

    def full_page_then_delete(statement: Any, params: list[Any]) -> Any:
        out = run(statement, params)
        text = repr(statement)
        if "ORDER BY" in text and f"'{table}'" in text and len(out) == MAX_ROWS:
            deleted.append(out)
            execute(
                dsn,
                f"DELETE FROM {table} WHERE id = (SELECT id FROM {table}"
                f" ORDER BY {order}, id LIMIT 1)",
            )
        return out

    monkeypatch.setattr(bridge, "_run", full_page_then_delete)
    got = read(store)
    assert deleted  # a delete came between two pages
    left = {v for (v,) in oracle(dsn, f"SELECT {name} FROM {table}")}
    assert len(left) == 60 - len(deleted)
    assert left <= got, f"never read: {sorted(left - got)}"
    assert len(got - left) <= len(deleted)  # a deleted row, read on an earlier page
