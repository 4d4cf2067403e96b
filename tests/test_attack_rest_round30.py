"""Round 30: reads of the Supabase REST store past PostgREST's `db-max-rows`.

PostgREST answers a read with at most `db-max-rows` rows (Supabase's "Max rows", 1,000 by
default), silently: status 200, the rows it chose, no error. A read that wants every row
(a mapping's versions, a run's records, the workflows' locks) must page until it has them.
The stand-in (tests/_postgrest.py) caps reads as PostgREST does, here at 50 rows, in front
of a real PostgreSQL database; every outcome is read back with plain psycopg.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
import respx
from _postgrest import PostgrestBridge, migrated_database
from psycopg.types.json import Jsonb

from hybridwb.config import Settings
from hybridwb.errors import StoreError
from hybridwb.platform.rest import RestBackend
from hybridwb.platform.store import Store
from hybridwb.workflows.runner import Runner

pytestmark = pytest.mark.postgres

BASE = "https://proj.supabase.co"
REST = f"{BASE}/rest/v1"
KEY = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJl"
MAX_ROWS = 50


@pytest.fixture
def dsn() -> Iterator[str]:
    yield from migrated_database("hybridwb_maxrows")


@pytest.fixture
def api(dsn: str) -> Iterator[PostgrestBridge]:
    bridge = PostgrestBridge(dsn, max_rows=MAX_ROWS)
    with respx.mock(base_url=REST, assert_all_called=False) as router:
        bridge.mount(router)
        yield bridge


@pytest.fixture
def store(api: PostgrestBridge) -> Iterator[Store]:
    store = Store(RestBackend(BASE, KEY, "SUPABASE_SERVICE_ROLE_KEY", base_delay=0), actor="t")
    yield store
    store.close()


def oracle(dsn: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return list(conn.execute(sql, params).fetchall())


def insert(dsn: str, sql: str, rows: list[tuple[Any, ...]]) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany(sql, rows)


#: one send record: (id, run, workflow, key, recipient, created_at)
RECORD = (
    "INSERT INTO send_records (id, run_id, workflow_id, target_key, recipient, channel,"
    " status, created_at) VALUES (%s, %s, %s, %s, %s, 'sms', 'queued', %s)"
)


def records_of(dsn: str, rid: Any, wf: Any, stamps: list[datetime]) -> None:
    """A record of run `rid` for each stamp: keys k000.., phones 010-0000-0000.."""
    rows = [
        (uuid.uuid4(), rid, wf, f"k{i:03d}", f"010-0000-{i:04d}", at) for i, at in enumerate(stamps)
    ]
    insert(dsn, RECORD, rows)


def at_second(
    api: PostgrestBridge, monkeypatch: pytest.MonkeyPatch, marker: str, then: Any, nth: int = 2
) -> None:
    """`then()` right after the stand-in has run its second (`nth`) statement holding
    `marker`."""
    run, seen = api._run, []

    def run_then(statement: Any, params: list[Any]) -> Any:
        out = run(statement, params)
        if marker in repr(statement):
            seen.append(statement)
            if len(seen) == nth:
                then()
        return out

    monkeypatch.setattr(api, "_run", run_then)


def test_the_active_mappings_are_each_tables_latest_version_past_max_rows(
    store: Store, dsn: str
) -> None:
    """Twelve tables saved eight times each (96 versions, over the cap of 50): each table's
    mapping is its latest version's, and a table whose latest version is deactivated is
    not active. A scheduled run on a machine without the mapping file takes its mappings
    from here (`MappingService.load`'s store mirror)."""
    at = datetime(2026, 1, 1, tzinfo=UTC)
    insert(
        dsn,
        "INSERT INTO table_mappings (id, name, config, is_active, version, created_at,"
        " updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        [
            (
                uuid.uuid4(),
                f"t{t:02d}",
                Jsonb({"version": v, "consent": f"consent_v{v}"}),
                not (t == 0 and v == 8),  # t00's latest version is switched off
                v,
                at + timedelta(minutes=v),
                at + timedelta(minutes=v),
            )
            for t in range(12)
            for v in range(1, 9)
        ],
    )
    expected = {
        name: config
        for name, config, active in oracle(
            dsn,
            "SELECT DISTINCT ON (name) name, config, is_active FROM table_mappings"
            " ORDER BY name, version DESC",
        )
        if active
    }
    assert len(expected) == 11 and all(c["version"] == 8 for c in expected.values())
    assert store.mappings.active() == expected


