"""Issue 3: bulk send-record insert of 100,000 rows on PostgreSQL vs row-by-row inserts.

Targets: >= 50,000 rows/s and >= 20x row-by-row. Row-by-row is measured on a 2,000-row
sample (one statement and one commit per row) and compared per row.
Run: .venv/bin/python benchmarks/bench_store.py  (writes benchmarks/results/store.json)
"""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import psycopg
from _common import write
from sqlalchemy.engine import URL

from hybridwb.platform.backend import SqlBackend
from hybridwb.platform.store import Store

DB = "hybridwb_bench_store"
ROWS = 100_000
ROW_BY_ROW = 2_000


def main() -> None:
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB}"')
    store = Store(
        SqlBackend(
            URL.create("postgresql+psycopg", username="postgres", host="127.0.0.1", database=DB)
        )
    )
    store.init()
    wf = store.workflows.create(name="bench")

    def records(run_id: uuid.UUID, n: int) -> list[dict]:
        return [
            {
                "run_id": run_id,
                "workflow_id": wf["id"],
                "target_key": str(i),
                "recipient": f"010-{i:04d}-0000",
                "content": f"{i}번 고객님, 안녕하세요. 구독이 곧 만료됩니다.",
            }
            for i in range(n)
        ]

    run = store.runs.create(wf["id"])
    rows = records(run["id"], ROWS)
    started = time.perf_counter()
    inserted = store.runs.add_records(rows)
    bulk_s = time.perf_counter() - started
    assert inserted == ROWS
    started = time.perf_counter()
    again = store.runs.add_records(rows)  # idempotent: all skipped
    rerun_s = time.perf_counter() - started
    assert again == 0

    run2 = store.runs.create(wf["id"])
    sample = [
        {
            **r,
            "id": uuid.uuid4(),
            "channel": "outbox",
            "status": "queued",
            "error": None,
            "created_at": wf["created_at"],
        }
        for r in records(run2["id"], ROW_BY_ROW)
    ]
    started = time.perf_counter()
    store.backend.insert_row_by_row("send_records", sample, ["run_id", "target_key"])
    rbr_s = time.perf_counter() - started

    bulk_rate = ROWS / bulk_s
    rbr_rate = ROW_BY_ROW / rbr_s
    write(
        "store",
        {
            "rows": ROWS,
            "bulk_seconds": round(bulk_s, 3),
            "bulk_rows_per_s": round(bulk_rate),
            "rerun_all_duplicates_seconds": round(rerun_s, 3),
            "row_by_row_rows": ROW_BY_ROW,
            "row_by_row_rows_per_s": round(rbr_rate),
            "speedup": round(bulk_rate / rbr_rate, 1),
            "targets": {
                ">= 50,000 rows/s": bulk_rate >= 50_000,
                ">= 20x row-by-row": bulk_rate / rbr_rate >= 20,
            },
        },
    )
    store.close()


if __name__ == "__main__":
    main()
