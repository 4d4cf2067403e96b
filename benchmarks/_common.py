"""Helpers shared by the benchmarks: MariaDB set-up and JSON results."""

from __future__ import annotations

import functools
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import pymysql
from sqlalchemy.engine import URL

HOST = os.environ.get("HYBRIDWB_TEST_MYSQL_HOST", "127.0.0.1")
RESULTS = Path(__file__).parent / "results"


def admin_url(db: str) -> URL:
    return URL.create(
        "mysql+pymysql",
        username="root",
        host=HOST,
        port=3306,
        database=db,
        query={"charset": "utf8mb4"},
    )


def ro_url(db: str) -> URL:
    return URL.create(
        "mysql+pymysql",
        username="hybridwb_ro",
        password="hybridwb_ro_pw",
        host=HOST,
        port=3306,
        database=db,
        query={"charset": "utf8mb4"},
    )


def ensure_sample(db: str, customers: int) -> None:
    """Load the sample shop into `db` unless it already holds that many customers."""
    from hybridwb.source.sample import load

    conn = pymysql.connect(host=HOST, user="root", autocommit=True)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS `{db}` CHARACTER SET utf8mb4")
        try:
            cur.execute(f"SELECT COUNT(*) FROM `{db}`.customers")
            have = cur.fetchone()[0]
        except pymysql.err.ProgrammingError:
            have = 0
    conn.close()
    if have != customers:
        started = time.perf_counter()
        load(admin_url(db), customers)
        print(f"loaded {customers:,} customers in {time.perf_counter() - started:.1f} s")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": statistics.median(values),
        "p95": percentile(values, 0.95),
        "mean": statistics.fmean(values),
        "n": len(values),
    }


def write(name: str, data: dict[str, Any], path: Path | None = None) -> Path:
    """The results as `results/NAME.json`, or at `path` (an A/B run's own file, which leaves
    the committed results as they are)."""
    RESULTS.mkdir(exist_ok=True)
    data = {
        "benchmark": name,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        **data,
    }
    path = path or RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    return path


class BenchAccount:
    """A MySQL account of the benchmark's own (SELECT on one database only), created on
    enter and dropped on exit, so `make bench` never touches the test suite's accounts."""

    def __init__(self, db: str) -> None:
        import secrets

        self.db = db
        self.user = f"hwb_bench_{secrets.token_hex(4)}"
        self.password = secrets.token_urlsafe(16)

    def __enter__(self) -> BenchAccount:
        conn = pymysql.connect(host=HOST, user="root", autocommit=True)
        with conn.cursor() as cur:
            for host in ("%", "localhost"):
                cur.execute("CREATE USER %s@%s IDENTIFIED BY %s", (self.user, host, self.password))
                cur.execute(f"GRANT SELECT ON `{self.db}`.* TO %s@%s", (self.user, host))
        conn.close()
        return self

    def __exit__(self, *exc: object) -> None:
        conn = pymysql.connect(host=HOST, user="root", autocommit=True)
        with conn.cursor() as cur:
            for host in ("%", "localhost"):
                cur.execute("DROP USER IF EXISTS %s@%s", (self.user, host))
        conn.close()

    def url(self, driver: str = "pymysql") -> URL:
        return URL.create(
            f"mysql+{driver}",
            username=self.user,
            password=self.password,
            host=HOST,
            port=3306,
            database=self.db,
            query={"charset": "utf8mb4"},
        )


#: process names of the database servers whose CPU a run costs (MariaDB, PostgreSQL)
SERVERS = {"mysql": ("mariadbd", "mysqld"), "postgres": ("postgres",)}


def server_cpu_seconds() -> dict[str, float]:
    """CPU seconds (user + system) used so far by every process of each database server on
    this machine, children reaped included (a PostgreSQL backend that exits adds its time to
    the postmaster's). Differences around a run are that run's server CPU on a quiet machine
    (anything else the servers do meanwhile is counted too)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = dict.fromkeys(SERVERS, 0.0)
    own = _private_postmaster()
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:  # gone meanwhile
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        for server, names in SERVERS.items():
            if name not in names:
                continue
            if server == "postgres" and own and own not in (int(pid), int(fields[1])):
                continue  # the shared server's, not the private one the stores are on
            # utime, stime, cutime, cstime: fields 14-17 of proc(5)
            out[server] += sum(int(x) for x in fields[11:15]) / tick
    return out


@functools.cache
def _private_postmaster() -> int | None:
    """The postmaster's pid of the private PostgreSQL `HYBRIDWB_BENCH_PG_PORT` names (its
    processes alone are the run's PostgreSQL CPU: the shared server's other work is not),
    None on the shared server (5432: every postgres process counts, as before)."""
    port = int(os.environ.get("HYBRIDWB_BENCH_PG_PORT", "5432"))
    if port == 5432:
        return None
    import psycopg

    dsn = f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
    with psycopg.connect(dsn, autocommit=True) as conn:
        data = conn.execute("SHOW data_directory").fetchone()[0]  # type: ignore[index]
    with open(os.path.join(data, "postmaster.pid")) as f:
        return int(f.readline())


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def spread(values: list[float], digits: int = 4) -> dict[str, float]:
    """Median with min and max (what every comparison reports)."""
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }
