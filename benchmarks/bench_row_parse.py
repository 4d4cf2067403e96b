"""CPU per row of PyMySQL text-row parsing in a streamed read (issue #17), this tree against
another (`--ref`, a checkout).

A workflow run reads 100k-1M rows of a few short columns; a profile of its client (the
interpreter lock's samples) put `described._row` and `_buffered_rows` first. This times, with
process CPU time, on the row packets of 5,000 of the sample shop's customers as
`sample.generate` writes them (`customer_id` INT, `name`, `phone`, `grade` VARCHAR; and the two
columns `customer_id`, `phone`), with the converters PyMySQL gives those columns:

- `row_generic`: `described._row` on each packet (the parse before; kept as the reference);
- `row_specialised`: `described.row_parser(...)` on each packet (this tree only);
- `read_rows`: `DescribedResult.read_rows(5000)` over the whole reply held in memory, read
  through an 8 KB buffer as the socket's file reads it (the packets cut by the buffer's end
  read by PyMySQL's code): the loop of `_buffered_rows` with the parse in it;
- `records` (with `--mysql`): `Source.records` of a real 5,000-row read of those columns from
  MariaDB (the sample shop loaded with 5,000 customers into `hybridwb_bench_rowparse`): the
  client's whole CPU (guard, statement, read, log, dicts), the server's not.

Each repetition is a fresh process per tree, the trees alternating (A B B A ...); per
measure the median and min-max over the repetitions of µs per row (each repetition: the
mean of `--calls` calls).

Run on demand (never a timed test):
  .venv/bin/python benchmarks/bench_row_parse.py --ref /path/to/old/checkout [--reps 7]
      [--mysql] [--out row_parse]
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _common import load_average, write

HERE = Path(__file__).resolve().parents[1]
ROWS = 5_000
FIRST_ID = 50_001
DB = "hybridwb_bench_rowparse"
#: the shapes read: the columns, and the converters PyMySQL gives them on a utf8mb4 connection
SHAPES = {
    "customers4": ("customer_id", "name", "phone", "grade"),
    "key_phone2": ("customer_id", "phone"),
}
CONVERTERS = {"customer_id": ("ascii", int), "name": ("utf8", None), "phone": ("utf8", None)}
CONVERTERS["grade"] = ("utf8", None)


def _text(value: Any) -> bytes:
    return b"\xfb" if value is None else bytes([len(b := str(value).encode())]) + b


def _reply(rows: list[tuple[Any, ...]]) -> tuple[bytes, list[tuple[int, int]]]:
    """The rows' packets (sequence numbers from 1) and an EOF packet after them; and where
    each row's payload lies."""
    out, spans, pos = bytearray(), [], 0
    for seq, row in enumerate(rows, 1):
        payload = b"".join(map(_text, row))
        out += len(payload).to_bytes(3, "little") + bytes([seq % 256]) + payload
        spans.append((pos + 4, pos + 4 + len(payload)))
        pos = len(out)
    eof = b"\xfe\x00\x00\x22\x00"
    out += len(eof).to_bytes(3, "little") + bytes([(len(rows) + 1) % 256]) + eof
    return bytes(out), spans


class _Conn:
    """What `read_rows` reads of a connection: the reply through an 8 KB buffer."""

    def __init__(self, data: bytes) -> None:
        self._rfile = io.BufferedReader(io.BytesIO(data), buffer_size=8192)
        self._current_timeout = self._read_timeout = None
        self._next_seq_id = 1
        self._result = None
        self.encoding = "utf8"
        self.server_status = 0


def _timed(fn: Any, calls: int) -> float:
    fn()  # warm
    spent = 0.0
    for _ in range(calls):
        gc.collect()
        start = time.process_time()
        fn()
        spent += time.process_time() - start
    return spent / calls / ROWS * 1e6


