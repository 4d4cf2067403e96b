"""Each rule of the guard on its own, with the whole message it gives (pure, no database).

tests/test_guard.py runs the attack corpus; this file pins every rule and limit one by one,
so that `make mutation` sees a test fail for every change to hybridwb/source/guard.py that
changes what it admits or what it tells the user. The lists here are written out, not read
from the guard, so a name dropped from the guard's lists fails a test.
"""

from __future__ import annotations

import dataclasses

import pytest
from sqlglot import exp

from hybridwb.errors import QueryError, ReadOnlyViolation
from hybridwb.source import guard

#: every optimizer hint that only steers the plan (MySQL 8 manual, "Optimizer Hints")
READ_HINTS = [
    "BKA",
    "NO_BKA",
    "BNL",
    "NO_BNL",
    "HASH_JOIN",
    "NO_HASH_JOIN",
    "INDEX_MERGE",
    "NO_INDEX_MERGE",
    "JOIN_FIXED_ORDER",
    "JOIN_ORDER",
    "JOIN_PREFIX",
    "JOIN_SUFFIX",
    "MERGE",
    "NO_MERGE",
    "MRR",
    "NO_MRR",
    "NO_ICP",
    "NO_RANGE_OPTIMIZATION",
    "QB_NAME",
    "SEMIJOIN",
    "NO_SEMIJOIN",
    "SKIP_SCAN",
    "NO_SKIP_SCAN",
    "SUBQUERY",
    "DERIVED_CONDITION_PUSHDOWN",
    "NO_DERIVED_CONDITION_PUSHDOWN",
    "INDEX",
    "NO_INDEX",
    "GROUP_INDEX",
    "NO_GROUP_INDEX",
    "JOIN_INDEX",
    "NO_JOIN_INDEX",
    "ORDER_INDEX",
    "NO_ORDER_INDEX",
]

#: built-ins (and known UDFs) that sleep, lock, read files, wait or touch sequences
DANGEROUS = [
    "SLEEP",
    "BENCHMARK",
    "GET_LOCK",
    "RELEASE_LOCK",
    "RELEASE_ALL_LOCKS",
    "IS_FREE_LOCK",
    "IS_USED_LOCK",
    "LOAD_FILE",
    "MASTER_POS_WAIT",
    "MASTER_GTID_WAIT",
    "SOURCE_POS_WAIT",
    "WAIT_FOR_EXECUTED_GTID_SET",
    "WAIT_UNTIL_SQL_THREAD_AFTER_GTIDS",
    "WSREP_SYNC_WAIT_UPTO_GTID",
    "SYS_EXEC",
    "SYS_EVAL",
    "NEXTVAL",
    "SETVAL",
    "LASTVAL",
    "PREVIOUSVAL",
]

NOT_BUILT_IN = (
    "() is not a built-in function (a stored function runs server code); hybridwb only reads. "
    "Ask a DBA to vet it and add it to allowed_functions, or compute the value in Python."
)
USE_READS = "; hybridwb only reads. Use SELECT, SHOW, DESCRIBE or EXPLAIN."
EXPLAIN_READS = "; hybridwb only reads. EXPLAIN a SELECT, or DESCRIBE a table."


def refused(sql: str, **kwargs: object) -> str:
    with pytest.raises(ReadOnlyViolation) as info:
        guard.check(sql, **kwargs)  # type: ignore[arg-type]
    assert type(info.value) is ReadOnlyViolation
    return str(info.value)


def query_error(sql: object) -> str:
    with pytest.raises(QueryError) as info:
        guard.check(sql)
    assert type(info.value) is QueryError
    return str(info.value)


# -- optimizer hints and dangerous functions, name by name ------------------------------------
@pytest.mark.parametrize("hint", READ_HINTS)
def test_a_read_only_optimizer_hint_is_admitted(hint: str) -> None:
    assert guard.check(f"SELECT /*+ {hint}(t) */ a FROM t").kind == "select"
    assert guard.check(f"SELECT /*+ {hint.lower()} (t) */ a FROM t").kind == "select"


@pytest.mark.parametrize("hint", ["SET_VAR", "MAX_EXECUTION_TIME", "RESOURCE_GROUP"])
def test_a_hint_that_changes_the_session_is_refused(hint: str) -> None:
    assert refused(f"SELECT /*+ BKA(t) {hint.lower()}(1) */ a FROM t") == (
        f"Refused: the optimizer hint {hint} changes session settings or limits; "
        "hybridwb only reads. Remove the hint."
    )


