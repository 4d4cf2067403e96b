"""Attacks on `binds.values_in_place`, the fast path that admits a final text without tokenizing.

The guarantee: the guard never admits a statement that writes, locks, reads files or changes
the session. `values_in_place` may only say "admit" when the server reads the final text as
the approved statement with one literal per bind. Oracles: sqlglot's tokens (the full path,
`only_values_differ`), MariaDB itself as root (how many columns a literal-shaped text yields,
what value it reads) and, end to end, the named-lock table, row counts and CHECKSUM TABLE read
through root. Every attack here held (no break found); each is a plain test so a change that
opens one of them fails.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest
from pymysql.converters import escape_item
from test_guard_in_place import Approved, driver_final, tokens_agree

from hybridwb.errors import HybridwbError
from hybridwb.source import guard
from hybridwb.source.binds import Bind, find_binds, to_pyformat, values_in_place
from hybridwb.source.engine import SQL_MODE
from hybridwb.source.verdicts import Verdicts
from tests.conftest import admin_url

#: templates the guard admits, with binds next to every character `values_in_place` trusts
#: (space, tab, CR, LF, `(`, `,`, `=`, `)`, the end) and next to comments, quoted names,
#: literal concatenation, introducers and look-alike binds (`:a`/`:ab`, `':a'`, `/* :a */`)
TEMPLATES = [
    "SELECT :a, :ab",
    "SELECT :a, :a",
    "SELECT ':a', :a",
    "SELECT `:a`, :a",
    "SELECT 1 /* :a */, :a",
    "SELECT :a\r-- x\n",
    "SELECT :a\n# x\n, :n",
    "SELECT :a 'x'",
    "SELECT :a\n'x'",
    "SELECT _latin1 :a",
    "SELECT _gbk :a",
    "SELECT _big5 :a, :n",
    "SELECT N :a",
    "SELECT X :a",
    "SELECT 1 - :n",
    "SELECT 1 -\n:n",
    "SELECT 1 -\r:n",
    "SELECT 1 -\t:n",
    "SELECT 1 /\n:n",
    "SELECT (:n)",
    "SELECT :a COLLATE utf8mb4_bin",
    "SELECT :a, '%'",
    "SELECT '%s', :a, '%(a)s'",
    "SELECT 1 FROM DUAL WHERE 1=:n\r\n",
    "SELECT 1 FROM DUAL WHERE :a=:b\tOR\t:b=(:a)",
    # the shape search builds (a LIKE pattern with an escape character, a keyset bound)
    "SELECT c.id FROM (SELECT 'x' AS name, 1 AS id) AS c "
    "WHERE c.name LIKE :a ESCAPE '!' AND c.id > :n ORDER BY c.id LIMIT 5",
]

#: literal bodies an attacker would type: quotes, escapes, comment openers, executable
#: comments, multi-byte characters whose GBK/Big5/SJIS trail byte is 0x5c, NUL, ^Z, `%`
PIECES = [
    "'",
    '"',
    "\\",
    "\\'",
    "''",
    "\\\\",
    ";",
    "--",
    "-- ",
    "#",
    "/*",
    "*/",
    "/*!",
    "*/ 1/*",
    "\0",
    "\x1a",
    "\n",
    "\r",
    "\t",
    "%",
    "%s",
    "%(a)s",
    ":a",
    "?",
    "`",
    "縗",
    "ü",
    "é",
    "¿",
    "ﾟ",
    "😀",
    "김",
    "\u2028",
    "\ufeff",
    "a",
    " ",
    ")",
    ",",
    "_utf8mb4",
    "N",
    "0x",
]


def hostile(rng: random.Random) -> str:
    return "".join(rng.choice(PIECES) for _ in range(rng.randrange(8)))


def values(approved: Approved, rng: random.Random) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for bind in approved.binds:
        if bind.name == "n":
            out["n"] = rng.choice([0, -1, 7, -(2**63), 2**64, 10**40])
        else:
            out[bind.name] = hostile(rng)
    return out


@pytest.mark.parametrize("sql", TEMPLATES)
def test_in_place_admits_only_what_the_tokenizer_admits(sql: str) -> None:
    """Fuzz: for 300 hostile value sets per template, "admit" in place implies the full
    tokenizer path admits the same text (and every driver-written text is admitted)."""
    approved = Approved(sql)
    assert approved.binds, sql
    rng = random.Random(sql)
    for _ in range(300):
        params = values(approved, rng)
        final = driver_final(approved, params)
        if values_in_place(approved.sql, approved.binds, params, final):
            assert tokens_agree(approved, final), (sql, params)


#: literal-shaped texts no driver writes for these values (`'(?:[^'"\\]|\\.)*'`): a raw NUL,
#: a backslash before a multi-byte character, an escaped newline, ...
SHAPED = [
    "'\0'",
    "'\\😀'",
    "'\\김'",
    "'\\\n'",
    "'\\\0'",
    "'\\%'",
    "'\\_'",
    "'\\z'",
    "'縗\\''",
    "'\\縗'",
    "'-- '",
    "'/*!'",
    "'#'",
    "'\x1a'",
    "'\r'",
    "'\\\\'",
    "'\ufeff'",
]


@pytest.mark.parametrize("literal", SHAPED)
def test_literal_shaped_texts_no_driver_writes_agree_with_the_tokenizer(literal: str) -> None:
    for sql in ["SELECT :a, 1", "SELECT 1 FROM DUAL WHERE :a=(:a)"]:
        approved = Approved(sql)
        final = sql.replace(":a", literal)
        if values_in_place(approved.sql, approved.binds, {"a": "x"}, final):
            assert tokens_agree(approved, final), (sql, literal)


@pytest.fixture(scope="module")
def root() -> Iterator[pymysql.Connection]:
    conn = pymysql.connect(
        ssl_disabled=True, host="127.0.0.1", user="root", charset="utf8mb4", autocommit=True
    )
    with conn.cursor() as cur:
        cur.execute(f"SET SESSION sql_mode = '{SQL_MODE}'")
    try:
        yield conn
    finally:
        conn.close()


@pytest.mark.parametrize("charset", ["", "_gbk ", "_big5 ", "_sjis ", "_cp932 ", "_latin1 "])
def test_the_server_ends_each_admitted_literal_where_values_in_place_does(
    root: pymysql.Connection, charset: str
) -> None:
    """MariaDB (utf8mb4, the pinned sql_mode) reads every in-place-admitted literal as one
    value: two columns, not a second statement or a comment, even after an introducer of a
    charset whose trail bytes include 0x5c (the lexer scans in the client charset)."""
    sql = f"SELECT {charset}:a, 'M'"
    binds = find_binds(sql)
    rng = random.Random(charset)
    bodies = [hostile(rng) for _ in range(150)] + [s[1:-1] for s in SHAPED]
    with root.cursor() as cur:
        for body in bodies:
            final = sql.replace(":a", escape_item(body, "utf8mb4"))
            assert values_in_place(sql, binds, {"a": body}, final)
            cur.execute(final)
            row = cur.fetchone()
            assert len(cur.description) == 2 and row[1] == "M", repr(body)
            if not charset:
                assert row[0] == body, repr(body)  # the literal holds exactly the value
        for literal in SHAPED:
            final = sql.replace(":a", literal)
            if values_in_place(sql, binds, {"a": "x"}, final):
                cur.execute(final)
                assert len(cur.description) == 2 and cur.fetchone()[1] == "M", repr(literal)


@pytest.mark.parametrize("driver", ["pymysql", "mysqldb"])
@pytest.mark.parametrize(
    "value",
    [
        "x'; SELECT GET_LOCK('atkip', 0); -- ",
        "x\\'); DO GET_LOCK('atkip', 0) #",
        "*/ , GET_LOCK('atkip', 0) /*",
        "/*!50000 , GET_LOCK('atkip', 0) */",
        "x' UNION SELECT LOAD_FILE('/etc/passwd') -- ",
        "縗' , GET_LOCK('atkip', 0) -- ",
        "\\",
        "\0' , GET_LOCK('atkip', 0) -- ",
    ],
)
def test_hostile_values_through_the_public_api_take_no_lock_and_write_nothing(
    mysql_db: str,
    root: pymysql.Connection,
    value: str,
    driver: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """End to end through `Source.records` on root's URL (a writable account: only the guard
    stands in the way): the value is one value (the rows root reads for it), no named lock
    is held afterwards and the table's checksum and row count are unchanged."""
    from hybridwb.source import Source

    table = f"`{mysql_db}`.customers"
    with root.cursor() as cur:
        cur.execute(f"CHECKSUM TABLE {table}")
        before = cur.fetchone()[1]
    monkeypatch.setattr("hybridwb.source.finaltext.VERDICTS", Verdicts())
    tokenized: list[str] = []
    real = guard._DIALECT.tokenize

    def counted(sql: str) -> Any:
        tokenized.append(sql)
        return real(sql)

    monkeypatch.setattr(guard._DIALECT, "tokenize", counted)
    src = Source(admin_url(mysql_db).set(drivername=f"mysql+{driver}"))
    cases: list[tuple[str, dict[str, Any]]] = [
        ("SELECT :a AS v, :n AS n", {"a": value, "n": -1}),
        (
            "SELECT customer_id FROM customers WHERE name = :a OR name IN (:a, :ab)",
            {"a": value, "ab": value},
        ),
        ("SELECT :a\r-- tail\n", {"a": value}),
    ]
    try:
        for sql, params in cases:
            got = src.records(sql, params)
            if "AS v" in sql:
                assert [dict(r) for r in got] == [{"v": value, "n": -1}]
            else:
                assert isinstance(got, list)
            with root.cursor() as cur:
                cur.execute("SELECT IS_USED_LOCK('atkip')")
                assert cur.fetchone()[0] is None
        # the finals went the in-place path: only templates were tokenized
        literal = escape_item(value, "utf8mb4")
        assert not [t for t in tokenized if literal in t]
        with pytest.raises(HybridwbError):
            src.records("SELECT GET_LOCK(:a, 0)", {"a": "atkip"})
    finally:
        src.close()
    with root.cursor() as cur:
        cur.execute(f"CHECKSUM TABLE {table}")
        assert cur.fetchone()[1] == before
        cur.execute("SELECT IS_USED_LOCK('atkip')")
        assert cur.fetchone()[0] is None


