"""The per-batch reads of the send history (`Campaigns.legacy_recipients`, `Campaigns.seen`)
on PostgreSQL: what they find, and how the server is asked.

The oracle is the server itself, through psycopg (the plan it chooses, the array it reads
back, the rows inserted by direct SQL), never the store code under test.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import URL

from hybridwb.platform.backend import SqlBackend
from hybridwb.platform.campaigns import Campaigns, text_array
from hybridwb.platform.schema import LEGACY_RECIPIENT_INDEX
from hybridwb.platform.store import Store
from tests._stores import fresh_pg_database

pytestmark = pytest.mark.postgres

#: recipients a literal could misread: quotes, backslashes, commas, braces, spaces, the
#: word NULL, an empty string, Korean, control characters, COPY's null marker
AWKWARD = [
    'a"b',
    "back\\slash",
    "c,d",
    "{braced}",
    "}",
    "{",
    " spaced out ",
    "NULL",
    "null",
    "",
    "김민수 010-1234-5678",
    '\\"',
    '"',
    "ends\\",
    "tab\there",
    "new\nline",
    "\\N",
    "+821012345678",
]


@pytest.fixture
def fresh_store() -> Iterator[Store]:
    """A store in a database of its own: no column statistics from any earlier test."""
    for url in fresh_pg_database("hybridwb_h", migrated=True):
        st = Store(SqlBackend(url), actor="tester")
        st.init(seed=False)
        yield st
        st.close()


def _connect(url: URL) -> psycopg.Connection:
    return psycopg.connect(f"host=127.0.0.1 user=postgres dbname={url.database}", autocommit=True)


def _add_records(url: URL, recipients: list[str], *, run: str, workflow: str) -> None:
    with _connect(url) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO send_records (id, run_id, workflow_id, target_key, recipient, channel,"
            " content, status, created_at) VALUES (%s, %s, %s, %s, %s, 'sms', 'x', 'queued',"
            " now())",
            [(uuid.uuid4(), run, workflow, str(i), r) for i, r in enumerate(recipients)],
        )


def test_the_array_literal_is_read_back_by_the_server_as_the_very_texts() -> None:
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres") as conn:
        got = conn.execute("SELECT %s::text[]", (text_array(AWKWARD),)).fetchone()
        empty = conn.execute("SELECT %s::text[]", (text_array([]),)).fetchone()
    assert got is not None and got[0] == AWKWARD
    assert empty is not None and empty[0] == []


@pytest.mark.parametrize(
    "texts",
    [["plain", 'a"quote'], ["plain", "back\\slash"], ['"'], ["\\"], ["one"], ["a", "b", "c"]],
    ids=["a quote alone", "a backslash alone", "only a quote", "only a backslash", "one", "three"],
)
def test_each_character_to_escape_on_its_own_is_escaped(texts: list[str]) -> None:
    """The literal is one join when no element needs escaping: a quote with no backslash
    in the batch, or a backslash with no quote, must each still be escaped."""
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres") as conn:
        got = conn.execute("SELECT %s::text[]", (text_array(texts),)).fetchone()
    assert got is not None and got[0] == texts


def test_history_of_awkward_recipients_is_found_by_their_exact_text(fresh_store: Store) -> None:
    url = fresh_store.backend.url
    workflow, run, now_run = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    _add_records(url, AWKWARD, run=run, workflow=workflow)
    # near misses that a loose reading of the literal would match, and repeats (one row each)
    probes = [*AWKWARD, "a", "b", "back", "slash", "c", "d", "braced", "spaced out", "N"]
    probes += AWKWARD[:4]
    got = Campaigns(fresh_store.backend).seen(probes, workflow, now_run, None, None)
    assert sorted(got) == sorted((r, 0, 1, 0, 0) for r in AWKWARD)


def test_the_legacy_check_reads_its_partial_index_on_a_history_without_statistics(
    fresh_store: Store,
) -> None:
    """The run's first pass on a new store: the history was empty when last analyzed (no
    statistics of its recipients) and has grown by the run's own batches since."""
    url = fresh_store.backend.url
    workflow, run = str(uuid.uuid4()), str(uuid.uuid4())
    with _connect(url) as conn:
        conn.execute("VACUUM ANALYZE send_records")
        conn.execute(
            "INSERT INTO send_records (id, run_id, workflow_id, target_key, recipient, channel,"
            " content, status, created_at) SELECT gen_random_uuid(), %s, %s, g::text,"
            " '+8210' || lpad(g::text, 8, '0'), 'sms', 'x', 'queued', now()"
            " FROM generate_series(1, 20000) g",
            (run, workflow),
        )
        assert conn.execute(
            "SELECT count(*) FROM pg_stats WHERE tablename = 'send_records'"
        ).fetchone() == (0,)
        campaigns = Campaigns(fresh_store.backend)
        sql = str(
            campaigns.legacy_statement().compile(
                dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
            )
        )
        plan = "\n".join(row[0] for row in conn.execute("EXPLAIN " + sql))
    assert LEGACY_RECIPIENT_INDEX in plan, plan
    assert "Seq Scan" not in plan, plan
    assert campaigns.legacy_recipients() is False
    _add_records(url, ["01055550001"], run=str(uuid.uuid4()), workflow=workflow)
    assert campaigns.legacy_recipients() is True


