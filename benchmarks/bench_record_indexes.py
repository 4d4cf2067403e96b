"""Server CPU per send record COPied, by what the table holds (issue #17).

A campaign run's PostgreSQL cost is mostly its COPY into `send_records` (see
`bench_workflow_statements.py`). This copies the same 5,000-row batches (a run's batch
size) as a run writes them (UUIDv7 ids, one run and workflow, a key, an E.164 phone, a
Korean message, one time) into tables shaped like `send_records`, each with a different
set of the store's indexes, and reads the backend's own CPU from /proc around each batch's
COPY and commit: the table alone, each index alone, all of them (as the store has them)
with the rows in key order (as before), and all of them with each batch in recipient
order (`campaigns.in_recipient_order`). Each repetition copies `--rows` rows into every
table, the order of the tables turning each time; the tables keep their rows, so the
history grows as a store's does (the recipients repeat: one row per customer per run).

On a PostgreSQL server of your own (`initdb`; its port as `--port`, never the shared
5432): the tables are created in its `postgres` database and dropped after.
Run: .venv/bin/python benchmarks/bench_record_indexes.py --port 5499 [--reps 6]
     [--rows 100000] [--out results.json]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg
from _common import load_average, spread, write

from hybridwb.platform.idempotent import timestamptz_text, uuid7_texts

TICK = os.sysconf("SC_CLK_TCK")
BATCH = 5000
COLUMNS = "id, run_id, workflow_id, target_key, recipient, channel, content, status, created_at"
TABLE = """CREATE TABLE {t} (id uuid NOT NULL, run_id uuid NOT NULL, workflow_id uuid NOT NULL,
 target_key text NOT NULL, recipient text, channel varchar(20) NOT NULL, content text,
 status varchar(20) NOT NULL, error text, created_at timestamptz NOT NULL)"""
ID = "ALTER TABLE {t} ADD PRIMARY KEY (id)"
LEGACY = "CREATE INDEX ON {t} (recipient) WHERE recipient ~ '^[0-9]+$'"
RECIPIENT = "CREATE INDEX ON {t} (recipient, created_at)"
RUN_TARGET = "ALTER TABLE {t} ADD UNIQUE (run_id, target_key)"
#: name -> (its indexes, batches in recipient order)
KINDS = {
    "table_alone": ([], False),
    "id_index_alone": ([ID], False),
    "recipient_index_alone": ([RECIPIENT], False),
    "run_target_key_alone": ([RUN_TARGET], False),
    "store_key_order": ([ID, LEGACY, RECIPIENT, RUN_TARGET], False),
    "store_recipient_order": ([ID, LEGACY, RECIPIENT, RUN_TARGET], True),
}
TEXT = "고객님, 골드 회원 전용 혜택이 도착했습니다. 문의: 1588-0000"


def cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def lines(phones: list[str], first: int, ordered: bool) -> str:
    """One batch's COPY text as `Campaigns._copy_batch` writes it."""
    now = datetime.now(UTC)
    run, workflow, at = uuid.uuid4(), uuid.uuid4(), timestamptz_text(now)
    rows = [(str(first + i), p) for i, p in enumerate(phones)]
    if ordered:
        rows.sort(key=lambda r: r[1])
    ids = uuid7_texts(len(rows), now)
    return "".join(
        f"{i}\t{run}\t{workflow}\t{key}\t{phone}\tsms\t{TEXT}\tqueued\t{at}\n"
        for i, (key, phone) in zip(ids, rows, strict=True)
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True, help="a server of your own")
    parser.add_argument("--reps", type=int, default=6)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    if args.port == 5432:
        parser.error("--port: a PostgreSQL server of your own, not the shared one on 5432")
    rnd = random.Random(17)
    phones = [f"+8210{rnd.randrange(10**8):08d}" for _ in range(args.rows)]
    per_row: dict[str, list[float]] = {k: [] for k in KINDS}
    before = load_average()
    dsn = f"host=127.0.0.1 port={args.port} user=postgres dbname=postgres"
    with psycopg.connect(dsn, autocommit=True) as conn:
        names = {k: f"bench_records_{k}_{uuid.uuid4().hex[:6]}" for k in KINDS}
        try:
            for kind, (indexes, _) in KINDS.items():
                conn.execute(TABLE.format(t=names[kind]))  # type: ignore[arg-type]
                for sql in indexes:
                    conn.execute(sql.format(t=names[kind]))  # type: ignore[arg-type]
            pid = conn.info.backend_pid
            conn.autocommit = False
            for rep in range(args.reps):
                for kind in list(KINDS) if rep % 2 == 0 else list(KINDS)[::-1]:
                    spent = 0.0
                    for start in range(0, args.rows, BATCH):
                        text = lines(phones[start : start + BATCH], start + 1, KINDS[kind][1])
                        began = cpu(pid)
                        sql = f"COPY {names[kind]} ({COLUMNS}) FROM STDIN"
                        with conn.cursor().copy(sql) as copy:  # type: ignore[arg-type]
                            copy.write(text)
                        conn.commit()
                        spent += cpu(pid) - began
                    per_row[kind].append(spent / args.rows * 1e6)
        finally:
            conn.rollback()
            conn.autocommit = True
            for name in names.values():
                conn.execute(f"DROP TABLE IF EXISTS {name}")  # type: ignore[arg-type]
    result = {
        "unit": "µs of the backend's CPU per row COPied (5,000-row batches, each committed)",
        "rows_per_rep": args.rows,
        "reps": args.reps,
        "kinds": {k: {"indexes": len(v[0]), "recipient_order": v[1]} for k, v in KINDS.items()},
        "cpu_us_per_row": {k: {**spread(v, 2), "n": len(v)} for k, v in per_row.items()},
        "load_average_before": before,
        "load_average_after": load_average(),
    }
    write("record_indexes", result, Path(args.out) if args.out else None)


if __name__ == "__main__":
    main()