#: templates the guard admits around odd quoting (a backslash in a quoted name, an escaped
#: double quote, a doubled quote, a hex string, a comment that looks nested, a vertical
#: tab): MariaDB must read the bind as code too, so the in-place literal is one value
ODD = [
    "SELECT `a\\`, :a, `b` FROM (SELECT 1 AS `a\\`, 2 AS b) AS t",
    'SELECT "x\\"", :a',
    "SELECT 'a\\\\', :a",
    "SELECT 'a''', :a",
    "SELECT x'41', :a",
    "SELECT 1 /* a /* b */ , :a",
    "SELECT 1 \x0b, :a",
    "SELECT :a, _latin1 :a",
]


@pytest.mark.parametrize("sql", ODD)
def test_the_server_reads_odd_templates_with_the_bind_as_code(
    root: pymysql.Connection, sql: str
) -> None:
    approved = Approved(sql)
    assert approved.binds
    expected = len(approved.checked.expression.expressions)
    with root.cursor() as cur:
        for value in ["x", "*/ , GET_LOCK(0x61746b6970, 0), /*", "', GET_LOCK(0x61746b6970,0), '"]:
            params = {b.name: value for b in approved.binds}
            final = driver_final(approved, params)
            assert values_in_place(approved.sql, approved.binds, params, final)
            cur.execute(final)
            cur.fetchall()
            assert len(cur.description) == expected, (sql, value)
            cur.execute("SELECT IS_USED_LOCK('atkip')")
            assert cur.fetchone()[0] is None


