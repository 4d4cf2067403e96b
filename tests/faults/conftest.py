"""The fault-injection tier: real runs against private servers, broken in the middle.

Everything a test asserts comes from independent SQL (psycopg on the store, pymysql on
the source), never from what hybridwb reports about itself.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import URL

import hybridwb
from tests.conftest import MYSQL_CANARY, PRIVATE_RO_USER, install_sample_mappings

HYBRIDWB = str(Path(sys.executable).parent / "hybridwb")
WORKFLOW = "fault-campaign"
TEMPLATE = "장애 안내"
TARGET = {"table": "customers", "where": {"field": "grade", "op": "in", "value": ["VIP", "GOLD"]}}
#: what makes a customer eligible, written as SQL by hand: the oracle for "every target"
ELIGIBLE_SQL = (
    "SELECT customer_id FROM customers WHERE grade IN ('VIP', 'GOLD') "
    "AND marketing_opt_in = 1 AND phone IS NOT NULL AND name IS NOT NULL"
)

pytestmark = [pytest.mark.faults, pytest.mark.slow]


@dataclass
class FaultLab:
    """One workflow on the private servers, driven through the public CLI."""

    mariadb: object
    pg: object
    store_url: URL
    cwd: Path

    # -- oracles -----------------------------------------------------------------------
    def eligible(self) -> set[str]:
        conn = self.mariadb.admin("shop")  # type: ignore[attr-defined]
        try:
            with conn.cursor() as cur:
                cur.execute(ELIGIBLE_SQL)
                return {str(r[0]) for r in cur.fetchall()}
        finally:
            conn.close()

    def _pg(self) -> psycopg.Connection:
        return psycopg.connect(
            host="127.0.0.1",
            port=self.pg.port,  # type: ignore[attr-defined]
            user="postgres",
            dbname=self.store_url.database,
            autocommit=True,
            connect_timeout=3,
        )

    def runs(self) -> list[dict]:
        with self._pg() as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
            cur.execute("SELECT * FROM workflow_runs ORDER BY created_at")
            return list(cur.fetchall())

    def run_row(self, run_id: str) -> dict:
        with self._pg() as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
            cur.execute("SELECT * FROM workflow_runs WHERE id = %s", (run_id,))
            row = cur.fetchone()
        assert row is not None, f"run {run_id} is not in workflow_runs"
        return row

    def record_keys(self, run_id: str) -> list[str]:
        with self._pg() as conn:
            rows = conn.execute(
                "SELECT target_key FROM send_records WHERE run_id = %s", (run_id,)
            ).fetchall()
        return [r[0] for r in rows]

    def frozen_keys(self, run_id: str) -> list[str]:
        """The targets the run froze on its first pass (run_targets), by SQL."""
        with self._pg() as conn:
            rows = conn.execute(
                "SELECT target_key FROM run_targets WHERE run_id = %s", (run_id,)
            ).fetchall()
        return [r[0] for r in rows]

    def skip_keys(self, run_id: str) -> list[str]:
        """The frozen targets the run excluded (run_skips), by SQL."""
        with self._pg() as conn:
            rows = conn.execute(
                "SELECT target_key FROM run_skips WHERE run_id = %s", (run_id,)
            ).fetchall()
        return [r[0] for r in rows]

    def lock_rows(self) -> list[tuple]:
        """Every workflow lock held in the store (run_locks), by SQL."""
        with self._pg() as conn:
            return list(conn.execute("SELECT workflow_id, run_id FROM run_locks").fetchall())

    def all_record_keys(self) -> list[str]:
        with self._pg() as conn:
            return [r[0] for r in conn.execute("SELECT target_key FROM send_records").fetchall()]

    def assert_exactly_once(self, run_id: str) -> None:
        keys = self.record_keys(run_id)
        doubled = {k for k in keys if keys.count(k) > 1}
        assert not doubled, f"targets with two records: {sorted(doubled)[:5]}"
        eligible = self.eligible()
        assert set(keys) == eligible, (
            f"missing {len(eligible - set(keys))}, unexpected {len(set(keys) - eligible)}"
        )
        assert len(self.all_record_keys()) == len(eligible), "records outside this run"

    # -- driving -----------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "HYBRIDWB_SOURCE_URL": self.mariadb.url(  # type: ignore[attr-defined]
                PRIVATE_RO_USER, MYSQL_CANARY, "shop"
            ).render_as_string(hide_password=False),
            "HYBRIDWB_STORE_URL": self.store_url.render_as_string(hide_password=False),
        }

    def start(self, *extra: str, pause: float = 0.25, batch: int = 20) -> subprocess.Popen:
        return subprocess.Popen(
            [
                HYBRIDWB,
                "run",
                WORKFLOW,
                "-p",
                "batch_size",
                str(batch),
                "-p",
                "batch_pause",
                str(pause),
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env(),
            cwd=self.cwd,
            start_new_session=True,
        )

    def wait_for_records(self, proc: subprocess.Popen, minimum: int, timeout: float = 120) -> str:
        """The running run's id once it has at least `minimum` records."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = self.runs()
            if runs:
                run_id = str(runs[-1]["id"])
                # the kernel has begun (the runner opens the run `running` before the
                # kernel starts): what it writes first, the freeze's audience in the stats
                started = (runs[-1]["stats"] or {}).get("frozen")
                if minimum == 0 and runs[-1]["status"] == "running" and started:
                    return run_id
                if minimum and len(self.record_keys(run_id)) >= minimum:
                    return run_id
            if proc.poll() is not None:
                out, err = proc.communicate()
                raise AssertionError(f"the run ended before the fault: {out}{err}")
            time.sleep(0.1)
        raise AssertionError("the run wrote no records in time")

    def resume(self, run_id: str, timeout: float = 240) -> subprocess.CompletedProcess:
        return subprocess.run(
            [HYBRIDWB, "run", "--resume", run_id, "-p", "batch_pause", "0"],
            capture_output=True,
            text=True,
            env=self.env(),
            cwd=self.cwd,
            timeout=timeout,
        )

    def cli(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [HYBRIDWB, *argv],
            capture_output=True,
            text=True,
            env=self.env(),
            cwd=self.cwd,
            timeout=timeout,
        )

    def finish(self, proc: subprocess.Popen, timeout: float = 240) -> tuple[int, str]:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            out, err = proc.communicate()
            raise AssertionError(f"the run hung after the fault: {out}{err}") from None
        return proc.returncode, out + err


def kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def kernel_pids(parent: int) -> list[int]:
    out = subprocess.run(
        ["pgrep", "-P", str(parent), "-f", "ipykernel"], capture_output=True, text=True
    ).stdout
    return [int(x) for x in out.split()]


def wait_gone(pids: list[int], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = []
        for pid in pids:
            try:
                os.kill(pid, 0)
                alive.append(pid)
            except ProcessLookupError:
                pass
        if not alive:
            return
        time.sleep(0.2)
    for pid in pids:  # an orphan that outlived its parent: a leak to report, not to keep
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    raise AssertionError(f"kernel processes {pids} outlived their run by {timeout:.0f} s")


@pytest.fixture
def lab(private_mariadb, private_pg, private_store: URL, tmp_path: Path) -> Iterator[FaultLab]:  # type: ignore[no-untyped-def]
    private_mariadb.start()
    private_pg.start()
    install_sample_mappings(tmp_path, private_mariadb.url(PRIVATE_RO_USER, MYSQL_CANARY, "shop"))
    lab = FaultLab(private_mariadb, private_pg, private_store, tmp_path)
    env = lab.env()
    # `hybridwb init` is this call in a process of its own (cli.init); the CLI route and
    # its settings are the canary's and test_cli's, so the store is made here, in-process
    wb = hybridwb.connect(source=env["HYBRIDWB_SOURCE_URL"], store=env["HYBRIDWB_STORE_URL"])
    try:
        wb.store.init()
        wb.templates.create(
            TEMPLATE, "#{고객명}님 안녕하세요. 등급: {{ 등급 }}", message_type="SMS"
        )
        wb.workflows.create(
            WORKFLOW,
            target_config=TARGET,
            message_config={"template": TEMPLATE, "mode": "strict"},
        )
    finally:
        wb.close()
    yield lab
    private_mariadb.start()
    private_pg.start()
