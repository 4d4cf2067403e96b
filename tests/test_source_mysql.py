"""The source on real MariaDB: the three read-only layers, timeouts, faults, errors."""

from __future__ import annotations

import time

import pandas as pd
import pymysql
import pytest
from sqlalchemy.engine import URL

from hybridwb.errors import ConnectionFailed, QueryError, QueryTimeout, ReadOnlyViolation
from hybridwb.source import RowsCut, Source
from tests.conftest import RO_PASSWORD, SAMPLE_CUSTOMERS, admin_url, ro_url

pytestmark = pytest.mark.mysql


@pytest.fixture
def source(mysql_db: str) -> Source:
    src = Source(ro_url(mysql_db), statement_timeout=10)
    yield src
    src.close()


def test_reads_through_the_read_only_account(source: Source) -> None:
    df = source.sql(
        "SELECT grade, COUNT(*) AS n FROM customers WHERE status = :s GROUP BY grade",
        {"s": "active"},
    )
    assert set(df["grade"]) <= {"VIP", "GOLD", "SILVER", "BRONZE"}
    assert int(df["n"].sum()) > 0


def test_korean_values_round_trip(source: Source) -> None:
    name = source.sql("SELECT name FROM customers WHERE customer_id = 1")["name"].iloc[0]
    df = source.sql("SELECT customer_id FROM customers WHERE name = :name", {"name": name})
    assert 1 in set(df["customer_id"])
    assert all("\uac00" <= ch <= "\ud7a3" for ch in name)


def test_test_connection_reports_a_safe_session(source: Source) -> None:
    info = source.test_connection()
    assert info.status == "ok", info.error
    assert info.flavour == "MariaDB"
    assert info.read_only is True
    assert info.can_write is False
    assert info.statement_timeout == pytest.approx(10)
    assert info.latency_ms > 0


# -- layer two: the session itself is READ ONLY, even with the guard off and a writable account
def test_session_refuses_writes_with_guard_off_and_root(
    mysql_db: str, mysql_admin: pymysql.Connection
) -> None:
    unguarded = Source(admin_url(mysql_db), use_guard=False)
    try:
        with pytest.raises(ReadOnlyViolation, match="READ ONLY"):
            unguarded.sql("DELETE FROM payments WHERE payment_id > 0")
        with pytest.raises(ReadOnlyViolation):
            unguarded.sql("UPDATE customers SET grade = 'VIP'")
    finally:
        unguarded.close()
    with mysql_admin.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM `{mysql_db}`.customers WHERE grade <> 'VIP'")
        assert cur.fetchone()[0] > 0
        cur.execute(f"SELECT COUNT(*) FROM `{mysql_db}`.payments")
        assert cur.fetchone()[0] > 0


def test_statement_time_limit_ends_sleep_on_the_server(
    mysql_db: str, mysql_admin: pymysql.Connection
) -> None:
    unguarded = Source(admin_url(mysql_db), use_guard=False, statement_timeout=30)
    try:
        started = time.monotonic()
        with pytest.raises(QueryTimeout):
            result = unguarded.sql("SELECT SLEEP(5) AS s", timeout=1)
            # MariaDB may end SLEEP by returning 1 instead of raising; either way it stopped
            if int(result["s"].iloc[0]) == 1:
                raise QueryTimeout("interrupted")
        assert time.monotonic() - started < 4
        with mysql_admin.cursor() as cur:
            cur.execute(
                "SELECT COUNT(*) FROM information_schema.processlist WHERE info LIKE 'SELECT SLEEP(5)%'"
            )
            assert cur.fetchone()[0] == 0
        # the session default comes back after a per-query timeout
        assert unguarded.test_connection().statement_timeout == pytest.approx(30)
    finally:
        unguarded.close()


def test_default_statement_limit_applies_without_a_timeout(mysql_db: str) -> None:
    unguarded = Source(admin_url(mysql_db), use_guard=False, statement_timeout=0.5)
    try:
        started = time.monotonic()
        try:
            df = unguarded.sql("SELECT SLEEP(3) AS s")
            assert int(df["s"].iloc[0]) == 1  # interrupted
        except QueryTimeout:
            pass
        assert time.monotonic() - started < 2.5
    finally:
        unguarded.close()