@pytest.mark.parametrize("name", DANGEROUS)
def test_a_dangerous_function_is_refused_even_when_allowlisted(name: str) -> None:
    message = (
        f"Refused: {name}() can sleep, lock, read server files or change state; "
        "hybridwb only reads. Remove the call."
    )
    assert refused(f"SELECT {name.lower()}(1)") == message
    assert refused(f"SELECT {name}(1)", allowed_functions={name.lower()}) == message


# -- the text: type, encoding, size ------------------------------------------------------------
def test_the_size_limit_is_256_kib_inclusive() -> None:
    head = "SELECT 1 -- "
    at_limit = head + "x" * (guard.MAX_QUERY_BYTES - len(head))
    assert len(at_limit.encode()) == 256 * 1024
    assert guard.check(at_limit).kind == "select"
    assert query_error(at_limit + "x") == (
        "The query is 262,145 bytes; the limit is 262,144. "
        "Put long value lists in a bound parameter (:ids) instead of the text."
    )


def test_the_size_is_counted_in_utf8_bytes_not_characters() -> None:
    text = "SELECT 1 -- " + "한" * 90_000  # 90,012 characters, 270,012 bytes
    assert "270,012 bytes" in query_error(text)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (b"\xff", "The query is not valid UTF-8; save the text as UTF-8 and try again."),
        (None, "The query must be text, not NoneType."),
        (["SELECT 1"], "The query must be text, not list."),
        (
            "SELECT '\ud800'",
            "The query is not valid UTF-8 (it holds a lone surrogate); retype the odd character.",
        ),
        ("SELECT '\x00'", "The query contains a NUL character; remove it."),
        ("", "The query is empty; write one SELECT statement."),
        (" ; ; ", "The query is empty; write one SELECT statement."),
        ("/* a */ -- b", "The query holds only comments; write one SELECT statement."),
        ("SELECT 'open", "The query does not tokenize"),
    ],
    ids=[
        "bad-bytes",
        "none",
        "list",
        "surrogate",
        "nul",
        "empty",
        "semicolons",
        "only-comments",
        "open-quote",
    ],
)
def test_unusable_text_is_a_query_error_with_its_message(query: object, message: str) -> None:
    assert query_error(query).startswith(message)


@pytest.mark.parametrize("query", [b"SELECT 1", bytearray(b"SELECT 1")], ids=["bytes", "bytearray"])
def test_utf8_bytes_are_read_as_text(query: object) -> None:
    assert guard.check(query).sql == "SELECT 1"


# -- what stands between tokens ----------------------------------------------------------------
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1 -- c\nFROM t",
        "SELECT 1 --\tc\nFROM t",
        "SELECT 1 --",
        "SELECT 1 -- c",
        "SELECT 1 # c\nFROM t",
        "SELECT 1 #",
        "SELECT 1 /* a */ /* b */ FROM t",
        "SELECT 1\tFROM\nt\r",
        "SELECT 1\x0bFROM\x0ct",
        "-- c\nSELECT 1",
    ],
    ids=[
        "dash-comment",
        "dash-tab-comment",
        "dash-at-end",
        "dash-comment-at-end",
        "hash-comment",
        "hash-at-end",
        "two-block-comments",
        "tab-newline-return",
        "vertical-tab-form-feed",
        "comment-first",
    ],
)
def test_whitespace_and_comments_as_mysql_reads_them_are_admitted(sql: str) -> None:
    assert guard.check(sql).kind == "select"


@pytest.mark.parametrize(
    ("sql", "near"),
    [
        ("SELECT 1\u00a0FROM t", repr(repr("\u00a0"))),  # blank: the character is named
        ("SELECT 1 \u2003 FROM t", repr(repr("\u2003"))),
    ],
    ids=["no-break-space", "em-space"],
)
def test_other_text_between_tokens_is_refused(sql: str, near: str) -> None:
    assert refused(sql) == (
        f"Refused: the text near {near} reads differently to MySQL than to the guard; "
        "hybridwb only reads. Write comments as /* ... */ or '-- ' with a space, "
        "and plain spaces between words."
    )


