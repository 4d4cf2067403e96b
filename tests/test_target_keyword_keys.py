# ruff: noqa: F811  (the fixture `source` is the attack file's, imported)
"""Keyword targets read each search page's rows again by key (`key IN (<page's keys>)`, with
the definition's conditions): exactly the rows the keyword found, or a one-line error.

On real MariaDB, a key the schema does not state unique made that lookup bring other rows:
- key 1 held a row named 회원 (found) and a row named 기타 (not found); `key IN (1) LIMIT 1`
  returned the 기타 row: the target was someone the keyword never matched, and the 회원
  row was lost, without a word;
- the same with keys one only under the collation ('s' found, 'ß' not, general_ci);
- with a condition that leaves out the found row, the other row of its key was the target.
Oracle: direct SQL as root.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import hybridwb
from hybridwb.errors import HybridwbError
from hybridwb.targets import service as targets
from tests._mysql import root
from tests.test_attack_once_round2 import people, workbench
from tests.test_attack_search_pages import SEARCHABLE, source  # noqa: F401 (fixture)

pytestmark = pytest.mark.mysql
NUMBER = {"displayName": "점수", "type": "number", "role": "other", "filterable": True}


def oracle(db: str, where: str) -> list[str]:
    conn = root()
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT mobile FROM `{db}`.f WHERE {where}")
            return [r[0] for r in cur.fetchall()]
    finally:
        conn.close()


def targets_or_error(wb: hybridwb.Workbench, definition: dict[str, Any]) -> list[str] | str:
    try:
        return [r["mobile"] for b in wb.targets.iter(definition, 2) for r in b]
    except HybridwbError as exc:
        assert "\n" not in str(exc) and "first page" not in str(exc), str(exc)
        return str(exc)


# (key column type, rows (code, name, mobile, score) inserted in this order)
CASES = {
    "int-dup-one-found": (
        "INT",
        [
            (1, "기타", "010-9000-0001", 1),
            (1, "회원", "010-2000-0001", 1),
            (2, "회원", "010-2000-0002", 1),
        ],
    ),
    "int-dup-both-found": (
        "INT",
        [
            (1, "회원", "010-2000-0001", 1),
            (1, "회원", "010-2000-0002", 1),
            (2, "회원", "010-2000-0003", 1),
        ],
    ),
    "collation-one-found": (
        "VARCHAR(8) COLLATE utf8mb4_general_ci",
        [
            ("ß", "기타", "010-9000-0001", 1),
            ("s", "회원", "010-2000-0001", 1),
            ("t", "회원", "010-2000-0002", 1),
        ],
    ),
    "case-one-found": (
        "VARCHAR(8) COLLATE utf8mb4_unicode_ci",
        [
            ("A", "기타", "010-9000-0001", 1),
            ("a", "회원", "010-2000-0001", 1),
            ("b", "회원", "010-2000-0002", 1),
        ],
    ),
    "condition-leaves-the-found-row-out": (
        "INT",
        [
            (1, "기타", "010-9000-0001", 1),
            (1, "회원", "010-2000-0001", 0),
            (2, "회원", "010-2000-0002", 1),
        ],
    ),
    "nullable": (
        "INT",
        [
            (None, "회원", "010-2000-0001", 1),
            (1, "회원", "010-2000-0002", 1),
            (2, "회원", "010-2000-0003", 1),
        ],
    ),
    "bin-distinct": (
        "VARCHAR(8) COLLATE utf8mb4_bin",
        [
            ("A", "기타", "010-9000-0001", 1),
            ("a", "회원", "010-2000-0001", 1),
            ("b", "회원", "010-2000-0002", 1),
        ],
    ),
}


@pytest.mark.parametrize("page", [1, 2, 500])
@pytest.mark.parametrize("case", list(CASES))
def test_keyword_targets_of_a_key_not_stated_unique(
    source: Callable[..., str],
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    page: int,
) -> None:
    monkeypatch.setattr(targets, "KEYWORD_PAGE", page)
    sql_type, rows = CASES[case]
    db = source(
        f"CREATE TABLE f (code {sql_type}, name VARCHAR(20), mobile VARCHAR(20), score INT, "
        "KEY (name))",
        rows={"f": rows},
    )
    mapping = people(fields={**SEARCHABLE, "score": NUMBER})
    wb = workbench(db, f"sqlite:///{tmp_path / 'store.db'}", {"f": mapping})
    try:
        definition = {
            "table": "f",
            "keyword": "회원",
            "where": {"field": "score", "op": "eq", "value": 1},
        }
        got = targets_or_error(wb, definition)
        if isinstance(got, list):
            want = oracle(db, "name = '회원' AND score = 1")
            assert sorted(got) == sorted(want) and len(got) == len(set(got)), got
        if case == "bin-distinct":  # one key each, as the server compares: no refusal
            assert isinstance(got, list), got
    finally:
        wb.close()
