"""Attack round 30 (branch atk30a): SQL a source URL option pastes into the login.

Round 3 refused `?init_command=` and option files. Two more driver options are pasted into a
statement the driver sends at login, before hybridwb sets the session (READ ONLY, time
limit, sql_mode) and outside every guard:

* `?collation=` (PyMySQL and mysqlclient): `SET NAMES utf8mb4 COLLATE <value>`, unescaped,
  so `utf8mb4_general_ci, @a = evil(), @b = NEXTVAL(s)` runs a stored function that writes
  and advances a sequence on the still-writable session;
* `?sql_mode=` (mysqlclient): `SET SESSION sql_mode='<value>'`, unescaped, so a quote
  in it ends the literal (PyMySQL binds the value, so there it is only a wrong mode).

Both settings are set again by hybridwb's own session SET right after the login
(`SET NAMES utf8mb4`, `sql_mode = ...`), so refusing them loses nothing. The oracle is root
on a second connection: the rows of the table the function writes, the sequence's next
value.
"""

from __future__ import annotations

import secrets
import urllib.parse
from collections.abc import Iterator

import pymysql
import pytest

import hybridwb
from hybridwb.errors import ConfigError

pytestmark = pytest.mark.mysql

HOST, PORT = "127.0.0.1", 3306


@pytest.fixture
def victim() -> Iterator[tuple[str, pymysql.Connection]]:
    try:
        root = pymysql.connect(
            ssl_disabled=True, host=HOST, port=PORT, user="root", autocommit=True
        )
    except pymysql.err.OperationalError:
        pytest.skip("MariaDB not running")
    db = f"hybridwb_r30_{secrets.token_hex(4)}"
    cur = root.cursor()
    for sql in (
        f"CREATE DATABASE {db}",
        f"CREATE TABLE {db}.t (a INT) ENGINE=InnoDB",
        f"CREATE SEQUENCE {db}.s NOCACHE",
        f"CREATE FUNCTION {db}.evil() RETURNS INT MODIFIES SQL DATA "
        f"BEGIN INSERT INTO {db}.t VALUES (99); RETURN 1; END",
    ):
        cur.execute(sql)
    try:
        yield db, root
    finally:
        cur.execute(f"DROP DATABASE IF EXISTS {db}")
        root.close()


def _state(root: pymysql.Connection, db: str) -> tuple[int, int]:
    """Rows evil() wrote and the sequence's next value, read as root."""
    cur = root.cursor()
    cur.execute(f"SELECT COUNT(*) FROM {db}.t")
    rows = int(cur.fetchone()[0])
    cur.execute(f"SELECT next_not_cached_value FROM {db}.s")
    return rows, int(cur.fetchone()[0])


_PAYLOAD = "@a = {db}.evil(), @b = NEXTVAL({db}.s)"
LOGIN_INJECTIONS = [
    pytest.param("pymysql", "collation", "utf8mb4_general_ci, " + _PAYLOAD, id="pymysql-collation"),
    pytest.param("mysqldb", "collation", "utf8mb4_general_ci, " + _PAYLOAD, id="mysqldb-collation"),
    pytest.param("mysqldb", "sql_mode", "', " + _PAYLOAD + ", sql_mode='", id="mysqldb-sql_mode"),
    pytest.param("pymysql", "sql_mode", "', " + _PAYLOAD + ", sql_mode='", id="pymysql-sql_mode"),
]


@pytest.mark.parametrize(("driver", "option", "value"), LOGIN_INJECTIONS)
def test_a_url_option_pasted_into_the_login_is_refused_before_it_runs(
    victim: tuple[str, pymysql.Connection], driver: str, option: str, value: str
) -> None:
    """Before: the function's INSERT committed and the sequence advanced at login, and the
    read then ran as if nothing had happened (PyMySQL's sql_mode only failed the login)."""
    pytest.importorskip("MySQLdb" if driver == "mysqldb" else "pymysql")
    db, root = victim
    before = _state(root, db)
    quoted = urllib.parse.quote(value.format(db=db), safe="")
    url = f"mysql+{driver}://root@{HOST}:{PORT}/{db}?charset=utf8mb4&{option}={quoted}"
    wb = hybridwb.connect(source=url)
    try:
        with pytest.raises(ConfigError, match=option) as caught:
            wb.sql("SELECT 1 AS one")
        message = str(caught.value)
        assert "\n" not in message
        assert "evil" not in message and "NEXTVAL" not in message  # the value is not repeated
    finally:
        wb.close()
    assert _state(root, db) == before  # the oracle: nothing written, the sequence unmoved


