"""Attack round 2 on "messages exactly the intended customers, once, and lawfully" (#12).

Each test is an attack by a careless user or an odd schema on real MariaDB, PostgreSQL and
SQLite; the oracle is direct SQL (pymysql on the source, psycopg / sqlite3 on the store),
never what hybridwb reports about itself. Runs are driven in-process (`wb.workflows.process`,
the notebook's own call) so the clock can be injected and two runs can race.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

import hybridwb
from hybridwb.errors import ValidationError
from hybridwb.platform.campaigns import Campaigns
from hybridwb.workflows import policies
from tests._stores import fresh_pg_database, migrated_sqlite
from tests._stores import store_sql as oracle
from tests.conftest import _admin, mariadb_maker, sel_url

pytestmark = [pytest.mark.mysql, pytest.mark.postgres]
SEOUL = ZoneInfo("Asia/Seoul")
DAY = datetime(2026, 3, 3, 10, 0, tzinfo=SEOUL)
NIGHT = datetime(2026, 3, 2, 23, 0, tzinfo=SEOUL)
AD = "(광고) 하이브리드몰\n{{ 이름 }}님, 봄 세일 20% 할인!\n무료수신거부 080-123-4567"
INFO = "{{ 이름 }}님, 이번 달 안내입니다."


# -- fixtures: a MariaDB source per test, a PostgreSQL or SQLite store per test -----------------
@pytest.fixture
def source() -> Iterator[Callable[..., str]]:
    """`make(*statements, rows={table: [tuple, ...]})` -> a fresh MariaDB database name."""
    yield from mariadb_maker("hybridwb_r2")


@pytest.fixture
def pg_store() -> Iterator[str]:
    for url in fresh_pg_database("hybridwb_r2", migrated=True):
        yield url.render_as_string(hide_password=False)


@pytest.fixture(params=["postgres", "sqlite"])
def any_store(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    if request.param == "sqlite":
        yield migrated_sqlite(tmp_path / "store.db").render_as_string()
    else:
        yield request.getfixturevalue("pg_store")


def src(db: str, sql: str) -> list[tuple[Any, ...]]:
    """Direct SQL on the MariaDB source as root."""
    conn = _admin()
    try:
        with conn.cursor() as cur:
            cur.execute(f"USE `{db}`")
            cur.execute(sql)
            return list(cur.fetchall())
    finally:
        conn.close()


def source_url(db: str) -> str:
    return sel_url(db).render_as_string(hide_password=False)


def workbench(db: str, store: str, mappings: dict[str, dict[str, Any]]) -> hybridwb.Workbench:
    wb = hybridwb.connect(source=source_url(db), store=store)
    wb.store.init()
    for table, mapping in mappings.items():
        wb.mappings.save(table, mapping)
    return wb


def start(wb: hybridwb.Workbench, wf: dict[str, Any]) -> Any:
    run = wb.store.runs.create(wf["id"], {})
    Campaigns(wb.store.backend).start_state(run["id"], "test:1", "manual")
    return run["id"]


def run_once(wb: hybridwb.Workbench, wf: dict[str, Any], **kw: Any) -> Any:
    run_id = start(wb, wf)
    wb.workflows.process(wf["id"], run_id, progress=False, **kw)
    return run_id


def records(store: str, run_id: Any) -> list[tuple[str, str]]:
    return [
        (str(k), str(r))
        for k, r in oracle(
            store,
            "SELECT target_key, recipient FROM send_records WHERE CAST(run_id AS TEXT) IN (%s, %s)",
            (str(run_id), uuid.UUID(str(run_id)).hex),
        )
    ]


def skips(store: str, run_id: Any) -> dict[str, int]:
    rows = oracle(
        store,
        "SELECT reason, count(*) FROM run_skips WHERE CAST(run_id AS TEXT) IN (%s, %s) "
        "GROUP BY reason",
        (str(run_id), uuid.UUID(str(run_id)).hex),
    )
    return {str(r): int(n) for r, n in rows}


def frozen(store: str, run_id: Any) -> int:
    return int(
        oracle(
            store,
            "SELECT count(*) FROM run_targets WHERE CAST(run_id AS TEXT) IN (%s, %s)",
            (str(run_id), uuid.UUID(str(run_id)).hex),
        )[0][0]
    )


def people(key_type: str = "string", key: str = "code", **extra: Any) -> dict[str, Any]:
    fields = {
        key: {"displayName": "번호", "type": key_type, "role": "id"},
        "name": {"displayName": "이름", "type": "string", "role": "name"},
        "mobile": {"displayName": "휴대폰", "type": "string", "role": "phone"},
    }
    fields.update(extra.pop("fields", {}))
    return {
        "displayName": "회원",
        "key": key,
        "recipient": "mobile",
        "channel": "sms",
        "fields": fields,
        **extra,
    }


def phone(i: int) -> str:
    return f"010-{2000 + i:04d}-{i:04d}"


# -- 1. an opt-out column is never marketing consent ---------------------------------------------
OPT_OUTS = ["sms_opt_out", "unsubscribed", "수신거부", "ad_reject_yn", "marketing_refused"]


def test_an_opt_out_column_is_never_suggested_or_saved_as_consent(
    source: Callable[..., str], pg_store: str
) -> None:
    cols = ", ".join(f"`{c}` TINYINT(1) NOT NULL" for c in OPT_OUTS)
    db = source(
        "CREATE TABLE members (member_no INT PRIMARY KEY, name VARCHAR(20), "
        f"mobile VARCHAR(20), {cols}, "
        "`sms_agree` TINYINT(1) NOT NULL COMMENT 'SMS 수신 동의')",
        "ALTER TABLE members MODIFY `unsubscribed` TINYINT(1) NOT NULL COMMENT '광고 수신 동의 철회'",
        rows={"members": [(i, f"회원{i}", phone(i), 0, 0, 1, 0, 0, 1) for i in range(1, 6)]},
    )
    wb = workbench(db, pg_store, {})
    try:
        suggested = wb.mappings.suggest("members")
        roles = {n: f.role for n, f in suggested.fields.items()}
        wrong = {c: roles.get(c) for c in OPT_OUTS if roles.get(c) in ("consent", "night_consent")}
        assert wrong == {}, f"opt-out columns suggested as consent: {wrong}"
        assert suggested.consent in (None, "sms_agree"), suggested.consent
        mapping = people(
            "number",
            "member_no",
            fields={"sms_opt_out": {"displayName": "거부", "type": "boolean"}},
        )
        with pytest.raises(ValidationError, match="opt-out"):
            wb.mappings.save("members", {**mapping, "audience": True, "consent": "sms_opt_out"})
        role_only = {"displayName": "거부", "type": "boolean", "role": "consent"}
        with pytest.raises(ValidationError, match="opt-out"):
            wb.mappings.save(
                "members", people("number", "member_no", fields={"수신거부": role_only})
            )
    finally:
        wb.close()


# -- 2. case-insensitive text keys: every target exactly once --------------------------------
def _mixed_case_keys(n: int) -> list[str]:
    out = []
    for i in range(n):
        letter = "abcdefghijklmnopqrstuvwxyz"[i % 26]
        out.append((letter.upper() if i % 2 else letter) + f"{i // 26:02d}")
    return [*out, "가01", "나02", "Zz", "aA"]


def test_mixed_case_text_keys_are_each_messaged_once(
    source: Callable[..., str], pg_store: str
) -> None:
    """A VARCHAR primary key in MariaDB's default case-insensitive collation: the server
    orders 'a00' < 'B00' < 'c00', Python orders 'B00' < 'a00'. A batch fetched by the range
    min()..max() of Python's order reads nothing and every target is 'gone from source'."""
    keys = _mixed_case_keys(60)
    db = source(
        "CREATE TABLE codes (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20))",
        rows={"codes": [(k, f"회원{i}", phone(i)) for i, k in enumerate(keys)]},
    )
    wb = workbench(db, pg_store, {"codes": {**people(), "audience": True}})
    try:
        wf = wb.workflows.create(
            "ci", target_config={"table": "codes"}, message_config={"content": INFO}
        )
        run_id = run_once(wb, wf, batch_size=7, now=DAY)
    finally:
        wb.close()
    sent = [k for k, _ in records(pg_store, run_id)]
    source_keys = sorted(r[0] for r in src(db, "SELECT code FROM codes"))
    assert sorted(sent) == source_keys, skips(pg_store, run_id)


