# ruff: noqa: F811  (the fixtures `source` and `table` are the attack file's, imported)
"""A key the schema does not state unique is paged by `key > last` only when the row after
the page has another key *as the key column's collation compares it*; else a one-line error.

The check compared the two keys in Python with case, accents and trailing spaces dropped,
which misses what collations hold equal beyond that (real MariaDB, limit 1, keys
['s', 'ß', 't'] in utf8mb4_general_ci: page 1 showed 's', the next page began at
`key > 's'` and 'ß' was never shown, no word). The same with 'œ' = 'oe' (unicode_ci),
'æ' = 'ae', 'ø' = 'o', 'ł' = 'l' (unicode_520_ci, uca1400), a soft hyphen or a zero-width
space ignored (uca1400, unicode_ci), 'ü' = 'y' (latin1_swedish_ci). The server now decides,
and so a _bin key that only differs in case ('a', 'A') pages on instead of being refused.
Oracle: direct SQL as root.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import hybridwb
from hybridwb.errors import HybridwbError
from tests.test_attack_once_round2 import people, workbench
from tests.test_attack_search_pages import (  # noqa: F401 (fixtures)
    SEARCHABLE,
    follow,
    once_or_error,
    server_rows,
    source,
    table,
)

pytestmark = pytest.mark.mysql

# collation -> keys of which the first two are equal under it (and not to Python's fold)
EQUAL = {
    "general_ci-sharp-s": ("utf8mb4_general_ci", ["s", "ß", "t"]),
    "general_ci-dotless-i": ("utf8mb4_general_ci", ["i", "ı", "j"]),
    "general_nopad_ci": ("utf8mb4_general_nopad_ci", ["s", "ß", "t"]),
    "unicode_ci-ligature": ("utf8mb4_unicode_ci", ["oe", "œ", "p"]),
    "unicode_ci-ignorable": ("utf8mb4_unicode_ci", ["a", "a\u200b", "b"]),
    "unicode_520_ci-ae": ("utf8mb4_unicode_520_ci", ["ae", "æ", "af"]),
    "unicode_520_ci-stroke": ("utf8mb4_unicode_520_ci", ["l", "ł", "m"]),
    "uca1400_ai_ci-o-slash": ("utf8mb4_uca1400_ai_ci", ["o", "ø", "p"]),
    "uca1400_as_cs-soft-hyphen": ("utf8mb4_uca1400_as_cs", ["a", "a\u00ad", "b"]),
    "latin1_swedish_ci": ("latin1_swedish_ci", ["y", "ü", "z"]),
}


def collation_exists(name: str) -> bool:
    from tests._mysql import root

    conn = root()
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW COLLATION LIKE %s", (name,))
            return bool(cur.fetchall())
    finally:
        conn.close()


def strict(wb: hybridwb.Workbench, db: str, limit: int, **kw: Any) -> list[Any] | str:
    """Every row once (returned), or a one-line error (its message)."""
    try:
        got = follow(wb, limit, **kw)
    except HybridwbError as exc:
        assert "\n" not in str(exc) and "first page" not in str(exc), str(exc)
        return str(exc)
    assert sorted(got) == sorted(server_rows(db)) and len(got) == len(set(got)), got
    return got


@pytest.mark.parametrize("limit", [1, 2])
@pytest.mark.parametrize("case", list(EQUAL))
def test_keys_equal_under_the_collation_are_never_split(
    table: Callable[..., Any], case: str, limit: int
) -> None:
    collation, keys = EQUAL[case]
    if not collation_exists(collation):
        pytest.skip(f"{collation} is not on this server")
    charset = collation.split("_")[0]
    wb, db = table(f"VARCHAR(8) CHARACTER SET {charset} COLLATE {collation}", keys, pk=False)
    assert len(server_rows(db, f"code = '{keys[0]}'")) == 2  # the server holds them equal
    outcome = strict(wb, db, limit)
    if limit == 1:  # the page ends on one of the equal pair: refused, not skipped
        assert isinstance(outcome, str) and "not unique" in outcome, outcome


@pytest.mark.parametrize("limit", [1, 2])
@pytest.mark.parametrize(
    ("collation", "keys"),
    [
        ("utf8mb4_bin", ["A", "a", "b"]),
        ("utf8mb4_nopad_bin", ["a", "a ", "b"]),
        ("utf8mb4_uca1400_as_cs", ["a", "A", "ä"]),
        ("utf8mb4_general_ci", ["ss", "ß", "t"]),
    ],
    ids=["bin-case", "nopad_bin-space", "as_cs-case-accent", "general_ci-ss"],
)
def test_keys_the_collation_tells_apart_page_on(
    table: Callable[..., Any], collation: str, keys: list[str], limit: int
) -> None:
    """Distinct as the server compares them: every row once, no refusal (the fold in
    Python held 'a' = 'A' and refused a _bin key that pages exactly)."""
    if not collation_exists(collation):
        pytest.skip(f"{collation} is not on this server")
    wb, db = table(f"VARCHAR(8) COLLATE {collation}", keys, pk=False)
    outcome = strict(wb, db, limit)
    assert isinstance(outcome, list), outcome


@pytest.mark.parametrize("limit", [1, 2, 3])
@pytest.mark.parametrize(
    "collation", ["utf8mb4_general_ci", "utf8mb4_unicode_520_ci", "utf8mb4_bin"]
)
def test_a_view_keyed_by_a_text_column(
    source: Callable[..., str], tmp_path: Any, collation: str, limit: int
) -> None:
    """A view states no key: its text key is compared under the collation the view's
    column has (that of the column behind it)."""
    codes = ["s", "ß", "æ", "ae", "A", "a", "t"]
    db = source(
        f"CREATE TABLE t (id INT PRIMARY KEY, code VARCHAR(8) COLLATE {collation}, "
        "name VARCHAR(20), mobile VARCHAR(20), KEY (name))",
        "CREATE VIEW f AS SELECT code, name, mobile FROM t",
        rows={"t": [(i, c, "회원", f"010-2000-{i:04d}") for i, c in enumerate(codes)]},
    )
    wb = workbench(db, f"sqlite:///{tmp_path / 'store.db'}", {"f": people(fields=SEARCHABLE)})
    try:
        once_or_error(wb, db, limit, allow_scan=True)
    finally:
        wb.close()


PHONE = {"mobile": {"displayName": "휴대폰", "type": "string", "role": "phone", "searchable": True}}


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_a_phone_prefix_union_keyed_by_such_text(
    source: Callable[..., str], tmp_path: Any, limit: int
) -> None:
    """Several branches UNIONed and joined back by a general_ci key ('ß' = 's')."""
    codes = ["s", "ß", "t", "ı", "i"]
    db = source(
        "CREATE TABLE f (code VARCHAR(8) COLLATE utf8mb4_general_ci, name VARCHAR(20), "
        "mobile VARCHAR(20), KEY (mobile))",
        rows={"f": [(c, "회원", f"010-2000-{i:04d}") for i, c in enumerate(codes)]},
    )
    wb = workbench(db, f"sqlite:///{tmp_path / 'store.db'}", {"f": people(fields=PHONE)})
    try:
        once_or_error(wb, db, limit, "mobile LIKE '010-2000%'", term="010-2000")
    finally:
        wb.close()


MORE = {
    "char-nopad_bin-pk": ("CHAR(5) COLLATE utf8mb4_nopad_bin", ["a", "a b", "b", "a  c"], True),
    "varchar-nopad_bin-pk": ("VARCHAR(5) COLLATE utf8mb4_nopad_bin", ["a", "a ", "a  ", "b"], True),
    "char-general_nopad_ci": ("CHAR(5) COLLATE utf8mb4_general_nopad_ci", ["a", "A", "b"], False),
    "emoji-general_ci": ("VARCHAR(8) COLLATE utf8mb4_general_ci", ["😀", "😁", "a"], False),
    "emoji-unicode_ci": ("VARCHAR(8) COLLATE utf8mb4_unicode_ci", ["😀", "😁", "a"], False),
    "hangul-jamo-uca1400": ("VARCHAR(8) COLLATE utf8mb4_uca1400_ai_ci", ["가", "가", "나"], False),
    "uca1400-pk": ("VARCHAR(8) COLLATE utf8mb4_uca1400_ai_ci", ["a", "ä", "b", "ß"], False),
}


@pytest.mark.parametrize("limit", [1, 2])
@pytest.mark.parametrize("case", list(MORE))
def test_more_text_keys_page_once_or_refuse(
    table: Callable[..., Any], case: str, limit: int
) -> None:
    """Attack: padding, supplementary characters (general_ci holds all of them equal),
    decomposed Hangul; every row once, or a one-line error."""
    sql_type, keys, pk = MORE[case]
    collation = sql_type.rsplit(" ", 1)[-1]
    if not collation_exists(collation):
        pytest.skip(f"{collation} is not on this server")
    wb, db = table(sql_type, keys, pk=pk)
    outcome = strict(wb, db, limit)
    if pk:
        assert isinstance(outcome, list), outcome


@pytest.mark.parametrize("size", [1, 2])
@pytest.mark.parametrize("case", [*EQUAL, *MORE])
def test_targets_of_such_keys_once_or_refuse(
    table: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, case: str, size: int
) -> None:
    """Table targets (`key > last` plus the keys the collation ties to the last) and keyword
    targets (search pages, then `key IN`) over the same keys: every row once, or one line."""
    from hybridwb.targets import service as targets

    monkeypatch.setattr(targets, "KEYWORD_PAGE", size)
    if case in EQUAL:
        collation, keys = EQUAL[case]
        sql_type = f"VARCHAR(8) CHARACTER SET {collation.split('_')[0]} COLLATE {collation}"
        pk = False
    else:
        sql_type, keys, pk = MORE[case]
        collation = sql_type.rsplit(" ", 1)[-1]
    if not collation_exists(collation):
        pytest.skip(f"{collation} is not on this server")
    wb, db = table(sql_type, keys, pk=pk)
    for definition in ({"table": "f"}, {"table": "f", "keyword": "회원"}):
        try:
            got = [r["mobile"] for b in wb.targets.iter(definition, size) for r in b]
        except HybridwbError as exc:
            assert "\n" not in str(exc) and "first page" not in str(exc), str(exc)
            continue
        assert sorted(got) == sorted(server_rows(db)) and len(got) == len(set(got)), got
