"""Search and relation targets on 1,000,000 customers whose phone lives in a related table.

Schema (its own uniquely named MariaDB database, loaded with INSERT ... SELECT from the
sequence engine and dropped at the end): `people` (first/last name, email, address_id ->
`addr`), `addr` (the phone in three stored formats: 010-1234-5678, 01012345678,
821012345678), `payment` (2,000,000 rows, to-many). Read through the SELECT-only account.

Measured (p50/p95/min-max over `--n` rounds; each round runs every kind once, interleaved,
each a fresh `wb.search`): id, phone typed in each of the three stored formats, email, full
name (`김지훈`, `JANE DOE`) and one-character name prefixes; the naive OR-LIKE over the same
fields (each a full scan) interleaved with the same terms searched properly, `--reps` times;
and a relation-target preview ("paid more than 300 in total", a to-many aggregate), `--reps`
times. The load average before and after is recorded (the machine is shared).
Targets: search p95 <= 20 ms, >= 50x the naive OR-LIKE, aggregate preview <= 2 s.
Run: .venv/bin/python benchmarks/bench_search.py [--rows 1000000] [--n 40] [--reps 7]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import pymysql
from _common import HOST, BenchAccount, summary, write

import hybridwb
from hybridwb.errors import QueryTimeout

LAST = ["김", "이", "박", "최", "백", "DOE", "SMITH", "JONES", "BROWN", "LEE"]
FIRST = ["지훈", "민준", "서연", "지우", "하은", "JANE", "JOHN", "MARY", "LINDA", "SUSAN"]

MAPPING = {
    "people": {
        "displayName": "고객",
        "key": "person_id",
        "audience": True,
        "recipient": "addr.phone",
        "fields": {
            "person_id": {"displayName": "ID", "type": "number", "role": "id", "searchable": True},
            "first_name": {"displayName": "이름", "role": "first_name", "searchable": True},
            "last_name": {"displayName": "성", "role": "last_name", "searchable": True},
            "email": {"displayName": "이메일", "role": "email", "searchable": True},
            "address_id": {"displayName": "주소", "type": "number", "role": "reference"},
        },
        "relations": [
            {
                "table": "addr",
                "localField": "address_id",
                "foreignField": "address_id",
                "kind": "many-to-one",
            },
            {
                "table": "payment",
                "localField": "person_id",
                "foreignField": "person_id",
                "orderBy": "paid_at",
            },
        ],
    },
    "addr": {
        "displayName": "주소",
        "key": "address_id",
        "fields": {
            "address_id": {"displayName": "주소ID", "type": "number", "role": "id"},
            "phone": {"displayName": "전화", "role": "phone", "searchable": True},
        },
    },
    "payment": {
        "displayName": "결제",
        "key": "payment_id",
        "fields": {
            "payment_id": {"displayName": "결제ID", "type": "number", "role": "id"},
            "person_id": {"displayName": "고객ID", "type": "number", "role": "reference"},
            "amount": {"displayName": "금액", "type": "number", "role": "amount"},
            "paid_at": {"displayName": "결제일", "type": "datetime", "role": "date"},
        },
    },
}


def load(cur: pymysql.cursors.Cursor, rows: int) -> None:
    cur.execute(
        "CREATE TABLE addr (address_id INT NOT NULL PRIMARY KEY, phone VARCHAR(24) NULL, "
        "KEY ix_phone (phone)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
    )
    cur.execute(
        "CREATE TABLE people (person_id INT NOT NULL PRIMARY KEY, first_name VARCHAR(40) NOT NULL,"
        " last_name VARCHAR(20) NOT NULL, email VARCHAR(80) NULL, address_id INT NOT NULL,"
        " KEY ix_first (first_name), KEY ix_last (last_name), KEY ix_name (last_name, first_name),"
        " UNIQUE KEY ux_email (email), KEY ix_address (address_id))"
        " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
    )
    cur.execute(
        "CREATE TABLE payment (payment_id INT NOT NULL PRIMARY KEY, person_id INT NOT NULL,"
        " amount DECIMAL(10,2) NOT NULL, paid_at DATETIME NOT NULL,"
        " KEY ix_person (person_id, paid_at)) ENGINE=InnoDB"
    )
    cur.execute(
        "INSERT INTO addr SELECT seq, CASE seq % 3"
        " WHEN 0 THEN CONCAT('010-', LPAD(seq DIV 10000, 4, '0'), '-', LPAD(seq % 10000, 4, '0'))"
        " WHEN 1 THEN CONCAT('010', LPAD(seq DIV 10000, 4, '0'), LPAD(seq % 10000, 4, '0'))"
        " ELSE CONCAT('8210', LPAD(seq DIV 10000, 4, '0'), LPAD(seq % 10000, 4, '0')) END"
        f" FROM seq_1_to_{rows}"
    )
    lasts = ", ".join(f"'{c}'" for c in LAST)
    firsts = ", ".join(f"'{f}'" for f in FIRST)
    cur.execute(
        f"INSERT INTO people SELECT seq, ELT(1 + (seq DIV 10) % 10, {firsts}),"
        f" ELT(1 + seq % 10, {lasts}), CONCAT('p', seq, '@example.kr'), seq"
        f" FROM seq_1_to_{rows}"
    )
    cur.execute(
        f"INSERT INTO payment SELECT seq, 1 + seq MOD {rows}, (seq * 7919) MOD 40000 / 100,"
        f" '2024-01-01' + INTERVAL (seq MOD 500) DAY FROM seq_1_to_{2 * rows}"
    )
    cur.execute("ANALYZE TABLE addr, people, payment")
    cur.fetchall()


def spread(values: list[float]) -> dict[str, float]:
    """p50 / p95 and the whole range (min-max), in milliseconds or seconds as given."""
    return {**summary(values), "min": min(values), "max": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--n", type=int, default=40, help="searches per kind (interleaved)")
    parser.add_argument("--reps", type=int, default=7, help="naive scans and previews")
    parser.add_argument(
        "--reuse", metavar="DB", help="an already loaded database (kept; for profiling)"
    )
    args = parser.parse_args()
    db = args.reuse or f"hybridwb_bench_rel_{uuid.uuid4().hex[:8]}"
    admin = pymysql.connect(host=HOST, user="root", autocommit=True)
    work = Path(tempfile.mkdtemp())
    load_s = None
    account: BenchAccount | None = None
    try:
        if not args.reuse:
            with admin.cursor() as cur:
                cur.execute(f"CREATE DATABASE `{db}` CHARACTER SET utf8mb4")
                cur.execute(f"USE `{db}`")
                started = time.perf_counter()
                load(cur, args.rows)
                load_s = time.perf_counter() - started
            print(f"loaded {args.rows:,} people in {load_s:.1f} s")
        account = BenchAccount(db).__enter__()  # its own SELECT-only account, dropped below
        url = account.url()
        from hybridwb.mapping.model import SOURCE_KEY
        from hybridwb.mapping.service import source_identity
        from hybridwb.source import Source

        (work / "mappings").mkdir()
        probe = Source(url)
        stamped = {SOURCE_KEY: source_identity(probe), **MAPPING}
        probe.close()
        (work / "mappings" / "table-mappings.json").write_text(
            json.dumps(stamped, ensure_ascii=False), encoding="utf-8"
        )
        wb = hybridwb.connect(
            source=url.render_as_string(hide_password=False),
            cwd=work,
            home=str(work / ".hybridwb"),
        )
        rng = random.Random(7)
        picks = [rng.randrange(1, args.rows) for _ in range(args.n)]
        wb.search("people", "1")  # warm the schema facts (cached for a minute, as in use)
        load_before = os.getloadavg()

        def dashed(i: int) -> str:
            return f"010-{i // 10000:04d}-{i % 10000:04d}"

        def digits(i: int) -> str:
            return f"010{i // 10000:04d}{i % 10000:04d}"

        def intl82(i: int) -> str:
            return f"8210{i // 10000:04d}{i % 10000:04d}"

        terms = {
            "id": str,
            "phone_dashed": dashed,
            "phone_digits": digits,
            "phone_82": intl82,
            "email": lambda i: f"p{i}@example.kr",
            "full_name_korean": lambda i: LAST[i % 5] + FIRST[(i // 10) % 5],
            "full_name_latin": lambda i: f"{FIRST[5 + i % 5]} {LAST[5 + (i // 7) % 5]}",
            "one_char_prefix": lambda i: LAST[i % 5],
        }
        exact = {"id", "phone_dashed", "phone_digits", "phone_82", "email"}
        times: dict[str, list[float]] = {k: [] for k in terms}
        statements: dict[str, int] = {}
        missed: dict[str, int] = {}
        # interleaved: every round searches each kind once, so load spikes hit all kinds
        for i in range(args.n):
            for kind, term_of in terms.items():
                started = time.perf_counter()
                rows = wb.search("people", term_of(picks[i])).raw_rows
                times[kind].append((time.perf_counter() - started) * 1000)
                statements[kind] = len(wb.search.last_statements)
                if not rows or (kind in exact and picks[i] not in [r["person_id"] for r in rows]):
                    missed[kind] = missed.get(kind, 0) + 1
        results = {k: {**spread(v), "statements_sent": statements[k]} for k, v in times.items()}
        worst = max(r["p95"] for r in results.values())

        # naive OR-LIKE (a full scan each) interleaved with the same search done right
        naive_terms = [str(picks[0]), dashed(picks[1]), "김지훈"]
        naive_ms: list[float] = []
        fast_ms: list[float] = []
        timeouts = 0
        for i in range(args.reps):
            term = naive_terms[i % 3]
            started = time.perf_counter()
            try:
                wb.search.naive("people", term, allow_scan=True)
            except QueryTimeout:  # stopped at the statement limit: a lower bound
                timeouts += 1
            naive_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            wb.search("people", term)
            fast_ms.append((time.perf_counter() - started) * 1000)
        naive, fast = spread(naive_ms), spread(fast_ms)
        speedup = naive["p50"] / fast["p50"]

        target = {
            "where": {
                "aggregate": "sum",
                "relation": "payment",
                "field": "amount",
                "op": "gt",
                "value": 300,
            }
        }
        preview_s: list[float] = []
        for _ in range(args.reps):
            started = time.perf_counter()
            preview = wb.targets.preview(target, allow_scan=True, cache_ttl=None)
            preview_s.append(time.perf_counter() - started)
        previews = spread(preview_s)
        out = write(
            "search",
            {
                "customers": args.rows,
                "searches_per_kind": args.n,
                "load_s": None if load_s is None else round(load_s, 1),
                "load_average_before_after": [load_before, os.getloadavg()],
                "wb.search_ms": results,
                "naive_or_like_ms": naive,
                "naive_stopped_at_the_statement_limit": timeouts,
                "same_terms_searched_ms": fast,
                "speedup_vs_naive_p50": round(speedup, 1),
                "relation_target_preview_s": {
                    "definition": target,
                    **previews,
                    "count": preview.count,
                    "exact": preview.exact,
                    "verdict": preview.verdict,
                },
                "missed_or_empty": missed,
                "targets": {
                    "search p95 <= 20 ms (every kind)": worst <= 20,
                    ">= 50x the naive OR-LIKE (median vs median)": speedup >= 50,
                    "aggregate preview p50 <= 2 s": previews["p50"] <= 2.0,
                },
            },
        )
        print(out)
        wb.close()
    finally:
        if account is not None:
            account.__exit__()
        if not args.reuse:
            with admin.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
        admin.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
