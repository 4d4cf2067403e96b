"""Failure-mode findings against the "exactly the intended recipients, once" guarantee.

Each test fails on the current code; the oracle is direct SQL (pymysql on the MariaDB
source, psycopg / sqlite3 on the store), never what hybridwb reports about itself.

Note: on the committed code F4 (two migration heads) stops every store from opening, so
F1-F3 currently error with that RuntimeError first; with 0004's down_revision set to
"0003" (locally, not committed) each of F1-F3 fails on its own oracle assertion.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import URL

import hybridwb
from tests._stores import fresh_pg_database
from tests.conftest import _admin
from tests.test_campaign_runs import HYBRIDWB, MEMBERS, my, pg, source_url

pytestmark = [pytest.mark.mysql, pytest.mark.postgres]
AD = "(광고) 하이브리드몰\n{{ 이름 }}님, 봄 세일 20% 할인!\n무료수신거부 080-123-4567"
NIGHT = "2026-03-02T23:00:00+09:00"
DAY = "2026-03-03T09:30:00+09:00"


def _members(rows: list[tuple]) -> Iterator[str]:
    name = f"hybridwb_atk2_{uuid.uuid4().hex[:8]}"
    conn = _admin()
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        cur.execute(f"USE `{name}`")
        cur.execute(
            "CREATE TABLE members (member_no INT PRIMARY KEY, full_name VARCHAR(40) NOT NULL, "
            "mobile VARCHAR(30), ad_ok TINYINT NOT NULL, night_ok TINYINT NOT NULL, "
            "tier CHAR(1) NOT NULL)"
        )
        cur.executemany("INSERT INTO members VALUES (%s, %s, %s, %s, %s, %s)", rows)
    conn.commit()
    try:
        yield name
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


@pytest.fixture
def src_db() -> Iterator[str]:
    yield from _members(
        [
            (1, "회원1", "010-5555-0001", 1, 1, "A"),
            (2, "회원2", "+82 (0)10-5555-0001", 1, 1, "A"),  # the same phone as 1
            (3, "회원3", "0082-10-5555-0001", 1, 1, "A"),  # the same phone as 1
            (4, "회원4", "010-5555-0004", 1, 0, "A"),  # no night consent
            (5, "회원5", "010-5555-0005", 1, 1, "A"),
        ]
    )


@pytest.fixture
def pg_store() -> Iterator[URL]:
    yield from fresh_pg_database("hybridwb_atk2", migrated=True)


def _wb(src_db: str, store: str, monkeypatch: pytest.MonkeyPatch) -> hybridwb.Workbench:
    monkeypatch.setenv("HYBRIDWB_SOURCE_URL", source_url(src_db))
    monkeypatch.setenv("HYBRIDWB_STORE_URL", store)
    wb = hybridwb.connect()
    wb.store.init()
    wb.mappings.save("members", MEMBERS)
    wb.templates.create("안내", "{{ 이름 }}님, 이번 달 안내입니다.")
    return wb


@pytest.fixture
def crm(
    src_db: str, pg_store: URL, monkeypatch: pytest.MonkeyPatch
) -> Iterator[hybridwb.Workbench]:
    wb = _wb(src_db, pg_store.render_as_string(hide_password=False), monkeypatch)
    yield wb
    wb.close()


def phone_digits(phone: str) -> str:
    """The oracle's own reading of a Korean mobile number: national digits."""
    d = re.sub(r"\D", "", phone)
    if d.startswith("00"):  # international dialling prefix
        d = d[2:]
    if d.startswith("82"):
        d = d[2:]
        if not d.startswith("0"):
            d = "0" + d
    return d


ALL = {"table": "members", "where": {"field": "tier", "op": "eq", "value": "A"}}


# -- F1 -----------------------------------------------------------------------------------------
def test_one_phone_in_three_spellings_is_messaged_once(crm, src_db: str, pg_store: URL) -> None:  # type: ignore[no-untyped-def]
    """010-5555-0001, +82 (0)10-5555-0001 and 0082-10-5555-0001 are one phone; a run with
    `once_per_recipient` must send it one message. policies.normalize() keeps the trunk 0 of
    '+82 (0)10…' (-> 001055550001) and the 00 prefix of '0082…' (-> 0082105…)."""
    wf = crm.workflows.create(
        "spellings",
        target_config=ALL,
        message_config={"template": "안내", "policy": {"once_per_recipient": True}},
    )
    final = crm.workflows.run(wf["id"], progress=False)
    rows = pg(
        pg_store,
        "SELECT target_key FROM send_records WHERE run_id = %s",
        (str(final["id"]),),
    )
    source = dict(my(src_db, "SELECT member_no, mobile FROM members"))
    phones = [phone_digits(source[int(k)]) for (k,) in rows]
    assert len(phones) == len(set(phones)), (
        f"one phone got {len(phones) - len(set(phones)) + 1} messages: {sorted(phones)}"
    )


