"""Server text about statements (SHOW WARNINGS/ERRORS, EXPLAIN) shows no echoed value.

Pure table-driven checks of `hybridwb.source.diagnostics`; the end-to-end checks on MariaDB
are in tests/test_attack_secrets_round3.py (findings 1 and 8)."""

from __future__ import annotations

import json

import pytest

from hybridwb.source import diagnostics
from hybridwb.source.guard import check

SECRET = ("010-2345-6789", "Brien", "19780412", "kim@example.com")


@pytest.mark.parametrize(
    ("text", "code", "kept"),
    [
        ("Truncated incorrect DOUBLE value: '010-2345-6789'", 1292, "Truncated incorrect"),
        ("Duplicate entry 'O'Brien1' for key 'group_key'", 1062, "Duplicate entry"),
        ('Unknown column "kim@example.com" in field list', 1054, "Unknown column"),
        ("select 19780412 AS `born`,'O\\'Brien' AS `n` from `t` where 1", 1003, "AS"),
    ],
    ids=["quoted-value", "apostrophe-in-value", "double-quoted", "rewritten-query-note"],
)
def test_diagnostic_message_keeps_words_not_values(text: str, code: int, kept: str) -> None:
    shown = diagnostics.message(text, code)
    assert kept in shown
    assert not any(s in shown for s in SECRET), shown


@pytest.mark.parametrize(
    "cell",
    [
        "p.`status` = '010-2345-6789'",
        "p.`status` = 'O\\'Brien' and p.x = 'kim@example.com'",
        "p.`status` = 'a'Brien'",
        json.dumps({"query_block": {"table": {"attached_condition": "p.s = 'O\\'Brien'"}}}),
    ],
    ids=["literal", "escaped-quote", "stray-quote", "json-plan"],
)
def test_plan_text_masks_quoted_literals(cell: str) -> None:
    shown = diagnostics.plan_text(cell)
    assert "p." in shown.replace(" ", "")  # a JSON plan's condition is spaced token by token
    assert not any(s in shown for s in SECRET), shown


def test_json_plan_stays_json() -> None:
    plan = {"query_block": {"select_id": 1, "table": {"attached_condition": "a.b = '01023'"}}}
    shown = json.loads(diagnostics.plan_text(json.dumps(plan)))
    assert shown["query_block"]["table"]["attached_condition"] == "a . b = ?"
    assert shown["query_block"]["select_id"] == 1


@pytest.mark.parametrize(
    ("sql", "scrubbed"),
    [
        ("SHOW WARNINGS", True),
        ("SHOW ERRORS LIMIT 5", True),
        ("show warnings", True),
        ("SHOW TABLES", False),
        ("SELECT 'x' AS Message", False),
    ],
)
def test_only_diagnostics_rows_are_scrubbed(sql: str, scrubbed: bool) -> None:
    rows = [("Warning", 1292, "Truncated incorrect DOUBLE value: '010-2345-6789'")]
    out = diagnostics.scrub_rows(check(sql), ["Level", "Code", "Message"], rows)
    assert (out != rows) is scrubbed


def test_json_plan_condition_hides_a_const_tables_number() -> None:
    plan = {"query_block": {"table": {"attached_condition": "p.amount = 19780412 and p.k = 'x'"}}}
    shown = diagnostics.plan_text(json.dumps(plan))
    assert "19780412" not in shown and "amount" in shown


@pytest.mark.parametrize(
    ("sql", "plan"),
    [
        ("EXPLAIN SELECT 1", True),
        ("DESC FORMAT=JSON SELECT 1", True),
        ("DESCRIBE SELECT 1", True),
        ("EXPLAIN customers", False),
        ("EXPLAIN FORMAT", False),
        ("SELECT 1", False),
    ],
)
def test_a_plan_is_known_by_the_statement_it_explains_not_by_its_first_word(
    sql: str, plan: bool
) -> None:
    assert diagnostics.explains(check(sql)) is plan