def test_view_keys_equal_under_the_collation_are_each_messaged_once(
    source: Callable[..., str], pg_store: str
) -> None:
    """A view (no primary key) whose keys differ only in case ('k01' and 'K01') or by a
    trailing space: `key > 'k01'` skips 'K01' at a page boundary."""
    low = [(f"k{i:02d}", f"회원{i}", phone(i)) for i in range(20)]
    up = [(f"K{i:02d}", f"회원{i}", phone(100 + i)) for i in range(20)]
    pad = [("k05 ", "회원x", phone(300))]
    db = source(
        "CREATE TABLE a (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20))",
        "CREATE TABLE b (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20))",
        "CREATE TABLE c (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20))",
        "CREATE VIEW everyone AS SELECT * FROM a UNION ALL SELECT * FROM b "
        "UNION ALL SELECT * FROM c",
        rows={"a": low, "b": up, "c": pad},
    )
    wb = workbench(db, pg_store, {"everyone": people()})
    try:
        wf = wb.workflows.create(
            "view", target_config={"table": "everyone"}, message_config={"content": INFO}
        )
        run_id = run_once(wb, wf, batch_size=3, now=DAY)
    finally:
        wb.close()
    sent = [k for k, _ in records(pg_store, run_id)]
    distinct = src(db, "SELECT count(DISTINCT CAST(code AS BINARY)) FROM everyone")[0][0]
    assert len(sent) == len(set(sent)) == distinct, (len(sent), len(set(sent)), distinct)


