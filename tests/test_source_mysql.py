"""The source on real MariaDB: the three read-only layers, timeouts, faults, errors."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
import pymysql
import pytest
from sqlalchemy.engine import URL

from hybridwb.errors import (
    BindError,
    ConnectionFailed,
    HybridwbError,
    QueryError,
    QueryTimeout,
    ReadOnlyViolation,
)
from hybridwb.source import RowsCut, Source
from hybridwb.source.rawguard import internal
from tests._mysql import GeneralLog
from tests.conftest import RO_PASSWORD, RO_USER, SAMPLE_CUSTOMERS, admin_url, ro_url

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
    marker = f"hwb-sleep-{uuid.uuid4().hex}"  # other tests on the shared server sleep too
    try:
        started = time.monotonic()
        with pytest.raises(QueryTimeout):
            result = unguarded.sql(f"SELECT SLEEP(5) AS s /* {marker} */", timeout=1)
            # MariaDB may end SLEEP by returning 1 instead of raising; either way it stopped
            if int(result["s"].iloc[0]) == 1:
                raise QueryTimeout("interrupted")
        assert time.monotonic() - started < 4
        with mysql_admin.cursor() as cur:
            cur.execute(
                "SELECT COUNT(*) FROM information_schema.processlist "
                "WHERE info LIKE %s AND id <> CONNECTION_ID()",
                (f"%{marker}%",),
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
        # the name is not echoed: an unknown column is often a value typed without quotes
        ("SELECT no_such_column FROM customers", "Unknown column in the SELECT part"),
    ],
    ids=["table", "column"],
)
def test_server_errors_are_one_line(source: Source, sql: str, words: str) -> None:
    with pytest.raises(QueryError) as info:
        source.sql(sql)
    assert words in str(info.value)
    assert "\n" not in str(info.value)


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


# -- the bytes the server executes are the bytes the guard approved --------------------------
@pytest.fixture
def root_source(mysql_db: str) -> Iterator[Source]:
    """Guard on, session on, but a *writable* account: the guarantee must not need grants."""
    src = Source(admin_url(mysql_db), statement_timeout=10, pool_size=1)
    yield src
    src.close()


@pytest.fixture
def drop_dir() -> Iterator[Path]:
    """A directory the server could write into, to prove that it did not."""
    path = Path(tempfile.mkdtemp(prefix="hwb-outfile-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _outfile_attack(path: Path) -> tuple[str, dict[str, str]]:
    """The issue's attack: binds inside a literal; pasted raw, the values leave the quotes."""
    return (
        f"SELECT customer_id FROM customers WHERE name = '%(a)s{path}/x%(b)s'",
        {"a": " OR 1=1 INTO OUTFILE", "b": "#"},
    )


def test_outfile_attack_is_real_on_the_raw_driver(
    mysql_db: str, mysql_admin: pymysql.Connection, drop_dir: Path
) -> None:
    """The oracle for the tests below: without hybridwb the server writes the file."""
    sql, params = _outfile_attack(drop_dir)
    mysql_admin.select_db(mysql_db)
    with mysql_admin.cursor() as cur:
        cur.execute(sql, params)
    assert (drop_dir / "x").is_file()


def test_bind_inside_a_string_literal_is_text_not_a_bind(
    root_source: Source, drop_dir: Path
) -> None:
    sql = f"SELECT customer_id FROM customers WHERE name = ':a{drop_dir}/x:b'"
    with pytest.raises(BindError, match="not used"):
        root_source.sql(sql, {"a": " OR 1=1 INTO OUTFILE", "b": "#"})
    assert root_source.sql(sql).empty  # the literal is compared as it is written
    assert list(drop_dir.iterdir()) == []


