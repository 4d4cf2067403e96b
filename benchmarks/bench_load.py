"""Issue 15 item 2: 100 concurrent sessions for 60 s of mixed sql / search / preview.

On 200,000 customers in MariaDB, in a database and with a SELECT-only account made for
this run (uniquely named, with a password, both dropped after). Two modes:

- threads: 100 threads share one workbench (one pool) in this process;
- processes: 8 processes, 100 sessions in all (13 threads each), one workbench per process.

Reported: success rate, p50/p95 per operation, RSS growth after warm-up (per process), and
the most server connections the account held (information_schema.PROCESSLIST sampled every
0.2 s) against the documented budget, `pool_size + max_overflow` per process.
Targets: >= 99.9 % success, RSS growth < 50 MB, connections <= budget.

Warm-up, per process: imports, the engine, the guard's and SQLAlchemy's first-use caches and
the result cache filling to its budget (`result_cache_mb`) happen there. It ends at the later
of 20 % of the run and the moment every kind of operation has succeeded `WARMUP_OPS` times in
that process. RSS is sampled every second; growth is the last sample minus the sample at the
end of warm-up, and `late_slope_mb_per_min` (a least-squares line through the second half of
the samples) shows whether memory is still rising. `--tracemalloc` adds the ten call sites
whose allocations grew most after warm-up (slow; for finding a leak, not for the figures).

The busy samples swing by ±140 MB with 100 threads (what is in flight, what glibc's arenas
keep), so the target is judged on settled samples: the sessions run in two phases of fresh
threads, the first stopping when warm-up ends; after each phase, with nothing in flight,
the process collects garbage and trims the heap (`malloc_trim`) before RSS is read.
`settled_growth_mb_max` is the second settled sample minus the first.

Not part of `make test`. Run: .venv/bin/python benchmarks/bench_load.py [--seconds 60]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import tracemalloc
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import pymysql
from sqlalchemy.engine import URL

sys.path.insert(0, str(Path(__file__).parent))

from _common import HOST, admin_url, summary, write

CUSTOMERS = 200_000
REPO = Path(__file__).resolve().parents[1]
WARMUP_FRACTION = 0.2
#: successful operations of each kind a process completes before warm-up ends
WARMUP_OPS = 20
#: names searched by prefix (three characters or more: shorter ones are refused)
NAMES = ("김민준", "이서연", "박지훈", "최지우", "정현우")


def _loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def settled_rss_mb() -> float:
    """RSS with nothing in flight: garbage collected and freed heap handed back to the
    kernel (glibc `malloc_trim`), so two settled samples differ by what is really kept, not
    by what 100 threads happened to hold or the allocator happened to cache."""
    import contextlib
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: the plain RSS
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    return rss_mb()


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def root() -> pymysql.Connection:
    return pymysql.connect(host=HOST, user="root", autocommit=True)


def operation(wb: Any, rng: random.Random) -> tuple[str, Any]:
    """One step of an analyst's session: a keyed read, a search or a target preview."""
    kind = rng.choice(("sql", "search", "preview"))
    cid = rng.randrange(1, CUSTOMERS)
    if kind == "sql":
        return kind, lambda: wb.sql(
            "SELECT customer_id, name, grade FROM customers WHERE customer_id BETWEEN :a AND :b",
            {"a": cid, "b": cid + 50},
        )
    if kind == "search":
        term = rng.choice((str(cid), f"user{cid}", rng.choice(NAMES)))
        return kind, lambda: wb.search("customers", term)
    definition = {
        "table": "customers",
        "where": {
            "all": [
                {"field": "grade", "op": "eq", "value": rng.choice(("VIP", "GOLD", "SILVER"))},
                {"field": "customer_id", "op": "between", "value": [cid, cid + 5000]},
            ]
        },
    }
    return kind, lambda: wb.targets.preview(definition)


