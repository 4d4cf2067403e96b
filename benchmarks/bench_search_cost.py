"""Client CPU and round trips per wb.search and per 1-row wb.sql, this checkout against another.

The data is bench_search.py's (people, addr with the phone, payment) in a uniquely named
database read through the benchmark's own SELECT-only account; both are dropped at the end.
Each repetition runs one child process per version (the order alternates: A B, B A, ...);
a child imports that version's `hybridwb` from its own source tree, opens a workbench, warms it, then runs SEARCHES searches with fresh terms (each drawn
from the whole table, none repeated in a run, the same terms for both versions) and CALLS
1-row `wb.sql` reads of a fresh key each. Per operation it reports:

* client CPU (process time, which the machine's load disturbs least),
* statements sent: every command written to any MySQL connection of the process (counted
  in PyMySQL's one write path), SETs and SELECTs apart, and connections opened (the session
  SET sent at checkin is pipelined: it is a statement, not a wait),
* wall time (p50), noisy on a shared machine.

Medians with min-max over the repetitions, with the load average before and after.

    .venv/bin/python benchmarks/bench_search_cost.py [--base main] [--reps 7] [--rows 1000000]
(writes benchmarks/results/search_cost.json)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

REPO = Path(__file__).resolve().parents[1]
SEARCHES = int(os.environ.get("HWB_BENCH_SEARCHES", "300"))
CALLS = int(os.environ.get("HWB_BENCH_CALLS", "500"))
ONE_ROW = "SELECT person_id, first_name, last_name FROM people WHERE person_id = :id"


class _Wire:
    """Commands written to any MySQL connection of the process (PyMySQL's one write path),
    and connections opened: the statements the server receives, SETs and SELECTs apart."""

    def __init__(self) -> None:
        import pymysql.connections

        self.counts = {"commands": 0, "sets": 0, "selects": 0, "connects": 0}
        cls = pymysql.connections.Connection
        send, connect = cls._execute_command, cls.connect
        wire = self

        def counted_send(conn: Any, command: int, sql: Any) -> Any:
            wire.counts["commands"] += 1
            head = (sql.encode() if isinstance(sql, str) else bytes(sql))[:6].upper()
            if head.startswith(b"SET "):
                wire.counts["sets"] += 1
            elif head.startswith(b"SELECT"):
                wire.counts["selects"] += 1
            return send(conn, command, sql)

        def counted_connect(conn: Any, sock: Any = None) -> Any:
            wire.counts["connects"] += 1
            return connect(conn, sock)

        cls._execute_command = counted_send
        cls.connect = counted_connect

    def snapshot(self) -> dict[str, int]:
        return dict(self.counts)


def child(source_dir: str) -> None:
    """Runs in the child: one JSON line with CPU, wall time and round trips per operation."""
    sys.path.insert(0, source_dir)
    warnings.simplefilter("ignore")
    import pymysql
    from bench_search_load import TABLE, terms

    import hybridwb

    assert Path(hybridwb.__file__).is_relative_to(source_dir), hybridwb.__file__
    work = Path(os.environ["HWB_BENCH_WORK"])
    rows = int(os.environ["HWB_BENCH_ROWS"])
    seed = int(os.environ["HWB_BENCH_SEED"])
    home = Path(tempfile.mkdtemp(dir=work))
    wb = hybridwb.connect(source=os.environ["HWB_BENCH_URL"], cwd=str(work), home=str(home))
    for term in terms(rows, 30, seed=seed + 1):  # schema facts, pool, imports
        wb.search(TABLE, term)
    for i in range(30):
        wb.sql(ONE_ROW, {"id": i + 1})
    wb.querylog.flush()  # opens the platform store (the query log's sink) before timing
    fresh = terms(rows, SEARCHES, seed=seed)
    keys = random.Random(seed).sample(range(1, rows), CALLS)

    wire = _Wire()

    def measure(run: Any, items: list[Any]) -> dict[str, float]:
        before = wire.snapshot()
        wall: list[float] = []
        cpu0 = time.process_time()
        for item in items:
            started = time.perf_counter()
            run(item)
            wall.append((time.perf_counter() - started) * 1000)
        cpu = time.process_time() - cpu0
        after = wire.snapshot()
        n = len(items)
        return {
            "cpu_ms": cpu * 1000 / n,
            "wall_p50_ms": statistics.median(wall),
            # the SHOW after the loop counts once (within 1/n: the pool's own SETs around
            # the two reads)
            "statements": (after["commands"] - before["commands"]) / n,
            "selects": (after["selects"] - before["selects"]) / n,
            "sets": (after["sets"] - before["sets"]) / n,
            "connects": (after["connects"] - before["connects"]) / n,
        }

    sent: list[tuple[str, dict[str, Any]]] = []

    def search(term: str) -> None:
        wb.search(TABLE, term)
        sent.extend(wb.search.last_statements)  # probes and page: replayed raw below

    out = {
        "search": measure(search, fresh),
        "sql_1row": measure(lambda k: wb.sql(ONE_ROW, {"id": k}), keys),
    }
    # the raw driver on the same SQL (each search's probe and page), tuples, a connection
    # opened before timing: per search, as the figures above
    from sqlalchemy.engine import make_url

    from hybridwb.source.binds import check_params

    url = make_url(os.environ["HWB_BENCH_URL"])
    raw = pymysql.connect(
        host=url.host,
        user=url.username,
        password=url.password,
        database=url.database,
        charset="utf8mb4",
        autocommit=True,
    )
    replay = []
    for sql, params in sent:
        prepared = wb.source.prepare(sql)
        replay.append((prepared.driver_text, check_params(prepared.names, params)))
    cpu0 = time.process_time()
    for text, params in replay:
        with raw.cursor() as cur:
            cur.execute(text, params)
            cur.fetchall()
    out["raw_same_sql_per_search"] = {
        "cpu_ms": (time.process_time() - cpu0) * 1000 / len(fresh),
        "statements": len(replay) / len(fresh),
    }
    raw.close()
    wb.close()
    print(json.dumps(out))


def _tree(commit: str, into: Path) -> Path:
    """The hybridwb package of `commit`, unpacked under `into` (git archive)."""
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit, "hybridwb"],
        cwd=REPO,
        check=True,
        capture_output=True,
    ).stdout
    tar_path = into / "src.tar"
    tar_path.write_bytes(archive)
    with tarfile.open(tar_path) as tar:
        tar.extractall(into, filter="data")
    return into


def main() -> None:
    import pymysql
    from _common import HOST, BenchAccount, load_average, spread, write
    from bench_search_load import MAPPING

    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default="main")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", default="", help="an existing loaded database (kept)")
    args = parser.parse_args()
    db = args.db or f"hybridwb_bench_scost_{uuid.uuid4().hex[:8]}"
    work = Path(tempfile.mkdtemp())
    admin = pymysql.connect(host=HOST, user="root", autocommit=True)
    base_rev = subprocess.run(
        ["git", "rev-parse", "--short", args.base], cwd=REPO, check=True, capture_output=True
    ).stdout.decode()
    head_rev = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, check=True, capture_output=True
    ).stdout.decode()
    versions = {
        f"base {args.base} {base_rev.strip()}": str(_tree(args.base, work / "base")),
        f"this checkout (HEAD {head_rev.strip()} + working tree)": str(REPO),
    }
    per: dict[str, dict[str, dict[str, list[float]]]] = {v: {} for v in versions}
    try:
        if not args.db:
            from bench_search import load

            with admin.cursor() as cur:
                cur.execute(f"CREATE DATABASE `{db}` CHARACTER SET utf8mb4")
                cur.execute(f"USE `{db}`")
                load(cur, args.rows)
        with BenchAccount(db) as account:
            from hybridwb.mapping.model import SOURCE_KEY
            from hybridwb.mapping.service import source_identity
            from hybridwb.source import Source

            (work / "mappings").mkdir()
            stamped = {SOURCE_KEY: source_identity(Source(account.url())), **MAPPING}
            (work / "mappings" / "table-mappings.json").write_text(
                json.dumps(stamped, ensure_ascii=False), encoding="utf-8"
            )
            load_before = load_average()
            env = dict(
                os.environ,
                HWB_BENCH_URL=account.url().render_as_string(hide_password=False),
                HWB_BENCH_WORK=str(work),
                HWB_BENCH_ROWS=str(args.rows),
            )
            for rep in range(args.reps):
                order = list(versions.items())
                if rep % 2:
                    order.reverse()
                for name, src in order:
                    env["HWB_BENCH_SEED"] = str(1000 + rep)
                    done = subprocess.run(
                        [sys.executable, __file__, "--child", src],
                        env=env,
                        check=True,
                        capture_output=True,
                        text=True,
                    )
                    result = json.loads(done.stdout.strip().splitlines()[-1])
                    for op, figures in result.items():
                        for k, v in figures.items():
                            per[name].setdefault(op, {}).setdefault(k, []).append(v)
                    print(rep, name, json.dumps(result), flush=True)
            load_after = load_average()
    finally:
        if not args.db:
            with admin.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
        admin.close()
        shutil.rmtree(work, ignore_errors=True)
    write(
        "search_cost",
        {
            "people": args.rows,
            "repetitions": args.reps,
            "searches_per_child": SEARCHES,
            "one_row_reads_per_child": CALLS,
            "method": "versions alternate per repetition (A B, B A ...); fresh terms; "
            "statements = commands written to MySQL; median with min-max",
            "load_average_before_after": [load_before, load_after],
            "versions": {
                name: {
                    op: {k: spread(v, 3) for k, v in figures.items()} for op, figures in ops.items()
                }
                for name, ops in per.items()
            },
        },
    )


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[2])
    else:
        main()
