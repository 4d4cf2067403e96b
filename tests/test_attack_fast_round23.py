# ruff: noqa: F811  (the fixtures imported from round 2 are test parameters here)
"""Attack round 23 on the run's fast paths against "a run messages exactly the intended
customers, once each, at the right number, with exactly the text the template gives for
that customer's row; a run that cannot raises one line (`HybridwbError`), never a raw
Python exception".

Oracles: direct SQL on the store (psycopg / sqlite3), Python's own `decimal` and
`str.format`, and the renderer's `one` called row by row.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from hybridwb.errors import HybridwbError, ValidationError
from hybridwb.templating.formatters import won
from tests.test_attack_once_round2 import (  # noqa: F401  (fixtures: source, pg_store)
    DAY,
    INFO,
    any_store,
    oracle,
    people,
    pg_store,
    records,
    skips,
    source,
    start,
    workbench,
)

# -- the `won` formatter on a text column: a number it cannot show as an amount -------------
#: a price column kept as text (a spreadsheet import): what `Decimal` reads but is no
#: amount (not finite, or more digits than any message holds)
_NOT_AMOUNTS = ["Infinity", "-Infinity", "sNaN", "NaN", "1e5000", "1e9999999", "-1E+99999999"]


def _amount(text: str) -> str:
    """The oracle: `won`'s documented rule by Python's `decimal` alone: a finite number of
    at most 1,000 integral digits as grouped 원 (two decimals when not whole), any other
    text unchanged."""
    try:
        number = Decimal(text.replace(",", "").strip())
    except ArithmeticError:
        return text
    if not number.is_finite() or number.adjusted() >= 1_000:
        return text
    if number == number.to_integral_value():
        return f"{int(number):,}원"
    return f"{number:,.2f}원"


@pytest.mark.parametrize("text", _NOT_AMOUNTS)
def test_won_shows_a_number_that_is_no_amount_as_written_at_once(text: str) -> None:
    started = time.process_time()
    assert won(text) == _amount(text) == text
    assert time.process_time() - started < 0.5  # `1e9999999` built a 10-million-digit int


@pytest.mark.mysql
@pytest.mark.postgres
def test_a_run_with_won_over_a_text_price_column_writes_every_message(
    source: Callable[..., str], pg_store: str
) -> None:
    """Before: the run raised a raw OverflowError / ValueError / InvalidOperation from the
    formatter (or built a 10-million-digit number for minutes) at the first such row."""
    prices = ["12000", "1,500.5", *_NOT_AMOUNTS, "0", "", None]
    db = source(
        "CREATE TABLE members (member_no INT PRIMARY KEY, name VARCHAR(20), "
        "mobile VARCHAR(40), price VARCHAR(40))",
        rows={
            "members": [(i, f"회원{i}", f"010-5555-{i:04d}", p) for i, p in enumerate(prices, 1)]
        },
    )
    mapping = people(
        "number", "member_no", fields={"price": {"displayName": "가격", "type": "string"}}
    )
    wb = workbench(db, pg_store, {"members": {**mapping, "audience": True}})
    try:
        wb.variables.create(
            name="금액", source_type="field", source="members.price", formatter="won"
        )
        wf = wb.workflows.create(
            f"won-{uuid.uuid4().hex[:6]}",
            target_config={"table": "members"},
            message_config={"content": "{{ 이름 }}님 #{금액}", "mode": "strict"},
        )
        run_id = start(wb, wf)
        started = time.process_time()
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=3)
        assert time.process_time() - started < 20
    finally:
        wb.close()
    got = _contents(pg_store, run_id)
    want = {
        str(i): f"회원{i}님 {_amount(p)}" for i, p in enumerate(prices, 1) if p not in (None, "")
    }
    assert got == want
    assert skips(pg_store, run_id) == {"missing 금액": 2}
    assert len(records(pg_store, run_id)) == len(want)


# -- a message text no store can hold (a lone surrogate) ----------------------------------
_SURROGATE = "\ud800 {{ 이름 }}님"


def _contents(store: str, run_id: Any) -> dict[str, str]:
    """Each send record's text by target key, read by psycopg (the oracle)."""
    return {
        str(k): str(c)
        for k, c in oracle(
            store,
            "SELECT target_key, content FROM send_records WHERE run_id = %s",
            (str(run_id),),
        )
    }