@pytest.mark.parametrize("driver", ["pymysql", "mysqldb"])
def test_a_plain_url_still_connects_on_a_read_only_session(
    victim: tuple[str, pymysql.Connection], driver: str
) -> None:
    pytest.importorskip("MySQLdb" if driver == "mysqldb" else "pymysql")
    db, _ = victim
    wb = hybridwb.connect(source=f"mysql+{driver}://root@{HOST}:{PORT}/{db}?charset=utf8mb4")
    try:
        row = wb.sql("SELECT @@tx_read_only AS ro, @@collation_connection AS c").iloc[0]
    finally:
        wb.close()
    assert int(row["ro"]) == 1
    assert str(row["c"]).startswith("utf8mb4")


@pytest.mark.parametrize("driver", ["pymysql", "mysqldb"])
def test_a_collation_handed_to_the_raw_connection_cannot_make_the_session_writable(
    victim: tuple[str, pymysql.Connection], driver: str
) -> None:
    """PyMySQL's `set_character_set(charset, collation)` sends `SET NAMES charset COLLATE
    <collation>` past `query()` (the guarded method): `, SESSION tx_read_only = 0` in the
    collation left the pooled session writable, unmarked, and the next read of a view whose
    function writes committed its INSERT (mysqlclient sends it through `query()`, guarded)."""
    pytest.importorskip("MySQLdb" if driver == "mysqldb" else "pymysql")
    db, root = victim
    root.cursor().execute(f"CREATE VIEW {db}.v_write AS SELECT {db}.evil() AS y")
    before = _state(root, db)
    from sqlalchemy.engine import make_url

    from hybridwb.errors import ReadOnlyViolation
    from hybridwb.source import Source

    url = make_url(f"mysql+{driver}://root@{HOST}:{PORT}/{db}?charset=utf8mb4")
    src = Source(url, pool_size=1, max_overflow=0)
    try:
        raw = src.engine.raw_connection()
        try:
            dbapi = raw.dbapi_connection
            with pytest.raises(ReadOnlyViolation):
                dbapi.set_character_set("utf8mb4", "utf8mb4_general_ci, SESSION tx_read_only = 0")
            cur = dbapi.cursor()
            try:
                cur.execute("SELECT y FROM v_write")
            except pymysql.err.MySQLError:
                pass  # READ ONLY refuses the view's INSERT: the read fails, nothing is written
            except Exception as exc:  # mysqlclient's errors are its own classes
                assert type(exc).__module__.startswith("MySQLdb"), exc
            finally:
                cur.close()
            if driver == "pymysql":  # a bare name still works (mysqlclient's SET is guarded)
                dbapi.set_character_set("utf8mb4", "utf8mb4_bin")
        finally:
            raw.close()
    finally:
        src.close()
    assert _state(root, db) == before


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("db", b"mysql"),
        ("db", "information_schema"),
        ("user", "someone_else"),
        ("client_flag", "with MULTI_STATEMENTS"),
    ],
)
def test_a_raw_reconnect_keeps_the_database_and_user_it_logged_in_with(
    victim: tuple[str, pymysql.Connection], attribute: str, value: object
) -> None:
    """PyMySQL's reconnect (`ping(reconnect=True)`) logs in again with the connection's
    attributes: a `db` set by hand moved the pooled connection to another default database
    (`select_db` is refused for that), and hybridwb's next read on it ran there."""
    import warnings

    from sqlalchemy.engine import make_url

    from hybridwb.errors import ReadOnlyViolation
    from hybridwb.source import Source

    db, _ = victim
    src = Source(
        make_url(f"mysql+pymysql://root@{HOST}:{PORT}/{db}?charset=utf8mb4"),
        pool_size=1,
        max_overflow=0,
    )
    try:
        raw = src.engine.raw_connection()
        try:
            dbapi = raw.dbapi_connection
            if value == "with MULTI_STATEMENTS":
                value = dbapi.client_flag | pymysql.constants.CLIENT.MULTI_STATEMENTS
            setattr(dbapi, attribute, value)
            dbapi.close()
            with warnings.catch_warnings(), pytest.raises(ReadOnlyViolation):
                warnings.simplefilter("ignore", DeprecationWarning)
                dbapi.ping(reconnect=True)
        finally:
            raw.invalidate()
            raw.close()
        assert src.records("SELECT DATABASE() AS d, CURRENT_USER() AS u")[0]["d"] == db
    finally:
        src.close()


def test_a_raw_reconnect_as_it_logged_in_still_works(
    victim: tuple[str, pymysql.Connection],
) -> None:
    import warnings

    from sqlalchemy.engine import make_url

    from hybridwb.source import Source

    db, _ = victim
    src = Source(
        make_url(f"mysql+pymysql://root@{HOST}:{PORT}/{db}?charset=utf8mb4"),
        pool_size=1,
        max_overflow=0,
    )
    try:
        raw = src.engine.raw_connection()
        try:
            dbapi = raw.dbapi_connection
            dbapi.close()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                dbapi.ping(reconnect=True)
            cur = dbapi.cursor()
            cur.execute("SELECT DATABASE(), @@tx_read_only")
            assert cur.fetchone() == (db, 1)
            cur.close()
        finally:
            raw.close()
    finally:
        src.close()
