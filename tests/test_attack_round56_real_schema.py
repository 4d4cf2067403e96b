"""Attack round 56, "the sample shop is not the world": real shop schemas nobody here designed.

Source: one MariaDB database for the module holding (a) gnuboard5's `g5_member` as the
installer creates it (`mb_no` AUTO_INCREMENT key, `mb_id` UNIQUE, every column NOT NULL
DEFAULT '' or '0000-00-00 00:00:00', a withdrawn member kept with `mb_leave_date`
VARCHAR(8) 'YYYYMMDD', a blocked one with `mb_intercept_date`, consent `mb_marketing_agree`
TINYINT(1), utf8 = utf8mb3) and (b) an older Korean shop's `shop_member` (a VARCHAR login
key, the mobile split in `mobile1` CHAR(3) / `mobile2` / `mobile3`, `sms_agree` and
`night_agree` 'T'/'F', withdrawn members kept with `is_out` 'T', `reg_date` VARCHAR(14)
'YYYYMMDDHHMMSS', `last_login` INT UNSIGNED unix seconds; `shop_pair` the same shape, two
members sharing a number) and (c) WordPress/WooCommerce's `wp_users` + `wp_usermeta` (the
phone and the consent as key/value rows). Read by an account created here with `GRANT
SELECT ON db.*` and nothing else (dropped after). Store: SQLite. Oracles: the same rows read
as root with pymysql (`STR_TO_DATE`, `CONCAT_WS` in root's SQL), the store's `send_records`
/ `run_skips` / `workflow_runs` read with sqlite3.

BREAKS (mutation counts: the fix undone by hand, this file run, of its 33 tests; of its 47
for BREAKS 5-7, fixed in branch `r56fix`):

- BREAK 1 (fixed): a date the schema keeps as text (`reg_date` VARCHAR(14)
  '20260301093000', mapped `datetime`, which `save` and drift call compatible) was compared
  with the bound '2025-03-03 10:00:00' as text: within one year '2026030109...' sorts after
  '2026-03-03...' ('0' > '-'), so "joined within the last 365 days" chose nobody (park3,
  who joined two days before and said yes, silently left out), `lt '2026-03-02'` and
  `between` left park3 out, `gt '2025-06-01'` chose jung6 (March 2025), "withdrawn within
  the last 90 days" on gnuboard's `mb_leave_date` 'YYYYMMDD' chose nobody, and so did an
  aggregate's `within_last` over a text `orderBy`. A date condition (and an aggregate's
  `within_last`) on a column the server states text is now compared as
  `CAST(col AS DATETIME)` / `AS DATE` on MariaDB (`targets.sql.Builder._dated`).
  → 5 of 33 fail.
- BREAK 2 (fixed, now held): a unix-seconds INT (`last_login`) mapped `datetime` (saved
  with no word) was compared with a date the server read as the number 2025: `older_than
  365 days` and `within_last` chose nobody, `lt '2025-01-01'` everybody. Refused now in one
  line that says to compare the number it holds, with nothing sent (and that number
  condition messages root's rows). → 3 of 33 fail.
- BREAK 3 (fixed): gnuboard's "never logged in" is `mb_today_login` '0000-00-00
  00:00:00'; the driver hands a zero date over as text and the customer got "최근 접속
  0000-00-00 00:00:00". A date field holding MySQL's zero date now has no value
  (`formatters.zero_date_none`, in the run's batch path and row path): the message is
  skipped as "missing 최근접속", as for NULL. → 1 of 33 fails.
- BREAK 4 (fixed): `suggest('shop_member')` proposed `mobile1` (CHAR(3), '010') as the SMS
  recipient (all three parts as phones), and a table target on a mapping with that
  recipient excluded every member as "not a valid phone number", the only advice the
  role message ("set the recipient to one of mobile1, mobile2, mobile3"). A CHAR/VARCHAR
  column too short for any phone number (< 7) is no longer suggested a phone, and a table
  target whose SMS recipient is one is refused at preview, at a workflow's save and at the
  run in one line naming the way forward: a saved query joining the parts with
  `"recipient": "hp"`, which messages root's `CONCAT_WS` numbers with 'T'/'F' consent and
  night consent applied at 10:00 and 23:00 (`TargetService._phone_part`, `usable`).
  → 3 of 33 fail (suggest 1, refusal 2).
- BREAK 8 (fixed): a member could not be found by the id they log in with: a text key
  (`shop_member.member_id` 'kim01', role id) was searched by no branch (only a number id
  was), and gnuboard's `mb_id` (UNIQUE, no foreign key) was suggested a `reference` for
  its `_id`, never searched. A text id is now matched whole (`predicates.plan`), and a
  text `*_id` column unique by itself is suggested an id. → 4 of 33 fail with the search
  branch off, 2 of 33 with the suggestion as before.
- BREAK 6 (fixed): the way forward's gap: an advertisement by that saved query messaged a
  member who said yes at the number another member of the table shares and said no for (the
  refusal read of the audience table read the mapping's recipient, '010', not the query's
  `hp`). The read now computes the query's recipient from the table's own columns (a
  column, or the `CONCAT_WS` / `CONCAT` parts, joined as the server joins them), in the run
  and the preview; any other recipient shape is refused at the run, nothing sent
  (`workflows.query_recipient`, `refusals.recipient_for`). Attacked: one number held by
  yes / no / unclear, a night-only refusal at 23:00, NULL parts, a key returned twice,
  expressions / subqueries / another table's parts. → 8 of 47 fail.
- BREAK 7 (answered by a refusal): WooCommerce keeps the SMS consent as a `wp_usermeta` row
  ('marketing_sms' = 'yes'); the audience table has no consent column, so an advertisement
  excluded every user as "no marketing consent", with no way forward. A query's own consent
  column is not taken (the refusal read of a number's other holders walks the audience
  table, where there is none: a query leaving the refusers out would message a number they
  refused); a saved-query advertisement on an audience with no consent mapped is refused in
  one line naming a table with one row per customer, which (mapped with consent) messages
  exactly the users who said yes. → 1 of 47 fails.
- BREAK 5 (fixed): a member of `shop_member` could not be found by their phone (`wb.search`
  looked for a phone in one column; the parts are three). A whole mobile number is now
  matched part by part on three searchable text columns named stem1/2/3
  (`predicates.split_phones`). → 6 of 47 fail.

HELD: gnuboard5 end to end through the account created here (SELECT only, checked with
SHOW GRANTS): suggest (key `mb_no`, recipient `mb_hp`, consent `mb_marketing_agree`), save,
search by every phone form / name / email / key, withdrawn and blocked members left out by
`eq ''` conditions, the preview's count equal to root's, an advertisement to consenting
members only, `mb_hp` '' excluded as "no recipient", a withdrawn member's phone re-used by
their new account messaged once, to the new account; 'T'/'F' consent and night consent
mapped as boolean (`quiet_hours` "wait" leaves the run waiting, "exclude" ends it); a
WooCommerce informational message by a saved query over `wp_usermeta`: each user once at
their `billing_phone`, never the `shipping_phone` of the same rows.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import hybridwb
from hybridwb.errors import HybridwbError, ValidationError
from hybridwb.platform.campaigns import Campaigns
from tests._mysql import select_only_url
from tests.conftest import _admin, mariadb_maker
from tests.test_attack_once_round2 import DAY, NIGHT, src
from tests.test_attack_round30_debug_rows import F
from tests.test_attack_round30_dotted_columns import one_line
from tests.test_attack_round53_real_schemas import e164, phone

pytestmark = [pytest.mark.mysql]

G5 = """CREATE TABLE g5_member (
  mb_no int(11) NOT NULL AUTO_INCREMENT,
  mb_id varchar(20) NOT NULL DEFAULT '',
  mb_password varchar(255) NOT NULL DEFAULT '',
  mb_name varchar(255) NOT NULL DEFAULT '',
  mb_nick varchar(255) NOT NULL DEFAULT '',
  mb_email varchar(255) NOT NULL DEFAULT '',
  mb_level tinyint(4) NOT NULL DEFAULT '0',
  mb_hp varchar(255) NOT NULL DEFAULT '',
  mb_today_login datetime NOT NULL DEFAULT '0000-00-00 00:00:00',
  mb_datetime datetime NOT NULL DEFAULT '0000-00-00 00:00:00',
  mb_leave_date varchar(8) NOT NULL DEFAULT '',
  mb_intercept_date varchar(8) NOT NULL DEFAULT '',
  mb_mailling tinyint(4) NOT NULL DEFAULT '0',
  mb_sms tinyint(4) NOT NULL DEFAULT '0',
  mb_marketing_agree tinyint(1) NOT NULL DEFAULT '0',
  PRIMARY KEY (mb_no),
  UNIQUE KEY mb_id (mb_id),
  KEY mb_today_login (mb_today_login),
  KEY mb_datetime (mb_datetime)
) ENGINE=InnoDB DEFAULT CHARSET=utf8"""
SHOP = """CREATE TABLE shop_member (
  member_id varchar(20) NOT NULL,
  name varchar(30) NOT NULL DEFAULT '',
  mobile1 char(3) NOT NULL DEFAULT '',
  mobile2 varchar(4) NOT NULL DEFAULT '',
  mobile3 char(4) NOT NULL DEFAULT '',
  email varchar(100) NOT NULL DEFAULT '',
  sms_agree char(1) NOT NULL DEFAULT 'F',
  night_agree char(1) NOT NULL DEFAULT 'F',
  is_out char(1) NOT NULL DEFAULT 'F',
  reg_date varchar(14) NOT NULL DEFAULT '',
  last_login int(10) unsigned NOT NULL DEFAULT 0,
  PRIMARY KEY (member_id),
  KEY mobile (mobile1, mobile2, mobile3), KEY name (name), KEY email (email)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"""
ZERO = "0000-00-00 00:00:00"
# mb_no, mb_id, name, email, hp, today_login, datetime, leave, intercept, marketing
MEMBERS = [
    (1, "minjun", "김민준", "minjun@ex.com", phone(1), "2026-03-01 09:00:00", "2024-01-02 10:00:00", "", "", 1),
    (2, "seoyeon", "이서연", "seoyeon@ex.com", phone(2), "2025-01-01 09:00:00", "2024-02-02 10:00:00", "", "", 0),
    (3, "jihoon", "박지훈", "", phone(3), ZERO, "2024-03-02 10:00:00", "", "", 1),
    (4, "oldone", "최하은", "old@ex.com", phone(4), "2025-06-01 09:00:00", "2023-01-02 10:00:00", "20251215", "", 1),
    (5, "blocked", "정도윤", "b@ex.com", phone(5), "2026-02-01 09:00:00", "2023-05-02 10:00:00", "", "20260101", 1),
    (6, "nohp", "강예은", "nohp@ex.com", "", "2026-02-01 09:00:00", "2023-05-02 10:00:00", "", "", 1),
    (7, "rejoin", "최하은", "new@ex.com", phone(4), "2026-03-02 09:00:00", "2025-08-01 10:00:00", "", "", 1),
    (8, "nomkt", "윤수아", "s@ex.com", phone(8), "2026-03-02 09:00:00", "2025-08-01 10:00:00", "", "", 0),
    (9, "gone", "한지민", "g@ex.com", phone(9), "2024-06-01 09:00:00", "2022-01-02 10:00:00", "20240701", "", 1),
]  # fmt: skip
G5_ROWS = [
    (no, mid, "*", name, name, mail, 2, hp, login, joined, leave, block, 1, 1, mkt)
    for no, mid, name, mail, hp, login, joined, leave, block, mkt in MEMBERS
]
# member_id, name, mobile1-3, email, sms, night, out, reg_date, last_login
SHOP_ROWS = [
    ("kim01", "김민준", "010", "2001", "0001", "kim@ex.com", "T", "T", "F", "20240102100000", 1767225600),
    ("lee02", "이서연", "010", "2002", "0002", "lee@ex.com", "F", "F", "F", "20250505120000", 1735689600),
    ("park3", "박지훈", "010", "2003", "0003", "p@ex.com", "T", "F", "F", "20260301093000", 1772323200),
    ("out04", "최하은", "010", "2004", "0004", "o@ex.com", "T", "T", "T", "20230101000000", 1700000000),
    ("yoon5", "윤수아", "011", "203", "0005", "y@ex.com", "T", "F", "F", "20221231235959", 1672531199),
    ("jung6", "정도윤", "010", "2006", "0006", "j@ex.com", "T", "T", "F", "20250303100500", 1741000000),
]  # fmt: skip
# two members of one household sharing one number: one said yes, the other no
PAIR_ROWS = [
    ("kim01", "김민준", "010", "2001", "0001", "kim@ex.com", "T", "T", "F", "20240102100000", 0),
    ("kim02", "김복순", "010", "2001", "0001", "bok@ex.com", "F", "F", "F", "20240102100000", 0),
    ("lee03", "이서연", "010", "2003", "0003", "lee@ex.com", "T", "T", "F", "20240102100000", 0),
]  # fmt: skip
# nullable parts: one number held by three members (yes, no, unclear), one by two (both yes
# by day, one no at night), a part NULL (CONCAT_WS skips it: another number, or none)
TRIO = (
    SHOP.replace("shop_member", "shop_trio")
    .replace("mobile1 char(3) NOT NULL DEFAULT ''", "mobile1 char(3) NULL")
    .replace("mobile2 varchar(4) NOT NULL DEFAULT ''", "mobile2 varchar(4) NULL")
)
TRIO_ROWS = [
    ("a1", "가", "010", "3001", "0001", "", "T", "T", "F", "", 0),
    ("a2", "나", "010", "3001", "0001", "", "F", "T", "F", "", 0),
    ("a3", "다", "010", "3001", "0001", "", "?", "T", "F", "", 0),
    ("b1", "라", "010", "3002", "0002", "", "T", "T", "F", "", 0),
    ("b2", "마", "010", "3002", "0002", "", "T", "F", "F", "", 0),
    ("c1", "바", "010", "3003", "0003", "", "T", "T", "F", "", 0),
    ("d1", "사", "010", "3004", "0004", "", "T", "T", "F", "", 0),
    ("d2", "아", None, "3004", "0004", "", "F", "F", "F", "", 0),
    ("e1", "자", "010", "3005", "0005", "", "T", "T", "F", "", 0),
    ("e2", "차", "010", None, "0005", "", "F", "F", "F", "", 0),
]  # fmt: skip
# WordPress + WooCommerce: the phone, the first name and the SMS consent are usermeta rows
WP_USERS = """CREATE TABLE wp_users (
  ID bigint(20) unsigned NOT NULL AUTO_INCREMENT,
  user_login varchar(60) NOT NULL DEFAULT '',
  user_pass varchar(255) NOT NULL DEFAULT '',
  user_email varchar(100) NOT NULL DEFAULT '',
  user_registered datetime NOT NULL DEFAULT '0000-00-00 00:00:00',
  display_name varchar(250) NOT NULL DEFAULT '',
  PRIMARY KEY (ID), KEY user_login_key (user_login), KEY user_email (user_email)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_520_ci"""
WP_USERMETA = """CREATE TABLE wp_usermeta (
  umeta_id bigint(20) unsigned NOT NULL AUTO_INCREMENT,
  user_id bigint(20) unsigned NOT NULL DEFAULT '0',
  meta_key varchar(255) DEFAULT NULL,
  meta_value longtext,
  PRIMARY KEY (umeta_id), KEY user_id (user_id), KEY meta_key (meta_key(191))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_520_ci"""
WP_ROWS = [(1, "minjun", "*", "m@ex.com", "2024-01-02 10:00:00", "김민준"),
           (2, "seoyeon", "*", "s@ex.com", "2024-02-02 10:00:00", "이서연"),
           (3, "jihoon", "*", "j@ex.com", "2024-03-02 10:00:00", "박지훈")]  # fmt: skip
WP_META = [
    (None, uid, key, value)
    for uid, hp, agree in ((1, phone(1), "yes"), (2, phone(2), "no"), (3, phone(3), "yes"))
    for key, value in (("billing_phone", hp), ("marketing_sms", agree),
                       ("shipping_phone", phone(90 + uid)))
]  # fmt: skip
G5_COLUMNS = (
    "mb_no, mb_id, mb_password, mb_name, mb_nick, mb_email, mb_level, mb_hp, mb_today_login, "
    "mb_datetime, mb_leave_date, mb_intercept_date, mb_mailling, mb_sms, mb_marketing_agree"
)
AD = "(광고) 하이브리드몰\n{{ 이름 }}님, 봄 세일!\n무료수신거부 080-123-4567"


@pytest.fixture(scope="module")
def db() -> Iterator[str]:
    maker = mariadb_maker("hybridwb_r56")
    make = next(maker)
    try:
        # gnuboard's DEFAULT '0000-00-00 00:00:00' needs a sql_mode without NO_ZERO_DATE
        name = make(
            "SET SESSION sql_mode = ''",
            G5,
            SHOP,
            SHOP.replace("shop_member", "shop_pair"),
            TRIO,
            WP_USERS,
            WP_USERMETA,
        )
        conn = _admin()
        try:
            with conn.cursor() as cur:
                cur.execute("SET SESSION sql_mode = ''")
                cur.execute(f"USE `{name}`")
                cur.executemany(
                    f"INSERT INTO g5_member ({G5_COLUMNS}) VALUES ({', '.join(['%s'] * 15)})",
                    G5_ROWS,
                )
                cur.executemany(
                    f"INSERT INTO shop_member VALUES ({', '.join(['%s'] * 11)})", SHOP_ROWS
                )
                cur.executemany(
                    f"INSERT INTO shop_pair VALUES ({', '.join(['%s'] * 11)})", PAIR_ROWS
                )
                cur.executemany(
                    f"INSERT INTO shop_trio VALUES ({', '.join(['%s'] * 11)})", TRIO_ROWS
                )
                cur.executemany(f"INSERT INTO wp_users VALUES ({', '.join(['%s'] * 6)})", WP_ROWS)
                cur.executemany("INSERT INTO wp_usermeta VALUES (%s, %s, %s, %s)", WP_META)
            conn.commit()
        finally:
            conn.close()
        yield name
    finally:
        maker.close()


@pytest.fixture(scope="module")
def reader(db: str) -> Iterator[str]:
    """A URL of an account created here holding SELECT on the database and nothing else."""
    with select_only_url(db, "r56") as url:
        yield url


def connect(reader: str, tmp_path: Path) -> tuple[hybridwb.Workbench, Path]:
    path = tmp_path / "s.db"
    wb = hybridwb.connect(source=reader, store=f"sqlite:///{path}")
    wb.store.init()
    return wb, path


def run(
    wb: hybridwb.Workbench, target: dict[str, Any], message: dict[str, Any], now: datetime = DAY
) -> str:
    """A workflow of `target` run in process (the notebook's call), as of `now`."""
    wf = wb.workflows.create(f"w{uuid.uuid4().hex[:6]}", target_config=target,
                             message_config=message)  # fmt: skip
    created = wb.store.runs.create(wf["id"], {})
    Campaigns(wb.store.backend).start_state(created["id"], "test:1", "manual")
    wb.workflows.process(wf["id"], created["id"], progress=False, batch_size=2, now=now)
    return str(created["id"])


def store_rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def sent(path: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, to in store_rows(path, "SELECT target_key, recipient FROM send_records"):
        out.setdefault(str(key), []).append(str(to))
    return out


def texts(path: Path) -> dict[str, str]:
    return {
        str(k): str(t) for k, t in store_rows(path, "SELECT target_key, content FROM send_records")
    }


def skipped(path: Path) -> dict[str, str]:
    return {str(k): str(r) for k, r in store_rows(path, "SELECT target_key, reason FROM run_skips")}


def keys(db: str, sql: str) -> set[str]:
    return {str(k) for (k,) in src(db, sql)}


def g5_mapping(wb: hybridwb.Workbench) -> dict[str, Any]:
    """What `suggest` proposes for g5_member, with the display names a user gives."""
    mapping = wb.mappings.suggest("g5_member").model_dump(mode="json", exclude_unset=True)
    assert (mapping["key"], mapping["recipient"], mapping["consent"]) == (
        "mb_no", "mb_hp", "mb_marketing_agree"
    )  # fmt: skip
    mapping["fields"]["mb_name"]["displayName"] = "이름"
    mapping["fields"]["mb_today_login"]["displayName"] = "최근접속"
    mapping["fields"]["mb_datetime"]["displayName"] = "가입일"
    mapping["fields"]["mb_leave_date"]["displayName"] = "탈퇴일"
    return mapping


ACTIVE = {"all": [{"field": "mb_leave_date", "op": "eq", "value": ""},
                  {"field": "mb_intercept_date", "op": "eq", "value": ""}]}  # fmt: skip
ACTIVE_SQL = "mb_leave_date = '' AND mb_intercept_date = ''"


# -- gnuboard5, end to end ----------------------------------------------------------------
@pytest.mark.parametrize(
    "term, where",
    [(phone(1), "mb_hp = '010-2001-0001'"), ("01020010001", "mb_hp = '010-2001-0001'"),
     ("+82 10-2004-0004", "mb_hp = '010-2004-0004'"), ("김민준", "mb_name = '김민준'"),
     ("최하은", "mb_name = '최하은'"), ("minjun@ex.com", "mb_email = 'minjun@ex.com'"),
     ("1", "mb_no = 1")],
    ids=["phone", "phone-digits", "phone-e164-shared", "name", "name-twice", "email", "key"],
)  # fmt: skip
def test_gnuboard_a_member_is_found_by_phone_name_and_email(
    db: str, reader: str, tmp_path: Path, term: str, where: str
) -> None:
    wb, _ = connect(reader, tmp_path)
    with wb:
        wb.mappings.save("g5_member", g5_mapping(wb))
        found = {str(r["mb_no"]) for r in wb.search("g5_member", term).raw_rows}
    assert found == keys(db, f"SELECT mb_no FROM g5_member WHERE {where}")


def test_gnuboard_an_advertisement_reaches_active_consenting_members_once(
    db: str, reader: str, tmp_path: Path
) -> None:
    """Held: the withdrawn (4, 9) and the blocked (5) are left out by the conditions, 2 and 8
    said no, 6 has no phone ('': excluded and counted), 7 re-joined with 4's phone and is
    messaged at it once. BREAK 3 (fixed): 3 never logged in ('0000-00-00 00:00:00'): the
    message said "최근 0000-00-00 00:00:00"; now skipped as missing 최근접속."""
    wb, path = connect(reader, tmp_path)
    content = ("(광고) 하이브리드몰\n{{ 이름 }}님, {{ 가입일 | date_ko }} 가입 감사, "
               "최근 접속 {{ 최근접속 | date_ko }}\n무료수신거부 080-123-4567")  # fmt: skip
    with wb:
        wb.mappings.save("g5_member", g5_mapping(wb))
        assert all(v.status == "mapped" for v in wb.templates.automap(content).variables)
        wb.templates.create("세일", content, advertising=True, sender="하이브리드몰")
        count = wb.targets.preview({"table": "g5_member", "where": ACTIVE}).count
        run(wb, {"table": "g5_member", "where": ACTIVE}, {"template": "세일"})
    chosen = keys(db, f"SELECT mb_no FROM g5_member WHERE {ACTIVE_SQL} AND mb_marketing_agree")
    assert count == len(chosen) == 4
    reachable = keys(
        db, f"SELECT mb_no FROM g5_member WHERE {ACTIVE_SQL} AND mb_marketing_agree "
        "AND mb_hp <> '' AND mb_today_login <> '0000-00-00'"
    )  # fmt: skip
    got = sent(path)
    assert set(got) == reachable == {"1", "7"}
    assert got == {"1": [e164(1)], "7": [e164(4)]}
    assert "2024년 1월 2일 가입" in texts(path)["1"] and "2026년 3월 2일" in texts(path)["7"]
    assert not any("0000" in t for t in texts(path).values())
    why = skipped(path)
    assert "최근접속" in why["3"] and why["6"] == "no recipient", why


@pytest.mark.parametrize(
    "table, term, where",
    [("g5_member", "jihoon", "mb_id = 'jihoon'"), ("g5_member", "rejoin", "mb_id = 'rejoin'"),
     ("shop_member", "kim01", "member_id = 'kim01'"), ("shop_member", "park3", "member_id = 'park3'")],
    ids=["gnuboard-mb-id", "gnuboard-mb-id-2", "shop-text-key", "shop-text-key-no-email"],
)  # fmt: skip
def test_a_member_is_found_by_their_login_id(
    db: str, reader: str, tmp_path: Path, table: str, term: str, where: str
) -> None:
    """BREAK 8 (fixed): a text key (`member_id`, role id) was searched by no branch, and
    gnuboard's `mb_id` (UNIQUE, not a foreign key) was suggested a `reference`, never
    searched: support could not find a member by the id they log in with."""
    wb, _ = connect(reader, tmp_path)
    with wb:
        mapping = g5_mapping(wb) if table == "g5_member" else SHOP_BY_MAIL
        wb.mappings.save(table, mapping)
        key = mapping["key"]
        found = {str(r[key]) for r in wb.search(table, term).raw_rows}
    assert found == keys(db, f"SELECT {key} FROM {table} WHERE {where}") and found


# -- BREAK 1: dates kept as text ----------------------------------------------------------------
SHOP_FIELDS = {
    "member_id": F("아이디", role="id", searchable=True),
    "name": F("이름", role="name", searchable=True),
    "email": F("이메일", role="email", searchable=True),
    "sms_agree": F("수신동의", "boolean", "consent"),
    "night_agree": F("야간동의", "boolean", "night_consent"),
    "is_out": F("탈퇴", "boolean", "flag"),
    "reg_date": F("가입일", "datetime", "date"),
    "last_login": F("최근접속", "datetime", "date"),
}
SHOP_BY_MAIL = {"displayName": "회원", "key": "member_id", "audience": True,
                "recipient": "email", "channel": "email", "consent": "sms_agree",
                "fields": SHOP_FIELDS}  # fmt: skip
REG = "STR_TO_DATE(reg_date, '%Y%m%d%H%i%s')"


@pytest.mark.parametrize(
    "cond, sql",
    [({"op": "within_last", "value": {"days": 365}},
      f"{REG} BETWEEN '2025-03-03 10:00:00' AND '2026-03-03 10:00:00'"),
     ({"op": "older_than", "value": {"days": 365}}, f"{REG} < '2025-03-03 10:00:00'"),
     ({"op": "lt", "value": "2026-03-02"}, f"{REG} < '2026-03-02'"),
     ({"op": "between", "value": ["2025-01-01", "2026-03-02"]},
      f"{REG} BETWEEN '2025-01-01' AND '2026-03-02'"),
     ({"op": "gt", "value": "2025-06-01"}, f"{REG} > '2025-06-01'")],
    ids=["within-last-year", "older-than-a-year", "lt", "between", "gt"],
)  # fmt: skip
def test_a_date_kept_as_yyyymmddhhmmss_text_is_compared_as_a_date(
    db: str, reader: str, tmp_path: Path, cond: dict[str, Any], sql: str
) -> None:
    """BREAK 1 (fixed): before, within-last-year chose nobody (park3 joined on 1 March
    2026), lt and between left out park3, gt also chose jung6 (who joined in March 2025:
    within one year the text's digit sorts after '-')."""
    wb, path = connect(reader, tmp_path)
    where = {"field": "reg_date", **cond}
    with wb:
        wb.mappings.save("shop_member", SHOP_BY_MAIL)
        count = wb.targets.preview({"table": "shop_member", "where": where}, now=DAY).count
        run(wb, {"table": "shop_member", "where": where},
            {"content": "{{ 이름 }}님, {{ 가입일 | date_ko }}에 가입하셨습니다."})  # fmt: skip
    chosen = keys(db, f"SELECT member_id FROM shop_member WHERE sms_agree = 'T' AND {sql}")
    assert count == len(chosen) and chosen, chosen
    assert set(sent(path)) == chosen and not skipped(path)
    for key, text in texts(path).items():  # BREAK 3 (fixed): the digits were sent as they are
        (reg,) = src(db, f"SELECT DATE({REG}) FROM shop_member WHERE member_id = '{key}'")[0]
        assert f"{reg.year}년 {reg.month}월 {reg.day}일에" in text, text


def test_members_withdrawn_in_the_last_90_days_by_gnuboards_yyyymmdd_text(
    db: str, reader: str, tmp_path: Path
) -> None:
    """BREAK 1 (fixed) on gnuboard's own `mb_leave_date` VARCHAR(8), mapped as a date: a
    "we miss you" message to those who left within 90 days. Before: nobody ('20251215' >
    '2026-03-03'... as text, and < '2025-12-03' as text too)."""
    wb, path = connect(reader, tmp_path)
    mapping = g5_mapping(wb)
    mapping["fields"]["mb_leave_date"]["type"] = "date"
    where = {"field": "mb_leave_date", "op": "within_last", "value": {"days": 90}}
    with wb:
        wb.mappings.save("g5_member", mapping)
        run(wb, {"table": "g5_member", "where": where}, {"content": "{{ 이름 }}님, 다시 만나요."})
    chosen = keys(
        db, "SELECT mb_no FROM g5_member WHERE mb_marketing_agree AND mb_leave_date <> '' "
        "AND STR_TO_DATE(mb_leave_date, '%Y%m%d') BETWEEN '2025-12-03' AND '2026-03-03'"
    )  # fmt: skip
    assert set(sent(path)) == chosen == {"4"}
    assert sent(path)["4"] == [e164(4)]


def test_a_related_aggregate_within_last_on_a_text_date(
    db: str, reader: str, tmp_path: Path
) -> None:
    """BREAK 1 (fixed) through `within_last` of an aggregate: members of g5 whose shop
    account (same phone digits) joined within the last year; the relation's `orderBy` is
    the text date."""
    wb, path = connect(reader, tmp_path)
    with wb:
        wb.mappings.save("shop_member", {**SHOP_BY_MAIL, "audience": False})
        g5 = g5_mapping(wb)
        g5["fields"]["mb_id"]["role"] = "text"
        g5["relations"] = [{"table": "shop_member", "name": "shop", "localField": "mb_name",
                            "foreignField": "name", "kind": "one-to-many",
                            "orderBy": "reg_date"}]  # fmt: skip
        wb.mappings.save("g5_member", g5)
        where = {"aggregate": "count", "relation": "shop", "op": "gt", "value": 0,
                 "within_last": {"days": 365}}  # fmt: skip
        run(wb, {"table": "g5_member", "where": where}, {"content": "{{ 이름 }}님 안내"})
    chosen = keys(
        db, "SELECT mb_no FROM g5_member g WHERE mb_marketing_agree AND mb_hp <> '' AND EXISTS "
        f"(SELECT 1 FROM shop_member s WHERE s.name = g.mb_name AND {REG} "
        "BETWEEN '2025-03-03 10:00:00' AND '2026-03-03 10:00:00')"
    )  # fmt: skip
    assert set(sent(path)) == chosen and chosen, chosen


# -- BREAK 2: unix seconds in an INT ------------------------------------------------------------
@pytest.mark.parametrize(
    "cond",
    [{"op": "older_than", "value": {"days": 365}}, {"op": "within_last", "value": {"days": 30}},
     {"op": "lt", "value": "2025-01-01"}],
    ids=["older-than", "within-last", "lt"],
)  # fmt: skip
def test_a_unix_seconds_int_mapped_as_a_date_is_refused_with_nothing_sent(
    db: str, reader: str, tmp_path: Path, cond: dict[str, Any]
) -> None:
    """BREAK 2 (fixed, held): before, older-than and within-last chose nobody and lt chose
    every member (1767225600 < 2025)."""
    wb, path = connect(reader, tmp_path)
    where = {"field": "last_login", **cond}
    with wb:
        wb.mappings.save("shop_member", SHOP_BY_MAIL)
        with pytest.raises(ValidationError) as refused:
            wb.targets.preview({"table": "shop_member", "where": where}, now=DAY)
        with pytest.raises(HybridwbError):
            run(wb, {"table": "shop_member", "where": where}, {"content": "{{ 이름 }}님 안내"})
    assert "map it as a number" in one_line(refused.value)
    assert sent(path) == {}


def test_the_way_forward_for_unix_seconds_is_a_number_condition(
    db: str, reader: str, tmp_path: Path
) -> None:
    wb, path = connect(reader, tmp_path)
    fields = {**SHOP_FIELDS, "last_login": F("최근접속", "number")}
    cutoff = int(datetime(2025, 3, 3, 10, 0).timestamp())
    with wb:
        wb.mappings.save("shop_member", {**SHOP_BY_MAIL, "fields": fields})
        run(wb, {"table": "shop_member", "where": {"field": "last_login", "op": "lt",
                                                    "value": cutoff}},
            {"content": "{{ 이름 }}님 안내"})  # fmt: skip
    chosen = keys(db, f"SELECT member_id FROM shop_member WHERE sms_agree = 'T' AND "
                      f"last_login < {cutoff} AND email <> ''")  # fmt: skip
    assert set(sent(path)) == chosen == {"out04", "yoon5"}


# -- BREAK 4: a phone split across three columns ----------------------------------------------
def test_suggest_never_proposes_a_part_of_a_split_phone_as_the_recipient(
    reader: str, tmp_path: Path
) -> None:
    """BREAK 4 (fixed): `mobile1` ('010') was the suggested SMS recipient."""
    wb, _ = connect(reader, tmp_path)
    with wb:
        mapping = wb.mappings.suggest("shop_member")
    assert mapping.recipient not in ("mobile1", "mobile2", "mobile3")
    assert all(mapping.fields[f].role != "phone" for f in ("mobile1", "mobile2", "mobile3"))


SPLIT = {**SHOP_BY_MAIL, "recipient": "mobile1", "channel": "sms",
         "fields": {**SHOP_FIELDS, "mobile1": F("휴대폰", role="phone")}}  # fmt: skip
SPLIT_SQL = (
    "SELECT member_id, name, CONCAT_WS('-', mobile1, mobile2, mobile3) AS hp, sms_agree, "
    "night_agree FROM shop_member WHERE is_out = 'F'"
)
#: the parts joined as a saved query (and root's oracle) joins them, `{p}`: a qualifier
HP = "CONCAT_WS('-', {p}mobile1, {p}mobile2, {p}mobile3)"


@pytest.mark.parametrize("part", ["mobile1", "mobile2"])
def test_a_part_of_a_split_phone_as_the_recipient_is_refused_naming_the_way_forward(
    reader: str, tmp_path: Path, part: str
) -> None:
    """BREAK 4 (fixed): before, every member was excluded as "not a valid phone number",
    nothing saying what to do."""
    wb, path = connect(reader, tmp_path)
    mapping = {
        **SPLIT,
        "recipient": part,
        "fields": {**SHOP_FIELDS, part: F("휴대폰", role="phone")},
    }
    with wb:
        wb.mappings.save("shop_member", mapping)
        with pytest.raises(ValidationError) as refused:
            wb.targets.preview({"table": "shop_member"})
        with pytest.raises(HybridwbError) as at_run:
            run(wb, {"table": "shop_member"}, {"content": "{{ 이름 }}님 안내"})
    for text in (one_line(refused.value), one_line(at_run.value)):
        assert "too few for a phone number" in text and "CONCAT_WS" in text, text
        assert '"recipient": "hp"' in text
    assert sent(path) == {} and skipped(path) == {}


@pytest.mark.parametrize(
    "now, quiet, sent_to, waiting",
    [(DAY, "wait", "sms_agree = 'T'", False), (NIGHT, "wait", "night_agree = 'T'", True),
     (NIGHT, "exclude", "night_agree = 'T'", False)],
    ids=["day", "night-wait", "night-exclude"],
)  # fmt: skip
def test_the_way_forward_a_saved_query_joining_the_parts_messages_exactly_root_s_numbers(
    db: str, reader: str, tmp_path: Path, now: datetime, quiet: str, sent_to: str, waiting: bool
) -> None:
    """BREAK 4's way forward, as the refusal names it: a saved query with `"recipient":
    "hp"`; consent ('T'/'F') and night consent apply at 10:00 and at 23:00; the withdrawn
    `out04` (who said yes to both) is left out by the query."""
    wb, path = connect(reader, tmp_path)
    with wb:
        wb.mappings.save("shop_member", SPLIT)
        wb.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
        target = {"sql": SPLIT_SQL, "recipient": "hp"}
        assert wb.targets.preview(target).count == len(
            keys(db, "SELECT member_id FROM shop_member WHERE is_out = 'F' AND sms_agree = 'T'")
        )
        run_id = run(wb, target, {"template": "세일", "quiet_hours": quiet}, now)
    expected = {
        str(k): ["+82" + str(hp).replace("-", "")[1:]]
        for k, hp in src(db, "SELECT member_id, CONCAT_WS('-', mobile1, mobile2, mobile3) FROM "
                             f"shop_member WHERE is_out = 'F' AND sms_agree = 'T' AND {sent_to}")
    }  # fmt: skip
    assert sent(path) == expected and expected
    (status,) = store_rows(path, "SELECT status FROM workflow_runs")[0]
    assert (status == "waiting") is waiting, (status, run_id)


@pytest.mark.parametrize(
    "term, parts",
    [("010-2001-0001", ("010", "2001", "0001")), ("01020010001", ("010", "2001", "0001")),
     ("+82 10-2001-0001", ("010", "2001", "0001")), ("010 2003 0003", ("010", "2003", "0003")),
     ("011-203-0005", ("011", "203", "0005")), ("010-2001-0002", ("010", "2001", "0002"))],
    ids=["dashed", "digits", "e164-spaced", "spaced", "three-digit-middle", "nobody"],
)  # fmt: skip
def test_a_member_with_a_split_phone_is_found_by_that_phone(
    db: str, reader: str, tmp_path: Path, term: str, parts: tuple[str, str, str]
) -> None:
    """BREAK 5 (fixed): a phone term matched each part of `mobile1`/`mobile2`/`mobile3`
    (`predicates.split_phones`), in every spelling; before, no branch found such a member."""
    wb, _ = connect(reader, tmp_path)
    fields = {**SHOP_FIELDS, **{p: F(p, role="text", searchable=True)
                                for p in ("mobile1", "mobile2", "mobile3")}}  # fmt: skip
    with wb:
        wb.mappings.save("shop_member", {**SHOP_BY_MAIL, "fields": fields})
        found = {r["member_id"] for r in wb.search("shop_member", term).raw_rows}
    one, two, three = parts
    assert found == keys(db, f"SELECT member_id FROM shop_member WHERE mobile1 = '{one}' "
                             f"AND mobile2 = '{two}' AND mobile3 = '{three}'")  # fmt: skip
    assert found or term == "010-2001-0002"


def test_a_split_phone_with_a_null_part_is_found_by_nobody_s_number(
    reader: str, tmp_path: Path
) -> None:
    """A NULL part (`e2`: 010 / NULL / 0005) is never matched by a whole number, and the
    member holding the whole number (`e1`) is found alone."""
    wb, _ = connect(reader, tmp_path)
    fields = {**SHOP_FIELDS, **{p: F(p, role="text", searchable=True)
                                for p in ("mobile1", "mobile2", "mobile3")}}  # fmt: skip
    with wb:
        wb.mappings.save("shop_trio", {**SHOP_BY_MAIL, "fields": fields})
        found = {r["member_id"] for r in wb.search("shop_trio", "010-3005-0005").raw_rows}
        shared = {r["member_id"] for r in wb.search("shop_trio", "010-3001-0001").raw_rows}
    assert found == {"e1"} and shared == {"a1", "a2", "a3"}


def test_a_shared_split_phone_that_another_member_refused_is_held_back(
    db: str, reader: str, tmp_path: Path
) -> None:
    wb, path = connect(reader, tmp_path)
    with wb:
        wb.mappings.save("shop_pair", SPLIT)
        wb.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
        target = {"sql": SPLIT_SQL.replace("shop_member", "shop_pair"), "recipient": "hp"}
        # the preview counts what the run holds back, with the run's own refusal read
        held = src(db, f"SELECT COUNT(*) FROM shop_pair m WHERE m.sms_agree = 'T' AND EXISTS "
                       f"(SELECT 1 FROM shop_pair o WHERE {HP.format(p='o.')} = "
                       f"{HP.format(p='m.')} AND o.sms_agree <> 'T')")[0][0]  # fmt: skip
        assert wb.targets.preview(target).quality["marketing_opt_out"] == held == 1
        run(wb, target, {"template": "세일"})
    refused = {
        str(hp) for (hp,) in src(db, "SELECT CONCAT_WS('-', mobile1, mobile2, mobile3) FROM "
                                     "shop_pair WHERE sms_agree <> 'T'")
    }  # fmt: skip
    assert sent(path) == {"lee03": [e164(3)]}, refused


def trio_expected(db: str, night: bool) -> dict[str, list[str]]:
    """Root's answer: members saying a clear yes ('T') whose joined number no member of the
    table refused (at night: night consent too), the number valid (11 digits)."""
    m, o = HP.format(p="m."), HP.format(p="o.")
    refused = "o.sms_agree <> 'T'" + (" OR o.night_agree <> 'T'" if night else "")
    own = "m.sms_agree = 'T'" + (" AND m.night_agree = 'T'" if night else "")
    rows = src(db, f"SELECT m.member_id, {m} FROM shop_trio m WHERE {own} "
                   f"AND CHAR_LENGTH(REPLACE({m}, '-', '')) = 11 AND NOT EXISTS (SELECT 1 FROM "
                   f"shop_trio o WHERE o.member_id <> m.member_id AND {o} = {m} AND ({refused}))")  # fmt: skip
    return {str(k): ["+82" + str(hp).replace("-", "")[1:]] for k, hp in rows}


@pytest.mark.parametrize(
    "now, quiet, night",
    [(DAY, "wait", False), (NIGHT, "exclude", True), (NIGHT, "wait", True)],
    ids=["day", "night-exclude", "night-wait"],
)
def test_a_number_three_members_share_with_mixed_consent_and_null_parts(
    db: str, reader: str, tmp_path: Path, now: datetime, quiet: str, night: bool
) -> None:
    """BREAK 6's fix attacked: a number held by yes / no / unclear, one whose other holder
    said no at night only (23:00 with night consent), NULL parts (CONCAT_WS skips them, so
    `NULL-3004-0004` is another number than d1's and its refusal holds nobody back), the
    parts qualified by an alias."""
    wb, path = connect(reader, tmp_path)
    sql = (f"SELECT m.member_id, m.name, {HP.format(p='m.')} AS hp, m.sms_agree, m.night_agree "
           "FROM shop_trio m")  # fmt: skip
    with wb:
        wb.mappings.save("shop_trio", SPLIT)
        wb.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
        run(wb, {"sql": sql, "recipient": "hp"}, {"template": "세일", "quiet_hours": quiet}, now)
    expected, got = trio_expected(db, night), sent(path)
    # b1 and b2 share a number both said yes for by day: messaged once (once per recipient)
    numbers = sorted(n for ns in got.values() for n in ns)
    assert numbers == sorted({n for ns in expected.values() for n in ns}) and numbers
    assert set(got) <= set(expected)
    assert set(expected) == ({"c1", "d1", "e1"} if night else {"b1", "b2", "c1", "d1", "e1"})
    assert {k for k, r in skipped(path).items() if "share" in r or "another" in r} >= (
        {"a1"} if not night or quiet == "exclude" else set()
    ), skipped(path)


def test_a_saved_query_returning_a_key_twice_is_refused_with_nothing_sent(
    reader: str, tmp_path: Path
) -> None:
    """A join that returns each member once per holder of their number (a1 three times):
    refused in one line (the key repeats), nothing sent, the refusal read never reached."""
    wb, path = connect(reader, tmp_path)
    sql = (f"SELECT m.member_id, m.name, {HP.format(p='m.')} AS hp, m.sms_agree, m.night_agree "
           "FROM shop_trio m JOIN shop_trio x ON x.mobile3 = m.mobile3")  # fmt: skip
    with wb:
        wb.mappings.save("shop_trio", SPLIT)
        wb.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
        with pytest.raises(HybridwbError) as refused:
            run(wb, {"sql": sql, "recipient": "hp"}, {"template": "세일"})
    assert "repeats" in one_line(refused.value)
    assert sent(path) == {}


@pytest.mark.parametrize(
    "hp",
    [
        f"REPLACE({HP.format(p='shop_trio.')}, '-', '')",
        "(SELECT MAX(mobile3) FROM shop_pair)",
        "CONCAT_WS('-', x.mobile1, x.mobile2, x.mobile3)",
    ],
    ids=["an-expression", "a-subquery", "another-tables-parts"],
)
def test_a_saved_query_recipient_the_refusal_read_cannot_see_is_refused_with_nothing_sent(
    reader: str, tmp_path: Path, hp: str
) -> None:
    """The refusal read walks the audience table: a recipient it cannot compute from that
    table's row is refused in one line, nothing sent, nothing skipped (an informational
    message by the same query still goes: exempt)."""
    wb, path = connect(reader, tmp_path)
    sql = (f"SELECT shop_trio.member_id, shop_trio.name, {hp} AS hp, shop_trio.sms_agree, "
           "shop_trio.night_agree FROM shop_trio JOIN shop_pair x ON x.member_id = 'kim01'")  # fmt: skip
    with wb:
        wb.mappings.save("shop_trio", SPLIT)
        wb.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
        with pytest.raises(HybridwbError) as refused:
            run(wb, {"sql": sql, "recipient": "hp"}, {"template": "세일"})
    text = one_line(refused.value)
    assert "refusals" in text and "CONCAT_WS" in text and "Nothing was sent" in text, text
    assert "3001" not in text
    assert sent(path) == {} and skipped(path) == {}


# -- WordPress / WooCommerce: what a user needs lives in key/value rows ----------------------
WP_SQL = (
    "SELECT u.ID, u.display_name, "
    "MAX(CASE WHEN m.meta_key = 'billing_phone' THEN m.meta_value END) AS phone, "
    "MAX(CASE WHEN m.meta_key = 'marketing_sms' THEN m.meta_value END) AS agree "
    "FROM wp_users u JOIN wp_usermeta m ON m.user_id = u.ID GROUP BY u.ID, u.display_name"
)


def wp_mapping(wb: hybridwb.Workbench) -> dict[str, Any]:
    """`suggest`'s wp_users (an email audience), made an SMS one: the phone comes from the
    saved query (`"recipient": "phone"`)."""
    mapping = wb.mappings.suggest("wp_users").model_dump(mode="json", exclude_unset=True)
    assert (mapping["key"], mapping["recipient"]) == ("ID", "user_email")
    mapping["fields"]["display_name"]["displayName"] = "이름"
    return {**mapping, "channel": "sms"}


def test_woocommerce_billing_phones_from_usermeta_by_a_saved_query(
    db: str, reader: str, tmp_path: Path
) -> None:
    """Held: an informational message to each user once, at their `billing_phone` (never
    the `shipping_phone` of the same rows)."""
    wb, path = connect(reader, tmp_path)
    with wb:
        wb.mappings.save("wp_users", wp_mapping(wb))
        run(wb, {"sql": WP_SQL, "recipient": "phone", "exclude_opt_out": False},
            {"content": "{{ 이름 }}님, 주문 안내입니다."})  # fmt: skip
    billing = src(
        db, "SELECT user_id, meta_value FROM wp_usermeta WHERE meta_key = 'billing_phone'"
    )
    assert sent(path) == {str(u): ["+82" + str(p).replace("-", "")[1:]] for u, p in billing}


def test_woocommerce_a_saved_query_advertisement_without_a_mapped_consent_is_refused(
    reader: str, tmp_path: Path
) -> None:
    """BREAK 7 (answered by a refusal): the consent is a usermeta row, so wp_users maps
    none and an advertisement by a saved query excluded every user with no word of a way
    forward. A consent column of the query itself is not taken (the refusal read of the
    other holders of a number walks the audience table, where there is none; a query that
    left the refusers out would message a number they refused; a view cannot be the
    audience, having no unique key): refused in one line naming the way (a table with one
    row per customer), nothing sent, nothing skipped."""
    wb, path = connect(reader, tmp_path)
    with wb:
        wb.mappings.save("wp_users", wp_mapping(wb))
        wb.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
        with pytest.raises(HybridwbError) as refused:
            run(wb, {"sql": f"SELECT * FROM ({WP_SQL}) t WHERE agree = 'yes'",
                     "recipient": "phone"}, {"template": "세일"})  # fmt: skip
    text = one_line(refused.value)
    assert (
        "one row per customer" in text and "marketing_sms" in text and "Nothing was sent" in text
    ), text
    assert sent(path) == {} and skipped(path) == {}


WP_TABLE = (
    "CREATE TABLE IF NOT EXISTS wp_sms (ID bigint(20) unsigned NOT NULL PRIMARY KEY, "
    "display_name varchar(250) NOT NULL, phone varchar(40) NULL, agree varchar(10) NULL)"
)


def test_woocommerce_an_advertisement_reaches_the_users_whose_usermeta_says_yes(
    db: str, reader: str, tmp_path: Path
) -> None:
    """BREAK 7's way forward: a table with one row per user (the DBA's, filled here by root
    from usermeta), mapped as the audience with `agree` ('yes'/'no') as consent: the users
    whose usermeta says yes are advertised to at their billing phone, once; not the other."""
    src(db, WP_TABLE)
    src(db, f"REPLACE INTO wp_sms {WP_SQL.replace('JOIN', 'LEFT JOIN')}")
    src(db, "COMMIT")
    wb, path = connect(reader, tmp_path)
    fields = {"ID": F("회원번호", role="id"), "display_name": F("이름", role="name"),
              "phone": F("휴대폰", role="phone"), "agree": F("수신동의", "boolean", "consent")}  # fmt: skip
    with wb:
        wb.mappings.save("wp_sms", {"displayName": "고객", "key": "ID", "audience": True,
                                    "recipient": "phone", "channel": "sms", "consent": "agree",
                                    "fields": fields})  # fmt: skip
        wb.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
        run(wb, {"table": "wp_sms"}, {"template": "세일"})
    said = src(db, "SELECT b.user_id, b.meta_value FROM wp_usermeta a JOIN wp_usermeta b ON "
                   "b.user_id = a.user_id AND b.meta_key = 'billing_phone' WHERE "
                   "a.meta_key = 'marketing_sms' AND a.meta_value = 'yes'")  # fmt: skip
    assert sent(path) == {str(u): ["+82" + str(p).replace("-", "")[1:]] for u, p in said}
    assert set(sent(path)) == {"1", "3"}
