"""Attack round 3 on "a workflow run messages exactly the intended customers, once".

Each `xfail(strict=True)` test is a finding that fails on the current code; the others are
attempts that held, kept as fast guards. Sources are fresh MariaDB databases, stores are
SQLite files or fresh PostgreSQL databases; the oracle is direct SQL on them (sqlite3 /
psycopg / pymysql), never what hybridwb reports about itself.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hybridwb.platform.campaigns import Campaigns
from hybridwb.workflows import policies
from tests.conftest import _admin, ensure_select_only_account
from tests.test_attack_once_round2 import (
    DAY,
    INFO,
    oracle,
    people,
    records,
    run_once,
    skips,
    src,
    workbench,
)

pytestmark = [pytest.mark.mysql, pytest.mark.postgres]
PHONE = "010-1234-5678"


@pytest.fixture
def source() -> Iterator[Callable[..., str]]:
    """`make(*statements, rows={table: [tuple, ...]})` -> a fresh MariaDB database name."""
    made: list[str] = []
    conn = _admin()
    ensure_select_only_account(conn)

    def make(*ddl: str, rows: dict[str, list[tuple[Any, ...]]] | None = None) -> str:
        name = f"hybridwb_a12_{uuid.uuid4().hex[:8]}"
        made.append(name)
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
            cur.execute(f"USE `{name}`")
            for stmt in ddl:
                cur.execute(stmt)
            for table, values in (rows or {}).items():
                marks = ", ".join(["%s"] * len(values[0]))
                cur.executemany(f"INSERT INTO `{table}` VALUES ({marks})", values)
        conn.commit()
        return name

    yield make
    with conn.cursor() as cur:
        for name in made:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    conn.close()


@pytest.fixture
def store(tmp_path: Any) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


def digits(text: str) -> str:
    """The oracle's own reading of a Korean mobile number: its last ten digits."""
    return re.sub(r"\D", "", text)[-10:]


def all_records(store: str) -> list[tuple[str, str, str]]:
    return [
        (str(k), str(r), str(run))
        for k, r, run in oracle(store, "SELECT target_key, recipient, run_id FROM send_records")
    ]


def members(source: Callable[..., str], rows: list[tuple[Any, ...]], mobile: str = "VARCHAR(40)") -> str:
    return source(
        f"CREATE TABLE members (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20), mobile {mobile})",
        rows={"members": rows},
    )


# == findings =====================================================================================
@pytest.mark.xfail(
    strict=True,
    reason="F1: a phone with a note after it ('010-1234-5678 (집)', '… 본인', '… 내선 12') is "
    "normalized to bare digits, not E.164, so the duplicate check misses it: one phone is "
    "messaged twice in one run",
)
@pytest.mark.parametrize("note", [" (집)", " 본인", "(엄마)"])
def test_one_phone_with_a_note_under_two_keys_is_messaged_once(
    source: Callable[..., str], store: str, note: str
) -> None:
    db = members(source, [("m1", "회원1", PHONE), ("m2", "회원2", PHONE + note)])
    wb = workbench(db, store, {"members": {**people(), "audience": True}})
    try:
        wf = wb.workflows.create(
            "note", target_config={"table": "members"}, message_config={"content": INFO}
        )
        run_id = run_once(wb, wf, now=DAY)
    finally:
        wb.close()
    sent = records(store, run_id)
    by_phone = {digits(r) for _, r in sent}
    assert by_phone == {digits(PHONE)}
    assert len(sent) == 1, f"{len(sent)} messages to one phone: {sorted(r for _, r in sent)}"


@pytest.mark.xfail(
    strict=True,
    reason="F2: once_per_recipient misses an earlier send when the recipient's spelling "
    "gained a note ('010-1234-5678 본인'): the history lookup never asks for the E.164 "
    "spelling the first run stored, so the recipient is messaged again",
)
def test_once_per_recipient_holds_when_the_spelling_gains_a_note(
    source: Callable[..., str], store: str
) -> None:
    db = members(source, [("m1", "회원1", PHONE)])
    wb = workbench(db, store, {"members": {**people(), "audience": True}})
    try:
        wf = wb.workflows.create(
            "once",
            target_config={"table": "members"},
            message_config={"content": INFO, "policy": {"once_per_recipient": True}},
        )
        first = run_once(wb, wf, now=DAY)
        conn = _admin()
        with conn.cursor() as cur:
            cur.execute(f"UPDATE `{db}`.members SET mobile = '{PHONE} 본인'")
        conn.commit()
        conn.close()
        second = run_once(wb, wf, now=DAY + timedelta(days=1))
    finally:
        wb.close()
    assert len(records(store, first)) == 1
    assert records(store, second) == [], "messaged again under once_per_recipient"
    assert skips(store, second) == {policies.ONCE: 1}


