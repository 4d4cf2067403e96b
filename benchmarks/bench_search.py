"""Search and relation targets on 1,000,000 customers whose phone lives in a related table.

Schema (its own uniquely named MariaDB database, loaded with INSERT ... SELECT from the
sequence engine and dropped at the end): `people` (first/last name, email, address_id ->
`addr`), `addr` (the phone in three stored formats: 010-1234-5678, 01012345678,
821012345678), `payment` (2,000,000 rows, to-many). Read through the SELECT-only account.

Measured (p50/p95 over `--n` searches per kind, each a fresh `wb.search`): id, phone typed
in each of the three stored formats, email, full name (`김지훈`, `JANE DOE`) and one-character
name prefixes; the naive OR-LIKE over the same fields on a few terms (each is a full scan);
and a relation-target preview ("paid more than 300 in total", a to-many aggregate).
Targets: search p95 <= 20 ms, >= 50x the naive OR-LIKE, aggregate preview <= 2 s.
Run: .venv/bin/python benchmarks/bench_search.py [--rows 1000000] [--n 40]
"""

from __future__ import annotations

import argparse
import json
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


def timed(fn, n: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    out = []
    for i in range(n):
        started = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - started) * 1000)
    return summary(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--n", type=int, default=40)
    args = parser.parse_args()
    db = f"hybridwb_bench_rel_{uuid.uuid4().hex[:8]}"
    admin = pymysql.connect(host=HOST, user="root", autocommit=True)
    work = Path(tempfile.mkdtemp())
    account: BenchAccount | None = None
    try:
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
        stamped = {SOURCE_KEY: source_identity(Source(url)), **MAPPING}
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
        wb.search("people", "1")  # warm the schema facts

        missed: dict[str, int] = {}

        def run(term_of, exact: bool = False):  # type: ignore[no-untyped-def]
            def one(i: int) -> None:
                rows = wb.search("people", term_of(picks[i])).raw_rows
                if exact and picks[i] not in [r["person_id"] for r in rows]:
                    missed[term_of.__name__] = missed.get(term_of.__name__, 0) + 1
                if not rows:
                    missed["empty"] = missed.get("empty", 0) + 1

            return one

        def dashed(i: int) -> str:
            return f"010-{i // 10000:04d}-{i % 10000:04d}"

        def digits(i: int) -> str:
            return f"010{i // 10000:04d}{i % 10000:04d}"

        def intl82(i: int) -> str:
            return f"8210{i // 10000:04d}{i % 10000:04d}"

        def email(i: int) -> str:
            return f"p{i}@example.kr"

        kinds = {
            "id": run(str, exact=True),
            "phone_dashed": run(dashed, exact=True),
            "phone_digits": run(digits, exact=True),
            "phone_82": run(intl82, exact=True),
            "email": run(email, exact=True),
            "full_name_korean": run(lambda i: LAST[i % 5] + FIRST[(i // 10) % 5]),
            "full_name_latin": run(lambda i: f"{FIRST[5 + i % 5]} {LAST[5 + (i // 7) % 5]}"),
            "one_char_prefix": run(lambda i: LAST[i % 5]),
        }
        results = {kind: timed(fn, args.n) for kind, fn in kinds.items()}
        worst = max(r["p95"] for r in results.values())
        naive_terms = [str(picks[0]), dashed(picks[1]), "김지훈"]
        naive = timed(lambda i: wb.search.naive("people", naive_terms[i % 3]), 3)
        fast_p50 = max(r["p50"] for r in results.values())
        target = {
            "where": {
                "aggregate": "sum",
                "relation": "payment",
                "field": "amount",
                "op": "gt",
                "value": 300,
            }
        }
        started = time.perf_counter()
        preview = wb.targets.preview(target, allow_scan=True, cache_ttl=None)
        preview_s = time.perf_counter() - started
        out = write(
            "search",
            {
                "customers": args.rows,
                "searches_per_kind": args.n,
                "load_s": round(load_s, 1),
                "wb.search_ms": results,
                "naive_or_like_ms": naive,
                "speedup_vs_naive_p50": round(naive["p50"] / fast_p50, 1),
                "relation_target_preview": {
                    "definition": target,
                    "seconds": round(preview_s, 3),
                    "count": preview.count,
                    "exact": preview.exact,
                    "verdict": preview.verdict,
                },
                "missed_or_empty": missed,
                "targets": {
                    "search p95 <= 20 ms (every kind)": worst <= 20,
                    ">= 50x the naive OR-LIKE (slowest kind p50)": naive["p50"] / fast_p50 >= 50,
                    "aggregate preview <= 2 s": preview_s <= 2.0,
                },
            },
        )
        print(out.read_text(encoding="utf-8"))
        wb.close()
    finally:
        if account is not None:
            account.__exit__()
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
        admin.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
