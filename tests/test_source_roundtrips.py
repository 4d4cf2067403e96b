"""What one read costs on the wire, and that the read-only session survives the savings.

A read on a pooled connection waits for one reply: the session SET for the next use is sent
when the connection is checked in, without waiting, and the checkout reads its reply (which
is already there). No ping, no ROLLBACK. The session is still set before every use: these
tests make a pooled session writable behind hybridwb's back (a raw DB-API cursor, a killed
connection, a SET that fails) and then try to write through a Source whose guard is OFF,
so only the session stands in the way.

Oracles: the server's general_log (what each connection sent), its own per-session counters
(information_schema.SESSION_STATUS: since the connection's last reset, which every checkin
sends), the rows of the table counted by root, and @@session values read on the raw
connection.
Everything runs in a private `hybridwb_rt_<random>` database, dropped afterwards.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pandas as pd
import pytest
from sqlalchemy.engine import URL

from hybridwb.errors import HybridwbError
from hybridwb.source import Source, drivers
from hybridwb.source.rawguard import internal
from tests._mysql import GeneralLog, scratch_db
from tests._mysql import root as _root
from tests._mysql import row_count as _rows
from tests.conftest import MYSQL_HOST, MYSQL_PORT

pytestmark = pytest.mark.mysql

COUNTERS = (
    "SELECT VARIABLE_NAME AS k, VARIABLE_VALUE AS v FROM information_schema.SESSION_STATUS "
    "WHERE VARIABLE_NAME IN ('COM_SELECT', 'COM_SET_OPTION', 'COM_ADMIN_COMMANDS', "
    "'COM_ROLLBACK', 'COM_COMMIT', 'QUESTIONS')"
)
DRIVERS = ["pymysql", "mysqldb"]


@pytest.fixture
def db() -> Iterator[str]:
    with scratch_db("rt", rows=2) as name:
        yield name


def _url(db: str, driver: str) -> URL:
    """root: a WRITABLE account, so only hybridwb's layers stand between a statement and a
    write."""
    return URL.create(
        f"mysql+{driver}", username="root", host=MYSQL_HOST, port=MYSQL_PORT, database=db
    )


def _unguarded(db: str, driver: str) -> Source:
    """One pooled connection, guard off: layer (b), the session, on its own."""
    return Source(_url(db, driver), use_guard=False, pool_size=1, max_overflow=0)


def _make_writable(src: Source, how: str) -> None:
    """Change the pooled connection's session with no hybridwb code on the statement."""
    raw = src.engine.raw_connection()
    try:
        with internal(raw.dbapi_connection):  # past the driver-level guard, as server code
            cur = raw.cursor()
            cur.execute(how)
            cur.execute("SET SESSION max_statement_time = 0")
            cur.execute("SELECT @@session.tx_read_only, @@session.max_statement_time")
            assert tuple(int(v) for v in cur.fetchone()) == (0, 0)  # it really is writable
            cur.close()
    finally:
        raw.close()  # back to the pool, writable


def _write_is_refused(src: Source, db: str) -> None:
    before = _rows(db)
    with pytest.raises(HybridwbError, match="(?i)read.only|READ ONLY"):
        src.sql("INSERT INTO t VALUES (99)")
    assert _rows(db) == before


WRITABLE = [
    "SET SESSION TRANSACTION READ WRITE",
    "SET SESSION tx_read_only = 0",
]


def _counters(src: Source) -> dict[str, int]:
    """What the server counted on the connection since its last reset: every checkin
    resets it (COM_RESET_CONNECTION restarts the session's counters), so a read of its own
    checkout sees that checkout's SET and itself."""
    return {r["k"]: int(r["v"]) for r in src.records(COUNTERS)}


def _checkout_cost(src: Source, sql: str) -> dict[str, int]:
    """The counters after one checkout ran `sql` (then the counters' own read)."""
    with src.one_connection():
        src.records(sql)
        return _counters(src)


