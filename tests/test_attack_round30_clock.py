# ruff: noqa: F811  (the fixtures imported from round 2 are test parameters here)
"""Round 30: a workflow's lock judged by the store's clock, not by each host's.

Two hosts share a PostgreSQL store. A lock's heartbeat was stamped by the clock of the
host that beat it (`datetime.now()` in Python) and judged stale by the clock of the host
that read it: when the two clocks differ by more than the stale time (120 s: a VM or a
container without NTP, a clock stepped by hand), a live run on the host whose clock is
behind looked dead to the host whose clock is ahead. That host took its lock, marked it
`stale` and started a second run of the workflow, which messaged again every customer
the live run had already messaged (the Supabase REST store judged by the server's
`now()` all along: migration 0005).

The skewed host is a real process whose `CLOCK_REALTIME` is shifted by an `LD_PRELOAD`
shim built here (a few lines of C over `clock_gettime`, `gettimeofday`, `time`): nothing
of hybridwb is patched. The source is MariaDB; the oracle is direct SQL on the store
(`send_records`, `run_locks`, `workflow_runs`) with psycopg.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.test_attack_once_round2 import (  # noqa: F401  (fixtures: source, pg_store)
    INFO,
    oracle,
    people,
    pg_store,
    source,
    source_url,
    workbench,
)

pytestmark = [
    pytest.mark.mysql,
    pytest.mark.postgres,
    pytest.mark.skipif(
        not sys.platform.startswith("linux") or shutil.which("gcc") is None,
        reason="needs Linux and gcc for the clock shim",
    ),
]

SKEW_S = 300  # more than the lock's stale time (120 s)

_SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>
static long skew(void) { const char *s = getenv("HYBRIDWB_TEST_SKEW_S"); return s ? atol(s) : 0; }
int clock_gettime(clockid_t id, struct timespec *ts) {
    static int (*real)(clockid_t, struct timespec *);
    if (!real) real = dlsym(RTLD_NEXT, "clock_gettime");
    int rc = real(id, ts);
    if (rc == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) ts->tv_sec += skew();
    return rc;
}
int gettimeofday(struct timeval *tv, void *tz) {
    struct timespec ts;
    int rc = clock_gettime(CLOCK_REALTIME, &ts);
    if (rc == 0 && tv) { tv->tv_sec = ts.tv_sec; tv->tv_usec = ts.tv_nsec / 1000; }
    return rc;
}
time_t time(time_t *t) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (t) *t = ts.tv_sec;
    return ts.tv_sec;
}
"""

#: one host's `wb.workflows.process` of a run (a notebook run by hand: the call takes the
#: workflow's lock itself), printing how it ended and the runs it calls stale
_HOST = textwrap.dedent(
    """
    import sys, hybridwb
    store, source, workflow, run_id, pause = sys.argv[1:6]
    wb = hybridwb.connect(source=source, store=store)
    try:
        wb.workflows.process(workflow, run_id, progress=False, batch_size=2,
                             batch_pause=float(pause))
        print("done", flush=True)
    except Exception as exc:
        print(type(exc).__name__, str(exc).splitlines()[0], flush=True)
    try:  # what this host calls stale (`hybridwb run` marks those `stale`)
        print("stale:", *[str(r["id"]) for r in wb.workflows.stale()], flush=True)
    finally:
        wb.close()
    """
)


@pytest.fixture(scope="module")
def shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("clock-shim")
    (where / "skew.c").write_text(_SHIM)
    lib = where / "skew.so"
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-O2", "-o", str(lib), str(where / "skew.c"), "-ldl"],
        check=True,
    )
    return lib


def host(shim: Path, skew: int, *args: str) -> subprocess.Popen[str]:
    """A process of another host whose wall clock is `skew` seconds off."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    if skew:
        env |= {"LD_PRELOAD": str(shim), "HYBRIDWB_TEST_SKEW_S": str(skew)}
    return subprocess.Popen(
        [sys.executable, "-c", _HOST, *args], stdout=subprocess.PIPE, text=True, env=env
    )


def test_the_shim_shifts_a_processes_wall_clock(shim: Path) -> None:
    """The fault is real: the process's `datetime.now()` is `SKEW_S` behind this one's."""
    env = {**os.environ, "LD_PRELOAD": str(shim), "HYBRIDWB_TEST_SKEW_S": str(-SKEW_S)}
    out = subprocess.run(
        [sys.executable, "-c", "import datetime; print(datetime.datetime.now().timestamp())"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert abs(time.time() - float(out.stdout) - SKEW_S) < 5


def _wait_for(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.parametrize(
    ("skew_a", "skew_b"),
    [(-SKEW_S, 0), (0, SKEW_S)],
    ids=["live run's host behind", "second host ahead"],
)
def test_a_live_run_on_a_host_with_another_clock_keeps_its_lock(
    source: Callable[..., str],
    pg_store: str,
    shim: Path,
    skew_a: int,
    skew_b: int,
) -> None:
    """BREAK: host A processes a run of the workflow, beating its lock; host B, whose clock
    is 5 minutes ahead of A's, starts the workflow again. B read A's fresh heartbeat as 5
    minutes old, took the lock, marked A's run stale and messaged the whole audience in a
    second run: each customer A had messaged got the message twice. A's lock holds
    while it beats (B is refused in one line), and each customer is messaged once."""
    members = [(f"m{i:03d}", f"회원{i}", f"010-5555-{i:04d}") for i in range(12)]
    db = source(
        "CREATE TABLE members (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20))",
        rows={"members": members},
    )
    wb = workbench(db, pg_store, {"members": {**people(), "audience": True}})
    try:
        wf = wb.workflows.create(
            "clock", target_config={"table": "members"}, message_config={"content": INFO}
        )
        run_a = wb.store.runs.create(wf["id"], {})["id"]
        run_b = wb.store.runs.create(wf["id"], {})["id"]
    finally:
        wb.close()
    common = [pg_store, source_url(db), str(wf["id"])]
    a = host(shim, skew_a, *common, str(run_a), "1.5")
    try:
        _wait_for(
            lambda: oracle(pg_store, "SELECT count(*) FROM send_records")[0][0] >= 2,
            "host A's first batch",
        )
        b = host(shim, skew_b, *common, str(run_b), "0")
        b_out, _ = b.communicate(timeout=120)
    finally:
        a_out, _ = a.communicate(timeout=120)
    twice = oracle(
        pg_store,
        "SELECT recipient, count(*) FROM send_records GROUP BY recipient HAVING count(*) > 1",
    )
    assert twice == [], f"{len(twice)} customers messaged twice"
    assert a_out.splitlines()[0] == "done", a_out
    refused, stale = b_out.splitlines()
    assert refused.startswith("RunRefused"), b_out
    assert str(run_a) not in stale, "host B calls host A's live run stale"
    assert oracle(pg_store, "SELECT count(DISTINCT target_key) FROM send_records") == [(12,)]
    statuses: dict[str, Any] = dict(
        oracle(pg_store, "SELECT CAST(id AS TEXT), status FROM workflow_runs")
    )
    assert statuses[str(run_a)] == "succeeded", statuses
    assert oracle(pg_store, "SELECT count(*) FROM run_locks") == [(0,)]