def child(calls: int, mysql: bool) -> dict[str, float]:
    """µs per row of each measure, in this process (its `hybridwb` from PYTHONPATH)."""
    from hybridwb.source import described
    from hybridwb.source.sample import customers, generate

    names = [c.name for c in customers.columns]
    found = next(rows for table, rows in generate(ROWS, seed=42, start_id=FIRST_ID) if table)
    out: dict[str, float] = {}
    generic = described._row
    gc.disable()
    for shape, columns in SHAPES.items():
        rows = [tuple(r[names.index(c)] for c in columns) for r in found]
        converters = [CONVERTERS[c] for c in columns]
        data, spans = _reply(rows)
        out[f"row_generic {shape}"] = _timed(
            lambda d=data, c=converters, sp=spans: [generic(d, p, s, c) for p, s in sp], calls
        )
        if hasattr(described, "row_parser"):
            parse = described.row_parser(tuple(converters))
            out[f"row_specialised {shape}"] = _timed(
                lambda f=parse, d=data, sp=spans: [f(d, p, s) for p, s in sp], calls
            )

        def read(data: bytes = data, converters: list[Any] = converters) -> None:
            result = described.DescribedResult.__new__(described.DescribedResult)
            result.connection, result.unbuffered_active = _Conn(data), True
            result.converters, result.rows = converters, None
            got = result.read_rows(ROWS)
            assert len(got) == ROWS and result.read_rows(1) == []  # the EOF read

        out[f"read_rows {shape}"] = _timed(read, calls)
    if mysql:
        out |= _records(calls)
    return out


def _records(calls: int) -> dict[str, float]:
    from sqlalchemy.engine import URL

    from hybridwb.source.source import Source

    url = URL.create("mysql+pymysql", username="root", host="127.0.0.1", port=3306, database=DB)
    src = Source(url, use_guard=True, pool_size=1, max_overflow=0)
    out = {}
    try:
        for shape, columns in SHAPES.items():
            sql = f"SELECT {', '.join(columns)} FROM customers ORDER BY customer_id LIMIT {ROWS}"
            assert len(src.records(sql, limit=ROWS)) == ROWS
            out[f"records {shape}"] = _timed(lambda q=sql: src.records(q, limit=ROWS), calls)
    finally:
        src.close()
    return out


def _ensure_db() -> None:
    import pymysql
    from _common import admin_url

    from hybridwb.source.sample import load

    conn = pymysql.connect(host="127.0.0.1", user="root", autocommit=True)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS `{DB}` CHARACTER SET utf8mb4")
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.tables"
            f" WHERE table_schema = '{DB}' AND table_name = 'customers'"
        )
        have = cur.fetchone()[0]
    conn.close()
    if not have:  # the sample shop with ROWS customers (the records read them all)
        load(admin_url(DB), ROWS)


def run_child(tree: Path, calls: int, mysql: bool) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cmd = [sys.executable, __file__, "--child", str(calls), *(["--mysql"] if mysql else [])]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ref", default="", help="the other checkout (before)")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--mysql", action="store_true", help="also `Source.records` on MariaDB")
    parser.add_argument("--out", default="", help="results file name (none: print only)")
    parser.add_argument("--child", type=int, default=0)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.mysql)))
        return
    if args.mysql:
        _ensure_db()
    trees = {"after": HERE, **({"before": Path(args.ref).resolve()} if args.ref else {})}
    got: dict[str, list[dict[str, float]]] = {k: [] for k in trees}
    before_load = load_average()
    for rep in range(args.reps):
        for label in list(trees) if rep % 2 == 0 else list(reversed(trees)):
            got[label].append(run_child(trees[label], args.calls, args.mysql))
    summary: dict[str, Any] = {}
    for name in got["after"][0]:
        entry: dict[str, Any] = {}
        for label, reps in got.items():
            values = [r[name] for r in reps if name in r]
            if values:
                entry[label] = {
                    "median": round(statistics.median(values), 3),
                    "min": round(min(values), 3),
                    "max": round(max(values), 3),
                }
        if "before" in entry:
            entry["after_over_before"] = round(
                entry["after"]["median"] / entry["before"]["median"], 3
            )
        summary[name] = entry
    data = {
        "unit": "µs of process CPU time per row",
        "rows": f"{ROWS:,} sample customers from id {FIRST_ID:,} (seed 42)",
        "shapes": {k: list(v) for k, v in SHAPES.items()},
        "reps": args.reps,
        "calls_per_rep": args.calls,
        "load_average_before": before_load,
        "load_average_after": load_average(),
        "measures": summary,
    }
    if args.out:
        write(args.out, data)
    else:
        print(json.dumps(data, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
