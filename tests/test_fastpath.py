"""The fast paths keep every read-only guarantee: the mysqlclient driver and `arrow=True`.

Real MariaDB; the oracles are the server's own general_log and session status, and the
corpus oracle of test_readonly_corpus (checksums, schema objects, files, locks, the pooled
session) read directly with PyMySQL. connectorx is watched too: what it sends is why
hybridwb's Arrow path does not use it (hybridwb/source/arrow.py).
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pymysql
import pytest
from data.readonly_cases import ATTACKS, READS, Attack, Read
from sqlalchemy.engine import URL

import hybridwb
from hybridwb.errors import HybridwbError, QueryError, QueryTimeout, ReadOnlyViolation
from hybridwb.source import RowsCut, Source, rawguard
from hybridwb.source.rawguard import internal
from hybridwb.workbench import Workbench
from tests._mysql import GeneralLog, read_while_still
from tests.conftest import MYSQL_HOST, MYSQL_PORT, admin_url, ro_url
from tests.test_readonly_corpus import (  # the corpus fixtures and oracle
    _sql,
    baseline,
    corpus_db,  # noqa: F401
    oracle,  # noqa: F401
    snapshot,
)
from tests.test_source_mysql import (
    _outfile_attack,
    _session_status,
    drop_dir,  # noqa: F401
    session_changers,  # noqa: F401
)

pytestmark = pytest.mark.mysql
MySQLdb = pytest.importorskip("MySQLdb", reason="the mysqlclient extra is not installed")
pytest.importorskip("pyarrow", reason="the arrow extra is not installed")


def driver_url(db: str, driver: str) -> URL:
    return admin_url(db).set(drivername=f"mysql+{driver}")


# -- 1. the server runs exactly the approved text, on either driver, either result form --------
VALUES = {
    "quote": ("it's", "'it\\'s'"),
    "backslash": ("a\\'b", "'a\\\\\\'b'"),
    "percent": ("100%", "'100%'"),
    "korean": ("김지훈", "'김지훈'"),
    "newline": ("a\nb", "'a\\nb'"),
    "none": (None, "NULL"),
}


@pytest.mark.parametrize("arrow", [False, True], ids=["frame", "arrow"])
@pytest.mark.parametrize("driver", ["pymysql", "mysqldb"])
@pytest.mark.parametrize("value", list(VALUES), ids=list(VALUES))
def test_the_server_runs_exactly_the_approved_text(
    mysql_db: str, mysql_admin: pymysql.Connection, driver: str, arrow: bool, value: str
) -> None:
    given, literal = VALUES[value]
    marker = f"/* hwb-{uuid.uuid4().hex} */"
    sql = f"SELECT customer_id FROM customers {marker} WHERE name = :v OR '50%' = :v"
    src = Source(driver_url(mysql_db, driver), pool_size=1)
    try:
        with GeneralLog(mysql_admin) as log:
            src.sql(sql, {"v": given}, arrow=arrow)
    finally:
        src.close()
    # the literal is written out by hand here: an independent statement of the escaping
    assert log.with_marker(marker) == [("Query", sql.replace(":v", literal))]


@pytest.mark.parametrize(
    "params",
    [
        {"a": " OR 1=1 INTO OUTFILE", "b": "#"},
        {"a": " OR SLEEP(3) OR ", "b": "#"},
    ],
    ids=["outfile", "sleep"],
)
def test_mysqlclient_engine_guards_the_final_interpolated_text(
    mysql_db: str,
    drop_dir: Path,  # noqa: F811
    params: dict[str, str],
) -> None:
    """pandas on a mysqlclient wb.engine: mysqlclient pastes the values into the literal
    (as the raw driver does, which writes the file: test_outfile_attack_is_real_on_the_raw_
    driver); the pasted text is what the guard checks, and it is refused."""
    sql, _ = _outfile_attack(drop_dir)
    src = Source(driver_url(mysql_db, "mysqldb"), statement_timeout=10, pool_size=1)
    started = time.monotonic()
    try:
        with pytest.raises(HybridwbError):
            pd.read_sql(sql, src.engine, params=params)
    finally:
        src.close()
    assert time.monotonic() - started < 2.5
    assert list(drop_dir.iterdir()) == []


@pytest.mark.parametrize("arrow", [False, True], ids=["frame", "arrow"])
@pytest.mark.parametrize(
    ("sql", "timeout", "error"),
    [
        ("SELECT no_such_column FROM customers", None, QueryError),
        (
            "SELECT COUNT(*) AS n FROM seq_1_to_100000 a JOIN seq_1_to_100000 b ON a.seq + b.seq = 7",
            0.5,
            QueryTimeout,
        ),
    ],
    ids=["unknown-column", "time-limit"],
)
def test_mysqlclient_server_errors_are_one_line_hybridwb_errors(
    mysql_db: str, sql: str, timeout: float | None, error: type, arrow: bool
) -> None:
    src = Source(driver_url(mysql_db, "mysqldb"), pool_size=1)
    try:
        with pytest.raises(error) as info:
            src.sql(sql, timeout=timeout, arrow=arrow)
        after = src.sql("SELECT 1 AS one", arrow=arrow)  # the connection is usable again
    finally:
        src.close()
    assert type(info.value) is error and "\n" not in str(info.value)
    assert info.value.__cause__ is None and int(after.iloc[0]["one"]) == 1


@pytest.mark.parametrize("driver", ["pymysql", "mysqldb"])
def test_a_query_policy_is_set_by_the_one_checkout_set(
    mysql_db: str, mysql_admin: pymysql.Connection, driver: str
) -> None:
    """A lower time limit and a small cap are set by the checkout's one SET, the last SET
    before the statement (the default one sent at the previous checkin may come before it:
    the checkout reads its reply, then sets this query's policy)."""
    marker = f"/* hwb-{uuid.uuid4().hex} */"
    src = Source(driver_url(mysql_db, driver), statement_timeout=9, pool_size=1)
    try:
        src.sql("SELECT customer_id FROM customers LIMIT 1")  # also learns the views
        with GeneralLog(mysql_admin) as log:
            src.sql(f"SELECT customer_id FROM customers {marker} LIMIT 5", limit=5, timeout=3)
    finally:
        src.close()
    mine = log.thread_of(marker)
    at = next(i for i, (_, text) in enumerate(mine) if marker in text)
    sets = [text for _, text in mine[:at] if text.startswith("SET NAMES utf8mb4, SESSION")]
    assert 1 <= len(sets) <= 2, sets
    assert all("max_statement_time = 9.000" in text for text in sets[:-1]), sets
    assert "max_statement_time = 3.000" in sets[-1] and "sql_select_limit = 6" in sets[-1]
    assert "tx_read_only = 1" in sets[-1]


def test_a_checkout_policy_is_never_looser_than_the_engines() -> None:
    from hybridwb.source.engine import SessionPolicy, stricter_or_default

    engine = SessionPolicy(read_only=True, timeout=10, select_limit=101)
    assert stricter_or_default(engine, None) == engine
    lower = SessionPolicy(read_only=True, timeout=2, select_limit=6)
    assert stricter_or_default(engine, lower) == lower
    for looser in (
        SessionPolicy(read_only=False, timeout=2, select_limit=6),
        SessionPolicy(read_only=True, timeout=11, select_limit=6),
        SessionPolicy(read_only=True, timeout=0, select_limit=6),
        SessionPolicy(read_only=True, timeout=2, select_limit=6, allowed_functions=("f",)),
    ):
        assert stricter_or_default(engine, looser) == engine


# -- 2. the row cap holds on the server, on either driver, either result form ------------------
@pytest.mark.parametrize("arrow", [False, True], ids=["frame", "arrow"])
@pytest.mark.parametrize("driver", ["pymysql", "mysqldb"])
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT seq, REPEAT('x', 200) AS pad FROM seq_1_to_2000000",
        "SELECT seq, REPEAT('x', 200) AS pad FROM seq_1_to_2000000 LIMIT 10000000",
    ],
    ids=["no-limit", "big-limit"],
)
def test_row_cap_stops_the_server_on_every_fast_path(
    mysql_db: str, driver: str, arrow: bool, sql: str
) -> None:
    src = Source(driver_url(mysql_db, driver), row_cap=100, pool_size=1)
    try:
        # the schema's object list (read once per 10 s, on this one connection) is read
        # before the counters: other files may have added tables to the session database
        src._load_views(mysql_db.lower())
        conn_id, rows_before, bytes_before = _session_status(src)
        with pytest.warns(RowsCut):
            df = src.sql(sql, arrow=arrow)
        same_id, rows_after, bytes_after = _session_status(src)
    finally:
        src.close()
    assert len(df) == 100 and df["seq"].tolist() == list(range(1, 101))
    assert df.attrs["hybridwb"]["truncated"] is True
    assert same_id == conn_id  # the statement was ended, the connection kept
    # the whole result is 2,000,000 rows / ~420 MB; only what was in flight got out
    assert rows_after - rows_before < 50_000
    assert bytes_after - bytes_before < 12_000_000
    if "LIMIT" not in sql:  # sql_select_limit: the server sent cap + 1 (+ our checks)
        assert rows_after - rows_before <= 101 + 5


