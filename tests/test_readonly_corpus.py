"""The attack corpus on real MariaDB through the public API, with a writable root account.

After every attack an independent oracle (direct PyMySQL) checks that nothing changed:
table checksums, schema objects, accounts, the sequence, the files the statement names, the
named lock, and the pooled session's READ ONLY flag and time limit. Every legitimate read
returns the same rows as the same statement run directly by PyMySQL.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest
from data.readonly_cases import ATTACKS, LOCK, READS, Attack, Read
from IPython.core.error import UsageError

import hybridwb
from hybridwb.errors import HybridwbError
from hybridwb.magics import load
from hybridwb.workbench import Workbench
from tests._mysql import plain_root, read_while_still
from tests.conftest import admin_url
from tests.test_magics import RaisingShell

pytestmark = pytest.mark.mysql

OBJECTS = [
    "CREATE TABLE hb_sink (n INT PRIMARY KEY) ENGINE = MyISAM",
    "CREATE FUNCTION hb_write() RETURNS INT MODIFIES SQL DATA "
    "BEGIN INSERT INTO hb_sink VALUES (FLOOR(RAND() * 1000000)); RETURN 1; END",
    "CREATE FUNCTION hb_rw() RETURNS INT BEGIN SET SESSION TRANSACTION READ WRITE; RETURN 1; END",
    "CREATE FUNCTION hb_notimeout() RETURNS INT BEGIN SET SESSION max_statement_time = 0; "
    "RETURN 1; END",
    "CREATE PROCEDURE hb_proc() BEGIN INSERT INTO hb_sink VALUES (7); END",
    "CREATE SEQUENCE hb_seq NOCACHE",  # each NEXTVAL shows in next_not_cached_value
    "CREATE TABLE hb_defaults (a INT, b INT DEFAULT (NEXTVAL(hb_seq)))",
    "INSERT INTO hb_defaults (a) VALUES (1)",
]
DROPS = [
    "DROP TABLE IF EXISTS hb_sink",
    "DROP FUNCTION IF EXISTS hb_write",
    "DROP FUNCTION IF EXISTS hb_rw",
    "DROP FUNCTION IF EXISTS hb_notimeout",
    "DROP PROCEDURE IF EXISTS hb_proc",
    "DROP TABLE IF EXISTS hb_defaults",
    "DROP SEQUENCE IF EXISTS hb_seq",
]


def _direct(db: str) -> pymysql.Connection:
    return plain_root(db, autocommit=True)


@pytest.fixture(scope="module")
def corpus_db(mysql_db: str) -> Iterator[str]:
    conn = _direct(mysql_db)
    with conn.cursor() as cur:
        for sql in DROPS + OBJECTS:
            cur.execute(sql)
    yield mysql_db
    with conn.cursor() as cur:
        for sql in DROPS:
            cur.execute(sql)
    conn.close()


@pytest.fixture(scope="module")
def oracle(corpus_db: str) -> Iterator[pymysql.Connection]:
    conn = _direct(corpus_db)
    yield conn
    conn.close()


def root_workbench(db: str, **source: Any) -> Workbench:
    wb = hybridwb.connect(
        source=admin_url(db).render_as_string(hide_password=False), statement_timeout=2
    )
    if source:
        from hybridwb.source import Source

        wb.source = Source(admin_url(db), statement_timeout=2, pool_size=1, **source)
        wb.source.querylog = wb.querylog
    return wb


def snapshot(conn: pymysql.Connection, wb: Workbench, attack: Attack | None = None) -> dict:
    """Everything an attack could change, read directly (never through hybridwb's checks)."""
    db = conn.db.decode() if isinstance(conn.db, bytes) else conn.db
    with conn.cursor() as cur:
        cur.execute("CHECKSUM TABLE customers, subscriptions, payments, hb_sink")
        sums = cur.fetchall()
        cur.execute(
            "SELECT 'table', TABLE_NAME, ENGINE FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = %s UNION ALL "
            "SELECT 'routine', ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES "
            "WHERE ROUTINE_SCHEMA = %s UNION ALL "
            "SELECT 'trigger', TRIGGER_NAME, '' FROM information_schema.TRIGGERS "
            "WHERE TRIGGER_SCHEMA = %s UNION ALL "
            "SELECT 'event', EVENT_NAME, '' FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s "
            "UNION ALL SELECT 'user', User, Host FROM mysql.user WHERE User LIKE 'hb\\_atk%%' "
            "UNION ALL SELECT 'db', SCHEMA_NAME, '' FROM information_schema.SCHEMATA "
            "WHERE SCHEMA_NAME LIKE 'hb\\_atk%%' ORDER BY 1, 2",
            (db, db, db, db),
        )
        objects = cur.fetchall()
        cur.execute("SELECT next_not_cached_value FROM hb_seq")
        seq = cur.fetchall()
        cur.execute("SELECT IS_FREE_LOCK(%s)", (LOCK,))
        lock = cur.fetchall()
    with wb.source.engine.connect() as pooled:  # the session the next statement gets
        session = pooled.exec_driver_sql("SELECT @@tx_read_only, @@max_statement_time").fetchall()
    files = [f for f in (attack.files if attack else []) if os.path.exists(f)]
    return {
        "sums": sums,
        "objects": objects,
        "seq": seq,
        "lock": lock,
        "session": session,
        "files": files,
    }


_BASELINES: dict[int, dict] = {}


def baseline(conn: pymysql.Connection, wb: Workbench) -> dict:
    """The state before the first attack on this workbench: every attack must leave it so
    (one snapshot per attack keeps the corpus fast; a change shows at the attack that made it
    and at every later one)."""
    if id(wb) not in _BASELINES:
        _BASELINES[id(wb)] = snapshot(conn, wb)
    return _BASELINES[id(wb)]


def _sql(attack: Attack, db: str) -> str:
    return attack.sql.replace("{db}", db)


@pytest.fixture(scope="module")
def guarded(corpus_db: str) -> Iterator[Workbench]:
    wb = root_workbench(corpus_db)
    yield wb
    wb.close()


@pytest.fixture(scope="module", params=["all-layers", "guard-alone"])
def layers(request: pytest.FixtureRequest, corpus_db: str) -> Iterator[Workbench]:
    """All layers with a writable root account; or the guard alone (session not READ ONLY)."""
    if request.param == "all-layers":
        yield request.getfixturevalue("guarded")
        return
    wb = root_workbench(corpus_db, read_only_session=False)
    yield wb
    wb.close()


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.id for a in ATTACKS])
def test_attack_through_wb_sql_changes_nothing(
    attack: Attack, layers: Workbench, oracle: pymysql.Connection, corpus_db: str
) -> None:
    guarded = layers
    before = baseline(oracle, guarded)
    error: HybridwbError | None = None
    try:
        guarded.sql(_sql(attack, corpus_db), attack.params)
    except HybridwbError as exc:
        error = exc
    assert snapshot(oracle, guarded, attack) == before  # the oracle first: nothing changed
    if attack.error is None:
        assert error is None, str(error)
    else:
        assert type(error) is attack.error, str(error)
        if attack.error is attack.guard_error:
            assert attack.words in str(error)


