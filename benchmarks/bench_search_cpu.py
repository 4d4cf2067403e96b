"""CPU per search: wb.search against the raw driver on the same SQL, on one process.

On a machine whose cores are busy (the 8-process load benchmark), throughput is set by the
CPU each search costs: the client's (wb or the raw driver) and the server's. This measures
both, with process CPU time (the client) and the database servers' CPU time from /proc (the
server), which depend far less than wall time on what else the machine runs.

It reads a database `bench_search.load` filled (kept: `--db`, default
hybridwb_bench_srch_keep) through a SELECT-only account of its own. Every term's statements
are recorded once (as bench_search_load.py does); then `--rounds` rounds, each: wb.search
over `--n` terms this process has not searched before (round r takes the r-th slice of the
term list, so two runs with the same arguments search the same terms: an A/B of two
checkouts is `PYTHONPATH=<checkout> python benchmarks/bench_search_cpu.py` twice), then the
raw driver replays the recorded statements of the first `--n` terms. `--profile` adds a
cProfile of one more round, timed by CPU time (not wall time: waiting on the socket is not
the client's cost).

Run on demand (never a timed test):
  PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_search_cpu.py [--rounds 4] [--n 3000]
      [--out search_cpu_<label>] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import pymysql
from _common import HOST, BenchAccount, load_average, server_cpu_seconds, write
from bench_search import MAPPING
from bench_search_load import TABLE, record, terms

import hybridwb


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="hybridwb_bench_srch_keep")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--out", default="", help="results file name (none: print only)")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--profile-out", default="", help="also dump the profile's stats here")
    args = parser.parse_args()
    from hybridwb.mapping.model import SOURCE_KEY
    from hybridwb.mapping.service import source_identity
    from hybridwb.source import Source

    work = Path(tempfile.mkdtemp())
    all_terms = list(dict.fromkeys(terms(args.rows, 4 * args.n * (args.rounds + 2))))
    need = args.n * (args.rounds + 2)
    if len(all_terms) < need:
        raise SystemExit("not enough distinct terms; lower --n or --rounds")
    out: dict[str, Any] = {"hybridwb": hybridwb.__file__, "load_before": load_average()}
    rounds: list[dict[str, float]] = []
    with BenchAccount(args.db) as acct:
        (work / "mappings").mkdir()
        stamped = {SOURCE_KEY: source_identity(Source(acct.url())), **MAPPING}
        (work / "mappings" / "table-mappings.json").write_text(
            json.dumps(stamped, ensure_ascii=False), encoding="utf-8"
        )
        url = acct.url().render_as_string(hide_password=False)
        replay = all_terms[: args.n]
        recorded = record(url, work, replay)
        wb = hybridwb.connect(source=url, cwd=work, home=str(work / ".hb"))
        wb.search(TABLE, "1")
        wb.querylog.flush()
        raw = pymysql.connect(
            host=HOST, user=acct.user, password=acct.password, database=args.db, charset="utf8mb4"
        )
        for t in all_terms[args.n : 2 * args.n][:300]:  # warm: imports, caches, pool
            wb.search(TABLE, t)
        for rnd in range(args.rounds):
            mine = all_terms[(rnd + 2) * args.n : (rnd + 3) * args.n]
            s0, c0 = server_cpu_seconds(), time.process_time()
            for t in mine:
                wb.search(TABLE, t)
            s1, c1 = server_cpu_seconds(), time.process_time()
            for t in replay:
                with raw.cursor() as cur:
                    for sql, params in recorded[t]:
                        cur.execute(sql, params)
                        cur.fetchall()
            s2, c2 = server_cpu_seconds(), time.process_time()
            n = args.n
            row = {
                "wb_client_ms": (c1 - c0) * 1000 / n,
                "wb_mysql_ms": (s1["mysql"] - s0["mysql"]) * 1000 / n,
                "raw_client_ms": (c2 - c1) * 1000 / n,
                "raw_mysql_ms": (s2["mysql"] - s1["mysql"]) * 1000 / n,
            }
            rounds.append(row)
            print(
                f"round {rnd}: wb client {row['wb_client_ms']:.3f} ms mysql "
                f"{row['wb_mysql_ms']:.3f} | raw client {row['raw_client_ms']:.3f} mysql "
                f"{row['raw_mysql_ms']:.3f}",
                flush=True,
            )
        if args.profile:
            prof = cProfile.Profile(time.process_time)
            more = all_terms[args.n : 2 * args.n][300:]
            prof.enable()
            for t in more:
                wb.search(TABLE, t)
            prof.disable()
            if args.profile_out:
                prof.dump_stats(args.profile_out)
            text = io.StringIO()
            stats = pstats.Stats(prof, stream=text)
            stats.sort_stats("tottime").print_stats(50)
            stats.sort_stats("cumtime").print_stats(70)
            print(text.getvalue())
        wb.close()
        raw.close()
    out["rounds"] = rounds
    out["median"] = {k: round(statistics.median(r[k] for r in rounds), 4) for k in rounds[0]}
    out["load_after"] = load_average()
    print(json.dumps(out["median"]))
    if args.out:
        write(args.out, out)


if __name__ == "__main__":
    main()
