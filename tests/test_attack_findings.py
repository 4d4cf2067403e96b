"""Attack findings against the read-only guarantee (branch attack-ro).

Each `test_finding_*` reproduces one real break and asserts the oracle (direct pymysql as
root, independent of hybridwb): it FAILS while the hole is open. `test_held` is the corpus of
attacks that held (passing). Everything runs in a private `hybridwb_atk_<random>` database
that is dropped afterwards; named locks are released by disposing the engine.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest
from IPython.core.interactiveshell import InteractiveShell

import hybridwb
from hybridwb.errors import BindError

pytestmark = pytest.mark.mysql

HOST, PORT = "127.0.0.1", 3306


def _root() -> pymysql.Connection:
    return pymysql.connect(ssl_disabled=True, host=HOST, port=PORT, user="root", autocommit=True)


@pytest.fixture
def atk() -> Iterator[tuple[str, pymysql.Connection]]:
    try:
        conn = _root()
    except pymysql.err.OperationalError:
        pytest.skip("MariaDB not running")
    db = f"hybridwb_atk_{secrets.token_hex(4)}"
    c = conn.cursor()
    c.execute(f"CREATE DATABASE {db}")
    c.execute(f"CREATE TABLE {db}.t (a INT) ENGINE=MyISAM")
    c.execute(f"INSERT INTO {db}.t VALUES (1), (2)")
    c.execute(f"CREATE SEQUENCE {db}.s NOCACHE")  # each NEXTVAL shows in the oracle
    c.execute(
        f"CREATE FUNCTION {db}.evil() RETURNS INT MODIFIES SQL DATA "
        f"BEGIN INSERT INTO {db}.t VALUES (99); RETURN 1; END"
    )
    try:
        yield db, conn
    finally:
        c.execute(f"DROP DATABASE IF EXISTS {db}")
        conn.close()


def _url(db: str, extra: str = "") -> str:
    return f"mysql+pymysql://root@{HOST}:{PORT}/{db}?charset=utf8mb4{extra}"


def _state(conn: pymysql.Connection, db: str, lock: str) -> tuple:
    c = conn.cursor()
    c.execute(f"CHECKSUM TABLE {db}.t")
    checksum = c.fetchone()[1]
    c.execute(f"SELECT next_not_cached_value FROM {db}.s")
    seq = c.fetchone()[0]
    c.execute("SELECT IS_USED_LOCK(%s)", (lock,))
    held = c.fetchone()[0]
    c.execute(
        "SELECT (SELECT COUNT(*) FROM information_schema.tables WHERE table_schema=%s),"
        " (SELECT COUNT(*) FROM information_schema.routines WHERE routine_schema=%s)",
        (db, db),
    )
    return checksum, seq, held, c.fetchone()


def _dispose(wb: object) -> None:
    with contextlib.suppress(Exception):
        wb.source.engine.dispose()  # type: ignore[attr-defined]


# --- Finding 1: a tiny positive timeout removes the time limit ----------------------------
# seconds_arg() accepts any finite value > 0; engine._timeout_assignment formats MariaDB's
# limit with "%.3f", so timeout=0.0004 becomes `max_statement_time = 0.000` = NO limit.
# execute._run_on applies it (policy != default) and runs the statement; no read-back
# happens before (session_matches' `seconds > 0` is only consulted after, and only when an
# allowlisted function is called).


@pytest.mark.parametrize("timeout", [0.0004, 0.0049, 0.009], ids=["0.0004", "0.0049", "0.009"])
def test_finding_tiny_timeout_is_refused_not_run_unlimited(atk, timeout: float) -> None:
    """Fixed: a timeout below MIN_TIMEOUT_SECONDS (0.01 s) is refused with a one-line
    BindError; the oracle is the server's processlist/session, read as root: the statement
    never ran (no statement saw max_statement_time = 0)."""
    db, _ = atk
    wb = hybridwb.connect(source=_url(db))
    try:
        with pytest.raises(BindError, match="at least 0.01 seconds"):
            wb.sql("SELECT @@max_statement_time AS t", timeout=timeout)
        limit = wb.sql("SELECT @@max_statement_time AS t", timeout=0.01)["t"][0]
        assert float(limit) > 0, "the statement ran with max_statement_time = 0 (unlimited)"
    finally:
        _dispose(wb)


def test_time_limit_text_never_rounds_to_zero() -> None:
    """Defence in depth: whatever reaches the SET, it never says 0 (= unlimited)."""
    from hybridwb.source.session import _timeout_assignment

    for flavour in ("MariaDB", "MySQL"):
        with pytest.raises(BindError):
            _timeout_assignment(flavour, 0.0004)
        assert not _timeout_assignment(flavour, 0.01).endswith(("= 0", "= 0.000"))


def test_finding_tiny_timeout_lets_a_statement_run_past_every_limit(atk) -> None:
    """Oracle: processlist shows the statement still running after 4 s with timeout=0.0004
    (statement_timeout=1 is the configured ceiling)."""
    db, conn = atk
    wb = hybridwb.connect(source=_url(db), statement_timeout=1)
    marker = f"atk_{secrets.token_hex(3)}"
    q = (
        f"SELECT /* {marker} */ COUNT(*) FROM information_schema.columns a, "
        "information_schema.columns b, information_schema.columns c"
    )
    t = threading.Thread(target=lambda: _swallow(wb.sql, q, timeout=0.0004), daemon=True)
    t.start()
    time.sleep(4)
    c = conn.cursor()
    c.execute(
        "SELECT id, time FROM information_schema.processlist WHERE info LIKE %s "
        "AND info NOT LIKE '%%processlist%%'",
        (f"%{marker}%",),
    )
    rows = c.fetchall()
    for pid, _ in rows:
        c.execute(f"KILL QUERY {int(pid)}")
    t.join(10)
    _dispose(wb)
    assert not rows, f"statement still running after 4 s past a 1 s ceiling: {rows}"


def test_finding_tiny_timeout_through_mysql_magic(atk, monkeypatch) -> None:
    db, _ = atk
    monkeypatch.setenv("HYBRIDWB_SOURCE_URL", _url(db))
    sh = InteractiveShell.instance()
    try:
        sh.run_cell("%load_ext hybridwb")
        res = sh.run_cell("%%mysql --timeout 0.0004\nSELECT @@max_statement_time AS t")
        assert res.result is None, "%%mysql --timeout 0.0004 ran (with no limit)"
        assert "at least 0.01 seconds" in str(res.error_in_exec or res.error_before_exec)
    finally:
        sh.run_cell("%unload_ext hybridwb")
        InteractiveShell.clear_instance()


def _swallow(fn, *a, **k) -> None:  # type: ignore[no-untyped-def]
    with contextlib.suppress(Exception):
        fn(*a, **k)


# --- Finding 2: sql_mode NO_BACKSLASH_ESCAPES desynchronises the guard from the server ----
# guard.check tokenizes with sqlglot's MySQL dialect, where `\'` escapes a quote. Under
# NO_BACKSLASH_ESCAPES (a server/global sql_mode a DBA may set; here via init_command in the
# URL so the shared server is untouched) the server ends the string at `'\'`, so what the
# guard saw as one string literal is code: INTO OUTFILE, LOAD_FILE, GET_LOCK all pass.
# engine.session_sql never pins sql_mode, read_session never reads it back.

_NBE = "&init_command=SET+SESSION+sql_mode%3D%27NO_BACKSLASH_ESCAPES%27"


def test_finding_nbe_guard_bypass_takes_named_lock(atk) -> None:
    db, conn = atk
    lock = f"atk_nbe_{secrets.token_hex(3)}"
    wb = hybridwb.connect(source=_url(db, _NBE))
    try:
        before = _state(conn, db, lock)
        _swallow(wb.sql, "SELECT '\\', GET_LOCK(0x" + lock.encode().hex() + ", 0) -- '")
        after = _state(conn, db, lock)
        assert after == before, f"named lock taken through the guard: {before} -> {after}"
    finally:
        _dispose(wb)


def test_finding_nbe_guard_bypass_reads_server_file(atk) -> None:
    db, _ = atk
    wb = hybridwb.connect(source=_url(db, _NBE))
    try:
        content = Path("/etc/hostname").read_text().strip()
        got = None
        with contextlib.suppress(Exception):
            got = wb.sql("SELECT '\\', LOAD_FILE(0x" + b"/etc/hostname".hex() + ") AS f -- '")
        # fixed: sql_mode is pinned, so the server reads one string literal, as the guard did
        cells = [] if got is None else [str(v) for v in got.to_numpy().ravel()]
        assert not any(content and content in v for v in cells), f"server file read: {got}"
    finally:
        _dispose(wb)


def test_finding_ansi_quotes_guard_bypass_takes_named_lock(atk) -> None:
    """Same desync with ANSI_QUOTES (also part of sql_mode=ANSI/ORACLE/MSSQL...): sqlglot
    reads "\\" as an escaped quote inside a string, the server reads the identifier `\\`."""
    db, conn = atk
    lock = f"atk_ansi_{secrets.token_hex(3)}"
    wb = hybridwb.connect(source=_url(db, "&init_command=SET+SESSION+sql_mode%3D%27ANSI_QUOTES%27"))
    try:
        before = _state(conn, db, lock)
        _swallow(wb.sql, 'SELECT 1 AS "\\", GET_LOCK(0x' + lock.encode().hex() + ', 0) -- "')
        after = _state(conn, db, lock)
        assert after == before, f"named lock taken through the guard: {before} -> {after}"
    finally:
        _dispose(wb)


# (also reproduced by hand: SELECT '\' INTO OUTFILE '/tmp/hybridwb_atk_nbe.txt' -- '
#  created /tmp/hybridwb_atk_nbe.txt owned by mysql; not repeated here, it cannot be removed.)


# --- Finding 3: views (stored data) run server code the guard never sees ------------------
# The guard checks only the text; a view's body may call GET_LOCK, LOAD_FILE or a stored
# function. Nothing reads session state back (execute.may_run_server_code is False without
# allowed_functions), and checkout only resets READ ONLY / time limit / select limit, so a
# named lock and user variables survive on the pooled connection.


def test_finding_view_takes_named_lock_kept_on_pool(atk) -> None:
    db, conn = atk
    lock = f"atk_view_{secrets.token_hex(3)}"
    conn.cursor().execute(f"CREATE VIEW {db}.v_lock AS SELECT GET_LOCK('{lock}', 0) AS x")
    wb = hybridwb.connect(source=_url(db))
    try:
        before = _state(conn, db, lock)
        _swallow(wb.sql, "SELECT * FROM v_lock")
        after = _state(conn, db, lock)
        assert after[2] is None, f"named lock {lock} held by pooled connection {after[2]}"
        assert after == before
    finally:
        _dispose(wb)


def test_finding_view_reads_server_file_only_with_file_privilege_which_doctor_fails(
    atk,
) -> None:
    """Residue by design: a view's body is stored server code the guard never sees, so
    `LOAD_FILE` inside a view runs. The server checks the FILE privilege of the *reading*
    account (not the view's definer): without FILE it returns NULL; with FILE it reads the
    file, and layer 3 (grants review) is the defence: `test_connection()` lists
    `REVOKE FILE` and `doctor` FAILs "account grants". Oracle: the file's content and the
    account's grants are set up here as root, independently of hybridwb."""
    db, conn = atk
    c = conn.cursor()
    c.execute(f"CREATE VIEW {db}.v_file AS SELECT LOAD_FILE('/etc/hostname') AS f")
    user, password = f"hybridwb_atkf_{secrets.token_hex(3)}", secrets.token_hex(8)
    c.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))
    try:
        c.execute(f"GRANT SELECT ON {db}.* TO %s@'%%'", (user,))
        url = f"mysql+pymysql://{user}:{password}@{HOST}:{PORT}/{db}?charset=utf8mb4"
        wb = hybridwb.connect(source=url)
        try:
            assert wb.sql("SELECT f FROM v_file")["f"].isna().all(), "read without FILE"
            info = wb.test_connection()
            assert not info.can_write and not any("FILE" in r for r in info.revokes)
        finally:
            _dispose(wb)
        c.execute("GRANT FILE ON *.* TO %s@'%%'", (user,))
        wb = hybridwb.connect(source=url)
        try:
            assert not wb.sql("SELECT f FROM v_file")["f"].isna().all()  # the residue
            info = wb.test_connection()
            assert any(r.startswith("REVOKE FILE") for r in info.revokes), info.revokes
            from hybridwb.observability.doctor import run_doctor

            assert run_doctor(wb).status_of("account grants") == "FAIL"
        finally:
            _dispose(wb)
    finally:
        c.execute("DROP USER IF EXISTS %s@'%%'", (user,))


