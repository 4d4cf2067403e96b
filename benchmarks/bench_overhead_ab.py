"""The fixed cost of a 1-row wb.sql, this checkout against another commit, interleaved.

Each repetition runs one child process per version (the order alternates: A B, B A, ...);
a child imports that version's `hybridwb`, warms its pool, then times CALLS reads of one
row by key, each followed by the same statement on a raw PyMySQL connection opened before
timing (-> DataFrame, as wb.sql returns); then SEARCHES `wb.search` calls on the sample
shop's customers (a new id or four phone digits each time). Reported per version: p50 wall time of wb.sql and
of the raw driver, their ratio, and the client CPU per call (process time, which machine
load disturbs least); medians with min-max over the repetitions, plus `uptime` before and
after. The database and the account are the benchmark's own and are dropped at the end.

    .venv/bin/python benchmarks/bench_overhead_ab.py [--base COMMIT] [--reps 9]
(writes benchmarks/results/overhead_ab.json)
"""

from __future__ import annotations

import json
import os
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

from _common import HOST, BenchAccount, ensure_sample, load_average, spread, write

REPO = Path(__file__).resolve().parents[1]
ONE_ROW = "SELECT customer_id, name, grade FROM customers WHERE customer_id = :id"
ONE_ROW_RAW = "SELECT customer_id, name, grade FROM customers WHERE customer_id = %s"
CALLS = int(os.environ.get("HWB_BENCH_CALLS", "400"))
WARM = 100
SEARCHES = int(os.environ.get("HWB_BENCH_SEARCHES", "200"))


def child(source_dir: str) -> None:
    """Runs in the child: time wb.sql and the raw driver, print one JSON line."""
    sys.path.insert(0, source_dir)
    warnings.simplefilter("ignore")
    import pandas as pd
    import pymysql
    from sqlalchemy.engine import make_url

    import hybridwb
    from hybridwb.source import Source

    assert Path(hybridwb.__file__).is_relative_to(source_dir), hybridwb.__file__
    url = make_url(os.environ["HWB_BENCH_URL"])
    src = Source(url, pool_size=1, max_overflow=0)
    raw = pymysql.connect(
        host=url.host,
        user=url.username,
        password=url.password,
        database=url.database,
        charset="utf8mb4",
        autocommit=True,
    )

    def run_raw(i: int) -> None:
        with raw.cursor() as cur:
            cur.execute(ONE_ROW_RAW, (i,))
            rows = cur.fetchall()
            cols = [d[0] for d in cur.description]
        pd.DataFrame.from_records(rows, columns=cols)

    for i in range(WARM):
        src.sql(ONE_ROW, {"id": i + 1})
        run_raw(i + 1)
    wb_t, raw_t, wb_cpu, raw_cpu = [], [], [], []
    for i in range(CALLS):
        key = i % 1000 + 1
        started, cpu = time.perf_counter(), time.process_time()
        src.sql(ONE_ROW, {"id": key})
        wb_t.append(time.perf_counter() - started)
        wb_cpu.append(time.process_time() - cpu)
        started, cpu = time.perf_counter(), time.process_time()
        run_raw(key)
        raw_t.append(time.perf_counter() - started)
        raw_cpu.append(time.process_time() - cpu)
    src.close()
    raw.close()
    search_t, search_cpu = searches(url)
    print(
        json.dumps(
            {
                "wb_p50_ms": statistics.median(wb_t) * 1000,
                "raw_p50_ms": statistics.median(raw_t) * 1000,
                "wb_cpu_ms": statistics.fmean(wb_cpu) * 1000,
                "raw_cpu_ms": statistics.fmean(raw_cpu) * 1000,
                "search_p50_ms": statistics.median(search_t) * 1000,
                "search_cpu_ms": statistics.fmean(search_cpu) * 1000,
            }
        )
    )