# -- 3. the session: READ ONLY, time limit, cap on mysqlclient; read back after server code ----
def test_a_mysqlclient_session_is_read_only_limited_and_capped(mysql_db: str) -> None:
    src = Source(driver_url(mysql_db, "mysqldb"), row_cap=77, statement_timeout=4, pool_size=1)
    try:
        got = src.sql(
            "SELECT @@session.tx_read_only AS ro, @@session.max_statement_time AS t, "
            "@@session.sql_select_limit AS cap, @@session.sql_mode AS mode",
            arrow=True,
        )
        raw = src.engine.raw_connection()  # someone makes the pooled session writable
        cur = raw.cursor()
        with internal(raw.dbapi_connection):  # past the driver-level guard, as server code
            cur.execute("SET SESSION tx_read_only = 0, max_statement_time = 0")
        cur.close()
        raw.close()
        again = src.sql("SELECT @@session.tx_read_only AS ro, @@session.max_statement_time AS t")
    finally:
        src.close()
    row = got.iloc[0]
    assert (int(row["ro"]), float(row["t"]), int(row["cap"])) == (1, 4.0, 78)
    assert "NO_BACKSLASH_ESCAPES" not in str(row["mode"]) and "ANSI_QUOTES" not in str(row["mode"])
    assert (int(again.iloc[0]["ro"]), float(again.iloc[0]["t"])) == (1, 4.0)


