"""Client CPU of a 1-row wb.sql against the raw driver -> DataFrame, on one process.

The wall-clock 1-row comparison (`bench_fastpath.py`, `bench_overhead_ab.py`) is at the
mercy of what else the machine runs; the CPU the client spends per call is far less so.
`--rounds` rounds, each: `--n` calls of wb.sql reading one row by key, then the same text
on a raw PyMySQL connection opened before timing, its rows -> `pandas.DataFrame.from_records`
(as the other benchmarks' baseline). Process CPU time per call, median with min-max, and
the ratio per round. It reads `people` of a database `bench_search.load` filled (`--db`,
kept; see bench_search_cpu.py) through a SELECT-only account of its own. An A/B of two
checkouts is two runs: `PYTHONPATH=<checkout> python benchmarks/bench_sql_cpu.py`.

Run on demand (never a timed test):
  PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_sql_cpu.py --db NAME [--rounds 5]
      [--n 2000] [--out sql_cpu_<label>]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import pandas as pd
import pymysql
from _common import HOST, BenchAccount, load_average, write

import hybridwb

SQL = "SELECT person_id, first_name, last_name, email FROM people WHERE person_id = :id"
RAW = "SELECT person_id, first_name, last_name, email FROM people WHERE person_id = %s"


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="hybridwb_bench_srch_keep")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--out", default="", help="results file name (none: print only)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp())
    out: dict[str, Any] = {"hybridwb": hybridwb.__file__, "load_before": load_average()}
    rounds: list[dict[str, float]] = []
    with BenchAccount(args.db) as acct:
        url = acct.url().render_as_string(hide_password=False)
        wb = hybridwb.connect(source=url, cwd=work, home=str(work / ".hb"))
        raw = pymysql.connect(
            host=HOST, user=acct.user, password=acct.password, database=args.db, charset="utf8mb4"
        )
        for i in range(300):  # warm: imports, caches, pool
            wb.sql(SQL, {"id": i + 1})
        for rnd in range(args.rounds):
            first = 1000 + rnd * args.n
            c0 = time.process_time()
            for i in range(first, first + args.n):
                wb.sql(SQL, {"id": i})
            c1 = time.process_time()
            for i in range(first, first + args.n):
                with raw.cursor() as cur:
                    cur.execute(RAW, (i,))
                    rows = cur.fetchall()
                    pd.DataFrame.from_records(rows, columns=[d[0] for d in cur.description])
            c2 = time.process_time()
            row = {
                "wb_client_ms": (c1 - c0) * 1000 / args.n,
                "raw_client_ms": (c2 - c1) * 1000 / args.n,
            }
            row["ratio"] = row["wb_client_ms"] / row["raw_client_ms"]
            rounds.append(row)
            print(
                f"round {rnd}: wb {row['wb_client_ms']:.3f} ms raw {row['raw_client_ms']:.3f} ms"
                f" ratio {row['ratio']:.2f}",
                flush=True,
            )
        wb.close()
        raw.close()
    out["rounds"] = rounds
    out["summary"] = {k: _spread([r[k] for r in rounds]) for k in rounds[0]}
    out["load_after"] = load_average()
    print(out["summary"])
    if args.out:
        write(args.out, out)


if __name__ == "__main__":
    main()
