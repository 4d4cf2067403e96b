"""The fast paths against the best other tools, interleaved, on 200,000 rows x 11 columns.

Contenders (issue 17), each run once per repetition in turn (A B C ... A B C ...), >= 7
repetitions, reported as median with min-max:

- bulk (`SELECT` of the 11 customer columns, 200,000 rows -> DataFrame):
  wb.sql on PyMySQL and on mysqlclient, each also with `arrow=True`; raw PyMySQL and raw
  mysqlclient -> DataFrame (connections opened before timing); connectorx -> pandas and
  -> Arrow; `mariadb --batch --quick` (rows printed to /dev/null: the floor).
- one row: wb.sql against the same driver's raw connection -> DataFrame, on the same
  statement, alternating call by call; p50 per repetition.

Each contender's client CPU (this process's threads and the `mariadb` child) is reported
beside its wall time: on a shared machine the wall time mostly measures the neighbours.
Targets: arrow path <= 1.5x connectorx -> pandas; normal path (mysqlclient) <= 1.2x raw
mysqlclient -> DataFrame; 1-row p50 <= 1.5x the raw driver -> DataFrame.
The database and the MySQL account are the benchmark's own (unique names), dropped at the end.
(`--db NAME` loads the sample there once and keeps it: most of a run is loading it.)
Run: .venv/bin/python benchmarks/bench_fastpath.py [--reps 7] [--calls 300] [--db NAME]
     [--out NAME] (the results file, default fastpath)
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).parent))

import connectorx as cx
import MySQLdb
import pandas as pd
import pymysql
from _common import HOST, BenchAccount, ensure_sample, load_average, spread, write

from hybridwb.source import Source

ROWS = 200_000
COLUMNS = (
    "customer_id, name, phone, email, grade, status, marketing_opt_in, birth_date, city, "
    "created_at, updated_at"
)
QUERY = f"SELECT {COLUMNS} FROM customers"
ONE_ROW = "SELECT customer_id, name, grade FROM customers WHERE customer_id = :id"
ONE_ROW_RAW = "SELECT customer_id, name, grade FROM customers WHERE customer_id = %s"


def rows_of(result: Any) -> int:
    return int(result.num_rows) if hasattr(result, "num_rows") else len(result)


def client_cpu() -> float:
    """CPU seconds of this process (every thread: connectorx reads on its own) and of its
    finished children (the `mariadb` client): the client side's work, less exposed to
    what other processes on the machine do than wall time."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def interleaved(
    contenders: dict[str, Callable[[], Any]], reps: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall seconds and client CPU seconds of each contender, repetition by repetition."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    cpu: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(reps):
        for name, fn in contenders.items():
            cpu_started = client_cpu()
            started = time.perf_counter()
            result = fn()
            times[name].append(time.perf_counter() - started)
            if result is not None:
                assert rows_of(result) == ROWS, (name, rows_of(result))
            del result  # freeing the frame is part of the read (counted)
            cpu[name].append(client_cpu() - cpu_started)
    return times, cpu


def raw_frame(conn: Any, sql: str, args: Any = None) -> pd.DataFrame:
    cur = conn.cursor()
    cur.execute(sql, args)
    rows = cur.fetchall()
    cols = [d[0] for d in cur.description]
    cur.close()
    return pd.DataFrame.from_records(rows, columns=cols)


