"""Campaigns on the Supabase REST store: the SQL functions of migration 0005 on real
PostgreSQL, called as the roles PostgREST uses, and `RestCampaigns` at its HTTP seam.

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
from psycopg.types.json import Jsonb
from sqlalchemy.engine import URL

from hybridwb.errors import AuthError
from hybridwb.platform.backend import SqlBackend
from hybridwb.platform.campaigns import Campaigns, CapCheck
from hybridwb.platform.rest import RestBackend
from hybridwb.platform.rest_campaigns import RestCampaigns
from hybridwb.platform.store import Store
from hybridwb.workflows import policies

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
        # the second call is blocked on the first one's row lock (the server says so), not
        # merely slow to start
        waiting: list[tuple[Any, ...]] = []
        deadline = time.monotonic() + 30
        while not waiting and time.monotonic() < deadline:
            time.sleep(0.02)  # a poll interval, not a wait for the outcome
            waiting = rows(
                db,
                "SELECT wait_event_type FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND query LIKE %s",
                "%hybridwb_acquire%",
            )
        assert waiting == [("Lock",)] and thread.is_alive()
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
    spellings = policies.stored_spellings("sms", [phone, "+821077770002"])
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
    sql.backend.close()  # type: ignore[attr-defined]


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
    records = [(f"k{i}", f"+8210{i:08d}", "hi") for i in range(n)]
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
    import os
    import socket
    import subprocess

    child = subprocess.Popen(["true"])
    child.wait()
    dead = f"{socket.gethostname()}:{child.pid}"
    wf, old, new = (str(uuid.uuid4()) for _ in range(3))
    call(db, "hybridwb_acquire", p_workflow_id=wf, p_run_id=old, p_owner=dead, p_stale_after=600.0)
    seen = bridge(api, db)
    me = f"{socket.gethostname()}:{os.getpid()}"
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
