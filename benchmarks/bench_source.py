"""Issue 2: wb.sql and %%mysql against pandas.read_sql, raw pymysql and jupysql on 200,000 rows.

Targets: wb.sql <= 1.10x pandas.read_sql; guard + logging <= 1 ms per query (p50).
Run: .venv/bin/python benchmarks/bench_source.py  (writes benchmarks/results/source.json)
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import pandas as pd
import pymysql
from _common import HOST, ensure_sample, ro_url, summary, write

from hybridwb.source import Source, guard
from hybridwb.source.querylog import QueryLog, QueryLogEntry

DB = "hybridwb_bench_source"
ROWS = 200_000
QUERY = (
    f"SELECT customer_id, name, phone, email, grade, status, created_at FROM customers LIMIT {ROWS}"
)
REPEAT = 5


def best(fn) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        df = fn()
        times.append(time.perf_counter() - started)
        assert len(df) == ROWS, len(df)
    return min(times)


def main() -> None:
    ensure_sample(DB, ROWS)
    src = Source(ro_url(DB), row_cap=1_000_000)
    engine = src.engine

    def raw_pymysql():  # type: ignore[no-untyped-def]
        conn = pymysql.connect(
            host=HOST, user="hybridwb_ro", password="hybridwb_ro_pw", database=DB, charset="utf8mb4"
        )
        with conn.cursor() as cur:
            cur.execute(QUERY)
            rows = cur.fetchall()
            cols = [d[0] for d in cur.description]
        conn.close()
        return pd.DataFrame.from_records(rows, columns=cols)

    from IPython.core.interactiveshell import InteractiveShell

    from hybridwb.config import load_settings
    from hybridwb.magics import HybridwbMagics
    from hybridwb.workbench import Workbench

    shell = InteractiveShell.instance()
    wb = Workbench(load_settings(env={}), source=src)
    shell.register_magics(HybridwbMagics(shell, wb))
    from sql.connection import ConnectionManager

    shell.run_line_magic("load_ext", "sql")
    ConnectionManager.set(engine, displaycon=False, alias="bench")
    shell.run_line_magic("config", "SqlMagic.displaylimit = 0")
    shell.run_line_magic("config", "SqlMagic.autopandas = True")

    def magic():  # type: ignore[no-untyped-def]
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            return shell.run_cell_magic("mysql", "", QUERY)

    def jupysql():  # type: ignore[no-untyped-def]
        return shell.run_cell_magic("sql", "", QUERY)

    results = {
        "pandas.read_sql": best(lambda: pd.read_sql(QUERY, engine)),
        "wb.sql": best(lambda: src.sql(QUERY)),
        "%%mysql": best(magic),
        "raw pymysql": best(raw_pymysql),
        "jupysql %%sql": best(jupysql),
    }
    base = results["pandas.read_sql"]
    table = {
        name: {
            "seconds": round(t, 4),
            "rows_per_s": round(ROWS / t),
            "ratio_vs_pandas": round(t / base, 3),
        }
        for name, t in results.items()
    }

    # guard + logging overhead per query, no database
    log = QueryLog()
    queries = [
        "SELECT * FROM customers WHERE customer_id = :id",
        "SELECT c.name, s.plan FROM customers c JOIN subscriptions s ON s.customer_id = c.customer_id WHERE c.grade = :g LIMIT 20",
        "WITH v AS (SELECT * FROM customers WHERE grade = 'VIP') SELECT COUNT(*) FROM v",
    ]
    overhead = []
    for i in range(3000):
        q = queries[i % len(queries)]
        started = time.perf_counter()
        checked = guard.check(q)
        log.record(QueryLogEntry("shop", checked.normalized(), 1.0, 1, "success"))
        overhead.append((time.perf_counter() - started) * 1000)
    guard_ms = summary(overhead[200:])
    ratio = table["wb.sql"]["ratio_vs_pandas"]
    write(
        "source",
        {
            "rows": ROWS,
            "repeat_best_of": REPEAT,
            "results": table,
            "guard_and_log_ms": guard_ms,
            "targets": {
                "wb.sql <= 1.10x pandas.read_sql": ratio <= 1.10,
                "guard+log p50 <= 1 ms": guard_ms["p50"] <= 1.0,
            },
        },
    )
    src.close()


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    main()
