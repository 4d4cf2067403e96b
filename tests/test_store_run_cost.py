"""What a campaign run costs the PostgreSQL store: plans that do not depend on when
autovacuum ran, statistics of only the columns runs plan with, record ids that grow with
time. Checked on the real server, against its catalog and EXPLAIN (direct SQL)."""

from __future__ import annotations

import uuid
from typing import Any

import _stores
import pytest
from _stores import Oracle, workflow_with_run

from hybridwb.platform.backend import SqlBackend
from hybridwb.platform.campaigns import HISTORY_STATISTICS, Campaigns
from hybridwb.platform.store import Store

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_store(pg_db: Any) -> Any:
    _stores._empty_pg(pg_db)
    st = Store(SqlBackend(pg_db), actor="tester")
    try:
        yield st, Oracle(pg_db)
    finally:
        st.close()


def _forget_statistics(oracle: Oracle, table: str) -> None:
    """The table as autovacuum left it when it has not got to it yet: no statistics."""
    oracle.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
    oracle.execute(f"DELETE FROM pg_statistic WHERE starelid = '{table}'::regclass")


def test_a_fresh_frozen_set_is_read_in_seq_order_from_its_index_without_a_sort(
    pg_store: Any,
) -> None:
    """Without statistics of the frozen set, the pending read (run, seq > after, LIMIT)
    was planned for a table taken for empty: every target after `after` read and sorted,
    per batch. The freeze analyzes the set, so the read takes its first rows from the
    (run_id, seq) index in order, whenever autovacuum comes."""
    st, oracle = pg_store
    try:
        _forget_statistics(oracle, "run_targets")
        _wf, run = workflow_with_run(st)
        c = Campaigns(st.backend)
        c.start_state(run, "host:1", "manual")
        pairs = [(str(k), f"+8210{k:08d}") for k in range(1, 20_001)]
        c.freeze(run, [pairs[i : i + 5000] for i in range(0, len(pairs), 5000)])
        plan = "\n".join(
            line
            for (line,) in oracle.rows(
                "EXPLAIN SELECT seq, target_key, recipient FROM run_targets "
                "WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                str(run),
                5000,
                5000,
            )
        )
        assert "Sort" not in plan, plan
        assert "Index Scan using run_targets_pkey" in plan, plan
    finally:
        oracle.execute("ALTER TABLE run_targets RESET (autovacuum_enabled)")


def test_analyze_history_refreshes_only_the_columns_runs_plan_with(pg_store: Any) -> None:
    st, oracle = pg_store
    try:
        _forget_statistics(oracle, "send_records")
        wf, run = workflow_with_run(st)
        c = Campaigns(st.backend)
        c.start_state(run, "host:1", "manual")
        c.freeze(run, [[(str(k), f"+8210{k:08d}") for k in range(20)]])
        records = [(str(k), f"+8210{k:08d}", "message text") for k in range(20)]
        assert c.write_batch(run, wf, None, records=records, channel="sms", skips=[])
        c.analyze_history()
        analyzed = {
            name
            for (name,) in oracle.rows(
                "SELECT attname FROM pg_stats WHERE tablename = 'send_records'"
            )
        }
        assert analyzed == set(HISTORY_STATISTICS)
    finally:
        oracle.execute("ALTER TABLE send_records RESET (autovacuum_enabled)")


def test_send_record_ids_are_version_7_of_the_time_they_were_written(pg_store: Any) -> None:
    """Time-ordered ids: a batch lands at the right edge of the primary key's index."""
    st, oracle = pg_store
    wf, run = workflow_with_run(st)
    c = Campaigns(st.backend)
    c.start_state(run, "host:1", "manual")
    c.freeze(run, [[(str(k), f"+8210{k:08d}") for k in range(50)]])
    records = [(str(k), f"+8210{k:08d}", "m") for k in range(50)]
    assert c.write_batch(run, wf, None, records=records, channel="sms", skips=[], fresh=True)
    rows = oracle.rows(
        "SELECT id::text, (extract(epoch FROM created_at) * 1000)::bigint FROM send_records"
    )
    assert len(rows) == 50
    ids = [uuid.UUID(i) for i, _ms in rows]
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in ids)
    assert all(abs((u.int >> 80) - ms) <= 1 for u, (_i, ms) in zip(ids, rows, strict=True))


def test_the_history_statistics_describe_its_rows_only_while_every_planned_column_has_them(
    pg_store: Any,
) -> None:
    """What a run's first refresh waits for (`history_statistics_rows`): the rows the last
    ANALYZE saw, while the server holds statistics of every column runs plan with; 0 for a
    history never analyzed, or one whose statistics of a planned column are gone (the
    planner then guesses, and the run refreshes them at its first threshold)."""
    st, oracle = pg_store
    try:
        c = Campaigns(st.backend)
        _forget_statistics(oracle, "send_records")
        assert c.history_statistics_rows() == 0
        wf, run = workflow_with_run(st)
        c.start_state(run, "host:1", "manual")
        c.freeze(run, [[(str(k), f"+8210{k:08d}") for k in range(30)]])
        records = [(str(k), f"+8210{k:08d}", "m") for k in range(30)]
        assert c.write_batch(run, wf, None, records=records, channel="sms", skips=[])
        assert c.history_statistics_rows() == 0  # rows, but no statistics yet
        c.analyze_history()
        assert (
            c.history_statistics_rows()
            == 30
            == oracle.one("SELECT reltuples FROM pg_class WHERE oid = 'send_records'::regclass")
        )
        oracle.execute(
            "DELETE FROM pg_statistic WHERE starelid = 'send_records'::regclass AND staattnum = "
            "(SELECT attnum FROM pg_attribute WHERE attrelid = 'send_records'::regclass "
            "AND attname = 'recipient')"
        )
        assert c.history_statistics_rows() == 0
    finally:
        oracle.execute("ALTER TABLE send_records RESET (autovacuum_enabled)")