@pytest.mark.parametrize(
    ("value", "column"),
    [
        (" OR 1=1 INTO OUTFILE", "name"),
        ("' OR 1=1 INTO OUTFILE '/tmp/hwb-x' #", "name"),
        ("x' UNION SELECT LOAD_FILE('/etc/hostname') #", "name"),
        ("' OR SLEEP(3) #", "name"),
        ("' OR GET_LOCK('hwb', 0) #", "name"),
        ("' OR (@v := 1) #", "name"),
        ("\\' OR 1=1 #", "email"),
    ],
    ids=["outfile", "quoted-outfile", "load-file", "sleep", "get-lock", "assign", "backslash"],
)
def test_values_stay_values_and_match_the_raw_driver(
    root_source: Source, mysql_admin: pymysql.Connection, mysql_db: str, value: str, column: str
) -> None:
    started = time.monotonic()
    df = root_source.sql(f"SELECT customer_id FROM customers WHERE {column} = :v", {"v": value})
    assert time.monotonic() - started < 2.5
    mysql_admin.select_db(mysql_db)
    with mysql_admin.cursor() as cur:
        cur.execute(f"SELECT customer_id FROM customers WHERE {column} = %s", (value,))
        assert df["customer_id"].tolist() == [r[0] for r in cur.fetchall()] == []
        cur.execute("SELECT IS_USED_LOCK('hwb'), @v")
        assert cur.fetchone() == (None, None)


@pytest.mark.parametrize(
    "params",
    [
        {"a": " OR 1=1 INTO OUTFILE", "b": "#"},
        {"a": " UNION SELECT LOAD_FILE(", "b": ") #"},
        {"a": " OR SLEEP(3) OR ", "b": "#"},
        {"a": " OR GET_LOCK(", "b": ", 0) #"},
        {"a": " OR (@v := ", "b": ") #"},
    ],
    ids=["outfile", "load-file", "sleep", "get-lock", "assign"],
)
def test_engine_guards_the_final_interpolated_text(
    root_source: Source, drop_dir: Path, params: dict[str, str]
) -> None:
    """pandas on wb.engine: the driver pastes values into a literal; the final text is refused."""
    sql, _ = _outfile_attack(drop_dir)
    started = time.monotonic()
    with pytest.raises(HybridwbError):
        pd.read_sql(sql, root_source.engine, params=params)
    assert time.monotonic() - started < 2.5
    assert list(drop_dir.iterdir()) == []


def test_engine_reads_with_parameters_like_the_raw_driver(root_source: Source) -> None:
    df = pd.read_sql(
        "SELECT customer_id FROM customers WHERE grade = %(g)s AND name LIKE '%%' ORDER BY 1",
        root_source.engine,
        params={"g": "VIP"},
    )
    expected = root_source.sql(
        "SELECT customer_id FROM customers WHERE grade = :g AND name LIKE '%' ORDER BY 1",
        {"g": "VIP"},
    )
    assert df["customer_id"].tolist() == expected["customer_id"].tolist() != []


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1 AS one FROM dual",
        "SELECT 'abc' REGEXP 'b' AS m",
        "SELECT UTC_DATE() AS d",
        "SELECT INTERVAL(5, 1, 3) AS i",
        "SELECT MEDIAN(amount) OVER () AS m FROM payments ORDER BY payment_id LIMIT 3",
        "SELECT HEX(CHAR(0xC3A9 USING utf8mb4)) AS c",
        "SELECT id FROM versioned FOR SYSTEM_TIME ALL ORDER BY id",
        "SELECT customer_id FROM customers ORDER BY customer_id LIMIT 5",
    ],
    ids=["dual", "regexp", "utc-date", "interval", "median", "char-using", "system-time", "limit"],
)
def test_mariadb_sql_runs_as_written(
    root_source: Source, mysql_admin: pymysql.Connection, mysql_db: str, sql: str
) -> None:
    mysql_admin.select_db(mysql_db)
    with mysql_admin.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS versioned (id INT) WITH SYSTEM VERSIONING")
        cur.execute(
            "INSERT INTO versioned SELECT 1 FROM dual WHERE NOT EXISTS (SELECT * FROM versioned)"
        )
        cur.execute(sql)
        expected = [list(r) for r in cur.fetchall()]
    df = root_source.sql(sql)
    assert df.astype(object).values.tolist() == expected


