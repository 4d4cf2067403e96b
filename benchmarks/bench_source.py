"""wb.sql against pandas.read_sql and the raw driver, interleaved, on 200,000 rows.

Targets (issues 2, 11, 17):
- bulk: wb.sql <= 1.10x `pandas.read_sql` on a raw PyMySQL connection opened before timing;
- overhead: wb.sql minus the raw driver (-> DataFrame) on the same 1-row statement <= 1 ms p50.
  That difference is everything hybridwb adds: the guard on the text and on the final
  interpolated text, binds, the session SET on checkout and the check after the statement,
  the unbuffered cursor, the query log.

Every comparison is interleaved (A B A B ...) over >= 7 repetitions; figures are the median
with min-max. The database has a unique name and is dropped at the end.
Run: .venv/bin/python benchmarks/bench_source.py  (writes benchmarks/results/source.json)
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import pandas as pd
import pymysql
from _common import HOST, BenchAccount, ensure_sample, write

from hybridwb.source import Source

ROWS = 200_000
QUERY = (
    f"SELECT customer_id, name, phone, email, grade, status, created_at FROM customers LIMIT {ROWS}"
)
ONE_ROW = "SELECT customer_id, name, grade FROM customers WHERE customer_id = :id"
ONE_ROW_RAW = "SELECT customer_id, name, grade FROM customers WHERE customer_id = %s"
REPS = 7
CALLS_PER_REP = 300


def spread(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
    }


def interleaved(contenders: dict[str, Callable[[], Any]], reps: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(reps):
        for name, fn in contenders.items():
            started = time.perf_counter()
            df = fn()
            times[name].append(time.perf_counter() - started)
            assert len(df) == ROWS, (name, len(df))
    return times


def bulk(src: Source, account: BenchAccount) -> dict[str, Any]:
    raw = pymysql.connect(
        host=HOST,
        user=account.user,
        password=account.password,
        database=account.db,
        charset="utf8mb4",
    )

    def raw_driver() -> pd.DataFrame:
        with raw.cursor() as cur:
            cur.execute(QUERY)
            rows = cur.fetchall()
            cols = [d[0] for d in cur.description]
        return pd.DataFrame.from_records(rows, columns=cols)

    contenders = {
        "pandas.read_sql (raw pymysql connection)": lambda: pd.read_sql(QUERY, raw),
        "wb.sql": lambda: src.sql(QUERY),
        "raw pymysql -> DataFrame": raw_driver,
        "pandas.read_sql (wb.engine)": lambda: pd.read_sql(QUERY, src.engine),
    }
    src.sql(QUERY)  # warm the pool
    times = interleaved(contenders, REPS)
    raw.close()
    base = statistics.median(times["pandas.read_sql (raw pymysql connection)"])
    return {
        name: {**spread(t), "ratio_vs_pandas": round(statistics.median(t) / base, 3)}
        for name, t in times.items()
    }


def overhead(src: Source, account: BenchAccount) -> dict[str, Any]:
    raw = pymysql.connect(
        host=HOST,
        user=account.user,
        password=account.password,
        database=account.db,
        charset="utf8mb4",
    )
    ids = list(range(1, CALLS_PER_REP + 1))

    def run_raw(i: int) -> None:
        with raw.cursor() as cur:
            cur.execute(ONE_ROW_RAW, (i,))
            rows = cur.fetchall()
            cols = [d[0] for d in cur.description]
        pd.DataFrame.from_records(rows, columns=cols)

    def run_wb(i: int) -> None:
        src.sql(ONE_ROW, {"id": i})

    per_rep_added, wb_p50, raw_p50, cpu_added = [], [], [], []
    for _ in range(REPS):
        wb_t, raw_t, wb_cpu, raw_cpu = [], [], [], []
        for i in ids:  # A B A B within the repetition
            started, cpu = time.perf_counter(), time.process_time()
            run_wb(i)
            wb_t.append(time.perf_counter() - started)
            wb_cpu.append(time.process_time() - cpu)
            started, cpu = time.perf_counter(), time.process_time()
            run_raw(i)
            raw_t.append(time.perf_counter() - started)
            raw_cpu.append(time.process_time() - cpu)
        wb_p50.append(statistics.median(wb_t) * 1000)
        raw_p50.append(statistics.median(raw_t) * 1000)
        per_rep_added.append(wb_p50[-1] - raw_p50[-1])
        # CPU time of this process: what hybridwb costs, independent of how busy the machine is
        cpu_added.append((statistics.fmean(wb_cpu) - statistics.fmean(raw_cpu)) * 1000)
    raw.close()
    return {
        "statement": ONE_ROW,
        "calls_per_rep": CALLS_PER_REP,
        "wb.sql p50 ms": spread(wb_p50),
        "raw pymysql -> DataFrame p50 ms": spread(raw_p50),
        "added by hybridwb p50 ms": spread(per_rep_added),
        "added client CPU per call ms (mean)": spread(cpu_added),
        "round trips per call": {"wb.sql": 2, "raw driver": 1},
    }


def main() -> None:
    """`--overhead-only` measures the 1-row overhead on a small database (no bulk part)."""
    overhead_only = "--overhead-only" in sys.argv
    db = f"hybridwb_bench_source_{uuid.uuid4().hex[:8]}"
    admin = pymysql.connect(host=HOST, user="root", autocommit=True)
    bulk_results: dict[str, Any] = {}
    try:
        ensure_sample(db, 2_000 if overhead_only else ROWS)
        with BenchAccount(db) as account:  # its own SELECT-only account, dropped after
            src = Source(account.url(), row_cap=1_000_000)
            try:
                if not overhead_only:
                    bulk_results = bulk(src, account)
                added = overhead(src, account)
            finally:
                src.close()
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
        admin.close()
    ratio = bulk_results["wb.sql"]["ratio_vs_pandas"] if bulk_results else None
    added_p50 = added["added by hybridwb p50 ms"]["median"]
    path = write(
        "source-overhead" if overhead_only else "source",
        {
            "rows": ROWS,
            "repetitions": REPS,
            "method": "interleaved; median with min-max over repetitions",
            "bulk_seconds": bulk_results,
            "one_row_overhead": added,
            "targets": {
                "wb.sql <= 1.10x pandas.read_sql": None if ratio is None else ratio <= 1.10,
                "guard + logging (added) p50 <= 1 ms": added_p50 <= 1.0,
            },
        },
    )
    print(path.read_text())


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    main()
