"""Campaign runs end to end on MariaDB + PostgreSQL, against a minimal pipeline, interleaved.

hybridwb: the in-kernel half of a run (`wb.workflows.process`, what the campaign notebook
calls) at the CLI's default settings (the notebook's `batch_size`), with the frozen target
set and the send policies on (once per recipient, a frequency cap across workflows), over
100,000 and 1,000,000 targets, each repetition in a fresh process.

baseline: the least a pipeline must do to write the same messages: the same SELECT of the
columns the template uses, by key range, on the same drivers (PyMySQL, psycopg, both
connected before timing), the message filled by `str.join`, COPY into `send_records`. No
freeze, no policies, no phone normalisation, no exactly-once bookkeeping.

ref (`--ref COMMIT`): the same run with `hybridwb/` as it is at that commit (unpacked from
`git archive`, no checkout touched), for an A/B of a change.

They alternate (A B A B ..., the order turning each repetition), so all see the same
machine load; median and min-max of messages/s and of the run's client CPU per message
(microseconds of process CPU time), the servers' CPU per message (MariaDB and PostgreSQL,
every process of each from /proc, during the run: run it on a quiet machine), the
CPU-bound ceiling (cores x 1e6 / (client + servers) µs per message: what the machine could
give that much work at best, were it spread perfectly over the cores), their ratios, memory
growth during the run (peak RSS at the end minus RSS when processing starts), peak RSS,
the freeze's share of a hybridwb run (`freeze_seconds`, `freeze_cpu_s`: its wall time and
process CPU; `freeze_<server>_cpu_s`: the servers' CPU meanwhile), and the load average
before and after each repetition. `--batches 1000,2000,5000` also
compares batch sizes at 100k (how the default was chosen).

Source data: a sample shop of 1,000,000 customers in a database created for this run and
dropped after (or `--source-db NAME` to reuse one that is kept), read through a MySQL
account of the benchmark's own (SELECT on that database only, dropped after: the test
suite's accounts are never touched); the store databases (one per tree, each migrated by
its own code, since a tree cannot open a store at another schema) are always created for
this run and dropped. `--driver mysqldb` reads the source with mysqlclient.
`HYBRIDWB_BENCH_PROFILE=FILE` writes cProfile stats of each hybridwb run to FILE (the last
repetition's stays; profiled figures are not measurements); `HYBRIDWB_BENCH_PYSPY=FILE` runs
each hybridwb child under `py-spy record --format raw` (every thread's stacks, sampled; with
`HYBRIDWB_BENCH_PYSPY_GIL=1` only the thread holding the interpreter lock; py-spy on PATH).
Before the repetitions, each kind runs `--warmup` times (default 1) at the first size,
unmeasured: a store just created is vacuumed and analyzed by autovacuum during its first
runs, which showed as PostgreSQL CPU per message twice that of the runs after.
Run: .venv/bin/python benchmarks/bench_workflow.py [--reps 7] [--sizes 100000,1000000]
     [--ref main] [--no-baseline] [--warmup 1] [--out results.json]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import os
import pstats
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # this tree's hybridwb

import psycopg
import pymysql
from _common import HOST, SERVERS, BenchAccount, ensure_sample, server_cpu_seconds, write

PG_PORT = int(os.environ.get("HYBRIDWB_BENCH_PG_PORT", "5432"))
REPO = Path(__file__).resolve().parents[1]
CONTENT = "#{고객명}님, {{ 등급 }} 회원 전용 혜택이 도착했습니다. 문의: 1588-0000"
SAMPLE = 1_000_000
POLICY = {"once_per_recipient": True, "frequency_cap": {"messages": 3, "days": 7}}


def cli_batch_size() -> int:
    """The batch size `hybridwb run` uses: the campaign notebook's parameter default."""
    nb = json.loads(
        (REPO / "hybridwb/workflows/notebooks/campaign.ipynb").read_text(encoding="utf-8")
    )
    for cell in nb["cells"]:
        for line in cell["source"]:
            if line.startswith("batch_size ="):
                return int(line.split("=")[1].split("#")[0])
    raise SystemExit("no batch_size in the campaign notebook")


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def per_message(servers: dict[str, float], messages: int) -> dict[str, float]:
    """The servers' CPU per message during a run (µs), as `<server>_cpu_us_per_msg`."""
    return {f"{k}_cpu_us_per_msg": v / max(messages, 1) * 1e6 for k, v in servers.items()}