def bulk(account: BenchAccount, reps: int) -> dict[str, Any]:
    py = Source(account.url("pymysql"), row_cap=1_000_000)
    my = Source(account.url("mysqldb"), row_cap=1_000_000)
    raw_py = pymysql.connect(
        host=HOST, user=account.user, password=account.password, database=account.db
    )
    raw_my = MySQLdb.connect(
        host=HOST,
        user=account.user,
        password=account.password,
        database=account.db,
        charset="utf8mb4",
    )
    cx_url = (
        f"mysql://{account.user}:{quote(account.password, safe='')}@{HOST}:3306/"
        f"{account.db}?prefer_socket=false"
    )
    mariadb = [
        "mariadb",
        "--batch",
        "--quick",
        f"--host={HOST}",
        f"--user={account.user}",
        f"--database={account.db}",
        "-e",
        QUERY,
    ]
    env = {**os.environ, "MYSQL_PWD": account.password}

    def client() -> None:
        subprocess.run(mariadb, stdout=subprocess.DEVNULL, check=True, env=env)

    contenders: dict[str, Callable[[], Any]] = {
        "wb.sql (PyMySQL)": lambda: py.sql(QUERY),
        "wb.sql (mysqlclient)": lambda: my.sql(QUERY),
        "wb.sql arrow=True (PyMySQL)": lambda: py.sql(QUERY, arrow=True),
        "wb.sql arrow=True (mysqlclient)": lambda: my.sql(QUERY, arrow=True),
        "raw PyMySQL -> DataFrame": lambda: raw_frame(raw_py, QUERY),
        "raw mysqlclient -> DataFrame": lambda: raw_frame(raw_my, QUERY),
        "connectorx -> pandas": lambda: cx.read_sql(cx_url, QUERY),
        "connectorx -> Arrow": lambda: cx.read_sql(cx_url, QUERY, return_type="arrow"),
        "mariadb --batch --quick (to /dev/null)": client,
    }
    for fn in contenders.values():  # warm pools, caches and the buffer pool
        fn()
    load_before = load_average()
    times, cpu = interleaved(contenders, reps)
    load_after = load_average()
    py.close()
    my.close()
    raw_py.close()
    raw_my.close()
    medians = {name: statistics.median(t) for name, t in times.items()}
    out: dict[str, Any] = {
        name: {
            **spread(t),
            "ratio_vs_connectorx_pandas": round(m / medians["connectorx -> pandas"], 2),
        }
        for (name, t), m in zip(times.items(), medians.values(), strict=True)
    }
    per_rep = {
        "arrow (mysqlclient) / connectorx->pandas": [
            a / b
            for a, b in zip(
                times["wb.sql arrow=True (mysqlclient)"], times["connectorx -> pandas"], strict=True
            )
        ],
        "wb.sql (mysqlclient) / raw mysqlclient": [
            a / b
            for a, b in zip(
                times["wb.sql (mysqlclient)"], times["raw mysqlclient -> DataFrame"], strict=True
            )
        ],
        "wb.sql (PyMySQL) / raw mysqlclient": [
            a / b
            for a, b in zip(
                times["wb.sql (PyMySQL)"], times["raw mysqlclient -> DataFrame"], strict=True
            )
        ],
    }
    cpu_ratio = {
        "arrow (mysqlclient) / connectorx->pandas": [
            a / b
            for a, b in zip(
                cpu["wb.sql arrow=True (mysqlclient)"], cpu["connectorx -> pandas"], strict=True
            )
        ],
        "wb.sql (mysqlclient) / raw mysqlclient": [
            a / b
            for a, b in zip(
                cpu["wb.sql (mysqlclient)"], cpu["raw mysqlclient -> DataFrame"], strict=True
            )
        ],
    }
    return {
        "seconds": out,
        "ratios_per_repetition": {k: spread(v, 3) for k, v in per_rep.items()},
        "client_cpu_seconds": {name: spread(c) for name, c in cpu.items()},
        "client_cpu_ratios_per_repetition": {k: spread(v, 3) for k, v in cpu_ratio.items()},
        "load_average_before_after": [load_before, load_after],
    }


def one_row(account: BenchAccount, reps: int, calls: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for driver, connect in (
        (
            "pymysql",
            lambda: pymysql.connect(
                host=HOST, user=account.user, password=account.password, database=account.db
            ),
        ),
        (
            "mysqldb",
            lambda: MySQLdb.connect(
                host=HOST,
                user=account.user,
                password=account.password,
                database=account.db,
                charset="utf8mb4",
            ),
        ),
    ):
        src = Source(account.url(driver), row_cap=1_000)
        raw = connect()
        src.sql(ONE_ROW, {"id": 1})
        wb_p50, raw_p50, ratio = [], [], []
        load_before = load_average()
        for _ in range(reps):
            wb_t, raw_t = [], []
            for i in range(1, calls + 1):  # A B A B within the repetition
                started = time.perf_counter()
                src.sql(ONE_ROW, {"id": i})
                wb_t.append(time.perf_counter() - started)
                started = time.perf_counter()
                raw_frame(raw, ONE_ROW_RAW, (i,))
                raw_t.append(time.perf_counter() - started)
            wb_p50.append(statistics.median(wb_t) * 1000)
            raw_p50.append(statistics.median(raw_t) * 1000)
            ratio.append(wb_p50[-1] / raw_p50[-1])
        load_after = load_average()
        src.close()
        raw.close()
        name = "PyMySQL" if driver == "pymysql" else "mysqlclient"
        out[name] = {
            "wb.sql p50 ms": spread(wb_p50),
            "raw driver -> DataFrame p50 ms": spread(raw_p50),
            "ratio (per repetition)": spread(ratio, 3),
            "load_average_before_after": [load_before, load_after],
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--db", default="", help="reuse (and keep) this 200k sample database")
    parser.add_argument("--out", default="fastpath", help="the results file's name")
    args = parser.parse_args()
    db = args.db or f"hybridwb_bench_fast_{uuid.uuid4().hex[:8]}"
    admin = pymysql.connect(host=HOST, user="root", autocommit=True)
    try:
        ensure_sample(db, ROWS)
        with BenchAccount(db) as account:
            bulk_results = bulk(account, args.reps)
            one = one_row(account, args.reps, args.calls)
    finally:
        if not args.db:
            with admin.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
        admin.close()
    ratios = bulk_results["ratios_per_repetition"]
    write(
        args.out,
        {
            "rows": ROWS,
            "columns": 11,
            "repetitions": args.reps,
            "method": "interleaved; median with min-max over repetitions",
            "bulk": bulk_results,
            "one_row": one,
            "targets": {
                "arrow path <= 1.5x connectorx -> pandas": ratios[
                    "arrow (mysqlclient) / connectorx->pandas"
                ]["median"]
                <= 1.5,
                "normal path (mysqlclient) <= 1.2x raw mysqlclient": ratios[
                    "wb.sql (mysqlclient) / raw mysqlclient"
                ]["median"]
                <= 1.2,
                "1-row p50 <= 1.5x raw driver (PyMySQL)": one["PyMySQL"]["ratio (per repetition)"][
                    "median"
                ]
                <= 1.5,
                "1-row p50 <= 1.5x raw driver (mysqlclient)": one["mysqlclient"][
                    "ratio (per repetition)"
                ]["median"]
                <= 1.5,
            },
        },
    )


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    main()