def test_finding_view_function_leaves_user_variable_on_pool(atk) -> None:
    db, conn = atk
    c = conn.cursor()
    c.execute(
        f"CREATE FUNCTION {db}.setvar() RETURNS INT BEGIN SET @atk_survive = 42; RETURN 1; END"
    )
    c.execute(f"CREATE FUNCTION {db}.getvar() RETURNS TEXT RETURN COALESCE(@atk_survive, 'none')")
    c.execute(f"CREATE VIEW {db}.v_set AS SELECT {db}.setvar() AS x")
    c.execute(f"CREATE VIEW {db}.v_get AS SELECT {db}.getvar() AS x")
    wb = hybridwb.connect(source=_url(db))
    try:
        _swallow(wb.sql, "SELECT * FROM v_set")
        seen = wb.sql("SELECT * FROM v_get")["x"][0]
        assert seen == "none", f"user variable @atk_survive={seen} survived on the pool"
    finally:
        _dispose(wb)


# Also held (checked by hand, not parametrized): SLEEP inside a view and inside a stored
# function called by a view stop at statement_timeout=1; a stored function writing a MyISAM
# table or NEXTVAL through a view fails on READ ONLY; SET SESSION max_statement_time=0 in a
# function via a view is reset at the next checkout; pd.read_sql on wb.source.engine refuses
# GET_LOCK / INTO OUTFILE / LIMIT 18446744073709551615 / LIMIT 1, 99999999; targets.preview
# with saved SQL (INTO OUTFILE, GET_LOCK, hostile :a value) is guarded; |ident doubles
# backticks and the spliced cell is guarded again; timeout NaN/negative/str/bool/above the
# ceiling is refused by seconds_arg; the source URL's charset is overridden by utf8mb4.

