"""A final text admitted without tokenizing (`binds.values_in_place`, issue 17).

`values_in_place` says a final text is the approved text with a str or int literal in place
of each bind, reading it from left to right with no tokenizer. It may only ever say so when
the tokenizer agrees: the oracle is `only_values_differ` on sqlglot's tokens (what decided
before), and on MariaDB the rows a direct query as root returns for the same values. Search
terms are user input: the values here are what an attacker would type.
"""

from __future__ import annotations

import decimal
import random
from typing import Any

import pymysql
import pytest
from pymysql.converters import escape_item

from hybridwb.errors import HybridwbError
from hybridwb.source import guard
from hybridwb.source.binds import Bind, find_binds, only_values_differ, to_pyformat, values_in_place
from hybridwb.source.engine import SessionPolicy, guard_final_text
from hybridwb.source.verdicts import Verdicts
from tests.conftest import ro_url

HOSTILE = [
    "",
    "'",
    "''",
    "\\",
    "\\'",
    '"',
    "\"'",
    "' OR 1=1 -- ",
    "x'; DELETE FROM customers; -- ",
    "/*! SLEEP(5) */",
    "*/ OR 1=1 /*",
    "# comment",
    "-- ",
    "a\0b",
    "\x1a",
    "line\nbreak\r",
    "김지훈",
    "😀'",
    "%s %(x)s %%",
    "?",
    ":other",
    "`",
    "\\\\'",
]

TEMPLATES = [
    "SELECT name FROM customers WHERE name = :a",
    "SELECT name FROM customers WHERE name = :a AND email = :b",
    "SELECT name FROM customers WHERE name IN (:a, :b) ORDER BY name LIMIT 5",
    "SELECT name FROM customers WHERE customer_id > :n AND name LIKE :a ESCAPE '!'",
    "SELECT name FROM customers WHERE name=:a",
    "SELECT :a, :n",
]


class Approved:
    def __init__(self, sql: str) -> None:
        self.sql = sql
        self.checked = guard.check(sql)
        self.binds = tuple(find_binds(sql, list(self.checked.tokens)))


def driver_final(approved: Approved, params: dict[str, Any]) -> str:
    """What PyMySQL's mogrify sends: the pyformat text with each value escaped."""
    escaped = {k: escape_item(v, "utf8mb4") for k, v in params.items()}
    return to_pyformat(approved.sql, list(approved.binds)) % escaped


def tokens_agree(approved: Approved, final: str) -> bool:
    try:
        final_tokens = guard._DIALECT.tokenize(final)
    except Exception:
        return False
    return only_values_differ(list(approved.checked.tokens), list(approved.binds), final_tokens)


def values_for(approved: Approved, rng: random.Random) -> dict[str, Any]:
    out: dict[str, Any] = {}
    alphabet = "'\"\\;-/*#%:?` \n\0\x1aaZ9김😀()"
    for bind in approved.binds:
        if bind.name == "n":
            out["n"] = rng.choice([0, 1, -1, -(2**63), 2**64, 42])
        else:
            pick = rng.random()
            if pick < 0.5:
                out[bind.name] = rng.choice(HOSTILE)
            else:
                out[bind.name] = "".join(rng.choice(alphabet) for _ in range(rng.randrange(12)))
    return out


@pytest.mark.parametrize("sql", TEMPLATES)
def test_driver_finals_are_admitted_in_place_exactly_when_tokens_agree(sql: str) -> None:
    approved = Approved(sql)
    rng = random.Random(sql)
    admitted = 0
    for _ in range(400):
        params = values_for(approved, rng)
        final = driver_final(approved, params)
        decided = values_in_place(approved.sql, approved.binds, params, final)
        assert decided == tokens_agree(approved, final), (sql, params)
        admitted += decided
    assert admitted == 400  # every value the driver escapes is read in place


FORGED = [
    # (approved, params, a final text no driver writes for them)
    ("SELECT name FROM customers WHERE name = :a", {"a": "x"}, "x' OR 1=1 -- "),
    ("SELECT name FROM customers WHERE name = :a", {"a": "x"}, "'a'b'"),
    ("SELECT name FROM customers WHERE name = :a", {"a": "x"}, "'a' 'b'"),
    ("SELECT name FROM customers WHERE name = :a", {"a": "x"}, "'a\"'"),
    ("SELECT name FROM customers WHERE name = :a", {"a": "x"}, "'x'; DELETE FROM customers"),
    ("SELECT name FROM customers WHERE name = :a", {"a": "x"}, "'x' OR SLEEP(5)"),
    ("SELECT name FROM customers WHERE name = :a", {"a": 1}, "1 OR 1"),
    ("SELECT name FROM customers WHERE name = :a", {"a": 1}, "'1'"),
    # two signs: the server reads - -1, sqlglot DASH DASH NUMBER, and `only_values_differ`
    # allows one sign (the driver writes -1): in place too (mutation `-*[0-9]+` admits it)
    ("SELECT name FROM customers WHERE name = :a", {"a": 1}, "--1"),
    ("SELECT name FROM customers WHERE name = :a", {"a": "x"}, "1"),
    ("SELECT name FROM customers WHERE name = :a", {"a": None}, "NULL"),
    ("SELECT name FROM customers WHERE name = :a", {"a": b"x"}, "_binary'x'"),
    ("SELECT name FROM customers WHERE name = :a", {"a": ["x"]}, "('x')"),
    # the same digits for a bool or a Decimal: a type the fast path does not read goes to the
    # tokenizer (mutation `isinstance(value, int) or not isinstance(value, bool)` admits them)
    ("SELECT name FROM customers WHERE name = :a", {"a": True}, "1"),
    ("SELECT name FROM customers WHERE name = :a", {"a": decimal.Decimal(5)}, "5"),
]