def session_loop(
    wb: Any,
    seed: int,
    deadline: float,
    out: dict[str, list[float]],
    errors: list[str],
    stop: threading.Event | None = None,
) -> None:
    rng = random.Random(seed)
    while time.monotonic() < deadline and not (stop is not None and stop.is_set()):
        kind, call = operation(wb, rng)
        started = time.perf_counter()
        try:
            call()
        except Exception as exc:  # counted, never fatal: this measures the success rate
            errors.append(f"{kind}: {type(exc).__name__}: {str(exc)[:120]}")
            out[f"{kind}_failed"].append((time.perf_counter() - started) * 1000)
            continue
        out[kind].append((time.perf_counter() - started) * 1000)


def run_sessions(
    url: str, work: str, sessions: int, seconds: float, seed: int, trace: bool = False
) -> dict[str, Any]:
    """`sessions` threads sharing one fresh workbench in this process."""
    import warnings

    import hybridwb

    warnings.simplefilter("ignore")
    wb = hybridwb.connect(source=url, cwd=work)
    engines_made: list[int] = []
    made = type(wb.source)._create_engine

    def counting(source: Any) -> Any:  # how many engines the sessions' first uses created
        engines_made.append(1)
        return made(source)

    type(wb.source)._create_engine = counting  # type: ignore[method-assign]
    out: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    if trace:
        tracemalloc.start(12)
    start = time.monotonic()
    deadline = start + seconds
    samples: list[tuple[float, float]] = []
    warm: dict[str, Any] = {}

    warmed = threading.Event()

    def sample_rss() -> None:
        while time.monotonic() < deadline:
            now = time.monotonic() - start
            samples.append((now, rss_mb()))
            done = min(len(out.get(k, ())) for k in ("sql", "search", "preview"))
            if not warm and now >= seconds * WARMUP_FRACTION and done >= WARMUP_OPS:
                warm.update(
                    at_s=round(now, 1), rss=samples[-1][1], cache=wb.source._cache.bytes / 2**20
                )
                if trace:
                    warm["snapshot"] = tracemalloc.take_snapshot()
                warmed.set()
            time.sleep(1.0)

    sampler = threading.Thread(target=sample_rss, daemon=True)
    sampler.start()
    # two phases of `sessions` threads: the first ends with warm-up, then nothing is in
    # flight for one settled sample; the second runs to the deadline, then another
    settled: dict[str, float] = {}
    for phase in ("warmup", "measured"):
        threads = [
            threading.Thread(
                target=session_loop,
                args=(wb, seed * 1000 + i + (sessions if phase == "measured" else 0), deadline),
                kwargs={
                    "out": out,
                    "errors": errors,
                    "stop": warmed if phase == "warmup" else None,
                },
            )
            for i in range(sessions)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        settled[phase] = settled_rss_mb()
        settled[f"{phase}_cache"] = wb.source._cache.bytes / 2**20
    sampler.join()
    samples.append((time.monotonic() - start, rss_mb()))
    grown: list[str] = []
    if trace and "snapshot" in warm:
        end = tracemalloc.take_snapshot()
        for stat in end.compare_to(warm.pop("snapshot"), "traceback")[:10]:
            frames = [f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno}" for f in stat.traceback]
            grown.append(
                f"{stat.size_diff / 1e6:+.2f} MB {stat.count_diff:+d}: " + " < ".join(frames[-4:])
            )
        tracemalloc.stop()
    rss = {
        "start": samples[0][1],
        "warmup_end_s": warm.get("at_s"),
        "after_warmup": warm.get("rss"),
        "end": samples[-1][1],
        "peak": max(r for _, r in samples),
        "late_slope_mb_per_min": _slope(samples[len(samples) // 2 :]) * 60,
        "result_cache_mb": round(wb.source._cache.bytes / 2**20, 1),
        "result_cache_mb_after_warmup": round(warm.get("cache", 0.0), 1),
        "querylog_pending": wb.querylog.pending,
        "settled_after_warmup": round(settled["warmup"], 1),
        "settled_end": round(settled["measured"], 1),
        "settled_growth": round(settled["measured"] - settled["warmup"], 1),
        "settled_cache_growth": round(settled["measured_cache"] - settled["warmup_cache"], 1),
    }
    engines = len(engines_made)
    budget = wb.settings.connection_budget
    wb.close()
    return {
        "latencies": dict(out),
        "errors": errors,
        "rss": rss,
        "budget": budget,
        "engines_created": engines,
        "tracemalloc_growth": grown,
    }


def _slope(points: list[tuple[float, float]]) -> float:
    """MB per second of a least-squares line through (seconds, MB) points."""
    if len(points) < 3:
        return 0.0
    xs, ys = zip(*points, strict=True)
    return statistics.linear_regression(xs, ys).slope


def _child(args: tuple[str, str, int, float, int, bool, int], queue: Any) -> None:
    global CUSTOMERS
    CUSTOMERS = args[-1]  # a spawned child starts from the module defaults
    queue.put(run_sessions(*args[:-1]))


class ConnectionSampler(threading.Thread):
    """The most connections `user` holds on the server, polled every 0.2 s."""

    def __init__(self, user: str) -> None:
        super().__init__(daemon=True)
        self.user = user
        self.peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        conn = root()
        with conn.cursor() as cur:
            while not self.stop.is_set():
                cur.execute(
                    "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = %s",
                    (self.user,),
                )
                self.peak = max(self.peak, cur.fetchone()[0])
                time.sleep(0.2)
        conn.close()


def summarize(parts: list[dict[str, Any]], peak: int, processes: int) -> dict[str, Any]:
    merged: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    for part in parts:
        for key, values in part["latencies"].items():
            merged[key].extend(values)
        errors.extend(part["errors"])
    ok = sum(len(v) for k, v in merged.items() if not k.endswith("_failed"))
    failed = sum(len(v) for k, v in merged.items() if k.endswith("_failed"))
    budget = parts[0]["budget"] * processes
    # a process whose warm-up never ended (too few operations) is measured from its start
    growth = [p["rss"]["end"] - (p["rss"]["after_warmup"] or p["rss"]["start"]) for p in parts]
    # the part of the growth that is the result cache filling up to its fixed budget
    beyond_cache = [
        g - (p["rss"]["result_cache_mb"] - p["rss"]["result_cache_mb_after_warmup"])
        for g, p in zip(growth, parts, strict=True)
    ]
    return {
        "operations": ok + failed,
        "success_rate": ok / max(ok + failed, 1),
        "per_operation_ms": {
            k: summary(v) for k, v in sorted(merged.items()) if not k.endswith("_failed") and v
        },
        "rss_mb": [p["rss"] for p in parts],
        "rss_growth_after_warmup_mb_max": round(max(growth), 1),
        "rss_growth_after_warmup_mb_median": round(statistics.median(growth), 1),
        "rss_growth_beyond_result_cache_mb_max": round(max(beyond_cache), 1),
        # the target's figure: settled (nothing in flight, heap trimmed) end minus settled
        # end of warm-up, per process
        "settled_growth_mb_max": max(p["rss"]["settled_growth"] for p in parts),
        "settled_growth_beyond_result_cache_mb_max": round(
            max(p["rss"]["settled_growth"] - p["rss"]["settled_cache_growth"] for p in parts), 1
        ),
        "warmup_reached_in_every_process": all(p["rss"]["after_warmup"] for p in parts),
        "late_slope_mb_per_min_max": round(
            max(p["rss"]["late_slope_mb_per_min"] for p in parts), 2
        ),
        "engines_created_per_process": [p["engines_created"] for p in parts],
        "server_connections_peak": peak,
        "connection_budget": budget,
        "within_budget": peak <= budget,
        "first_errors": sorted(set(errors))[:10],
        "tracemalloc_growth": [p["tracemalloc_growth"] for p in parts if p["tracemalloc_growth"]],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--customers", type=int, default=200_000, help="smaller for a smoke run")
    parser.add_argument("--tracemalloc", action="store_true", help="where memory grew (slow)")
    parser.add_argument("--only", choices=("threads", "processes"), help="run one mode only")
    parser.add_argument(
        "--cache-mb", type=float, help="result cache budget (HYBRIDWB_RESULT_CACHE_MB); 0 is off"
    )
    args = parser.parse_args()
    if args.cache_mb is not None:  # read by every workbench, spawned children included
        os.environ["HYBRIDWB_RESULT_CACHE_MB"] = str(args.cache_mb)
    global CUSTOMERS
    CUSTOMERS = args.customers
    tag = uuid.uuid4().hex[:8]
    db, user, password = f"hybridwb_load_{tag}", f"hwb_load_{tag}", f"pw@{uuid.uuid4().hex}"
    conn = root()
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{db}` CHARACTER SET utf8mb4")
        cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))
        cur.execute(f"GRANT SELECT ON `{db}`.* TO %s@'%%'", (user,))
    work = tempfile.mkdtemp(prefix="hybridwb_load_")
    try:
        from hybridwb.source.sample import load

        started = time.perf_counter()
        load(admin_url(db), args.customers)
        loaded_s = time.perf_counter() - started
        (Path(work) / "mappings").mkdir()
        shutil.copy(REPO / "mappings" / "table-mappings.json", Path(work) / "mappings")
        url = URL.create(
            "mysql+pymysql", username=user, password=password, host=HOST, port=3306, database=db
        ).render_as_string(hide_password=False)
        import hybridwb

        with hybridwb.connect(source=url, cwd=work) as setup:  # store schema and the mapping
            setup.store.init()
            setup.mappings.save("customers", setup.mappings.suggest("customers"))
        results: dict[str, Any] = {"customers": args.customers, "load_seconds": round(loaded_s, 1)}

        results["load_average_before"] = _loadavg()
        if args.only != "processes":
            sampler = ConnectionSampler(user)
            sampler.start()
            part = run_sessions(url, work, args.sessions, args.seconds, 1, args.tracemalloc)
            sampler.stop.set()
            sampler.join()
            results["threads"] = summarize([part], sampler.peak, 1)
            results["threads"]["load_average_after"] = _loadavg()

        if args.only != "threads":
            sampler = ConnectionSampler(user)
            sampler.start()
            ctx = mp.get_context("spawn")
            queue = ctx.Queue()
            # 100 sessions over 8 processes: 13, 13, 13, 13, 12, 12, 12, 12
            shares = [
                args.sessions // args.processes + (i < args.sessions % args.processes)
                for i in range(args.processes)
            ]
            children = [
                ctx.Process(
                    target=_child,
                    args=(
                        (url, work, n, args.seconds, 10 + i, args.tracemalloc, args.customers),
                        queue,
                    ),
                )
                for i, n in enumerate(shares)
            ]
            for child in children:
                child.start()
            parts = [queue.get(timeout=args.seconds + 300) for _ in children]
            for child in children:
                child.join()
            sampler.stop.set()
            sampler.join()
            results["processes"] = {
                "processes": args.processes,
                "sessions_per_process": shares,
                **summarize(parts, sampler.peak, args.processes),
                "load_average_after": _loadavg(),
            }
        results["seconds"] = args.seconds
        results["result_cache_mb"] = args.cache_mb
        name = "load"
        if args.only or args.seconds != 60:  # a partial or longer run keeps the 60 s figures
            name = f"load_{args.only or 'both'}_{int(args.seconds)}s"
        if args.cache_mb is not None:
            name += f"_cache{args.cache_mb:g}mb"
        write(name + ("_tracemalloc" if args.tracemalloc else ""), results)
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
            cur.execute("DROP USER IF EXISTS %s@'%%'", (user,))
        conn.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
