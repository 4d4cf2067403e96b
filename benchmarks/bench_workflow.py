"""Issue 7: end to end on MariaDB + PostgreSQL — source -> render -> send records.

Measures messages/s for 100,000 targets (in-process, no kernel), the kernel start-up of a
papermill run on its own, and peak memory (ru_maxrss of a fresh process) at 100,000 and
1,000,000 targets. Targets: >= 10,000 messages/s; peak at 1M within 1.5x of 100k.
Run: .venv/bin/python benchmarks/bench_workflow.py [--skip-million]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import contextlib

import psycopg
from _common import ensure_sample, ro_url, write

DB = "hybridwb_bench"
STORE_DB = "hybridwb_bench_workflow"
REPO = Path(__file__).resolve().parents[1]


def child(work: str, upto: int) -> None:
    """In a fresh process: run one workflow over customers 1..upto; print stats + peak RSS."""
    os.chdir(work)
    import hybridwb

    wb = hybridwb.connect()
    name = f"bench-{upto}"
    with contextlib.suppress(hybridwb.NotFound):
        wb.workflows.delete(name)
    wf = wb.workflows.create(
        name,
        target_config={
            "table": "customers",
            "where": {"field": "customer_id", "op": "lte", "value": upto},
            "exclude_opt_out": False,
        },
        message_config={
            "content": "#{고객명}님, {{ 등급 }} 회원 전용 혜택이 도착했습니다. 문의: 1588-0000",
            "mode": "fallback",
            "message_type": "LMS",
        },
    )
    run = wb.store.runs.create(wf["id"])
    stats = wb.workflows.process(wf["id"], run["id"], batch_size=5000, progress=False)
    stats["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    stats["records"] = wb.store.runs.record_count(run["id"])
    print("RESULT " + json.dumps(stats))
    wb.close()


def measure(work: Path, upto: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(work), str(upto)],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(out.stdout + out.stderr)
    return json.loads(line[7:])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-million", action="store_true")
    parser.add_argument("--child", nargs=2)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]))
        return
    ensure_sample(DB, 1_000_000)
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{STORE_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{STORE_DB}"')
    work = Path(tempfile.mkdtemp())
    (work / "mappings").mkdir()
    shutil.copy(
        REPO / "mappings" / "table-mappings.json", work / "mappings" / "table-mappings.json"
    )
    os.environ["HYBRIDWB_SOURCE_URL"] = ro_url(DB).render_as_string(hide_password=False)
    os.environ["HYBRIDWB_STORE_URL"] = f"postgresql+psycopg://postgres@127.0.0.1/{STORE_DB}"
    os.chdir(work)
    import hybridwb

    wb = hybridwb.connect()
    wb.store.init()
    small = measure(work, 100_000)
    big = None if args.skip_million else measure(work, 1_000_000)

    # kernel start-up: a papermill run of 1 target, minus its in-kernel processing time
    wf = wb.workflows.create(
        "bench-kernel",
        target_config={
            "table": "customers",
            "where": {"field": "customer_id", "op": "lte", "value": 1},
            "exclude_opt_out": False,
        },
        message_config={"content": "#{고객명}님", "mode": "fallback"},
    )
    started = time.perf_counter()
    final = wb.workflows.run(wf["id"], progress=False)
    total = time.perf_counter() - started
    kernel = total - final["stats"]["duration_s"]
    rate = small["messages_per_s"]
    data = {
        "targets_100k": small,
        "targets_1m": big,
        "papermill_run_of_one_target_s": round(total, 2),
        "kernel_startup_and_overhead_s": round(kernel, 2),
        "targets": {
            ">= 10,000 messages/s": rate >= 10_000,
            "peak memory 1M <= 1.5x 100k": None
            if big is None
            else big["peak_rss_mb"] <= 1.5 * small["peak_rss_mb"],
        },
    }
    if big:
        data["peak_ratio_1m_vs_100k"] = round(big["peak_rss_mb"] / small["peak_rss_mb"], 2)
    write("workflow", data)
    wb.close()


if __name__ == "__main__":
    main()
