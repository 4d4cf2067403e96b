"""A run's state and counters, from the rows: the frozen set, batches of records and
exclusions, pending targets, history for send policies, stale runs and the final status.
On SQLite and PostgreSQL (Campaigns COPies and binds arrays only there); the oracle reads
the tables with the plain driver. The last tests run real (tiny) notebooks."""

from __future__ import annotations

import dataclasses
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import _stores
import nbformat
import pytest
from _stores import Oracle, workflow_with_run

from hybridwb.config import load_settings
from hybridwb.errors import NotFound, ValidationError
from hybridwb.platform import campaigns as campaigns_module
from hybridwb.platform.backend import SqlBackend
from hybridwb.platform.campaigns import (
    Campaigns,
    CapCheck,
    new_run_id,
    this_owner,
    window_start,
)
from hybridwb.platform.store import Store
from hybridwb.workflows import lock
from hybridwb.workflows import runner as runner_module
from hybridwb.workflows.runner import (
    Runner,
    final_status,
    notebook_for,
    slug,
    stale_runs,
    template_text,
    writable_dir,
)

ME = this_owner()
# the shared fixtures (tests/_stores.py): a store on SQLite and PostgreSQL, its oracle
store = _stores.store
oracle = _stores.oracle


def db_time(oracle: Oracle, at: datetime) -> Any:
    """A UTC instant as the store keeps it (SQLite: naive text)."""
    return at if oracle.postgres else at.astimezone(UTC).replace(tzinfo=None).isoformat(" ")


def targets(oracle: Oracle, run: Any) -> list[tuple[Any, ...]]:
    return oracle.rows(
        "SELECT seq, target_key, recipient FROM run_targets WHERE run_id = ? ORDER BY seq",
        oracle.uid(run),
    )


def frozen(store: Store, keys: str = "abcde") -> tuple[Campaigns, Any, Any]:
    wf, run = workflow_with_run(store)
    c = Campaigns(store.backend)
    c.start_state(run, ME, "manual")
    c.freeze(run, [[(k, f"0101234000{i}") for i, k in enumerate(keys)]])
    return c, wf, run


# -- run state -----------------------------------------------------------------------------


def test_run_state_is_started_once_and_set_by_field(store: Store, oracle: Oracle) -> None:
    _wf, run = workflow_with_run(store)
    c = Campaigns(store.backend)
    c.start_state(run, ME, "manual")
    c.start_state(run, "otherhost:1", "schedule")  # a resume keeps the first row
    row = "SELECT owner, trigger, frozen_at, frozen_count, changed_count FROM run_state"
    assert oracle.rows(row) == [(ME, "manual", None, 0, 0)]
    c.set_state(run, frozen_count=7)
    c.set_state(uuid.uuid4(), frozen_count=9)  # another run: nothing
    assert oracle.rows(row) == [(ME, "manual", None, 7, 0)]
    assert c.state(run)["frozen_count"] == 7
    other = uuid.uuid4()
    assert c.state(other) == {"run_id": other, "frozen_at": None}


def test_freeze_keeps_order_drops_repeats_and_marks_the_set(store: Store, oracle: Oracle) -> None:
    _wf, run = workflow_with_run(store)
    c = Campaigns(store.backend)
    c.start_state(run, ME, "manual")
    before = datetime.now(UTC) - timedelta(seconds=5)
    count = c.freeze(run, [[("a", "r1"), ("b", None)], [("c", "r3"), ("a", "again")], []])
    assert count == 3
    assert targets(oracle, run) == [(1, "a", "r1"), (2, "b", None), (3, "c", "r3")]
    state = c.state(run)
    assert state["frozen_count"] == 3
    assert campaigns_module.as_utc(state["frozen_at"]) >= before
    assert c.freeze(run, [[("z", "r9")]]) == 1  # a freeze redone: the old set is gone
    assert targets(oracle, run) == [(1, "z", "r9")]


@pytest.mark.parametrize("prepared", [False, True], ids=["lists", "frozen_pages"])
def test_pages_prepared_where_they_are_read_freeze_what_lists_freeze(
    store: Store, oracle: Oracle, prepared: bool
) -> None:
    """A run's worker makes each page's COPY text where it reads the page
    (`frozen_pages`): frozen that way, awkward keys and recipients (tabs, newlines,
    backslashes, COPY's NULL spelling, quotes, Korean, no recipient), a key repeated on a
    later page (that page written again skipping it, with the text made before) and an
    empty page give the very rows the plain lists give.
    Mutation: the seq numbers from the page's first seq (not after it) → both fail (lists
    are made into the same pages inside `freeze`)."""
    pages = [
        [("a\tb", "r\n1"), ("back\\slash", None), ("\\N", "\\N")],
        [],
        [('q"uote', "김"), ("a\tb", "again"), ("n\nl", "r\r")],
    ]
    _wf, run = workflow_with_run(store)
    c = Campaigns(store.backend)
    c.start_state(run, ME, "manual")
    count = c.freeze(run, c.frozen_pages(run, pages) if prepared else pages)
    assert count == 5
    assert targets(oracle, run) == [
        (1, "a\tb", "r\n1"),
        (2, "back\\slash", None),
        (3, "\\N", "\\N"),
        (4, 'q"uote', "김"),
        (6, "n\nl", "r\r"),
    ]


