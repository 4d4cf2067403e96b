"""Consent is the recipient's: a phone (or mailbox) one customer refused gets no advertisement.

Consent was judged per customer id. When one phone number, in any spelling, belongs to two
rows of the audience table and one of them refused marketing consent (a clear no, or an
unclear value, which is no consent), an advertising run still sent the other row's
advertisement to that phone, though the holder of the number had refused (정보통신망법
§50). The same for a mailbox on the e-mail channel, and for night consent at night.

Now an advertising run reads, at its freeze, the recipients of every row of the audience
table without a clear yes (through the target's own resolver: recipient and consent may sit
in related tables), and excludes a target whose recipient another such row holds, under
reasons of their own counted with the consent exclusions. Marketing refusals are written
as the target's exclusion before the set is marked frozen; night refusals are kept with
the frozen set (its seq numbers): a resume decides the same, whatever the source says then.
Informational messages are exempt. Source: fresh MariaDB databases; oracle: the store's
rows by sqlite3 / psycopg, the source's by pymysql.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import hybridwb
from hybridwb.errors import InternalError
from hybridwb.workflows import audience, policies, refusals
from hybridwb.workflows.report import render_html
from tests._stores import fresh_pg_database, migrated_sqlite
from tests.conftest import mariadb_maker
from tests.test_attack_once_round2 import (
    AD,
    DAY,
    INFO,
    NIGHT,
    records,
    skips,
    source_url,
    src,
    start,
)

pytestmark = [pytest.mark.mysql, pytest.mark.postgres]

SHARED = policies.SHARED_NO_CONSENT
SHARED_NIGHT = policies.SHARED_NO_NIGHT_CONSENT

#: code, name, mobile (spelled as customers type it), email, marketing consent, night consent
MEMBERS = [
    ("a1", "가", "010-1234-5678", "kim@example.com", "Y", "Y"),
    ("a2", "나", "+82 10 1234 5678", "x1@example.com", "N", "Y"),  # refuses; outside filter
    ("b1", "다", "01055550001", "x2@example.com", "Y", "Y"),
    ("b2", "라", "821055550001", "x3@example.com", "maybe", "Y"),  # unclear: no consent
    ("b3", "타", "010 5555 0001", "x9@example.com", "maybe", "Y"),  # and its own reason
    ("c1", "마", "010-5555-0002", "x4@example.com", "Y", "Y"),  # alone: sent
    ("d1", "바", "010-5555-0003", "x5@example.com", "Y", "Y"),  # d1, d2 both consent:
    ("d2", "사", "01055550003", "x6@example.com", "Y", "Y"),  # one message (duplicate)
    ("n1", "아", "010-7777-0001", "x7@example.com", "Y", "Y"),  # night: n2 shares, no
    ("n2", "자", "+82-10-7777-0001", "x8@example.com", "Y", "N"),
    ("e1", "차", "010-5555-0009", "Kim <KIM@Example.com>", "Y", "Y"),  # email: a2? no, a1
]


@pytest.fixture
def source() -> Iterator[Callable[..., str]]:
    yield from mariadb_maker("hybridwb_sc")


@pytest.fixture
def pg_store() -> Iterator[str]:
    for url in fresh_pg_database("hybridwb_sc", migrated=True):
        yield url.render_as_string(hide_password=False)


@pytest.fixture(params=["postgres", "sqlite"])
def any_store(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    if request.param == "sqlite":
        yield migrated_sqlite(tmp_path / "store.db").render_as_string()
    else:
        yield request.getfixturevalue("pg_store")


def members_source(source: Callable[..., str], rows: list[tuple[Any, ...]] = MEMBERS) -> str:
    return source(
        "CREATE TABLE members (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20), "
        "mobile VARCHAR(30), email VARCHAR(100), ok VARCHAR(8) NULL, night VARCHAR(8) NULL)",
        rows={"members": rows},
    )


def mapping(channel: str = "sms", **extra: Any) -> dict[str, Any]:
    return {
        "displayName": "회원",
        "key": "code",
        "recipient": "mobile" if channel == "sms" else "email",
        "channel": channel,
        "audience": True,
        "consent": "ok",
        "nightConsent": "night",
        "fields": {
            "code": {"displayName": "번호", "type": "string", "role": "id"},
            "name": {"displayName": "이름", "type": "string", "role": "name"},
            "mobile": {"displayName": "휴대폰", "type": "string", "role": "phone"},
            "email": {"displayName": "메일", "type": "string", "role": "email"},
            "ok": {"displayName": "광고동의", "type": "string"},
            "night": {"displayName": "야간동의", "type": "string"},
        },
        **extra,
    }


def workbench(db: str, store: str, table_mapping: dict[str, Any]) -> hybridwb.Workbench:
    wb = hybridwb.connect(source=source_url(db), store=store)
    wb.store.init()
    wb.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
    wb.templates.create("안내", INFO)
    wb.mappings.save("members", table_mapping)
    return wb


def keys(store: str, run_id: Any) -> set[str]:
    return {k for k, _ in records(store, run_id)}


def reasons_by_key(store: str, run_id: Any) -> dict[str, str]:
    from tests._stores import store_sql

    rows = store_sql(
        store,
        "SELECT target_key, reason FROM run_skips WHERE CAST(run_id AS TEXT) IN (%s, %s)",
        (str(run_id), __import__("uuid").UUID(str(run_id)).hex),
    )
    return {str(k): str(r) for k, r in rows}


def ad_workflow(wb: hybridwb.Workbench, name: str, **message: Any) -> dict[str, Any]:
    return wb.workflows.create(
        name, target_config={"table": "members"}, message_config={"template": "세일", **message}
    )


# -- marketing consent: any row holding the recipient refused --------------------------------
@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry-run"])
def test_an_advertisement_skips_a_phone_another_customer_refused(
    source: Callable[..., str], any_store: str, dry_run: bool
) -> None:
    """a2 refused (outside the target filter: never frozen) and b2's consent is unclear;
    each holds another customer's phone in another spelling: a1 and b1 are not messaged,
    under their own reason, counted with the consent exclusions. c1 alone and one of the
    d pair are. The source holds what the test put there (pymysql); a dry run counts the
    same exclusions."""
    db = members_source(source)
    wb = workbench(db, any_store, mapping())
    try:
        wf = ad_workflow(wb, "shared")
        run = wb.store.runs.create(wf["id"], {}, dry_run=dry_run)
        wb.workflows.process(wf["id"], run["id"], progress=False, now=DAY, dry_run=dry_run)
        stats = wb.store.runs.get(run["id"])
    finally:
        wb.close()
    assert src(db, "SELECT ok FROM members WHERE code IN ('a2', 'b2') ORDER BY code") == [
        ("N",),
        ("maybe",),
    ]
    got = reasons_by_key(any_store, run["id"])
    assert got["a1"] == SHARED and got["b1"] == SHARED
    # b2 and b3 refused for each other, and have no clear yes of their own: their own reason
    assert got["b2"] == got["b3"] == policies.UNCLEAR_CONSENT
    assert "a2" not in got  # never a target: the filter left its clear no out
    assert keys(any_store, run["id"]) == (set() if dry_run else {"c1", "d1", "n1", "e1"})
    assert SHARED in policies.CONSENT_REASONS and SHARED_NIGHT in policies.CONSENT_REASONS
    html = render_html(wf, stats)
    # a1, b1 (shared), b2, b3 (unclear) by consent
    assert re.search(r'class="by-consent">4<', html), "consent exclusions not counted"
    assert not re.search(r"\d{4}", SHARED + SHARED_NIGHT)  # no phone in a reason


def test_an_informational_message_is_not_affected(
    source: Callable[..., str], any_store: str
) -> None:
    """Informational messages are exempt: a1 and b1 are messaged as before."""
    db = members_source(source)
    wb = workbench(db, any_store, mapping())
    try:
        wf = wb.workflows.create(
            "info", target_config={"table": "members"}, message_config={"template": "안내"}
        )
        run_id = start(wb, wf)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY)
    finally:
        wb.close()
    assert {"a1", "b1", "c1"} <= keys(any_store, run_id)
    assert SHARED not in skips(any_store, run_id)


def test_a_refusal_in_a_related_table_suppresses_the_sharer(
    source: Callable[..., str], any_store: str
) -> None:
    """Recipient and consent in a to-one related table (`contact.tel`, `contact.agree`):
    two customers' contact rows hold one phone in two spellings, one of them refused; the
    other is not messaged. Nothing in the code names the tables."""
    db = source(
        "CREATE TABLE contacts (cid INT PRIMARY KEY, tel VARCHAR(30), agree TINYINT(1) NULL)",
        "CREATE TABLE clients (no INT PRIMARY KEY, name VARCHAR(20), cid INT, KEY (cid))",
        rows={
            "contacts": [
                (1, "010-3333-0001", 1),
                (2, "+82 10 3333 0001", 0),
                (3, "01033330003", 1),
            ],
            "clients": [(10, "가", 1), (20, "나", 2), (30, "다", 3)],
        },
    )
    wb = hybridwb.connect(source=source_url(db), store=any_store)
    try:
        wb.store.init()
        wb.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
        wb.mappings.save(
            "contacts",
            {
                "displayName": "연락처",
                "key": "cid",
                "fields": {
                    "cid": {"displayName": "번호", "type": "number", "role": "id"},
                    "tel": {"displayName": "전화", "type": "string", "role": "phone"},
                    "agree": {"displayName": "동의", "type": "boolean"},
                },
            },
        )
        wb.mappings.save(
            "clients",
            {
                "displayName": "고객",
                "key": "no",
                "recipient": "contact.tel",
                "channel": "sms",
                "audience": True,
                "consent": "contact.agree",
                "fields": {
                    "no": {"displayName": "번호", "type": "number", "role": "id"},
                    "name": {"displayName": "이름", "type": "string", "role": "name"},
                    "cid": {"displayName": "연락처", "type": "number", "role": "reference"},
                },
                "relations": [
                    {
                        "table": "contacts",
                        "name": "contact",
                        "localField": "cid",
                        "foreignField": "cid",
                        "kind": "many-to-one",
                    }
                ],
            },
        )
        wf = wb.workflows.create(
            "related", target_config={"table": "clients"}, message_config={"template": "세일"}
        )
        run_id = start(wb, wf)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY)
    finally:
        wb.close()
    assert src(db, "SELECT agree FROM contacts WHERE cid = 2") == [(0,)]
    assert keys(any_store, run_id) == {"30"}
    assert reasons_by_key(any_store, run_id) == {"10": SHARED}


def test_an_email_another_customer_refused_gets_no_advertisement(
    source: Callable[..., str], any_store: str
) -> None:
    """The e-mail channel: 'Kim <KIM@Example.com>' is the mailbox a2 refused as
    'kim@example.com' (a1 holds it too): neither a1 nor e1 is mailed."""
    rows = [r if r[0] != "a2" else (*r[:3], "KIM@example.com ", "N", "Y") for r in MEMBERS]
    db = members_source(source, rows)
    wb = workbench(db, any_store, mapping("email"))
    try:
        wf = ad_workflow(wb, "mail")
        run_id = start(wb, wf)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY)
    finally:
        wb.close()
    got = reasons_by_key(any_store, run_id)
    assert got["a1"] == SHARED and got["e1"] == SHARED
    assert "b1" in keys(any_store, run_id)  # its sharer is by phone, not by mailbox
    assert not {"a1", "e1"} & keys(any_store, run_id)


# -- night consent ---------------------------------------------------------------------------
def test_at_night_a_phone_another_customer_refused_night_consent_for_gets_nothing(
    source: Callable[..., str], any_store: str
) -> None:
    """n2 refused night consent and shares n1's phone: at night ("exclude") n1 is not
    messaged, under its own reason; n2 as before (quiet hours)."""
    db = members_source(source)
    wb = workbench(db, any_store, mapping())
    try:
        wf = ad_workflow(wb, "night", quiet_hours="exclude")
        run_id = start(wb, wf)
        wb.workflows.process(wf["id"], run_id, progress=False, now=NIGHT)
    finally:
        wb.close()
    got = reasons_by_key(any_store, run_id)
    assert got["n1"] == SHARED_NIGHT and got["n2"] == policies.QUIET
    assert not {"n1", "n2"} & keys(any_store, run_id)
    assert keys(any_store, run_id) == {"c1", "d1", "e1"}


def test_a_night_refusal_by_another_waits_for_the_day(
    source: Callable[..., str], any_store: str
) -> None:
    """In "wait" mode n1 waits at night (its sharer has no night consent) and is sent by
    day: night consent is a night rule only."""
    db = members_source(source)
    wb = workbench(db, any_store, mapping())
    try:
        wf = ad_workflow(wb, "night-wait", quiet_hours="wait")
        run_id = start(wb, wf)
        wb.workflows.process(wf["id"], run_id, progress=False, now=NIGHT)
        at_night = keys(any_store, run_id)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY)
    finally:
        wb.close()
    assert not {"n1", "n2"} & at_night
    by_day = keys(any_store, run_id)
    assert len({"n1", "n2"} & by_day) == 1  # one message to the one phone
    assert reasons_by_key(any_store, run_id).get("n1", "n2") != SHARED_NIGHT


# -- a resume decides as the freeze did ------------------------------------------------------
def test_a_resume_after_a_crash_decides_the_sharers_as_the_freeze_did(
    source: Callable[..., str], any_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run stops at its first batch, after the freeze; meanwhile a2 now consents and
    n2 now has night consent. The resume (still at night) excludes a1 and n1 as the freeze
    decided: the refusals the set was frozen with, not the source's later values."""
    db = members_source(source)
    wb = workbench(db, any_store, mapping())
    real, calls = audience.fetch, {"n": 0}

    def fetch(*a: Any, **kw: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            src(db, "UPDATE members SET ok = 'Y' WHERE code = 'a2'")
            src(db, "UPDATE members SET night = 'Y' WHERE code = 'n2'")
            raise RuntimeError("the kernel died")
        return real(*a, **kw)

    try:
        wf = ad_workflow(wb, "resume", quiet_hours="exclude")
        run_id = start(wb, wf)
        monkeypatch.setattr(audience, "fetch", fetch)
        with pytest.raises(InternalError, match="unexpected RuntimeError"):
            wb.workflows.process(wf["id"], run_id, progress=False, now=NIGHT)
        before = keys(any_store, run_id)
        wb.workflows.process(wf["id"], run_id, progress=False, now=NIGHT)
    finally:
        wb.close()
    assert before == set()
    assert src(db, "SELECT ok, night FROM members WHERE code IN ('a2', 'n2') ORDER BY code") == [
        ("Y", "Y"),
        ("Y", "Y"),
    ]
    got = reasons_by_key(any_store, run_id)
    assert got["a1"] == SHARED and got["b1"] == SHARED
    assert got["n1"] == SHARED_NIGHT
    assert "n2" in keys(any_store, run_id)  # its own night consent is read by its batch
    assert "a1" not in keys(any_store, run_id) and "n1" not in keys(any_store, run_id)


# -- the read: the whole audience table, in windows of the key -------------------------------
@pytest.mark.parametrize("window", [1, 2, 3, 20_000])
def test_the_refusal_read_finds_every_refusing_recipient_in_any_window(
    source: Callable[..., str], tmp_path: Any, window: int
) -> None:
    """`refusals.read` walks the audience table `window` keys at a time: every window size
    finds the refusing recipients the source holds (pymysql, read by the test's own rule:
    consent not 'Y'), each with its one holder, or `MANY` when several rows refused."""
    db = members_source(source)
    store = migrated_sqlite(tmp_path / "store.db").render_as_string()
    wb = workbench(db, store, mapping())
    try:
        aud = audience.audience_for(wb.mappings, {"table": "members"})
        got = refusals.read(wb.targets, aud, recipient=None, now=DAY, window=window)
    finally:
        wb.close()

    def e164(text: str) -> str:
        digits = re.sub(r"\D", "", text)
        return "+82" + (digits[2:] if digits.startswith("82") else digits[1:])

    def holders(column: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for code, mobile in src(db, f"SELECT code, mobile FROM members WHERE {column} <> 'Y'"):
            phone = e164(mobile)
            out[phone] = code if out.get(phone, code) == code else refusals.MANY
        return out

    assert (
        got.consent
        == holders("ok")
        == {
            "+821012345678": "a2",
            "+821055550001": refusals.MANY,
        }
    )
    assert got.night == holders("night") == {"+821077770001": "n2"}
    assert repr(got) == "Refusals(consent=2 recipients, night=1)"  # no phone in a repr


def test_the_preview_counts_the_consent_exclusions_the_run_makes(
    source: Callable[..., str], tmp_path: Any
) -> None:
    """The preview's `marketing_opt_out` is the run's consent exclusions: their own unclear
    values and the refusals of other rows holding their recipient, read by the run's own
    refusal read (more cases: `test_preview_shared_consent.py`)."""
    db = members_source(source)
    store = migrated_sqlite(tmp_path / "store.db").render_as_string()
    wb = workbench(db, store, mapping())
    try:
        preview = wb.targets.preview({"table": "members"}, allow_scan=True)
    finally:
        wb.close()
    # the run's consent exclusions (test above): a1, b1 (shared), b2, b3 (unclear)
    assert preview.quality["marketing_opt_out"] == 4