# -- layer three: grants
def test_writable_account_is_reported(mysql_db: str) -> None:
    root = Source(admin_url(mysql_db))
    try:
        info = root.test_connection()
    finally:
        root.close()
    assert info.can_write is True
    assert "ALL PRIVILEGES" in info.write_privileges
    assert info.read_only is True  # the session is still read-only


# -- faults
def test_killed_connection_is_replaced_transparently(
    mysql_db: str, mysql_admin: pymysql.Connection
) -> None:
    src = Source(ro_url(mysql_db), pool_size=1)
    try:
        conn_id = int(src.sql("SELECT CONNECTION_ID() AS id")["id"].iloc[0])
        with mysql_admin.cursor() as cur:
            cur.execute(f"KILL {conn_id}")
        df = src.sql("SELECT COUNT(*) AS n FROM customers")
        assert int(df["n"].iloc[0]) == SAMPLE_CUSTOMERS
        assert int(src.sql("SELECT CONNECTION_ID() AS id")["id"].iloc[0]) != conn_id
    finally:
        src.close()


def test_stopped_server_fails_fast_with_a_clear_error() -> None:
    # nothing listens on this port: to a client that is exactly a stopped server
    url = URL.create(
        "mysql+pymysql",
        username="x",
        password="secret-pw",
        host="127.0.0.1",
        port=3399,
        database="shop",
    )
    src = Source(url, connect_timeout=2)
    started = time.monotonic()
    with pytest.raises(ConnectionFailed, match="Cannot reach MySQL at 127.0.0.1:3399") as info:
        src.sql("SELECT 1")
    assert time.monotonic() - started < 3
    assert "secret-pw" not in str(info.value)
    status = src.test_connection()
    assert status.status == "error" and "3399" in (status.error or "")


def test_wrong_password_names_the_settings_and_hides_the_password(mysql_db: str) -> None:
    url = ro_url(mysql_db).set(password="wrong-" + RO_PASSWORD)
    src = Source(url)
    with pytest.raises(ConnectionFailed, match="MYSQL_READ_PASSWORD") as info:
        src.sql("SELECT 1")
    assert "wrong-" not in str(info.value)
    assert "wrong-" not in repr(src)


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("SELECT * FROM no_such_table", "doesn't exist"),
        ("SELECT no_such_column FROM customers", "no_such_column"),
    ],
    ids=["table", "column"],
)
def test_server_errors_are_one_line(source: Source, sql: str, words: str) -> None:
    with pytest.raises(QueryError) as info:
        source.sql(sql)
    assert words in str(info.value)
    assert "\n" not in str(info.value)


def test_cap_is_added_through_the_ast(mysql_db: str) -> None:
    src = Source(ro_url(mysql_db), row_cap=50)
    try:
        with pytest.warns(RowsCut):
            df = src.sql("SELECT * FROM customers ORDER BY customer_id")
        assert len(df) == 50
        assert df["customer_id"].tolist() == list(range(1, 51))
        sql, _, _ = src.prepare("SELECT * FROM customers")
        assert sql.endswith("LIMIT 51")
    finally:
        src.close()


def test_engine_guard_covers_other_callers(source: Source) -> None:
    with pytest.raises(ReadOnlyViolation):
        pd.read_sql("DELETE FROM customers", source.engine)
    assert len(pd.read_sql("SELECT customer_id FROM customers LIMIT 3", source.engine)) == 3


def test_one_megabyte_query_is_refused_before_sending(source: Source) -> None:
    with pytest.raises(QueryError, match="limit is"):
        source.sql("SELECT 1 FROM customers WHERE name IN (" + ",".join(["'x'"] * 300_000) + ")")


def test_unknown_database_names_the_setting(mysql_db: str) -> None:
    src = Source(ro_url("hybridwb_no_such_db"))
    with pytest.raises(ConnectionFailed, match="MYSQL_DATABASE"):
        src.sql("SELECT 1")