# --- Corpus that held ---------------------------------------------------------------------
HELD = [
    ("SELECT `nextval`(s)", None),
    ("SELECT s.nextval", None),
    ("SELECT evil ()", None),
    ("SELECT `evil`()", None),
    ("SELECT {db}.evil()", None),
    ("SELECT evil/**/()", None),
    ("SELECT evil\n()", None),
    ("SELECT t.evil() FROM t", None),
    ("SELECT 'a' evil()", None),
    ("WITH evil(a) AS (SELECT 1) SELECT evil()", None),
    ("SELECT x MEMBER OF (evil())", None),
    ("SELECT MATCH(a) AGAINST(evil())", None),
    ("SELECT 'x' COLUMNS (evil())", None),
    ("SELECT ROW(evil())", None),
    ("SELECT POINT(1, evil())", None),
    ("SELECT CONVERT(evil(), CHAR)", None),
    ("SELECT COLUMN_GET(COLUMN_CREATE('a', evil()), 'a' AS INT)", None),
    (
        "SELECT * FROM JSON_TABLE('[1]', '$[*]' COLUMNS (y INT PATH '$' DEFAULT evil() ON EMPTY)) j",
        None,
    ),
    ("SELECT 1 FROM t WHERE a IN (SELECT evil())", None),
    ("SELECT 1 FROM t PROCEDURE ANALYSE()", None),
    ("SELECT 1 FROM t WHERE a = :a", {"a": "\\' OR evil() -- "}),
    ("SELECT :a", {"a": "\u00a5' , evil() -- "}),
    ("SELECT :a", {"a": "x'/*"}),
    ("SELECT :a", {"a": "x' # "}),
    ("SELECT '\\', GET_LOCK('atk_held', 0) -- '", None),  # default sql_mode: one string
    ("SELECT 1 /*!99999 , GET_LOCK('atk_held', 0) */", None),
    ("SELECT 1 /*M!100000 , GET_LOCK('atk_held', 0) */", None),
    ("SELECT 1; DO GET_LOCK('atk_held', 0)", None),
    ("SELECT 1 INTO @v", None),
    ("SELECT @v := 1", None),
    ("SELECT * FROM t FOR UPDATE", None),
    ("SELECT * FROM t LOCK IN SHARE MODE", None),
    ("SELECT NEXT VALUE FOR s", None),
    ("SELECT /*+ SET_VAR(max_statement_time=0) */ 1", None),
    ("SET STATEMENT max_statement_time=0 FOR SELECT 1", None),
    ("HANDLER t OPEN", None),
    ("LOCK TABLES t READ", None),
    ("DO GET_LOCK('atk_held', 0)", None),
    ("ANALYZE TABLE t", None),
    ("XA START 'x'", None),
    ("DESCRIBE DELETE FROM t", None),
    ("EXPLAIN ANALYZE DELETE FROM t", None),
]


