"""Server error text is shown and stored by one rule (`catalogue.server_text`), and a failed
statement's query log keeps only names that resolve against the schema (issue 15,
findings 2, 3 and 7, and one more round of attempts on the same paths).

Pure table-driven checks first; then end to end on the SQLite sample, MariaDB and a
PostgreSQL store, with the stored logs read by plain `sqlite3` / `psycopg` and the raw
server message captured from the driver as the oracle (it really holds the value)."""

from __future__ import annotations

import sqlite3
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

import hybridwb
from hybridwb.source.catalogue import server_text, unknown_column_message
from hybridwb.source.querylog import log_text_of
from hybridwb.source.sample import build_sqlite
from tests import _stores
from tests.conftest import _admin, admin_url, install_sample_mappings, ro_url

PHONE, EMAIL, NAME = "010-2345-6789", "kim.canary@example.com", "백지훈"
SECRET = (PHONE, "2345-6789", EMAIL, "kim.canary", NAME)


# == the one rule, pure =====================================================================
@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("Duplicate entry 'x'010-2345-67891' for key 'group_key'", "Duplicate entry"),
        ('invalid input syntax for type integer: "x"010-2345-6789"', "invalid input syntax"),
        ("Duplicate entry 'O\\'Brien 010-2345-6789' for key 'k'", "Duplicate entry"),
        ("Incorrect value: `x`010-2345-6789` for column `c`", "Incorrect value"),
        ("Truncated incorrect value: \u300c010-2345-6789\u300d", "Truncated incorrect"),
        ("Truncated incorrect value: \u201c010-2345-6789\u201d", "Truncated incorrect"),
        ("Truncated incorrect value: \uff07010-2345-6789\uff07", "Truncated incorrect"),
        ("Truncated incorrect value: \\010-2345-6789", "Truncated incorrect"),
        ("Duplicate entry 'x\n010-2345-6789' for key 'k'", "Duplicate entry"),
        ("Duplicate entry 'x'\n010-2345-6789", "Duplicate entry"),
        ("Duplicate entry 'x' \n010-2345-6789", "Duplicate entry"),
        ("Duplicate entry 'x'\x00010-2345-6789", "Duplicate entry"),
        ("value too long\x00010-2345-6789", "value too long"),
        ("value too long\u2028010-2345-6789", "value too long"),
        ("error\nLINE 1: SELECT * FROM t WHERE name = 백지훈", "error"),
        ("Table 'db.x' doesn't exist 010-2345-6789", "Table"),
        ("no such column: 백지훈", "no such column"),
        ("no such table: kim.canary@example.com", "no such table"),
        ("no such table: 백지훈", "no such table"),
        ("ambiguous column name: kim.canary", "ambiguous column name"),
        ("Unknown column 'kim.canary@example.com' in 'WHERE'", "Unknown column"),
        ('near "kim.canary": syntax error', "near"),
    ],
    ids=[
        "apostrophe-in-value",
        "double-quote-in-value",
        "backslash-escaped-quote",
        "backtick",
        "korean-corner-brackets",
        "typographic-quotes",
        "fullwidth-apostrophe",
        "bare-backslash",
        "newline-inside-quotes",
        "newline-after-last-quote",
        "space-then-newline",
        "nul-after-quote",
        "nul-unquoted",
        "line-separator",
        "postgres-statement-line",
        "apostrophe-in-doesnt",
        "sqlite-column-echo",
        "sqlite-table-echo",
        "sqlite-table-echo-hangul",
        "sqlite-ambiguous-echo",
        "mysql-unknown-column",
        "sqlite-near",
    ],
)
def test_server_text_keeps_words_not_values(text: str, kept: str) -> None:
    shown = server_text(text)
    assert shown.startswith(kept), shown
    assert not [s for s in SECRET if s in shown], shown
    assert "\n" not in shown and "\x00" not in shown


def test_server_text_keeps_the_servers_words_after_the_last_quote() -> None:
    assert server_text('relation "kim" does not exist') == "relation '?' does not exist"
    assert server_text("Unknown column 'a' in 'x' in 'WHERE'") == "Unknown column '?'"


@pytest.mark.parametrize(
    "text",
    [
        # MySQL cuts a message at 512 bytes: the closing quote is gone, the last quote
        # left is the one inside the value
        "Duplicate entry '" + "a" * 480 + "' kim canary' for key 'k'",
        "Duplicate entry 'x' 010-2345-6789 y",
        "Duplicate entry 'x'' kim.canary@example.com",
        "Duplicate entry 'x' 백지훈",
    ],
    ids=["cut-by-the-server", "digits-after-quote", "email-after-quote", "hangul-after-quote"],
)
def test_server_text_drops_a_tail_that_may_be_a_value(text: str) -> None:
    shown = server_text(text[:512])
    assert shown == "Duplicate entry '?'", shown
    assert "kim" not in shown and "2345" not in shown