@pytest.mark.parametrize(
    "sql",
    ["SELECT 1 /*! , 2 */", "SELECT 1 /*M! , 2 */", "SELECT 1 /*m!100000 , 2 */", "/*! DROP */"],
    ids=["mysql", "mariadb", "mariadb-lower", "only-an-executable-comment"],
)
def test_an_executable_comment_is_refused(sql: str) -> None:
    assert refused(sql) == (
        "Refused: an executable comment (/*! ... */) runs on the server; hybridwb only reads. "
        "Remove the /*! ... */ part."
    )


def test_two_words_the_server_reads_as_one_are_refused() -> None:
    # MySQL reads a Greek question mark as a letter of `1;`, sqlglot as a word of its own
    assert refused("SELECT 1\u037e DELETE FROM t") == (
        "Refused: the text near 'LECT 1\u037e DELE' reads differently to MySQL than to the "
        "guard; hybridwb only reads. Put a space between the two words."
    )
    assert refused("X\u037e").startswith("Refused: X\u037e is not")  # kind decided first


# -- the statement kind -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("SELECT 1", "select"),
        ("select 1", "select"),
        ("(SELECT 1)", "select"),
        ("((SELECT 1))", "select"),
        ("WITH c AS (SELECT 1) SELECT * FROM c", "select"),
        ("VALUES (1, 2)", "select"),
        ("TABLE t", "select"),
        ("SHOW TABLES", "show"),
        ("show tables;", "show"),
        ("DESCRIBE t", "describe"),
        ("DESC db.t", "describe"),
        ("DESC t;", "describe"),
        ("DESCRIBE t a", "describe"),
        ("DESCRIBE t 'a%'", "describe"),
        ("DESCRIBE `db`.`t`", "describe"),
        ("EXPLAIN SELECT 1", "describe"),
        ("EXPLAIN (SELECT 1)", "describe"),
        ("EXPLAIN EXTENDED SELECT 1", "describe"),
        ("EXPLAIN ANALYZE SELECT 1", "describe"),
        ("EXPLAIN FORMAT=JSON SELECT 1", "describe"),
        ("EXPLAIN FORMAT=JSON (SELECT 1)", "describe"),
        ("EXPLAIN FORMAT='json' SELECT 1", "describe"),
        ("EXPLAIN FORMAT=TREE SELECT 1", "describe"),
        ("EXPLAIN FORMAT=TRADITIONAL SELECT 1", "describe"),
        ("EXPLAIN FORMAT", "describe"),
        ("EXPLAIN format x", "describe"),
        ("DESCRIBE FORMAT=JSON SELECT 1", "describe"),
        ("EXPLAIN EXTENDED PARTITIONS SELECT 1", "describe"),
    ],
)
def test_read_statement_kinds(sql: str, kind: str) -> None:
    checked = guard.check(sql)
    assert checked.kind == kind
    assert checked.sql == sql
    assert checked.tokens[0].start == 0


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("EXPLAIN", "Refused: EXPLAIN is not a read statement" + EXPLAIN_READS),
        ("DESCRIBE", "Refused: DESCRIBE is not a read statement" + EXPLAIN_READS),
        (
            "EXPLAIN DELETE FROM t",
            "Refused: EXPLAIN DELETE is not a read statement" + EXPLAIN_READS,
        ),
        (
            "EXPLAIN FORMAT=JSON DELETE FROM t",
            "Refused: EXPLAIN DELETE is not a read statement" + EXPLAIN_READS,
        ),
        (
            "EXPLAIN EXTENDED (DELETE FROM t)",
            "Refused: EXPLAIN DELETE is not a read statement" + EXPLAIN_READS,
        ),
        (
            "DESCRIBE DELETE FROM t",
            "Refused: DESCRIBE DELETE is not a read statement" + EXPLAIN_READS,
        ),
        ("DESCRIBE t a b c d e", "Refused: DESCRIBE T is not a read statement" + EXPLAIN_READS),
        ("DESC SET a = 1", "Refused: DESC SET is not a read statement" + EXPLAIN_READS),
        ("DESC t + 1", "Refused: DESC T is not a read statement" + EXPLAIN_READS),
        ("(SHOW TABLES)", "Refused: SHOW is not a read statement" + USE_READS),
        ("(DESCRIBE t)", "Refused: DESCRIBE is not a read statement" + USE_READS),
        ("DELETE FROM t", "Refused: DELETE is not a read statement" + USE_READS),
        ("'x'", "Refused: ? is not a read statement" + USE_READS),  # a value: not repeated
        ("( 1 )", "Refused: ( is not a read statement" + USE_READS),
    ],
)
def test_other_statements_are_refused_by_name(sql: str, message: str) -> None:
    assert refused(sql) == message