@pytest.mark.parametrize(("sql", "params"), HELD)
def test_held(atk, sql: str, params: dict | None) -> None:
    db, conn = atk
    wb = hybridwb.connect(source=_url(db))
    try:
        before = _state(conn, db, "atk_held")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _swallow(wb.sql, sql.replace("{db}", db), params)
        assert _state(conn, db, "atk_held") == before
        session = wb.sql("SELECT @@tx_read_only AS ro, @@max_statement_time AS t")
        assert int(session["ro"][0]) == 1 and float(session["t"][0]) > 0
    finally:
        _dispose(wb)


def test_saved_sql_target_admits_only_the_sources_allowlisted_functions(atk) -> None:
    """A saved-SQL target is guarded with the Source's allowed_functions: an allowlisted
    stored function passes the guard (the one-row probe then runs it on the server), any
    other is refused. The mapping service is a stand-in (only `.source` and `.get` are
    used on this path); the Source and the server are real."""
    from types import SimpleNamespace

    from sqlalchemy.engine import make_url

    from hybridwb.errors import ReadOnlyViolation
    from hybridwb.source import Source
    from hybridwb.targets.definition import parse
    from hybridwb.targets.service import TargetService

    db, conn = atk
    conn.cursor().execute(f"CREATE FUNCTION {db}.one() RETURNS INT DETERMINISTIC RETURN 1")
    for allowed, admitted in ((("one",), True), ((), False)):
        src = Source(make_url(_url(db)), allowed_functions=allowed, pool_size=1)
        mapping = SimpleNamespace(key="id", recipient=None, fields={})
        svc = TargetService(
            SimpleNamespace(source=src, get=lambda _t, m=mapping: m),  # type: ignore[arg-type]
            SimpleNamespace(resolver=None),  # type: ignore[arg-type]
        )
        try:
            d = parse({"sql": "SELECT one() AS id"})
            try:
                svc._saved_query_plan(d, "t")
                refused = False
            except ReadOnlyViolation:
                refused = True
            except Exception:  # past the guard; the stand-in mapping is incomplete
                refused = False
            assert refused is not admitted, (allowed, refused)
        finally:
            src.close()


