"""Search under load: 1, 8 and 32 processes, wb.search against the raw driver on the same SQL.

The data is bench_search.py's (1,000,000 people, the phone in a related table, 2,000,000
payments) in a uniquely named database, read through the benchmark's own SELECT-only account;
both are dropped at the end. Every statement each of RECORDED terms (ids, phones and
emails of people drawn from the whole table, names) makes a search send is recorded once
(`wb.search.last_statements`: the probe, when there is one, then the page) and replayed in
that order on a raw PyMySQL connection opened before timing, so the baseline runs exactly
the SQL hybridwb generated, returning tuples. The session SET hybridwb sends before every
read (read-only, time limit: its safety cost) is on wb's side only. wb.search gets
terms its process has not searched before, one per call, so nothing a search caches is met
again; both sides read the same server pages (the recording read them once).

Each process opens its workbench's store (where the query log goes) before timing: that
one-time second of CPU would otherwise land in its first phase. For each process count,
phases alternate (wb, raw, wb, raw ...), >= 7 repetitions of `--seconds` each; all
processes start a phase together (a barrier). Reported per count: searches
per second and p95 latency, median with min-max over repetitions, and wb/raw per repetition;
also each side's client CPU per search (a process's CPU time over its searches in a phase,
median over the processes), which depends less than throughput on what else the machine runs.
Targets (issue 17): with 8 processes, wb.search >= 50 % of the raw driver's throughput and
p95 <= 20 ms.
`--driver mysqldb` puts both sides on mysqlclient (wb's source URL and the raw replay).
Run: .venv/bin/python benchmarks/bench_search_load.py [--rows 1000000] [--reps 7] [--seconds 5]
     [--procs 1,8,32] [--driver pymysql|mysqldb] [--db KEPT_DB] [--out NAME]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import pymysql
from _common import HOST, BenchAccount, load_average, percentile, spread, write
from bench_search import FIRST, LAST, MAPPING, load

import hybridwb

TABLE = "people"
#: terms whose generated SQL the raw phases replay, and from which each process's wb
#: phases draw terms it has not searched yet (more than one process searches in a run):
#: enough for one process searching ~2,000 a second through 7 repetitions of 5 s (70,000;
#: 15,000 ran out in a fast hour, stop 33)
RECORDED = 100_000
_state: dict[str, Any] = {}


def terms(rows: int, n: int, seed: int = 17) -> list[str]:
    """`n` search terms of eight kinds (id, phone in three forms, email, names) for people
    drawn at random from the whole table (ids, phones and emails hardly ever repeat; the
    names come from a few dozen)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        i = rng.randrange(1, rows)
        kind = rng.randrange(8)
        out.append(
            [
                str(i),
                f"010-{i // 10000:04d}-{i % 10000:04d}",
                f"010{i // 10000:04d}{i % 10000:04d}",
                f"8210{i // 10000:04d}{i % 10000:04d}",
                f"p{i}@example.kr",
                LAST[i % 5] + FIRST[(i // 10) % 5],
                f"{FIRST[5 + i % 5]} {LAST[5 + (i // 7) % 5]}",
                LAST[i % 5],
            ][kind]
        )
    return out


def _init(barrier: Any, url: str, work: str, user: str, password: str, db: str, rows: int) -> None:
    home = Path(work) / f".hybridwb-{mp.current_process().pid}"
    _state["wb"] = hybridwb.connect(source=url, cwd=work, home=str(home))
    driver: Any = pymysql
    if url.startswith("mysql+mysqldb"):  # the raw side on the driver wb reads with
        import MySQLdb as driver
    _state["raw"] = driver.connect(
        host=HOST, user=user, password=password, database=db, charset="utf8mb4"
    )
    _state["barrier"] = barrier
    _state["rows"] = rows
    _state["seen"] = set()
    _state["statements"] = json.loads((Path(work) / "statements.json").read_text())
    _state["wb"].search(TABLE, "1")  # schema facts, pool
    # the query log's store is opened (imports, migrations: about a second of CPU) by its
    # first flush; done here, not inside the first timed phase of every process
    _state["wb"].querylog.flush()


def _phase(task: tuple[str, float, int]) -> tuple[list[float], float]:
    mode, seconds, seed = task
    wb, raw, statements = _state["wb"], _state["raw"], _state["statements"]
    order = list(statements)
    random.Random(seed).shuffle(order)
    if mode == "wb":
        # fresh terms: none was searched before in this process (no cache of the guard's
        # verdicts or the plan meets a text again); the server's pages are those the raw
        # phases read (every recorded term was searched once while recording)
        seen = _state["seen"]
        order = [t for t in order if t not in seen]
        if not order:
            raise RuntimeError(f"every recorded term was searched; raise RECORDED ({RECORDED})")
    _state["barrier"].wait()
    out: list[float] = []
    cpu = time.process_time()
    deadline = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < deadline:
        term = order[i % len(order)]
        i += 1
        started = time.perf_counter()
        if mode == "wb":
            if i > len(order):
                # an exception, not SystemExit: that ends the pool's worker and map() waits on
                raise RuntimeError(f"a phase ran out of fresh terms; raise RECORDED ({RECORDED})")
            seen.add(term)
            wb.search(TABLE, term)
        else:
            with raw.cursor() as cur:
                for sql, params in statements[term]:
                    cur.execute(sql, params)
                    cur.fetchall()
        out.append((time.perf_counter() - started) * 1000)
    return out, (time.process_time() - cpu) * 1000 / max(1, len(out))


def record(url: str, work: Path, all_terms: list[str]) -> dict[str, Any]:
    """Every statement each term's search sends (probe first, then the page), in the raw
    driver's form (pyformat + parameters)."""
    from hybridwb.source.binds import check_params

    out: dict[str, Any] = {}
    with hybridwb.connect(source=url, cwd=work, home=str(work / ".hybridwb")) as wb:
        for term in all_terms:
            wb.search(TABLE, term)
            sent = []
            for sql, params in wb.search.last_statements:
                prepared = wb.source.prepare(sql)
                bound = check_params(prepared.names, params)
                sent.append([prepared.driver_text, {k: _plain(v) for k, v in bound.items()}])
            out[term] = sent
    return out


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--procs", default="1,8,32")
    parser.add_argument("--db", default="", help="a database bench_search.load filled (kept)")
    parser.add_argument("--out", default="search_load", help="the results file's name")
    parser.add_argument(
        "--driver",
        default="pymysql",
        choices=["pymysql", "mysqldb"],
        help="the driver of both sides: wb's source URL and the raw replay",
    )
    args = parser.parse_args()
    db = args.db or f"hybridwb_bench_sload_{uuid.uuid4().hex[:8]}"
    admin = pymysql.connect(host=HOST, user="root", autocommit=True)
    work = Path(tempfile.mkdtemp())
    results: dict[str, Any] = {}
    try:
        if not args.db:
            with admin.cursor() as cur:
                cur.execute(f"CREATE DATABASE `{db}` CHARACTER SET utf8mb4")
                cur.execute(f"USE `{db}`")
                load(cur, args.rows)
        with BenchAccount(db) as account:
            url = (
                account.url()
                .set(drivername=f"mysql+{args.driver}")
                .render_as_string(hide_password=False)
            )
            from hybridwb.mapping.model import SOURCE_KEY
            from hybridwb.mapping.service import source_identity
            from hybridwb.source import Source

            (work / "mappings").mkdir()
            stamped = {SOURCE_KEY: source_identity(Source(account.url())), **MAPPING}
            (work / "mappings" / "table-mappings.json").write_text(
                json.dumps(stamped, ensure_ascii=False), encoding="utf-8"
            )
            statements = record(
                url, work, list(dict.fromkeys(terms(args.rows, 2 * RECORDED)))[:RECORDED]
            )
            (work / "statements.json").write_text(json.dumps(statements, default=str))
            ctx = mp.get_context("fork")
            for procs in [int(p) for p in args.procs.split(",")]:
                barrier = ctx.Barrier(procs)
                per_mode: dict[str, dict[str, list[float]]] = {
                    m: {"per_s": [], "p95_ms": [], "p50_ms": [], "client_cpu_ms_per_search": []}
                    for m in ("wb", "raw")
                }
                load_before = load_average()
                with ctx.Pool(
                    procs,
                    initializer=_init,
                    initargs=(
                        barrier,
                        url,
                        str(work),
                        account.user,
                        account.password,
                        db,
                        args.rows,
                    ),
                ) as pool:
                    for rep in range(args.reps):
                        for mode in ("wb", "raw"):
                            tasks = [
                                (mode, args.seconds, 100_000 + rep * 1000 + k) for k in range(procs)
                            ]
                            done = pool.map(_phase, tasks, chunksize=1)
                            flat = [x for worker, _ in done for x in worker]
                            per_mode[mode]["client_cpu_ms_per_search"].append(
                                statistics.median(cpu for _, cpu in done)
                            )
                            per_mode[mode]["per_s"].append(len(flat) / args.seconds)
                            per_mode[mode]["p95_ms"].append(percentile(flat, 0.95))
                            per_mode[mode]["p50_ms"].append(statistics.median(flat))
                load_after = load_average()
                ratio = [
                    a / b
                    for a, b in zip(per_mode["wb"]["per_s"], per_mode["raw"]["per_s"], strict=True)
                ]
                results[str(procs)] = {
                    mode: {k: spread(v, 2) for k, v in vals.items()}
                    for mode, vals in per_mode.items()
                } | {
                    "throughput wb/raw (per repetition)": spread(ratio, 3),
                    "load_average_before_after": [load_before, load_after],
                }
                print(procs, json.dumps(results[str(procs)]), flush=True)
    finally:
        if not args.db:
            with admin.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
        admin.close()
        shutil.rmtree(work, ignore_errors=True)
    eight = results.get("8")
    write(
        args.out,
        {
            "hybridwb": str(Path(hybridwb.__file__).parent),
            "people": args.rows,
            "driver": args.driver,
            "repetitions": args.reps,
            "seconds_per_phase": args.seconds,
            "method": "wb and raw phases alternate; raw replays every statement (probe, "
            f"then page; not wb's session SET) of {RECORDED} recorded terms, wb searches terms of that set its process has not "
            "searched yet; median with min-max over repetitions",
            "processes": results,
            "targets": {
                "8 processes: wb >= 50% of raw throughput": None
                if eight is None
                else eight["throughput wb/raw (per repetition)"]["median"] >= 0.5,
                "8 processes: p95 <= 20 ms": None
                if eight is None
                else eight["wb"]["p95_ms"]["median"] <= 20,
            },
        },
    )


if __name__ == "__main__":
    main()