# -- token rules --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sql", "what", "todo"),
    [
        ("SELECT 1; SELECT 2", "2 statements in one query", "Run one statement at a time."),
        ("SELECT 1;; SELECT 2", "2 statements in one query", "Run one statement at a time."),
        (
            "SELECT 1; SELECT 2; SELECT 3",
            "3 statements in one query",
            "Run one statement at a time.",
        ),
        (
            "SELECT @a",
            "@variables carry state between statements",
            "Compute the value in a column or pass it as a :bind.",
        ),
        ("SELECT a := 1", "':=' assigns a variable", "Compute the value in a column or in Python."),
        (
            "SELECT a FROM t INTO DUMPFILE '/x'",
            "INTO writes a file, a variable or a table",
            "Drop the INTO clause; the rows come back to the notebook.",
        ),
        (
            "SELECT a FROM t LOCK IN SHARE MODE",
            "LOCK IN SHARE MODE takes row locks",
            "Remove it; a plain SELECT reads.",
        ),
        (
            "SELECT a FROM t FOR SHARE",
            "FOR SHARE takes row locks",
            "Remove it; a plain SELECT reads.",
        ),
        (
            "SELECT a FROM t FOR UPDATE",
            "FOR UPDATE takes row locks",
            "Remove it; a plain SELECT reads.",
        ),
        (
            "SELECT a FROM t PROCEDURE ANALYSE()",
            "PROCEDURE runs server code",
            "Remove the PROCEDURE clause.",
        ),
        ("SELECT NEXT VALUE FOR s", "NEXT VALUE FOR reads or advances a sequence", "Remove it."),
        (
            "SELECT PREVIOUS VALUE FOR s",
            "PREVIOUS VALUE FOR reads or advances a sequence",
            "Remove it.",
        ),
        (
            "SELECT LAST_INSERT_ID(1)",
            "LAST_INSERT_ID(expr) sets session state",
            "Call LAST_INSERT_ID() alone.",
        ),
    ],
)
def test_token_rule_refusal(sql: str, what: str, todo: str) -> None:
    assert refused(sql) == f"Refused: {what}; hybridwb only reads. {todo}"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1;",
        "SELECT 1;;",
        "SELECT a FROM t FOR",
        "SELECT `next` FROM t",
        "SELECT LAST_INSERT_ID()",
        "SELECT a FROM t ORDER BY (a)",
    ],
)
def test_token_rules_leave_reads_alone(sql: str) -> None:
    try:
        guard.check(sql)
    except QueryError as exc:  # a syntax error is fine; a refusal is not
        assert type(exc) is QueryError


def test_nesting_is_limited_to_32_parentheses() -> None:
    assert guard.check("SELECT " + "(" * 32 + "1" + ")" * 32).kind == "select"
    assert query_error("SELECT " + "(" * 33 + "1" + ")" * 33) == (
        "The query is nested 33 parentheses deep; the limit is 32. Flatten it (a CTE per level)."
    )
    # depth is the deepest point, not the count of parentheses
    assert guard.check("SELECT " + "(1)+" * 40 + "1").kind == "select"


# -- calls --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT ABS(1)",
        "SELECT abs(GREATEST(1, 2))",
        "SELECT NOW()",
        "SELECT COUNT(*) FROM t",
        "SELECT CHAR(65)",
        "SELECT IF(1, 2, 3)",
        "SELECT POINT(1, 2)",
        "SELECT POINT((1), 2)",
        "SELECT POINT(ABS(1), 2)",
        "SELECT POINT(1, (2))",
        "SELECT LINESTRING(POINT(1, 2))",
        "SELECT LINESTRING(POINT(1, 2), POINT(3, 4), POINT(5, 6))",
        "SELECT MATCH(a) AGAINST('x') FROM t",
        "SELECT * FROM JSON_TABLE('[1]', '$[*]' COLUMNS (a INT PATH '$')) AS j",
        "SELECT * FROM t JOIN JSON_TABLE('[1]', '$[*]' COLUMNS (a INT PATH '$')) AS j ON 1",
        "SELECT * FROM t LEFT JOIN JSON_TABLE('[1]', '$[*]' COLUMNS (a INT PATH '$')) AS j ON 1",
        "SELECT 1 MEMBER OF ('[1]')",
        "SELECT CAST(a AS CHAR(10)) FROM t",
        "SELECT a FROM t WHERE b IN (1)",
        "WITH c (a) AS (SELECT 1) SELECT * FROM c",
        "WITH RECURSIVE c (a) AS (SELECT 1) SELECT * FROM c",
        "WITH a AS (SELECT 1), b (x) AS (SELECT 2) SELECT * FROM a, b",
        "SELECT x FROM t AS q (a)",
    ],
)
def test_built_ins_and_syntax_before_a_parenthesis_are_admitted(sql: str) -> None:
    assert guard.check(sql).kind == "select"


