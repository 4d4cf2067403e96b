"""The workbench ties source, store and the QueryLog together."""

from __future__ import annotations

from pathlib import Path

import hybridwb


def test_query_log_reaches_the_store_in_batches(sample_db: Path, tmp_path: Path) -> None:
    (tmp_path / ".hybridwb").mkdir()
    (tmp_path / ".hybridwb" / "sample.db").write_bytes(sample_db.read_bytes())
    wb = hybridwb.connect()
    wb.querylog.batch_size = 3
    store = wb.store  # attaches the store as the log's sink
    for _ in range(4):
        wb.sql("SELECT COUNT(*) FROM customers WHERE grade = 'VIP'")
    stored = store.sql("SELECT query, status FROM query_logs")
    assert len(stored) == 3  # one batch written, one entry pending
    wb.close()
    stored = store.sql("SELECT query, status FROM query_logs")
    assert len(stored) == 4
    assert set(stored["query"]) == {"SELECT COUNT ( * ) FROM customers WHERE grade = ?"}