def shaped(rng: random.Random) -> str:
    """A random text the in-place regex reads as one string literal: plain characters
    (anything but a quote, a double quote, a backslash) and backslash pairs with anything."""
    plain = [p for p in PIECES if not set(p) & set("'\"\\")]
    out = []
    for _ in range(rng.randrange(10)):
        if rng.random() < 0.4:
            out.append("\\" + rng.choice([*"'\"\\0nrtZbz%_😀김縗", "\n", "\0"]))
        else:
            out.append(rng.choice(plain))
    return "'" + "".join(out) + "'"


def test_random_literal_shaped_texts_are_one_value_to_the_server_and_to_sqlglot(
    root: pymysql.Connection,
) -> None:
    """Any text the regex accepts as a literal (not only what drivers write) is one string
    to MariaDB (two columns) and to sqlglot (only_values_differ)."""
    sql = "SELECT :a, 'M'"
    approved = Approved(sql)
    rng = random.Random(17)
    with root.cursor() as cur:
        for _ in range(400):
            literal = shaped(rng)
            final = sql.replace(":a", literal)
            assert values_in_place(sql, approved.binds, {"a": "x"}, final), repr(literal)
            assert tokens_agree(approved, final), repr(literal)
            cur.execute(final)
            assert len(cur.description) == 2 and cur.fetchone()[1] == "M", repr(literal)