@pytest.mark.parametrize(
    ("sql", "name"),
    [
        ("SELECT f(1)", "f"),
        ("SELECT `abs`(1)", "abs"),
        ("SELECT shop.f(1)", "shop.f"),
        ("SELECT db.abs(1)", "db.abs"),
        ("SELECT POINT(1)", "point"),
        ("SELECT POINT(1, 2, 3)", "point"),
        ("SELECT LINESTRING()", "linestring"),
        ("SELECT AGAINST('x')", "against"),
        ("SELECT a COLUMNS (1)", "columns"),
        ("SELECT 1 OF (1)", "of"),
        ("SELECT JSON_TABLE(1)", "json_table"),
        ("SELECT a FROM t WHERE b = f (1)", "f"),
        ("SELECT 'a' (2)", "a"),
        ("SELECT f(1) AS x", "f"),
        ("WITH c AS (SELECT f(1)) SELECT * FROM c", "f"),
        ("SELECT g(1), f(2) AS (1)", "g"),
    ],
)
def test_any_other_call_is_a_stored_function(sql: str, name: str) -> None:
    assert refused(sql) == f"Refused: {name}{NOT_BUILT_IN}"


@pytest.mark.parametrize(
    ("sql", "allowed"),
    [
        ("SELECT f(1)", "f"),
        ("SELECT f(1)", " F "),
        ("SELECT f(1)", ["", "f"]),
        ("SELECT shop.f(1)", {"SHOP.F"}),
        ("SELECT `f`(1)", ("f",)),
    ],
    ids=["a-string", "spaces-and-case", "blank-entry", "qualified", "quoted"],
)
def test_an_allowlisted_function_is_admitted(sql: str, allowed: object) -> None:
    assert guard.check(sql, allowed_functions=allowed).kind == "select"  # type: ignore[arg-type]


def test_a_blank_allowlist_entry_admits_nothing() -> None:
    assert refused("SELECT f(1)", allowed_functions=["", " "]).startswith("Refused: f()")


def test_the_allowlist_string_is_one_name_not_letters() -> None:
    assert refused("SELECT f(1)", allowed_functions="fg").startswith("Refused: f()")


# -- the parsed tree ----------------------------------------------------------------------------
def test_a_syntax_error_says_where_and_what() -> None:
    with pytest.raises(QueryError) as info:
        guard.check("SELECT * FROM t WHERE")
    message = str(info.value)
    assert message.startswith("Syntax error at line 1, column ")
    assert message.endswith(". Fix the SQL (MySQL dialect).")
    assert info.value.line == 1 and info.value.column == 21


def test_a_call_the_parser_cannot_build_has_its_own_message() -> None:
    assert query_error("SELECT DATE_ADD()") == (
        "Syntax error: the statement cannot be read (check the arguments of each call). "
        "Fix the SQL (MySQL dialect)."
    )


def test_rows_examined_is_dropped_only_for_parsing() -> None:
    checked = guard.check("SELECT a FROM t LIMIT 1 ROWS EXAMINED 5")
    assert checked.has_limit
    assert checked.sql.endswith("ROWS EXAMINED 5")
    assert "EXAMINED" in checked.normalized()
    assert guard.check("SELECT rows, examined FROM t").kind == "select"


@pytest.mark.parametrize(
    ("sql", "has_limit"),
    [
        ("SELECT a FROM t LIMIT 3", True),
        ("SELECT a FROM t", False),
        ("SHOW TABLES", False),
        ("EXPLAIN SELECT a FROM t LIMIT 3", False),
    ],
)
def test_has_limit_is_only_for_a_select_with_limit(sql: str, has_limit: bool) -> None:
    assert guard.check(sql).has_limit is has_limit


def test_explain_wraps_the_read_it_explains() -> None:
    checked = guard.check("EXPLAIN SELECT a FROM t")
    assert checked.kind == "describe"
    assert checked.expression.this.sql() == "SELECT a FROM t"