def _members(source: Callable[..., str], n: int = 3) -> str:
    return source(
        "CREATE TABLE members (member_no INT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(40))",
        rows={"members": [(i, f"회원{i}", f"010-5555-{i:04d}") for i in range(1, n + 1)]},
    )


def _members_workbench(source: Callable[..., str], store: str, n: int = 3) -> Any:
    """A workbench over `_members(source, n)`, the table mapped as the audience."""
    return workbench(
        _members(source, n),
        store,
        {"members": {**people("number", "member_no"), "audience": True}},
    )


def _info_workflow(wb: Any, prefix: str) -> dict[str, Any]:
    """A new informational workflow over every member."""
    return wb.workflows.create(
        f"{prefix}-{uuid.uuid4().hex[:6]}",
        target_config={"table": "members"},
        message_config={"content": INFO},
    )


@pytest.mark.mysql
@pytest.mark.postgres
def test_a_message_text_with_a_lone_surrogate_is_refused_in_one_line(
    source: Callable[..., str], any_store: str
) -> None:
    """Before: `workflows.create` saved it (a SQLite store holds the JSON escape) and the
    run raised the driver's raw UnicodeEncodeError at its first record, the run left
    'running'. Now create, a template and the run (of a config stored before) refuse it
    in one line, and the run writes nothing."""
    wb = _members_workbench(source, any_store)
    try:
        with pytest.raises(ValidationError, match="lone surrogate"):
            wb.workflows.create(
                f"s-{uuid.uuid4().hex[:6]}",
                target_config={"table": "members"},
                message_config={"content": _SURROGATE},
            )
        with pytest.raises(ValidationError, match="lone surrogate"):
            wb.templates.create("surrogate", _SURROGATE)
        with pytest.raises(ValidationError, match="lone surrogate"):
            wb.workflows.create(
                f"s-{uuid.uuid4().hex[:6]}",
                target_config={"table": "members"},
                message_config={"content": INFO, "advertising": False, "sender": "\udcff"},
            )
        wf = _info_workflow(wb, "s")
        if any_store.startswith("sqlite"):  # a config saved before the check (no driver
            # of PostgreSQL sends the surrogate: only SQLite's JSON text can hold it)
            wb.store.workflows.update(wf["id"], message_config={"content": _SURROGATE})
            run_id = start(wb, wf)
            with pytest.raises(HybridwbError, match="lone surrogate") as raised:
                wb.workflows.process(wf["id"], run_id, progress=False, now=DAY)
            assert "\n" not in str(raised.value)
            assert records(any_store, run_id) == []
    finally:
        wb.close()


@pytest.mark.mysql
@pytest.mark.postgres
def test_a_message_text_with_a_nul_is_refused_in_one_line(
    source: Callable[..., str], any_store: str
) -> None:
    """Before: a SQLite store saved `content` holding a NUL and every run excluded every
    customer as "unreadable value (NUL byte)", a reason about the source's rows; on
    PostgreSQL `create` said `StoreError: unsupported Unicode escape sequence`. Now
    `create` and `templates.create` refuse it by name, and a run of a config stored before
    refuses it in one line and writes nothing."""
    wb = _members_workbench(source, any_store)
    try:
        with pytest.raises(ValidationError, match="NUL"):
            wb.workflows.create(
                f"n-{uuid.uuid4().hex[:6]}",
                target_config={"table": "members"},
                message_config={"content": "안내\x00 {{ 이름 }}"},
            )
        with pytest.raises(ValidationError, match="NUL"):
            wb.templates.create("nul", "안내\x00 {{ 이름 }}")
        wf = _info_workflow(wb, "n")
        if any_store.startswith("sqlite"):
            # stored before the store refused it (round 29): written by direct SQL
            with sqlite3.connect(any_store.removeprefix("sqlite:///")) as conn:
                conn.execute(
                    "UPDATE workflows SET message_config = ? WHERE id = ?",
                    (json.dumps({"content": "안내\x00 {{ 이름 }}"}), uuid.UUID(str(wf["id"])).hex),
                )
            run_id = start(wb, wf)
            with pytest.raises(ValidationError, match="NUL"):
                wb.workflows.process(wf["id"], run_id, progress=False, now=DAY)
            assert records(any_store, run_id) == [] and skips(any_store, run_id) == {}
    finally:
        wb.close()


