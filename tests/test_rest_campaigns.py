"""Campaigns on the Supabase REST store: the SQL functions of migrations 0005 and 0008 on
real PostgreSQL, called as the roles PostgREST uses, and `RestCampaigns` at its HTTP seam.

No PostgREST server runs here. The functions are called the way PostgREST calls them (a
transaction per request, `SET LOCAL ROLE` to the key's role, named arguments); the client
is checked by the exact requests it sends (respx), and by a bridge that hands each RPC
request to those same functions on PostgreSQL, so what it reads back is real. Every
assertion on an outcome reads the rows with plain psycopg, never through the code under
test.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
import respx
from _postgrest import PostgrestBridge
from psycopg.types.json import Jsonb
from sqlalchemy.engine import URL

from hybridwb.errors import AuthError, StoreError, ValidationError
from hybridwb.platform.backend import SqlBackend
from hybridwb.platform.campaigns import Campaigns, CapCheck
from hybridwb.platform.rest import RestBackend
from hybridwb.platform.rest_campaigns import RestCampaigns
from hybridwb.platform.store import Store
from hybridwb.workflows import policies, spelling

pytestmark = pytest.mark.postgres

BASE = "https://proj.supabase.co"
REST = f"{BASE}/rest/v1"
KEY = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJl"
FUNCTIONS = (
    "hybridwb_acquire",
    "hybridwb_heartbeat",
    "hybridwb_pending",
    "hybridwb_write_batch",
    "hybridwb_seen",
    "hybridwb_run_counts",
    "hybridwb_exclusions",
    "hybridwb_freeze_clear",
    "hybridwb_freeze_page",
    "hybridwb_freeze_mark",
    "hybridwb_set_stats",
    "hybridwb_lock_names_own_run",  # 0009's triggers: a lock names a run of its workflow
    "hybridwb_run_of_its_lock",
)


# -- a database prepared as Supabase prepares one ------------------------------------------
@pytest.fixture(scope="module")
def db() -> Iterator[str]:
    name = f"hybridwb_rpc_{uuid.uuid4().hex[:8]}"
    admin = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = f"host=127.0.0.1 port=5432 user=postgres dbname={name}"
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for role in ("anon", "authenticated", "service_role"):
                if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone():
                    extra = " BYPASSRLS" if role == "service_role" else ""
                    conn.execute(f"CREATE ROLE {role} NOLOGIN{extra}")
            conn.execute("GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role")
            # Supabase's default privileges: every new table and function to every API role
            conn.execute(
                "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
                "GRANT ALL ON TABLES TO anon, authenticated, service_role"
            )
            conn.execute(
                "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
                "GRANT EXECUTE ON FUNCTIONS TO anon, authenticated, service_role"
            )
        url = URL.create(
            "postgresql+psycopg", username="postgres", host="127.0.0.1", port=5432, database=name
        )
        store = Store(SqlBackend(url), actor="owner")
        store.init()
        store.close()
        yield dsn
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def rows(dsn: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """The oracle: plain SQL as the database owner (a statement without rows gives [])."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(sql, params)
        return list(cur.fetchall()) if cur.description else []


def lock_waits(dsn: str, pattern: str, thread: threading.Thread, seconds: float = 30) -> int:
    """How many statements matching `pattern` (LIKE) wait on a lock in the database, polled
    until one does, `thread` ends or `seconds` pass (the server says it is blocked, not
    merely slow to start)."""
    found: list[tuple[Any, ...]] = []
    deadline = time.monotonic() + seconds
    while not found and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)  # a poll interval, not a wait for the outcome
        found = rows(
            dsn,
            "SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND query LIKE %s",
            pattern,
        )
    return len(found)


def call(dsn: str, fn: str, role: str = "service_role", **params: Any) -> Any:
    """`fn(name => value, ...)` in its own transaction as `role`, as PostgREST calls it."""
    args = ", ".join(f"{k} => %s" for k in params)
    values = [
        Jsonb(v) if isinstance(v, dict | list) and k != "p_recipients" else v
        for k, v in params.items()
    ]
    with psycopg.connect(dsn) as conn:
        conn.execute(f"SET LOCAL ROLE {role}")
        (value,) = conn.execute(f"SELECT {fn}({args})", values).fetchone()  # type: ignore[misc]
        conn.commit()
    return value


@pytest.fixture
def run(db: str) -> tuple[str, str]:
    """A workflow id and a run of it (the run row the frozen set hangs on)."""
    wf, rid = str(uuid.uuid4()), str(uuid.uuid4())
    rows(
        db,
        "INSERT INTO workflow_runs (id, workflow_id, status, parameters, dry_run, target_count,"
        " rendered_count, skipped_count, failed_count, sent_count, missing_variables, stats,"
        " created_at) VALUES (%s, %s, 'running', '{}', false, 0, 0, 0, 0, 0, '[]', '{}', now())"
        " RETURNING id",
        rid,
        wf,
    )
    rows(
        db,
        "INSERT INTO run_state (run_id, frozen_count, changed_count) VALUES (%s, 0, 0)"
        " RETURNING run_id",
        rid,
    )
    return wf, rid


def freeze(db: str, rid: str, pairs: list[tuple[str, str | None]]) -> None:
    with psycopg.connect(db, autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO run_targets (run_id, seq, target_key, recipient) VALUES (%s,%s,%s,%s)",
            [(rid, i, k, r) for i, (k, r) in enumerate(pairs, 1)],
        )


