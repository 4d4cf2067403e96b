# ruff: noqa: F811  (the fixtures imported from test_rest_campaigns are test parameters here)
"""Round 31: over REST, a frequency cap holds against a workflow that has none.

Round 30 wrote an uncapped workflow's batch under the cap's lock on the SQL stores
(`write_batch(queue=...)`); the REST store ignored `queue`, saying a capped batch's check
and write are one request with no gap between them. The gap is the other workflow's: its
`hybridwb_write_batch` inserts its records, then goes on (its exclusions, its counts)
before it commits, and a capped batch checked in that time reads the history without
them and messages each of those recipients as their second message of the window.

The functions of migrations 0005/0008 on real PostgreSQL, reached by `RestCampaigns`
through the PostgREST bridge of test_rest_campaigns. The uncapped batch is held between
its records and its commit by a row the test holds uncommitted (its exclusion's key);
the oracle is plain SQL on `send_records`.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import respx

from hybridwb.platform.campaigns import CapCheck
from hybridwb.platform.rest_campaigns import RestCampaigns
from hybridwb.workflows import policies
from tests.test_rest_campaigns import (  # noqa: F401  (fixtures: db, api, campaigns)
    api,
    bridge,
    campaigns,
    db,
    lock_waits,
    rows,
)

pytestmark = pytest.mark.postgres

PHONES = [f"+8210555{i:05d}" for i in range(10)]


def _new_run(db: str) -> tuple[str, str]:
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
    rows(
        db,
        "INSERT INTO run_state (run_id, frozen_count, changed_count) VALUES (%s, 0, 0) RETURNING 1",
        rid,
    )
    return wf, rid


def test_a_capped_batch_never_lands_inside_an_uncapped_batchs_transaction(
    api: respx.MockRouter, campaigns: RestCampaigns, db: str
) -> None:
    """BREAK: the capped batch was checked while the uncapped one's records were written
    and not yet committed; both committed, each of the 10 members messaged twice in the
    capped workflow's 1-in-7-days window."""
    bridge(api, db)
    (free_wf, free_run), (cap_wf, cap_run) = _new_run(db), _new_run(db)
    space = policies.cap_space("sms")
    errors: list[BaseException] = []

    def go(fn: Any) -> threading.Thread:
        def body() -> None:
            try:
                fn()
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        t = threading.Thread(target=body)
        t.start()
        return t

    with psycopg.connect(db) as holder:  # the uncapped batch's exclusion key, uncommitted
        holder.execute(
            "INSERT INTO run_skips (run_id, target_key, reason, created_at)"
            " VALUES (%s, 'gone', 'held by the test', now())",
            [free_run],
        )
        free = go(
            lambda: campaigns.write_batch(
                free_run,
                free_wf,
                None,
                records=[(f"f{i}", p, "hi") for i, p in enumerate(PHONES)],
                channel="sms",
                skips=[("gone", "no recipient")],
                queue=space,
            )
        )
        # the uncapped batch's records are in, its exclusion waits on the test's row
        assert lock_waits(db, "%hybridwb_write_batch%", free) == 1
        since = datetime.now(UTC) - timedelta(days=7)
        capped = go(
            lambda: campaigns.write_batch(
                cap_run,
                cap_wf,
                None,
                records=[(f"c{i}", p, "hi") for i, p in enumerate(PHONES)],
                channel="sms",
                skips=[],
                cap=CapCheck(space, 1, since, policies.CAP, {p: p for p in PHONES}),
            )
        )
        capped.join(timeout=3)  # before: done at once; after: waits for the cap's lock
        holder.rollback()
    for t in (free, capped):
        t.join(timeout=60)
    assert not errors, errors
    twice = rows(
        db,
        "SELECT count(*) FROM send_records c JOIN send_records o ON o.recipient = c.recipient"
        " WHERE c.run_id = %s AND o.run_id = %s",
        cap_run,
        free_run,
    )[0][0]
    assert twice == 0, f"{twice} members messaged past the capped workflow's cap"
    assert rows(db, "SELECT count(*) FROM send_records WHERE run_id = %s", free_run) == [(10,)]
    assert rows(
        db,
        "SELECT count(*) FROM run_skips WHERE run_id = %s AND reason = %s",
        cap_run,
        policies.CAP,
    ) == [(10,)]


def test_an_uncapped_batch_without_records_takes_no_cap_lock(
    api: respx.MockRouter, campaigns: RestCampaigns, db: str
) -> None:
    """Exclusions alone (a dry run, a batch of opt-outs) do not wait for the cap's lock."""
    bridge(api, db)
    wf, rid = _new_run(db)
    space = policies.cap_space("sms")
    with psycopg.connect(db) as holder:  # another run holds the cap's lock
        holder.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [space])
        done = threading.Event()

        def write() -> None:
            campaigns.write_batch(
                rid,
                wf,
                None,
                records=[],
                channel="sms",
                skips=[("k", "no recipient")],
                queue=space,
            )
            done.set()

        t = threading.Thread(target=write)
        t.start()
        assert done.wait(timeout=30), "a batch without records waited for the cap's lock"
        holder.rollback()
    t.join(timeout=30)
    assert rows(db, "SELECT count(*) FROM run_skips WHERE run_id = %s", rid) == [(1,)]