# -- the row cap holds on the server, without rewriting the statement ------------------------
def _session_status(src: Source) -> tuple[int, int, int]:
    """(connection id, Rows_sent, Bytes_sent) of the connection `one_connection()` holds:
    the server's counters since the connection's last reset (every checkin sends one, so
    both reads are inside the one checkout)."""
    row = src.records(
        "SELECT CONNECTION_ID() AS id, "
        "(SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS "
        "WHERE VARIABLE_NAME = 'ROWS_SENT') AS r, "
        "(SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS "
        "WHERE VARIABLE_NAME = 'BYTES_SENT') AS b"
    )[0]
    return int(row["id"]), int(row["r"]), int(row["b"])


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        ("SELECT seq, REPEAT('x', 200) AS pad FROM seq_1_to_2000000", None),
        ("SELECT seq, REPEAT('x', 200) AS pad FROM seq_1_to_2000000 LIMIT 10000000", None),
        ("SELECT seq, REPEAT('x', 200) AS pad FROM seq_1_to_2000000 LIMIT :n", {"n": 10**7}),
    ],
    ids=["no-limit", "big-limit", "bind-limit"],
)
def test_row_cap_stops_the_server_not_just_the_client(
    mysql_db: str, sql: str, params: dict | None
) -> None:
    src = Source(admin_url(mysql_db), row_cap=100, pool_size=2)
    try:
        # the schema's object list (read once per 10 s, on another connection) is read
        # before the counters: other files may have added tables to the session database
        src._load_views(mysql_db.lower())
        with src.one_connection():
            conn_id, rows_before, bytes_before = _session_status(src)
            started = time.monotonic()
            with pytest.warns(RowsCut):
                df = src.sql(sql, params)
            elapsed = time.monotonic() - started
            same_id, rows_after, bytes_after = _session_status(src)
    finally:
        src.close()
    assert len(df) == 100 and df["seq"].tolist() == list(range(1, 101))
    assert same_id == conn_id  # the statement was ended, the connection kept
    # the whole result is 2,000,000 rows / ~420 MB; only what was in flight got out
    assert rows_after - rows_before < 50_000
    assert bytes_after - bytes_before < 12_000_000
    assert elapsed < 5
    if "LIMIT" not in sql:  # sql_select_limit: the server sent exactly cap + 1 (+ our checks)
        assert rows_after - rows_before <= 101 + 5


def test_statement_text_is_never_rewritten(mysql_db: str, mysql_admin: pymysql.Connection) -> None:
    """What the server ran is the approved text, byte for byte (its own query log says so)."""
    src = Source(admin_url(mysql_db), row_cap=50, pool_size=1)
    marker = f"/* hwb-{uuid.uuid4().hex} */"
    sql = f"select customer_id from customers {marker} where grade = :g"
    try:
        # the shared log class takes the server-wide lock: another worker's log user
        # would otherwise switch the log on while this test reads it back
        with GeneralLog(mysql_admin) as log, pytest.warns(RowsCut):
            src.sql(sql, {"g": "VIP"})
        ran = [a for c, a in log.with_marker(marker) if c == "Query"]
    finally:
        src.close()
    assert ran == [sql.replace(":g", "'VIP'")]


# -- the session is re-asserted on checkout and verified after server code -------------------
@pytest.fixture
def session_changers(mysql_db: str, mysql_admin: pymysql.Connection) -> Iterator[None]:
    mysql_admin.select_db(mysql_db)
    bodies = {
        "hwb_make_writable": "SET SESSION tx_read_only = 0",
        "hwb_make_rw_tx": "SET SESSION TRANSACTION READ WRITE",
        "hwb_unlimit": "SET SESSION max_statement_time = 0",
    }
    with mysql_admin.cursor() as cur:
        for name, body in bodies.items():
            cur.execute(f"DROP FUNCTION IF EXISTS {name}")
            cur.execute(f"CREATE FUNCTION {name}() RETURNS INT BEGIN {body}; RETURN 1; END")
    yield
    with mysql_admin.cursor() as cur:
        for name in bodies:
            cur.execute(f"DROP FUNCTION IF EXISTS {name}")