def test_a_values_statement_is_parsed_as_rows() -> None:
    checked = guard.check("VALUES (1, 'a')")
    assert checked.kind == "select"
    assert checked.expression.find(guard.exp.Values) is not None


def test_a_show_statement_is_not_parsed() -> None:
    checked = guard.check("show full processlist")
    assert checked.kind == "show"
    assert checked.expression.this == "SHOW"


# -- logs ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sql", "normalized"),
    [
        ("SELECT a FROM t WHERE b = 'x' AND c = 1", "SELECT a FROM t WHERE b = ? AND c = ?"),
        ("SELECT X'ff', b'1', N'x', 0x1f", "SELECT ? , ? , ? , ?"),
        ("SELECT `a` FROM t", "SELECT a FROM t"),
        ("SELECT 'open", "<unparseable statement>"),
    ],
    ids=["string-and-number", "hex-bit-national", "quoted-name-kept", "unparseable"],
)
def test_normalize_replaces_literals(sql: str, normalized: str) -> None:
    assert guard.normalize(sql) == normalized


#: words that start a statement other than a read: never a table name after DESCRIBE (ANALYZE
#: is read as EXPLAIN's option first)
VERBS = """ALTER CALL CREATE DELETE DO DROP FOR GRANT HANDLER INSERT LOAD LOCK RENAME REPLACE
REVOKE SET TRUNCATE UNLOCK UPDATE""".split()  # noqa: SIM905


@pytest.mark.parametrize("verb", VERBS)
def test_describe_of_a_statement_is_refused_by_name(verb: str) -> None:
    assert refused(f"DESCRIBE {verb.lower()} x") == (
        f"Refused: DESCRIBE {verb} is not a read statement" + EXPLAIN_READS
    )


def test_a_double_dash_before_other_space_at_the_end_is_not_a_comment() -> None:
    # MySQL needs a real space after `--`; a no-break space at the very end is text
    assert refused("SELECT 1 --\u00a0").startswith(
        "Refused: the text near '--' reads differently to MySQL than to the guard"
    )


def test_a_character_from_u0080_on_is_part_of_a_word_to_mysql() -> None:
    assert refused("SELECT 1\u0080 FROM t").endswith(
        "hybridwb only reads. Put a space between the two words."
    )


@pytest.mark.parametrize(
    "sql",
    [
        "WITH RECURSIVE c (a) SELECT 1",
        "WITH c (a) SELECT 1",
        "WITH a AS (SELECT 1), b (x) AS (",
    ],
    ids=["recursive-without-as", "without-as", "cut-after-as"],
)
def test_a_cte_name_is_never_taken_for_a_stored_function(sql: str) -> None:
    assert query_error(sql).startswith("Syntax error at line 1, column ")


def test_a_statement_of_one_word_is_named_not_called_empty() -> None:
    assert refused("X") == "Refused: X is not a read statement" + USE_READS


# -- limits and corner cases named by the mutation run (benchmarks/mutation.py guard) ------------
def test_an_admitted_statement_cannot_be_swapped_after_the_check() -> None:
    checked = guard.check("SELECT a FROM t")
    with pytest.raises(dataclasses.FrozenInstanceError):
        checked.sql = "DELETE FROM t"  # type: ignore[misc]
    assert checked.sql == "SELECT a FROM t"


def test_a_comment_right_before_other_space_does_not_hide_it() -> None:
    near = repr(repr("\u00a0"))  # blank: the character is named
    assert refused("SELECT 1 /* a */\u00a0FROM t").startswith(
        f"Refused: the text near {near} reads differently to MySQL"
    )


def test_a_double_dash_before_a_no_break_space_is_named_by_its_first_12_characters() -> None:
    # sqlglot skips `--\xa0...` as a comment; MySQL reads on: `, password FROM mysql.user`
    assert refused("SELECT 1 --\u00a0, password FROM mysql.user") == (
        "Refused: the text near '--\\xa0, passwor' reads differently to MySQL than to the guard; "
        "hybridwb only reads. Write comments as /* ... */ or '-- ' with a space, "
        "and plain spaces between words."
    )


def test_merged_words_at_the_start_are_named_from_the_first_character() -> None:
    assert refused("SHOW 1\u037e") == (
        "Refused: the text near 'SHOW 1\u037e' reads differently to MySQL than to the guard; "
        "hybridwb only reads. Put a space between the two words."
    )