def test_a_lock_taken_by_a_view_not_yet_known_is_released_at_the_next_checkout(atk) -> None:
    """A view that replaced a table after the (10 s) list was read is not read back after
    the statement; the session SET sent when the connection returns to the pool releases its
    named lock, and the next checkout waits for that SET's reply before anything runs."""
    db, conn = atk
    lock = f"atk_late_{secrets.token_hex(3)}"
    conn.cursor().execute(f"CREATE VIEW {db}.v_late AS SELECT GET_LOCK('{lock}', 0) AS x")
    wb = hybridwb.connect(source=_url(db), source_pool_size=1, source_max_overflow=1)
    try:
        # the list read while v_late was still a table: the statement is not read back
        wb.source._views.put(db, ["v_late"])
        wb.sql("SELECT * FROM v_late")
        released = time.monotonic() + 5  # the SET runs on the server as soon as it arrives
        while _state(conn, db, lock)[2] is not None and time.monotonic() < released:
            time.sleep(0.01)
        assert _state(conn, db, lock)[2] is None, "the lock outlived the return to the pool"
        wb.sql("SELECT 1")
        assert _state(conn, db, lock)[2] is None, "the checkout did not release the lock"
    finally:
        _dispose(wb)


def test_sql_mode_changed_on_a_pooled_connection_is_pinned_again_at_checkout(atk) -> None:
    """Whatever changed sql_mode on a pooled connection, the next statement runs with the
    pinned mode (oracle: the server's own @@sql_mode seen by that statement)."""
    from hybridwb.source.engine import SQL_MODE

    db, _ = atk
    wb = hybridwb.connect(source=_url(db), source_pool_size=1, source_max_overflow=1)
    try:
        wb.sql("SELECT 1")
        raw = wb.source.engine.raw_connection()
        try:
            from hybridwb.source.rawguard import internal  # past the guard, as server code

            with internal(raw.dbapi_connection):
                raw.cursor().execute("SET SESSION sql_mode = 'ANSI_QUOTES,NO_BACKSLASH_ESCAPES'")
        finally:
            raw.close()
        seen = wb.sql("SELECT @@sql_mode AS m")["m"][0]
        assert set(seen.split(",")) == set(SQL_MODE.split(","))
    finally:
        _dispose(wb)


def test_sql_mode_changed_by_a_statement_is_refused_and_restored_with_the_guard_off(atk) -> None:
    """Layer 2 on its own (guard off): the read-back after the statement includes sql_mode,
    so a statement that changes it is refused and the session restored (oracle: the
    server's @@sql_mode seen by the next statement on the same single connection)."""
    from sqlalchemy.engine import make_url

    from hybridwb.errors import ReadOnlyViolation
    from hybridwb.source import Source
    from hybridwb.source.engine import SQL_MODE

    db, _ = atk
    src = Source(make_url(_url(db)), use_guard=False, pool_size=1, max_overflow=0)
    try:
        with pytest.raises(ReadOnlyViolation, match="sql_mode"):
            src.sql("SET SESSION sql_mode = 'ANSI_QUOTES'")
        raw = src.engine.raw_connection()
        try:
            cur = raw.cursor()
            cur.execute("SELECT @@session.sql_mode")
            assert set(cur.fetchone()[0].split(",")) == set(SQL_MODE.split(","))
        finally:
            raw.close()
    finally:
        src.close()