# -- a resume's batch size -----------------------------------------------------------------
@pytest.mark.mysql
@pytest.mark.postgres
@pytest.mark.parametrize("bad", [0, -1, True, 2.5, "3"])
def test_a_resume_refuses_a_batch_size_the_freeze_would_refuse(
    source: Callable[..., str], pg_store: str, monkeypatch: pytest.MonkeyPatch, bad: Any
) -> None:
    """The first pass checks `batch_size` where it freezes (`targets.iter`); a resume
    skips the freeze. Before: a resume with `batch_size=0` read batches of nothing and
    returned at once, every pending customer left unmessaged and no word said (-1: one
    batch of all; 2.5: the store's error). Now it is refused in one line, nothing
    written, and a good resume completes the frozen set once each."""
    from hybridwb.platform.campaigns import Campaigns

    wb = _members_workbench(source, pg_store, 7)
    original = Campaigns.write_batch
    calls: list[int] = []

    def dying(self: Any, *args: Any, **kw: Any) -> bool:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt("the process dies")
        return original(self, *args, **kw)

    try:
        wf = _info_workflow(wb, "b")
        run_id = start(wb, wf)
        monkeypatch.setattr(Campaigns, "write_batch", dying)
        with pytest.raises(KeyboardInterrupt):
            wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=2)
        monkeypatch.setattr(Campaigns, "write_batch", original)
        assert len(records(pg_store, run_id)) == 2
        with pytest.raises(ValidationError, match="batch_size") as raised:
            wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=bad)
        assert "\n" not in str(raised.value)
        assert len(records(pg_store, run_id)) == 2 and skips(pg_store, run_id) == {}
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=3)
    finally:
        wb.close()
    assert sorted(k for k, _ in records(pg_store, run_id)) == sorted(str(i) for i in range(1, 8))


# -- a run's target limit ------------------------------------------------------------------
@pytest.mark.mysql
@pytest.mark.postgres
@pytest.mark.parametrize("bad", ["3", 2.5, True, -1, float("nan")])
def test_a_run_refuses_a_limit_that_is_no_count_of_targets(
    source: Callable[..., str], pg_store: str, bad: Any
) -> None:
    """Before: `limit="3"` or `2.5` raised a raw TypeError from the freeze's worker; -1
    froze nobody and the run ended with no target and no word. Now it is refused in one
    line before anything is frozen, and `limit=3` freezes and messages the first three."""
    wb = _members_workbench(source, pg_store, 5)
    try:
        wf = _info_workflow(wb, "l")
        run_id = start(wb, wf)
        with pytest.raises(ValidationError, match="limit") as raised:
            wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, limit=bad)
        assert "\n" not in str(raised.value)
        assert oracle(
            pg_store, "SELECT count(*) FROM run_targets WHERE run_id = %s", (str(run_id),)
        ) == [(0,)]
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, limit=3)
    finally:
        wb.close()
    assert sorted(k for k, _ in records(pg_store, run_id)) == ["1", "2", "3"]