def test_a_runs_records_are_all_read_past_max_rows(store: Store, dsn: str) -> None:
    """A run with 101 send records (over twice the cap of 50: the last page holds one)
    lists all 101, in the order written."""
    wf, rid = uuid.uuid4(), uuid.uuid4()
    at = datetime(2026, 1, 1, tzinfo=UTC)
    records_of(dsn, rid, wf, [at + timedelta(seconds=i) for i in range(101)])
    expected = [
        k
        for (k,) in oracle(
            dsn, "SELECT target_key FROM send_records WHERE run_id = %s ORDER BY created_at", rid
        )
    ]
    assert len(expected) == 101
    assert [r["target_key"] for r in store.runs.records(rid)] == expected
    assert store.runs.done_keys(rid) == set(expected)


def test_marking_stale_runs_leaves_live_runs_alone_past_max_rows(
    store: Store, dsn: str, tmp_path: Any
) -> None:
    """Sixty workflows each running, each lock beating now (over the cap of 50): none is
    marked stale. The locks were read in one request, cut to the 50 oldest, and the ten
    newest runs, found without a lock, were marked stale while they ran."""
    now = datetime.now(UTC)
    runs = [(uuid.uuid4(), uuid.uuid4()) for _ in range(60)]
    insert(
        dsn,
        "INSERT INTO workflow_runs (id, workflow_id, status, parameters, dry_run, target_count,"
        " rendered_count, skipped_count, failed_count, sent_count, missing_variables, stats,"
        " created_at) VALUES (%s, %s, 'running', '{}', false, 0, 0, 0, 0, 0, '[]', '{}', %s)",
        [(rid, wf, now) for wf, rid in reversed(runs)],  # the newest locks' runs first
    )
    insert(
        dsn,
        "INSERT INTO run_locks (workflow_id, run_id, owner, acquired_at, heartbeat_at)"
        " VALUES (%s, %s, %s, %s, %s)",
        [
            (wf, rid, f"host:{i}", now - timedelta(seconds=60 - i), now)
            for i, (wf, rid) in enumerate(runs)
        ],
    )
    marked = Runner(Settings(), store).mark_stale()
    assert marked == []
    assert oracle(dsn, "SELECT count(*) FROM workflow_runs WHERE status = 'stale'") == [(0,)]


def test_records_written_at_one_stamp_are_each_read_once_past_max_rows(
    store: Store, dsn: str
) -> None:
    """A batch's records share one `created_at` (`Runs.add_records` stamps them once), so
    the order asked for ties everywhere: paged by offset on that order alone, the server
    may answer a row on two pages and another on none (PostgreSQL's top-N sort is not
    stable across limits). Paged on the key as well, each of the 240 is read once."""
    wf, rid = uuid.uuid4(), uuid.uuid4()
    at = datetime(2026, 1, 1, tzinfo=UTC)
    records_of(dsn, rid, wf, [at + timedelta(hours=i % 2) for i in range(240)])
    expected = oracle(dsn, "SELECT target_key FROM send_records WHERE run_id = %s", rid)
    assert len(expected) == 240
    read = [r["target_key"] for r in store.runs.records(rid)]
    assert sorted(read) == sorted(k for (k,) in expected)
    parity = [int(k[1:]) % 2 for k in read]  # by created_at: the even keys' stamp first
    assert parity == sorted(parity)