def test_server_text_removes_bound_values_left_unquoted() -> None:
    assert PHONE not in server_text(f"Out of range value {PHONE}", [PHONE])


@pytest.mark.parametrize(
    ("raw", "part"),
    [
        ("Unknown column '백지훈' in 'where clause'", "in the WHERE part"),
        ("Unknown column 'kim' in 'WHERE'", "in the WHERE part"),
        ("Unknown column 'x' in 'y' in 'field list'", "in the SELECT part"),
        ("no such column: 백지훈", "Unknown column;"),
    ],
    ids=["mysql-5", "mariadb-11", "quote-in-name", "sqlite"],
)
def test_unknown_column_message_names_the_part_not_the_column(raw: str, part: str) -> None:
    message = unknown_column_message(raw, {"customers", "name", "email"})
    assert message is not None and part in message and "quotes" in message
    assert "백지훈" not in message and "kim" not in message


def test_unknown_column_message_suggests_a_close_schema_column() -> None:
    message = unknown_column_message("no such column: emial", {"customers", "email"})
    assert message is not None and "did you mean email?" in message


# == the log of a failed statement, pure ====================================================
SCHEMA = frozenset({"customers", "name", "email", "phone", "customer_id"})


@pytest.mark.parametrize(
    "sql",
    [
        f"SELECT * FROM customers WHERE name = {NAME}",
        f"SELECT * FROM customers WHERE email = {EMAIL}",
        f"SELECT * FROM customers WHERE email = `{EMAIL}`",
        f"SELECT * FROM customers WHERE name IN ({NAME}, kim)",
        f"SELECT * FROM customers WHERE name = \u300c{NAME}\u300d",
        f"SELECT * FROM customers WHERE phone = {PHONE.replace('-', '')}",
        f"SELECT {NAME}(1) FROM customers",
        f"SELECT * FROM customers WHERE name = {NAME}\x00",
    ],
    ids=["name", "email", "backticked", "list", "corner-brackets", "digits", "call", "nul"],
)
def test_failed_statement_log_keeps_only_schema_names(sql: str) -> None:
    logged = log_text_of(sql, SCHEMA)
    assert not [s for s in (*SECRET, "kim", "canary", "23456789") if s in logged], logged
    assert "customers" in logged


def test_failed_statement_log_keeps_bind_names() -> None:
    logged = log_text_of("SELECT * FROM customers WHERE name IN (:who, :백지훈)", SCHEMA)
    assert logged == "SELECT * FROM customers WHERE name IN ( : who , : ? )"


def test_failed_statement_log_keeps_sql_words_and_functions() -> None:
    logged = log_text_of(
        "SELECT count(*), c.name FROM customers c ORDER BY name NULLS LAST", SCHEMA | {"c"}
    )
    assert logged == "SELECT count ( * ) , c . name FROM customers c ORDER BY name NULLS LAST"


# == end to end: the sample ================================================================
@pytest.fixture
def sqlite_project(tmp_path: Path) -> Path:
    home = tmp_path / ".hybridwb"
    home.mkdir()
    build_sqlite(home / "sample.db", 40)
    install_sample_mappings(tmp_path)
    return tmp_path


def _customer(db: Path) -> dict[str, str]:
    with sqlite3.connect(db) as conn:
        name, email, phone = conn.execute(
            "SELECT name, email, phone FROM customers ORDER BY customer_id LIMIT 1"
        ).fetchone()
    return {"name": name, "email": email, "phone": phone}


def _logs_on_disk(root: Path) -> list[tuple[str, str | None]]:
    """The oracle: query_logs read from the store file with plain sqlite3."""
    with sqlite3.connect(root / ".hybridwb" / "platform.db") as conn:
        return conn.execute("SELECT query, error_message FROM query_logs").fetchall()


