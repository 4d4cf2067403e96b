"""Target keys and recipients of any length in the store (migration 0007), and driver errors
from a raw COPY that never carry a row's values.

A customer table keyed by e-mail froze nothing on Postgres while target keys were
VARCHAR(200) (round 4's F6: `test_attack_once_round4.py::test_a_long_email_key_is_frozen_and_messaged`
runs the whole audience); the COPY's error, untranslated, quoted the address. Oracles:
the column types from `information_schema` and rows read with psycopg, never through the
store code.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import URL

from hybridwb.errors import HybridwbError
from hybridwb.platform import migrate
from hybridwb.platform.backend import SqlBackend
from hybridwb.platform.campaigns import Campaigns, FrozenPage
from hybridwb.platform.schema import metadata
from hybridwb.platform.store import Store
from tests._stores import fresh_pg_database

pytestmark = pytest.mark.postgres

WIDENED = [
    ("run_targets", "target_key"),
    ("run_targets", "recipient"),
    ("run_skips", "target_key"),
    ("send_records", "target_key"),
    ("send_records", "recipient"),
]


@pytest.fixture
def pg_url() -> Iterator[URL]:
    yield from fresh_pg_database("hybridwb_long")


def _pg(url: URL) -> psycopg.Connection:
    return psycopg.connect(f"host=127.0.0.1 user=postgres dbname={url.database}", autocommit=True)


def _types(url: URL) -> dict[tuple[str, str], tuple[str, int | None]]:
    with _pg(url) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name, data_type, character_maximum_length "
            "FROM information_schema.columns WHERE table_schema = 'public' "
            "AND column_name IN ('target_key', 'recipient')"
        ).fetchall()
    return {(t, c): (d, n) for t, c, d, n in rows}


def test_0007_widens_a_store_at_0006_and_keeps_its_rows(pg_url: URL) -> None:
    st = Store(SqlBackend(pg_url))
    st.init(seed=False)
    wf = st.workflows.create(name="w", target_config={}, message_config={})
    run = st.runs.create(wf["id"])["id"]
    st.close()
    with _pg(pg_url) as conn:  # the store as 0006 left it, with a run's rows
        for table, column in WIDENED:
            width = 200 if column == "target_key" else 300
            conn.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" TYPE varchar({width})')
        conn.execute("UPDATE alembic_version SET version_num = '0006'")
        conn.execute(
            "INSERT INTO run_targets (run_id, seq, target_key, recipient) "
            "VALUES (%s, 1, 'k1', '+821055550001')",
            (run,),
        )
    assert _types(pg_url)[("run_targets", "target_key")] == ("character varying", 200)

    st = Store(SqlBackend(pg_url))
    st.init(seed=False)  # 0006 -> 0007
    st.close()

    types = _types(pg_url)
    assert {types[w] for w in WIDENED} == {("text", None)}
    with _pg(pg_url) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (migrate.head_revision(),)
        ]
        assert conn.execute("SELECT seq, target_key, recipient FROM run_targets").fetchall() == [
            (1, "k1", "+821055550001")
        ]
        long = "a" * 5000 + "@example.com"  # any length now
        conn.execute(
            "INSERT INTO run_targets (run_id, seq, target_key, recipient) VALUES (%s, 2, %s, %s)",
            (run, long, long),
        )


def test_a_fresh_store_has_text_keys_and_the_offline_script_widens_them(pg_url: URL) -> None:
    st = Store(SqlBackend(pg_url))
    st.init(seed=False)
    st.close()
    assert {_types(pg_url)[w] for w in WIDENED} == {("text", None)}
    script = migrate.sql_script("postgresql")
    for table, column in WIDENED:
        assert f"ALTER TABLE {table} ALTER COLUMN {column} TYPE TEXT" in script


def test_a_driver_error_from_a_copy_is_translated_without_the_rows_values(pg_url: URL) -> None:
    """A raw COPY's error (psycopg's own, not wrapped by SQLAlchemy) quotes the failing
    value in its text and CONTEXT line: it is translated like any store error, and no
    value of the row reaches the message, the repr, the chain or a formatted traceback."""
    st = Store(SqlBackend(pg_url))
    st.init(seed=False)
    address = "kim.secret-canary@example.com"
    try:
        with pytest.raises(HybridwbError) as info:
            # `run_id` is a uuid: the address there fails the COPY, quoted by the server
            Campaigns(st.backend)._copy_fresh(
                metadata.tables["run_targets"], FrozenPage(address, 0, [(address, address)], None)
            )
    finally:
        st.close()
    exc = info.value
    shown = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    chained = exc.__cause__ or exc.__context__
    while chained is not None:
        shown += [str(chained), repr(chained)]
        chained = chained.__cause__ or chained.__context__
    assert not [s for s in shown if address in s]
    assert not isinstance(exc, psycopg.Error)
    with _pg(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM run_targets").fetchone() == (0,)