def test_a_record_written_between_pages_leaves_each_row_read_once(
    api: PostgrestBridge, store: Store, dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record written, ahead of the others in the order, while the pages are read (after
    the first page): paged by offset, it shifted every later row one place down and the
    row that ended the first page was answered again; by keyset the next page starts
    after that row. Each row is read once."""
    wf, rid = uuid.uuid4(), uuid.uuid4()
    at = datetime(2026, 1, 1, tzinfo=UTC)
    records_of(dsn, rid, wf, [at + timedelta(seconds=i) for i in range(120)])
    at_second(  # the first page: one record written ahead of the others
        api,
        monkeypatch,
        "ORDER BY",
        lambda: insert(dsn, RECORD, [(uuid.uuid4(), rid, wf, "early", "010-9999-0000", at)]),
        nth=1,
    )
    read = [r["target_key"] for r in store.runs.records(rid)]
    originals = [f"k{i:03d}" for i in range(120)]
    assert oracle(dsn, "SELECT count(*) FROM send_records WHERE target_key = 'early'") == [(1,)]
    assert len(read) == len(set(read))
    assert [k for k in read if k != "early"] == originals


def test_a_read_with_a_limit_above_max_rows_gets_its_limit(store: Store, dsn: str) -> None:
    """`%platform runs` lists up to 1,000 runs and the monitor summarises up to 50,000 query
    logs; past the server's cap each got the cap's worth, the newest, and said nothing."""
    at = datetime(2026, 1, 1, tzinfo=UTC)
    insert(
        dsn,
        "INSERT INTO workflow_runs (id, workflow_id, status, parameters, dry_run, target_count,"
        " rendered_count, skipped_count, failed_count, sent_count, missing_variables, stats,"
        " created_at) VALUES (%s, %s, 'succeeded', '{}', false, 0, 0, 0, 0, 0, '[]', '{}', %s)",
        [(uuid.uuid4(), uuid.uuid4(), at + timedelta(minutes=i)) for i in range(130)],
    )
    newest = [
        str(i)
        for (i,) in oracle(dsn, "SELECT id FROM workflow_runs ORDER BY created_at DESC LIMIT 120")
    ]
    read = store.backend.select("workflow_runs", order_by="created_at", desc=True, limit=120)
    assert [r["id"] for r in read] == newest
    assert len(store.listing("runs")) == 130


# -- a claim whose answer was lost ---------------------------------------------------------
class _LostAnswer(PostgrestBridge):
    """The stand-in, the first POST to `table` committed and its answer lost."""

    def __init__(self, dsn: str, table: str) -> None:
        super().__init__(dsn)
        self.lose, self.posts = table, 0

    def table(self, request: httpx.Request, table: str) -> httpx.Response:
        answer = super().table(request, table)
        if request.method == "POST" and table == self.lose:
            self.posts += 1
            if self.posts == 1:
                raise httpx.ReadTimeout("the answer was lost", request=request)
        return answer


@pytest.fixture
def lost(dsn: str) -> Iterator[tuple[_LostAnswer, Store]]:
    bridge = _LostAnswer(dsn, "schedule_locks")
    with respx.mock(base_url=REST, assert_all_called=False) as router:
        bridge.mount(router)
        store = Store(RestBackend(BASE, KEY, "SUPABASE_SERVICE_ROLE_KEY", base_delay=0), actor="t")
        yield bridge, store
        store.close()


SLOT = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize("zone", ["UTC", "Asia/Seoul"])
def test_a_schedule_slot_claimed_whose_answer_was_lost_is_ours(
    lost: tuple[_LostAnswer, Store], dsn: str, zone: str
) -> None:
    """The claim's insert commits and its answer is lost; the repeat inserts nothing (the
    row is there). The slot is this claimant's: before, the repeat's empty answer read as
    "someone else has it", so `run_due` skipped the workflow without a word, and every
    later check found the slot taken: the scheduled campaign never ran. The server may
    answer its times in another zone (the database's `timezone`): the same instants."""
    bridge, store = lost
    with psycopg.connect(dsn, autocommit=True) as conn:
        name = conn.info.dbname
        conn.execute(f"ALTER DATABASE \"{name}\" SET timezone TO '{zone}'")
    wf = uuid.uuid4()
    assert store.claim_schedule(wf, SLOT, "cron:1") is True
    assert bridge.posts == 2  # the first, and its repeat
    assert oracle(
        dsn,
        "SELECT owner FROM schedule_locks WHERE workflow_id = %s AND scheduled_for = %s",
        wf,
        SLOT,
    ) == [("cron:1",)]


@pytest.mark.parametrize("holder", ["cron:2", "cron:1"], ids=["another", "same owner name"])
def test_a_slot_already_held_is_not_ours_after_a_lost_answer(
    lost: tuple[_LostAnswer, Store], dsn: str, holder: str
) -> None:
    """The slot was claimed before (by another process, or by an earlier one under the same
    owner name: pid 1 in a container): a claim whose answer was lost is refused, not read
    as ours, and the row is left as it was."""
    bridge, store = lost
    wf = uuid.uuid4()
    before = SLOT - timedelta(minutes=1)
    insert(
        dsn,
        "INSERT INTO schedule_locks (workflow_id, scheduled_for, owner, locked_at)"
        " VALUES (%s, %s, %s, %s)",
        [(wf, SLOT, holder, before)],
    )
    assert store.claim_schedule(wf, SLOT, "cron:1") is False
    assert bridge.posts == 2
    assert oracle(
        dsn, "SELECT owner, locked_at FROM schedule_locks WHERE workflow_id = %s", wf
    ) == [(holder, before)]


def test_every_scheduled_workflow_is_due_past_max_rows(store: Store, dsn: str) -> None:
    """Sixty active workflows scheduled for 09:00 (over the cap of 50): at 09:01 all sixty
    are due. Before, the scheduler read the workflows in one request, got fifty, and the
    other ten never ran."""
    from hybridwb.workflows import scheduler

    at = datetime(2026, 1, 1, tzinfo=UTC)
    insert(
        dsn,
        "INSERT INTO workflows (id, name, status, trigger_type, trigger_config, target_config,"
        " message_config, variables, schedule_config, created_at, updated_at)"
        " VALUES (%s, %s, 'active', 'schedule', '{}', '{}', '{}', '{}', %s, %s, %s)",
        [
            (
                uuid.uuid4(),
                f"w{i:02d}",
                Jsonb({"cron": "0 9 * * *", "timezone": "Asia/Seoul"}),
                at + timedelta(seconds=i),
                at,
            )
            for i in range(60)
        ],
    )
    now = datetime(2026, 3, 2, 0, 1, tzinfo=UTC)  # 09:01 in Seoul
    due = scheduler.due(store.workflows.list(), now).due
    assert sorted(d.workflow["name"] for d in due) == [
        n for (n,) in oracle(dsn, "SELECT name FROM workflows ORDER BY name")
    ]


def test_every_individual_variable_is_read_past_max_rows(store: Store, dsn: str) -> None:
    """Sixty individual variables (over the cap of 50): a template's variables are matched
    against all sixty (`TemplateService.individual` reads them all), not the first fifty."""
    at = datetime(2026, 1, 1, tzinfo=UTC)
    insert(
        dsn,
        "INSERT INTO individual_variables (id, name, source_type, source, usage_count,"
        " created_at, updated_at) VALUES (%s, %s, 'constant', %s, 0, %s, %s)",
        [(uuid.uuid4(), f"v{i:02d}", f"값{i}", at + timedelta(seconds=i), at) for i in range(60)],
    )
    names = {n for (n,) in oracle(dsn, "SELECT name FROM individual_variables")}
    assert len(names) == 60
    assert {v["name"] for v in store.variables.list()} == names


def test_rows_deleted_between_pages_end_the_read_without_an_error(
    api: PostgrestBridge, store: Store, dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """120 records; after the first page 80 of them are deleted, so nothing is left after
    the first page: the read ends there with the rows it has, as a read of that moment
    (paged by offset, the next page started past the end and PostgREST answered 416,
    `PGRST103`, which the read had to take for an end, not `Supabase failed`)."""
    wf, rid = uuid.uuid4(), uuid.uuid4()
    at = datetime(2026, 1, 1, tzinfo=UTC)
    records_of(dsn, rid, wf, [at + timedelta(seconds=i) for i in range(120)])
    at_second(  # the first page: 80 deleted
        api,
        monkeypatch,
        "ORDER BY",
        lambda: oracle(dsn, "DELETE FROM send_records WHERE target_key >= 'k040' RETURNING 1"),
        nth=1,
    )
    read = [r["target_key"] for r in store.runs.records(rid)]
    assert read == [f"k{i:03d}" for i in range(50)]
    assert oracle(dsn, "SELECT count(*) FROM send_records WHERE run_id = %s", rid) == [(40,)]


# -- an insert whose first request is still on its way -------------------------------------
class _Delayed(PostgrestBridge):
    """The stand-in, the first POST to `table` held back (queued in PostgREST's pool, say)
    while the client's read times out; `release()` runs it later, as the server would."""

    def __init__(self, dsn: str, table: str) -> None:
        super().__init__(dsn)
        self.hold, self.held, self.late = table, None, None
        self.posts = 0

    between = False  # run the held request just after the client's look-up for it

    def table(self, request: httpx.Request, table: str) -> httpx.Response:
        if request.method == "POST" and table == self.hold:
            self.posts += 1
            if self.posts == 1:
                self.held = (request, table)
                raise httpx.ReadTimeout("no answer yet", request=request)
        answer = super().table(request, table)
        if request.method == "GET" and table == self.hold and self.between and not self.late:
            self.release()
        return answer

    def release(self) -> httpx.Response:
        request, table = self.held
        self.late = super().table(request, table)
        return self.late


@pytest.mark.parametrize("lands", ["after", "between"])
def test_an_insert_still_on_its_way_when_its_answer_timed_out_is_written_once(
    dsn: str, lands: str
) -> None:
    """A run row's insert times out while the server still has it queued: the look-up by
    id finds nothing yet. Before, the create failed ("Supabase did not answer") and the
    queued insert then wrote the run anyway: a run the caller was told does not exist,
    `queued` for ever, later marked stale with "resume with …". Now the row is sent again
    as an insert that leaves a row with its id alone: the run is created and reported, and
    the late first request writes nothing. Landing between the look-up and the second
    send, it writes the row and the second send leaves it alone: reported all the same."""
    bridge = _Delayed(dsn, "workflow_runs")
    bridge.between = lands == "between"
    wf = uuid.uuid4()
    with respx.mock(base_url=REST, assert_all_called=False) as router:
        bridge.mount(router)
        store = Store(RestBackend(BASE, KEY, "SUPABASE_SERVICE_ROLE_KEY", base_delay=0), actor="t")
        try:
            run: Any = store.runs.create(wf, {})
        except StoreError as exc:
            run = exc  # as before: told it failed
        finally:
            store.close()
        late = bridge.late or bridge.release()
    written = oracle(dsn, "SELECT id FROM workflow_runs WHERE workflow_id = %s", wf)
    assert len(written) == 1  # the late request or the one sent again: one row, either way
    assert not isinstance(run, StoreError), "told it failed, and the run row was written"
    assert written == [(run["id"],)]
    # the first request, late: after the second send the id is taken, nothing written
    assert late.status_code == (409 if lands == "after" else 201)