#: characters that may stand next to a bind read in place; everything else is tokenized
BEFORE_OK = set(" \t\n\r(,=")
AFTER_OK = set(" \t\n\r),")


@pytest.mark.parametrize("ch", [chr(c) for c in range(1, 128) if chr(c) not in BEFORE_OK])
def test_a_bind_after_any_other_character_is_tokenized(ch: str) -> None:
    """`-:n` -> `--1`, `N:a`/`X:a`/`_latin1:a`/`'q':a`/`@:a`/`.:n`/`*:n` ... join the
    literal to another token; the fast path must not decide those."""
    sql = f"SELECT x{ch}:a, 1"
    binds = [Bind("a", 9, 11)]
    for value, literal in [("v", "'v'"), (1, "1"), (-1, "-1")]:
        assert not values_in_place(sql, binds, {"a": value}, sql.replace(":a", literal))


@pytest.mark.parametrize("ch", [chr(c) for c in range(1, 128) if chr(c) not in AFTER_OK])
def test_a_bind_before_any_other_character_is_tokenized(ch: str) -> None:
    sql = f"SELECT :a{ch}x, 1"
    binds = [Bind("a", 7, 9)]
    for value, literal in [("v", "'v'"), (1, "1"), (-1, "-1")]:
        assert not values_in_place(sql, binds, {"a": value}, sql.replace(":a", literal))


@pytest.mark.parametrize("sql", TEMPLATES)
def test_mysqlclient_finals_are_admitted_only_when_the_tokenizer_agrees(sql: str) -> None:
    """mysqlclient escapes with the C client (`\\Z` for ^Z, `\\0` for NUL) and its own
    mogrify: the same fuzz as for PyMySQL, on the text mysqlclient writes."""
    import MySQLdb

    approved = Approved(sql)
    conn = MySQLdb.connect(host="127.0.0.1", user="root", charset="utf8mb4")
    try:
        cursor = conn.cursor()
        with cursor:
            cursor.execute(f"SET SESSION sql_mode = '{SQL_MODE}'")
            rng = random.Random("mysqldb" + sql)
            text = to_pyformat(approved.sql, list(approved.binds))
            for _ in range(200):
                params = values(approved, rng)
                final = cursor.mogrify(text, params)
                assert isinstance(final, str)
                if values_in_place(approved.sql, approved.binds, params, final):
                    assert tokens_agree(approved, final), (sql, params)
    finally:
        conn.close()


@pytest.fixture
def charset_db(root: pymysql.Connection) -> Iterator[str]:
    """A database of this file's own with a function that tries to switch the session to
    GBK (a charset whose trail bytes include 0x5c) and to NO_BACKSLASH_ESCAPES/ANSI_QUOTES."""
    name = f"hybridwb_atkip_{random.randrange(16**8):08x}"
    with root.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
        cur.execute(
            f"CREATE FUNCTION `{name}`.cs() RETURNS INT BEGIN "
            "SET character_set_client = gbk; SET character_set_connection = gbk; "
            "SET sql_mode = 'NO_BACKSLASH_ESCAPES,ANSI_QUOTES'; RETURN 1; END"
        )
    try:
        yield name
    finally:
        with root.cursor() as cur:
            cur.execute(f"DROP DATABASE `{name}`")


