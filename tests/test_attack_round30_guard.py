"""Attack round 30 (branch atk30a): the guard alone against an allowlisted qualified name.

A DBA allowlists `shop.age_of` (a vetted function in another schema). The guard compared
the call's name as one dotted text, so `` `shop.age_of`(1) `` (one quoted name holding a
dot) matched the entry too; MariaDB reads it as a function whose name is `shop.age_of` in
the current schema: anyone who may create a function there runs their own code under the
vetted name. A name part holding a dot now never matches the allowlist. The oracle is
root on a second connection (the rows the impostor writes).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator

import pymysql
import pytest
from sqlalchemy.engine import make_url

from hybridwb.errors import HybridwbError, ReadOnlyViolation
from hybridwb.source import Source, guard

HOST, PORT = "127.0.0.1", 3306


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT `shop.age_of`(1)",
        "SELECT `shop.age_of` (1)",
        "SELECT `shop`.`x.age_of`(1)",
        "SELECT `sh.op`.age_of(1)",
    ],
)
def test_a_quoted_name_holding_a_dot_never_matches_a_qualified_allowlist_entry(sql: str) -> None:
    with pytest.raises(ReadOnlyViolation, match="not a built-in"):
        guard.check(sql, allowed_functions=["shop.age_of", "shop.x.age_of", "sh.op.age_of"])


@pytest.mark.parametrize(
    "sql",
    ["SELECT shop.age_of(1)", "SELECT `shop`.`age_of`(1)", "SELECT shop . `age_of` (1)"],
)
def test_the_allowlisted_function_itself_is_still_admitted(sql: str) -> None:
    guard.check(sql, allowed_functions=["shop.age_of"])


@pytest.fixture
def impostor() -> Iterator[tuple[str, pymysql.Connection]]:
    try:
        root = pymysql.connect(
            ssl_disabled=True, host=HOST, port=PORT, user="root", autocommit=True
        )
    except pymysql.err.OperationalError:
        pytest.skip("MariaDB not running")
    db = f"hybridwb_r30g_{secrets.token_hex(4)}"
    cur = root.cursor()
    cur.execute(f"CREATE DATABASE {db}")
    cur.execute(f"CREATE TABLE {db}.t (a INT) ENGINE=InnoDB")
    cur.execute(  # in the current schema, named like the vetted `shop.age_of`
        f"CREATE FUNCTION {db}.`shop.age_of`(x INT) RETURNS INT MODIFIES SQL DATA "
        f"BEGIN INSERT INTO {db}.t VALUES (x); RETURN x; END"
    )
    try:
        yield db, root
    finally:
        cur.execute(f"DROP DATABASE IF EXISTS {db}")
        root.close()


@pytest.mark.mysql
def test_the_guard_alone_does_not_run_an_impostor_of_an_allowlisted_function(
    impostor: tuple[str, pymysql.Connection],
) -> None:
    """Guard alone (session not READ ONLY), writable root: before, the impostor's INSERT
    committed."""
    db, root = impostor
    url = make_url(f"mysql+pymysql://root@{HOST}:{PORT}/{db}?charset=utf8mb4")
    src = Source(url, read_only_session=False, allowed_functions=["shop.age_of"], pool_size=1)
    try:
        with contextlib.suppress(HybridwbError):
            src.sql("SELECT `shop.age_of`(1) AS a")
    finally:
        src.close()
    cur = root.cursor()
    cur.execute(f"SELECT COUNT(*) FROM {db}.t")
    assert cur.fetchone()[0] == 0


@pytest.mark.parametrize(
    "sql",
    ["SELECT /*+N'(1'a'?*/ 1", "SELECT /*+$x'/**/ 1", "SELECT /*+ BKA(t) '김 */ 1"],
)
def test_a_hint_the_parser_cannot_tokenize_is_one_line_query_error(sql: str) -> None:
    """sqlglot tokenizes an optimizer hint's body again while parsing; an unclosed quote
    there raised its raw `TokenError` out of `wb.sql`, repeating the quoted text."""
    from hybridwb.errors import QueryError

    with pytest.raises(QueryError) as caught:
        guard.check(sql)
    message = str(caught.value)
    assert "\n" not in message
    assert "'a" not in message and "김" not in message and "$x" not in message