@pytest.mark.mysql
@pytest.mark.postgres
@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), "1", True])
def test_a_run_refuses_a_batch_pause_that_is_no_seconds(
    source: Callable[..., str], pg_store: str, bad: Any
) -> None:
    """Before: `batch_pause=-1` (NaN, `"1"`) raised a raw ValueError (TypeError) from
    `time.sleep` after the first batch was handed to the store; now it is refused in one
    line before anything is frozen or written."""
    wb = _members_workbench(source, pg_store, 3)
    try:
        wf = _info_workflow(wb, "p")
        run_id = start(wb, wf)
        with pytest.raises(ValidationError, match="batch_pause") as raised:
            wb.workflows.process(
                wf["id"], run_id, progress=False, now=DAY, batch_size=1, batch_pause=bad
            )
        assert "\n" not in str(raised.value)
        assert oracle(
            pg_store, "SELECT count(*) FROM run_targets WHERE run_id = %s", (str(run_id),)
        ) == [(0,)]
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=1)
    finally:
        wb.close()
    assert sorted(k for k, _ in records(pg_store, run_id)) == ["1", "2", "3"]


# -- a run's texts over MariaDB's value types are the per-row reference's -----------------
_TYPED = (
    "CREATE TABLE members (member_no INT PRIMARY KEY, name VARCHAR(3000), "
    "mobile VARCHAR(40), fee DECIMAL(20,4), ratio DOUBLE, joined DATETIME(6), born DATE, "
    "at_time TIME, flag BIT(1), raw VARBINARY(8), kind ENUM('a','b'), tags SET('x','y'), "
    "yr YEAR, doc JSON)"
)


def _typed_rows() -> list[tuple[Any, ...]]:
    import datetime as dt

    names = [
        "홍길동", "가" * 39, "가" * 40, "가" * 41, "a" * 70, "가" * 985, "가" * 986, "똠방",
        "😀", "e\u0301", "{0}", "{{ x }}", "%s", "\u3164", "", None, "a\x00b", "  ",
        "뽀\u4e00", "\\N", "\t\r\n", "x" * 2990,
    ]  # fmt: skip
    rows = []
    for i, name in enumerate(names, 1):
        rows.append(
            (
                i,
                name,
                # one number spelled three ways every third row: once each
                "010-5555-0001" if i % 3 == 0 else f"010-5555-{i:04d}",
                Decimal("12000.5000") if i % 2 else None,
                [0.1, 1e20, -0.0, 1 / 3][i % 4],
                dt.datetime(2026, 1, 2, 3, 4, 5, i),
                dt.date(2026, 2, i % 28 + 1),
                dt.timedelta(hours=-i, seconds=7),
                i % 2,
                bytes([i, 0, 255]),
                "ab"[i % 2],
                "x,y" if i % 2 else "",
                2000 + i,
                '{"k": [1, "가"]}',
            )
        )
    return rows


_TYPED_TEXT = "#{name}/#{fee}/#{ratio}/#{joined}/#{born}/#{at_time}/#{flag}/#{raw}/#{kind}/#{tags}/#{yr}/#{doc}"