def test_the_history_sums_probe_the_recipient_index_per_recipient_with_no_sort(
    fresh_store: Store,
) -> None:
    """One index range read per recipient, in the order given, summed where it is read:
    no hash of the batch's recipients and no sort of the rows found to group them."""
    url = fresh_store.backend.url
    workflow, run = str(uuid.uuid4()), str(uuid.uuid4())
    phones = [f"+8210{i:08d}" for i in range(3000)]
    _add_records(url, phones, run=run, workflow=workflow)
    with _connect(url) as conn:
        conn.execute("ANALYZE send_records")
        stmt = Campaigns(fresh_store.backend).seen_statement(
            phones[::3], workflow, str(uuid.uuid4()), None, None
        )
        sql = str(
            stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
        )
        plan = "\n".join(row[0] for row in conn.execute("EXPLAIN " + sql))
    assert "ix_send_records_recipient" in plan, plan
    assert "Sort" not in plan and "HashAggregate" not in plan, plan


def test_frozen_pages_commit_without_waiting_for_the_disk_and_the_frozen_mark_waits(
    fresh_store: Store,
) -> None:
    """Each page of the frozen set is committed with `synchronous_commit = off` (for its
    own transaction only); the commit that marks the set frozen is an ordinary one, so the
    server flushes every page's WAL before the set can be read as frozen."""
    from sqlalchemy import event

    wf = fresh_store.workflows.create(name="w")
    run = fresh_store.runs.create(wf["id"])
    campaigns = Campaigns(fresh_store.backend)
    campaigns.start_state(run["id"], "test:1", "manual")
    steps: list[str] = []

    def statement(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        if "synchronous_commit" in sql:
            steps.append("async" if sql.strip().endswith("off") else sql)
        elif sql.lstrip().upper().startswith("UPDATE RUN_STATE"):
            [(setting,)] = cursor.connection.execute("SHOW synchronous_commit").fetchall()
            steps.append(f"mark {setting}")

    def commit(conn: Any) -> None:
        steps.append("commit")

    engine = fresh_store.backend.engine
    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", commit)
    try:
        pages = [[(str(p * 10 + i), f"+8210{p * 10 + i:08d}") for i in range(10)] for p in range(3)]
        assert campaigns.freeze(run["id"], iter(pages)) == 30
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "commit", commit)
    assert steps.count("async") == 3
    mark = steps.index("mark on")  # the mark's transaction waits for the disk
    assert steps[:mark].count("async") == 3  # every page before the mark ...
    last = max(i for i, s in enumerate(steps) if s == "async")
    assert "commit" in steps[last:mark]  # ... each committed in its own transaction
    assert steps[mark:] == ["mark on", "commit"]
    with _connect(fresh_store.backend.url) as conn:
        assert conn.execute("SHOW synchronous_commit").fetchone() == ("on",)
        frozen = conn.execute(
            "SELECT count(*) FROM run_targets WHERE run_id = %s", (str(run["id"]),)
        ).fetchone()
    assert frozen == (30,)


def test_the_history_check_runs_without_jit_in_its_transaction_only(fresh_store: Store) -> None:
    """The per-batch history read turns the server's JIT off for its own transaction:
    priced by statistics older than the run's records, it passed `jit_above_cost` and the
    server spent ~90 ms compiling a 10 ms read, every batch. The session's setting (here
    JIT for every statement, `jit_above_cost = 0`) is back once the transaction ends.
    Oracle: the server's settings, read on the same connection.
    Mutations: the SET left out (JIT stays on in the read's transaction); set for the
    session instead of the transaction (still off after it)."""
    campaigns = Campaigns(fresh_store.backend)
    wf, run = str(uuid.uuid4()), str(uuid.uuid4())
    _add_records(fresh_store.backend.url, ["+821012345678"], run=str(uuid.uuid4()), workflow=wf)
    with fresh_store.backend.engine.connect() as conn:
        conn.exec_driver_sql("SET jit = on")
        conn.exec_driver_sql("SET jit_above_cost = 0")
        conn.commit()
        with conn.begin():
            got = campaigns.seen(
                ["+821012345678", "+821000000000"], wf, run, None, None, within=conn
            )
            during = conn.exec_driver_sql("SELECT current_setting('jit')").scalar()
        after = conn.exec_driver_sql("SELECT current_setting('jit')").scalar()
        conn.rollback()
    assert [tuple(r) for r in got] == [("+821012345678", 0, 1, 0, 0)]
    assert (during, after) == ("off", "on")