def ceiling(run: dict[str, float]) -> float:
    """The most messages per second this machine's cores could give a run that costs what
    this one did in CPU (client + MariaDB + PostgreSQL per message), were every part of it
    spread perfectly over the cores: a bound, not a forecast."""
    total = run["cpu_us_per_msg"] + sum(run.get(f"{k}_cpu_us_per_msg", 0.0) for k in SERVERS)
    return (os.cpu_count() or 1) * 1e6 / total


def child_init(tree: str, store_db: str) -> dict:
    """Migrate a store with the code of `tree` (each tree has a store of its own: a
    revision with a migration cannot open a store at another schema)."""
    sys.path.insert(0, tree)
    os.environ["HYBRIDWB_STORE_URL"] = (
        f"postgresql+psycopg://postgres@127.0.0.1:{PG_PORT}/{store_db}"
    )
    import hybridwb

    wb = hybridwb.connect()
    wb.store.init()
    wb.close()
    return {}


def child_hybridwb(work: str, upto: int, batch: int, tree: str, store_db: str) -> dict:
    """One run in this process, with `hybridwb` imported from `tree` (HEAD or --ref)."""
    sys.path.insert(0, tree)
    os.chdir(work)
    os.environ["HYBRIDWB_STORE_URL"] = (
        f"postgresql+psycopg://postgres@127.0.0.1:{PG_PORT}/{store_db}"
    )
    import hybridwb

    assert Path(hybridwb.__file__).resolve().is_relative_to(Path(tree).resolve())
    from hybridwb.platform.campaigns import Campaigns, this_owner

    wb = hybridwb.connect()
    wf = wb.workflows.create(
        f"bench-{upto}-{uuid.uuid4().hex[:6]}",
        target_config={
            "table": "customers",
            "where": {"field": "customer_id", "op": "lte", "value": upto},
            "exclude_opt_out": False,
        },
        message_config={
            "content": CONTENT,
            "mode": "fallback",
            "message_type": "LMS",
            "policy": POLICY,
        },
    )
    run = wb.store.runs.create(wf["id"])
    owner = this_owner()
    campaigns = Campaigns(wb.store.backend)
    campaigns.acquire(wf["id"], run["id"], owner, stale_after=600)
    campaigns.start_state(run["id"], owner, "benchmark")
    start_rss = rss_mb()
    profile = os.environ.get("HYBRIDWB_BENCH_PROFILE")  # a file: cProfile stats of the run
    profiler = None
    threads: list = []  # (thread name, its profiler): the run's worker threads too
    thread_cpu: dict[str, float] = {}  # CPU seconds of the run's threads, by name
    plain_run = threading.Thread.run

    def measured_run(self: threading.Thread) -> None:
        own = None
        if profile:
            own = cProfile.Profile()
            threads.append((self.name, own))
            own.enable()
        try:
            plain_run(self)
        finally:
            if own is not None:
                own.disable()
            name = self.name.rstrip("0123456789-_")
            thread_cpu[name] = thread_cpu.get(name, 0.0) + time.thread_time()

    threading.Thread.run = measured_run  # type: ignore[method-assign]
    # the freeze's share of the run: its wall time, process CPU and servers' CPU
    from hybridwb.workflows.process import Processor

    plain_freeze, phases = Processor.freeze, {}

    def timed_freeze(self: Any, *a: Any, **k: Any) -> Any:
        at, cpu0, srv = time.perf_counter(), time.process_time(), server_cpu_seconds()
        try:
            return plain_freeze(self, *a, **k)
        finally:
            phases["freeze_seconds"] = time.perf_counter() - at
            phases["freeze_cpu_s"] = time.process_time() - cpu0
            for k2, v in server_cpu_seconds().items():
                phases[f"freeze_{k2}_cpu_s"] = v - srv[k2]

    Processor.freeze = timed_freeze  # type: ignore[method-assign]
    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
    servers = server_cpu_seconds()
    started, cpu = time.perf_counter(), time.process_time()
    main_cpu = time.thread_time()
    stats = wb.workflows.process(wf["id"], run["id"], owner=owner, batch_size=batch, progress=False)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    servers = {k: v - servers[k] for k, v in server_cpu_seconds().items()}
    main_cpu = time.thread_time() - main_cpu
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile)
        # each worker thread's stats (FILE.threads: all of them merged, FILE.<name>: each)
        merged = None
        for name, own in threads:
            own.create_stats()
            own.dump_stats(f"{profile}.{name.replace('/', '_')}")
            merged = pstats.Stats(own) if merged is None else merged.add(own)
        if merged is not None:
            merged.dump_stats(f"{profile}.threads")
    campaigns.release(wf["id"], run["id"])
    wb.close()
    return {
        "run_id": str(run["id"]),
        "seconds": seconds,
        "messages": stats["records"],
        "skipped": stats["skipped"],
        "cpu_us_per_msg": cpu / max(stats["records"], 1) * 1e6,
        # by thread: the run's own (render, decide), the store's steps, the reads ahead
        "thread_cpu_us_per_msg": {
            name: round(v / max(stats["records"], 1) * 1e6, 2)
            for name, v in {"main": main_cpu, **thread_cpu}.items()
        },
        **per_message(servers, stats["records"]),
        "growth_mb": peak_mb() - start_rss,
        "peak_mb": peak_mb(),
        **{k: round(v, 3) for k, v in phases.items()},
    }


