"""Attack round 53, "the sample shop is not the world": customer schemas nobody here designed.

Source: one MariaDB database for the module, read by the SELECT-only account (and, for the
column grants, by an account holding SELECT on three columns of one table); stores: SQLite
and the real PostgreSQL. Oracles: the same data read as root with pymysql, the store's
`send_records` / `run_skips` read with sqlite3 / psycopg, and what each test's rows say.

BREAKS (all five fixed):

- BREAK 1 (fixed): a consent flag kept as text ('Y'/'N' CHAR, ENUM('N','Y')) mapped with
  the type `boolean` (the editor offers it; `save` only warns of the type): the target's
  consent filter compared it `!= 0`, MariaDB read every 'Y' as the number 0, and every
  consenting customer was left out of the frozen set unseen (8 members, 4 said yes, 1 was
  messaged: the one whose flag was '1'; the preview said 1). The filter now follows the
  column's type as the server states it (`targets.sql.truthy`), in a table target and a
  saved query alike.
- BREAK 2 (fixed): a target condition `{"field": "vip", "op": "eq", "value": true}` on the
  same kind of column chose nobody, and `eq false` chose everyone, the 'Y's included (the
  VIPs a "not VIP" campaign must leave out were messaged). A boolean condition on a column
  the server states text now reads it as consent is read: 'Y'/'yes'/'1'... or
  'N'/'no'/'0'...
- BREAK 3 (fixed): a search term, keyword target or condition value holding a character
  the column's character set cannot hold (a Korean name on a `latin1` table, an emoji on
  a `utf8mb3` or `euckr` one, all common in old Korean shops) was a `QueryError` "Illegal mix
  of collations ... relate or compare columns of one collation, or ask the DBA": advice
  about a schema that is fine. No row can hold such a text, so now the branch or condition
  matches no row (`ne` / `not_in`: every row with a value), and the rest of the search
  still finds what it finds (`search.predicates.holds`, the column's `CHARACTER_SET_NAME`
  read by discovery).
- BREAK 5 (fixed): a row picked in the search widget becomes `code in [picked keys]`; on
  a table without a primary key or a view, whose key the server compares by its collation,
  one pick chose every row equal to it: picking 'a😀' messaged 'a😎' too (utf8mb4_general_ci
  makes every emoji one letter), 'k1' also 'K1' and 'k1 '; the preview counted them. A
  condition `eq`/`in` (`ne`/`not_in`) on an audience key the schema does not state unique is
  now also compared by its UTF-8 bytes (`targets.sql.Builder._exactly`).
- BREAK 4 (fixed, `tests/test_latest_recipient.py`): a person whose phones live only in a
  one-to-many address table (several addresses per person, the latest by `updated_at`)
  could not be the audience: a recipient had to be a to-one path, so `addresses.phone` was
  refused at save, and a search of the person by an address's phone found no one. The
  recipient may now end through a one-to-many relation with an `orderBy` (the latest row's
  field, `Selection._latest`), and a search follows a declared one-to-many relation to its
  phones and emails (`Selection.exists`).

What held (tests below pin it): split first/last names with the phone and the consent in a
to-one address table, two people sharing a phone there (an ad: the one who said yes is
held back because the other did not; information: each once), a NULL last name (the
message is skipped as missing, never "None님"); emoji and Korean keys of a table without
a primary key (utf8mb4_general_ci makes every emoji equal); keys BIGINT UNSIGNED past 2^63,
a NO PAD collation ('a', 'a ', 'A  ' are three people), a CHAR(36) UUID, a DATETIME(6)
key; reserved-word tables and columns (`order`, `key`, `select`, `group`) with a VIRTUAL
generated recipient; a NULL key under a UNIQUE index, a key repeated in a table without a
primary key, an ENUM key: each refused in one line with nothing sent; a to-one relation
onto a column that is only part of a composite unique index, refused; column-level
grants: a mapping naming a column the account cannot read is refused at save, a file saved
by a fuller account fails the run in one line with nothing sent, and a mapping of the
readable columns messages everyone once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pymysql
import pytest
from sqlalchemy.engine import URL

import hybridwb
from hybridwb import widgets
from hybridwb.errors import HybridwbError, ValidationError
from hybridwb.search.predicates import holds
from tests._stores import fresh_pg_database
from tests._stores import store_sql as oracle
from tests.conftest import MYSQL_HOST, MYSQL_PORT, _admin, mariadb_db
from tests.test_attack_once_round2 import DAY, source_url, src
from tests.test_attack_round30_debug_rows import F
from tests.test_attack_round30_dotted_columns import one_line

pytestmark = [pytest.mark.mysql]

AD = "(광고) 하이브리드몰\n{{ 이름 }}님, 봄 세일!\n무료수신거부 080-123-4567"
INFO = "{{ 이름 }}님, 이번 달 안내입니다."


def phone(i: int) -> str:
    return f"010-{2000 + i:04d}-{i:04d}"


def e164(i: int) -> str:
    return f"+8210{2000 + i:04d}{i:04d}"


YN = ["Y", "N", "y", "N", "Y ", None, "1", "0"]  # 1, 3, 5 and 7 said yes
DDL = (
    "CREATE TABLE m_yn (code INT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20), ad CHAR(2))",
    "CREATE TABLE m_enum (code INT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20), "
    "ad ENUM('N','Y'))",
    "CREATE TABLE m_vip (code INT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20), vip CHAR(1))",
    # an old shop: latin1, split names, indexed for search
    "CREATE TABLE legacy (code INT PRIMARY KEY, first_name VARCHAR(20), last_name VARCHAR(20), "
    "mobile VARCHAR(20), email VARCHAR(40), KEY (first_name), KEY (last_name, first_name), "
    "KEY (mobile), KEY (email)) DEFAULT CHARSET=latin1",
    "CREATE TABLE u3 (code INT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20), KEY (name)) "
    "DEFAULT CHARSET=utf8mb3",
    "CREATE TABLE kr (code INT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20), KEY (name)) "
    "DEFAULT CHARSET=euckr",
    # split names; the phone and the consent live in the address (people 2 and 3 share one)
    "CREATE TABLE address (aid INT PRIMARY KEY, phone VARCHAR(20), ad_yn CHAR(1))",
    "CREATE TABLE person (pid INT PRIMARY KEY, first_name VARCHAR(20), "
    "last_name VARCHAR(20) NULL, aid INT, FOREIGN KEY (aid) REFERENCES address (aid))",
    # no primary key: emoji keys (one value to utf8mb4_general_ci), a repeated key
    "CREATE TABLE emo (code VARCHAR(10), name VARCHAR(20), mobile VARCHAR(20))",
    "CREATE TABLE dup (code INT, name VARCHAR(20), mobile VARCHAR(20))",
    "CREATE TABLE nullkey (id INT PRIMARY KEY, code VARCHAR(10) NULL UNIQUE, name VARCHAR(20), "
    "mobile VARCHAR(20))",
    "CREATE TABLE k_enum (code ENUM('z','a','m') PRIMARY KEY, name VARCHAR(20), "
    "mobile VARCHAR(20))",
    "CREATE TABLE k_big (code BIGINT UNSIGNED PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20))",
    "CREATE TABLE k_nopad (code VARCHAR(10) COLLATE utf8mb4_general_nopad_ci PRIMARY KEY, "
    "name VARCHAR(20), mobile VARCHAR(20))",
    "CREATE TABLE k_uuid (code CHAR(36) PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20))",
    "CREATE TABLE k_dt (code DATETIME(6) PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20))",
    "CREATE TABLE `order` (`key` INT PRIMARY KEY, `select` VARCHAR(20), `Phone` VARCHAR(20), "
    "norm VARCHAR(20) AS (REPLACE(`Phone`, '-', '')) VIRTUAL, `group` TINYINT(1))",
    "CREATE TABLE addr2 (aid INT PRIMARY KEY, pid INT, kind CHAR(1), phone VARCHAR(20), "
    "UNIQUE KEY (pid, kind))",
    # keys the schema does not state unique, equal under the collation but not the same
    "CREATE TABLE ci_keys (code VARCHAR(10), name VARCHAR(20), mobile VARCHAR(20))",
    "CREATE TABLE shop_a (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20))",
    "CREATE TABLE shop_b (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20))",
    "CREATE TABLE shop_c (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20))",
    "CREATE VIEW both_shops AS SELECT * FROM shop_a UNION ALL SELECT * FROM shop_b "
    "UNION ALL SELECT * FROM shop_c",
    # the phones only in a to-many address table: person 1 moved (two rows), 2 did not
    "CREATE TABLE cust (code INT PRIMARY KEY, name VARCHAR(20))",
    "CREATE TABLE cust_addr (aid INT PRIMARY KEY, code INT NOT NULL, phone VARCHAR(20), "
    "updated_at DATETIME, FOREIGN KEY (code) REFERENCES cust (code))",
    "CREATE TABLE grant_me (code INT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20), "
    "ad TINYINT(1), secret VARCHAR(20))",
)
UUIDS = [str(uuid.UUID(int=i * 12345678901234567)) for i in range(1, 6)]
ROWS: dict[str, list[tuple[Any, ...]]] = {
    "m_yn": [(i, f"회원{i}", phone(i), v) for i, v in enumerate(YN, 1)],
    "m_enum": [(i, f"회원{i}", phone(i), v) for i, v in enumerate(["Y", "N", "Y", None, "N"], 1)],
    "m_vip": [(i, f"회원{i}", phone(i), v) for i, v in enumerate(["Y", "N", "y", "N", "Y"], 1)],
    "legacy": [
        (1, "JANE", "DOE", phone(1), "jane@example.com"),
        (2, "JOHN", "SMITH", phone(2), "john@example.com"),
        (3, "Zoë", "KIM", phone(3), "zoe@example.com"),
    ],
    "u3": [(1, "김민준", phone(1)), (2, "이서연", phone(2))],
    "kr": [(1, "김민준", phone(1)), (2, "이서연", phone(2))],
    "address": [(1, phone(1), "Y"), (2, phone(2), "Y"), (3, phone(2), "N"), (4, phone(4), "y"),
                (5, phone(5), "Y"), (6, phone(6), "Y"), (7, phone(6), "Y")],
    "person": [(1, "지훈", "백", 1), (2, "민준", "김", 2), (3, "서연", "이", 3),
               (4, "🎉하은", "최", 4), (5, "도윤", None, 5), (6, "예은", "정", 6),
               (7, "수아", "강", 7)],
    "emo": [("a😀", "회원1", phone(1)), ("a😎", "회원2", phone(2)), ("가", "회원3", phone(3)),
            ("b", "회원4", phone(4))],
    "dup": [(1, "회원1", phone(1)), (2, "회원2", phone(2)), (2, "다른사람", phone(9)),
            (3, "회원3", phone(3))],
    "nullkey": [(1, "a", "회원1", phone(1)), (2, None, "회원2", phone(2)),
                (3, None, "회원3", phone(3))],
    "k_enum": [("z", "회원1", phone(1)), ("a", "회원2", phone(2)), ("m", "회원3", phone(3))],
    "k_big": [(k, f"회원{i}", phone(i)) for i, k in enumerate([2**64 - 1, 2**63, 2**63 - 1, 0], 1)],
    "k_nopad": [(k, f"회원{i}", phone(i)) for i, k in enumerate(["a", "a ", "A  ", "b", "B\t"], 1)],
    "k_uuid": [(u, f"회원{i}", phone(i)) for i, u in enumerate(UUIDS, 1)],
    "k_dt": [(datetime(2026, 1, 1, 0, 0, 0, i), f"회원{i}", phone(i)) for i in range(1, 5)],
    "order": [(1, "회원1", phone(1), None, 1), (2, "회원2", None, None, 0),
              (3, "회원3", phone(3), None, 1)],
    "addr2": [(1, 1, "H", phone(1)), (2, 1, "W", phone(11))],
    "grant_me": [(i, f"회원{i}", phone(i), i % 2, "비밀") for i in range(1, 5)],
    "ci_keys": [("a", "회원1", phone(1)), ("A ", "회원2", phone(2)), ("b", "회원3", phone(3))],
    "shop_a": [("k1", "회원1", phone(1)), ("k2", "회원2", phone(2))],
    "shop_b": [("K1", "회원3", phone(3))],
    "shop_c": [("k1 ", "회원4", phone(4))],
    "cust": [(1, "회원1"), (2, "회원2")],
    "cust_addr": [(1, 1, phone(1), datetime(2025, 1, 1)), (2, 1, phone(11), datetime(2026, 1, 1)),
                  (3, 2, phone(2), datetime(2025, 6, 1))],
}  # fmt: skip


@pytest.fixture(scope="module")
def db() -> Iterator[str]:
    yield from mariadb_db("hybridwb_r53", *DDL, rows=ROWS)


@pytest.fixture
def pg_store() -> Iterator[str]:
    for url in fresh_pg_database("hybridwb_r53", migrated=True):
        yield url.render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 's.db'}"
    return str(request.getfixturevalue("pg_store"))


def people(key_type: str = "number", **fields: Any) -> dict[str, Any]:
    return {
        "displayName": "회원",
        "key": "code",
        "recipient": "mobile",
        "fields": {
            "code": F("번호", key_type, "id"),
            "name": F("이름", role="name", searchable=True),
            "mobile": F("휴대폰", role="phone", searchable=True),
            **fields,
        },
    }


def connect(db: str, store: str, url: str | None = None) -> hybridwb.Workbench:
    wb = hybridwb.connect(source=url or source_url(db), store=store)
    wb.store.init()
    return wb


def run(wb: hybridwb.Workbench, target: dict[str, Any], content: str = INFO) -> Any:
    """A workflow of `target` run to its end in process (the notebook's call), at 10:00."""
    from hybridwb.platform.campaigns import Campaigns

    if content == AD and not any(t["name"] == "세일" for t in wb.templates.list()):
        wb.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
    message = {"template": "세일"} if content == AD else {"content": content}
    wf = wb.workflows.create(f"w{uuid.uuid4().hex[:6]}", target_config=target,
                             message_config=message)  # fmt: skip
    created = wb.store.runs.create(wf["id"], {})
    Campaigns(wb.store.backend).start_state(created["id"], "test:1", "manual")
    wb.workflows.process(wf["id"], created["id"], progress=False, batch_size=2, now=DAY)
    return created["id"]


def sent(store: str, run_id: Any = None) -> dict[str, list[str]]:
    """{target key: [recipient, ...]} of the store's send records, read directly."""
    out: dict[str, list[str]] = {}
    for key, to in oracle(store, "SELECT target_key, recipient FROM send_records"):
        out.setdefault(str(key), []).append(str(to))
    return out


def skipped(store: str) -> dict[str, str]:
    return {str(k): str(r) for k, r in oracle(store, "SELECT target_key, reason FROM run_skips")}


# -- BREAK 1: a text consent flag mapped as boolean ---------------------------------------------
@pytest.mark.parametrize(
    "table, ftype, yes",
    [("m_yn", "boolean", {"1", "3", "5", "7"}), ("m_yn", "number", {"1", "3", "5", "7"}),
     ("m_enum", "boolean", {"1", "3"}), ("m_yn", "string", {"1", "3", "5", "7"})],
    ids=["char-as-boolean", "char-as-number", "enum-as-boolean", "char-as-string"],
)  # fmt: skip
def test_a_yn_consent_mapped_as_boolean_messages_exactly_those_who_said_yes(
    db: str, tmp_path: Path, table: str, ftype: str, yes: set[str]
) -> None:
    """BREAK 1 (fixed): `ad != 0` on 'Y' is false in MariaDB: the 'Y's were never frozen.
    Before: char-as-boolean and char-as-number sent only to 7 (its flag is '1'),
    enum-as-boolean froze everyone with a value and counted the 'N's as exclusions."""
    store = f"sqlite:///{tmp_path / 's.db'}"
    mapping = {**people(ad=F("광고동의", ftype, "consent")), "audience": True, "consent": "ad"}
    with connect(db, store) as wb:
        wb.mappings.save(table, mapping)
        assert wb.targets.preview({"table": table}).count == len(yes)
        run(wb, {"table": table}, AD)
    said = {str(c) for c, v in src(db, f"SELECT code, ad FROM {table}")
            if v is not None and v.strip().upper() in ("Y", "1")}  # fmt: skip
    assert set(sent(store)) == said == yes
    assert all(len(to) == 1 for to in sent(store).values())


def test_a_saved_query_returning_a_yn_consent_mapped_as_boolean_is_filtered_by_its_text(
    db: str, tmp_path: Path
) -> None:
    """BREAK 1 (fixed), a saved query: its consent column is typed by the probe's read."""
    store = f"sqlite:///{tmp_path / 's.db'}"
    mapping = {**people(ad=F("광고동의", "boolean", "consent")), "audience": True, "consent": "ad"}
    with connect(db, store) as wb:
        wb.mappings.save("m_yn", mapping)
        run(wb, {"sql": "SELECT code, name, mobile, ad FROM m_yn WHERE code < 6"}, AD)
    assert set(sent(store)) == {"1", "3", "5"}


def test_a_consent_through_a_to_one_address_with_split_names_and_a_shared_phone(
    db: str, store: str
) -> None:
    """BREAK 1 (fixed) through a relation, on SQLite and PostgreSQL stores: the consent
    `address.ad_yn` is CHAR 'Y'/'N' mapped as boolean. Who is right: 1 and 4 said yes
    ('Y', 'y') at their own numbers; 2 said yes but shares the number with 3, who said no
    (held back, counted); 5's last name is NULL (the message needs 성: skipped as missing);
    6 and 7 both said yes at one number (one message). Before: nobody was messaged."""
    address = {
        "displayName": "주소",
        "key": "aid",
        "fields": {"aid": F("번호", "number", "id"), "phone": F("전화", role="phone", searchable=True),
                   "ad_yn": F("동의", "boolean")},
    }  # fmt: skip
    person = {
        "displayName": "사람",
        "key": "pid",
        "audience": True,
        "recipient": "address.phone",
        "consent": "address.ad_yn",
        "fields": {"pid": F("번호", "number", "id"),
                   "first_name": F("이름", role="first_name", searchable=True),
                   "last_name": F("성", role="last_name", searchable=True),
                   "aid": F("주소", "number", "reference")},
        "relations": [{"table": "address", "localField": "aid", "foreignField": "aid",
                       "kind": "many-to-one"}],
    }  # fmt: skip
    content = "(광고) 하이브리드몰\n{{ 성 }}{{ 이름 }}님, 봄 세일!\n무료수신거부 080-123-4567"
    with connect(db, store) as wb:
        wb.mappings.save("address", address)
        wb.mappings.save("person", person)
        wb.templates.create("세일", content, advertising=True, sender="하이브리드몰")
        assert [r["pid"] for r in wb.search("person", "김민준").raw_rows] == [2]
        assert sorted(r["pid"] for r in wb.search("person", phone(2)).raw_rows) == [2, 3]
        from hybridwb.platform.campaigns import Campaigns

        wf = wb.workflows.create("p", target_config={"table": "person"},
                                 message_config={"template": "세일"})  # fmt: skip
        created = wb.store.runs.create(wf["id"], {})
        Campaigns(wb.store.backend).start_state(created["id"], "test:1", "manual")
        wb.workflows.process(wf["id"], created["id"], progress=False, batch_size=2, now=DAY)
    got = sent(store)
    assert sorted(got) in (["1", "4", "6"], ["1", "4", "7"]), got
    assert got["1"] == [e164(1)] and got["4"] == [e164(4)]
    assert [to for k, tos in got.items() for to in tos if k in ("6", "7")] == [e164(6)]
    why = skipped(store)
    assert "another customer" in why["2"] and "성" in why["5"], why
    texts = [t for (t,) in oracle(store, "SELECT content FROM send_records")]
    assert "백지훈님" in texts[0] + texts[1] + texts[2] and not any("None" in t for t in texts)


# -- BREAK 2: a boolean condition on a 'Y'/'N' column ------------------------------------------
@pytest.mark.parametrize(
    "op, value, expected",
    [("eq", True, {"1", "3", "5"}), ("eq", False, {"2", "4"}), ("ne", True, {"2", "4"}),
     ("ne", False, {"1", "3", "5"})],
    ids=["eq-true", "eq-false", "ne-true", "ne-false"],
)  # fmt: skip
def test_a_boolean_condition_on_a_yn_column_chooses_the_rows_that_say_so(
    db: str, tmp_path: Path, op: str, value: bool, expected: set[str]
) -> None:
    """BREAK 2 (fixed): `vip = 1` read every 'Y' as 0: eq-true chose nobody, eq-false
    chose all five (the VIPs 1, 3, 5 included)."""
    store = f"sqlite:///{tmp_path / 's.db'}"
    with connect(db, store) as wb:
        wb.mappings.save("m_vip", {**people(vip=F("VIP", "boolean")), "audience": True})
        where = {"field": "vip", "op": op, "value": value}
        assert wb.targets.preview({"table": "m_vip", "where": where}).count == len(expected)
        run(wb, {"table": "m_vip", "where": where})
    vips = {str(c) for (c,) in src(db, "SELECT code FROM m_vip WHERE UPPER(vip) = 'Y'")}
    assert set(sent(store)) == expected
    assert (set(sent(store)) == vips) == (value is (op == "eq"))


# -- BREAK 3: a text the column's character set cannot hold -------------------------------------
LEGACY = {
    "displayName": "옛고객",
    "key": "code",
    "audience": True,
    "recipient": "mobile",
    "fields": {"code": F("번호", "number", "id", searchable=True),
               "first_name": F("이름", role="first_name", searchable=True),
               "last_name": F("성", role="last_name", searchable=True),
               "mobile": F("휴대폰", role="phone", searchable=True),
               "email": F("메일", role="email", searchable=True)},
}  # fmt: skip


@pytest.mark.parametrize(
    "table, term, found",
    [("legacy", "김민준", []), ("legacy", "김", []), ("legacy", "JANE 김", []),
     ("legacy", "김@example.com", []), ("legacy", "JANE DOE", [1]), ("legacy", "Zoë", [3]),
     ("u3", "김🎉", []), ("u3", "김민준", [1]), ("kr", "김🎉", []), ("kr", "𝓐𝓑𝓒", []),
     ("kr", "김민준", [1])],
    ids=["latin1-korean-name", "latin1-korean-syllable", "latin1-half-korean", "latin1-email",
         "latin1-latin", "latin1-accent", "utf8mb3-emoji", "utf8mb3-korean", "euckr-emoji",
         "euckr-math-letters", "euckr-korean"],
)  # fmt: skip
def test_a_term_the_column_cannot_hold_finds_no_one(
    db: str, tmp_path: Path, table: str, term: str, found: list[int]
) -> None:
    """BREAK 3 (fixed): before, every case with [] answer was a QueryError "Illegal mix of
    collations" telling the analyst to change the schema."""
    with connect(db, f"sqlite:///{tmp_path / 's.db'}") as wb:
        wb.mappings.save(table, LEGACY if table == "legacy" else {**people(), "audience": True})
        assert [r["code"] for r in wb.search(table, term, allow_scan=True).raw_rows] == found


@pytest.mark.parametrize(
    "where, sql",
    [({"field": "first_name", "op": "eq", "value": "지훈"}, "FALSE"),
     ({"field": "first_name", "op": "prefix", "value": "지"}, "FALSE"),
     ({"field": "first_name", "op": "in", "value": ["JANE", "지훈"]}, "first_name = 'JANE'"),
     ({"field": "first_name", "op": "ne", "value": "지훈"}, "first_name IS NOT NULL"),
     ({"field": "first_name", "op": "not_in", "value": ["JANE", "지훈"]},
      "first_name <> 'JANE'"),
     ({"field": "first_name", "op": "not_in", "value": ["지훈"]}, "first_name IS NOT NULL")],
    ids=["eq", "prefix", "in", "ne", "not-in", "not-in-none-held"],
)  # fmt: skip
def test_a_condition_on_a_text_the_column_cannot_hold_is_answered_not_refused(
    db: str, tmp_path: Path, where: dict[str, Any], sql: str
) -> None:
    """BREAK 3 (fixed), target conditions and keyword targets on the latin1 table: the
    preview counts what root counts; the run messages those."""
    store = f"sqlite:///{tmp_path / 's.db'}"
    expected = {str(c) for (c,) in src(db, f"SELECT code FROM legacy WHERE {sql}")}
    with connect(db, store) as wb:
        wb.mappings.save("legacy", LEGACY)
        assert wb.targets.preview({"table": "legacy", "where": where}).count == len(expected)
        assert wb.targets.preview({"table": "legacy", "keyword": "김지훈"}).count == 0
        run(wb, {"table": "legacy", "where": where}, "{{ 이름 }}님 안내")
    assert set(sent(store)) == expected


@pytest.mark.parametrize(
    "charset, text, held",
    [("latin1", "Zoë €", True), ("latin1", "김", False), ("ascii", "é", False),
     ("utf8mb3", "김민준", True), ("utf8mb3", "🎉", False), ("euckr", "김ㅋ", True),
     ("euckr", "😀", False), ("utf8mb4", "🎉", True), (None, "🎉", True), ("big5", "김", True)],
    ids=["latin1-cp1252", "latin1-korean", "ascii-accent", "utf8mb3-korean", "utf8mb3-emoji",
         "euckr-korean", "euckr-emoji", "utf8mb4", "no-charset", "unknown-charset"],
)  # fmt: skip
def test_holds_answers_what_a_character_set_can_store(
    charset: str | None, text: str, held: bool
) -> None:
    """Pure: an unknown set holds anything (the server decides, as before)."""
    assert holds(charset, text) is held


# -- held: keys nobody here designed ------------------------------------------------------------
@pytest.mark.parametrize(
    "table, key_type",
    [("emo", "string"), ("k_big", "number"), ("k_nopad", "string"), ("k_uuid", "string"),
     ("k_dt", "datetime")],
    ids=["emoji-keys-no-primary-key", "bigint-unsigned", "no-pad-collation", "uuid-text",
         "datetime6"],
)  # fmt: skip
def test_unusual_keys_are_each_messaged_once(
    db: str, tmp_path: Path, table: str, key_type: str
) -> None:
    store = f"sqlite:///{tmp_path / 's.db'}"
    mapping = people(key_type)
    with connect(db, store) as wb:
        wb.mappings.save(table, mapping if table == "emo" else {**mapping, "audience": True})
        run(wb, {"table": table})
    rows = src(db, f"SELECT code, mobile FROM {table}")
    got = sent(store)
    assert len(got) == len(rows) and all(len(v) == 1 for v in got.values()), got
    phones = sorted(p.replace("-", "")[1:] for _, p in rows)
    assert sorted(v[0].removeprefix("+82") for v in got.values()) == phones


@pytest.mark.parametrize(
    "table, mapping, words",
    [("dup", people(), "repeats"), ("nullkey", {**people("string"), "audience": True}, "NULL"),
     ("k_enum", {**people("string"), "audience": True}, "ENUM")],
    ids=["repeated-key-no-primary-key", "null-key-under-unique", "enum-key"],
)  # fmt: skip
def test_a_key_that_cannot_be_served_exactly_is_refused_in_one_line_with_nothing_sent(
    db: str, tmp_path: Path, table: str, mapping: dict[str, Any], words: str
) -> None:
    store = f"sqlite:///{tmp_path / 's.db'}"
    with connect(db, store) as wb:
        wb.mappings.save(table, mapping)
        with pytest.raises(HybridwbError) as refused:
            run(wb, {"table": table})
    assert words in one_line(refused.value)
    assert sent(store) == {}


def test_reserved_words_and_a_generated_recipient(db: str, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 's.db'}"
    mapping = {
        "displayName": "주문",
        "key": "key",
        "audience": True,
        "recipient": "norm",
        "fields": {"key": F("번호", "number", "id"), "select": F("이름", role="name"),
                   "Phone": F("전화"), "norm": F("전화2", role="phone"),
                   "group": F("그룹", "boolean")},
    }  # fmt: skip
    with connect(db, store) as wb:
        wb.mappings.save("order", mapping)
        run(wb, {"table": "order", "where": {"field": "group", "op": "eq", "value": True}})
    assert sent(store) == {"1": [e164(1)], "3": [e164(3)]}


def test_a_to_one_relation_onto_part_of_a_composite_unique_key_is_refused(
    db: str, tmp_path: Path
) -> None:
    """Person 1 has two rows in `addr2` (home and work): joined to-one, they would be
    messaged twice or at the wrong one."""
    store = f"sqlite:///{tmp_path / 's.db'}"
    addr = {"displayName": "주소", "key": "aid",
            "fields": {"aid": F("번호", "number", "id"), "pid": F("사람", "number"),
                       "phone": F("전화")}}  # fmt: skip
    who = {
        **people(),
        "audience": True,
        "recipient": "addr2.phone",
        "relations": [{"table": "addr2", "localField": "code", "foreignField": "pid",
                       "kind": "many-to-one"}],
    }  # fmt: skip
    with connect(db, store) as wb:
        wb.mappings.save("addr2", addr)
        with pytest.raises(ValidationError) as refused:
            wb.mappings.save("m_vip", who)
            run(wb, {"table": "m_vip"})
    assert "not unique" in one_line(refused.value)
    assert sent(store) == {}


# -- held: column-level SELECT grants -----------------------------------------------------------
@pytest.fixture(scope="module")
def column_reader(db: str) -> Iterator[str]:
    """An account holding SELECT on grant_me's code, name and mobile, and nothing else."""
    user = f"hwb_r53_{uuid.uuid4().hex[:6]}"
    conn: pymysql.Connection = _admin()
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY 'pw53'")
            cur.execute(f"GRANT SELECT (code, name, mobile) ON `{db}`.grant_me TO '{user}'@'%'")
        yield URL.create("mysql+pymysql", username=user, password="pw53", host=MYSQL_HOST,
                         port=MYSQL_PORT, database=db,
                         query={"charset": "utf8mb4"}).render_as_string(hide_password=False)  # fmt: skip
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        conn.close()


GRANTED = {**people(ad=F("광고동의", "boolean", "consent")), "audience": True, "consent": "ad"}


def test_column_grants_a_column_the_account_cannot_read_is_refused_at_save(
    db: str, tmp_path: Path, column_reader: str
) -> None:
    store = f"sqlite:///{tmp_path / 's.db'}"
    with connect(db, store, column_reader) as wb, pytest.raises(ValidationError) as refused:
        wb.mappings.save("grant_me", GRANTED)
    assert "grant_me.fields.ad" in one_line(refused.value)


def test_column_grants_a_mapping_saved_by_a_fuller_account_fails_the_run_sending_nothing(
    db: str, tmp_path: Path, column_reader: str
) -> None:
    store = f"sqlite:///{tmp_path / 's.db'}"
    with connect(db, store) as wb:
        wb.mappings.save("grant_me", GRANTED)
    with connect(db, store, column_reader) as wb, pytest.raises(HybridwbError) as refused:
        run(wb, {"table": "grant_me"}, AD)
    assert "'ad'" in one_line(refused.value)
    assert sent(store) == {}


def test_column_grants_the_readable_columns_message_everyone_once(
    db: str, tmp_path: Path, column_reader: str
) -> None:
    store = f"sqlite:///{tmp_path / 's.db'}"
    with connect(db, store, column_reader) as wb:
        wb.mappings.save("grant_me", {**people(), "audience": True})
        run(wb, {"table": "grant_me"})
    assert sent(store) == {str(i): [e164(i)] for i in range(1, 5)}


# -- BREAK 5: a pick by a key the server compares loosely -------------------------------------
def test_a_row_picked_in_the_search_widget_is_the_only_one_messaged(
    db: str, tmp_path: Path
) -> None:
    """BREAK 5 (fixed): the widget's picks become `code in ['a😀']`; `emo` has no primary
    key and utf8mb4_general_ci makes every emoji one letter, so 'a😎' was messaged too."""
    store = f"sqlite:///{tmp_path / 's.db'}"
    with connect(db, store) as wb:
        wb.mappings.save("emo", people("string"))
        widget = widgets.search(wb, "emo")
        widget.term.value = "회원1"
        (box,) = widget.checks
        assert box.pick == ("emo", "a😀")
        box.value = True
        run(wb, widget.definition())
    assert sent(store) == {"a😀": [e164(1)]}


@pytest.mark.parametrize(
    "table, op, keys, expected",
    [("ci_keys", "in", ["a"], {"a"}), ("ci_keys", "eq", "A ", {"A "}),
     ("both_shops", "in", ["k1", "k2"], {"k1", "k2"}), ("both_shops", "eq", "k1 ", {"k1 "}),
     ("both_shops", "not_in", ["k1"], {"k2", "K1", "k1 "}), ("both_shops", "ne", "K1", {"k1", "k2", "k1 "})],
    ids=["no-pk-in", "no-pk-eq-padded", "view-in", "view-eq-padded", "view-not-in", "view-ne"],
)  # fmt: skip
def test_a_condition_on_a_loosely_compared_key_chooses_exactly_those_keys(
    db: str, tmp_path: Path, table: str, op: str, keys: Any, expected: set[str]
) -> None:
    """BREAK 5 (fixed): `code in ['k1']` on the view chose 'k1', 'K1' and 'k1 ' (three
    people for one key); the preview said 3."""
    store = f"sqlite:///{tmp_path / 's.db'}"
    where = {"field": "code", "op": op, "value": keys}
    with connect(db, store) as wb:
        wb.mappings.save(table, people("string"))
        assert wb.targets.preview({"table": table, "where": where}, allow_scan=True).count == len(
            expected
        )
        run(wb, {"table": table, "where": where})
    assert set(sent(store)) == expected
    every = {r[0] for r in src(db, f"SELECT code FROM {table}")}
    assert expected <= every and all(len(v) == 1 for v in sent(store).values())


# -- BREAK 4 (fixed): phones only in a to-many address table ----------------------------------------------
def test_a_person_whose_phones_live_in_a_to_many_address_table_gets_one_message_at_the_latest(
    db: str, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 's.db'}"
    addresses = {"displayName": "주소", "key": "aid",
                 "fields": {"aid": F("번호", "number", "id"), "code": F("고객", "number"),
                            "phone": F("전화", role="phone", searchable=True),
                            "updated_at": F("수정일", "datetime")}}  # fmt: skip
    cust = {
        "displayName": "고객",
        "key": "code",
        "audience": True,
        "recipient": "addresses.phone",
        "fields": {"code": F("번호", "number", "id"), "name": F("이름", role="name")},
        "relations": [{"table": "cust_addr", "name": "addresses", "localField": "code",
                       "foreignField": "code", "kind": "one-to-many", "orderBy": "updated_at"}],
    }  # fmt: skip
    with connect(db, store) as wb:
        wb.mappings.save("cust_addr", addresses)
        wb.mappings.save("cust", cust)
        assert [r["code"] for r in wb.search("cust", phone(1)).raw_rows] == [1]
        run(wb, {"table": "cust"})
    assert sent(store) == {"1": [e164(11)], "2": [e164(2)]}
