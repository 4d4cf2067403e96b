"""Guard verdicts remembered by exact text (hybridwb/source/verdicts.py).

A remembered admission may only ever answer for the very text that was checked: these tests
admit one text, then ask about texts that differ from it by one comment, one space, the case
of one letter in a string literal, an allowlist or a guard rule, and require a fresh decision
(a refusal where the new text is unsafe). The oracle is the guard itself on a fresh cache,
and the cache's own bookkeeping is only read through the `guard.check` calls it makes.
"""

from __future__ import annotations

from typing import Any

import pytest

from hybridwb.errors import QueryError, ReadOnlyViolation
from hybridwb.source import guard, verdicts
from hybridwb.source.binds import find_binds
from hybridwb.source.engine import SessionPolicy, guard_final_text
from hybridwb.source.verdicts import Verdicts

BASE = "SELECT name FROM customers WHERE grade = 'VIP' AND city = 'Seoul'"


class Counting:
    """Counts the parses `guard.check` does (the real function runs)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[object] = []
        real = guard.check

        def counted(sql: object, **kwargs: Any) -> guard.Checked:
            self.calls.append(sql)
            return real(sql, **kwargs)

        monkeypatch.setattr(guard, "check", counted)


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> Counting:
    return Counting(monkeypatch)


def test_an_admitted_text_is_parsed_once(parses: Counting) -> None:
    cache = Verdicts()
    first = cache.check(BASE)
    again = cache.check(BASE)
    assert again is first and first.sql == BASE
    assert parses.calls == [BASE]


@pytest.mark.parametrize(
    "other",
    [
        BASE + " ",
        " " + BASE,
        BASE + " -- note",
        BASE + " /* note */",
        BASE.replace("'VIP'", "'vip'"),
        BASE.replace("'Seoul'", "'SEOUL'"),
        BASE.replace("SELECT", "select"),
        BASE.replace("name", "Name"),
        BASE.replace(" ", "\t", 1),
        BASE.replace(" ", "\u00a0", 1),
        BASE + ";",
    ],
    ids=[
        "trailing-space",
        "leading-space",
        "line-comment",
        "block-comment",
        "literal-case",
        "literal-case-2",
        "keyword-case",
        "name-case",
        "tab",
        "nbsp",
        "semicolon",
    ],
)
def test_a_text_differing_by_one_character_is_checked_again(parses: Counting, other: str) -> None:
    cache = Verdicts()
    cache.check(BASE)
    try:
        checked = cache.check(other)
    except (ReadOnlyViolation, QueryError):
        checked = None  # refused in full (the NBSP), never answered by BASE's verdict
    assert parses.calls == [BASE, other]
    assert checked is None or checked.sql == other


@pytest.mark.parametrize(
    "unsafe",
    [
        BASE + " /*! DELETE FROM customers */",
        BASE + "; DELETE FROM customers",
        BASE + " --x\nAND SLEEP(5)",
        BASE.replace("'VIP'", "GET_LOCK('VIP', 0)"),
        BASE + " INTO OUTFILE '/tmp/x'",
        BASE + " FOR UPDATE",
    ],
    ids=["executable-comment", "second-statement", "dash-comment", "lock", "outfile", "lock-read"],
)
def test_an_unsafe_text_close_to_an_admitted_one_is_refused(unsafe: str) -> None:
    cache = Verdicts()
    cache.check(BASE)
    with pytest.raises(ReadOnlyViolation):
        cache.check(unsafe)


def test_a_refusal_is_never_remembered(parses: Counting) -> None:
    cache = Verdicts()
    refused = "DELETE FROM customers"
    for _ in range(2):
        with pytest.raises(ReadOnlyViolation):
            cache.check(refused)
    assert parses.calls == [refused, refused] and len(cache) == 0


def test_an_allowlisted_admission_does_not_admit_without_the_allowlist() -> None:
    cache = Verdicts()
    text = "SELECT vetted(1) AS x"
    assert cache.check(text, ("vetted",)).sql == text
    with pytest.raises(ReadOnlyViolation, match="not a built-in"):
        cache.check(text, ())


def test_a_changed_guard_rule_is_a_new_decision(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = Verdicts()
    nested = "SELECT ((((1))))"
    cache.check(nested)
    monkeypatch.setattr(guard, "MAX_NESTING", 2)
    with pytest.raises(QueryError, match="nested"):
        cache.check(nested)
    monkeypatch.setattr(guard, "MAX_QUERY_BYTES", 10)
    with pytest.raises(QueryError, match="bytes"):
        cache.check("SELECT 1 AS one_two")


def test_bytes_are_checked_in_full_every_time(parses: Counting) -> None:
    cache = Verdicts()
    assert cache.check(BASE.encode()).sql == BASE
    assert cache.check(BASE.encode()).sql == BASE
    assert len(parses.calls) == 2 and len(cache) == 0


def test_the_cache_is_bounded() -> None:
    cache = Verdicts(maxsize=3)
    for i in range(10):
        cache.check(f"SELECT {i} AS n")
    assert len(cache) == 3


def test_the_default_bound_holds() -> None:
    cache = Verdicts()
    for i in range(verdicts.MAX_VERDICTS + 5):
        cache.admits((str(i),), lambda: True)
    assert len(cache) == verdicts.MAX_VERDICTS == 4096


def test_an_admits_entry_never_answers_a_check(parses: Counting) -> None:
    cache = Verdicts()
    assert cache.admits((BASE, ()), lambda: True)
    checked = cache.check(BASE)
    assert isinstance(checked, guard.Checked) and parses.calls == [BASE]
    with pytest.raises(ReadOnlyViolation):
        cache.check("DELETE FROM customers")
    assert not cache.admits(("DELETE FROM customers", ()), lambda: False)


def test_the_repr_never_shows_a_text() -> None:
    cache = Verdicts()
    cache.check("SELECT name FROM customers WHERE phone = '010-1234-5678'")
    assert repr(cache) == "<Verdicts: 1 of 4096>"
    cache.clear()
    assert len(cache) == 0


def test_admits_keeps_a_yes_and_decides_a_no_again() -> None:
    cache = Verdicts()
    asked: list[str] = []

    def yes() -> bool:
        asked.append("yes")
        return True

    def no() -> bool:
        asked.append("no")
        return False

    assert cache.admits(("a",), yes) and cache.admits(("a",), no)
    assert not cache.admits(("b",), no) and not cache.admits(("b",), no)
    assert asked == ["yes", "no", "no"]


# -- the final text: an approved statement with values in place of its binds -----------------
class Approved:
    """What `Source.prepare` hands the final-text guard (text, checked form, binds)."""

    def __init__(self, sql: str) -> None:
        self.sql = sql
        self.checked = guard.check(sql)
        self.binds = tuple(find_binds(sql, list(self.checked.tokens)))


POLICY = SessionPolicy()
APPROVED = Approved("SELECT name FROM customers WHERE grade = :grade")


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> Verdicts:
    cache = Verdicts()
    monkeypatch.setattr("hybridwb.source.finaltext.VERDICTS", cache)
    return cache


def test_a_final_text_sent_again_is_not_tokenized_again(
    fresh: Verdicts, monkeypatch: pytest.MonkeyPatch
) -> None:
    final = "SELECT name FROM customers WHERE grade = 'VIP'"
    tokenized: list[str] = []
    real = guard._DIALECT.tokenize

    def counted(sql: str) -> Any:
        tokenized.append(sql)
        return real(sql)

    monkeypatch.setattr(guard._DIALECT, "tokenize", counted)
    for _ in range(3):
        guard_final_text(final, POLICY, approved=APPROVED, whole_result=False)
    assert tokenized == [final]
    other = final.replace("'VIP'", "'vip'")
    guard_final_text(other, POLICY, approved=APPROVED, whole_result=False)
    assert tokenized == [final, other]


@pytest.mark.parametrize(
    "final",
    [
        "SELECT name FROM customers WHERE grade = 'VIP' OR SLEEP(5)",
        "SELECT name FROM customers WHERE grade = 'x'; DELETE FROM customers",
        "SELECT name FROM customers WHERE grade = 'x' /*! OR GET_LOCK('a', 0) */",
    ],
    ids=["extra-call", "second-statement", "executable-comment"],
)
def test_a_final_text_that_is_not_values_only_is_refused_after_a_good_one(
    fresh: Verdicts, final: str
) -> None:
    guard_final_text(
        "SELECT name FROM customers WHERE grade = 'VIP'",
        POLICY,
        approved=APPROVED,
        whole_result=False,
    )
    with pytest.raises(ReadOnlyViolation):
        guard_final_text(final, POLICY, approved=APPROVED, whole_result=False)


def test_a_values_verdict_belongs_to_its_approved_statement(fresh: Verdicts) -> None:
    """The same final text judged against another approved statement is judged again."""
    final = "SELECT name FROM customers WHERE grade = 'VIP' AND 1 = 1"
    other = Approved("SELECT name FROM customers WHERE grade = :grade AND 1 = :one")
    guard_final_text(final, POLICY, approved=other, whole_result=False)
    assert fresh.admits(("values of", APPROVED.sql, (), final), lambda: False) is False
    assert fresh.admits(("values of", other.sql, (), final), lambda: False) is True


def test_the_engine_guard_remembers_and_still_refuses_a_large_limit(fresh: Verdicts) -> None:
    small = SessionPolicy(select_limit=11)
    text = "SELECT name FROM customers LIMIT 500"
    guard_final_text("SELECT name FROM customers LIMIT 5", small, whole_result=True)
    for _ in range(2):  # the verdict is remembered; the LIMIT rule is applied every time
        with pytest.raises(ReadOnlyViolation, match="LIMIT above the row cap"):
            guard_final_text(text, small, whole_result=True)
    guard_final_text(text, SessionPolicy(select_limit=1_000), whole_result=True)
    assert len(fresh) == 2


def test_every_source_shares_the_process_verdicts() -> None:
    assert isinstance(verdicts.VERDICTS, Verdicts)
    assert verdicts.VERDICTS.check("SELECT 1 AS shared") is verdicts.VERDICTS.check(
        "SELECT 1 AS shared"
    )