def _raw_session(raw: Any) -> tuple[int, float]:
    cur = raw.cursor()
    cur.execute("SELECT @@session.tx_read_only, @@session.max_statement_time")
    read_only, limit = cur.fetchone()
    cur.close()
    return int(read_only), float(limit)


@pytest.mark.parametrize("use_guard", [True, False], ids=["guard-on", "guard-off"])
@pytest.mark.parametrize("function", ["hwb_make_writable", "hwb_make_rw_tx", "hwb_unlimit"])
@pytest.mark.usefixtures("session_changers")
def test_allowlisted_function_cannot_leave_the_session_writable(
    mysql_db: str, function: str, use_guard: bool
) -> None:
    src = Source(
        admin_url(mysql_db),
        statement_timeout=7,
        pool_size=1,
        use_guard=use_guard,
        allowed_functions=[function],
    )
    try:
        first = _session_status(src)[0]
        with pytest.raises(ReadOnlyViolation, match="changed the read-only session"):
            src.sql(f"SELECT {function}() AS f")
        raw = src.engine.raw_connection()
        try:
            cur = raw.cursor()
            cur.execute("SELECT CONNECTION_ID()")
            assert int(cur.fetchone()[0]) == first  # the same pooled connection, restored
            assert _raw_session(raw) == (1, 7.0)
        finally:
            raw.close()
    finally:
        src.close()


@pytest.mark.usefixtures("session_changers")
def test_engine_user_holding_a_connection_gets_the_session_back(mysql_db: str) -> None:
    """jupysql keeps one connection checked out: the check after each statement covers it."""
    src = Source(admin_url(mysql_db), statement_timeout=7, use_guard=False)
    try:
        with src.engine.connect() as conn:
            with pytest.raises(ReadOnlyViolation):
                conn.exec_driver_sql("SELECT hwb_make_writable()")
            assert _raw_session(conn.connection.dbapi_connection) == (1, 7.0)
            with pytest.raises(ReadOnlyViolation, match="READ ONLY"):
                conn.exec_driver_sql("CREATE TABLE hwb_should_not_exist (id INT)")
    finally:
        src.close()


def test_checkout_reasserts_a_session_someone_changed(mysql_db: str) -> None:
    src = Source(admin_url(mysql_db), statement_timeout=7, pool_size=1, use_guard=False)
    try:
        raw = src.engine.raw_connection()
        cur = raw.cursor()
        with internal(raw.dbapi_connection):  # past the driver-level guard, as server code
            cur.execute("SET SESSION tx_read_only = 0, max_statement_time = 0")
        cur.close()
        raw.close()  # back to the pool, changed
        df = src.sql("SELECT @@session.tx_read_only AS ro, @@session.max_statement_time AS t")
        assert (int(df["ro"].iloc[0]), float(df["t"].iloc[0])) == (1, 7.0)
    finally:
        src.close()


@pytest.mark.parametrize(
    ("timeout", "words"),
    [(60, "above the configured limit"), (0, "more than 0"), (-1, "more than 0")],
    ids=["raise", "remove", "negative"],
)
def test_a_query_may_lower_the_time_limit_but_not_raise_or_remove_it(
    source: Source, timeout: float, words: str
) -> None:
    with pytest.raises(BindError, match=words):
        source.sql("SELECT 1 AS one", timeout=timeout)
    df = source.sql("SELECT @@session.max_statement_time AS t", timeout=2)
    assert float(df["t"].iloc[0]) == 2.0


