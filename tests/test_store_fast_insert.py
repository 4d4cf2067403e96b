"""Full-row batches (the query log's) skip SQLAlchemy's per-row parameter handling on SQLite.

What lands on disk must be byte for byte what SQLAlchemy's own executemany writes (the same
bind processors: the UUID as 32 hex digits, the timestamp's text form), and the count of
rows really inserted must stay right when keys repeat. Oracle: the SQLite file read with
the sqlite3 module, the rows written through `conn.execute(insert, rows)` beside them.
"""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL

from hybridwb.platform import schema
from hybridwb.platform.backend import SqlBackend
from hybridwb.platform.store import Store
from hybridwb.source.querylog import QueryLogEntry


def _store(path: Path) -> Store:
    st = Store(SqlBackend(URL.create("sqlite", database=str(path))), actor="tester")
    st.init(seed=False)
    return st


def _rows(n: int) -> list[dict[str, object]]:
    start = datetime(2026, 12, 4, 21, 5, 9, 123456, tzinfo=UTC)
    return [
        {
            "id": uuid.UUID(int=i + 1),
            "timestamp": start + timedelta(seconds=i, microseconds=i),
            "database": "shop",
            "query": ["SELECT ? FROM t WHERE a LIKE '%?%'", "SELECT 이름 FROM 고객", "SHOW ?"][
                i % 3
            ],
            "execution_time": 0.1 * i,
            "result_count": i,
            "status": "error" if i % 4 == 0 else "success",
            "error_message": "Unknown column ?" if i % 4 == 0 else None,
            "kind": "mysql",
        }
        for i in range(n)
    ]


def _on_disk(path: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT * FROM query_logs ORDER BY id").fetchall()
    finally:
        conn.close()


def test_a_full_row_batch_is_stored_as_sqlalchemy_stores_it(tmp_path: Path) -> None:
    rows = _rows(12)
    fast, plain = _store(tmp_path / "fast.db"), _store(tmp_path / "plain.db")
    try:
        assert fast.backend.insert_ignore("query_logs", rows, ["id"]) == 12
        with plain.backend.engine.begin() as conn:
            conn.execute(sqlite_insert(schema.metadata.tables["query_logs"]), rows)
    finally:
        fast.close()
        plain.close()
    stored = _on_disk(tmp_path / "fast.db")
    assert len(stored) == 12
    assert stored == _on_disk(tmp_path / "plain.db")


def test_a_batch_with_keys_already_stored_counts_only_new_rows(tmp_path: Path) -> None:
    rows = _rows(10)
    st = _store(tmp_path / "p.db")
    try:
        assert st.backend.insert_ignore("query_logs", rows[:4], ["id"]) == 4
        assert st.backend.insert_ignore("query_logs", rows, ["id"]) == 6
    finally:
        st.close()
    assert len(_on_disk(tmp_path / "p.db")) == 10


def test_query_log_entries_read_back_as_written(tmp_path: Path) -> None:
    st = _store(tmp_path / "p.db")
    entries = [
        QueryLogEntry("shop", f"SELECT ? FROM t{i}", 1.5 + i, i, "success") for i in range(7)
    ]
    try:
        st.write_query_logs(entries)
        back = st.backend.select("query_logs", order_by="execution_time")
    finally:
        st.close()
    assert [(r["query"], r["result_count"], r["timestamp"]) for r in back] == [
        (e.query, e.resultCount, e.timestamp.replace(tzinfo=None)) for e in entries
    ]  # SQLite keeps UTC without the zone, whichever way the row was written
