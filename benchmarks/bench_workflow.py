"""Campaign runs end to end on MariaDB + PostgreSQL: freeze -> policies -> render -> records.

Measures messages/s over 100,000 and 1,000,000 targets in a fresh process each (the
in-kernel half of a run, no kernel start), with the frozen target set and the send policies
on (once per recipient, a frequency cap across workflows), the kernel start-up of a papermill
run on its own, and peak memory (ru_maxrss). Targets: >= 10,000 messages/s at 1M; peak
at 1M within 1.5x of 100k (flat: memory does not grow with the target count).
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
# the store's PostgreSQL: the shared one, or a private instance (HYBRIDWB_BENCH_PG_PORT) so
# other people's server restarts cannot break a 10-minute measurement
PG_PORT = int(os.environ.get("HYBRIDWB_BENCH_PG_PORT", "5432"))
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
            "policy": {
                "once_per_recipient": True,
                "frequency_cap": {"messages": 3, "days": 7},
            },
        },
    )
    from hybridwb.platform.campaigns import Campaigns, this_owner

    run = wb.store.runs.create(wf["id"])
    Campaigns(wb.store.backend).start_state(run["id"], this_owner(), "benchmark")
    started = time.perf_counter()
    stats = wb.workflows.process(wf["id"], run["id"], batch_size=5000, progress=False)
    stats["end_to_end_s"] = round(time.perf_counter() - started, 2)
    stats["end_to_end_messages_per_s"] = round(stats["records"] / stats["end_to_end_s"], 1)
    stats.pop("samples", None)
    stats["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
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


def _stamp(path: Path, url: object) -> None:
    """Mappings belong to one source: stamp the sample mappings as this database's."""
    try:
        from hybridwb.mapping.model import SOURCE_KEY
        from hybridwb.mapping.service import source_identity
        from hybridwb.source import Source
    except ImportError:  # an older layout without source stamps
        return
    data = json.loads(path.read_text(encoding="utf-8"))
    data = {SOURCE_KEY: source_identity(Source(url)), **data}
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-million", action="store_true")
    parser.add_argument("--child", nargs=2)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]))
        return
    ensure_sample(DB, 1_000_000)
    with psycopg.connect(
        f"host=127.0.0.1 port={PG_PORT} user=postgres dbname=postgres", autocommit=True
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{STORE_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{STORE_DB}"')
    work = Path(tempfile.mkdtemp())
    (work / "mappings").mkdir()
    shutil.copy(
        REPO / "mappings" / "table-mappings.json", work / "mappings" / "table-mappings.json"
    )
    _stamp(work / "mappings" / "table-mappings.json", ro_url(DB))
    os.environ["HYBRIDWB_SOURCE_URL"] = ro_url(DB).render_as_string(hide_password=False)
    os.environ["HYBRIDWB_STORE_URL"] = (
        f"postgresql+psycopg://postgres@127.0.0.1:{PG_PORT}/{STORE_DB}"
    )
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
    rate = (big or small)["end_to_end_messages_per_s"]
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
