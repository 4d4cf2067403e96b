"""Whole campaign runs on the Supabase REST store, end to end in-process: the workbench
talks HTTP to a PostgREST stand-in (tests/_postgrest.py) in front of a real PostgreSQL
database migrated as `hybridwb init` migrates Supabase; the source is a real SQLite file.
Outcomes are read with plain psycopg, never through hybridwb.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import respx
from _postgrest import PostgrestBridge, migrated_database

import hybridwb
from hybridwb.platform.rest_campaigns import RestCampaigns
from hybridwb.workflows import policies

pytestmark = pytest.mark.postgres

BASE = "https://proj.supabase.co"
REST = f"{BASE}/rest/v1"
KEY = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJl"
DAY = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)  # 12:00 in Seoul
INFO = "{{ 이름 }}님, 이번 달 안내입니다."
N = 25


@pytest.fixture
def dsn() -> Iterator[str]:
    yield from migrated_database("hybridwb_restrun")


@pytest.fixture
def source(tmp_path: Path) -> str:
    path = tmp_path / "members.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE members (code TEXT PRIMARY KEY, name TEXT, mobile TEXT)")
        conn.executemany(
            "INSERT INTO members VALUES (?, ?, ?)",
            [(f"m{i:03d}", f"회원{i}", f"010-{2000 + i:04d}-{i:04d}") for i in range(N)],
        )
    return f"sqlite:///{path}"


@pytest.fixture
def api(dsn: str) -> Iterator[PostgrestBridge]:
    bridge = PostgrestBridge(dsn)
    with respx.mock(base_url=REST, assert_all_called=False) as router:
        bridge.mount(router)
        yield bridge


MEMBERS = {
    "displayName": "회원",
    "key": "code",
    "recipient": "mobile",
    "channel": "sms",
    "audience": True,
    "fields": {
        "code": {"displayName": "번호", "type": "string", "role": "id"},
        "name": {"displayName": "이름", "type": "string", "role": "name"},
        "mobile": {"displayName": "휴대폰", "type": "string", "role": "phone"},
    },
}


def workbench(source: str, tmp_path: Path) -> hybridwb.Workbench:
    return hybridwb.connect(
        source=source,
        cwd=tmp_path,
        env={"SUPABASE_URL": BASE, "SUPABASE_SERVICE_ROLE_KEY": KEY},
    )


def oracle(dsn: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return list(conn.execute(sql, params).fetchall())


def start(wb: hybridwb.Workbench, wf: dict[str, Any]) -> Any:
    run = wb.store.runs.create(wf["id"], {})
    campaigns = RestCampaigns(wb.store.backend)
    campaigns.start_state(run["id"], "test:1", "manual")
    return run["id"]


def test_a_once_per_recipient_workflow_run_twice_messages_nobody_twice(
    api: PostgrestBridge, dsn: str, source: str, tmp_path: Path
) -> None:
    wb = workbench(source, tmp_path)
    assert wb.store.backend.name == "supabase-rest"
    wb.mappings.save("members", MEMBERS)
    wf = wb.workflows.create(
        "welcome",
        target_config={"table": "members"},
        message_config={"content": INFO, "policy": {"once_per_recipient": True}},
    )
    first = start(wb, wf)
    wb.workflows.process(wf["id"], first, progress=False, batch_size=10, now=DAY)
    second = start(wb, wf)
    stats = wb.workflows.process(wf["id"], second, progress=False, batch_size=10, now=DAY)
    wb.close()
    assert oracle(dsn, "SELECT count(*) FROM run_targets WHERE run_id = %s", first) == [(N,)]
    assert oracle(
        dsn, "SELECT frozen_count, frozen_at IS NOT NULL FROM run_state WHERE run_id = %s", first
    ) == [(N, True)]
    assert oracle(
        dsn, "SELECT count(DISTINCT recipient), count(*) FROM send_records WHERE run_id = %s", first
    ) == [(N, N)]
    assert oracle(dsn, "SELECT count(*) FROM send_records WHERE run_id = %s", second) == [(0,)]
    assert oracle(
        dsn, "SELECT reason, count(*) FROM run_skips WHERE run_id = %s GROUP BY 1", second
    ) == [(policies.ONCE, N)]
    assert stats["skipped_by_reason"] == {policies.ONCE: N} and stats["records"] == 0
    # the campaign tables were reached over RPC, the rows through plain table requests
    paths = {p for _, p in api.requests}
    assert {"rpc/hybridwb_write_batch", "rpc/hybridwb_pending", "rpc/hybridwb_seen"} <= paths


def test_frequency_cap_holds_across_two_concurrent_rest_workflows(
    api: PostgrestBridge, dsn: str, source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both runs read the history before either writes (each batch's read waits for the
    other run's): without the cap checked again where the records are written, everyone
    would get two messages."""
    wb = workbench(source, tmp_path)
    wb.mappings.save("members", MEMBERS)
    policy = {"frequency_cap": {"messages": 1, "days": 7}}
    wfs = [
        wb.workflows.create(
            name,
            target_config={"table": "members"},
            message_config={"content": INFO, "policy": policy},
        )
        for name in ("first", "second")
    ]
    runs = [start(wb, wf) for wf in wfs]
    wb.close()
    real_seen = RestCampaigns.seen
    both_read = threading.Barrier(2, timeout=60)
    reads: list[int] = []

    def seen_then_wait(self: RestCampaigns, *a: Any, **kw: Any) -> Any:
        out = real_seen(self, *a, **kw)
        reads.append(both_read.wait())  # the other run has read this batch's history too
        return out

    monkeypatch.setattr(RestCampaigns, "seen", seen_then_wait)
    errors: list[BaseException] = []
    gate = threading.Barrier(2)

    def go(wf: dict[str, Any], run_id: Any) -> None:
        w = workbench(source, tmp_path)
        try:
            gate.wait()
            w.workflows.process(wf["id"], run_id, progress=False, batch_size=10, now=DAY)
        except BaseException as exc:
            errors.append(exc)
        finally:
            w.close()

    threads = [threading.Thread(target=go, args=(wf, r)) for wf, r in zip(wfs, runs, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert len(reads) == 2 * 3  # three batches of each run met at the barrier
    assert (
        oracle(dsn, "SELECT recipient FROM send_records GROUP BY recipient HAVING count(*) > 1")
        == []
    )
    assert oracle(dsn, "SELECT count(*) FROM send_records") == [(N,)]
    # every frozen target of both runs ends with exactly one record or exclusion
    assert oracle(
        dsn,
        "SELECT count(*) FROM run_targets t WHERE (SELECT count(*) FROM send_records r"
        " WHERE r.run_id = t.run_id AND r.target_key = t.target_key) + (SELECT count(*)"
        " FROM run_skips s WHERE s.run_id = t.run_id AND s.target_key = t.target_key) <> 1",
    ) == [(0,)]
    assert oracle(dsn, "SELECT count(*) FROM run_skips WHERE reason = %s", policies.CAP) == [(N,)]


def test_cap_holds_when_a_rest_run_and_a_postgres_run_write_at_once(
    api: PostgrestBridge, dsn: str, source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attack: one workflow runs through the REST API, another over a direct Postgres
    connection to the same store, both under a 1-message cap, interleaved so that the REST
    run reads the history while the Postgres run holds the cap lock and has not committed.
    Only one lock name on both paths (and the re-check under it) keeps anyone from getting
    two messages."""
    wb = workbench(source, tmp_path)
    wb.mappings.save("members", MEMBERS)
    policy = {"frequency_cap": {"messages": 1, "days": 7}}
    wfs = [
        wb.workflows.create(
            name,
            target_config={"table": "members"},
            message_config={"content": INFO, "policy": policy},
        )
        for name in ("over-rest", "over-sql")
    ]
    runs = [start(wb, wf) for wf in wfs]
    wb.close()
    store_url = "postgresql+psycopg://postgres@127.0.0.1:5432/" + dsn.rsplit("=", 1)[1]
    from hybridwb.platform.campaigns import Campaigns

    real_sql_seen, real_rest_seen = Campaigns.seen, RestCampaigns.seen
    real_sql_pending, real_rest_write = Campaigns.pending, RestCampaigns.write_batch
    # per batch: the Postgres run reads under its cap lock, then the REST run reads while
    # that lock is held and nothing is committed, then both write (the REST write waits for
    # the lock); the Postgres run starts its next batch once the REST batch is written
    sql_read, rest_read = threading.Barrier(2, timeout=60), threading.Barrier(2, timeout=60)
    turn = threading.Condition()
    done = {"sql reads": 0, "rest writes": 0}
    met: list[str] = []

    def sql_pending(self: Campaigns, *a: Any, **kw: Any) -> Any:
        with turn:
            assert turn.wait_for(lambda: done["rest writes"] >= done["sql reads"], timeout=60)
        return real_sql_pending(self, *a, **kw)

    def sql_seen(self: Campaigns, *a: Any, **kw: Any) -> Any:
        out = real_sql_seen(self, *a, **kw)
        with turn:
            done["sql reads"] += 1
        sql_read.wait()
        rest_read.wait()  # holding the cap lock, records not yet written
        met.append("sql")
        return out

    def rest_seen(self: RestCampaigns, *a: Any, **kw: Any) -> Any:
        sql_read.wait()
        [(locks,)] = oracle(
            dsn,
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
            " WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()",
        )
        out = real_rest_seen(self, *a, **kw)
        rest_read.wait()
        met.append(f"rest read under {locks} lock")
        return out

    def rest_write(self: RestCampaigns, *a: Any, **kw: Any) -> Any:
        out = real_rest_write(self, *a, **kw)
        with turn:
            done["rest writes"] += 1
            turn.notify_all()
        return out

    monkeypatch.setattr(Campaigns, "pending", sql_pending)
    monkeypatch.setattr(Campaigns, "seen", sql_seen)
    monkeypatch.setattr(RestCampaigns, "seen", rest_seen)
    monkeypatch.setattr(RestCampaigns, "write_batch", rest_write)
    errors: list[BaseException] = []
    gate = threading.Barrier(2)

    def go(wf: dict[str, Any], run_id: Any, rest: bool) -> None:
        w = (
            workbench(source, tmp_path)
            if rest
            else hybridwb.connect(source=source, store=store_url, cwd=tmp_path)
        )
        try:
            gate.wait()
            w.workflows.process(wf["id"], run_id, progress=False, batch_size=5, now=DAY)
        except BaseException as exc:
            errors.append(exc)
        finally:
            w.close()

    threads = [
        threading.Thread(target=go, args=(wfs[0], runs[0], True)),
        threading.Thread(target=go, args=(wfs[1], runs[1], False)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    # five batches each, every REST read made while the Postgres run held the cap lock
    assert sorted(met) == ["rest read under 1 lock"] * 5 + ["sql"] * 5
    assert (
        oracle(dsn, "SELECT recipient FROM send_records GROUP BY recipient HAVING count(*) > 1")
        == []
    )
    assert oracle(dsn, "SELECT count(*) FROM send_records") == [(N,)]
    assert oracle(dsn, "SELECT count(*) FROM run_skips WHERE reason = %s", policies.CAP) == [(N,)]
