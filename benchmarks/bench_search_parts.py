"""What the gap between wb.search and the raw driver is made of, part by part.

The load target (issue 17) compares wb.search with the raw driver replaying the *same*
generated SQL, so a change to that SQL (fewer statements, a cheaper shape) lowers both
sides; only what wb does and the raw replay does not moves the ratio. This measures those
parts on one process, with process CPU time (the client) and mysqld's CPU time from /proc:

* commands per search: what wb writes to the server per search (statements and its
  session SET, counted on the connection), against the statements the raw side replays;
* the session SET wb sends per read (`engine.session_sql`, the exact text): the raw replay
  with that SET written after each search and its reply read before the next, as the
  parked connection does (checkout.py), against the plain replay;
* cold against hot pages: the same replay right after the buffer pool was filled with
  other pages (root reads the payment table and people's rows), then again. wb's rounds
  in bench_search_cpu.py search terms no one has read, its raw rounds replay recorded
  (read) ones, so that benchmark's server figures hold this difference too.

Each part is measured `--reps` times, interleaved; medians and all values are printed.
Run on demand: PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_search_parts.py
    [--db hybridwb_bench_srch_keep] [--n 3000] [--reps 3] [--out search_parts_<label>]
"""

from __future__ import annotations

import argparse
import json
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import pymysql
from _common import HOST, BenchAccount, load_average, server_cpu_seconds, spread, write
from bench_search import MAPPING
from bench_search_load import TABLE, record, terms
from pymysql.constants import COMMAND

import hybridwb


def _packet(sql: str) -> bytes:
    """The COM_QUERY packet PyMySQL writes for `sql` (sequence number 0)."""
    body = sql.encode()
    return struct.pack("<iB", len(body) + 1, COMMAND.COM_QUERY) + body


def _timed(run: Callable[[], None], n: int) -> tuple[float, float]:
    """(client CPU ms, mysqld CPU ms) per search of one run over `n` searches."""
    s0, c0 = server_cpu_seconds()["mysql"], time.process_time()
    run()
    s1, c1 = server_cpu_seconds()["mysql"], time.process_time()
    return (c1 - c0) * 1000 / n, (s1 - s0) * 1000 / n


def _commands_per_search(wb: Any, fresh: list[str]) -> float:
    """Commands wb writes to the server per search (statements and session SETs): each is
    one `_write_bytes` of PyMySQL's connection, counted while `fresh` terms are searched."""
    counted = [0]
    original = pymysql.connections.Connection._write_bytes

    def counting(self: Any, data: bytes) -> None:
        counted[0] += 1
        original(self, data)

    pymysql.connections.Connection._write_bytes = counting  # type: ignore[method-assign]
    try:
        for term in fresh:
            wb.search(TABLE, term)
    finally:
        pymysql.connections.Connection._write_bytes = original  # type: ignore[method-assign]
    return counted[0] / len(fresh)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="hybridwb_bench_srch_keep")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", default="", help="results file name (none: print only)")
    args = parser.parse_args()
    from hybridwb.mapping.model import SOURCE_KEY
    from hybridwb.mapping.service import source_identity
    from hybridwb.source import Source
    from hybridwb.source.engine import session_sql

    work = Path(tempfile.mkdtemp())
    pool = list(dict.fromkeys(terms(args.rows, 8 * args.n, seed=29)))
    replayed, fresh = pool[: args.n], pool[args.n : args.n + 1000]
    out: dict[str, Any] = {"hybridwb": hybridwb.__file__, "load_before": load_average()}
    with BenchAccount(args.db) as acct:
        (work / "mappings").mkdir()
        stamped = {SOURCE_KEY: source_identity(Source(acct.url())), **MAPPING}
        (work / "mappings" / "table-mappings.json").write_text(
            json.dumps(stamped, ensure_ascii=False), encoding="utf-8"
        )
        url = acct.url().render_as_string(hide_password=False)
        recorded = record(url, work, replayed)
        with hybridwb.connect(source=url, cwd=work, home=str(work / ".hb")) as wb:
            wb.search(TABLE, "1")
            the_set = session_sql(wb.source.facts, wb.source.policy)
            out["wb_commands_per_search"] = round(_commands_per_search(wb, fresh), 3)
        out["raw_statements_per_search"] = round(
            sum(len(recorded[t]) for t in replayed) / len(replayed), 3
        )
        raw = pymysql.connect(
            host=HOST, user=acct.user, password=acct.password, database=args.db, charset="utf8mb4"
        )
        root = pymysql.connect(host=HOST, user="root", database=args.db)
        cur = raw.cursor()
        texts = [[cur.mogrify(sql, params) for sql, params in recorded[t]] for t in replayed]
        set_packet = _packet(the_set)

        def plain() -> None:
            for statements in texts:
                for text in statements:
                    cur.execute(text)
                    cur.fetchall()

        def with_set() -> None:
            # as the parked connection: the SET leaves after a search, its reply is read
            # before the next one
            raw._write_bytes(set_packet)
            raw._next_seq_id = 1
            for statements in texts:
                raw._read_packet()
                for text in statements:
                    cur.execute(text)
                    cur.fetchall()
                raw._write_bytes(set_packet)
                raw._next_seq_id = 1
            raw._read_packet()

        def evict() -> None:
            with root.cursor() as rc:
                rc.execute("SELECT SUM(amount) FROM payment FORCE INDEX (PRIMARY)")
                rc.fetchall()
                rc.execute(
                    "SELECT COUNT(*), SUM(LENGTH(first_name)) FROM people "
                    "IGNORE INDEX (ix_first, ix_last, ix_name, ux_email, ix_address)"
                )
                rc.fetchall()

        plain()
        parts: dict[str, list[tuple[float, float]]] = {
            "raw": [],
            "raw_with_session_set": [],
            "raw_cold_pages": [],
            "raw_hot_pages": [],
        }
        n = len(texts)
        for rep in range(args.reps):
            parts["raw"].append(_timed(plain, n))
            parts["raw_with_session_set"].append(_timed(with_set, n))
            evict()
            parts["raw_cold_pages"].append(_timed(plain, n))
            parts["raw_hot_pages"].append(_timed(plain, n))
            print(f"rep {rep}: " + json.dumps({k: v[-1] for k, v in parts.items()}), flush=True)
        raw.close()
        root.close()
    out["session_set"] = the_set
    out["parts_ms_per_search"] = {
        name: {
            "client": spread([c for c, _ in values]),
            "mysqld": spread([s for _, s in values]),
        }
        for name, values in parts.items()
    }
    median = {
        name: (statistics.median(c for c, _ in v), statistics.median(s for _, s in v))
        for name, v in parts.items()
    }
    out["differences_ms_per_search"] = {
        "session_set": {
            "client": round(median["raw_with_session_set"][0] - median["raw"][0], 4),
            "mysqld": round(median["raw_with_session_set"][1] - median["raw"][1], 4),
        },
        "cold_minus_hot_pages_mysqld": round(
            median["raw_cold_pages"][1] - median["raw_hot_pages"][1], 4
        ),
    }
    out["load_after"] = load_average()
    print(json.dumps(out, indent=1))
    if args.out:
        write(args.out, out)


if __name__ == "__main__":
    main()