@pytest.mark.parametrize(
    "where",
    [
        "name = {name}",
        "email = {email}",
        "name = {name} AND email = {email}",
        "name IN ({name})",
    ],
    ids=["name", "email", "two-values", "in-list"],
)
def test_sample_error_and_log_keep_no_unquoted_value(sqlite_project: Path, where: str) -> None:
    customer = _customer(sqlite_project / ".hybridwb" / "sample.db")
    local = customer["email"].split("@")[0]
    with (
        hybridwb.connect(cwd=sqlite_project, env={}) as wb,
        pytest.raises(hybridwb.HybridwbError) as info,
    ):
        wb.sql(f"SELECT * FROM customers WHERE {where.format(**customer)}")
    logs = _logs_on_disk(sqlite_project)
    stored = repr(logs)
    assert logs and logs[-1][1]  # the failed statement was logged, with its error
    for value in (customer["name"], local):
        assert value not in str(info.value)
        assert value not in stored, stored
    assert "customers" in stored  # the log still says what was queried


def test_sample_backticked_value_is_not_kept_in_query_logs(sqlite_project: Path) -> None:
    """On SQLite an unknown double-quoted name is read as a string, so this one runs."""
    customer = _customer(sqlite_project / ".hybridwb" / "sample.db")
    with hybridwb.connect(cwd=sqlite_project, env={}) as wb:
        wb.sql(f"SELECT * FROM customers WHERE name = `{customer['name']}`")
    stored = repr(_logs_on_disk(sqlite_project))
    assert customer["name"] not in stored and "customers" in stored, stored


def test_sample_unknown_column_error_helps_without_the_name(sqlite_project: Path) -> None:
    with (
        hybridwb.connect(cwd=sqlite_project, env={}) as wb,
        pytest.raises(hybridwb.QueryError) as info,
    ):
        wb.sql("SELECT emial FROM customers")
    assert "Unknown column" in str(info.value) and "did you mean email?" in str(info.value)
    assert "emial" not in str(info.value)


# == end to end: MariaDB (the raw server message is the oracle) ==========================
@pytest.fixture(scope="module")
def small_mysql() -> Iterator[str]:
    name = f"hybridwb_st15_{uuid.uuid4().hex[:8]}"
    conn = _admin()
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        load(admin_url(name), 40)
        yield name
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


def load(url: object, n: int) -> None:
    from hybridwb.source.sample import load as load_sample

    load_sample(url, n)  # type: ignore[arg-type]


def _root_error(database: str, sql: str) -> str:
    """The server's own message for `sql`, as root (the oracle)."""
    import pymysql

    conn = _admin()
    try:
        conn.select_db(database)
        with conn.cursor() as cur:
            try:
                cur.execute(sql)
            except pymysql.MySQLError as exc:
                return str(exc.args[1])
    finally:
        conn.close()
    raise AssertionError("the statement did not fail")


def _phone(database: str) -> str:
    conn = _admin()
    try:
        conn.select_db(database)
        with conn.cursor() as cur:
            cur.execute("SELECT phone FROM customers ORDER BY customer_id LIMIT 1")
            return str(cur.fetchone()[0])
    finally:
        conn.close()


#: quote kinds a value may carry in front of the phone, echoed unescaped by the server
QUOTED = [
    ("'", "apostrophe"),
    ('"', "double-quote"),
    ("\\\\", "backslash"),
    ("`", "backtick"),
    ("\u300c", "corner-bracket"),
    ("\\n", "newline"),
]


@pytest.mark.mysql
@pytest.mark.parametrize("quote", [q for q, _ in QUOTED], ids=[i for _, i in QUOTED])
def test_mariadb_duplicate_entry_hides_the_value_behind_any_quote(
    small_mysql: str, tmp_path: Path, quote: str
) -> None:
    phone = _phone(small_mysql)
    quote_sql = quote.replace("'", "''")
    sql = (
        f"SELECT COUNT(*), CONCAT('x{quote_sql}', (SELECT phone FROM customers "
        "ORDER BY customer_id LIMIT 1), FLOOR(RAND(0)*2)) AS x FROM customers GROUP BY x"
    )
    assert phone in _root_error(small_mysql, sql)  # the server really echoes it
    url = ro_url(small_mysql)
    install_sample_mappings(tmp_path, url)
    with (
        hybridwb.connect(
            source=url.render_as_string(hide_password=False), cwd=tmp_path, env={}
        ) as wb,
        pytest.raises(hybridwb.HybridwbError) as info,
    ):
        wb.sql(sql)
    assert "Duplicate entry" in str(info.value) and phone not in str(info.value)
    logs = _logs_on_disk(tmp_path)
    assert logs and phone not in repr(logs)


@pytest.mark.mysql
def test_mariadb_engine_path_hides_the_value_behind_a_quote(
    small_mysql: str, tmp_path: Path
) -> None:
    """`pd.read_sql(sql, wb.source.engine)` (jupysql, pandas) translates errors too."""
    import pandas as pd

    phone = _phone(small_mysql)
    sql = (
        "SELECT COUNT(*), CONCAT('x''', (SELECT phone FROM customers "
        "ORDER BY customer_id LIMIT 1), FLOOR(RAND(0)*2)) AS x FROM customers GROUP BY x"
    )
    url = ro_url(small_mysql)
    install_sample_mappings(tmp_path, url)
    with (
        hybridwb.connect(
            source=url.render_as_string(hide_password=False), cwd=tmp_path, env={}
        ) as wb,
        pytest.raises(Exception) as info,
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        pd.read_sql(sql, wb.source.engine)
    shown = str(info.value) + repr(info.value)
    assert "Duplicate entry" in shown and phone not in shown, shown


@pytest.mark.mysql
def test_mariadb_syntax_error_shows_the_place_without_an_unquoted_value(
    small_mysql: str, tmp_path: Path
) -> None:
    sql = "SELECT * FROM customers WHERE name = 'x' ORDER BY name NULLS LAST, 지훈"
    assert "지훈" in _root_error(small_mysql, sql)
    url = ro_url(small_mysql)
    install_sample_mappings(tmp_path, url)
    with (
        hybridwb.connect(
            source=url.render_as_string(hide_password=False), cwd=tmp_path, env={}
        ) as wb,
        pytest.raises(hybridwb.QueryError) as info,
    ):
        wb.sql(sql)
    assert "near 'NULLS LAST , ?' at line 1" in str(info.value), str(info.value)
    assert "지훈" not in repr(_logs_on_disk(tmp_path))


# == end to end: a PostgreSQL store (psycopg is the oracle) ================================
@pytest.fixture
def pg_store(tmp_path: Path) -> Iterator[tuple[str, str]]:
    (tmp_path / "pg").mkdir()
    for name in _stores.pg_store_with_contacts("st15", PHONE, unique=True):
        store = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        yield store, f"host=127.0.0.1 port=5432 user=postgres dbname={name}"


def _store_error(store: str, root: Path, sql: str, *, write: bool = False) -> str:
    with (
        hybridwb.connect(store=store, cwd=root, env={}) as wb,
        pytest.raises(hybridwb.HybridwbError) as info,
    ):
        wb.store.sql(sql, write=write)
    return str(info.value) + repr(info.value) + repr(info.value.fields)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT ('x' || chr(34) || recipient)::int FROM contacts",
        "SELECT ('x' || chr(39) || recipient)::int FROM contacts",
        "SELECT ('x' || chr(92) || recipient)::int FROM contacts",
        "SELECT ('x' || chr(10) || recipient)::int FROM contacts",
        "SELECT ('x' || chr(12300) || recipient || chr(12301))::int FROM contacts",
        "SELECT recipient::date FROM contacts",
        "SELECT recipient::jsonb FROM contacts",
    ],
    ids=["double-quote", "apostrophe", "backslash", "newline", "corner-brackets", "date", "json"],
)
def test_pg_store_cast_errors_hide_the_value(
    pg_store: tuple[str, str], tmp_path: Path, sql: str
) -> None:
    store, _ = pg_store
    message = _store_error(store, tmp_path, sql)
    assert PHONE not in message and "2345" not in message, message


def test_pg_store_unique_violation_names_the_column_not_the_value(
    pg_store: tuple[str, str], tmp_path: Path
) -> None:
    import psycopg

    store, dsn = pg_store
    with psycopg.connect(dsn) as conn, pytest.raises(psycopg.errors.UniqueViolation) as raw:
        conn.execute("INSERT INTO contacts VALUES (%s)", (PHONE,))
    assert PHONE in (raw.value.diag.message_detail or "")  # the server's detail holds it
    message = _store_error(store, tmp_path, f"INSERT INTO contacts VALUES ('{PHONE}')", write=True)
    assert "(recipient) already exists" in message and PHONE not in message, message


def test_pg_store_keeps_no_unquoted_value_in_query_logs(
    pg_store: tuple[str, str], sqlite_project: Path
) -> None:
    """The sample's failed statement, logged into a PostgreSQL store: read with psycopg."""
    import psycopg

    store, dsn = pg_store
    customer = _customer(sqlite_project / ".hybridwb" / "sample.db")
    with (
        hybridwb.connect(store=store, cwd=sqlite_project, env={}) as wb,
        pytest.raises(hybridwb.QueryError),
    ):
        wb.sql(f"SELECT * FROM customers WHERE name = {customer['name']}")
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT query, error_message FROM query_logs").fetchall()
    assert rows and customer["name"] not in repr(rows), rows