# -- F2 -----------------------------------------------------------------------------------------
def test_a_target_whose_recipient_changed_before_the_resume_is_messaged_at_neither_address(
    crm, src_db: str, pg_store: URL
) -> None:  # type: ignore[no-untyped-def]
    """The first pass freezes (key, recipient). A target left waiting at night whose phone
    is changed in the source before the 08:00 resume once got its message at the NEW phone,
    an address that was never in the frozen set. Neither address is sure to be the
    customer's any more (a number given up may be someone else's by morning), so the target
    is excluded with a counted reason and nobody is messaged."""
    crm.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
    wf = crm.workflows.create(
        "frozen-recipient",
        target_config={**ALL, "exclude_opt_out": False},
        message_config={"template": "세일", "quiet_hours": "wait"},
    )
    night = subprocess.run(
        [HYBRIDWB, "run", wf["name"], "--now", NIGHT], capture_output=True, text=True, timeout=180
    )
    (run_id,) = pg(
        pg_store, "SELECT id FROM workflow_runs WHERE workflow_id = %s", (str(wf["id"]),)
    )[0]
    assert "waiting" in night.stdout, night.stdout + night.stderr
    conn = _admin()
    with conn.cursor() as cur:
        cur.execute(f"UPDATE `{src_db}`.members SET mobile = '010-9999-0004' WHERE member_no = 4")
    conn.commit()
    conn.close()
    subprocess.run(
        [HYBRIDWB, "run", "--resume", str(run_id), "--now", DAY],
        capture_output=True,
        text=True,
        timeout=180,
    )
    off = pg(
        pg_store,
        "SELECT r.target_key, r.recipient, t.recipient FROM send_records r JOIN run_targets t "
        "ON t.run_id = r.run_id AND t.target_key = r.target_key "
        "WHERE r.run_id = %s AND r.recipient IS DISTINCT FROM t.recipient",
        (str(run_id),),
    )
    assert off == [], f"records sent to an address that is not the frozen one: {off}"
    # the old number may already be someone else's and the new one was never frozen: member 4
    # gets no message at all, and the exclusion says why
    sent_4 = pg(
        pg_store,
        "SELECT recipient FROM send_records WHERE run_id = %s AND target_key = '4'",
        (str(run_id),),
    )
    assert sent_4 == [], f"member 4 was messaged after its phone changed: {len(sent_4)}"
    why = pg(
        pg_store,
        "SELECT reason FROM run_skips WHERE run_id = %s AND target_key = '4'",
        (str(run_id),),
    )
    assert why == [("recipient changed since the run started",)], why


# -- F3 -----------------------------------------------------------------------------------------
def test_frequency_cap_with_now_in_seoul_time_on_the_sqlite_store(
    src_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Default SQLite store, `--now` given with +09:00 (the CLI's own example). A message
    sent 20 hours ago is inside a 1-day frequency cap, yet the run sends again: SQLite hands
    back naive UTC created_at, which policies._aware() labels +09:00, and the SQL window
    `created_at >= since` compares Seoul wall time with UTC wall time (9 hours off)."""
    store = f"sqlite:///{tmp_path / 'store.db'}"
    wb = _wb(src_db, store, monkeypatch)
    first = wb.workflows.create("first", target_config=ALL, message_config={"template": "안내"})
    done = wb.workflows.run(first["id"], progress=False)
    wb.close()
    with sqlite3.connect(tmp_path / "store.db") as oracle:
        assert oracle.execute("SELECT count(*) FROM send_records").fetchone()[0] > 0, done
        twenty_h_ago = (datetime.now(UTC) - timedelta(hours=20)).strftime("%Y-%m-%d %H:%M:%S.%f")
        oracle.execute("UPDATE send_records SET created_at = ?", (twenty_h_ago,))
    second = hybridwb.connect()
    capped = second.workflows.create(
        "capped",
        target_config=ALL,
        message_config={
            "template": "안내",
            "policy": {"frequency_cap": {"messages": 1, "days": 1}},
        },
    )
    second.close()
    now_seoul = datetime.now(ZoneInfo("Asia/Seoul")).isoformat()
    out = subprocess.run(
        [HYBRIDWB, "run", "capped", "--now", now_seoul], capture_output=True, text=True, timeout=180
    )
    with sqlite3.connect(tmp_path / "store.db") as oracle:
        again = oracle.execute(
            "SELECT count(*) FROM send_records r JOIN workflows w ON w.id = r.workflow_id "
            "WHERE w.name = 'capped'"
        ).fetchone()[0]
    assert again == 0, (
        f"{again} recipients messaged twice within a 1-day cap\n{out.stdout}{out.stderr}"
    )
    assert capped


# -- F4 -----------------------------------------------------------------------------------------
def test_the_store_migrations_have_one_head(tmp_path: Path) -> None:
    """The merge left 0004_campaigns with down_revision '0002' beside 0003 (also on 0002):
    two heads, so migrate.head_revision() raises and no store opens (no `init`, `run`,
    `--resume`, `doctor`: a pending final status can never be written either)."""
    versions = Path(hybridwb.__file__).parent / "platform" / "migrations" / "versions"
    down = {}
    for path in versions.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        rev = re.search(r'^revision = "(\w+)"', text, re.M)
        parent = re.search(r'^down_revision = (?:"(\w+)"|None)', text, re.M)
        if rev:
            down[rev.group(1)] = parent.group(1) if parent else None
    heads = set(down) - set(down.values())
    assert len(heads) == 1, f"migration heads: {sorted(heads)}"
    store = tmp_path / "s.db"
    wb = hybridwb.connect(store=f"sqlite:///{store}")
    wb.store.init()
    wb.close()
    with sqlite3.connect(store) as oracle:
        tables = {r[0] for r in oracle.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"run_targets", "run_skips", "run_locks", "send_records"} <= tables