def test_frozen_pages_of_another_run_or_out_of_order_are_refused(store: Store) -> None:
    """`freeze` stores a prepared page only where it was made to go: this run's, in order.
    Mutation: the check off → fails (the pages are stored under the wrong run or seq)."""
    _wf, run = workflow_with_run(store)
    _wf2, other = workflow_with_run(store, "wf2")
    c = Campaigns(store.backend)
    c.start_state(run, ME, "manual")
    theirs = list(c.frozen_pages(other, [[("a", None)]]))
    with pytest.raises(ValueError, match="this run's, in order"):
        c.freeze(run, theirs)
    skipped = list(c.frozen_pages(run, [[("a", None)], [("b", None)]]))[1:]
    with pytest.raises(ValueError, match="this run's, in order"):
        c.freeze(run, skipped)


def test_freeze_writes_every_chunk(
    store: Store, oracle: Oracle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(campaigns_module, "CHUNK", 2)
    _wf, run = workflow_with_run(store)
    c = Campaigns(store.backend)
    c.start_state(run, ME, "manual")
    assert c.freeze(run, [[(k, None) for k in "abcde"]]) == 5
    assert [k for _, k, _ in targets(oracle, run)] == list("abcde")


def test_freeze_numbers_targets_on_across_batches(store: Store, oracle: Oracle) -> None:
    _wf, run = workflow_with_run(store)
    c = Campaigns(store.backend)
    c.start_state(run, ME, "manual")
    assert c.freeze(run, [[("a", None), ("b", None)], [("c", None)], [("d", None)]]) == 4
    assert [(seq, k) for seq, k, _ in targets(oracle, run)] == [
        (1, "a"),
        (2, "b"),
        (3, "c"),
        (4, "d"),
    ]


def test_a_batch_without_changes_leaves_the_changed_count(store: Store, oracle: Oracle) -> None:
    c, wf, run = frozen(store)
    c.write_batch(run, wf, None, records=[("a", "r", "m")], channel="o", skips=[])
    assert oracle.one("SELECT changed_count FROM run_state") == 0


def test_freeze_of_one_run_leaves_another_runs_set(store: Store, oracle: Oracle) -> None:
    c, wf, run = frozen(store, "ab")
    other = store.runs.create(wf)["id"]
    c.start_state(other, ME, "manual")
    c.freeze(other, [[("x", None)]])
    c.freeze(run, [[("q", None)]])
    assert [k for _, k, _ in targets(oracle, other)] == ["x"]


# -- batches --------------------------------------------------------------------------------


def test_a_batch_writes_records_and_exclusions_once(store: Store, oracle: Oracle) -> None:
    c, wf, run = frozen(store)
    c.acquire(wf, run, ME, 120)
    long_reason = "x" * 250
    args: dict[str, Any] = {
        "records": [("a", "01012340000", "안녕 a"), ("b", None, "안녕 b")],
        "channel": "outbox",
        "skips": [("c", "cooldown"), ("d", long_reason)],
    }
    assert c.write_batch(run, wf, ME, **args, changed=2) is True
    assert c.write_batch(run, wf, ME, **args, changed=1) is True  # a replay: no doubles
    records = oracle.rows(
        "SELECT target_key, recipient, channel, content, status, workflow_id FROM send_records "
        "ORDER BY target_key"
    )
    uid = oracle.uid(wf)
    assert [r[:5] for r in records] == [
        ("a", "01012340000", "outbox", "안녕 a", "queued"),
        ("b", None, "outbox", "안녕 b", "queued"),
    ]
    assert {str(r[5]).replace("-", "") for r in records} == {str(uid).replace("-", "")}
    assert oracle.rows("SELECT target_key, reason FROM run_skips ORDER BY target_key") == [
        ("c", "cooldown"),
        ("d", "x" * 200),
    ]
    # the replay's changed targets are the first write's: counted once (round 30: a batch
    # written again after its commit's reply was lost counted them twice)
    assert oracle.one("SELECT changed_count FROM run_state") == 2


def test_a_batch_of_a_process_that_lost_the_lock_writes_nothing(
    store: Store, oracle: Oracle
) -> None:
    c, wf, run = frozen(store)
    c.acquire(wf, run, "otherhost:1", 120)
    ok = c.write_batch(
        run, wf, ME, records=[("a", "r", "m")], channel="outbox", skips=[("b", "x")], changed=1
    )
    assert ok is False
    assert oracle.one("SELECT COUNT(*) FROM send_records") == 0
    assert oracle.one("SELECT COUNT(*) FROM run_skips") == 0
    assert oracle.one("SELECT changed_count FROM run_state") == 0
    stale = datetime.now(UTC) - timedelta(hours=1)
    oracle.execute("UPDATE run_locks SET heartbeat_at = ?", db_time(oracle, stale))
    assert c.write_batch(run, wf, "otherhost:1", records=[], channel="o", skips=[]) is True
    beat = c.lock(wf)["heartbeat_at"]
    assert campaigns_module.as_utc(beat) > stale + timedelta(minutes=30), "the batch beats"


def test_a_batch_without_owner_is_written_without_a_lock(store: Store, oracle: Oracle) -> None:
    c, wf, run = frozen(store)
    assert c.write_batch(run, wf, None, records=[("a", "r", "m")], channel="o", skips=[])
    assert oracle.one("SELECT COUNT(*) FROM send_records") == 1


def test_a_first_pass_batch_that_meets_an_existing_row_is_written_again_without_doubles(
    store: Store, oracle: Oracle
) -> None:
    c, wf, run = frozen(store)
    c.acquire(wf, run, ME, 120)
    c.write_batch(run, wf, ME, records=[("a", "r", "m")], channel="o", skips=[("c", "x")])
    again = {"records": [("a", "r", "m"), ("b", "r", "m")], "skips": [("c", "x"), ("d", "y")]}
    assert c.write_batch(run, wf, ME, channel="o", fresh=True, **again) is True
    assert oracle.rows("SELECT target_key FROM send_records ORDER BY target_key") == [
        ("a",),
        ("b",),
    ]
    assert oracle.rows("SELECT target_key FROM run_skips ORDER BY target_key") == [("c",), ("d",)]
    assert c.write_batch(run, wf, ME, channel="o", fresh=True, records=[("e", "r", "m")], skips=[])
    assert oracle.one("SELECT COUNT(*) FROM send_records") == 3


def test_a_batch_stamps_its_records_exclusions_and_heartbeat_with_one_time(
    store: Store, oracle: Oracle
) -> None:
    """A batch happens at one instant: its records, its exclusions and the lock's heartbeat
    carry the same time (the store's own column default would give each a later one)."""
    c, wf, run = frozen(store)
    c.acquire(wf, run, ME, 120)
    records, skips = [("a", "r", "m")], [("b", "cooldown"), ("c", "cap")]
    assert c.write_batch(run, wf, ME, records=records, channel="o", skips=skips, fresh=True)
    [beat] = oracle.rows("SELECT heartbeat_at FROM run_locks")
    assert oracle.rows("SELECT DISTINCT created_at FROM send_records") == [beat]
    assert oracle.rows("SELECT DISTINCT created_at FROM run_skips") == [beat]
    # a rewrite (not a first pass) stamps its own new rows the same way
    assert c.write_batch(run, wf, ME, records=[], channel="o", skips=[("d", "x"), ("b", "y")])
    [beat] = oracle.rows("SELECT heartbeat_at FROM run_locks")
    assert oracle.rows("SELECT created_at FROM run_skips WHERE target_key = 'd'") == [beat]


@pytest.mark.postgres
def test_a_first_pass_copies_its_rows_straight_into_their_tables(pg_db: Any) -> None:
    """On PostgreSQL a run's first pass COPies records and exclusions into their tables (no
    staging table and INSERT ... ON CONFLICT); a batch that meets an existing key is written
    again through the staging table, skipping it. The server tells which statement wrote
    each row: a trigger notes `current_query()` for every row that arrives."""
    _stores._empty_pg(pg_db)
    oracle = Oracle(pg_db)
    oracle.execute(
        "CREATE TABLE arrivals (tbl text, target_key text, query text);"
        "CREATE FUNCTION note_arrival() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "INSERT INTO arrivals VALUES (TG_TABLE_NAME, NEW.target_key, current_query()); "
        "RETURN NEW; END $$;"
        "CREATE TRIGGER arrival AFTER INSERT ON send_records "
        "FOR EACH ROW EXECUTE FUNCTION note_arrival();"
        "CREATE TRIGGER arrival AFTER INSERT ON run_skips "
        "FOR EACH ROW EXECUTE FUNCTION note_arrival();"
    )
    st = Store(SqlBackend(pg_db), actor="tester")
    try:
        c, wf, run = frozen(st)
        c.acquire(wf, run, ME, 120)
        first = {"records": [("a", "r", "m"), ("b", "r", "m")], "skips": [("c", "x")]}
        assert c.write_batch(run, wf, ME, channel="o", fresh=True, **first)
        again = {"records": [("a", "r", "m"), ("d", "r", "m")], "skips": [("e", "y")]}
        assert c.write_batch(run, wf, ME, channel="o", fresh=True, **again)

        def how(query: str) -> str:
            return "copy" if query.startswith("COPY ") else query.split(" SELECT ")[0]

        arrived = oracle.rows("SELECT tbl, target_key, query FROM arrivals ORDER BY 2")
        assert [(t, k, how(q)) for t, k, q in arrived] == [
            ("send_records", "a", "copy"),
            ("send_records", "b", "copy"),
            ("run_skips", "c", "copy"),
            (
                "send_records",
                "d",
                "INSERT INTO send_records (id, run_id, workflow_id, "
                "target_key, recipient, channel, content, status, created_at)",
            ),
            ("run_skips", "e", "INSERT INTO run_skips (run_id, target_key, reason, created_at)"),
        ]
        assert all('COPY "_load_' not in q for t, k, q in arrived[:3])
    finally:
        st.close()
        oracle.execute(
            "DROP TRIGGER arrival ON send_records; DROP TRIGGER arrival ON run_skips;"
            "DROP FUNCTION note_arrival(); DROP TABLE arrivals"
        )


def test_a_cap_check_is_a_fixed_value_and_a_sql_store_writes_the_batch_as_given(
    store: Store, oracle: Oracle
) -> None:
    """The cap a batch carries to a store that checks it again (REST) cannot change on the
    way (the chunks of one batch share it); a SQL store holds `recipient_lock` across check
    and write instead, so it writes the batch as given."""
    cap = CapCheck("hybridwb:recipients:o", 1, datetime.now(UTC), "frequency cap", {"r": "r"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cap.messages = 2  # type: ignore[misc]
    c, wf, run = frozen(store)
    c.write_batch(run, wf, None, records=[("a", "r", "m")], channel="o", skips=[])
    assert c.write_batch(run, wf, None, records=[("b", "r", "m")], channel="o", skips=[], cap=cap)
    assert oracle.rows("SELECT target_key FROM send_records ORDER BY 1") == [("a",), ("b",)]


@pytest.mark.postgres
def test_analyze_history_refreshes_the_planners_statistics_of_the_send_history(
    pg_db: Any,
) -> None:
    """The server's own statistics view counts one more ANALYZE of send_records."""
    _stores._empty_pg(pg_db)
    oracle = Oracle(pg_db)

    def analyzed() -> int:
        return int(
            oracle.one(
                "SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'send_records'"
            )
        )

    st = Store(SqlBackend(pg_db), actor="tester")
    try:
        before = analyzed()
        Campaigns(st.backend).analyze_history()
        deadline = time.monotonic() + 30  # the statistics view is updated asynchronously
        while analyzed() == before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert analyzed() == before + 1
    finally:
        st.close()


def test_records_are_written_in_chunks(
    store: Store, oracle: Oracle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(campaigns_module, "CHUNK", 2)
    c, wf, run = frozen(store)
    records = [(k, None, "m") for k in "abcde"]
    assert c.write_batch(run, wf, None, records=records, channel="o", skips=[])
    assert oracle.one("SELECT COUNT(*) FROM send_records") == 5


# -- pending, exclusions, counts -------------------------------------------------------------


def test_pending_reads_frozen_targets_after_a_seq_without_done_ones(store: Store) -> None:
    c, wf, run = frozen(store)
    c.write_batch(run, wf, None, records=[("b", "r", "m")], channel="o", skips=[("d", "x")])
    rows, last = c.pending(run, 0, 3)
    assert [(r["seq"], r["target_key"]) for r in rows] == [(1, "a"), (3, "c")] and last == 3
    assert rows[0]["recipient"] == "01012340000"
    rows, last = c.pending(run, 3, 3)
    assert [r["target_key"] for r in rows] == ["e"] and last == 5
    assert c.pending(run, 5, 3) == ([], 5)
    rows, last = c.pending(run, 0, 3, check_done=False)
    assert [r["target_key"] for r in rows] == ["a", "b", "c"] and last == 3
    assert c.pending(uuid.uuid4(), 0, 3) == ([], 0)


def test_pending_leaves_out_a_done_target_at_either_end_of_the_range(store: Store) -> None:
    c, wf, run = frozen(store)
    c.write_batch(run, wf, None, records=[("c", "r", "m")], channel="o", skips=[("d", "x")])
    rows, last = c.pending(run, 0, 3)  # seqs 1-3: c, the last, is done
    assert [r["target_key"] for r in rows] == ["a", "b"] and last == 3
    rows, last = c.pending(run, 3, 1)  # seq 4 alone: d, first and last, is excluded
    assert rows == [] and last == 4


def test_pending_of_a_run_ignores_another_runs_records(store: Store) -> None:
    c, wf, run = frozen(store, "ab")
    other = store.runs.create(wf)["id"]
    c.freeze(other, [[("a", None), ("b", None)]])
    c.write_batch(other, wf, None, records=[("a", "r", "m")], channel="o", skips=[("b", "x")])
    rows, _ = c.pending(run, 0, 10)
    assert [r["target_key"] for r in rows] == ["a", "b"]


def test_exclusions_are_in_frozen_order_with_the_frozen_recipient(store: Store) -> None:
    c, wf, run = frozen(store)
    c.write_batch(run, wf, None, records=[], channel="o", skips=[("e", "cap"), ("b", "cool")])
    assert c.exclusions(run) == [
        {"target_key": "b", "recipient": "01012340001", "reason": "cool"},
        {"target_key": "e", "recipient": "01012340004", "reason": "cap"},
    ]
    assert [e["target_key"] for e in c.exclusions(run, limit=1)] == ["b"]


def test_exclusions_are_read_up_to_ten_thousand_by_default(store: Store) -> None:
    keys = [f"k{i:05d}" for i in range(10_001)]
    wf, run = workflow_with_run(store)
    c = Campaigns(store.backend)
    c.start_state(run, ME, "manual")
    c.freeze(run, [[(k, None) for k in keys]])
    c.write_batch(run, wf, None, records=[], channel="o", skips=[(k, "cap") for k in keys])
    got = c.exclusions(run)
    assert len(got) == 10_000 and got[-1]["target_key"] == "k09999"


def test_clear_skips_forgets_one_reason_of_one_run(store: Store, oracle: Oracle) -> None:
    c, wf, run = frozen(store)
    other = store.runs.create(wf)["id"]
    c.freeze(other, [[("a", None)]])
    c.write_batch(run, wf, None, records=[], channel="o", skips=[("a", "quiet"), ("b", "cap")])
    c.write_batch(other, wf, None, records=[], channel="o", skips=[("a", "quiet")])
    c.clear_skips(run, "quiet")
    assert sorted(oracle.rows("SELECT target_key, reason FROM run_skips")) == [
        ("a", "quiet"),
        ("b", "cap"),
    ]
    assert [e["target_key"] for e in c.exclusions(other)] == ["a"]


def test_counts_come_from_the_rows(store: Store) -> None:
    c, wf, run = frozen(store)
    assert c.counts(run) == {
        "targets": 5,
        "records": 0,
        "skipped": 0,
        "skipped_by_reason": {},
        "pending": 5,
    }
    skips = [("b", "cap"), ("c", "cap"), ("d", "no recipient")]
    c.write_batch(run, wf, None, records=[("a", "r", "m")], channel="o", skips=skips)
    assert c.counts(run) == {
        "targets": 5,
        "records": 1,
        "skipped": 3,
        "skipped_by_reason": {"cap": 2, "no recipient": 1},
        "pending": 1,
    }
    c.freeze(run, [[("a", None)]])  # fewer targets than rows done: never negative
    assert c.counts(run)["pending"] == 0


def test_counts_are_of_the_one_run_never_another_runs_rows(store: Store) -> None:
    """Rows of an earlier run of the same workflow and of another workflow's run sit in the
    same tables; a run's counters never include them."""
    c, wf, run = frozen(store, "ab")
    earlier = store.runs.create(wf)["id"]
    c.start_state(earlier, ME, "manual")
    c.freeze(earlier, [[(k, f"0109999000{i}") for i, k in enumerate("abcdef")]])
    c.write_batch(
        earlier,
        wf,
        None,
        records=[("a", "r", "m"), ("b", "r", "m")],
        channel="o",
        skips=[("c", "cap")],
    )
    _other_wf, other = workflow_with_run(store, "other")
    c.start_state(other, ME, "manual")
    c.freeze(other, [[("x", "01012340000"), ("y", None)]])
    c.write_batch(
        other,
        _other_wf,
        None,
        records=[("x", "r", "m")],
        channel="o",
        skips=[("y", "no recipient")],
    )
    c.write_batch(run, wf, None, records=[("a", "r", "m")], channel="o", skips=[])
    assert c.counts(run) == {
        "targets": 2,
        "records": 1,
        "skipped": 0,
        "skipped_by_reason": {},
        "pending": 1,
    }
    assert c.counts(earlier)["records"] == 2 and c.counts(other)["skipped"] == 1


# -- history for send policies ---------------------------------------------------------------


@pytest.mark.parametrize("chunk", [5000, 1])
def test_seen_adds_up_history_per_recipient(
    store: Store, oracle: Oracle, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(campaigns_module, "CHUNK", chunk)
    c = Campaigns(store.backend)
    a, r1 = workflow_with_run(store, "a")
    r2 = store.runs.create(a)["id"]
    b, r3 = workflow_with_run(store, "b")
    now = datetime.now(UTC)
    history = [
        (r1, a, "p1", now - timedelta(days=10)),
        (r1, a, "p2", now - timedelta(days=1)),
        (r2, a, "p1", now),
        (r3, b, "p1", now - timedelta(days=2)),
        (r3, b, "p3", now - timedelta(days=40)),
    ]
    for i, (run, wf, who, at) in enumerate(history):
        c.write_batch(run, wf, None, records=[(f"k{i}", who, "m")], channel="o", skips=[])
        oracle.execute(
            "UPDATE send_records SET created_at = ? WHERE target_key = ?",
            db_time(oracle, at),
            f"k{i}",
        )
    who = ["p1", "p2", "p3", "p4"]
    got = c.seen(who, a, r2, now - timedelta(days=5), now - timedelta(days=3))
    assert sorted(got) == [("p1", 1, 1, 0, 2), ("p2", 0, 1, 1, 1)]
    assert sorted(c.seen(who, a, r2, None, None)) == [("p1", 1, 1, 0, 0), ("p2", 0, 1, 0, 0)]
    naive_cap = (now - timedelta(days=50)).replace(tzinfo=None)  # a naive time is UTC
    assert sorted(c.seen(who, b, r3, None, naive_cap)) == [
        ("p1", 1, 0, 0, 3),
        ("p2", 0, 0, 0, 1),
        ("p3", 1, 0, 0, 1),
    ]
    assert sorted(c.seen(who, a, r2, now - timedelta(days=50), None)) == [
        ("p1", 1, 1, 1, 0),
        ("p2", 0, 1, 1, 0),
        ("p3", 0, 0, 0, 0),
    ]
    assert c.seen([], a, r2, None, None) == []


def test_seen_counts_a_record_made_exactly_at_the_window_start(
    store: Store, oracle: Oracle
) -> None:
    """The windows include their start: a record of another workflow made at the very
    instant the cap window (or the cool-down) opens counts."""
    c = Campaigns(store.backend)
    a, r1 = workflow_with_run(store, "a")
    b, r2 = workflow_with_run(store, "b")
    start = datetime(2026, 3, 1, 9, 0, 0, 123456, tzinfo=UTC)
    c.write_batch(r2, b, None, records=[("k", "p5", "m")], channel="o", skips=[])
    oracle.execute("UPDATE send_records SET created_at = ?", db_time(oracle, start))
    assert c.seen(["p5"], a, r1, None, start) == [("p5", 0, 0, 0, 1)]
    assert c.seen(["p5"], a, r1, None, start + timedelta(microseconds=1)) == []
    assert c.seen(["p5"], b, r1, start, None) == [("p5", 0, 1, 1, 0)]


def test_window_start_and_run_ids() -> None:
    at = datetime(2026, 3, 1, 12, 0)
    assert window_start(at, None) is None and window_start(at, 0) is None
    assert window_start(at, 2) == datetime(2026, 2, 27, 12, 0, tzinfo=UTC)
    assert window_start(at, 0.5) == datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
    first, second = new_run_id(), new_run_id()
    assert first != second and first.version == 4 and isinstance(first, uuid.UUID)


# -- the runner's view: stale runs, final status, finishing ----------------------------------


@pytest.mark.parametrize(("age", "stale"), [(119.0, False), (120.6, True)])
def test_a_heartbeat_silent_past_two_minutes_makes_a_run_stale_by_default(
    store: Store, oracle: Oracle, tmp_path: Path, age: float, stale: bool
) -> None:
    """The default threshold is 120 s (a holder on another host is never presumed dead)."""
    wf, run = workflow_with_run(store)
    store.runs.update(run, status="running")
    Campaigns(store.backend).acquire(wf, run, "otherhost:9", 120)
    oracle.execute(
        "UPDATE run_locks SET heartbeat_at = ?",
        db_time(oracle, datetime.now(UTC) - timedelta(seconds=age)),
    )
    marked = Runner(load_settings(tmp_path, {}), store).mark_stale()
    assert [str(r["id"]) for r in marked] == ([str(run)] if stale else [])
    assert oracle.one("SELECT status FROM workflow_runs") == ("stale" if stale else "running")


def test_stale_runs_are_active_runs_without_a_live_lock(store: Store, oracle: Oracle) -> None:
    c = Campaigns(store.backend)
    wf = store.workflows.create(name="wf")["id"]
    other = store.workflows.create(name="other")["id"]
    # "old" is the other workflow's: a lock names a run of its own workflow (0009)
    runs = {
        name: store.runs.create(other if name == "old" else wf)["id"]
        for name in ("live", "lost", "old", "was", "done")
    }
    for name, status in [
        ("live", "running"),
        ("lost", "running"),
        ("old", "queued"),
        ("was", "stale"),
        ("done", "failed"),
    ]:
        store.runs.update(runs[name], status=status)
    c.acquire(wf, runs["live"], ME, 120)
    c.acquire(other, runs["old"], "otherhost:1", 120)
    oracle.execute(
        "UPDATE run_locks SET heartbeat_at = ? WHERE workflow_id = ?",
        db_time(oracle, datetime.now(UTC) - timedelta(seconds=300)),
        oracle.uid(other),
    )
    expected = {str(runs[n]) for n in ("lost", "old", "was")}
    assert {str(r["id"]) for r in stale_runs(store, 120)} == expected
    # a run marked stale stays stale even if a live lock names it (it is resumed, not revived)
    c.release(wf, runs["live"])
    c.acquire(wf, runs["was"], ME, 120)
    revived = {str(runs[n]) for n in ("live", "lost", "old", "was")}
    assert {str(r["id"]) for r in stale_runs(store, 120)} == revived
    c.release(wf, runs["was"])
    c.acquire(wf, runs["live"], ME, 120)
    assert {str(r["id"]) for r in stale_runs(store, 600)} == {str(runs[n]) for n in ("lost", "was")}
    marked = Runner(load_settings(Path.cwd(), {}), store).mark_stale(120)
    assert {str(r["id"]) for r in marked} == expected
    statuses = {str(uuid.UUID(str(i))): (s, e) for i, s, e in oracle.rows(
        "SELECT id, status, error FROM workflow_runs")}  # fmt: skip
    for name in ("lost", "old", "was"):
        rid = str(runs[name])
        assert statuses[rid] == (
            "stale",
            f"its heartbeat stopped; resume with: hybridwb run --resume {rid}",
        )
    assert statuses[str(runs["live"])][0] == "running"
    assert statuses[str(runs["done"])][0] == "failed"


def _counts(targets: int, records: int, skipped: int, **reasons: int) -> dict[str, Any]:
    return {
        "targets": targets,
        "records": records,
        "skipped": skipped,
        "skipped_by_reason": reasons,
        "pending": max(0, targets - records - skipped),
    }


@pytest.mark.parametrize(
    ("counts", "error", "dry", "stats", "expected"),
    [
        (_counts(3, 3, 0), None, False, {}, ("succeeded", None)),
        (_counts(3, 2, 1, cap=1), None, False, {}, ("succeeded", None)),
        (
            _counts(1200, 0, 1200, cap=1000, cooldown=200),
            None,
            False,
            {},
            ("empty", "all 1,200 targets were excluded (cap 1,000, cooldown 200); nothing to send"),
        ),
        (
            _counts(0, 0, 0),
            None,
            False,
            {},
            ("empty", "no targets matched the workflow's target definition"),
        ),
        (
            _counts(2000, 4, 0),
            None,
            False,
            {},
            ("failed", "1,996 frozen targets were not processed; resume the run"),
        ),
        (
            _counts(2000, 4, 0),
            None,
            False,
            {"waiting": 1996},
            (
                "waiting",
                "1,996 targets wait for 08:00 KST (no night-time consent); resume with: "
                "hybridwb run --resume R after then",
            ),
        ),
        (
            _counts(10, 0, 0),
            None,
            False,
            {"waiting": 0},
            ("failed", "10 frozen targets were not processed; resume the run"),
        ),
        (_counts(5, 5, 0), "DeadKernelError: x", False, {}, ("failed", "DeadKernelError: x")),
        (_counts(5, 0, 0), None, True, {}, ("succeeded", None)),
        (
            _counts(5, 0, 0),
            None,
            True,
            {"waiting": 5},
            (
                "waiting",
                "5 targets wait for 08:00 KST (no night-time consent); resume with: "
                "hybridwb run --resume R after then",
            ),
        ),
        (_counts(0, 0, 0), None, True, {}, ("succeeded", None)),
    ],
    ids=[
        "all-sent",
        "some-excluded",
        "all-excluded",
        "no-targets",
        "unfinished",
        "quiet-hours",
        "pending-not-waiting",
        "error-wins",
        "dry-run",
        "dry-run-waiting",
        "dry-run-empty",
    ],
)
def test_final_status_and_reason(
    counts: dict[str, Any], error: str | None, dry: bool, stats: dict[str, Any], expected: Any
) -> None:
    assert final_status(counts, error, dry, {"id": "R", "stats": stats}) == expected


def test_finishing_writes_status_and_counters_from_the_rows_and_frees_the_lock(
    store: Store, oracle: Oracle, tmp_path: Path
) -> None:
    c, wf, run = frozen(store)
    c.acquire(wf, run, ME, 120)
    c.write_batch(run, wf, ME, records=[("a", "r", "m"), ("b", "r", "m")], channel="o",
                  skips=[("c", "cap")])  # fmt: skip
    runner = Runner(load_settings(tmp_path, {}), store)
    html = tmp_path / "r.html"
    wf_row = store.workflows.get(wf)
    final = runner._finish(wf_row, store.runs.get(run), None, html, "manual", False)
    row = oracle.rows(
        "SELECT status, error, target_count, sent_count, skipped_count, report_path, "
        "finished_at FROM workflow_runs"
    )[0]
    assert row[:6] == (
        "failed",
        "2 frozen targets were not processed; resume the run",
        5,
        2,
        1,
        str(html),
    )
    assert row[6] is not None and final["status"] == "failed"
    assert oracle.one("SELECT COUNT(*) FROM run_locks") == 0
    assert '<b class="status">failed</b>' in html.read_text(encoding="utf-8")
    c.acquire(wf, run, ME, 120)
    c.write_batch(run, wf, ME, records=[("d", "r", "m")], channel="o", skips=[("e", "cap")])
    final = runner._finish(wf_row, store.runs.get(run), None, html, "manual", False)
    assert oracle.rows("SELECT status, error, sent_count, skipped_count FROM workflow_runs") == [
        ("succeeded", None, 3, 2)
    ]
    final = runner._finish(
        wf_row, store.runs.get(run), "ValueError: boom (cell 2)", html, "manual", False
    )
    assert oracle.rows("SELECT status, error FROM workflow_runs") == [
        ("failed", "ValueError: boom (cell 2)")
    ]
    assert final["error"] == "ValueError: boom (cell 2)"


def test_a_report_that_cannot_be_written_is_said_and_the_status_stands(
    store: Store, oracle: Oracle, tmp_path: Path
) -> None:
    c, wf, run = frozen(store, "a")
    c.write_batch(run, wf, None, records=[("a", "r", "m")], channel="o", skips=[])
    html = tmp_path / "missing-dir" / "r.html"
    final = Runner(load_settings(tmp_path, {}), store)._finish(
        store.workflows.get(wf), store.runs.get(run), None, html, "manual", False
    )
    assert (
        final["report_error"] == "the HTML report could not be written (No such file or directory)"
    )
    assert oracle.one("SELECT status FROM workflow_runs") == "succeeded"


def test_template_text_is_the_library_template_or_the_workflows_own(store: Store) -> None:
    store.templates.create(name="t1", content="#{이름}님 안녕하세요")
    assert template_text(store, {"message_config": {"template": "t1"}}) == "#{이름}님 안녕하세요"
    assert template_text(store, {"message_config": {"content": "직접 쓴 글"}}) == "직접 쓴 글"
    assert template_text(store, {"message_config": {"content": ""}}) == ""


def test_the_heartbeat_thread_beats_until_stopped(
    store: Store, oracle: Oracle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lock, "BEAT_EVERY_S", 0.05)
    c = Campaigns(store.backend)
    wf, run = uuid.uuid4(), uuid.uuid4()
    c.acquire(wf, run, ME, 120)
    old = datetime.now(UTC) - timedelta(hours=1)
    oracle.execute("UPDATE run_locks SET heartbeat_at = ?", db_time(oracle, old))
    beat = lock.Heartbeat(c, wf, run, ME)
    beat.start()
    deadline = time.monotonic() + 10
    while campaigns_module.is_stale(c.lock(wf), datetime.now(UTC), 60):
        assert time.monotonic() < deadline, "no beat within 10 s"
        time.sleep(0.05)
    beat.stop()
    assert not beat.is_alive() and beat.daemon and beat.name == "hybridwb-heartbeat"
    oracle.execute("UPDATE run_locks SET heartbeat_at = ?", db_time(oracle, old))
    time.sleep(0.3)
    assert campaigns_module.is_stale(c.lock(wf), datetime.now(UTC), 60), "it beat after stop"


# -- pure helpers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("welcome", "welcome"),
        (" 봄 세일 2026 ", "봄-세일-2026"),
        ("a/b\\c:d", "a-b-c-d"),
        ("keep_under-score", "keep_under-score"),
        ("--x--", "x"),
        ("///", "workflow"),
        ("X-mas sale X", "X-mas-sale-X"),
        ("", "workflow"),
    ],
    ids=[
        "plain",
        "korean-and-spaces",
        "separators",
        "underscore",
        "edges",
        "only-slashes",
        "x-at-the-edges",
        "empty",
    ],
)
def test_slug(name: str, expected: str) -> None:
    assert slug(name) == expected


def test_notebook_for_prefers_the_workflows_then_the_folder_then_the_packaged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = tmp_path / "own.ipynb"
    own.write_text("{}")
    folder = tmp_path / "wfs"
    folder.mkdir()
    assert notebook_for({"notebook": str(own)}, folder) == own
    assert notebook_for({"notebook": "own.ipynb"}, folder) == own  # relative to the cwd
    packaged = Path(runner_module.__file__).resolve().parent / "notebooks" / "campaign.ipynb"
    assert notebook_for({"notebook": "gone.ipynb"}, folder) == packaged
    (folder / "campaign.ipynb").write_text("{}")
    assert notebook_for({}, folder) == folder / "campaign.ipynb"
    monkeypatch.setattr(runner_module, "DEFAULT_NOTEBOOK", "nothing.ipynb")
    with pytest.raises(NotFound) as caught:
        notebook_for({"notebook": "gone.ipynb"}, folder)
    assert str(caught.value) == (
        "No workflow notebook found (looked for gone.ipynb); set the workflow's notebook or "
        "HYBRIDWB_WORKFLOWS."
    )


def test_writable_dir_makes_the_folder_and_leaves_no_probe(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b"
    writable_dir(target)
    assert target.is_dir() and list(target.iterdir()) == []
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ValidationError) as caught:
        writable_dir(blocker / "reports")
    assert str(caught.value) == (
        f"The reports directory {blocker / 'reports'} is not writable (Not a directory); free "
        "space or fix its permissions (HYBRIDWB_REPORTS), then run again."
    )
    assert caught.value.__cause__ is None


# -- real runs of tiny notebooks (SQLite store) -----------------------------------------------


def tiny_notebook(path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Py"}
    nb.metadata["language_info"] = {"name": "python"}
    params = nbformat.v4.new_code_cell("workflow = run_id = owner = now = limit = None")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, *(nbformat.v4.new_code_cell(s) for s in sources)]
    nbformat.write(nb, path)
    return path


@pytest.fixture
def sqlite_runner(tmp_path: Path) -> Any:
    from _stores import migrated_sqlite

    from hybridwb.platform.backend import SqlBackend

    st = Store(SqlBackend(migrated_sqlite(tmp_path / "platform.db")))
    yield Runner(load_settings(tmp_path, {}), st), Oracle(st.backend.url)
    st.close()


def test_a_run_records_its_parameters_state_and_final_status(
    sqlite_runner: Any, tmp_path: Path
) -> None:
    runner, oracle = sqlite_runner
    nb = tiny_notebook(tmp_path / "n.ipynb", "x = 1")
    wf = runner.store.workflows.create(name="tiny run", notebook=str(nb))
    at = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    final = runner.run("tiny run", {"greeting": "hi"}, limit=3, now=at, progress=False,
                       trigger="schedule")  # fmt: skip
    run = final["id"]
    assert final["status"] == "empty"
    assert oracle.rows("SELECT status, error, dry_run FROM workflow_runs") == [
        ("empty", "no targets matched the workflow's target definition", 0)
    ]
    [(owner, trigger)] = oracle.rows("SELECT owner, trigger FROM run_state")
    assert owner.startswith(f"{ME}#") and trigger == "schedule"  # this run's own owner
    assert oracle.one("SELECT COUNT(*) FROM run_locks") == 0
    executed = nbformat.read(tmp_path / "reports" / "tiny-run" / f"{run}.ipynb", as_version=4)
    injected = next(
        c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])
    )
    for line in (
        'greeting = "hi"',
        f'workflow = "{wf["id"]}"',
        f'run_id = "{run}"',
        f'owner = "{owner}"',
        "dry_run = False",
        "limit = 3",
        'now = "2026-03-01T09:00:00+00:00"',
    ):
        assert line in injected.source, line
    assert (tmp_path / "reports" / "tiny-run" / f"{run}.html").is_file()
    assert runner.store.runs.get(run)["parameters"] == {"greeting": "hi", "limit": 3}


def test_a_failing_cell_fails_the_run_and_a_resume_finishes_it(
    sqlite_runner: Any, tmp_path: Path
) -> None:
    runner, oracle = sqlite_runner
    nb = tiny_notebook(tmp_path / "n.ipynb", "raise ValueError('boom')")
    runner.store.workflows.create(name="w", notebook=str(nb))
    failed = runner.run("w", {"greeting": "hi"}, limit=2, progress=False)
    assert failed["status"] == "failed" and failed["error"] == "ValueError: boom (cell 3)"
    assert oracle.one("SELECT COUNT(*) FROM run_locks") == 0
    tiny_notebook(nb, "assert limit == 2 and greeting == 'hi'")
    resumed = runner.run(None, resume=failed["id"], progress=False)
    assert resumed["id"] == failed["id"] and resumed["status"] == "empty", resumed["error"]
    assert oracle.rows("SELECT status FROM workflow_runs") == [("empty",)]
    assert oracle.one("SELECT COUNT(*) FROM run_locks") == 0