@pytest.mark.parametrize("driver", ["pymysql", "mysqldb"])
def test_allowed_server_code_cannot_switch_the_charset_under_the_next_in_place_text(
    charset_db: str, root: pymysql.Connection, driver: str
) -> None:
    """values_in_place trusts utf8mb4, but the session read-back checks only READ ONLY, the
    time limit, the cap and sql_mode. An allowlisted function that sets a GBK client charset
    would make `縗\\'` (E7 B8 97 5C 27) end the literal at the quote on the next statement of the
    same pinned connection. It holds: MariaDB restores a routine's caller charset and
    sql_mode on return, so the next statement is read in utf8mb4."""
    from hybridwb.source import Source

    url = admin_url(charset_db).set(drivername=f"mysql+{driver}")
    src = Source(url, allowed_functions=("cs",), pool_size=1)
    value = "縗' , GET_LOCK(0x61746b6970, 0) AS y -- "
    try:
        with src.one_connection():
            # read back and refused is fine too: the question is the next text
            with contextlib.suppress(HybridwbError):
                src.records("SELECT cs() AS x")
            got = src.records("SELECT :a AS v", {"a": value})
        assert [dict(r) for r in got] == [{"v": value}]
    finally:
        src.close()
    with root.cursor() as cur:
        cur.execute("SELECT IS_USED_LOCK('atkip')")
        assert cur.fetchone()[0] is None


@pytest.mark.parametrize("driver", ["pymysql", "mysqldb"])
def test_a_gbk_charset_in_the_url_does_not_reach_the_session(
    charset_db: str, root: pymysql.Connection, driver: str
) -> None:
    """`?charset=gbk` would make the driver and the server read `縗\\'` as a GBK pair and the
    quote as the literal's end; the source connects in utf8mb4 whatever the URL says, so
    the value is one value and no lock is taken (init_command / read_default_file are
    refused as ConfigError, tested elsewhere)."""
    from hybridwb.source import Source

    url = (
        admin_url(charset_db)
        .set(drivername=f"mysql+{driver}")
        .update_query_dict({"charset": "gbk"})
    )
    src = Source(url, pool_size=1)
    value = "縗' , GET_LOCK(0x61746b6970, 0) AS y -- "
    try:
        got = src.records("SELECT :a AS v", {"a": value})
    finally:
        src.close()
    assert [dict(r) for r in got] == [{"v": value}]
    with root.cursor() as cur:
        cur.execute("SELECT IS_USED_LOCK('atkip')")
        assert cur.fetchone()[0] is None


EDITS = [*"'\"\\`;#-/*!%:?()=, \t\r\n\0\x1aNXb_0", "縗", "😀", "\u2028"]


def forged(final: str, rng: random.Random) -> str:
    """The driver's text with one or two random edits (insert, delete, replace)."""
    for _ in range(rng.randrange(1, 3)):
        at = rng.randrange(len(final) + 1)
        kind = rng.randrange(3)
        if kind == 0:
            final = final[:at] + rng.choice(EDITS) + final[at:]
        elif kind == 1:
            final = final[:at] + final[at + 1 :]
        else:
            final = final[:at] + rng.choice(EDITS) + final[at + 1 :]
    return final


@pytest.mark.parametrize("sql", TEMPLATES)
def test_forged_final_texts_admitted_in_place_read_as_the_template_on_the_server(
    root: pymysql.Connection, sql: str
) -> None:
    """Texts no driver writes (one or two random edits of a driver text): whenever
    values_in_place admits one, sqlglot agrees and MariaDB returns as many columns as the
    approved statement has and takes no lock."""
    approved = Approved(sql)
    expected = len(approved.checked.expression.expressions)
    rng = random.Random("forged" + sql)
    admitted = 0
    reachable = False
    with root.cursor() as cur:
        for _ in range(300):
            params = values(approved, rng)
            for name in params:
                if isinstance(params[name], str):
                    params[name] += "', GET_LOCK(0x61746b6970, 0), '"
            real = driver_final(approved, params)
            reachable |= values_in_place(approved.sql, approved.binds, params, real)
            final = forged(real, rng)
            if not values_in_place(approved.sql, approved.binds, params, final):
                continue
            admitted += 1
            assert tokens_agree(approved, final), (sql, final)
            try:
                cur.execute(final)
            except pymysql.err.MySQLError:
                continue  # e.g. an unknown column: nothing ran
            cur.fetchall()
            assert len(cur.description) == expected, (sql, final)
            cur.execute("SELECT IS_USED_LOCK('atkip')")
            assert cur.fetchone()[0] is None, (sql, final)
    assert admitted or not reachable  # the fuzz reached the in-place path
