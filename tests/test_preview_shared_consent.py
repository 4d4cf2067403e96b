"""A target preview counts the consent exclusions an advertising run makes (DESIGN 7).

`wb.targets.preview(...).quality['marketing_opt_out']` counted only each row's own consent;
an advertising run also excludes a target whose recipient another customer refused
(`workflows.refusals`), so the preview promised more messages than the run sent. Now the
preview reads those refusals with the run's own read: in one statement when the audience
table holds fewer than `refusals.WINDOW` rows, the whole table only with `allow_scan=True`;
otherwise the count is None and `marketing_opt_out_unknown` says so in one line. Source:
fresh MariaDB databases; oracle: the consent exclusions a dry run (and a real run) wrote,
read from the store by sqlite3 / psycopg, and the source's rows by pymysql.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

import hybridwb
from hybridwb.workflows import audience, policies, refusals
from tests._stores import store_sql
from tests.test_attack_once_round2 import AD, DAY, source_url, src
from tests.test_shared_recipient_consent import (
    MEMBERS,
    any_store,  # noqa: F401  (fixtures)
    mapping,
    members_source,
    pg_store,  # noqa: F401
    workbench,
)
from tests.test_shared_recipient_consent import source as source

pytestmark = [pytest.mark.mysql, pytest.mark.postgres]

#: the reasons a day-time advertising run excludes a target for by marketing consent
MARKETING = (policies.NO_CONSENT, policies.UNCLEAR_CONSENT, policies.SHARED_NO_CONSENT)


def consent_exclusions(store: str, run_id: Any) -> int:
    """The targets the run excluded for marketing consent, by direct SQL on the store."""
    marks = ", ".join(["%s"] * len(MARKETING))
    rows = store_sql(
        store,
        "SELECT count(*) FROM run_skips WHERE CAST(run_id AS TEXT) IN (%s, %s) "
        f"AND reason IN ({marks})",
        (str(run_id), uuid.UUID(str(run_id)).hex, *MARKETING),
    )
    return int(rows[0][0])


def excluded_by_a_run(wb: hybridwb.Workbench, store: str, table: str, *, dry_run: bool) -> int:
    """An advertising run (or dry run) by day over the whole table: its consent exclusions."""
    wf = wb.workflows.create(
        f"ad-{uuid.uuid4().hex[:6]}",
        target_config={"table": table},
        message_config={"template": "세일"},
    )
    run = wb.store.runs.create(wf["id"], {}, dry_run=dry_run)
    wb.workflows.process(wf["id"], run["id"], progress=False, now=DAY, dry_run=dry_run)
    return consent_exclusions(store, run["id"])


def related_source(source: Callable[..., str]) -> tuple[str, dict[str, dict[str, Any]]]:
    """Recipient and consent in a to-one related table: client 20's contact refused the
    phone client 10's contact holds in another spelling; client 40's consent is unclear."""
    db = source(
        "CREATE TABLE contacts (cid INT PRIMARY KEY, tel VARCHAR(30), agree VARCHAR(8) NULL)",
        "CREATE TABLE clients (no INT PRIMARY KEY, name VARCHAR(20), cid INT, KEY (cid))",
        rows={
            "contacts": [
                (1, "010-3333-0001", "Y"),
                (2, "+82 10 3333 0001", "N"),
                (3, "01033330003", "Y"),
                (4, "01033330004", "maybe"),
            ],
            "clients": [(10, "가", 1), (20, "나", 2), (30, "다", 3), (40, "라", 4)],
        },
    )
    contacts = {
        "displayName": "연락처",
        "key": "cid",
        "fields": {
            "cid": {"displayName": "번호", "type": "number", "role": "id"},
            "tel": {"displayName": "전화", "type": "string", "role": "phone"},
            "agree": {"displayName": "동의", "type": "string"},
        },
    }
    clients = {
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
    }
    return db, {"contacts": contacts, "clients": clients}


def scenario(
    name: str, source: Callable[..., str], store: str
) -> tuple[hybridwb.Workbench, str, int]:
    """A workbench over the scenario's source, its target table, and the consent
    exclusions the test expects by its own reading of the rows it wrote."""
    if name == "related":
        db, maps = related_source(source)
        wb = hybridwb.connect(source=source_url(db), store=store)
        wb.store.init()
        wb.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
        for table, m in maps.items():
            wb.mappings.save(table, m)
        # 10: shares 20's refused phone; 40: unclear (20 is filtered out: a clear no)
        assert src(db, "SELECT agree FROM contacts WHERE cid IN (2, 4) ORDER BY cid") == [
            ("N",),
            ("maybe",),
        ]
        return wb, "clients", 2
    if name == "email":
        rows = [r if r[0] != "a2" else (*r[:3], "KIM@example.com ", "N", "Y") for r in MEMBERS]
        db = members_source(source, rows)
        # a1, e1 share a2's refused mailbox; b2, b3 unclear
        return workbench(db, store, mapping("email")), "members", 4
    db = members_source(source)
    # a1, b1 share a refused phone (a2's, b2's and b3's); b2, b3 unclear
    return workbench(db, store, mapping()), "members", 4


@pytest.mark.parametrize("case", ["sms", "email", "related"])
def test_the_preview_counts_the_consent_exclusions_a_dry_run_makes(
    source: Callable[..., str],
    any_store: str,  # noqa: F811
    case: str,
) -> None:
    """A preview with the default limits (the audience fits one window) counts the
    targets an advertising dry run excludes for marketing consent, their own refusals and
    those of another row holding their recipient, through related tables too."""
    wb, table, expected = scenario(case, source, any_store)
    try:
        preview = wb.targets.preview({"table": table}, now=DAY)
        dry = excluded_by_a_run(wb, any_store, table, dry_run=True)
    finally:
        wb.close()
    assert dry == expected
    assert preview.quality["marketing_opt_out"] == dry
    assert "marketing_opt_out_unknown" not in preview.quality


def test_the_preview_counts_the_consent_exclusions_a_real_run_writes(
    source: Callable[..., str],
    any_store: str,  # noqa: F811
) -> None:
    """The same against a real run's exclusions (run_skips, read by the store's driver)."""
    wb, table, _ = scenario("sms", source, any_store)
    try:
        preview = wb.targets.preview({"table": table}, allow_scan=True, now=DAY)
        real = excluded_by_a_run(wb, any_store, table, dry_run=False)
    finally:
        wb.close()
    assert preview.quality["marketing_opt_out"] == real == 4


def test_the_target_widget_shows_the_consent_exclusions_or_that_they_are_not_known(
    source: Callable[..., str],
    tmp_path: Any,
) -> None:
    """The target preview widget lists, besides the opt-outs its filter leaves out (a2),
    the targets an advertising run excludes for consent (4, as the dry run: the test
    above), and on a table of a window or more that this count is not known."""
    import hybridwb.widgets as widgets
    from hybridwb.widgets._targets import CONSENT_AT_SEND
    from tests._stores import migrated_sqlite

    small = members_source(source)
    large = members_source(source, MEMBERS + _filler())
    shown = {}
    for db in (small, large):
        store = migrated_sqlite(tmp_path / f"{db}.db").render_as_string()
        wb = workbench(db, store, mapping())
        try:
            widget = widgets.target_preview(wb, {"table": "members"})
            widget.run()
            shown[db] = dict(widget.panel.excluded), widget.panel.exclusions.value
        finally:
            wb.close()
    assert shown[small][0]["opt-out (수신 거부)"] == 1  # a2: a clear no
    assert shown[small][0][CONSENT_AT_SEND] == 4
    assert shown[large][0][CONSENT_AT_SEND] == "not known (allow_scan=True counts it)"
    assert "광고 동의 없음" in shown[large][1] and "not known" in shown[large][1]


# -- the preview's limits: a table of a window or more is walked only with allow_scan ---------
@pytest.fixture
def big(source: Callable[..., str]) -> str:
    """MEMBERS and `refusals.WINDOW` consenting rows of unique phones after them in key
    order, the last of which refuses c1's phone: found only by walking past the first
    window (and outside the preview's sample of the first 10,000 targets)."""
    return members_source(source, MEMBERS + _filler())


def _filler() -> list[tuple[Any, ...]]:
    """`refusals.WINDOW` consenting rows after MEMBERS in key order, of unique phones (010-6000-0000
    on); the last one refuses c1's phone."""
    filler = [
        (f"z{i:05d}", "채", f"010-6{i // 10_000:03d}-{i % 10_000:04d}", f"z{i}@x.com", "Y", "Y")
        for i in range(refusals.WINDOW)
    ]
    filler[-1] = (*filler[-1][:2], "010-5555-0002", filler[-1][3], "N", "Y")
    return filler


def test_a_preview_that_may_not_walk_the_audience_says_the_count_is_not_known(
    big: str, tmp_path: Any
) -> None:
    """Without allow_scan the preview reads no refusal past one window: on a table of
    more rows its consent count is None, and one line says why and what to do; the rest
    of the preview is there. With allow_scan=True it walks the whole table as the run does
    and finds the last row's refusal (c1 too: 5, where the first window alone gives 4)."""
    from tests._stores import migrated_sqlite

    store = migrated_sqlite(tmp_path / "store.db").render_as_string()
    wb = workbench(big, store, mapping())
    try:
        limited = wb.targets.preview({"table": "members"}, now=DAY)
        walked = wb.targets.preview({"table": "members"}, allow_scan=True, now=DAY)
    finally:
        wb.close()
    assert src(big, "SELECT count(*) FROM members") == [(len(MEMBERS) + refusals.WINDOW,)]
    quality = limited.quality
    assert quality["marketing_opt_out"] is None
    message = quality["marketing_opt_out_unknown"]
    assert "\n" not in message and "not known" in message and "allow_scan=True" in message
    assert limited.count == walked.count == len(MEMBERS) - 1 + refusals.WINDOW - 1
    assert quality["checked_rows"] == 10_000 and quality["duplicate_recipients"] >= 1
    # a1, b1 (a2's, b2's and b3's phones), b2, b3 (unclear), c1 (z19999's phone)
    assert walked.quality["marketing_opt_out"] == 5
    assert "marketing_opt_out_unknown" not in walked.quality


@pytest.mark.parametrize(
    ("window", "windows", "enough"),
    [(len(MEMBERS) + 1, 1, True), (len(MEMBERS), 1, False), (6, 2, True), (5, 2, False)],
    ids=["fits-one", "one-short", "fits-two", "two-short"],
)
def test_the_bounded_refusal_read_refuses_a_table_past_its_windows(
    source: Callable[..., str], tmp_path: Any, window: int, windows: int, enough: bool
) -> None:
    """`refusals.read(windows=n)`: a table its n windows hold is read whole (the refusals
    the unbounded read finds); one that needs more raises `TooLong` (what the preview
    reports as not known) without reading the rows of the window past them: `windows`
    probes and one read fewer, by the query log. 11 rows: windows of 12 or 6+6 hold them;
    11 (its next window empty) and 5+5 do not."""
    from tests._stores import migrated_sqlite

    db = members_source(source)
    store = migrated_sqlite(tmp_path / "store.db").render_as_string()
    wb = workbench(db, store, mapping())
    try:
        aud = audience.audience_for(wb.mappings, {"table": "members"})
        walked = refusals.read(wb.targets, aud, recipient=None, now=DAY, window=2)
        before = len(wb.querylog)
        if enough:
            got = refusals.read(
                wb.targets, aud, recipient=None, now=DAY, window=window, windows=windows
            )
        else:
            with pytest.raises(refusals.TooLong):
                refusals.read(
                    wb.targets, aud, recipient=None, now=DAY, window=window, windows=windows
                )
            got = walked
        statements = len(wb.querylog) - before
    finally:
        wb.close()
    assert src(db, "SELECT count(*) FROM members") == [(len(MEMBERS),)]
    assert statements == 2 * windows - (0 if enough else 1)  # each window: probe, read
    assert (
        got.consent
        == walked.consent
        == {
            "+821012345678": "a2",
            "+821055550001": refusals.MANY,
        }
    )


def test_a_preview_of_an_audience_no_run_can_message_still_counts_its_own_consent(
    source: Callable[..., str], tmp_path: Any
) -> None:
    """A definition naming its own recipient on a mapping with none (one not marked
    `audience` may lack it): no run can message that audience (refused, saying to map a
    recipient), so no other row's refusal is read, and the preview counts the targets'
    own consent as before (b2, b3) instead of failing."""
    from tests._stores import migrated_sqlite

    plain = mapping()
    del plain["recipient"]
    plain["audience"] = False
    plain["fields"]["mobile"] = {"displayName": "휴대폰", "type": "string"}
    store = migrated_sqlite(tmp_path / "store.db").render_as_string()
    wb = workbench(members_source(source), store, plain)
    try:
        preview = wb.targets.preview({"table": "members", "recipient": "mobile"}, now=DAY)
    finally:
        wb.close()
    assert preview.quality["marketing_opt_out"] == 2