@pytest.mark.xfail(
    strict=True,
    reason="F3: a phone kept in a DOUBLE column (1012345678, as Excel imports store it) is "
    "read as '1012345678.0' and frozen as +8210123456780, a different number: the customer "
    "is not the one messaged, and the same customer under a text key gets a second message",
)
def test_a_phone_in_a_double_column_is_the_customers_phone(
    source: Callable[..., str], store: str
) -> None:
    db = members(source, [("m1", "회원1", 1012345678), ("m2", "회원2", 1055550002)], "DOUBLE")
    wb = workbench(db, store, {"members": {**people(), "audience": True}})
    try:
        wf = wb.workflows.create(
            "double", target_config={"table": "members"}, message_config={"content": INFO}
        )
        run_id = run_once(wb, wf, now=DAY)
    finally:
        wb.close()
    got = sorted(r for _, r in records(store, run_id))
    want = sorted("+82" + str(int(v)) for (v,) in src(db, "SELECT mobile FROM members"))
    assert got == want


@pytest.mark.xfail(
    strict=True,
    reason="F4: an email written with a display name ('김철수 <kim@example.com>', RFC 5322, "
    "delivered to kim@example.com) is not the same recipient as 'kim@example.com': one "
    "mailbox is messaged twice in one run",
)
def test_one_mailbox_in_two_spellings_is_messaged_once(
    source: Callable[..., str], store: str
) -> None:
    db = source(
        "CREATE TABLE subs (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20), email VARCHAR(80))",
        rows={
            "subs": [
                ("s1", "김철수", "Kim@Example.com"),
                ("s2", "김철수", "김철수 <kim@example.com>"),
            ]
        },
    )
    mapping = {
        "displayName": "구독자",
        "key": "code",
        "recipient": "email",
        "channel": "email",
        "audience": True,
        "fields": {
            "code": {"displayName": "번호", "type": "string", "role": "id"},
            "name": {"displayName": "이름", "type": "string", "role": "name"},
            "email": {"displayName": "이메일", "type": "string", "role": "email"},
        },
    }
    wb = workbench(db, store, {"subs": mapping})
    try:
        wf = wb.workflows.create(
            "mail", target_config={"table": "subs"}, message_config={"content": INFO}
        )
        run_id = run_once(wb, wf, now=DAY)
    finally:
        wb.close()
    sent = records(store, run_id)
    mailboxes = {re.sub(r".*<|>.*", "", r).lower() for _, r in sent}
    assert mailboxes == {"kim@example.com"}
    assert len(sent) == 1, f"{len(sent)} messages to one mailbox"


@pytest.mark.xfail(
    strict=True,
    reason="F5: the duplicate check counts a phone as messaged before the message is "
    "rendered; when the first key's message cannot be rendered (strict mode, empty name) the "
    "second key is excluded as 'duplicate recipient in this run' and the phone gets nothing",
)
def test_a_duplicate_is_not_excluded_for_a_message_that_was_never_written(
    source: Callable[..., str], store: str
) -> None:
    db = members(source, [("m1", None, PHONE), ("m2", "회원2", PHONE)])
    wb = workbench(db, store, {"members": {**people(), "audience": True}})
    try:
        wf = wb.workflows.create(
            "dup-render", target_config={"table": "members"}, message_config={"content": INFO}
        )
        run_id = run_once(wb, wf, now=DAY)
    finally:
        wb.close()
    sent = records(store, run_id)
    reasons = skips(store, run_id)
    assert policies.DUPLICATE not in reasons or sent, (
        f"excluded as a duplicate of a message never written: {reasons}"
    )
    assert [k for k, _ in sent] == ["m2"]


@pytest.mark.xfail(
    strict=True,
    reason="F6: a view row whose key is NULL is frozen under the text 'None', the key of "
    "another row: the run target table keeps one of them and the other ends with neither a "
    "record nor a counted exclusion",
)
def test_a_null_key_and_the_key_none_are_two_targets(
    source: Callable[..., str], store: str
) -> None:
    db = source(
        "CREATE TABLE a (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20))",
        "CREATE TABLE b (code VARCHAR(10), name VARCHAR(20), mobile VARCHAR(20))",
        "CREATE VIEW everyone AS SELECT * FROM a UNION ALL SELECT * FROM b",
        rows={
            "a": [("None", "회원1", "010-2000-0001"), ("k2", "회원2", "010-2000-0002")],
            "b": [(None, "회원3", "010-2000-0003")],
        },
    )
    wb = workbench(db, store, {"everyone": people()})
    try:
        wf = wb.workflows.create(
            "nullkey", target_config={"table": "everyone"}, message_config={"content": INFO}
        )
        run_id = run_once(wb, wf, now=DAY)
    finally:
        wb.close()
    source_rows = src(db, "SELECT count(*) FROM everyone")[0][0]
    done = len(records(store, run_id)) + sum(skips(store, run_id).values())
    frozen = oracle(store, "SELECT target_key FROM run_targets")
    assert done == source_rows == 3, (done, source_rows, sorted(str(k) for (k,) in frozen))
