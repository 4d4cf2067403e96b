"""What a search no longer does per call (issue 17), and that nothing it answers changed.

- the mapping is read once per search (`Resolver.one_graph`), and a changed mapping file is
  seen by the next search (the searchable fields are worked out again);
- the next-page token is sealed when it is asked for, and is the token paging accepts;
- a Korean mobile number's stored forms are written out without phonenumbers' parser: the
  oracle is phonenumbers itself, on many numbers typed in many ways;
- the Arrow path's columns (built in blocks) are the rows' values column by column.
"""

from __future__ import annotations

import json
import os
import random
import re
from typing import Any

import phonenumbers
import pytest

from hybridwb.mapping.service import MappingService
from hybridwb.search import predicates
from hybridwb.search import service as search_service
from hybridwb.source import arrow


def test_a_search_reads_the_mapping_once(shop, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    shop.search("customers", "김", limit=5)  # schema facts, caches
    loads: list[int] = []
    real = MappingService.load

    def counted(self: MappingService) -> Any:
        loads.append(1)
        return real(self)

    monkeypatch.setattr(MappingService, "load", counted)
    shop.search("customers", "김", limit=5)
    # one for the table's name (resolve), one for the graph every step of the search uses
    assert len(loads) <= 2


def test_a_changed_mapping_is_seen_by_the_next_search(shop) -> None:  # type: ignore[no-untyped-def]
    first = shop.search("customers", "김", limit=5)
    searched = {p.split(":")[0] for p in first.meta["predicates"]}
    assert searched
    path = shop.mappings.path
    data = json.loads(path.read_text(encoding="utf-8"))
    fields = data["customers"]["fields"]
    dropped = next(f for f in searched if f in fields)
    fields[dropped]["searchable"] = False
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    again = shop.search("customers", "김", limit=5)
    assert dropped not in {p.split(":")[0] for p in again.meta["predicates"]}


def test_the_next_page_token_is_sealed_when_asked_for(  # type: ignore[no-untyped-def]
    shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    sealed: list[int] = []
    real = search_service.encode_token

    def counted(*args: Any) -> str:
        sealed.append(1)
        return real(*args)

    monkeypatch.setattr(search_service, "encode_token", counted)
    result = shop.search("customers", "김", limit=2)
    assert len(result) == 2 and sealed == []
    assert "김" not in repr(vars(result))  # the term waits in the slots holder, not in vars
    token = result.next_page
    assert token is not None and result.next_page == token and sealed == [1]
    second = shop.search("customers", "김", limit=2, page=token)
    keys = [r[result.key] for r in result.raw_rows]
    assert all(r[result.key] > keys[-1] for r in second.raw_rows)
    last = shop.search("customers", "김", limit=500)
    assert last.next_page is None


def _phonenumbers_forms(term: str) -> list[str] | None:
    """The forms as phonenumbers gives them (the code before the fast path)."""
    if not re.fullmatch(r"[\d\s\-+().]+", term) or sum(c.isdigit() for c in term) < 8:
        return None
    digits = re.sub(r"\D", "", term)
    if not (digits.startswith(("0", "82")) or term.lstrip().startswith("+")):
        return None
    candidates = [term]
    if digits.startswith("82") and not term.lstrip().startswith("0"):
        candidates.append("+" + digits)
    forms: list[str] = []
    for text in candidates:
        try:
            number = phonenumbers.parse(text, "KR")
        except phonenumbers.NumberParseException:
            continue
        if not phonenumbers.is_possible_number(number):
            continue
        fmt = phonenumbers.PhoneNumberFormat
        national = phonenumbers.format_number(number, fmt.NATIONAL)
        e164 = phonenumbers.format_number(number, fmt.E164)
        intl = phonenumbers.format_number(number, fmt.INTERNATIONAL)
        forms += [national, re.sub(r"\D", "", national), e164, e164[1:], intl]
        break
    return list(dict.fromkeys(forms)) or None


def _typed_numbers(n: int) -> list[str]:
    rng = random.Random(17)
    out = []
    prefixes = ["0", "82", "+82", "+82 ", "082", "+0", "", "0082", "+ 82", "82+", "0+", "+82-"]
    prefixes += ["(82)", "+(82)", "82 ", "+820", "(0", "(+0", "(+82 "]
    for _ in range(n):
        code = rng.choice("0167890123")
        middle = "".join(rng.choice("0123456789") for _ in range(rng.choice([2, 3, 4, 4, 5])))
        last = "".join(rng.choice("0123456789") for _ in range(rng.choice([3, 4, 4, 5])))
        sep = rng.choice(["", "-", " ", ".", ") ", "--"])
        term = f"{rng.choice(prefixes)}1{code}{sep}{middle}{sep}{last}"
        out.append(f" {term} " if rng.random() < 0.1 else term)
    return out


def test_mobile_phone_forms_are_phonenumbers_forms() -> None:
    fast = 0
    for term in _typed_numbers(6000):
        assert predicates.phone_forms(term) == _phonenumbers_forms(term), term
        fast += bool(predicates._MOBILE.fullmatch(re.sub(r"\D", "", term)))
    assert fast > 1000  # the written-out path was taken, not only the parser


@pytest.mark.parametrize("n", [0, 1, 255, 256, 257, 1000])
def test_arrow_columns_are_the_rows_column_by_column(n: int) -> None:
    rows = [(i, f"v{i}", None if i % 7 else b"x") for i in range(n)]
    columns = arrow._columns(rows, 3)
    assert columns == [[r[c] for r in rows] for c in range(3)]


def test_arrow_server_text_that_is_not_utf8_is_a_one_line_error() -> None:
    from hybridwb.errors import QueryError

    described = (("n", 3, 0, 11, 11, 0, 1),)
    with pytest.raises(QueryError, match="Column 1"):
        arrow.frame(["n"], [(b"\xff",), (b"1",)], described)
    df = arrow.frame(["n"], [(b"-5",), (None,), (b"7",)], described)
    assert df["n"].tolist()[0] == -5 and df["n"].tolist()[2] == 7


def test_arrow_server_text_dates_and_zero_dates_parse() -> None:
    import datetime as dt

    described = (("d", 10, 0, 10, 10, 0, 1), ("t", 12, 0, 19, 19, 0, 1))
    rows = [(b"2024-01-02", b"2024-01-02 03:04:05"), (b"0000-00-00", b"0000-00-00 00:00:00")]
    df = arrow.frame(["d", "t"], rows, described)
    assert df["d"].tolist()[0] == dt.date(2024, 1, 2)
    assert df["t"].tolist()[0] == dt.datetime(2024, 1, 2, 3, 4, 5)
    assert df["d"].isna().tolist() == [False, True] and df["t"].isna().tolist() == [False, True]


def test_a_search_looks_at_the_mapping_file_twice_at_most(  # type: ignore[no-untyped-def]
    shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each of the two mapping reads of a search (`resolve`, the graph) costs one `stat` of
    the file: whether it is there, whose it is and whether it changed come from that one."""
    shop.search("customers", "김", limit=5)  # schema facts, caches
    path = str(shop.mappings.path)
    looked: list[str] = []
    real = os.stat

    def counted(target: Any, *args: Any, **kwargs: Any) -> Any:
        if os.fspath(target) == path:
            looked.append(path)
        return real(target, *args, **kwargs)

    monkeypatch.setattr(os, "stat", counted)
    shop.search("customers", "김", limit=5)
    assert 1 <= len(looked) <= 2


def test_the_session_set_is_built_once_per_policy() -> None:
    """Every read sends the session SET: its text is made once per (server, policy), and a
    policy that differs (a lower time limit, another cap) gets its own, exact text."""
    from hybridwb.source.engine import SessionFacts, SessionPolicy, session_sql

    facts = SessionFacts(flavour="MariaDB", read_only_variable="SESSION transaction_read_only")
    policy = SessionPolicy(timeout=30.0, select_limit=101)
    first = session_sql(facts, policy)
    assert session_sql(facts, SessionPolicy(timeout=30.0, select_limit=101)) is first
    lower = session_sql(facts, policy.with_query(2.5, 11))
    assert "max_statement_time = 2.500" in lower and "sql_select_limit = 11" in lower
    assert "max_statement_time = 30.000" in first and "sql_select_limit = 101" in first
    mysql = session_sql(SessionFacts(flavour="MySQL", read_only_variable="x"), policy)
    assert "max_execution_time = 30000" in mysql and mysql.count("x = 1") == 1


def test_what_a_read_asks_of_its_url_is_worked_out_once(  # type: ignore[no-untyped-def]
    shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whether the source is SQLite, and its database's name as the query log shows it
    (scrubbed), are asked several times per read; both are worked out once per url (and set
    of secrets), and again when the url changes."""
    from hybridwb.source import source as source_module

    shop.search("customers", "김", limit=5)
    asked: list[str] = []
    real_kind, real_scrub = source_module.is_sqlite, source_module.scrub

    def kind(url: Any) -> bool:
        asked.append("is_sqlite")
        return real_kind(url)

    def scrub(text: Any, secrets: Any) -> Any:
        asked.append("scrub")
        return real_scrub(text, secrets)

    monkeypatch.setattr(source_module, "is_sqlite", kind)
    monkeypatch.setattr(source_module, "scrub", scrub)
    shop.search("customers", "김", limit=5)
    assert asked == []
    src = shop.source
    sqlite_url = src.url
    src.url = sqlite_url.set(drivername="mysql+pymysql", database="other_db")
    assert src.is_sqlite is False and src._shown_database == "other_db"
    src.url = sqlite_url
    assert src.is_sqlite is True and asked.count("is_sqlite") == 2