def child_baseline(store_db: str, upto: int, batch: int, run_id: str) -> dict:
    """The minimal pipeline: key-range SELECT -> str.join -> COPY into send_records."""
    url = os.environ["HYBRIDWB_SOURCE_URL"]
    from sqlalchemy.engine import make_url

    src_url = make_url(url)
    driver: Any = pymysql
    if src_url.drivername.endswith("mysqldb"):  # the same driver as the run it is set against
        import MySQLdb as driver
    src = driver.connect(
        host=src_url.host, user=src_url.username, password=src_url.password,
        database=src_url.database, charset="utf8mb4",
    )  # fmt: skip
    dst = psycopg.connect(f"host=127.0.0.1 port={PG_PORT} user=postgres dbname={store_db}")
    wf_id = dst.execute("SELECT workflow_id FROM workflow_runs WHERE id = %s", (run_id,))
    workflow = str(wf_id.fetchone()[0])  # type: ignore[index]
    start_rss = rss_mb()
    servers = server_cpu_seconds()
    started, cpu = time.perf_counter(), time.process_time()
    messages, after = 0, 0
    cols = "id, run_id, workflow_id, target_key, recipient, channel, content, status, created_at"
    with src.cursor() as cur:
        while after < upto:
            cur.execute(
                "SELECT customer_id, name, phone, grade FROM customers "
                "WHERE customer_id > %s AND customer_id <= %s ORDER BY customer_id",
                (after, min(after + batch, upto)),
            )
            rows = cur.fetchall()
            after += batch
            stamp = time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime())
            with dst.cursor().copy(f"COPY send_records ({cols}) FROM STDIN") as copy:
                for key, name, phone, grade in rows:
                    text = "".join(
                        (name, "님, ", grade, " 회원 전용 혜택이 도착했습니다. 문의: 1588-0000")
                    )
                    copy.write_row(
                        (uuid.uuid4(), run_id, workflow, str(key), phone, "sms", text,
                         "queued", stamp)
                    )  # fmt: skip
                    messages += 1
            dst.commit()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    servers = {k: v - servers[k] for k, v in server_cpu_seconds().items()}
    return {
        "seconds": seconds,
        "messages": messages,
        "cpu_us_per_msg": cpu / max(messages, 1) * 1e6,
        **per_message(servers, messages),
        "growth_mb": peak_mb() - start_rss,
        "peak_mb": peak_mb(),
    }


def spawn(args: list[str]) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the tree is an argument
    command = [sys.executable, __file__, "--child", *args]
    spy = os.environ.get("HYBRIDWB_BENCH_PYSPY")  # a file: py-spy's samples of every thread
    if spy and args[0] == "hybridwb":
        gil = ["--gil"] if os.environ.get("HYBRIDWB_BENCH_PYSPY_GIL") else []
        command = [
            "py-spy",
            "record",
            *gil,
            "--format",
            "raw",
            "-r",
            "200",
            "-o",
            spy,
            "--",
            *command,
        ]
    out = subprocess.run(command, capture_output=True, text=True, env=env)
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(out.stdout + out.stderr)
    return json.loads(line[7:])


def load() -> float:
    return os.getloadavg()[0]


def export(commit: str, into: Path) -> Path:
    """`hybridwb/` as it is at `commit`, unpacked under `into` (no checkout is touched)."""
    archive = into / "src.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "archive", commit, "hybridwb"], cwd=REPO, stdout=out, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / commit[:12], filter="data")
    return into / commit[:12]