@pytest.mark.usefixtures("session_changers")
@pytest.mark.parametrize("function", ["hwb_make_writable", "hwb_make_rw_tx", "hwb_unlimit"])
def test_mysqlclient_reads_the_session_back_after_an_allowlisted_function(
    mysql_db: str, function: str
) -> None:
    src = Source(
        driver_url(mysql_db, "mysqldb"),
        allowed_functions=[function],
        statement_timeout=5,
        pool_size=1,
    )
    try:
        with pytest.raises(ReadOnlyViolation):
            src.sql(f"SELECT {function}() AS x", arrow=True)
        raw = src.engine.raw_connection()  # the next session the pool hands out
        cur = raw.cursor()
        cur.execute("SELECT @@session.tx_read_only, @@session.max_statement_time")
        read_only, limit = cur.fetchone()
        cur.close()
        raw.close()
    finally:
        src.close()
    assert (int(read_only), float(limit)) == (1, 5.0)


# -- 4. what connectorx sends (why the Arrow path does not use it) ------------------------------
def test_connectorx_sends_other_text_than_it_was_given(
    mysql_db: str, mysql_admin: pymysql.Connection
) -> None:
    """Recorded so a future connectorx that sends only the given text shows up here: then
    it could be reconsidered for `arrow=True` (hybridwb/source/arrow.py)."""
    cx = pytest.importorskip("connectorx")
    url = f"mysql://root@{MYSQL_HOST}:{MYSQL_PORT}/{mysql_db}?prefer_socket=false"
    marker = f"hwb_{uuid.uuid4().hex}"
    counted = f"SELECT customer_id AS {marker} FROM customers"
    broken = f"SELEC customer_id AS {marker}x FROM customers"  # the server cannot prepare it
    session = "SET SESSION tx_read_only = 1, max_statement_time = 2"
    with GeneralLog(mysql_admin) as log:
        cx.read_sql(url, counted, return_type="pandas", pre_execution_query=[session])
        with pytest.raises(RuntimeError):
            cx.read_sql(url, broken, return_type="arrow", pre_execution_query=[session])
    sent = [text for command, text in log.with_marker(marker) if command == "Query"]
    # pandas: a COUNT(*) around the statement as its parser re-printed it (no row cap)
    assert any(text.startswith("SELECT count(*) FROM (") for text in sent)
    # arrow, statement not preparable: a rewritten `... LIMIT 0` before the session SET
    on_broken = log.thread_of(f"{marker}x")
    rewritten = [i for i, (c, a) in enumerate(on_broken) if a == f"{broken} LIMIT 0"]
    session_set = [i for i, (c, a) in enumerate(on_broken) if a == session]
    assert rewritten and (not session_set or rewritten[0] < session_set[0])