@pytest.mark.mysql
@pytest.mark.postgres
@pytest.mark.parametrize(
    ("batch_size", "mode", "kind"),
    [(1, "strict", "SMS"), (2, "fallback", "LMS"), (7, "fallback", "SMS")],
)
def test_a_runs_texts_over_mariadb_value_types_are_the_per_row_references(
    source: Callable[..., str], pg_store: str, batch_size: int, mode: str, kind: str
) -> None:
    """Every record's text and every exclusion is what `TemplateService.render` gives
    that customer's row alone (the slow path), deciding duplicates in frozen order; the
    size counts are Python's own EUC-KR encode of the written texts (holds)."""
    from hybridwb.templating.message import LIMITS
    from hybridwb.workflows import policies

    rows = _typed_rows()
    db = source(_TYPED, rows={"members": rows})
    extra = {
        c: {"displayName": c, "type": "string"}
        for c in (
            "fee",
            "ratio",
            "joined",
            "born",
            "at_time",
            "flag",
            "raw",
            "kind",
            "tags",
            "yr",
            "doc",
        )
    }
    mapping = {**people("number", "member_no", fields=extra), "audience": True}
    wb = workbench(db, pg_store, {"members": mapping})
    try:
        report = wb.templates.automap(_TYPED_TEXT, "members")
        assert report.completeness == 100
        wf = wb.workflows.create(
            f"t-{uuid.uuid4().hex[:6]}",
            target_config={"table": "members"},
            message_config={"content": _TYPED_TEXT, "mode": mode, "message_type": kind},
        )
        run_id = start(wb, wf)
        stats = wb.workflows.process(
            wf["id"], run_id, progress=False, now=DAY, batch_size=batch_size
        )
        source_rows = wb.source.records("SELECT * FROM members ORDER BY member_no")
        want_records: dict[str, str] = {}
        want_skips: dict[str, str] = {}
        messaged: set[str] = set()
        for row in source_rows:
            key = str(row["member_no"])
            if any(isinstance(v, str) and "\x00" in v for v in row.values()):
                want_skips[key] = policies.BAD_ROW
                continue
            out = wb.templates.render(
                _TYPED_TEXT, row, table="members", mode=mode, message_type=kind, report=report
            )
            phone = policies.normalize("sms", row["mobile"])
            if phone in messaged:  # decided first: only a rendered message messages one
                want_skips[key] = policies.DUPLICATE
            elif out.text is None:
                want_skips[key] = out.skipped or "not rendered"
            else:
                messaged.add(phone)
                want_records[key] = out.text
    finally:
        wb.close()
    got = _contents(pg_store, run_id)
    got_skips = {
        str(k): str(r)
        for k, r in oracle(
            pg_store, "SELECT target_key, reason FROM run_skips WHERE run_id = %s", (str(run_id),)
        )
    }
    assert got == want_records
    assert got_skips == want_skips
    sizes: dict[str, dict[str, int]] = {}
    for text in got.values():
        n = sum(len(ch.encode("euc-kr")) if ch.encode("euc-kr", "ignore") else 2 for ch in text)
        fits = "SMS" if n <= LIMITS["SMS"] else "LMS" if n <= LIMITS["LMS"] else "too long"
        sizes.setdefault(fits, {"count": 0, "bytes": 0})
        sizes[fits]["count"] += 1
        sizes[fits]["bytes"] += n
    assert stats["sizes"] == sizes


# -- a cooldown or cap window longer than the calendar -------------------------------------
@pytest.mark.mysql
@pytest.mark.postgres
def test_a_cooldown_or_cap_window_longer_than_the_calendar_means_since_ever(
    source: Callable[..., str], any_store: str
) -> None:
    """`cooldown_days=1_000_000` ("never again"), a cap over 10^9 days: the window starts
    before any record. Before: the first batch's check raised a raw OverflowError
    (`date value out of range`) computing the window's start. Now the first run messages
    everyone, the second (cooldown) and a third workflow (the cap, 1 message) no one."""
    wb = _members_workbench(source, any_store, 4)
    try:
        runs = []
        for name, policy in [
            ("cool", {"cooldown_days": 1_000_000}),
            ("cool", None),
            ("cap", {"frequency_cap": {"messages": 1, "days": 1e9}}),
        ]:
            wf = (
                wb.workflows.get(runs[0][0]["id"])
                if policy is None
                else wb.workflows.create(
                    f"{name}-{uuid.uuid4().hex[:6]}",
                    target_config={"table": "members"},
                    message_config={"content": INFO, "policy": policy},
                )
            )
            run_id = start(wb, wf)
            wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=3)
            runs.append((wf, run_id))
    finally:
        wb.close()
    from hybridwb.workflows import policies

    assert len(records(any_store, runs[0][1])) == 4
    assert records(any_store, runs[1][1]) == []
    assert skips(any_store, runs[1][1]) == {policies.COOLDOWN: 4}
    assert records(any_store, runs[2][1]) == []
    assert skips(any_store, runs[2][1]) == {policies.CAP: 4}