# -- the functions, as roles ---------------------------------------------------------------
def test_only_the_service_role_may_execute_the_functions(db: str, run: tuple[str, str]) -> None:
    wf, rid = run
    for role in ("anon", "authenticated"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            call(db, "hybridwb_run_counts", role, p_run_id=rid)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            call(
                db,
                "hybridwb_acquire",
                role,
                p_workflow_id=wf,
                p_run_id=rid,
                p_owner="x",
                p_stale_after=60.0,
            )
    assert rows(db, "SELECT count(*) FROM run_locks WHERE workflow_id = %s", wf) == [(0,)]
    grants = rows(
        db,
        "SELECT p.proname, p.prosecdef, array_to_string(p.proconfig, ','),"
        " has_function_privilege('anon', p.oid, 'EXECUTE'),"
        " has_function_privilege('authenticated', p.oid, 'EXECUTE'),"
        " has_function_privilege('service_role', p.oid, 'EXECUTE')"
        " FROM pg_proc p WHERE p.proname LIKE 'hybridwb\\_%%' ORDER BY 1",
    )
    assert sorted(g[0] for g in grants) == sorted(FUNCTIONS)
    for name, definer, config, anon, authenticated, service in grants:
        assert (definer, anon, authenticated, service) == (False, False, False, True), name
        assert config.startswith("search_path=public"), name


def test_the_functions_obey_the_tables_privileges(db: str, run: tuple[str, str]) -> None:
    """SECURITY INVOKER: a role granted EXECUTE by mistake still meets the tables' grants."""
    _, rid = run
    rows(db, "GRANT EXECUTE ON FUNCTION hybridwb_run_counts(uuid) TO authenticated")
    try:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            call(db, "hybridwb_run_counts", "authenticated", p_run_id=rid)
    finally:
        rows(db, "REVOKE EXECUTE ON FUNCTION hybridwb_run_counts(uuid) FROM authenticated")


def _acquire_all(db: str, wf: str, runs: list[str], stale_after: float) -> list[Any]:
    barrier = threading.Barrier(len(runs))
    out: list[Any] = [None] * len(runs)

    def go(i: int) -> None:
        barrier.wait()
        out[i] = call(
            db,
            "hybridwb_acquire",
            p_workflow_id=wf,
            p_run_id=runs[i],
            p_owner=f"host:{i}",
            p_stale_after=stale_after,
        )

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(runs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_concurrent_acquires_give_one_winner(db: str) -> None:
    wf = str(uuid.uuid4())
    runs = [str(uuid.uuid4()) for _ in range(6)]
    out = _acquire_all(db, wf, runs, 600.0)
    winners = [r for r, held in zip(runs, out, strict=True) if held is None]
    assert len(winners) == 1
    assert rows(db, "SELECT run_id::text FROM run_locks WHERE workflow_id = %s", wf) == [
        (winners[0],)
    ]
    assert all(held["run_id"] == winners[0] for held in out if held is not None)


def test_a_stale_lock_is_taken_over_by_exactly_one_contender(db: str) -> None:
    wf, old = str(uuid.uuid4()), str(uuid.uuid4())
    assert (
        call(
            db,
            "hybridwb_acquire",
            p_workflow_id=wf,
            p_run_id=old,
            p_owner="gone:1",
            p_stale_after=60.0,
        )
        is None
    )
    rows(
        db,
        "UPDATE run_locks SET heartbeat_at = now() - interval '1 hour' "
        "WHERE workflow_id = %s RETURNING 1",
        wf,
    )
    runs = [str(uuid.uuid4()) for _ in range(5)]
    out = _acquire_all(db, wf, runs, 60.0)
    winners = [r for r, held in zip(runs, out, strict=True) if held is None]
    assert len(winners) == 1
    assert rows(db, "SELECT run_id::text FROM run_locks WHERE workflow_id = %s", wf) == [
        (winners[0],)
    ]
    # the old holder's heartbeat no longer beats, and a live holder is not taken over
    assert call(db, "hybridwb_heartbeat", p_workflow_id=wf, p_run_id=old, p_owner="gone:1") is False
    assert (
        call(
            db,
            "hybridwb_acquire",
            p_workflow_id=wf,
            p_run_id=old,
            p_owner="gone:1",
            p_stale_after=60.0,
        )["run_id"]
        == winners[0]
    )


def test_a_takeover_waits_for_a_takeover_in_flight(db: str) -> None:
    """Interleaved, not raced: the first takeover's transaction is open when the second
    arrives; the second waits for it and then sees a live holder."""
    wf, old, first, second = (str(uuid.uuid4()) for _ in range(4))
    call(
        db, "hybridwb_acquire", p_workflow_id=wf, p_run_id=old, p_owner="gone:1", p_stale_after=60.0
    )
    rows(
        db,
        "UPDATE run_locks SET heartbeat_at = now() - interval '1 hour' WHERE workflow_id = %s",
        wf,
    )
    out: list[Any] = []
    with psycopg.connect(db) as conn:
        conn.execute("SET LOCAL ROLE service_role")
        won = conn.execute(
            "SELECT hybridwb_acquire(p_workflow_id => %s, p_run_id => %s, p_owner => 'a:1',"
            " p_stale_after => 60.0)",
            [wf, first],
        ).fetchone()
        assert won == (None,)
        thread = threading.Thread(
            target=lambda: out.append(
                call(
                    db,
                    "hybridwb_acquire",
                    p_workflow_id=wf,
                    p_run_id=second,
                    p_owner="b:1",
                    p_stale_after=60.0,
                )
            )
        )
        thread.start()
        # blocked on the other call's row lock, not merely slow to start
        assert lock_waits(db, "%hybridwb_acquire%", thread) == 1 and thread.is_alive()
        conn.commit()
    thread.join()
    assert out[0] is not None and out[0]["run_id"] == first
    assert rows(db, "SELECT run_id::text FROM run_locks WHERE workflow_id = %s", wf) == [(first,)]


def test_a_dead_owner_named_by_the_caller_is_replaced_only_while_it_holds(db: str) -> None:
    wf, a, b = (str(uuid.uuid4()) for _ in range(3))
    call(db, "hybridwb_acquire", p_workflow_id=wf, p_run_id=a, p_owner="h:1", p_stale_after=600.0)
    held = call(
        db,
        "hybridwb_acquire",
        p_workflow_id=wf,
        p_run_id=b,
        p_owner="h:2",
        p_stale_after=600.0,
        p_dead_owner="h:9",
    )
    assert held["owner"] == "h:1"
    assert (
        call(
            db,
            "hybridwb_acquire",
            p_workflow_id=wf,
            p_run_id=b,
            p_owner="h:2",
            p_stale_after=600.0,
            p_dead_owner="h:1",
        )
        is None
    )
    assert rows(db, "SELECT owner FROM run_locks WHERE workflow_id = %s", wf) == [("h:2",)]


def _batch(db: str, wf: str, rid: str, owner: str | None, **kw: Any) -> Any:
    return call(
        db,
        "hybridwb_write_batch",
        p_run_id=rid,
        p_workflow_id=wf,
        p_owner=owner,
        p_channel="sms",
        **{"p_records": [], "p_skips": [], **kw},
    )


def test_a_batch_whose_lock_was_taken_writes_nothing(db: str, run: tuple[str, str]) -> None:
    wf, rid = run
    call(
        db,
        "hybridwb_acquire",
        p_workflow_id=wf,
        p_run_id=rid,
        p_owner="other:1",
        p_stale_after=60.0,
    )
    out = _batch(
        db,
        wf,
        rid,
        "me:1",
        p_records=[["k1", "+821000000001", "hi"]],
        p_skips=[["k2", "no recipient"]],
        p_changed=3,
    )
    assert out["held"] is False
    assert rows(db, "SELECT count(*) FROM send_records WHERE run_id = %s", rid) == [(0,)]
    assert rows(db, "SELECT count(*) FROM run_skips WHERE run_id = %s", rid) == [(0,)]
    assert rows(db, "SELECT changed_count FROM run_state WHERE run_id = %s", rid) == [(0,)]


def test_a_repeated_batch_writes_and_counts_nothing_twice(db: str, run: tuple[str, str]) -> None:
    """A lost answer makes the client send the batch again: same rows, same counts."""
    wf, rid = run
    call(db, "hybridwb_acquire", p_workflow_id=wf, p_run_id=rid, p_owner="me:1", p_stale_after=60.0)
    cap = {
        "space": "hybridwb:recipients:sms",
        "messages": 1,
        "reason": "frequency cap",
        "since": (datetime.now(UTC) - timedelta(days=7)).isoformat(),
        "spellings": {},
    }
    batch = {
        "p_records": [["k1", "+821000000001", "hi"], ["k2", "+821000000002", "hi"]],
        "p_skips": [["k3", "no recipient"]],
        "p_changed": 2,
        "p_cap": cap,
    }
    for _ in range(3):
        assert _batch(db, wf, rid, "me:1", **batch)["held"] is True
    assert rows(
        db,
        "SELECT target_key, recipient, content, status FROM send_records "
        "WHERE run_id = %s ORDER BY 1",
        rid,
    ) == [("k1", "+821000000001", "hi", "queued"), ("k2", "+821000000002", "hi", "queued")]
    assert rows(db, "SELECT target_key, reason FROM run_skips WHERE run_id = %s", rid) == [
        ("k3", "no recipient")
    ]
    assert rows(db, "SELECT changed_count FROM run_state WHERE run_id = %s", rid) == [(2,)]


def test_the_cap_is_checked_again_where_records_are_written(db: str) -> None:
    """Two workflows that both read 'never messaged' and write at once: cap 1 lets one
    record through; the other becomes a 'frequency cap' exclusion. A legacy spelling in the
    history counts against the cap too."""
    phone, legacy = "+821077770001", "01077770002"
    runs = []
    for _ in range(2):
        wf, rid = str(uuid.uuid4()), str(uuid.uuid4())
        rows(
            db,
            "INSERT INTO workflow_runs (id, workflow_id, status, parameters, dry_run,"
            " target_count, rendered_count, skipped_count, failed_count, sent_count,"
            " missing_variables, stats, created_at) VALUES (%s, %s, 'running', '{}',"
            " false, 0, 0, 0, 0, 0, '[]', '{}', now()) RETURNING 1",
            rid,
            wf,
        )
        runs.append((wf, rid))
    # an older run of a third workflow messaged the second person under a national spelling
    wf0, rid0 = str(uuid.uuid4()), runs[0][1]
    rows(
        db,
        "INSERT INTO send_records (id, run_id, workflow_id, target_key, recipient, channel,"
        " status, created_at) VALUES (%s, %s, %s, 'old', %s, 'sms', 'queued',"
        " now() - interval '1 day') RETURNING 1",
        str(uuid.uuid4()),
        rid0,
        wf0,
        legacy,
    )
    since = (datetime.now(UTC) - timedelta(days=7)).isoformat()
    spellings = spelling.stored_spellings("sms", [phone, "+821077770002"])
    cap = {
        "space": "hybridwb:recipients:sms",
        "messages": 1,
        "since": since,
        "reason": policies.CAP,
        "spellings": spellings,
    }
    barrier = threading.Barrier(2)
    out: list[Any] = [None, None]

    def go(i: int) -> None:
        wf, rid = runs[i]
        barrier.wait()
        out[i] = _batch(
            db,
            wf,
            rid,
            None,
            p_cap=cap,
            p_records=[[f"a{i}", phone, "hi"], [f"b{i}", "+821077770002", "hi"]],
        )

    threads = [threading.Thread(target=go, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert rows(db, "SELECT count(*) FROM send_records WHERE recipient = %s", phone) == [(1,)]
    assert rows(db, "SELECT count(*) FROM send_records WHERE recipient = '+821077770002'") == [(0,)]
    reasons = rows(
        db,
        "SELECT target_key, reason FROM run_skips WHERE run_id = ANY(%s) ORDER BY 1",
        [rid for _, rid in runs],
    )
    assert [r for r in reasons if r[0].startswith("b")] == [
        ("b0", policies.CAP),
        ("b1", policies.CAP),
    ]
    assert len([r for r in reasons if r[0].startswith("a")]) == 1
    assert sorted(o["capped"] for o in out) == [1, 2]


def test_pending_counts_and_exclusions_read_the_rows(db: str, run: tuple[str, str]) -> None:
    wf, rid = run
    freeze(db, rid, [(f"k{i}", f"+8210000000{i:02d}") for i in range(1, 8)])
    _batch(
        db,
        wf,
        rid,
        None,
        p_records=[["k2", "+821000000002", "x"]],
        p_skips=[["k4", "gone from source"], ["k5", "cooldown"]],
    )
    page = call(db, "hybridwb_pending", p_run_id=rid, p_after=0, p_limit=5)
    assert page["last"] == 5
    assert [r["target_key"] for r in page["rows"]] == ["k1", "k3"]
    unchecked = call(db, "hybridwb_pending", p_run_id=rid, p_after=0, p_limit=5, p_check_done=False)
    assert [r["target_key"] for r in unchecked["rows"]] == ["k1", "k2", "k3", "k4", "k5"]
    tail = call(db, "hybridwb_pending", p_run_id=rid, p_after=7, p_limit=5)
    assert tail == {"last": 7, "rows": []}
    counts = call(db, "hybridwb_run_counts", p_run_id=rid)
    oracle = {
        "targets": rows(db, "SELECT count(*) FROM run_targets WHERE run_id = %s", rid)[0][0],
        "records": rows(db, "SELECT count(*) FROM send_records WHERE run_id = %s", rid)[0][0],
        "by_reason": dict(
            rows(
                db, "SELECT reason, count(*) FROM run_skips WHERE run_id = %s GROUP BY reason", rid
            )
        ),
    }
    assert (
        counts
        == oracle
        == {"targets": 7, "records": 1, "by_reason": {"gone from source": 1, "cooldown": 1}}
    )
    assert call(db, "hybridwb_exclusions", p_run_id=rid, p_limit=10) == [
        {"target_key": "k4", "recipient": "+821000000004", "reason": "gone from source"},
        {"target_key": "k5", "recipient": "+821000000005", "reason": "cooldown"},
    ]


def test_seen_adds_up_the_history_like_the_sql_backend(db: str, run: tuple[str, str]) -> None:
    wf, rid = run
    other_wf, old_run = str(uuid.uuid4()), str(uuid.uuid4())
    rows(
        db,
        "INSERT INTO workflow_runs (id, workflow_id, status, parameters, dry_run,"
        " target_count, rendered_count, skipped_count, failed_count, sent_count,"
        " missing_variables, stats, created_at) VALUES (%s, %s, 'succeeded', '{}', false,"
        " 0, 0, 0, 0, 0, '[]', '{}', now()) RETURNING 1",
        old_run,
        wf,
    )
    history = [
        (old_run, wf, "p1", 10),
        (old_run, wf, "p1", 1),
        (rid, wf, "p2", 0),
        (old_run, other_wf, "p3", 2),
        (old_run, other_wf, "p4", 30),
    ]
    for i, (r, w, rec, days) in enumerate(history):
        rows(
            db,
            "INSERT INTO send_records (id, run_id, workflow_id, target_key, recipient,"
            " channel, status, created_at) VALUES (%s, %s, %s, %s, %s, 'sms', 'queued',"
            " now() - make_interval(days => %s)) RETURNING 1",
            str(uuid.uuid4()),
            r,
            w,
            f"h{i}",
            rec,
            days,
        )
    now = datetime.now(UTC)
    cool, cap = now - timedelta(days=5), now - timedelta(days=7)
    got = call(
        db,
        "hybridwb_seen",
        p_recipients=["p1", "p2", "p3", "p4", "p5"],
        p_workflow_id=wf,
        p_run_id=rid,
        p_cool_since=cool.isoformat(),
        p_cap_since=cap.isoformat(),
    )
    assert sorted(map(tuple, got)) == [("p1", 0, 2, 1, 1), ("p2", 1, 0, 0, 1), ("p3", 0, 0, 0, 1)]
    sql = Campaigns(
        SqlBackend(
            URL.create(
                "postgresql+psycopg",
                username="postgres",
                host="127.0.0.1",
                port=5432,
                database=db.rsplit("=", 1)[1],
            )
        )
    )
    assert sorted(map(tuple, got)) == sorted(
        sql.seen(["p1", "p2", "p3", "p4", "p5"], wf, rid, cool, cap)
    )
    sql.backend.close()


# -- the client at its HTTP seam -----------------------------------------------------------
@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=REST, assert_all_called=False) as router:
        yield router


@pytest.fixture
def campaigns() -> Iterator[RestCampaigns]:
    backend = RestBackend(BASE, KEY, "SUPABASE_SERVICE_ROLE_KEY", base_delay=0)
    c = Campaigns(backend)
    assert isinstance(c, RestCampaigns)
    yield c
    backend.close()


def bridge(api: respx.MockRouter, dsn: str) -> list[tuple[str, dict[str, Any]]]:
    """Answer every RPC request by calling the function on PostgreSQL as the service role,
    as PostgREST does; the requests are kept (name, JSON body)."""
    seen: list[tuple[str, dict[str, Any]]] = []

    def answer(request: httpx.Request, fn: str) -> httpx.Response:
        body = json.loads(request.content)
        seen.append((fn, body))
        value = call(dsn, fn, **body)
        return httpx.Response(
            200, content=json.dumps(value).encode(), headers={"content-type": "application/json"}
        )

    api.route(method="POST", url__regex=r"/rpc/(?P<fn>\w+)$").mock(side_effect=answer)
    return seen


def test_write_batch_sends_one_rpc_with_the_cap(
    api: respx.MockRouter, campaigns: RestCampaigns
) -> None:
    route = api.post("/rpc/hybridwb_write_batch").respond(200, json={"held": True, "capped": 0})
    wf, rid = uuid.uuid4(), uuid.uuid4()
    since = datetime(2026, 3, 1, tzinfo=UTC)
    spellings = {"+821012345678": "+821012345678", "01012345678": "+821012345678"}
    ok = campaigns.write_batch(
        rid,
        wf,
        "h:1",
        records=[("k1", "+821012345678", "hi")],
        channel="sms",
        skips=[("k2", "x" * 300)],
        changed=1,
        cap=CapCheck("hybridwb:recipients:sms", 2, since, "frequency cap", spellings),
    )
    assert ok is True and len(route.calls) == 1
    request = route.calls.last.request
    assert request.headers["apikey"] == KEY
    assert json.loads(request.content) == {
        "p_run_id": str(rid),
        "p_workflow_id": str(wf),
        "p_owner": "h:1",
        "p_records": [["k1", "+821012345678", "hi"]],
        "p_channel": "sms",
        "p_skips": [["k2", "x" * 200]],
        "p_changed": 1,
        "p_cap": {
            "space": "hybridwb:recipients:sms",
            "messages": 2,
            "since": "2026-03-01T00:00:00+00:00",
            "reason": "frequency cap",
            "spellings": spellings,
        },
    }


def test_a_big_batch_is_sent_in_chunks_with_each_chunks_own_spellings(
    api: respx.MockRouter, campaigns: RestCampaigns
) -> None:
    from hybridwb.platform.rest_campaigns import WRITE_CHUNK

    route = api.post("/rpc/hybridwb_write_batch").respond(200, json={"held": True, "capped": 0})
    n = WRITE_CHUNK + 5
    records: list[tuple[str, str | None, str]] = [
        (f"k{i}", f"+8210{i:08d}", "hi") for i in range(n)
    ]
    spellings = {f"010{i:08d}": f"+8210{i:08d}" for i in range(n)}
    cap = CapCheck("s", 1, datetime(2026, 3, 1, tzinfo=UTC), "frequency cap", spellings)
    assert campaigns.write_batch(
        uuid.uuid4(),
        uuid.uuid4(),
        "h:1",
        records=records,
        channel="sms",
        skips=[("x1", "no recipient")],
        changed=4,
        cap=cap,
    )
    bodies = [json.loads(c.request.content) for c in route.calls]
    assert [len(b["p_records"]) for b in bodies] == [WRITE_CHUNK, 5]
    assert [b["p_skips"] for b in bodies] == [[], [["x1", "no recipient"]]]
    assert [b["p_changed"] for b in bodies] == [4, 0]
    assert [r[0] for b in bodies for r in b["p_records"]] == [k for k, _, _ in records]
    for b in bodies:
        assert set(b["p_cap"]["spellings"].values()) == {r[1] for r in b["p_records"]}


def test_a_lost_lock_answer_is_false(api: respx.MockRouter, campaigns: RestCampaigns) -> None:
    api.post("/rpc/hybridwb_write_batch").respond(200, json={"held": False, "capped": 0})
    assert (
        campaigns.write_batch(
            uuid.uuid4(), uuid.uuid4(), "h:1", records=[], channel="sms", skips=[]
        )
        is False
    )


def test_a_batch_whose_answer_was_lost_is_sent_again_and_written_once(
    api: respx.MockRouter, campaigns: RestCampaigns, db: str, run: tuple[str, str]
) -> None:
    """The first request reaches the database and commits, then the gateway answers 504:
    the client sends the batch again (it is idempotent), and the rows are there once."""
    wf, rid = run
    calls = 0

    def flaky(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        value = call(db, "hybridwb_write_batch", **json.loads(request.content))
        if calls == 1:
            return httpx.Response(504, json={"code": "504", "message": "gateway timeout"})
        return httpx.Response(200, json=value)

    api.post("/rpc/hybridwb_write_batch").mock(side_effect=flaky)
    assert campaigns.write_batch(
        rid,
        wf,
        None,
        records=[("k1", "+821000000001", "hi")],
        channel="sms",
        skips=[("k2", "no recipient")],
        changed=1,
    )
    assert calls == 2
    assert rows(db, "SELECT target_key FROM send_records WHERE run_id = %s", rid) == [("k1",)]
    assert rows(db, "SELECT target_key FROM run_skips WHERE run_id = %s", rid) == [("k2",)]
    assert rows(db, "SELECT changed_count FROM run_state WHERE run_id = %s", rid) == [(1,)]


def test_acquire_names_a_dead_local_owner_to_the_server(
    api: respx.MockRouter, campaigns: RestCampaigns, db: str
) -> None:
    import subprocess

    from hybridwb.platform.campaigns import this_host, this_owner

    child = subprocess.Popen(["true"])
    child.wait()
    dead = f"{this_host()}:{child.pid}"  # a process of this host (boot, pid namespace)
    wf, old, new = (str(uuid.uuid4()) for _ in range(3))
    call(db, "hybridwb_acquire", p_workflow_id=wf, p_run_id=old, p_owner=dead, p_stale_after=600.0)
    seen = bridge(api, db)
    me = this_owner()
    assert campaigns.acquire(wf, new, me, 600.0) is None
    assert [body.get("p_dead_owner") for _, body in seen] == [None, dead]
    assert rows(db, "SELECT run_id::text, owner FROM run_locks WHERE workflow_id = %s", wf) == [
        (new, me)
    ]
    held = campaigns.acquire(wf, str(uuid.uuid4()), "elsewhere:1", 600.0)
    assert held is not None and held["owner"] == me
    assert isinstance(held["heartbeat_at"], datetime)


def test_a_run_over_the_bridge_reads_what_the_database_holds(
    api: respx.MockRouter, campaigns: RestCampaigns, db: str, run: tuple[str, str]
) -> None:
    """pending -> write_batch -> counts -> exclusions, each one RPC answered by the
    database; every frozen target ends with exactly one record or exclusion."""
    wf, rid = run
    freeze(db, rid, [(f"k{i}", f"+8210000001{i:02d}") for i in range(1, 13)])
    seen = bridge(api, db)
    after = 0
    while True:
        batch, after = campaigns.pending(rid, after, 5)
        if not batch:
            break
        records = [(t["target_key"], t["recipient"], "hi") for t in batch[::2]]
        skips = [(t["target_key"], policies.NO_CONSENT) for t in batch[1::2]]
        assert campaigns.write_batch(rid, wf, None, records=records, channel="sms", skips=skips)
    counts = campaigns.counts(rid)
    assert counts == {
        "targets": 12,
        "records": 7,
        "skipped": 5,
        "skipped_by_reason": {policies.NO_CONSENT: 5},
        "pending": 0,
    }
    assert rows(
        db,
        "SELECT count(*) FROM run_targets t WHERE run_id = %s AND"
        " (SELECT count(*) FROM send_records r WHERE r.run_id = t.run_id"
        "  AND r.target_key = t.target_key) + (SELECT count(*) FROM run_skips s"
        "  WHERE s.run_id = t.run_id AND s.target_key = t.target_key) = 1",
        rid,
    ) == [(12,)]
    assert [e["target_key"] for e in campaigns.exclusions(rid)] == [
        f"k{i}" for i in (2, 4, 7, 9, 12)
    ]
    assert {fn for fn, _ in seen} == {
        "hybridwb_pending",
        "hybridwb_write_batch",
        "hybridwb_run_counts",
        "hybridwb_exclusions",
    }


def test_an_anon_key_is_told_to_use_the_service_role(api: respx.MockRouter) -> None:
    api.post("/rpc/hybridwb_run_counts").respond(
        401, json={"code": "42501", "message": "permission denied for function"}
    )
    backend = RestBackend(BASE, "anon-key-value", "SUPABASE_ANON_KEY", base_delay=0)
    with pytest.raises(AuthError) as caught:
        Campaigns(backend).counts(uuid.uuid4())
    assert "SUPABASE_SERVICE_ROLE_KEY" in str(caught.value) and "\n" not in str(caught.value)
    assert "anon-key-value" not in str(caught.value)


# -- a freeze and a run's stats: the lock beaten in each write's transaction (0008) -------
ODD_KEYS: list[tuple[str, str | None]] = [
    ("tab\tkey", "+821000000001"),
    ("new\nline", None),
    ("back\\slash \\N", "a@example.com"),
    ("quote'\"", "+821000000002"),
    ("이름 한글", "+821000000003"),
    ("x" * 2000, "y" * 2000),
    ("", "+821000000004"),
]


def _hold_lock(db: str, wf: str, rid: str, owner: str) -> None:
    rows(db, "DELETE FROM run_locks WHERE workflow_id = %s", wf)
    rows(
        db,
        "INSERT INTO run_locks (workflow_id, run_id, owner, acquired_at, heartbeat_at)"
        " VALUES (%s, %s, %s, now(), now() - interval '1 minute')",
        wf,
        rid,
        owner,
    )


def _fz(db: str, fn: str, wf: str | None, rid: str, owner: str | None, **kw: Any) -> Any:
    return call(db, fn, p_run_id=rid, p_workflow_id=wf, p_owner=owner, **kw)


def _frozen(db: str, rid: str) -> list[tuple[Any, ...]]:
    return rows(
        db, "SELECT seq, target_key, recipient FROM run_targets WHERE run_id = %s ORDER BY 1", rid
    )


def test_the_freeze_functions_write_a_set_while_the_lock_is_held(
    db: str, run: tuple[str, str]
) -> None:
    """Odd keys kept byte for byte, a page's keys as seq first_seq + 1..., an empty page
    writes nothing, a key already frozen (a repeated request, a key the source repeated)
    is left alone, the mark counts the rows; each call beats the lock."""
    wf, rid = run
    freeze(db, rid, [("stale", "+821000000099")])  # a freeze interrupted before
    _hold_lock(db, wf, rid, "me:1")
    assert _fz(db, "hybridwb_freeze_clear", wf, rid, "me:1") is True
    assert _frozen(db, rid) == []
    [(beat,)] = rows(
        db,
        "SELECT heartbeat_at > now() - interval '5 seconds' FROM run_locks WHERE workflow_id = %s",
        wf,
    )
    assert beat is True
    pairs = [list(p) for p in ODD_KEYS]
    assert _fz(db, "hybridwb_freeze_page", wf, rid, "me:1", p_first_seq=0, p_pairs=pairs)
    assert _fz(db, "hybridwb_freeze_page", wf, rid, "me:1", p_first_seq=7, p_pairs=[])
    # the same page again (a lost answer), then one repeating a key of its own and one before
    assert _fz(db, "hybridwb_freeze_page", wf, rid, "me:1", p_first_seq=0, p_pairs=pairs)
    again = [["k8", "+821000000008"], ["k8", "+821000000009"], ["tab\tkey", "other"], ["k9", None]]
    assert _fz(db, "hybridwb_freeze_page", wf, rid, "me:1", p_first_seq=7, p_pairs=again)
    assert _frozen(db, rid) == [
        *[(i, k, r) for i, (k, r) in enumerate(ODD_KEYS, 1)],
        (8, "k8", "+821000000008"),
        (11, "k9", None),
    ]
    # only a key already frozen is passed over: a new key on a taken seq (a page out of
    # place) fails, never dropped in silence
    with pytest.raises(psycopg.errors.UniqueViolation):
        _fz(db, "hybridwb_freeze_page", wf, rid, "me:1", p_first_seq=0, p_pairs=[["new", None]])
    assert _fz(db, "hybridwb_freeze_mark", wf, rid, "me:1") == {"held": True, "count": 9}
    assert rows(
        db,
        "SELECT frozen_count, frozen_at > now() - interval '5 seconds' FROM run_state"
        " WHERE run_id = %s",
        rid,
    ) == [(9, True)]
    stats = {"frozen": {"as_of": "2026-03-02T03:00:00+00:00"}, "n": 1}
    assert _fz(db, "hybridwb_set_stats", wf, rid, "me:1", p_stats=stats) is True
    assert rows(db, "SELECT stats FROM workflow_runs WHERE id = %s", rid) == [(stats,)]


@pytest.mark.parametrize("holder", ["another owner", "another run", "no lock"])
def test_the_freeze_functions_write_nothing_once_the_lock_is_not_ours(
    db: str, run: tuple[str, str], holder: str
) -> None:
    wf, rid = run
    freeze(db, rid, [("theirs", "+821000000001")])
    if holder == "another owner":
        _hold_lock(db, wf, rid, "new:1")
    elif holder == "another run":  # this owner, but the lock names another run of the workflow
        _hold_lock(db, wf, str(uuid.uuid4()), "me:1")
    before = rows(db, "SELECT * FROM run_locks WHERE workflow_id = %s", wf)
    assert _fz(db, "hybridwb_freeze_clear", wf, rid, "me:1") is False
    page = [["mine", "+821000000002"]]
    assert _fz(db, "hybridwb_freeze_page", wf, rid, "me:1", p_first_seq=1, p_pairs=page) is False
    assert _fz(db, "hybridwb_freeze_mark", wf, rid, "me:1") == {"held": False}
    assert _fz(db, "hybridwb_set_stats", wf, rid, "me:1", p_stats={"mine": 1}) is False
    assert _frozen(db, rid) == [(1, "theirs", "+821000000001")]
    assert rows(db, "SELECT frozen_at, frozen_count FROM run_state WHERE run_id = %s", rid) == [
        (None, 0)
    ]
    assert rows(db, "SELECT stats FROM workflow_runs WHERE id = %s", rid) == [({},)]
    assert rows(db, "SELECT * FROM run_locks WHERE workflow_id = %s", wf) == before


def test_the_freeze_functions_without_an_owner_write_unchecked(
    db: str, run: tuple[str, str]
) -> None:
    """As `Campaigns.freeze(run, pages)` with no owner: no lock is looked at."""
    _, rid = run
    assert _fz(db, "hybridwb_freeze_clear", None, rid, None) is True
    page = [["k1", "+821000000001"]]
    assert _fz(db, "hybridwb_freeze_page", None, rid, None, p_first_seq=0, p_pairs=page)
    assert _fz(db, "hybridwb_freeze_mark", None, rid, None) == {"held": True, "count": 1}
    assert _fz(db, "hybridwb_set_stats", None, rid, None, p_stats={"a": 1}) is True


def test_a_takeover_waits_for_the_freeze_page_in_flight(db: str, run: tuple[str, str]) -> None:
    """The page's beat locks the lock's row until the page commits: a takeover that arrives
    meanwhile waits, then wins; the old owner's next page is refused."""
    wf, rid = run
    _hold_lock(db, wf, rid, "me:1")
    out: list[Any] = []
    with psycopg.connect(db) as conn:
        conn.execute("SET LOCAL ROLE service_role")
        (held,) = conn.execute(  # type: ignore[misc]
            "SELECT hybridwb_freeze_page(p_run_id => %s, p_workflow_id => %s, p_owner => 'me:1',"
            " p_first_seq => 0, p_pairs => %s)",
            [rid, wf, Jsonb([["k1", "+821000000001"]])],
        ).fetchone()
        assert held is True
        thread = threading.Thread(
            target=lambda: out.append(
                call(
                    db,
                    "hybridwb_acquire",
                    p_workflow_id=wf,
                    p_run_id=rid,
                    p_owner="new:1",
                    p_stale_after=600.0,
                    p_dead_owner="me:1",
                )
            )
        )
        thread.start()
        # blocked on the other call's row lock, not merely slow to start
        assert lock_waits(db, "%hybridwb_acquire%", thread) == 1 and thread.is_alive()
        conn.commit()
    thread.join()
    assert out == [None]  # the takeover won, after the page
    assert rows(db, "SELECT owner FROM run_locks WHERE workflow_id = %s", wf) == [("new:1",)]
    page = [["k2", "+821000000002"]]
    assert _fz(db, "hybridwb_freeze_page", wf, rid, "me:1", p_first_seq=1, p_pairs=page) is False
    assert _frozen(db, rid) == [(1, "k1", "+821000000001")]


# the client at its HTTP seam
def test_freeze_sends_the_clear_each_page_in_chunks_and_the_mark_with_the_owner(
    api: respx.MockRouter, campaigns: RestCampaigns
) -> None:
    from hybridwb.platform.rest_campaigns import FREEZE_CHUNK

    clear = api.post("/rpc/hybridwb_freeze_clear").respond(200, json=True)
    page = api.post("/rpc/hybridwb_freeze_page").respond(200, json=True)
    mark = api.post("/rpc/hybridwb_freeze_mark").respond(200, json={"held": True, "count": 7})
    tables = api.route(url__regex=r"/rest/v1/(?!rpc/)").respond(500)
    beats = api.post("/rpc/hybridwb_heartbeat").respond(200, json=True)
    wf, rid = uuid.uuid4(), uuid.uuid4()
    big: list[tuple[str, str | None]] = [
        (f"k{i}", f"+8210{i:08d}") for i in range(FREEZE_CHUNK + 2)
    ]
    pages: list[list[tuple[str, str | None]]] = [big, [], [("a\tb", None)]]
    assert campaigns.freeze(rid, iter(pages), workflow_id=wf, owner="h:1") == 7
    holder = {"p_run_id": str(rid), "p_workflow_id": str(wf), "p_owner": "h:1"}
    assert [json.loads(c.request.content) for c in clear.calls] == [holder]
    assert [json.loads(c.request.content) for c in page.calls] == [
        {**holder, "p_first_seq": 0, "p_pairs": [list(p) for p in big[:FREEZE_CHUNK]]},
        {**holder, "p_first_seq": FREEZE_CHUNK, "p_pairs": [list(p) for p in big[FREEZE_CHUNK:]]},
        {**holder, "p_first_seq": FREEZE_CHUNK + 2, "p_pairs": [["a\tb", None]]},
    ]
    assert [json.loads(c.request.content) for c in mark.calls] == [holder]
    assert not tables.calls and not beats.calls  # no plain writes, no beat of its own


@pytest.mark.parametrize("lost_at", ["clear", "page 1", "page 2", "mark"])
def test_freeze_stops_at_the_first_answer_that_the_lock_is_anothers(
    api: respx.MockRouter, campaigns: RestCampaigns, lost_at: str
) -> None:
    pages_seen = 0

    def page(request: httpx.Request) -> httpx.Response:
        nonlocal pages_seen
        pages_seen += 1
        return httpx.Response(200, json=lost_at != f"page {pages_seen}")

    api.post("/rpc/hybridwb_freeze_clear").respond(200, json=lost_at != "clear")
    api.post("/rpc/hybridwb_freeze_page").mock(side_effect=page)
    mark = api.post("/rpc/hybridwb_freeze_mark").respond(
        200, json={"held": False} if lost_at == "mark" else {"held": True, "count": 2}
    )
    pages: list[list[tuple[str, str | None]]] = [
        [("k1", "+821000000001")],
        [("k2", "+821000000002")],
        [("k3", None)],
    ]
    out = campaigns.freeze(uuid.uuid4(), pages, workflow_id=uuid.uuid4(), owner="h:1")
    assert out is None
    assert pages_seen == {"clear": 0, "page 1": 1, "page 2": 2, "mark": 3}[lost_at]
    assert len(mark.calls) == (lost_at == "mark")


def test_set_stats_sends_one_rpc_and_returns_its_answer(
    api: respx.MockRouter, campaigns: RestCampaigns
) -> None:
    route = api.post("/rpc/hybridwb_set_stats").mock(
        side_effect=[httpx.Response(200, json=True), httpx.Response(200, json=False)]
    )
    stored = api.get("/run_state").respond(200, json=[])  # the run's stored seq, read
    tables = api.route(url__regex=r"/rest/v1/(?!rpc/|run_state\?)").respond(500)
    wf, rid = uuid.uuid4(), uuid.uuid4()
    stats = {"frozen": {"as_of": datetime(2026, 3, 2, 3, tzinfo=UTC)}, "id": rid}
    assert campaigns.set_stats(rid, stats, workflow_id=wf, owner="h:1") is True
    assert campaigns.set_stats(rid, stats, workflow_id=wf, owner="h:1") is False
    assert json.loads(route.calls[0].request.content) == {
        "p_run_id": str(rid),
        "p_workflow_id": str(wf),
        "p_owner": "h:1",
        "p_stats": {"frozen": {"as_of": "2026-03-02T03:00:00+00:00"}, "id": str(rid)},
        "p_seq": json.loads(route.calls[0].request.content)["p_seq"],
    }
    seqs = [json.loads(c.request.content)["p_seq"] for c in route.calls]
    assert seqs[0] < seqs[1]  # each request of this process later than the one before
    assert [c.request.method for c in stored.calls] == ["GET", "GET"]
    assert f"run_id=eq.{rid}" in str(stored.calls[0].request.url)
    assert not tables.calls  # the stats are written by the function alone


class _TakeoverBridge(PostgrestBridge):
    """PostgREST in front of the database, with a takeover staged just before the `nth`
    request of a step reaches the database (whatever request the client writes it with:
    the RPC function or a plain table request): the lock passes to `new:1`, which then
    writes what `then` says, as the process that took the run over would."""

    def __init__(self, dsn: str, wf: str, step: set[str], nth: int, then: Any) -> None:
        super().__init__(dsn)
        self.wf, self.step, self.nth, self.then, self.seen = wf, step, nth, then, 0

    def _stage(self, request: httpx.Request, path: str) -> None:
        if f"{request.method} {path}" in self.step:
            self.seen += 1
            if self.seen == self.nth:
                rows(
                    self.dsn,
                    "UPDATE run_locks SET owner = 'new:1', heartbeat_at = now()"
                    " WHERE workflow_id = %s",
                    self.wf,
                )
                self.then()

    def rpc(self, request: httpx.Request, fn: str) -> httpx.Response:
        self._stage(request, f"rpc/{fn}")
        return super().rpc(request, fn)

    def table(self, request: httpx.Request, table: str) -> httpx.Response:
        self._stage(request, table)
        return super().table(request, table)


# the requests each step was written with before 0008 (a beat first, then a plain request)
# and since: the takeover lands between the beat and the write
CLEAR = {"POST rpc/hybridwb_freeze_clear", "DELETE run_targets"}
PAGE = {"POST rpc/hybridwb_freeze_page", "POST run_targets"}
MARK = {"POST rpc/hybridwb_freeze_mark", "PATCH run_state"}
STATS = {"POST rpc/hybridwb_set_stats", "PATCH workflow_runs"}


@pytest.mark.parametrize("step", ["clear", "page", "mark", "stats"])
def test_a_process_taken_over_between_its_beat_and_its_write_writes_nothing(
    db: str, run: tuple[str, str], campaigns: RestCampaigns, step: str
) -> None:
    """Over the bridge: the run's lock is taken over just before a step's write reaches
    the database. The new owner's frozen set is not cleared, gets no page read before the
    takeover, its half set is not marked frozen, its stats are not overwritten."""
    wf, rid = run
    _hold_lock(db, wf, rid, "me:1")
    theirs = [["n1", "+821000000011"], ["n2", "+821000000012"]]

    def new_owner_freezes(pairs: list[list[Any]]) -> None:
        assert _fz(db, "hybridwb_freeze_clear", wf, rid, "new:1") is True
        assert _fz(db, "hybridwb_freeze_page", wf, rid, "new:1", p_first_seq=0, p_pairs=pairs)

    def new_owner_stats() -> None:
        assert _fz(db, "hybridwb_set_stats", wf, rid, "new:1", p_stats={"as_of": "theirs"})

    staged = {
        "clear": (CLEAR, 1, lambda: new_owner_freezes(theirs)),
        "page": (PAGE, 2, lambda: new_owner_freezes(theirs[:1])),  # seq 2 is free
        "mark": (MARK, 1, lambda: new_owner_freezes(theirs[:1])),
        "stats": (STATS, 1, new_owner_stats),
    }
    bridge = _TakeoverBridge(db, wf, *staged[step])
    with respx.mock(base_url=REST, assert_all_called=False) as router:
        bridge.mount(router)
        if step == "stats":
            out: Any = campaigns.set_stats(rid, {"as_of": "mine"}, workflow_id=wf, owner="me:1")
        else:
            mine: list[list[tuple[str, str | None]]] = [
                [("m1", "+821000000001")],
                [("m2", "+821000000002")],
            ]
            out = campaigns.freeze(rid, mine, workflow_id=wf, owner="me:1")
    assert bridge.seen >= bridge.nth  # the takeover was staged
    assert out in (None, False)
    assert rows(db, "SELECT owner FROM run_locks WHERE workflow_id = %s", wf) == [("new:1",)]
    if step == "stats":
        assert rows(db, "SELECT stats FROM workflow_runs WHERE id = %s", rid) == [
            ({"as_of": "theirs"},)
        ]
        return
    expected = theirs if step == "clear" else theirs[:1]
    assert _frozen(db, rid) == [(i, k, r) for i, (k, r) in enumerate(expected, 1)]
    assert rows(db, "SELECT frozen_at FROM run_state WHERE run_id = %s", rid) == [(None,)]


def test_a_freeze_over_the_bridge_stores_what_the_sql_backend_stores(
    db: str, run: tuple[str, str], campaigns: RestCampaigns
) -> None:
    wf, rid = run
    _hold_lock(db, wf, rid, "me:1")
    freeze(db, rid, [("stale", None)])
    pages = [ODD_KEYS[:3], [], [*ODD_KEYS[3:], ODD_KEYS[0]]]
    with respx.mock(base_url=REST, assert_all_called=False) as router:
        PostgrestBridge(db).mount(router)
        assert campaigns.freeze(rid, pages, workflow_id=wf, owner="me:1") == len(ODD_KEYS)
        stats = {"frozen": {"as_of": datetime(2026, 3, 2, tzinfo=UTC)}}
        assert campaigns.set_stats(rid, stats, workflow_id=wf, owner="me:1") is True
    assert _frozen(db, rid) == [(i, k, r) for i, (k, r) in enumerate(ODD_KEYS, 1)]
    assert rows(
        db, "SELECT frozen_count, frozen_at IS NOT NULL FROM run_state WHERE run_id = %s", rid
    ) == [(len(ODD_KEYS), True)]
    assert rows(db, "SELECT stats FROM workflow_runs WHERE id = %s", rid) == [
        ({"frozen": {"as_of": "2026-03-02T00:00:00+00:00"}},)
    ]


def test_0008_goes_down_to_0007_and_up_again(db: str) -> None:
    """The downgrade drops the four functions (0005's stay); the upgrade brings them back
    with their grants; the offline script holds them."""
    from alembic import command
    from sqlalchemy import text

    from hybridwb.platform import migrate

    name = f"hybridwb_rpc8_{uuid.uuid4().hex[:8]}"
    rows(db, f'CREATE DATABASE "{name}"')
    url = URL.create(
        "postgresql+psycopg", username="postgres", host="127.0.0.1", port=5432, database=name
    )
    backend = SqlBackend(url)
    new = (
        "hybridwb_freeze_clear",
        "hybridwb_freeze_mark",
        "hybridwb_freeze_page",
        "hybridwb_set_stats",
        "hybridwb_lock_names_own_run",  # 0009's, gone with it
        "hybridwb_run_of_its_lock",
    )

    def functions() -> dict[str, bool]:
        with backend.engine.connect() as conn:
            found = conn.execute(
                text(
                    "SELECT proname, has_function_privilege('service_role', oid, 'EXECUTE')"
                    " AND NOT has_function_privilege('anon', oid, 'EXECUTE')"
                    " FROM pg_proc WHERE proname LIKE 'hybridwb%'"
                )
            ).tuples()
            return {name: ok for name, ok in found}

    try:
        Store(backend).init(seed=False)
        assert functions() == dict.fromkeys(FUNCTIONS, True)
        with backend.engine.begin() as conn:
            cfg = migrate._config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0007")
        assert functions() == dict.fromkeys(set(FUNCTIONS) - set(new), True)
        Store(backend).init(seed=False)
        assert functions() == dict.fromkeys(FUNCTIONS, True)
        with backend.engine.connect() as conn:
            assert migrate.current(conn) == migrate.head()
    finally:
        backend.close()
        rows(db, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    script = migrate.sql_script("postgresql")
    for fn in new:
        assert f"CREATE OR REPLACE FUNCTION {fn}(" in script


def test_a_store_without_the_freeze_functions_is_told_to_migrate(
    api: respx.MockRouter, campaigns: RestCampaigns
) -> None:
    """A hybridwb at 0008 against a store at 0007: PostgREST finds no such function."""
    api.post("/rpc/hybridwb_freeze_clear").respond(
        404,
        json={
            "code": "PGRST202",
            "message": "Could not find the function public.hybridwb_freeze_clear(p_owner,"
            " p_run_id, p_workflow_id) in the schema cache",
        },
    )
    with pytest.raises(StoreError) as caught:
        campaigns.freeze(uuid.uuid4(), [], workflow_id=uuid.uuid4(), owner="h:1")
    assert "hybridwb init --sql" in str(caught.value) and "\n" not in str(caught.value)


# -- 0009: a lock names a run of its own workflow; a page is checked; stats keep their order
def test_a_delayed_stats_request_does_not_overwrite_newer_stats(
    db: str, run: tuple[str, str]
) -> None:
    """The newer request first, then the older one as a delayed first attempt arrives."""
    wf, rid = run
    _hold_lock(db, wf, rid, "me:1")
    newer, older = {"frozen": {"as_of": "newer"}}, {"frozen": {"as_of": "older"}}
    assert _fz(db, "hybridwb_set_stats", wf, rid, "me:1", p_stats=newer, p_seq=20) is True
    assert _fz(db, "hybridwb_set_stats", wf, rid, "me:1", p_stats=older, p_seq=10) is True
    assert _fz(db, "hybridwb_set_stats", wf, rid, "me:1", p_stats=older, p_seq=20) is True
    assert rows(db, "SELECT stats FROM workflow_runs WHERE id = %s", rid) == [(newer,)]
    # a later request writes; a new owner's first request writes whatever its clock says
    assert _fz(db, "hybridwb_set_stats", wf, rid, "me:1", p_stats=older, p_seq=21) is True
    assert rows(db, "SELECT stats FROM workflow_runs WHERE id = %s", rid) == [(older,)]
    _hold_lock(db, wf, rid, "new:1")
    assert _fz(db, "hybridwb_set_stats", wf, rid, "new:1", p_stats=newer, p_seq=1) is True
    assert rows(db, "SELECT stats FROM workflow_runs WHERE id = %s", rid) == [(newer,)]
    # a caller of 0008's signature (no seq) is served as before
    assert _fz(db, "hybridwb_set_stats", wf, rid, "new:1", p_stats=older) is True
    assert rows(db, "SELECT stats FROM workflow_runs WHERE id = %s", rid) == [(older,)]


def test_a_stats_request_run_late_by_the_server_leaves_the_newer_stats(
    api: respx.MockRouter, campaigns: RestCampaigns, db: str, run: tuple[str, str]
) -> None:
    """The client's first attempt times out unanswered (the server has not run it yet), its
    retry and a later `set_stats` are written, then the server runs the first attempt."""
    wf, rid = run
    _hold_lock(db, wf, rid, "me:1")
    delayed: list[dict[str, Any]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if not delayed:
            delayed.append(body)
            raise httpx.ReadTimeout("no answer yet", request=request)
        value = call(db, "hybridwb_set_stats", **body)
        return httpx.Response(200, json=value)

    api.post("/rpc/hybridwb_set_stats").mock(side_effect=answer)
    api.get("/run_state").mock(side_effect=lambda r: PostgrestBridge(db).table(r, "run_state"))
    first, later = {"pass": 1}, {"pass": 2}
    assert campaigns.set_stats(rid, first, workflow_id=wf, owner="me:1") is True
    assert campaigns.set_stats(rid, later, workflow_id=wf, owner="me:1") is True
    assert call(db, "hybridwb_set_stats", **delayed[0]) is True  # the first attempt, late
    assert rows(db, "SELECT stats FROM workflow_runs WHERE id = %s", rid) == [(later,)]


@pytest.mark.parametrize(
    ("first_seq", "pairs"),
    [
        (-1, [["k1", "+8210"]]),
        (0, ["k1", "k2"]),
        (0, [["k1", "+8210"], 5]),
        (0, [["k1"]]),
        (0, [["k1", "+8210", "extra"]]),
    ],
    ids=["negative seq", "bare strings", "a bare number", "a key alone", "three values"],
)
def test_a_page_with_a_negative_seq_or_a_bare_value_for_a_pair_is_refused(
    db: str, run: tuple[str, str], first_seq: int, pairs: Any
) -> None:
    wf, rid = run
    _hold_lock(db, wf, rid, "me:1")
    before = rows(db, "SELECT heartbeat_at FROM run_locks WHERE workflow_id = %s", wf)
    with pytest.raises(psycopg.errors.InvalidParameterValue) as caught:
        _fz(db, "hybridwb_freeze_page", wf, rid, "me:1", p_first_seq=first_seq, p_pairs=pairs)
    message = str(caught.value).split("\n")[0]
    assert "frozen page" in message and "'" not in message
    assert _frozen(db, rid) == []
    assert rows(db, "SELECT heartbeat_at FROM run_locks WHERE workflow_id = %s", wf) == before


def test_a_refused_page_reaches_the_client_as_a_one_line_error(
    api: respx.MockRouter, campaigns: RestCampaigns, db: str, run: tuple[str, str]
) -> None:
    """The client never sends such a page; if the store refuses one, it says so in a line."""
    wf, rid = run
    with pytest.raises(psycopg.Error) as refused:
        _fz(db, "hybridwb_freeze_page", wf, rid, None, p_first_seq=-1, p_pairs=[])
    api.post("/rpc/hybridwb_freeze_clear").respond(200, json=True)
    api.post("/rpc/hybridwb_freeze_page").respond(
        400,
        json={"code": refused.value.sqlstate, "message": str(refused.value).split("\n")[0]},
    )
    with pytest.raises(ValidationError) as caught:
        campaigns.freeze(rid, [[("k1", "+8210")]], workflow_id=wf, owner="me:1")
    assert "frozen page starts at seq 0" in str(caught.value)
    assert "\n" not in str(caught.value)


def _run_of(db: str, wf: str, rid: str | None = None) -> str:
    """A queued run of `wf` (with the id `rid`, or a new one), inserted with plain SQL."""
    rid = rid or str(uuid.uuid4())
    rows(
        db,
        "INSERT INTO workflow_runs (id, workflow_id, status, parameters, dry_run, target_count,"
        " rendered_count, skipped_count, failed_count, sent_count, missing_variables, stats,"
        " created_at) VALUES (%s, %s, 'queued', '{}', false, 0, 0, 0, 0, 0, '[]', '{}', now())",
        rid,
        wf,
    )
    return rid


def test_a_lock_naming_a_run_of_another_workflow_is_refused(
    api: respx.MockRouter, campaigns: RestCampaigns, db: str, run: tuple[str, str]
) -> None:
    """acquire(W2, a run of W1) is refused by the database, in a line; W1's frozen set stays,
    and the clear that lock would have allowed finds no lock."""
    w1, r1 = run
    freeze(db, r1, [("k1", "+8210"), ("k2", "+8211")])
    w2 = str(uuid.uuid4())
    PostgrestBridge(db).mount(api)  # a database error answered as PostgREST's JSON
    with pytest.raises(ValidationError) as caught:
        campaigns.acquire(w2, r1, "thief:1", 60.0)
    assert "run of its own workflow" in str(caught.value) and "\n" not in str(caught.value)
    assert rows(db, "SELECT count(*) FROM run_locks WHERE workflow_id = %s", w2) == [(0,)]
    assert _fz(db, "hybridwb_freeze_clear", w2, r1, "thief:1") is False
    assert rows(db, "SELECT count(*) FROM run_targets WHERE run_id = %s", r1) == [(2,)]
    # nor by taking over W2's stale lock, nor by a plain table request
    r2 = _run_of(db, w2)
    assert campaigns.acquire(w2, r2, "gone:1", 60.0) is None
    rows(db, "UPDATE run_locks SET heartbeat_at = now() - interval '1 hour' WHERE run_id = %s", r2)
    with pytest.raises(ValidationError):
        campaigns.acquire(w2, r1, "thief:1", 60.0)
    with pytest.raises(psycopg.errors.CheckViolation):
        rows(db, "UPDATE run_locks SET run_id = %s WHERE workflow_id = %s", r1, w2)
    assert rows(db, "SELECT run_id::text FROM run_locks WHERE workflow_id = %s", w2) == [(r2,)]
    # a run cannot be created, or moved, under another workflow than its lock's
    with pytest.raises(psycopg.errors.CheckViolation):
        rows(db, "UPDATE workflow_runs SET workflow_id = %s WHERE id = %s", w1, r2)
    taken = str(uuid.uuid4())
    assert campaigns.acquire(str(uuid.uuid4()), taken, "me:1", 60.0) is None
    with pytest.raises(psycopg.errors.CheckViolation):
        _run_of(db, w1, taken)
    assert rows(db, "SELECT count(*) FROM workflow_runs WHERE id = %s", taken) == [(0,)]


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_0009_goes_down_to_0008_and_up_again(db: str, tmp_path: Any, dialect: str) -> None:
    """The downgrade drops the triggers, the stats columns and (Postgres) 0009's functions,
    bringing back 0008's `hybridwb_set_stats` and `hybridwb_freeze_page`; the upgrade,
    run twice (a store stamped back), brings 0009 back; the offline script holds it."""
    from alembic import command
    from sqlalchemy import inspect, text

    from hybridwb.platform import migrate

    name = f"hybridwb_rpc9_{uuid.uuid4().hex[:8]}"
    if dialect == "postgresql":
        rows(db, f'CREATE DATABASE "{name}"')
        url = URL.create(
            "postgresql+psycopg", username="postgres", host="127.0.0.1", port=5432, database=name
        )
        triggers = "SELECT tgname FROM pg_trigger WHERE tgname LIKE 'hybridwb%' ORDER BY 1"
        stats_args = (
            "SELECT pg_get_function_identity_arguments(oid) FROM pg_proc"
            " WHERE proname = 'hybridwb_set_stats'"
        )
    else:
        url = URL.create("sqlite", database=str(tmp_path / "store.db"))
        triggers = "SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY 1"
    backend = SqlBackend(url)

    def state() -> tuple[list[str], set[str], list[str]]:
        with backend.engine.connect() as conn:
            found = list(conn.execute(text(triggers)).scalars())
            columns = {c["name"] for c in inspect(conn).get_columns("run_state")}
            args = list(conn.execute(text(stats_args)).scalars()) if dialect != "sqlite" else []
        return found, columns & {"stats_owner", "stats_seq"}, args

    try:
        Store(backend).init(seed=False)
        up = state()
        assert len(up[0]) == (2 if dialect == "postgresql" else 4)
        assert up[1] == {"stats_owner", "stats_seq"}
        if dialect == "postgresql":
            assert up[2] == [
                "p_run_id uuid, p_workflow_id uuid, p_owner text, p_stats jsonb, p_seq bigint"
            ]
        with backend.engine.begin() as conn:
            cfg = migrate._config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0008")
        down = state()
        assert down[0] == [] and down[1] == set()
        if dialect == "postgresql":
            assert down[2] == ["p_run_id uuid, p_workflow_id uuid, p_owner text, p_stats jsonb"]
        # at 0008 a lock could name another workflow's run: the upgrade deletes such a lock
        store = Store(backend)
        w1, w2 = (store.workflows.create(name=n)["id"] for n in ("w1", "w2"))
        r1 = store.runs.create(w1)["id"]
        Campaigns(backend).acquire(w2, r1, "thief:1", 60.0)
        Campaigns(backend).acquire(w1, r1, "me:1", 60.0)
        store.init(seed=False)
        assert [(lock["workflow_id"], lock["owner"]) for lock in Campaigns(backend).locks()] == [
            (w1, "me:1")
        ]
        with backend.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0008'"))
        Store(backend).init(seed=False)  # 0009 again over a store that has it
        assert state() == up
    finally:
        backend.close()
        if dialect == "postgresql":
            rows(db, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    script = migrate.sql_script(dialect)
    assert "CREATE TRIGGER hybridwb_lock_names_own_run" in script


def test_a_process_restarted_under_the_same_owner_with_its_clock_behind_writes_its_stats(
    api: respx.MockRouter,
    campaigns: RestCampaigns,
    db: str,
    run: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same owner name after a restart (same host, same pid: pid 1 in a container) and
    a process clock an hour behind the last process's: its stats are written all the same,
    with a seq above the stored one (the store keeps only a later seq of the same owner)."""
    from types import SimpleNamespace

    from hybridwb.platform import rest_campaigns

    wf, rid = run
    _hold_lock(db, wf, rid, "me:1")
    PostgrestBridge(db).mount(api)
    clock = [1_800_000_000 * 10**9]  # the process clock (not the database's)
    monkeypatch.setattr(rest_campaigns, "time", SimpleNamespace(time_ns=lambda: clock[0]))
    assert campaigns.set_stats(rid, {"pass": 1}, workflow_id=wf, owner="me:1") is True
    [(first,)] = rows(db, "SELECT stats_seq FROM run_state WHERE run_id = %s", rid)
    # the restart: a fresh process (nothing sent yet), its clock behind
    monkeypatch.setattr(rest_campaigns, "_last_seq", 0)
    clock[0] -= 3600 * 10**9
    assert campaigns.set_stats(rid, {"pass": 2}, workflow_id=wf, owner="me:1") is True
    assert rows(db, "SELECT stats FROM workflow_runs WHERE id = %s", rid) == [({"pass": 2},)]
    assert rows(
        db, "SELECT stats_owner, stats_seq > %s FROM run_state WHERE run_id = %s", first, rid
    ) == [("me:1", True)]
    # another owner's stored seq, however large, does not move this process's seq
    rows(db, "UPDATE run_state SET stats_owner = 'old:7', stats_seq = 9e18 WHERE run_id = %s", rid)
    assert campaigns.set_stats(rid, {"pass": 3}, workflow_id=wf, owner="me:1") is True
    assert rows(
        db,
        "SELECT stats, stats_seq < 9e18 FROM workflow_runs, run_state"
        " WHERE id = %s AND run_id = id",
        rid,
    ) == [({"pass": 3}, True)]


def test_a_page_with_a_null_key_reaches_the_client_as_a_one_line_error(
    api: respx.MockRouter, campaigns: RestCampaigns, db: str, run: tuple[str, str]
) -> None:
    """`[[null, recipient]]` passes the page's checks and breaks NOT NULL (23502); the
    client says so in a line, nothing saved, no value of the failing row echoed."""
    from hybridwb.platform.campaigns import FrozenPage

    wf, rid = run
    _hold_lock(db, wf, rid, "me:1")
    with pytest.raises(psycopg.errors.NotNullViolation) as refused:
        _fz(
            db,
            "hybridwb_freeze_page",
            wf,
            rid,
            "me:1",
            p_first_seq=0,
            p_pairs=[[None, "+821099998888"]],
        )
    assert _frozen(db, rid) == []
    detail = refused.value.diag.message_detail or ""
    assert "+821099998888" in detail  # the server's detail holds the row: never shown
    api.post("/rpc/hybridwb_freeze_clear").respond(200, json=True)
    api.post("/rpc/hybridwb_freeze_page").respond(
        400,
        json={
            "code": refused.value.sqlstate,
            "message": str(refused.value).split("\n")[0],
            "details": detail,
            "hint": None,
        },
    )
    page = FrozenPage(rid, 0, [(None, "+821099998888")], None)  # type: ignore[list-item]
    with pytest.raises(ValidationError) as caught:
        campaigns.freeze(rid, [page], workflow_id=wf, owner="me:1")
    message = str(caught.value)
    assert "nothing was saved" in message and "target_key" in message
    assert "\n" not in message and "+8210" not in message and rid not in message