def searches(url: Any) -> tuple[list[float], list[float]]:
    """`wb.search` on the sample shop's customers (the repository's mapping, stamped as
    this database's)."""
    import hybridwb
    from hybridwb.mapping.model import SOURCE_KEY
    from hybridwb.mapping.service import source_identity
    from hybridwb.source import Source

    here = Path(tempfile.mkdtemp())
    data = json.loads((REPO / "mappings" / "table-mappings.json").read_text(encoding="utf-8"))
    probe = Source(url)
    try:
        data = {SOURCE_KEY: source_identity(probe), **data}
    finally:
        probe.close()
    (here / "mappings").mkdir()
    (here / "mappings" / "table-mappings.json").write_text(json.dumps(data), encoding="utf-8")
    os.chdir(here)
    wb = hybridwb.connect(source=url.render_as_string(hide_password=False))
    try:
        for term in ["김", "이", "17", "1234"] * 5:
            wb.search("customers", term, limit=20)
        wall, cpu = [], []
        for i in range(SEARCHES):
            # a new term each time (an id, then four digits of a phone): no statement text
            # repeats, so no remembered verdict flatters the figure
            term = str(i + 1) if i % 2 == 0 else f"{2000 + i:04d}"
            started, spent = time.perf_counter(), time.process_time()
            wb.search("customers", term, limit=20)
            wall.append(time.perf_counter() - started)
            cpu.append(time.process_time() - spent)
    finally:
        wb.close()
    return wall, cpu


def export(commit: str, into: Path) -> Path:
    """`hybridwb/` as it is at `commit`, unpacked under `into` (no checkout is touched)."""
    archive = into / "src.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "archive", commit, "hybridwb"], cwd=REPO, stdout=out, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / commit[:12], filter="data")
    return into / commit[:12]


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def main() -> None:
    args = sys.argv[1:]
    base = args[args.index("--base") + 1] if "--base" in args else "main"
    reps = int(args[args.index("--reps") + 1]) if "--reps" in args else 9
    base_commit = subprocess.run(
        ["git", "rev-parse", base], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    head_commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    db = f"hybridwb_bench_ab_{uuid.uuid4().hex[:8]}"
    import pymysql

    results: dict[str, list[dict[str, float]]] = {"base": [], "head": []}
    before = uptime()
    with tempfile.TemporaryDirectory() as tmp:
        versions = {"base": str(export(base_commit, Path(tmp))), "head": str(REPO)}
        try:
            ensure_sample(db, 2_000)
            with BenchAccount(db) as account:
                env = {
                    **os.environ,
                    "HWB_BENCH_URL": account.url().render_as_string(hide_password=False),
                    "PYTHONPATH": "",
                }
                for rep in range(reps):
                    order = ["base", "head"] if rep % 2 == 0 else ["head", "base"]
                    for name in order:
                        out = subprocess.run(
                            [sys.executable, __file__, "--child", versions[name]],
                            env=env,
                            capture_output=True,
                            text=True,
                            check=True,
                        )
                        results[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
        finally:
            admin = pymysql.connect(host=HOST, user="root", autocommit=True)
            with admin.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
            admin.close()
    after = uptime()

    def summary(runs: list[dict[str, float]]) -> dict[str, Any]:
        return {
            "wb.sql p50 ms": spread([r["wb_p50_ms"] for r in runs], 3),
            "raw pymysql -> DataFrame p50 ms": spread([r["raw_p50_ms"] for r in runs], 3),
            "ratio wb/raw (p50)": spread([r["wb_p50_ms"] / r["raw_p50_ms"] for r in runs], 3),
            "added p50 ms": spread([r["wb_p50_ms"] - r["raw_p50_ms"] for r in runs], 3),
            "wb.sql client CPU per call ms": spread([r["wb_cpu_ms"] for r in runs], 3),
            "raw client CPU per call ms": spread([r["raw_cpu_ms"] for r in runs], 3),
            "wb.search p50 ms": spread([r["search_p50_ms"] for r in runs], 3),
            "wb.search client CPU per search ms": spread([r["search_cpu_ms"] for r in runs], 3),
        }

    write(
        "overhead_ab",
        {
            "statement": ONE_ROW,
            "method": (
                f"{reps} repetitions, one child process per version per repetition, order "
                f"alternating; {CALLS} calls per child after {WARM} warm-up calls, each wb.sql "
                "followed by the raw driver on the same key; medians with min-max"
            ),
            "base": {"commit": base_commit, **summary(results["base"])},
            "head": {"commit": head_commit, **summary(results["head"])},
            "uptime_before": before,
            "uptime_after": after,
            "load_average_after": load_average(),
            "target": "wb.sql p50 <= 1.5x the raw driver -> DataFrame (issue 17)",
        },
    )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(sys.argv[2])
    else:
        main()
