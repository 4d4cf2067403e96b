"""Binds as pure functions: positions, driver text, parameter checks, argument checks.

No database: these are the fast tests `make mutation` runs against every mutant of
hybridwb/source/binds.py (the SQLite and MariaDB tiers prove the same rules end to end).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal

import pytest
from sqlglot.tokens import TokenType

from hybridwb.errors import BindError, QueryError
from hybridwb.source.binds import (
    MAX_LIST,
    MIN_TIMEOUT_SECONDS,
    Bind,
    check_params,
    find_binds,
    is_code,
    only_values_differ,
    positive_int_arg,
    seconds_arg,
    to_pyformat,
    tokenize,
)


# -- where binds are --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sql", "binds"),
    [
        ("SELECT :a", [Bind("a", 7, 9)]),
        ("SELECT :a, :b_2", [Bind("a", 7, 9), Bind("b_2", 11, 15)]),
        ("SELECT x FROM t WHERE a=:v", [Bind("v", 24, 26)]),
        ("SELECT :_x", [Bind("_x", 7, 10)]),
        ("SELECT :1", []),
        ("SELECT :'a'", []),
        ('SELECT :"a"', []),
        ("SELECT :`a`", []),
        ("SELECT a:b", [Bind("b", 8, 10)]),
        ("SELECT ':a'", []),
    ],
    ids=[
        "one",
        "two",
        "after-equals",
        "underscore",
        "number-is-not-a-name",
        "string-after-colon",
        "double-quoted-after-colon",
        "backticked-after-colon",
        "glued-to-a-name",
        "inside-a-string",
    ],
)
def test_binds_have_exact_positions(sql: str, binds: list[Bind]) -> None:
    assert find_binds(sql) == binds
    for bind in binds:
        assert sql[bind.start : bind.end] == ":" + bind.name


def test_a_bind_is_a_value() -> None:
    assert len({Bind("a", 1, 3), Bind("a", 1, 3)}) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        Bind("a", 1, 3).start = 0  # type: ignore[misc]


def test_tokens_given_are_used_instead_of_tokenizing_again() -> None:
    sql = "SELECT :a"
    assert find_binds(sql, tokenize(sql)) == [Bind("a", 7, 9)]
    assert find_binds(sql, []) == []


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT 'open", "The query does not tokenize; check the quotes."),
        ("SELECT `open", "The query does not tokenize; check the quotes."),
    ],
    ids=["open-string", "open-backtick"],
)
def test_text_that_does_not_tokenize_is_a_query_error(sql: str, message: str) -> None:
    with pytest.raises(QueryError) as info:
        tokenize(sql)
    assert str(info.value) == message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_is_code_is_true_only_at_a_token_of_the_asked_type() -> None:
    sql = "SELECT 'a(' , (1)"
    tokens = tokenize(sql)
    paren = frozenset({TokenType.L_PAREN})
    assert is_code(tokens, sql.index("(1)"), paren)
    assert not is_code(tokens, sql.index("a("), paren)  # inside the literal
    assert not is_code(tokens, sql.index("a(") + 1, paren)
    assert not is_code(tokens, sql.index("(1)"), frozenset({TokenType.STRING}))


# -- the text the driver gets -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("sql", "text"),
    [
        ("SELECT :a", "SELECT %(a)s"),
        ("SELECT :a, :b", "SELECT %(a)s, %(b)s"),
        ("SELECT '%' , :a , '%'", "SELECT '%%' , %(a)s , '%%'"),
        ("SELECT 1", "SELECT 1"),
        ("SELECT '%'", "SELECT '%%'"),
        (":a", "%(a)s"),
    ],
    ids=["one", "two", "percents-around", "no-binds", "percent-only", "whole-text"],
)
def test_pyformat_text(sql: str, text: str) -> None:
    assert to_pyformat(sql, find_binds(sql)) == text


# -- parameter values -------------------------------------------------------------------------
def test_no_params_is_an_empty_dict() -> None:
    assert check_params(set(), None) == {}


def test_params_are_copied_and_collections_become_lists() -> None:
    given = {"a": (1, 2), "b": "x", "c": None, "d": frozenset({3})}
    checked = check_params({"a", "b", "c", "d"}, given)
    assert checked == {"a": [1, 2], "b": "x", "c": None, "d": [3]}
    assert given["a"] == (1, 2)  # the caller's dict is not changed


@pytest.mark.parametrize(
    "value",
    [
        "text",
        1,
        1.5,
        True,
        decimal.Decimal("1.5"),
        dt.date(2024, 1, 1),
        dt.datetime(2024, 1, 1, 12),
        dt.time(12),
        b"\x00",
        None,
        [1, "a", None],
        list(range(MAX_LIST)),
    ],
    ids=[
        "str",
        "int",
        "float",
        "bool",
        "decimal",
        "date",
        "datetime",
        "time",
        "bytes",
        "none",
        "mixed-list",
        "list-at-the-limit",
    ],
)
def test_values_a_driver_can_send_pass(value: object) -> None:
    assert check_params({"v"}, {"v": value})["v"] == value


@pytest.mark.parametrize(
    ("params", "message", "name"),
    [
        (
            [1],
            "params must be a dict of name -> value, not list; write params={'name': value} and :name in the query.",
            None,
        ),
        (
            {"1a": 1},
            "Parameter name '1a' is not a name; use letters, digits and _ (as in :name).",
            None,
        ),
        ({1: 1}, "Parameter name 1 is not a name; use letters, digits and _ (as in :name).", None),
        (
            {"a b": 1},
            "Parameter name 'a b' is not a name; use letters, digits and _ (as in :name).",
            None,
        ),
        ({}, "The query uses :v but no value was given; pass params={'v': ...}.", "v"),
        ({"v": 1, "w": 2}, "Parameter 'w' is not used by the query; remove it or add :w.", "w"),
        ({"v": []}, "Parameter 'v' is an empty list; IN () matches nothing.", None),
        ({"v": set()}, "Parameter 'v' is an empty list; IN () matches nothing.", None),
        (
            {"v": [0] * (MAX_LIST + 1)},
            "Parameter 'v' holds 10,001 values; the limit is 10,000. Narrow the list or join on a table instead.",
            None,
        ),
        (
            {"v": object()},
            "Parameter 'v' is a object; bind a str, number, date, or a list of them.",
            "v",
        ),
        (
            {"v": [1, {}]},
            "Parameter 'v' is a dict; bind a str, number, date, or a list of them.",
            "v",
        ),
        (
            {"v": "x\ud800"},
            "Parameter 'v' is not valid text (it holds a lone surrogate); retype the odd character.",
            "v",
        ),
        ({"v": float("nan")}, "Parameter 'v' is nan; bind a finite number.", "v"),
        ({"v": float("-inf")}, "Parameter 'v' is -inf; bind a finite number.", "v"),
        ({"v": decimal.Decimal("NaN")}, "Parameter 'v' is NaN; bind a finite number.", "v"),
        (
            {"v": decimal.Decimal("Infinity")},
            "Parameter 'v' is Infinity; bind a finite number.",
            "v",
        ),
    ],
    ids=[
        "not-a-mapping",
        "name-starts-with-digit",
        "name-not-text",
        "name-with-space",
        "missing",
        "unused",
        "empty-list",
        "empty-set",
        "list-over-the-limit",
        "object",
        "dict-in-list",
        "lone-surrogate",
        "nan",
        "minus-infinity",
        "decimal-nan",
        "decimal-infinity",
    ],
)
def test_bad_params_are_refused_with_a_message_naming_them(
    params: object, message: str, name: str | None
) -> None:
    with pytest.raises(BindError) as info:
        check_params({"v"}, params)
    assert str(info.value) == message
    # raised `from None`: no driver or codec error shown with it
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__
    if name is not None:
        assert info.value.name == name


def test_the_first_missing_name_in_order_is_named() -> None:
    with pytest.raises(BindError, match=":a but"):
        check_params({"b", "a", "c"}, {"c": 1})
    with pytest.raises(BindError, match="'a' is not used"):
        check_params(set(), {"b": 1, "a": 1})


# -- the final text differs from the approved one only by values --------------------------------
@pytest.mark.parametrize(
    ("approved", "final", "same"),
    [
        ("SELECT :v", "SELECT 1", True),
        ("SELECT :v", "SELECT -1", True),
        ("SELECT :v", "SELECT +1", True),
        ("SELECT :v", "SELECT 'a'", True),
        ("SELECT :v", "SELECT NULL", True),
        ("SELECT :v, 2", "SELECT 1, 2", True),
        ("SELECT :v, 2", "SELECT 1, 3", False),
        ("SELECT :v", "SELECT 1, 2", False),
        ("SELECT :v", "SELECT", False),
        ("SELECT :v", "SELECT -", False),
        ("SELECT :v", "SELECT - /* c */ 1", False),
        ("SELECT :v", "SELECT x", False),
        ("SELECT 1 IN :v", "SELECT 1 IN (1)", True),
        ("SELECT 1 IN :v", "SELECT 1 IN (1, -2, 'a')", True),
        ("SELECT 1 IN :v", "SELECT 1 IN (1 /* c */, 2)", False),
        ("SELECT 1 IN :v", "SELECT 1 IN ( /* c */ 1)", False),
        ("SELECT 1 IN :v", "SELECT 1 IN (1", False),
        ("SELECT 1 IN :v", "SELECT 1 IN (1, 2", False),
        ("SELECT 1 IN :v", "SELECT 1 IN (1; 2)", False),
        ("SELECT 1 IN :v", "SELECT 1 IN (1, x)", False),
        ("SELECT 1 IN :v", "SELECT 1 IN ()", False),
        ("SELECT :v /* c */", "SELECT 1", False),
        ("SELECT :v", "SELECT 1 /* c */", False),
        ("SELECT /* c */ :v", "SELECT /* c */ 1", True),
        ("SELECT :a, :b", "SELECT 1, 2", True),
        ("SELECT :a, :b", "SELECT 1, 2, 3", False),
        ("SELECT ':v'", "SELECT ':v'", True),
        ("SELECT :v", "DELETE 1", False),
        (":v", "1", True),
        ("SELECT : x", "SELECT 1", False),
        ("SELECT 1, 2", "SELECT 1", False),
        # the rest of the approved text repeats the final text from its second token: a
        # refusal inside the value must not restart the comparison there
        ("SELECT :v - /* c */ 1", "SELECT - /* c */ 1", False),
        ("( :v (", "( (", False),
        ("( :v ( /* c */ 1 )", "( ( /* c */ 1 )", False),
        ("( :v ( 1 x", "( ( 1 x", False),
    ],
    ids=[
        "number",
        "negative",
        "plus-sign",
        "string",
        "null",
        "bind-then-text",
        "text-after-changed",
        "extra-tokens",
        "value-missing",
        "sign-alone",
        "comment-on-sign",
        "name-instead-of-value",
        "one-item-list",
        "list",
        "comment-inside-list",
        "comment-after-paren",
        "unclosed-list",
        "unclosed-longer-list",
        "list-with-semicolon",
        "name-in-list",
        "empty-list",
        "comment-dropped",
        "comment-added",
        "comment-before-kept",
        "two-binds",
        "trailing-extra",
        "literal-only",
        "first-token-changed",
        "bind-first",
        "colon-that-is-not-a-bind",
        "final-shorter",
        "commented-sign-then-rest",
        "open-list-then-rest",
        "commented-list-then-rest",
        "unclosed-list-then-rest",
    ],
)
def test_final_text_differs_only_by_values(approved: str, final: str, same: bool) -> None:
    assert only_values_differ(tokenize(approved), find_binds(approved), tokenize(final)) is same


# -- argument checks --------------------------------------------------------------------------
@pytest.mark.parametrize("value", [1, 5, 10**12], ids=["one", "five", "big"])
def test_positive_whole_numbers_are_row_counts(value: int) -> None:
    assert positive_int_arg(value, "limit") == value


@pytest.mark.parametrize("value", [0, -1, True, False, 1.0, "1", None], ids=repr)
def test_other_row_counts_are_refused_by_name(value: object) -> None:
    with pytest.raises(BindError, match=r"^limit must be a positive whole number of rows, not "):
        positive_int_arg(value, "limit")


@pytest.mark.parametrize(
    ("value", "ceiling", "expected"),
    [
        (MIN_TIMEOUT_SECONDS, None, 0.01),
        (1, None, 1.0),
        (2.5, 2.5, 2.5),
        (10**9, None, 1e9),
    ],
    ids=["the-minimum", "int", "at-the-ceiling", "no-ceiling"],
)
def test_seconds_in_range_are_returned_as_float(
    value: float, ceiling: float | None, expected: float
) -> None:
    got = seconds_arg(value, "timeout", ceiling)
    assert got == expected and type(got) is float


@pytest.mark.parametrize(
    ("value", "ceiling", "minimum", "message"),
    [
        (True, None, 0.01, "timeout must be a number of seconds, not True."),
        ("5", None, 0.01, "timeout must be a number of seconds, not '5'."),
        (float("inf"), None, 0.01, "timeout must be a number of seconds, not inf."),
        (float("nan"), None, 0.01, "timeout must be a number of seconds, not nan."),
        (0, None, 0.01, "timeout must be more than 0 seconds, not 0."),
        (-1, None, 0.01, "timeout must be more than 0 seconds, not -1."),
        (0.009, None, 0.01, "timeout must be at least 0.01 seconds, not 0.009."),
        (0.5, None, 1, "timeout must be at least 1 seconds, not 0.5."),
        (
            2.51,
            2.5,
            0.01,
            "timeout=2.51 is above the configured limit of 2.5 seconds; "
            "ask for less (the limit is set by statement_timeout).",
        ),
    ],
    ids=[
        "bool",
        "text",
        "infinite",
        "nan",
        "zero",
        "negative",
        "below-the-minimum",
        "below-a-given-minimum",
        "above-the-ceiling",
    ],
)
def test_bad_seconds_are_refused_with_the_reason(
    value: object, ceiling: float | None, minimum: float, message: str
) -> None:
    with pytest.raises(BindError) as info:
        seconds_arg(value, "timeout", ceiling, minimum)
    assert str(info.value) == message


# -- argument bounds (round 3): the exact edges, read by the binds harness --------------------
def test_a_whole_number_beyond_64_bits_is_refused_by_its_own_message() -> None:
    from hybridwb.source.binds import check_params

    assert check_params({"n"}, {"n": 2**63 - 1}) == {"n": 2**63 - 1}
    assert check_params({"n"}, {"n": -(2**63)}) == {"n": -(2**63)}
    for value in (2**63, -(2**63) - 1, 2**64):
        with pytest.raises(BindError) as info:
            check_params({"n"}, {"n": value})
        assert str(info.value) == (
            "Parameter 'n' is a whole number beyond 64 bits; bind it as a Decimal or text."
        )


def test_a_row_count_may_be_as_large_as_the_cap_plus_one_still_fits_64_bits() -> None:
    from hybridwb.source.binds import positive_int_arg

    assert positive_int_arg(2**63 - 2, "limit") == 2**63 - 2
    with pytest.raises(BindError) as info:
        positive_int_arg(2**63 - 1, "limit")
    assert str(info.value) == "limit must be at most 9,223,372,036,854,775,806 rows; ask for fewer."


def test_a_time_limit_beyond_64_bits_is_not_a_number_of_seconds() -> None:
    from hybridwb.source.binds import seconds_arg

    assert seconds_arg(2**63 - 1, "timeout", None) == float(2**63 - 1)
    for value in (2**63, 10**400):
        with pytest.raises(BindError) as info:
            seconds_arg(value, "timeout", None)
        assert str(info.value).startswith("timeout must be a number of seconds, not ")