MARK = "/* hybridwb-rt */"


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_read_sets_the_session_once_and_never_pings_or_rolls_back(db: str, driver: str) -> None:
    src = Source(_url(db, driver), pool_size=1, max_overflow=0)
    admin = _root()
    try:
        src.sql("SELECT a FROM t WHERE a = :a", {"a": 1})
        with GeneralLog(admin) as log:
            for i in range(20):
                src.sql(f"SELECT a FROM t WHERE a = :a {MARK}", {"a": i})
        alone = _counters(src)  # a checkout: its reset's OK, its SET's, then the read
    finally:
        src.close()
        admin.close()
    sent = [(c, a.split()[0].upper()) for c, a in log.thread_of(MARK)]
    assert sent.count(("Query", "SELECT")) == 20
    # the session SET for the next use leaves at each checkin, behind the reset and the
    # login's role (`SET ROLE NONE`, round 52): between the first read and the last, 19
    # checkins (the log switched on or off may catch part of the checkins around them)
    reads = [i for i, (_, a) in enumerate(log.thread_of(MARK)) if MARK in a]
    between = [a for _, a in log.thread_of(MARK)[reads[0] : reads[-1]]]
    assert between.count("SET ROLE NONE") == 19
    assert len([a for a in between if a.startswith("SET NAMES")]) == 19
    assert len([a for a in between if a.startswith("SET")]) == 2 * 19
    assert not [a for c, a in sent if a in ("ROLLBACK", "COMMIT", "BEGIN")]
    assert alone == {
        "COM_SELECT": 1,
        "COM_SET_OPTION": 2,  # the login's role after the reset, and the session SET
        "COM_ADMIN_COMMANDS": 0,  # no ping
        "COM_ROLLBACK": 0,
        "COM_COMMIT": 0,
        "QUESTIONS": 3,
    }


def test_pandas_on_the_engine_sends_no_rollback(db: str) -> None:
    src = Source(_url(db, "pymysql"), pool_size=1, max_overflow=0)
    admin = _root()
    try:
        with GeneralLog(admin) as log, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas: an engine it does not test against
            for _ in range(5):
                pd.read_sql(f"SELECT a FROM t {MARK}", src.engine)
        with src.engine.connect() as conn:  # what one checkout of the engine sent
            seen = {r[0]: int(r[1]) for r in conn.exec_driver_sql(COUNTERS.replace("%", "%%"))}
    finally:
        src.close()
        admin.close()
    sent = [a for c, a in log.thread_of(MARK) if c == "Query"]
    assert len([a for a in sent if MARK in a and a.startswith("SELECT")]) == 5
    assert not [a for a in sent if a.split()[0].upper() in ("ROLLBACK", "COMMIT", "BEGIN")]
    assert seen["COM_ROLLBACK"] == 0 and seen["COM_ADMIN_COMMANDS"] == 0


@pytest.mark.parametrize("how", WRITABLE, ids=["transaction-read-write", "tx_read_only-0"])
@pytest.mark.parametrize("driver", DRIVERS)
def test_a_pooled_session_made_writable_is_read_only_at_its_next_use(
    db: str, driver: str, how: str
) -> None:
    src = _unguarded(db, driver)
    try:
        src.sql("SELECT a FROM t")
        _make_writable(src, how)
        _write_is_refused(src, db)
        seen = src.sql("SELECT @@session.tx_read_only AS ro, @@session.max_statement_time AS t")
    finally:
        src.close()
    assert (int(seen["ro"].iloc[0]), float(seen["t"].iloc[0])) == (1, 30.0)


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_connection_killed_while_pooled_is_replaced_and_read_only(db: str, driver: str) -> None:
    src = Source(_url(db, driver), pool_size=1, max_overflow=0)
    root = _root()
    try:
        killed = int(src.sql("SELECT CONNECTION_ID() AS id")["id"].iloc[0])
        with root.cursor() as cur:
            cur.execute(f"KILL {killed}")
        # the next statement names a table (the view list is read first, on the engine)
        assert sorted(src.sql("SELECT a FROM t")["a"]) == [1, 2]
        seen = src.sql(
            "SELECT CONNECTION_ID() AS id, @@session.tx_read_only AS ro, "
            "@@session.max_statement_time AS t"
        ).iloc[0]
        assert int(seen["id"]) != killed
        assert (int(seen["ro"]), float(seen["t"])) == (1, 30.0)
    finally:
        root.close()
        src.close()


