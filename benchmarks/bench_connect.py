"""Client CPU of one new MySQL connection (issue #17: per-connection cost): a source's new
login (`Source.engine.raw_connection()`, the guarded PyMySQL connection with its read-only
session) against plain PyMySQL with its defaults (PREFERRED TLS: a new context, the system's
CA bundle read, for every connection) and plain PyMySQL with TLS switched off.

Interleaved (A B C A B C ...), `--reps` repetitions of `--n` connections each; per measure
the median and min-max over the repetitions of the process CPU per connection, in ms. Its
own database (`hybridwb_bench_connect_<random>`) and account, both dropped after.

Run on demand (never a timed test):
  .venv/bin/python benchmarks/bench_connect.py [--reps 7] [--n 30] [--out connect]
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pymysql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import HOST, BenchAccount, load_average, spread, write
from hybridwb.source import Source


def _cpu_per_connection(connect: Callable[[], None], n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        connect()
    return (time.process_time() - start) / n * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--out", default="connect")
    args = parser.parse_args()
    db = f"hybridwb_bench_connect_{secrets.token_hex(4)}"
    admin = pymysql.connect(host=HOST, user="root", autocommit=True)
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{db}`")
    try:
        with BenchAccount(db) as account:
            src = Source(account.url(), use_guard=True, pool_size=1, max_overflow=0)

            def wb() -> None:
                src.engine.raw_connection().invalidate()

            def plain(**kw: object) -> Callable[[], None]:
                def connect() -> None:
                    pymysql.connect(
                        host=HOST,
                        user=account.user,
                        password=account.password,
                        database=db,
                        **kw,  # type: ignore[arg-type]
                    ).close()

                return connect

            measures = {
                "wb_source": wb,
                "pymysql_default": plain(),
                "pymysql_tls_off": plain(ssl_disabled=True),
            }
            runs: dict[str, list[float]] = {name: [] for name in measures}
            for _ in range(args.reps):
                for name, connect in measures.items():
                    runs[name].append(_cpu_per_connection(connect, args.n))
            src.close()
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
        admin.close()
    write(
        args.out,
        {
            "unit": "ms of client CPU per new connection",
            "reps": args.reps,
            "connections_per_rep": args.n,
            "load_average": load_average(),
            "results": {name: spread(values, 3) for name, values in runs.items()},
        },
    )


if __name__ == "__main__":
    main()
