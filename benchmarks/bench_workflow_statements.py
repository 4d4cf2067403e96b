"""Where PostgreSQL's time goes in one campaign run: its statements, indexes and processes.

One `wb.workflows.process` run of `--size` targets (as `bench_workflow.py` runs it, with
the CLI's batch size), after `--warmup` unmeasured runs, on a PostgreSQL server of your
own with `shared_preload_libraries = pg_stat_statements` (never the shared one: its
statistics are reset here). Such a server, as the postgres user:
`initdb -D DIR -A trust`, then in DIR/postgresql.conf `port = 5499` and
`shared_preload_libraries = 'pg_stat_statements'`, `pg_ctl -D DIR start`.

Reported: every statement of the run's store by total execution time (calls, rows, shared
blocks and WAL records per call), the indexes and triggers of the tables a run writes
(each index costs every COPY row), and that server's CPU during the run split by process
(backends, WAL writer, autovacuum...; sampled every 50 ms from /proc, so a process that
ends between samples loses its last slice: the total is exact, from the postmaster with
its reaped children). Execution times are wall time (a busy machine inflates them); the
CPU is the measure to compare.
Run: .venv/bin/python benchmarks/bench_workflow_statements.py --port 5499 --source-db NAME
     [--size 100000] [--warmup 2] [--out results.json]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

HOT = ("send_records", "run_targets", "run_skips", "run_state", "run_locks", "workflow_runs")
TICK = os.sysconf("SC_CLK_TCK")


def _proc(pid: int | str) -> tuple[int, str, float] | None:
    """(parent pid, title, CPU seconds of the process and its reaped children)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        with open(f"/proc/{pid}/cmdline") as f:
            title = f.read().replace("\0", " ").strip()
    except OSError:  # gone meanwhile
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[1]), title, sum(int(x) for x in fields[11:15]) / TICK


class ServerCpu(threading.Thread):
    """The CPU of one server's processes (the postmaster `pm` and its children) by kind."""

    def __init__(self, pm: int) -> None:
        super().__init__(daemon=True)
        self.pm, self.done = pm, threading.Event()
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.kind: dict[int, str] = {}

    def total(self) -> float:
        own = _proc(self.pm)
        assert own is not None, "the server's postmaster is gone"
        return own[2] + sum(cpu for _, cpu in self._children())

    def _children(self) -> list[tuple[int, float]]:
        out = []
        for pid in (p for p in os.listdir("/proc") if p.isdigit()):
            got = _proc(pid)
            if got is not None and got[0] == self.pm:
                title = got[1].removeprefix("postgres: ")
                # a backend's title names its user and database; the others their role
                self.kind.setdefault(int(pid), "backend" if "postgres " in title else title)
                out.append((int(pid), got[2]))
        return out

    def run(self) -> None:
        for pid, cpu in self._children():  # those there before the run count from now
            self.first[pid] = cpu
        while not self.done.wait(0.05):
            for pid, cpu in self._children():
                self.first.setdefault(pid, 0.0)
                self.last[pid] = cpu

    def by_kind(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for pid, cpu in self.last.items():
            out[self.kind[pid]] = out.get(self.kind[pid], 0.0) + cpu - self.first[pid]
        return {k: round(v, 3) for k, v in sorted(out.items(), key=lambda kv: -kv[1])}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True, help="a server of your own")
    parser.add_argument("--source-db", required=True, help="a kept sample (bench_workflow)")
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    if args.port == 5432:  # its statistics are reset: never the machine's shared server
        parser.error("--port: a PostgreSQL server of your own, not the shared one on 5432")
    os.environ["HYBRIDWB_BENCH_PG_PORT"] = str(args.port)  # before bench_workflow reads it
    import bench_workflow as bw
    import psycopg
    from _common import BenchAccount, write

    def pg(sql: str, params: Any = None, db: str = "postgres") -> list[tuple[Any, ...]]:
        dsn = f"host=127.0.0.1 port={args.port} user=postgres dbname={db}"
        with psycopg.connect(dsn, autocommit=True) as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []

    pg("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    [(data,)] = pg("SHOW data_directory")
    pm = int(Path(data, "postmaster.pid").read_text().split()[0])
    store = f"hybridwb_bench_stmts_{uuid.uuid4().hex[:8]}"
    bw.pg_admin(f'CREATE DATABASE "{store}"')
    work = Path(tempfile.mkdtemp())
    account = BenchAccount(args.source_db)
    account.__enter__()
    try:
        (work / "mappings").mkdir()
        mappings = work / "mappings/table-mappings.json"
        shutil.copy(bw.REPO / "mappings/table-mappings.json", mappings)
        bw._stamp(mappings, account.url())
        os.environ["HYBRIDWB_SOURCE_URL"] = account.url().render_as_string(hide_password=False)
        bw.spawn(["init", str(bw.REPO), store])
        last, run, cpu = None, {}, ServerCpu(pm)
        for i in range(args.warmup + 1):
            # as bench_workflow's repetitions: the last run's records are the history
            pg("DELETE FROM send_records WHERE run_id IS DISTINCT FROM %s", (last,), db=store)
            pg("TRUNCATE run_targets, run_skips", db=store)
            pg("VACUUM ANALYZE send_records", db=store)
            if i == args.warmup:
                pg("SELECT pg_stat_statements_reset()")
                before = cpu.total()
                cpu.start()
            command = ["hybridwb", str(work), str(args.size), str(bw.cli_batch_size())]
            run = bw.spawn([*command, str(bw.REPO), store])
            last = run["run_id"]
        time.sleep(0.5)  # the run's backends end and are reaped
        cpu.done.set()
        cpu.join()
        server_s = cpu.total() - before
        statements = pg(
            "SELECT calls, total_exec_time, rows, (shared_blks_hit + shared_blks_read)"
            " / greatest(calls, 1), wal_records, regexp_replace(query, '\\s+', ' ', 'g')"
            " FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database"
            " WHERE datname = %s) ORDER BY total_exec_time DESC",
            (store,),
        )
        total_ms = sum(s[1] for s in statements)
        indexes = pg(
            "SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = 'public'"
            " AND tablename = ANY(%s) ORDER BY 1, 2",
            (list(HOT),),
            db=store,
        )
        triggers = pg(
            "SELECT tgrelid::regclass::text, tgname, tgisinternal FROM pg_trigger"
            " WHERE tgrelid::regclass::text = ANY(%s) ORDER BY 1, 2",
            (list(HOT),),
            db=store,
        )
        messages = run["messages"]
        write(
            "workflow_statements",
            {
                "size": args.size,
                "run": run,
                "server_cpu_us_per_msg": round(server_s / messages * 1e6, 2),
                "server_cpu_s_by_process": cpu.by_kind(),
                "exec_ms_total": round(total_ms, 1),
                "statements": [
                    {
                        "share": round(ms / total_ms, 3),
                        "exec_ms": round(ms, 1),
                        "calls": calls,
                        "rows": rows,
                        "blocks_per_call": round(float(blocks), 1),
                        "wal_records": wal,
                        "query": query[:300],
                    }
                    for calls, ms, rows, blocks, wal, query in statements
                    if ms >= 0.01 * total_ms or calls >= 10
                ],
                "indexes": [f"{t}: {d}" for t, d in indexes],
                "triggers": [" ".join(map(str, t)) for t in triggers],
            },
            Path(args.out) if args.out else None,
        )
    finally:
        account.__exit__(None, None, None)
        bw.pg_admin(f'DROP DATABASE IF EXISTS "{store}" WITH (FORCE)')
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