@pytest.mark.parametrize("driver", DRIVERS)
def test_the_engine_gets_a_new_connection_for_one_killed_while_pooled(db: str, driver: str) -> None:
    src = Source(_url(db, driver), pool_size=1, max_overflow=0)
    root = _root()
    try:
        killed = int(src.sql("SELECT CONNECTION_ID() AS id")["id"].iloc[0])
        with root.cursor() as cur:
            cur.execute(f"KILL {killed}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas: an engine it does not test against
            frame = pd.read_sql("SELECT @@session.tx_read_only AS ro, a FROM t", src.engine)
    finally:
        root.close()
        src.close()
    assert frame["ro"].tolist() == [1, 1] and sorted(frame["a"]) == [1, 2]


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_session_set_that_failed_at_checkin_is_sent_again_and_waited_for(
    db: str, driver: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SET sent at checkin fails on the server (here: an unknown variable); the next
    checkout reads that error and sets the session itself before anything runs."""
    src = _unguarded(db, driver)
    try:
        src.sql("SELECT a FROM t")
        real = drivers.send_only
        monkeypatch.setattr(
            drivers, "send_only", lambda raw, sql: real(raw, "SET SESSION hwb_no_such_var = 1")
        )
        _make_writable(src, "SET SESSION tx_read_only = 0")
        monkeypatch.setattr(drivers, "send_only", real)
        _write_is_refused(src, db)
    finally:
        src.close()


def test_a_checkout_that_wants_another_policy_still_starts_from_a_set_session(db: str) -> None:
    """A query's own time limit and cap are set by a SET the checkout waits for, after the
    reply of the one sent at checkin (read, so the replies never go out of step)."""
    src = Source(_url(db, "pymysql"), pool_size=1, max_overflow=0, statement_timeout=9)
    try:
        src.sql("SELECT a FROM t")
        for _ in range(3):
            got = src.sql(
                "SELECT @@session.max_statement_time AS t, @@session.sql_select_limit AS n",
                timeout=2,
                limit=5,
            )
            assert (float(got["t"].iloc[0]), int(got["n"].iloc[0])) == (2.0, 6)
            plain = src.sql("SELECT @@session.max_statement_time AS t, 1 AS one")
            assert float(plain["t"].iloc[0]) == 9.0
    finally:
        src.close()


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT a FROM t WHERE a = 1",
        "WITH x AS (SELECT a FROM t) SELECT a FROM x WHERE a = 1",
        "SELECT seq FROM seq_1_to_3 WHERE seq = 1",
    ],
    ids=["table", "cte", "sequence-engine"],
)
def test_a_read_of_tables_only_is_not_read_back(db: str, sql: str) -> None:
    """A WITH's own names and the Sequence engine's tables are not views: the read costs
    the same round trips as a plain table read (oracle: the session's own counters)."""
    src = Source(_url(db, "pymysql"), pool_size=2, max_overflow=0)  # the view list: another
    try:
        src.sql(sql)
        seen = _checkout_cost(src, sql)
    finally:
        src.close()
    # the checkout's role (round 52) and SET, the read and the counters' own read: no
    # read-back, no reset
    assert seen["QUESTIONS"] == 4 and seen["COM_SET_OPTION"] == 2


def test_a_view_behind_a_cte_of_another_scope_is_still_read_back(db: str) -> None:
    conn = _root()
    with conn.cursor() as cur:
        cur.execute(f"CREATE VIEW `{db}`.v AS SELECT a FROM `{db}`.t")
    conn.close()
    src = Source(_url(db, "pymysql"), pool_size=2, max_overflow=0)  # the view list: another
    sql = "SELECT * FROM (WITH v AS (SELECT 1 AS a) SELECT a FROM v) s, v"
    try:
        src.sql(sql)
        seen = _checkout_cost(src, sql)
    finally:
        src.close()
    # the read-back ran, and the connection reset after it restarted the session's
    # counters: the role and the SET after that reset (round 52) and the counters' own read
    assert seen["QUESTIONS"] == 3 and seen["COM_SELECT"] == 1


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_pooled_session_left_in_another_charset_is_utf8mb4_at_its_next_use(
    db: str, driver: str
) -> None:
    """The guard (and the in-place check) read literals as utf8mb4: a session left in GBK,
    where a multibyte character may end in a backslash, is set back at the next checkout
    (the server's own variables say so)."""
    src = Source(_url(db, driver), pool_size=1, max_overflow=0)
    try:
        src.sql("SELECT a FROM t")
        raw = src.engine.raw_connection()
        try:
            with internal(raw.dbapi_connection):  # past the driver-level guard, as server code
                cur = raw.cursor()
                cur.execute("SET character_set_client = gbk, character_set_connection = gbk")
                cur.close()
        finally:
            raw.close()  # back to the pool, in GBK
        seen = src.sql(
            "SELECT @@session.character_set_client AS c, @@session.character_set_connection AS n"
        ).iloc[0]
    finally:
        src.close()
    assert (seen["c"], seen["n"]) == ("utf8mb4", "utf8mb4")


def test_server_code_that_changed_the_charset_is_restored_and_refused(db: str) -> None:
    """The read-back after server code compares the character sets too."""
    from hybridwb.errors import ReadOnlyViolation
    from hybridwb.source import engine

    src = Source(_url(db, "pymysql"), pool_size=1, max_overflow=0)
    try:
        src.sql("SELECT a FROM t")
        raw = src.engine.raw_connection()
        try:
            conn = raw.dbapi_connection
            with internal(conn):
                cur = conn.cursor()
                cur.execute("SET character_set_client = gbk")
                cur.close()
            with pytest.raises(ReadOnlyViolation, match="character set") as info:
                engine.verify_session(conn, src.facts, src.policy)
            assert info.value.restored is True
            assert engine.read_session(conn, src.facts)[4] == "utf8mb4,utf8mb4"
        finally:
            raw.close()
    finally:
        src.close()


def _raw(db: str, driver: str) -> object:
    """A plain DB-API connection of `driver` (no hybridwb), autocommit on, writable."""
    if driver == "pymysql":
        import pymysql

        return pymysql.connect(
            host=MYSQL_HOST, port=MYSQL_PORT, user="root", database=db, autocommit=True
        )
    mysqldb = pytest.importorskip("MySQLdb")
    return mysqldb.connect(
        host=MYSQL_HOST, port=MYSQL_PORT, user="root", database=db, autocommit=True
    )


def _session_row(raw: object) -> tuple:
    cur = raw.cursor()  # type: ignore[attr-defined]
    cur.execute("SELECT @@session.tx_read_only, @@session.sql_select_limit, 7")
    row = cur.fetchone()
    cur.close()
    return tuple(int(v) for v in row)


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_session_set_without_a_cursor_sets_it_or_raises(db: str, driver: str) -> None:
    """`apply_session` sends the SET and reads its OK with no cursor: the session is READ
    ONLY with the cap after it (read back by a plain cursor), and a SET the server refuses
    raises the server's error (never a silent pass), with the replies still in step (the
    next statement reads its own answer)."""
    from hybridwb.source.engine import SessionFacts, SessionPolicy, apply_session

    facts = SessionFacts("MariaDB", "", "max_statement_time", "tx_read_only")
    raw = _raw(db, driver)
    try:
        cur = raw.cursor()  # type: ignore[attr-defined]
        cur.execute("SET SESSION tx_read_only = 0, sql_select_limit = DEFAULT")
        cur.close()
        apply_session(raw, facts, SessionPolicy(select_limit=12))
        assert _session_row(raw) == (1, 12, 7)
        broken = SessionFacts("MariaDB", "", "max_statement_time", "hwb_no_such_var")
        cur = raw.cursor()  # type: ignore[attr-defined]
        cur.execute("SET SESSION tx_read_only = 0")
        cur.close()
        with pytest.raises(drivers.errors()) as caught:
            apply_session(raw, broken, SessionPolicy(select_limit=5))
        assert "hwb_no_such_var" in str(caught.value)
        assert _session_row(raw)[0] == 0 and _session_row(raw)[2] == 7  # in step, and unset
    finally:
        raw.close()  # type: ignore[attr-defined]