def git_commit(ref: str) -> str:
    return subprocess.run(
        ["git", "rev-parse", ref], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()


def spread(values: list[float]) -> dict:
    return {
        "median": round(statistics.median(values), 1),
        "min": round(min(values), 1),
        "max": round(max(values), 1),
        "n": len(values),
    }


def _stamp(path: Path, url: object) -> None:
    """Mappings belong to one source: stamp the sample mappings as this database's."""
    from hybridwb.mapping.model import SOURCE_KEY
    from hybridwb.mapping.service import source_identity
    from hybridwb.source import Source

    data = json.loads(path.read_text(encoding="utf-8"))
    data = {SOURCE_KEY: source_identity(Source(url)), **data}
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def pg_admin(sql: str) -> None:
    with psycopg.connect(
        f"host=127.0.0.1 port={PG_PORT} user=postgres dbname=postgres", autocommit=True
    ) as conn:
        conn.execute(sql)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument(
        "--big-reps", type=int, default=0, help="repetitions at 1M (default --reps)"
    )
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--batches", default="", help="compare these batch sizes at 100k")
    parser.add_argument("--source-db", default="", help="reuse (and keep) this sample DB")
    parser.add_argument("--ref", default="", help="also run hybridwb as at this commit (A/B)")
    parser.add_argument("--no-baseline", action="store_true", help="leave the baseline out")
    parser.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="unmeasured runs per kind at the first size before the repetitions",
    )
    parser.add_argument("--out", default="", help="write the JSON here (default results/)")
    parser.add_argument(
        "--driver", default="pymysql", choices=["pymysql", "mysqldb"], help="source driver"
    )
    parser.add_argument("--child", nargs="+")
    args = parser.parse_args()
    if args.out:  # the run changes directory: a relative --out is read from where it started
        args.out = os.path.abspath(args.out)
    if args.child:
        kind, *rest = args.child
        if kind == "init":
            result = child_init(rest[0], rest[1])
        elif kind == "hybridwb":
            result = child_hybridwb(rest[0], int(rest[1]), int(rest[2]), rest[3], rest[4])
        else:
            result = child_baseline(rest[0], int(rest[1]), int(rest[2]), rest[3])
        print("RESULT " + json.dumps(result))
        return
    sizes = [int(s) for s in args.sizes.split(",") if s]
    source_db = args.source_db or f"hybridwb_bench_wf_{uuid.uuid4().hex[:8]}"
    store_db = f"hybridwb_bench_wfstore_{uuid.uuid4().hex[:8]}"
    # hybridwb and --ref each on a store of their own, migrated by their own code
    stores = {"hybridwb": store_db, "ref": f"{store_db}_ref"}
    ensure_sample(source_db, SAMPLE)  # targets are customer_id <= size
    for name in stores.values():
        pg_admin(f'CREATE DATABASE "{name}"')
    work = Path(tempfile.mkdtemp())
    account = BenchAccount(source_db)
    try:
        account.__enter__()
        trees = {"hybridwb": str(REPO)}
        commits = {"hybridwb": git_commit("HEAD")}
        if args.ref:
            commits["ref"] = git_commit(args.ref)
            trees["ref"] = str(export(commits["ref"], work))
        kinds = [*trees, *([] if args.no_baseline else ["baseline"])]
        (work / "mappings").mkdir()
        shutil.copy(REPO / "mappings/table-mappings.json", work / "mappings/table-mappings.json")
        _stamp(work / "mappings/table-mappings.json", account.url(args.driver))
        os.environ["HYBRIDWB_SOURCE_URL"] = account.url(args.driver).render_as_string(
            hide_password=False
        )
        os.environ["HYBRIDWB_STORE_URL"] = (
            f"postgresql+psycopg://postgres@127.0.0.1:{PG_PORT}/{store_db}"
        )
        os.chdir(work)
        for kind, tree in trees.items():
            spawn(["init", tree, stores[kind]])
        import hybridwb

        wb = hybridwb.connect()
        baseline_wf = wb.workflows.create("baseline", message_config={"content": "x"})
        default_batch = cli_batch_size()
        results: dict = {
            "cli_batch_size": default_batch,
            "commits": commits,
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
            "source_driver": args.driver,
            "sizes": {},
        }

        last: dict[str, str | None] = {}

        def reset(kind: str) -> None:
            """Every repetition starts from the same kind of store: the send history is
            the last run's records of the same tree (one per recipient: the policies read
            real rows and still let everyone through), nothing else; the baseline writes
            into hybridwb's store."""
            with psycopg.connect(
                f"host=127.0.0.1 port={PG_PORT} user=postgres dbname={stores.get(kind, store_db)}",
                autocommit=True,
            ) as conn:
                conn.execute(
                    "DELETE FROM send_records WHERE run_id IS DISTINCT FROM %s",
                    (last.get(kind if kind in trees else "hybridwb"),),
                )
                conn.execute("TRUNCATE run_targets, run_skips")
                conn.execute("VACUUM ANALYZE send_records")

        def once(kind: str, upto: int, batch: int) -> dict:
            reset(kind)
            before = os.getloadavg()
            if kind in trees:
                out = spawn(
                    ["hybridwb", str(work), str(upto), str(batch), trees[kind], stores[kind]]
                )
                last[kind] = out["run_id"]
            else:
                run = wb.store.runs.create(baseline_wf["id"])
                out = spawn(["baseline", store_db, str(upto), str(batch), str(run["id"])])
            out["rate"] = out["messages"] / out["seconds"]
            out["cpu_bound_msgs_per_s"] = ceiling(out)
            out["load"] = [round(before[0], 2), round(load(), 2)]
            out["load_1_5_15_after"] = [round(x, 2) for x in os.getloadavg()]
            print(kind, upto, batch, json.dumps(out), flush=True)
            return out

        if args.batches:
            sweep: dict[str, list[float]] = {}
            for _ in range(args.reps):
                for b in (int(x) for x in args.batches.split(",")):
                    sweep.setdefault(str(b), []).append(once("hybridwb", 100_000, b)["rate"])
            results["batch_sweep_100k"] = {b: spread(v) for b, v in sweep.items()}
        # a store just created is vacuumed and analyzed by autovacuum during its first
        # runs (PostgreSQL then spends about twice its CPU per message): warm each up
        for _ in range(args.warmup if sizes else 0):
            for kind in kinds:
                once(kind, sizes[0], default_batch)
        results["warmup_runs_per_kind"] = args.warmup if sizes else 0
        for upto in sizes:
            runs: dict[str, list[dict]] = {k: [] for k in kinds}
            reps = args.big_reps if args.big_reps and upto >= 1_000_000 else args.reps
            for rep in range(reps):
                for kind in kinds if rep % 2 == 0 else kinds[::-1]:
                    runs[kind].append(once(kind, upto, default_batch))
            entry: dict = {"messages_per_run": runs["hybridwb"][0]["messages"]}
            for kind, done in runs.items():
                entry[f"{kind}_msgs_per_s"] = spread([r["rate"] for r in done])
                entry[f"{kind}_cpu_us_per_msg"] = spread([r["cpu_us_per_msg"] for r in done])
                for server in SERVERS:
                    entry[f"{kind}_{server}_cpu_us_per_msg"] = spread(
                        [r[f"{server}_cpu_us_per_msg"] for r in done]
                    )
                entry[f"{kind}_cpu_bound_msgs_per_s"] = spread(
                    [r["cpu_bound_msgs_per_s"] for r in done]
                )
                entry[f"{kind}_growth_mb"] = spread([r["growth_mb"] for r in done])
                entry[f"{kind}_peak_mb"] = spread([r["peak_mb"] for r in done])
            ours = statistics.median(r["rate"] for r in runs["hybridwb"])
            for other in runs:
                if other != "hybridwb":
                    theirs = statistics.median(r["rate"] for r in runs[other])
                    entry[f"{other}_over_hybridwb"] = round(theirs / ours, 2)
            entry["load_average"] = spread(
                [x for done in runs.values() for r in done for x in r["load"]]
            )
            entry["runs"] = runs
            results["sizes"][str(upto)] = entry
        got = results["sizes"]
        targets: dict[str, bool] = {}
        for k, v in got.items():
            targets[f">= 40,000 msgs/s at {k} (#17)"] = v["hybridwb_msgs_per_s"]["median"] >= 40_000
            targets[f"growth < 50 MB at {k} (#17)"] = v["hybridwb_growth_mb"]["max"] < 50
        if "1000000" in got:
            targets[">= 10,000 msgs/s at 1000000 (#12)"] = (
                got["1000000"]["hybridwb_msgs_per_s"]["median"] >= 10_000
            )
        if "100000" in got and "1000000" in got:
            small, big = (got[k]["hybridwb_peak_mb"]["median"] for k in ("100000", "1000000"))
            results["peak_rss_1m_minus_100k_mb"] = round(big - small, 1)
            targets["peak RSS flat 100k -> 1M (within 10 MB, #12)"] = big - small < 10
        results["targets"] = targets
        results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        wb.close()
        name = "workflow" if sizes else "workflow_batch_sweep"
        write(name, results, Path(args.out) if args.out else None)
    finally:
        for name in stores.values():
            with contextlib.suppress(Exception):
                pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        with contextlib.suppress(Exception):
            account.__exit__(None, None, None)
        if not args.source_db:
            conn = pymysql.connect(host=HOST, user="root", autocommit=True)
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{source_db}`")
            conn.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