MAGIC = [a for a in ATTACKS if a.params is None and a.error is not None][::12]


@pytest.fixture(scope="module")
def shell(guarded: Workbench) -> Iterator[RaisingShell]:
    sh = RaisingShell()
    load(sh, guarded)
    yield sh
    RaisingShell.clear_instance()


@pytest.mark.parametrize("attack", MAGIC, ids=[a.id for a in MAGIC])
def test_attack_through_the_mysql_magic_changes_nothing(
    attack: Attack,
    shell: RaisingShell,
    guarded: Workbench,
    oracle: pymysql.Connection,
    corpus_db: str,
) -> None:
    before = baseline(oracle, guarded)
    with pytest.raises(UsageError) as info:
        shell.run_cell("%%mysql\n" + _sql(attack, corpus_db))
    if attack.error is attack.guard_error:
        assert attack.words in str(info.value)
    assert snapshot(oracle, guarded, attack) == before


@pytest.mark.parametrize(
    "value",
    [" OR SLEEP(3) OR ", " OR hb_write() OR ", f" OR GET_LOCK(0x{LOCK.encode().hex()}, 0) OR "],
    ids=["sleep", "stored", "lock"],
)
def test_template_brace_inside_a_literal_in_the_magic_changes_nothing(
    value: str, shell: RaisingShell, guarded: Workbench, oracle: pymysql.Connection
) -> None:
    before = baseline(oracle, guarded)
    shell.user_ns["a"] = value
    try:
        result = shell.run_cell(
            "%%mysql\nSELECT customer_id FROM customers WHERE name = '{{ a }}'"
        ).result
    except UsageError:
        result = None
    assert result is None or len(result) == 0
    assert snapshot(oracle, guarded) == before


def _rows(rows: Any) -> list[tuple]:
    return [tuple(r) for r in rows]


@pytest.mark.parametrize("read", READS, ids=[r.id for r in READS])
def test_read_returns_what_pymysql_returns(
    read: Read, guarded: Workbench, oracle: pymysql.Connection
) -> None:
    """Compared while the server's answer held still (`read_while_still`)."""

    def direct() -> list[tuple[Any, ...]]:
        with oracle.cursor() as cur:
            cur.execute(read.direct or read.sql, read.args or None)
            return _rows(cur.fetchall())

    def through() -> list[tuple[Any, ...]]:
        return [tuple(r.values()) for r in guarded.source.records(read.sql, read.params)]

    want, got = read_while_still(direct, through)
    assert got == want
