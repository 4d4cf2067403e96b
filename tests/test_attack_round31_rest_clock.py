# ruff: noqa: F811  (the fixtures imported from round 30 are test parameters here)
"""Round 31: over REST, a live run's heartbeat is judged by the server's clock too.

Round 30 stamped and judged heartbeats by the PostgreSQL server's clock on the SQL store;
the REST store's functions stamp them with the database's `now()` (migration 0005), but
`stale_runs` still read them by this host's clock (`RestCampaigns.clock`). A host whose
clock was 5 minutes ahead called every live run stale, and `hybridwb run` of any
workflow on it (`Runner.mark_stale`) wrote `stale` over a running run's status with
"its heartbeat stopped; resume with: ...", while that run went on messaging.

The host is a real process whose wall clock is shifted by round 30's `LD_PRELOAD` shim
(nothing of hybridwb patched), talking to the PostgREST stand-in (`tests/_postgrest.py`,
which dates its answers by the database's clock, as PostgREST dates them) on a real
PostgreSQL database. The oracle is plain SQL on `workflow_runs`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests._postgrest import migrated_database
from tests.test_attack_round30_clock import SKEW_S, shim  # noqa: F401  (fixture: shim)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not sys.platform.startswith("linux") or shutil.which("gcc") is None,
        reason="needs Linux and gcc for the clock shim",
    ),
]

#: a host's `Runner.mark_stale` over the REST store (as `hybridwb run` calls it first)
_HOST = textwrap.dedent(
    """
    import sys, respx
    from _postgrest import PostgrestBridge, migrated_database
    from hybridwb.config import Settings
    from hybridwb.platform.rest import RestBackend
    from hybridwb.platform.store import Store
    from hybridwb.workflows.runner import Runner
    base = "https://proj.supabase.co"
    key = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJl"
    with respx.mock(base_url=base + "/rest/v1", assert_all_called=False) as router:
        PostgrestBridge(sys.argv[1]).mount(router)
        store = Store(RestBackend(base, key, "SUPABASE_SERVICE_ROLE_KEY", base_delay=0), actor="t")
        try:
            print("marked:", *sorted(str(r["id"]) for r in Runner(Settings(), store).mark_stale()))
        finally:
            store.close()
    """
)


@pytest.fixture
def dsn() -> Iterator[str]:
    yield from migrated_database("hybridwb_restclock")


def _running(dsn: str, beat_age_s: int) -> str:
    """A running run of a workflow of its own, its lock beaten `beat_age_s` seconds ago by
    the server's clock, under an owner of another host."""
    wf, rid = str(uuid.uuid4()), str(uuid.uuid4())
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO workflow_runs (id, workflow_id, status, parameters, dry_run,"
            " target_count, rendered_count, skipped_count, failed_count, sent_count,"
            " missing_variables, stats, created_at) VALUES (%s, %s, 'running', '{}', false,"
            " 0, 0, 0, 0, 0, '[]', '{}', now())",
            [rid, wf],
        )
        conn.execute(
            "INSERT INTO run_locks (workflow_id, run_id, owner, acquired_at, heartbeat_at)"
            " VALUES (%s, %s, 'elsewhere:4242#ab', now() - interval '1 hour',"
            " now() - make_interval(secs => %s))",
            [wf, rid, beat_age_s],
        )
    return rid


@pytest.mark.parametrize("skew", [SKEW_S, 0], ids=["host 5 min ahead", "host on time"])
def test_a_host_with_its_clock_ahead_leaves_a_live_rest_run_running(
    dsn: str, shim: Path, skew: int
) -> None:
    """BREAK: the host 5 minutes ahead marked the live run (beaten a second ago by the
    server's clock) stale. The dead run (beaten 10 minutes ago) is marked either way."""
    live, dead = _running(dsn, 1), _running(dsn, 600)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    if skew:
        env |= {"LD_PRELOAD": str(shim), "HYBRIDWB_TEST_SKEW_S": str(skew)}
    out = subprocess.run(
        [sys.executable, "-c", _HOST, dsn],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["marked:", dead], out.stdout
    with psycopg.connect(dsn, autocommit=True) as conn:
        status = dict(conn.execute("SELECT CAST(id AS TEXT), status FROM workflow_runs").fetchall())
    assert status == {live: "running", dead: "stale"}