@pytest.mark.parametrize(
    "sql",
    ["SELECT 1\x7f", "SELECT \x7f(1)"],
    ids=["after-a-number", "before-a-parenthesis"],
)
def test_u007f_is_not_a_word_character_to_mysql(sql: str) -> None:
    # MySQL's unquoted names use U+0080 and up; DEL ends a word (the server reports the
    # syntax error), so the guard neither merges it with `1` nor calls it a function
    assert guard.check(sql).kind == "select"


def test_a_function_named_by_u0080_is_a_stored_function() -> None:
    assert refused("SELECT \u0080(1)") == f"Refused: \u0080{NOT_BUILT_IN}"


def test_a_dollar_name_is_named_in_the_refusal() -> None:
    assert refused("DESC $t + 1") == "Refused: DESC $T is not a read statement" + EXPLAIN_READS


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("((", "Refused: ( is not a read statement" + USE_READS),
        ("EXPLAIN EXTENDED", "Refused: EXPLAIN is not a read statement" + EXPLAIN_READS),
        ("EXPLAIN (", "Refused: EXPLAIN is not a read statement" + EXPLAIN_READS),
        ("EXPLAIN FORMAT=JSON", "Refused: EXPLAIN is not a read statement" + EXPLAIN_READS),
        ("EXPLAIN FORMAT=", "Refused: EXPLAIN FORMAT is not a read statement" + EXPLAIN_READS),
        # only FORMAT takes `= value`: another word before `=` is not skipped to a SELECT
        ("EXPLAIN x=1 SELECT 1", "Refused: EXPLAIN X is not a read statement" + EXPLAIN_READS),
    ],
    ids=["only-parentheses", "options-only", "parenthesis-only", "format-only", "format-cut", "x="],
)
def test_a_statement_cut_short_is_refused_by_name(sql: str, message: str) -> None:
    assert refused(sql) == message


@pytest.mark.parametrize(
    "sql",
    [
        "EXPLAIN FORMAT=JSON SELECT a FROM t",
        "EXPLAIN FORMAT=JSON (SELECT a FROM t)",
        "DESC FORMAT='json' SELECT a FROM t",
        "EXPLAIN EXTENDED FORMAT=tree SELECT a FROM t",
    ],
)
def test_explain_format_wraps_the_statement_it_explains(sql: str) -> None:
    checked = guard.check(sql)
    assert isinstance(checked.expression, exp.Describe)
    assert isinstance(checked.expression.this, exp.Select | exp.Subquery)


@pytest.mark.parametrize("sql", ["EXPLAIN FORMAT", "EXPLAIN format x", "DESC format"])
def test_explain_format_alone_describes_the_table_format(sql: str) -> None:
    # as MariaDB reads it: `EXPLAIN format` is DESCRIBE of a table named format
    checked = guard.check(sql)
    assert (checked.kind, type(checked.expression)) == ("describe", exp.Command)


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        (
            "EXPLAIN FORMAT=DELETE SELECT 1",
            "Refused: EXPLAIN FORMAT is not a read statement" + EXPLAIN_READS,
        ),
        (
            "EXPLAIN FORMAT=( SELECT 1)",
            "Refused: EXPLAIN FORMAT is not a read statement" + EXPLAIN_READS,
        ),
        (
            "EXPLAIN FORMAT=JSON json(1)",
            "Refused: EXPLAIN JSON is not a read statement" + EXPLAIN_READS,
        ),
        (
            "EXPLAIN FORMAT=JSON (DELETE FROM t)",
            "Refused: EXPLAIN DELETE is not a read statement" + EXPLAIN_READS,
        ),
        (
            "EXPLAIN FORMAT=JSON (SELECT SLEEP(1))",
            "Refused: SLEEP() can sleep, lock, read server files or change state; "
            "hybridwb only reads. Remove the call.",
        ),
        (
            "EXPLAIN FORMAT=JSON (SELECT f(1))",
            f"Refused: f{NOT_BUILT_IN}",
        ),
    ],
    ids=["unknown-format", "format-parenthesis", "format-call", "write", "sleep", "stored"],
)
def test_explain_format_of_anything_but_a_read_is_refused(sql: str, message: str) -> None:
    assert refused(sql) == message


def test_describe_takes_at_most_five_names() -> None:
    assert guard.check("DESCRIBE t a b c d").kind == "describe"
    assert refused("DESCRIBE t a b c d e").startswith("Refused: DESCRIBE T is not")