def test_connectorx_arrow_form_sets_the_session_but_cannot_hold_the_row_cap(
    mysql_db: str, mysql_admin: pymysql.Connection
) -> None:
    """connectorx's Arrow form on a preparable statement: Prepare, the session SETs, then
    Execute of the exact text, the session read back inside it is READ ONLY and limited;
    but an explicit LIMIT past the cap is read whole (the normal path ends it at cap + 1)."""
    cx = pytest.importorskip("connectorx")
    url = f"mysql://root@{MYSQL_HOST}:{MYSQL_PORT}/{mysql_db}?prefer_socket=false"
    marker = f"hwb_{uuid.uuid4().hex}"
    sql = (
        f"SELECT seq AS {marker}, @@session.tx_read_only AS ro, "
        "@@session.max_statement_time AS t FROM seq_1_to_5000 LIMIT 5000"
    )
    session = "SET SESSION tx_read_only = 1, max_statement_time = 2, sql_select_limit = 11"
    with GeneralLog(mysql_admin) as log:
        table = cx.read_sql(url, sql, return_type="arrow", pre_execution_query=[session])
    mine = [(c, a) for c, a in log.thread_of(marker) if c in ("Prepare", "Query", "Execute")]
    assert mine[-3:] == [("Prepare", sql), ("Query", session), ("Execute", sql)]
    rows = table.to_pylist()
    assert {(r["ro"], float(r["t"])) for r in rows} == {(1, 2.0)}
    assert len(rows) == 5000  # the cap of 10 (+1) did not hold


# -- 5. the attack corpus through the fast paths, with the corpus oracle -----------------------
FAST = ["mysqlclient", "arrow", "mysqlclient-arrow"]


@pytest.fixture(scope="module", params=FAST)
def fast(
    request: pytest.FixtureRequest,
    corpus_db: str,  # noqa: F811
) -> Iterator[tuple[Workbench, bool]]:
    driver = "mysqldb" if request.param.startswith("mysqlclient") else "pymysql"
    wb = hybridwb.connect(
        source=driver_url(corpus_db, driver).render_as_string(hide_password=False),
        statement_timeout=2,
    )
    yield wb, request.param.endswith("arrow")
    wb.close()


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.id for a in ATTACKS])
def test_attack_through_a_fast_path_changes_nothing(
    attack: Attack,
    fast: tuple[Workbench, bool],
    oracle: pymysql.Connection,  # noqa: F811
    corpus_db: str,  # noqa: F811
) -> None:
    wb, arrow = fast
    before = baseline(oracle, wb)
    error: HybridwbError | None = None
    try:
        wb.sql(_sql(attack, corpus_db), attack.params, arrow=arrow)
    except HybridwbError as exc:
        error = exc
    assert snapshot(oracle, wb, attack) == before  # the oracle first: nothing changed
    if attack.error is None:
        assert error is None, str(error)
    else:
        assert type(error) is attack.error, str(error)
        if attack.error is attack.guard_error:
            assert attack.words in str(error)


