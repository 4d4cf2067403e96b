"""CPU per message of rendering a batch ahead (`rendering.render_ahead`): the renderer's
batch form (`one.many`, hybridwb/templating/batch.py) against `one` called row by row.

The benchmark's template (bench_workflow.py's CONTENT) on the embedded SQLite sample's
`customers` (built for this run in a temporary directory, `--rows` of them, read with
every column), mapped by the shipped mapping file, mode fallback, message type LMS, no
per-message warnings (as a run renders). "before" is the same renderer with its batch form
taken off, so `render_ahead` calls `one` per row as it did; "after" is as a run renders
now. Both give equal messages (checked here). Process CPU time only (`time.process_time`),
no wall clock; the collector at the run's threshold (`heap.RUN_GC_THRESHOLD`).
`--reps` repetitions, the order of the two turning each time (A B, B A, ...), each
rendering the batch `--loops` times; median and min-max of µs per message.

Run: PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_render.py [--reps 9] [--rows 5000]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # this tree's hybridwb

from _common import write

REPO = Path(__file__).resolve().parents[1]
CONTENT = "#{고객명}님, {{ 등급 }} 회원 전용 혜택이 도착했습니다. 문의: 1588-0000"


def setup(root: Path, n: int) -> tuple[Any, Any, Any, list[Any], dict[str, Any]]:
    """A workbench on a fresh sample shop in `root`; the renderer, candidates and rows."""
    import hybridwb
    from hybridwb.source.sample import build_sqlite
    from hybridwb.workflows import policies

    (root / ".hybridwb").mkdir()
    build_sqlite(root / ".hybridwb" / "sample.db", customers_count=n)
    (root / "mappings").mkdir()
    shutil.copy(REPO / "mappings" / "table-mappings.json", root / "mappings")
    wb = hybridwb.connect()
    report = wb.templates.automap(CONTENT, "customers")
    one = wb.templates.renderer(
        CONTENT, table="customers", mode="fallback", message_type="LMS", report=report, warn=False
    )
    rows = wb.source.records(f"SELECT * FROM customers ORDER BY customer_id LIMIT {n}")
    by_key = {str(r["customer_id"]): r for r in rows}
    candidates = [policies.Candidate(k, f"+8210{i:08d}", True) for i, k in enumerate(by_key)]
    return wb, report, one, candidates, by_key


def cpu_us(call: Callable[[], Any], messages: int, loops: int) -> float:
    gc.collect()
    start = time.process_time()
    for _ in range(loops):
        call()
    return (time.process_time() - start) / (loops * messages) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--loops", type=int, default=5)
    parser.add_argument("--out", default="render_batch")
    args = parser.parse_args()

    from hybridwb.workflows import heap, rendering

    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
        wb, report, one, candidates, rows = setup(Path(tmp), args.rows)
        many = one.many

        def related(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return wb.templates.related(report, batch)

        def after() -> dict[str, Any]:
            return rendering.render_ahead(candidates, rows, one, related, False)

        def before() -> dict[str, Any]:
            del one.many  # `render_ahead` renders row by row, as it did
            try:
                return rendering.render_ahead(candidates, rows, one, related, False)
            finally:
                one.many = many

        a, b = after(), before()
        assert len(a) == len(b) == len(candidates)
        assert all(vars(a[k]) == vars(b[k]) for k in a), "the two differ"
        gc.set_threshold(heap.RUN_GC_THRESHOLD)
        times: dict[str, list[float]] = {"before": [], "after": []}
        n = len(candidates)
        for rep in range(args.reps):
            order = [("before", before), ("after", after)]
            for name, call in order if rep % 2 == 0 else order[::-1]:
                times[name].append(cpu_us(call, n, args.loops))
        wb.close()

    def summary(xs: list[float]) -> dict[str, Any]:
        return {
            "median_us_per_msg": round(statistics.median(xs), 3),
            "min": round(min(xs), 3),
            "max": round(max(xs), 3),
            "all": [round(x, 3) for x in xs],
        }

    result = {
        "template": CONTENT,
        "mode": "fallback",
        "message_type": "LMS",
        "messages": n,
        "reps": args.reps,
        "loops": args.loops,
        "clock": "time.process_time (process CPU)",
        "before": summary(times["before"]),
        "after": summary(times["after"]),
        "speedup_median": round(
            statistics.median(times["before"]) / statistics.median(times["after"]), 2
        ),
        "load_average": os.getloadavg(),
    }
    write(args.out, result)


if __name__ == "__main__":
    main()