# -- logs and errors carry no literals, values or driver frames ------------------------------
@pytest.mark.parametrize(
    ("sql", "params"),
    [
        (
            "SELECT customer_id FROM customers WHERE WHERE email = :e",
            {"e": "kim.secret@example.com"},
        ),
        ("SELECT customer_id FROM customers WHERE `kim.secret@example.com` = 1", None),
        ("SELECT customer_id FROM customers WHERE email = 'kim.secret@example.com' AND AND", None),
    ],
    ids=["near-bind", "unknown-column", "near-literal"],
)
def test_server_errors_are_logged_and_raised_without_values(
    mysql_db: str, sql: str, params: dict | None
) -> None:
    src = Source(admin_url(mysql_db), use_guard=False)
    try:
        with pytest.raises(QueryError) as info:
            src.sql(sql, params)
    finally:
        src.close()
    err = info.value
    entry = list(src.querylog.entries)[-1]
    assert entry.status == "error"
    for text_ in (str(err), entry.errorMessage or "", entry.query):
        assert "kim.secret" not in text_
    assert err.code in (1054, 1064)
    assert err.cause in ("ProgrammingError", "OperationalError")
    assert err.__cause__ is None and err.__context__ is None
    frames = traceback.extract_tb(err.__traceback__)
    assert not any("pymysql" in f.filename or "sqlalchemy" in f.filename for f in frames)


def test_one_engine_for_a_hundred_threads(
    fresh_mysql_db: str, mysql_admin: pymysql.Connection
) -> None:
    # a database of its own: the processlist then shows this source's connections only (a
    # shared one also lists what other tests' sources on this worker keep open)
    mysql_db = fresh_mysql_db
    src = Source(ro_url(mysql_db), pool_size=2, max_overflow=3)
    start = threading.Barrier(100)

    def first_use(_: int) -> tuple[int, Any]:
        start.wait()  # all threads meet a fresh source at once
        engine = src.engine
        return len(src.sql("SELECT COUNT(*) AS n FROM seq_1_to_200000")), engine

    try:
        with ThreadPoolExecutor(100) as pool:
            outcomes = list(pool.map(first_use, range(100)))
        results = [n for n, _ in outcomes]
        # the pool closes its overflow connections as they come back; on a loaded server a
        # closed one stays in the processlist for a moment: wait for those to go (a second
        # pool, or a bigger one, keeps its own open, and the count stays over the budget)
        deadline = time.monotonic() + 10
        while True:
            with mysql_admin.cursor() as cur:
                cur.execute(
                    "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                    "WHERE DB = %s AND USER = %s",
                    (mysql_db, RO_USER),
                )
                open_now = cur.fetchone()[0]
            if open_now <= 2 + 3 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    finally:
        src.close()
    assert results == [1] * 100
    assert len({id(engine) for _, engine in outcomes}) == 1
    assert open_now <= 2 + 3  # the server saw one pool, within its budget


def test_session_layer_switch_turns_read_only_off(mysql_db: str) -> None:
    """`read_only_session=False` is the switch the per-layer tests use; it must really be off."""
    src = Source(admin_url(mysql_db), read_only_session=False, statement_timeout=7)
    try:
        df = src.sql("SELECT @@session.tx_read_only AS ro, @@session.max_statement_time AS t")
    finally:
        src.close()
    assert (int(df["ro"].iloc[0]), float(df["t"].iloc[0])) == (0, 7.0)


def test_engine_errors_carry_no_values(root_source: Source) -> None:
    """pandas on wb.engine: the sent text holds the value; the error shows neither."""
    with pytest.raises(QueryError) as info:
        pd.read_sql(
            "SELECT no_such_column FROM customers WHERE email = %(e)s",
            root_source.engine,
            params={"e": "kim.secret@example.com"},
        )
    assert "kim.secret" not in str(info.value)
    # the name is not echoed either (an unknown column may be a value typed without quotes)
    assert "Unknown column in the SELECT part" in str(info.value)
    assert info.value.code == 1054  # SQLAlchemy chains the driver error (not detachable here)


def test_engine_refuses_a_limit_above_the_cap(mysql_db: str) -> None:
    """pandas buffers a whole result: an explicit LIMIT past the cap is refused there."""
    src = Source(admin_url(mysql_db), row_cap=100)
    try:
        with pytest.raises(ReadOnlyViolation, match="row cap"):
            pd.read_sql("SELECT seq FROM seq_1_to_1000000 LIMIT 1000000", src.engine)
        assert len(pd.read_sql("SELECT seq FROM seq_1_to_1000000", src.engine)) == 101
        assert len(pd.read_sql("SELECT seq FROM seq_1_to_1000000 LIMIT 50", src.engine)) == 50
    finally:
        src.close()
