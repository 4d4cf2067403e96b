"""Layer one: the parser-based guard on the corpus, table-driven (pure, no database).

The guard runs on the final text the driver sends, so each attack is checked on its
interpolated text (`Attack.text`); `tests/test_readonly_corpus.py` runs the same corpus on
MariaDB through the public API with an independent oracle.
"""

from __future__ import annotations

import pytest
from data.readonly_cases import ATTACKS, READS, Attack, Read, interpolate

from hybridwb.errors import QueryError, ReadOnlyViolation
from hybridwb.source import guard

DB = "hb_guard_db"
REFUSED = [a for a in ATTACKS if a.guard_error is not None]
HARMLESS = [a for a in ATTACKS if a.guard_error is None]


def _text(attack: Attack) -> str:
    return attack.text.replace("{db}", DB)


@pytest.mark.parametrize("attack", REFUSED, ids=[a.id for a in REFUSED])
def test_attack_is_refused_with_its_exact_class_and_reason(attack: Attack) -> None:
    assert attack.guard_error is not None
    with pytest.raises(attack.guard_error) as info:
        guard.check(_text(attack))
    assert type(info.value) is attack.guard_error, str(info.value)
    message = str(info.value)
    assert attack.words in message
    assert "\n" not in message


@pytest.mark.parametrize("attack", HARMLESS, ids=[a.id for a in HARMLESS])
def test_hostile_value_in_a_real_bind_stays_one_literal(attack: Attack) -> None:
    checked = guard.check(_text(attack))
    assert checked.kind == "select"


@pytest.mark.parametrize("read", READS, ids=[r.id for r in READS])
def test_read_is_admitted_before_and_after_interpolation(read: Read) -> None:
    for text in (read.sql, interpolate(read.sql, read.params)):
        checked = guard.check(text)
        assert checked.kind in ("select", "show", "describe")


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SHUTDOWN", "Refused: SHUTDOWN is not a read statement"),
        ("FLUSH PRIVILEGES", "Refused: FLUSH is not a read statement"),
        ("HELP 'x'", "Refused: HELP is not a read statement"),
        ("DELETE FROM t", "Refused: DELETE is not a read statement"),
        ("EXPLAIN UPDATE t SET a = 1", "Refused: EXPLAIN UPDATE is not a read statement"),
        ("ANALYZE DELETE FROM t", "Refused: ANALYZE is not a read statement"),
        ("SELECT 1 /*! , 2 */", "Refused: an executable comment (/*! ... */) runs on the server"),
        ("SELECT * FROM t INTO OUTFILE '/x'", "Refused: INTO writes a file"),
        ("SELECT * FROM t FOR UPDATE", "Refused: FOR UPDATE takes row locks"),
        ("SELECT SLEEP(1)", "Refused: SLEEP() can sleep"),
        ("SELECT 1; SELECT 2", "Refused: 2 statements in one query"),
        ("SELECT x := 1", "Refused: ':=' assigns a variable"),
        ("SELECT f(1)", "Refused: f() is not a built-in function"),
        ("SELECT shop.mask(1)", "Refused: shop.mask() is not a built-in function"),
    ],
    ids=lambda v: v if len(v) < 30 else None,
)
def test_refusal_names_the_statement_in_one_line(sql: str, message: str) -> None:
    with pytest.raises(ReadOnlyViolation) as info:
        guard.check(sql)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("sql", "allowed"),
    [
        ("SELECT mask_phone(phone) FROM customers", {"mask_phone"}),
        ("SELECT MASK_PHONE(phone) FROM customers", ["mask_phone"]),
        ("SELECT shop.mask_phone(phone) FROM customers", frozenset({"shop.mask_phone"})),
        ("SELECT `mask_phone`(phone) FROM customers", ("MASK_PHONE",)),
    ],
    ids=["set", "case", "qualified", "quoted"],
)
def test_allowlisted_stored_function_is_admitted(sql: str, allowed: object) -> None:
    guard.check(sql, allowed_functions=allowed)  # type: ignore[arg-type]
    with pytest.raises(ReadOnlyViolation, match="not a built-in function"):
        guard.check(sql)


def test_allowlist_cannot_admit_a_dangerous_built_in() -> None:
    with pytest.raises(ReadOnlyViolation, match="SLEEP"):
        guard.check("SELECT SLEEP(5)", allowed_functions={"sleep"})


def test_allowlist_of_an_unqualified_name_does_not_admit_another_schema() -> None:
    with pytest.raises(ReadOnlyViolation, match="other.mask"):
        guard.check("SELECT other.mask(1)", allowed_functions={"mask"})


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("", "empty"),
        ("   ;  ", "empty"),
        ("-- only a comment", "only comments"),
        ("SELECT 'x\x00'", "NUL"),
        ("SELECT '\ud800'", "UTF-8"),
        (b"SELECT '\xff'", "UTF-8"),
        ("SELECT " + "1," * 600_000 + "1", "limit is"),
        ("SELECT * FROM t WHERE (", "Syntax error"),
        ("SELECT * FROM t WHERE", "Syntax error"),
        (42, "must be text"),
    ],
    ids=[
        "empty",
        "semicolons",
        "comment-only",
        "nul",
        "surrogate",
        "bad-bytes",
        "one-megabyte",
        "open-paren",
        "typo",
        "not-text",
    ],
)
def test_bad_query_text_gets_a_clear_one_line_error(query: object, words: str) -> None:
    with pytest.raises(QueryError) as info:
        guard.check(query)
    assert type(info.value) is QueryError
    assert words in str(info.value)
    assert "\n" not in str(info.value)


def test_three_thousand_parentheses_are_a_query_error_not_a_recursion_error() -> None:
    with pytest.raises(QueryError) as info:
        guard.check("SELECT " + "(" * 3000 + "1" + ")" * 3000)
    assert type(info.value) is QueryError
    assert "nested 3000 parentheses deep" in str(info.value)


def test_syntax_error_carries_its_position() -> None:
    with pytest.raises(QueryError) as info:
        guard.check("SELECT * FROM customers WHERE")
    assert info.value.line == 1


def test_normalized_statement_has_no_literals() -> None:
    checked = guard.check("SELECT * FROM customers WHERE name = '홍길동' AND customer_id = 42")
    assert checked.normalized() == "SELECT * FROM customers WHERE name = ? AND customer_id = ?"
    assert "홍길동" not in guard.normalize("SELECT '홍길동'")


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("SELECT 1", "select"),
        ("VALUES (1, 'a')", "select"),
        ("SHOW KEYS FROM t", "show"),
        ("DESCRIBE t col", "describe"),
        ("EXPLAIN PARTITIONS SELECT 1", "describe"),
    ],
)
def test_statement_kind(sql: str, kind: str) -> None:
    assert guard.check(sql).kind == kind


def test_limit_is_seen_in_the_tree() -> None:
    assert guard.check("SELECT 1 FROM t LIMIT 5 ROWS EXAMINED 100").has_limit
    assert not guard.check("SELECT 1 FROM t").has_limit


@pytest.mark.parametrize("sql", ["SELECT DATE_ADD()", "SELECT DATE_SUB(1)"])
def test_a_call_sqlglot_cannot_build_is_a_syntax_error(sql: str) -> None:
    with pytest.raises(QueryError, match="Syntax error"):
        guard.check(sql)