def test_a_key_repeated_across_a_page_boundary_fails_instead_of_losing_a_row(
    source: Callable[..., str], pg_store: str
) -> None:
    """A view whose 'key' repeats: a repeat split by a page boundary was silently dropped
    (only a repeat inside one page was noticed)."""
    rows = [(f"k{i:02d}", f"회원{i}", phone(i)) for i in range(12)]
    db = source(
        "CREATE TABLE a (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20))",
        "CREATE TABLE b (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20))",
        "CREATE VIEW twice AS SELECT * FROM a UNION ALL SELECT * FROM b",
        rows={"a": rows, "b": [("k02", "다른사람", phone(99))]},
    )
    wb = workbench(db, pg_store, {"twice": people()})
    try:
        wf = wb.workflows.create(
            "dup", target_config={"table": "twice"}, message_config={"content": INFO}
        )
        with pytest.raises(ValidationError, match="repeats"):
            run_once(wb, wf, batch_size=3, now=DAY)
    finally:
        wb.close()
    assert oracle(pg_store, "SELECT count(*) FROM send_records")[0][0] == 0


# -- 3. the global frequency cap holds across two concurrent workflows -------------------------
def test_frequency_cap_holds_across_two_concurrent_workflows(
    source: Callable[..., str], any_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = source(
        "CREATE TABLE members (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20))",
        rows={"members": [(f"m{i:03d}", f"회원{i}", phone(i)) for i in range(30)]},
    )
    wb = workbench(db, any_store, {"members": {**people(), "audience": True}})
    policy = {"frequency_cap": {"messages": 1, "days": 7}}
    wfs = [
        wb.workflows.create(
            name,
            target_config={"table": "members"},
            message_config={"content": INFO, "policy": policy},
        )
        for name in ("first", "second")
    ]
    runs = [start(wb, wf) for wf in wfs]
    wb.close()
    real_seen = Campaigns.seen

    def slow_seen(self: Campaigns, *a: Any, **kw: Any) -> Any:
        out = real_seen(self, *a, **kw)
        time.sleep(0.3)  # widen the window between the cap check and the insert
        return out

    monkeypatch.setattr(Campaigns, "seen", slow_seen)
    errors: list[BaseException] = []
    gate = threading.Barrier(2)

    def go(wf: dict[str, Any], run_id: Any) -> None:
        w = hybridwb.connect(source=source_url(db), store=any_store)
        try:
            gate.wait()
            w.workflows.process(wf["id"], run_id, progress=False, batch_size=10, now=DAY)
        except BaseException as exc:
            errors.append(exc)
        finally:
            w.close()

    threads = [threading.Thread(target=go, args=(wf, r)) for wf, r in zip(wfs, runs, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    twice = oracle(
        any_store,
        "SELECT recipient, count(*) FROM send_records GROUP BY recipient HAVING count(*) > 1",
    )
    assert twice == [], f"{len(twice)} recipients over a 1-message cap"
    assert oracle(any_store, "SELECT count(*) FROM send_records")[0][0] == 30


# -- 4. quiet hours: the clock is read per batch ------------------------------------------------
def _consenting(source: Callable[..., str], n: int, night: int = 0) -> str:
    return source(
        "CREATE TABLE members (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20), "
        "mobile VARCHAR(20), ad_ok TINYINT(1) NOT NULL, night_ok TINYINT(1) NOT NULL, "
        "joined DATETIME NOT NULL)",
        rows={
            "members": [
                (f"m{i:03d}", f"회원{i}", phone(i), 1, night, datetime(2026, 3, 2, 20, 0))
                for i in range(n)
            ]
        },
    )


CONSENTING = {
    **people(),
    "audience": True,
    "consent": "ad_ok",
    "nightConsent": "night_ok",
    "fields": {
        **people()["fields"],
        "ad_ok": {"displayName": "광고동의", "type": "boolean", "role": "consent"},
        "night_ok": {"displayName": "야간동의", "type": "boolean", "role": "night_consent"},
        "joined": {"displayName": "가입일", "type": "datetime"},
    },
}


def test_quiet_hours_start_in_the_middle_of_a_run(
    source: Callable[..., str], pg_store: str
) -> None:
    """The run starts at 20:59 KST and crosses 21:00 after its first batch; recipients
    without night consent must not be messaged after 21:00."""
    db = _consenting(source, 30)
    wb = workbench(db, pg_store, {"members": CONSENTING})
    calls = {"n": 0}

    def clock() -> datetime:
        calls["n"] += 1
        start_at = datetime(2026, 3, 2, 20, 59, 10, tzinfo=SEOUL)
        # the run's start, then one read per batch: 21:00 from the 2nd batch on
        return start_at + timedelta(seconds=20 * calls["n"])

    try:
        wb.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
        wf = wb.workflows.create(
            "crossing",
            target_config={"table": "members"},
            message_config={"template": "세일", "quiet_hours": "wait"},
        )
        run_id = run_once(wb, wf, batch_size=5, clock=clock)
    finally:
        wb.close()
    sent = len(records(pg_store, run_id))
    assert 0 < sent <= 5, f"{sent} advertising messages, most after 21:00 KST"


# -- 5. resume: the frozen as_of, and the audience it was frozen for ----------------------------
def test_resume_uses_the_frozen_as_of(source: Callable[..., str], pg_store: str) -> None:
    """'Joined within the last day' frozen at 23:00; the resume at 10:00 two days later
    must complete that set, not re-judge it by its own clock (everyone 'gone')."""
    db = _consenting(source, 10)
    wb = workbench(db, pg_store, {"members": CONSENTING})
    try:
        wb.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
        wf = wb.workflows.create(
            "recent",
            target_config={
                "table": "members",
                "where": {"field": "joined", "op": "within_last", "value": {"days": 1}},
            },
            message_config={"template": "세일", "quiet_hours": "wait"},
        )
        run_id = run_once(wb, wf, now=NIGHT)
        assert len(records(pg_store, run_id)) == 0  # everyone waits for 08:00
        wb.workflows.process(
            wf["id"], run_id, progress=False, now=NIGHT + timedelta(days=1, hours=11)
        )
    finally:
        wb.close()
    assert len(records(pg_store, run_id)) == frozen(pg_store, run_id) == 10, skips(pg_store, run_id)


def test_resume_after_the_audience_key_changed_is_refused(
    source: Callable[..., str], pg_store: str
) -> None:
    db = source(
        "CREATE TABLE members (code VARCHAR(10) PRIMARY KEY, member_no INT NOT NULL UNIQUE, "
        "name VARCHAR(20), mobile VARCHAR(20), ad_ok TINYINT(1) NOT NULL, "
        "night_ok TINYINT(1) NOT NULL)",
        rows={"members": [(f"m{i:03d}", 1000 - i, f"회원{i}", phone(i), 1, 0) for i in range(8)]},
    )
    by_code = {
        **CONSENTING,
        "fields": {
            **{k: v for k, v in CONSENTING["fields"].items() if k != "joined"},
            "member_no": {"displayName": "회원번호", "type": "number"},
        },
    }
    wb = workbench(db, pg_store, {"members": by_code})
    try:
        wb.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
        wf = wb.workflows.create(
            "rekeyed",
            target_config={"table": "members"},
            message_config={"template": "세일", "quiet_hours": "wait"},
        )
        run_id = run_once(wb, wf, now=NIGHT)
        wb.mappings.save("members", {**by_code, "key": "member_no"})
        with pytest.raises(ValidationError, match="froze"):
            wb.workflows.process(wf["id"], run_id, progress=False, now=DAY)
    finally:
        wb.close()
    assert records(pg_store, run_id) == []


# -- 6. (광고) in the text makes a message advertising ------------------------------------------
def test_text_with_the_ad_marker_is_advertising_even_unflagged(
    source: Callable[..., str], pg_store: str
) -> None:
    db = source(
        "CREATE TABLE members (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20), "
        "mobile VARCHAR(20), ad_ok TINYINT(1) NOT NULL, night_ok TINYINT(1) NOT NULL, "
        "joined DATETIME NOT NULL)",
        rows={
            "members": [
                (f"m{i:03d}", f"회원{i}", phone(i), i % 2, 1, datetime(2026, 3, 1))
                for i in range(10)
            ]
        },
    )
    wb = workbench(db, pg_store, {"members": CONSENTING})
    try:
        with pytest.raises(ValidationError, match="sender"):
            wb.templates.create("무명", "(광고) 봄 세일!\n무료수신거부 080-123-4567")
        with pytest.raises(ValidationError, match="sender"):
            wb.workflows.create(
                "inline",
                target_config={"table": "members", "exclude_opt_out": False},
                message_config={"content": "(광고) 봄 세일!\n무료수신거부 080-123-4567"},
            )
        wb.templates.create("세일", AD, sender="하이브리드몰")  # not flagged
        wf = wb.workflows.create(
            "unflagged",
            target_config={"table": "members", "exclude_opt_out": False},
            message_config={"template": "세일"},
        )
        run_id = run_once(wb, wf, now=DAY)
    finally:
        wb.close()
    sent = {k for k, _ in records(pg_store, run_id)}
    consenting = {r[0] for r in src(db, "SELECT code FROM members WHERE ad_ok = 1")}
    assert sent == consenting


# -- 7. BIT(1) consent -----------------------------------------------------------------------
@pytest.mark.parametrize("exclude_opt_out", [True, False], ids=["sql-filter", "run-decides"])
def test_bit1_consent_is_read_as_the_bit(
    source: Callable[..., str], pg_store: str, exclude_opt_out: bool
) -> None:
    db = source(
        "CREATE TABLE members (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20), "
        "mobile VARCHAR(20), ad_ok BIT(1) NOT NULL, night_ok TINYINT(1) NOT NULL, "
        "joined DATETIME NOT NULL)",
        rows={
            "members": [
                (f"m{i:03d}", f"회원{i}", phone(i), 0, 2, datetime(2026, 3, 1)) for i in range(6)
            ]
        },
    )
    src(db, "UPDATE members SET ad_ok = b'1' WHERE code IN ('m001', 'm003')")
    wb = workbench(db, pg_store, {"members": CONSENTING})
    try:
        wb.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
        wf = wb.workflows.create(
            "bits",
            target_config={"table": "members", "exclude_opt_out": exclude_opt_out},
            message_config={"template": "세일"},
        )
        run_id = run_once(wb, wf, now=NIGHT)  # tinyint(1) night consent = 2 is a yes
    finally:
        wb.close()
    sent = {k for k, _ in records(pg_store, run_id)}
    assert sent == {r[0] for r in src(db, "SELECT code FROM members WHERE ad_ok = b'1'")}
    assert sent == {"m001", "m003"}


# -- 8. NUL bytes in keys and values -------------------------------------------------------------
def test_nul_bytes_are_counted_exclusions_not_lost_rows(
    source: Callable[..., str], any_store: str
) -> None:
    rows = [
        ("k1", "회원1", phone(1)),
        ("k\x00nul", "회원2", phone(2)),  # a NUL in the key
        ("k\\0nul", "회원3", phone(3)),  # a backslash and a zero: another key
        ("k\\", "회원4", phone(4)),
        ("k5", "회\x00원", phone(5)),  # a NUL in a value the message uses
        ("k6", "회원6", "010-0000\x00-0006"),  # a NUL in the recipient
        ("k7", "회원7", phone(7)),
    ]
    db = source(
        "CREATE TABLE members (code VARBINARY(20) PRIMARY KEY, name VARCHAR(20), "
        "mobile VARCHAR(30))",
        "ALTER TABLE members MODIFY code VARCHAR(20) COLLATE utf8mb4_bin NOT NULL",
        rows={"members": rows},
    )
    wb = workbench(db, any_store, {"members": {**people(), "audience": True}})
    try:
        wf = wb.workflows.create(
            "nul", target_config={"table": "members"}, message_config={"content": INFO}
        )
        run_id = run_once(wb, wf, batch_size=3, now=DAY)
    finally:
        wb.close()
    assert frozen(any_store, run_id) == len(rows)
    assert len(records(any_store, run_id)) == 4
    assert skips(any_store, run_id) == {policies.BAD_ROW: 3}


# -- 9. BINARY(16) keys --------------------------------------------------------------------------
def test_binary16_uuid_keys_run_and_resume(source: Callable[..., str], pg_store: str) -> None:
    ids = [uuid.UUID(int=(i * 0x9E3779B97F4A7C15) % 2**128) for i in range(1, 13)]
    db = source(
        "CREATE TABLE members (code BINARY(16) PRIMARY KEY, name VARCHAR(20), "
        "mobile VARCHAR(20), ad_ok TINYINT(1) NOT NULL, night_ok TINYINT(1) NOT NULL, "
        "joined DATETIME NOT NULL)",
        rows={
            "members": [
                (u.bytes, f"회원{i}", phone(i), 1, i % 2, datetime(2026, 3, 1))
                for i, u in enumerate(ids)
            ]
        },
    )
    wb = workbench(db, pg_store, {"members": CONSENTING})
    try:
        wb.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
        wf = wb.workflows.create(
            "uuids",
            target_config={"table": "members"},
            message_config={"template": "세일", "quiet_hours": "wait"},
        )
        run_id = run_once(wb, wf, batch_size=5, now=NIGHT)  # the night-consenting half
        night = len(records(pg_store, run_id))
        wb.workflows.process(wf["id"], run_id, progress=False, batch_size=5, now=DAY)
    finally:
        wb.close()
    sent = records(pg_store, run_id)
    assert night == 6
    assert len(sent) == len({k for k, _ in sent}) == len(ids), skips(pg_store, run_id)
    hexes = {r[0].hex() for r in src(db, "SELECT code FROM members")}
    assert {k.rpartition("x")[2] for k, _ in sent} == hexes


# -- 10. a consent column with a Korean name ----------------------------------------------------
def test_a_korean_consent_column_name_binds(source: Callable[..., str], pg_store: str) -> None:
    db = source(
        "CREATE TABLE 회원 (번호 INT PRIMARY KEY, 이름 VARCHAR(20), 휴대폰 VARCHAR(20), "
        "광고수신동의 CHAR(1) NOT NULL)",
        rows={"회원": [(i, f"회원{i}", phone(i), "Y" if i % 3 else "N") for i in range(1, 10)]},
    )
    mapping = {
        "displayName": "회원",
        "key": "번호",
        "audience": True,
        "recipient": "휴대폰",
        "consent": "광고수신동의",
        "fields": {
            "번호": {"displayName": "번호", "type": "number", "role": "id"},
            "이름": {"displayName": "이름", "type": "string", "role": "name"},
            "휴대폰": {"displayName": "휴대폰", "type": "string", "role": "phone"},
            "광고수신동의": {"displayName": "광고동의", "type": "string", "role": "consent"},
        },
    }
    wb = workbench(db, pg_store, {"회원": mapping})
    try:
        wb.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
        wf = wb.workflows.create(
            "korean", target_config={"table": "회원"}, message_config={"template": "세일"}
        )
        run_id = run_once(wb, wf, now=DAY)
    finally:
        wb.close()
    sent = {k for k, _ in records(pg_store, run_id)}
    assert sent == {str(r[0]) for r in src(db, "SELECT 번호 FROM 회원 WHERE 광고수신동의 = 'Y'")}


# -- 11. --now without an offset is Seoul time --------------------------------------------------
def test_now_without_an_offset_is_seoul_time() -> None:
    from hybridwb import cli

    at = cli._parse_time("2026-03-02T12:00")
    assert at == datetime(2026, 3, 2, 12, 0, tzinfo=SEOUL)
    help_text = CliRunner().invoke(cli.main, ["run", "--help"]).output
    assert "Asia/Seoul" in " ".join(help_text.split())


# -- more: one phone under two keys, consent withdrawn between freeze and send ----------------
def test_one_phone_under_two_keys_in_different_batches_is_messaged_once(
    source: Callable[..., str], pg_store: str
) -> None:
    rows = [(f"m{i:03d}", f"회원{i}", phone(i)) for i in range(20)]
    rows[17] = ("m017", "회원17", "+82 10-2001-0001")  # m001's phone, another spelling
    db = source(
        "CREATE TABLE members (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(30))",
        rows={"members": rows},
    )
    wb = workbench(db, pg_store, {"members": {**people(), "audience": True}})
    try:
        wf = wb.workflows.create(
            "dups", target_config={"table": "members"}, message_config={"content": INFO}
        )
        run_id = run_once(wb, wf, batch_size=4, now=DAY)
    finally:
        wb.close()
    sent = records(pg_store, run_id)
    assert len(sent) == 19 and len({r for _, r in sent}) == 19
    assert skips(pg_store, run_id) == {policies.DUPLICATE: 1}


def test_consent_withdrawn_between_freeze_and_send_is_excluded_and_counted(
    source: Callable[..., str], pg_store: str
) -> None:
    db = _consenting(source, 10)
    wb = workbench(db, pg_store, {"members": CONSENTING})
    try:
        wb.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
        wf = wb.workflows.create(
            "withdrawn",
            target_config={"table": "members", "exclude_opt_out": False},
            message_config={"template": "세일", "quiet_hours": "wait"},
        )
        run_id = run_once(wb, wf, now=NIGHT)
        conn = _admin()
        conn.cursor().execute(f"UPDATE `{db}`.members SET ad_ok = 0 WHERE code < 'm004'")
        conn.close()
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY)
    finally:
        wb.close()
    assert len(records(pg_store, run_id)) == 6
    assert skips(pg_store, run_id) == {policies.NO_CONSENT: 4}