@pytest.mark.parametrize(
    "sql",
    ["SHOW TABLES; SHUTDOWN", "DESCRIBE t; SHUTDOWN", "SELECT 1;X"],
    ids=["show", "describe", "one-token-after"],
)
def test_one_word_after_the_semicolon_is_a_second_statement(sql: str) -> None:
    assert refused(sql) == (
        "Refused: 2 statements in one query; hybridwb only reads. Run one statement at a time."
    )


def test_statements_are_counted_by_their_semicolons_not_their_words() -> None:
    assert refused("SELECT 1; SELECT a, b FROM t;") == (
        "Refused: 2 statements in one query; hybridwb only reads. Run one statement at a time."
    )


@pytest.mark.parametrize("sql", ["SELECT a outfile", "SELECT 1 AS dumpfile"])
def test_outfile_and_dumpfile_are_refused_even_without_into(sql: str) -> None:
    assert refused(sql) == (
        "Refused: INTO writes a file, a variable or a table; hybridwb only reads. "
        "Drop the INTO clause; the rows come back to the notebook."
    )


def test_a_column_named_value_is_not_a_sequence() -> None:
    assert guard.check("SELECT amount AS value FROM t").kind == "select"


def test_a_call_cut_after_its_parenthesis_is_still_refused() -> None:
    assert refused("SELECT SLEEP(") == (
        "Refused: SLEEP() can sleep, lock, read server files or change state; "
        "hybridwb only reads. Remove the call."
    )


def test_arguments_are_counted_at_the_call_depth_only() -> None:
    assert guard.check("SELECT POINT(((1)), 2)").kind == "select"


def test_member_of_split_by_a_comment_is_not_a_stored_function() -> None:
    # sqlglot reads MEMBER and OF as two words there; OF is syntax (the parser then fails)
    assert query_error("SELECT 1 MEMBER /* c */ OF ('[1]')").startswith("Syntax error at line 1")


def test_a_call_right_after_the_first_word_is_judged_by_what_precedes_it() -> None:
    # `SHOW (x) AS`: nothing precedes SHOW (not the trailing AS, which would admit it)
    assert refused("SHOW (x) AS") == f"Refused: show{NOT_BUILT_IN}"


def test_a_name_qualified_right_after_the_first_word_keeps_its_qualifier() -> None:
    assert refused("SELECT.f(1)") == f"Refused: select.f{NOT_BUILT_IN}"


def test_an_allowlisted_qualified_name_of_a_dangerous_function_is_refused() -> None:
    assert refused("SELECT shop.sleep(1)", allowed_functions={"shop.sleep"}) == (
        "Refused: SLEEP() can sleep, lock, read server files or change state; "
        "hybridwb only reads. Remove the call."
    )


@pytest.mark.parametrize(
    "sql",
    ["SELECT f(1) + (2)", "SELECT f(1) AS", "SELECT f(1) AS x"],
    ids=["parenthesis-after", "as-at-the-end", "alias"],
)
def test_a_stored_function_before_other_parentheses_is_refused(sql: str) -> None:
    assert refused(sql) == f"Refused: f{NOT_BUILT_IN}"


def test_a_syntax_error_message_is_the_parsers_description() -> None:
    message = query_error("SELECT * FROM t WHERE")
    # the column and sqlglot's own description, not a stand-in ("invalid syntax", None)
    assert message.startswith("Syntax error at line 1, column 21: Required keyword: 'this' ")
    assert message.endswith("Where'>. Fix the SQL (MySQL dialect).")


def test_a_statement_too_deep_for_the_parser_is_a_query_error() -> None:
    assert query_error("SELECT " + "NOT " * 3000 + "1") == (
        "The query is nested too deeply to check; flatten it (a CTE per level)."
    )


def test_rows_examined_in_a_subquery_is_dropped_alone() -> None:
    # MariaDB runs this; only `ROWS EXAMINED 5` is left out of the parse, not the `)`
    assert guard.check("SELECT * FROM (SELECT a FROM t LIMIT 1 ROWS EXAMINED 5) AS s").kind == (
        "select"
    )


def test_a_write_after_a_cte_is_refused_by_the_tree() -> None:
    assert refused("WITH c AS (SELECT 1) DELETE FROM t") == (
        "Refused: DELETE is not a read statement" + USE_READS
    )