@pytest.mark.parametrize("sql,params,tail", FORGED)
def test_a_final_text_no_driver_writes_is_not_read_in_place(
    sql: str, params: dict[str, Any], tail: str
) -> None:
    approved = Approved(sql)
    final = sql.replace(":a", tail)
    assert values_in_place(approved.sql, approved.binds, params, final) is False


@pytest.mark.parametrize(
    "sql,value",
    [
        ("SELECT 1 FROM customers WHERE customer_id = 1 -:a", -1),  # `--1`: a comment
        ("SELECT 1 FROM customers WHERE customer_id = 1 +:a", 1),
        ("SELECT 1 FROM customers WHERE name = N:a", "x"),  # N'x': a national string
        ("SELECT 1 FROM customers WHERE name = X:a", "41"),  # X'41': a hex string
        ("SELECT 1 FROM customers WHERE name = B:a", "1"),  # B'1': a bit string
        ("SELECT 1 FROM customers WHERE name = _latin1:a", "x"),  # an introducer
        ("SELECT 1 FROM customers WHERE name = 'q':a", "x"),  # 'q''x': one string
        ("SELECT 1 FROM customers WHERE name = :a'q'", "x"),
        ("SELECT 1 FROM customers WHERE customer_id = 1.:a", 5),
        ("SELECT 1 FROM customers WHERE customer_id = @:a", 5),
        ("SELECT 1 FROM customers WHERE name = :a/*c*/", "x"),
    ],
)
def test_a_bind_next_to_what_could_join_its_literal_is_tokenized(sql: str, value: Any) -> None:
    binds = find_binds(sql)  # (the guard need not admit the template for this)
    if not binds:
        pytest.skip("no bind in the template (the tokenizer joined it already)")
    params = {b.name: value for b in binds}
    escaped = {k: escape_item(v, "utf8mb4") for k, v in params.items()}
    final = to_pyformat(sql, binds) % escaped
    assert values_in_place(sql, binds, params, final) is False


def test_an_in_place_final_text_is_not_tokenized_and_a_forged_one_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("hybridwb.source.finaltext.VERDICTS", Verdicts())
    approved = Approved("SELECT name FROM customers WHERE grade = :grade")
    tokenized: list[str] = []
    real = guard._DIALECT.tokenize

    def counted(sql: str) -> Any:
        tokenized.append(sql)
        return real(sql)

    monkeypatch.setattr(guard._DIALECT, "tokenize", counted)
    policy = SessionPolicy()
    for value in HOSTILE:
        params = {"grade": value}
        final = driver_final(approved, params)
        guard_final_text(final, policy, approved=approved, params=params, whole_result=False)
    assert tokenized == []
    forged = "SELECT name FROM customers WHERE grade = 'x'; DELETE FROM customers"
    with pytest.raises(HybridwbError):
        guard_final_text(
            forged, policy, approved=approved, params={"grade": "x"}, whole_result=False
        )
    assert tokenized  # the forged text was tokenized (and refused)


def test_hostile_values_read_the_rows_a_direct_query_reads(
    mysql_db: str, mysql_admin: pymysql.Connection
) -> None:
    """On MariaDB, through the read-only account: each hostile value is one value (the rows
    are those root reads with the driver binding it), nothing is written, and a write is
    still refused."""
    from hybridwb.source import Source

    src = Source(ro_url(mysql_db))
    sql = "SELECT customer_id FROM customers WHERE name = :a OR email = :b ORDER BY customer_id"
    with mysql_admin.cursor() as cur:
        cur.execute(f"SELECT name, email FROM `{mysql_db}`.customers ORDER BY customer_id LIMIT 1")
        name, email = cur.fetchone()
        cur.execute(f"SELECT COUNT(*) FROM `{mysql_db}`.customers")
        (before,) = cur.fetchone()
    try:
        for value in [*HOSTILE, name, email]:
            got = [r["customer_id"] for r in src.records(sql, {"a": value, "b": value})]
            with mysql_admin.cursor() as cur:
                cur.execute(
                    f"SELECT customer_id FROM `{mysql_db}`.customers "
                    "WHERE name = %s OR email = %s ORDER BY customer_id",
                    (value, value),
                )
                assert got == [r[0] for r in cur.fetchall()], repr(value)
        with pytest.raises(HybridwbError):
            src.records("DELETE FROM customers WHERE name = :a", {"a": "x"})
    finally:
        src.close()
    with mysql_admin.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM `{mysql_db}`.customers")
        assert cur.fetchone()[0] == before


def test_a_bind_at_the_start_of_the_text_is_tokenized() -> None:
    """Nothing stands before a bind at 0, and sql[-1] (the text's last character) is not
    what precedes it. Mutation `bind.start == 1` -> the first is admitted and the second,
    after a space, is not."""
    assert values_in_place(":a (", [Bind("a", 0, 2)], {"a": 1}, "1 (") is False
    assert values_in_place(" :a", [Bind("a", 1, 3)], {"a": 1}, " 1") is True