# -- 6. each mysqlclient layer alone, the statement guard bypassed as a bug would -----------
#: every attack the guard refuses on the final text
REFUSED = [a for a in ATTACKS if a.guard_error is not None]


@pytest.fixture(scope="module")
def ro_mysqlclient(corpus_db: str) -> Iterator[Source]:  # noqa: F811
    """The corpus through the read-only account (SELECT, SHOW VIEW) on mysqlclient: when a
    layer is broken here (a mutation), the account, not root, bounds what an attack does."""
    src = Source(
        ro_url(corpus_db).set(drivername="mysql+mysqldb"), statement_timeout=2, pool_size=1
    )
    yield src
    src.close()


@pytest.mark.parametrize("attack", REFUSED, ids=[a.id for a in REFUSED])
def test_the_final_text_hook_alone_refuses_every_attack_on_mysqlclient(
    attack: Attack,
    ro_mysqlclient: Source,
    corpus_db: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`wb.engine` (pandas, jupysql) has no statement guard before it: the hook on the text
    mysqlclient would send is layer one there. With the driver's `query()` check switched
    off, the hook alone refuses the attack, in the guard's words."""
    monkeypatch.setattr(rawguard, "_admit", lambda raw, state, sql: None)
    text = attack.text.replace("{db}", corpus_db)
    with pytest.raises(HybridwbError) as info, ro_mysqlclient.engine.connect() as conn:
        # sent as written (no parameters: a `%` in it is text, as in the driver's query())
        conn.execution_options(no_parameters=True).exec_driver_sql(text)
    assert type(info.value) is attack.guard_error, str(info.value)
    assert attack.words in str(info.value)


@pytest.mark.parametrize("attack", REFUSED, ids=[a.id for a in REFUSED])
def test_the_drivers_query_check_alone_refuses_every_attack_on_mysqlclient(
    attack: Attack,
    ro_mysqlclient: Source,
    corpus_db: str,  # noqa: F811
) -> None:
    """The driver's own connection (`wb.engine.raw_connection()`, a DB-API connection handed
    to jupysql) fires no SQLAlchemy event, so neither the statement guard nor the final-text
    hook sees its text: mysqlclient's `query()` check alone refuses the attack."""
    raw = ro_mysqlclient.engine.raw_connection()
    try:
        assert type(raw.dbapi_connection).__name__ == "GuardedMySQLdb"
        cursor = raw.cursor()
        with pytest.raises(HybridwbError) as info:
            cursor.execute(attack.text.replace("{db}", corpus_db))
    finally:
        raw.close()
    assert type(info.value) is attack.guard_error, str(info.value)
    assert attack.words in str(info.value)


def _python(value: Any) -> Any:
    """An Arrow scalar's value as the driver would give it."""
    if value is None or value is pd.NA:
        return None
    return value


@pytest.mark.parametrize("read", READS, ids=[r.id for r in READS])
def test_read_through_a_fast_path_returns_what_pymysql_returns(
    read: Read,
    fast: tuple[Workbench, bool],
    oracle: pymysql.Connection,  # noqa: F811
) -> None:
    """Compared while the server's answer held still (`read_while_still`)."""
    wb, arrow = fast

    def direct() -> list[tuple[Any, ...]]:
        with oracle.cursor() as cur:
            cur.execute(read.direct or read.sql, read.args or None)
            return [tuple(r) for r in cur.fetchall()]

    def through() -> list[tuple[Any, ...]]:
        if not arrow:
            return [tuple(r.values()) for r in wb.source.records(read.sql, read.params)]
        import pyarrow as pa

        df = wb.sql(read.sql, read.params, arrow=True)
        table = pa.Table.from_pandas(df, preserve_index=False)
        return [tuple(row) for row in zip(*(c.to_pylist() for c in table.columns), strict=True)]

    want, got = read_while_still(direct, through)
    assert len(got) == len(want)
    assert got == want


COMMON_TYPES = {
    "i": "int64[pyarrow]",
    "f": "double[pyarrow]",
    "s": "string[pyarrow]",
    "day": "date32[day][pyarrow]",
    "ts": "timestamp[us][pyarrow]",
    "tm": "duration[us][pyarrow]",
    "b": "binary[pyarrow]",
}


@pytest.mark.parametrize(
    ("driver", "own"),
    [
        ("pymysql", {"n": "null[pyarrow]", "d": "decimal128(3, 2)[pyarrow]"}),
        ("mysqldb", {"n": "int64[pyarrow]", "d": "decimal128(38, 2)[pyarrow]"}),
    ],
)
def test_arrow_columns_have_the_documented_types(
    mysql_db: str, driver: str, own: dict[str, str]
) -> None:
    src = Source(driver_url(mysql_db, driver), pool_size=1)
    try:
        df = src.sql(
            "SELECT CAST(1 AS SIGNED) AS i, CAST(NULL AS SIGNED) AS n, 2.5e0 AS f, "
            "CAST(1.25 AS DECIMAL(10, 2)) AS d, 'x' AS s, CAST('2024-01-02' AS DATE) AS day, "
            "CAST('2024-01-02 03:04:05.5' AS DATETIME(1)) AS ts, CAST('-01:02:03' AS TIME) AS tm, "
            "CAST('ab' AS BINARY) AS b",
            arrow=True,
        )
    finally:
        src.close()
    assert {k: str(v) for k, v in df.dtypes.items()} == {**COMMON_TYPES, **own}
    row = df.iloc[0]
    assert row["d"] == Decimal("1.25") and row["day"] == dt.date(2024, 1, 2)
    assert row["ts"] == pd.Timestamp("2024-01-02 03:04:05.5") and row["s"] == "x"
    assert row["tm"] == -pd.Timedelta(hours=1, minutes=2, seconds=3) and row["b"] == b"ab"


def test_arrow_on_mysqlclient_leaves_the_pooled_connection_as_it_was(mysql_db: str) -> None:
    """The raw-text decoding is for one result only: the next read on the same pooled
    connection gets Python values again."""
    src = Source(driver_url(mysql_db, "mysqldb"), pool_size=1)
    try:
        src.sql("SELECT 1 AS i, CURDATE() AS d", arrow=True)
        rows = src.records("SELECT 1 AS i, CAST('2024-01-02' AS DATE) AS d, 1.5 AS x")
    finally:
        src.close()
    assert rows == [{"i": 1, "d": dt.date(2024, 1, 2), "x": Decimal("1.5")}]


@pytest.mark.parametrize(
    ("module", "url", "line"),
    [
        ("MySQLdb", "mysql+mysqldb://u@127.0.0.1/x", "pip install 'hybridwb[mysqlclient]'"),
        ("pyarrow", None, "pip install 'hybridwb[arrow]'"),
    ],
    ids=["mysqlclient", "arrow"],
)
def test_a_missing_fast_path_extra_says_the_pip_line(
    module: str, url: str | None, line: str, mysql_db: str
) -> None:
    if url is None:
        code = (
            f"wb = hybridwb.connect({admin_url(mysql_db).render_as_string()!r})\n"
            "    wb.sql('SELECT 1 AS x', arrow=True)"
        )
    else:
        code = f"hybridwb.connect({url!r})"
    program = (
        "import sys\n"
        f"sys.modules[{module!r}] = None  # as if the extra were not installed\n"
        "import hybridwb\n"
        "try:\n"
        f"    {code}\n"
        "except hybridwb.HybridwbError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120
    )
    assert out.stdout.strip().startswith("MissingExtra"), out.stdout + out.stderr
    assert line in out.stdout and out.stdout.count("\n") == 1
