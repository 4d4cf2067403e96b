"""A target preview counts the targets an advertising run at night holds (DESIGN 5, 7).

At night (21:00-08:00 KST) an advertising run holds a target without night consent of its
own, and one whose recipient another row of the audience refused night consent for
(`workflows.refusals`): "wait" leaves it pending until 08:00, "exclude" skips it under a
quiet-hours reason. The preview counted the marketing exclusions (stop 43) but not these,
so it promised a night run more messages than it sent. Now `quality['night_hold']` is
that count, decided by the run's own steps over the preview's rows (`refusals.held_at_night`:
the freeze's `suppressing`, the batch's `candidates`, `policies.decide` at night), read
with the marketing count's one refusal read and limits; None with `night_hold_unknown`
past them, None with `night_hold_not_counted` for an informational message or an audience
without a night-consent field. Source: fresh MariaDB databases (rows checked by pymysql);
oracle: what a real run at night (`now=NIGHT`) left pending or skipped, read from the
SQLite / PostgreSQL store by sqlite3 / psycopg.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import hybridwb
from hybridwb.targets import quality as q
from hybridwb.workflows import policies, refusals
from tests._stores import migrated_sqlite, store_sql
from tests.test_attack_once_round2 import DAY, NIGHT, src
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

#: the reasons an "exclude" run at night skips a target for night consent under
QUIET = (policies.QUIET, policies.UNCLEAR_NIGHT_CONSENT, policies.SHARED_NO_NIGHT_CONSENT)
C1 = ("c1", "마", "010-5555-0002", "c1@example.com", "Y", "Y")  # consents to both: sent

#: code, name, mobile, email, marketing consent, night consent; the keys the test's own
#: reading of the rules says a run at night holds
CASES: dict[str, tuple[list[tuple[Any, ...]], set[str]]] = {
    # its own night consent a clear no, or unclear
    "own-refusal": (
        [
            C1,
            ("o1", "가", "010-6666-0001", "o1@example.com", "Y", "N"),
            ("o2", "나", "010-6666-0002", "o2@example.com", "Y", "maybe"),
            ("o3", "다", "010-6666-0003", "o3@example.com", "Y", None),
        ],
        {"o1", "o2", "o3"},
    ),
    # s2 refused night consent for the phone s1 holds in another spelling: both held
    "another-holder": (
        [
            C1,
            ("s1", "라", "010-7777-0001", "s1@example.com", "Y", "Y"),
            ("s2", "마", "+82-10-7777-0001", "s2@example.com", "Y", "N"),
            ("s3", "바", "010-7777-0003", "s3@example.com", "Y", "Y"),
        ],
        {"s1", "s2"},
    ),
    # t2 refused marketing (a clear no: outside the target filter) for t1's phone: t1 is
    # excluded at the freeze, so no night run holds it though its night consent is a no;
    # k1's own marketing consent is unclear: excluded before its night consent is read
    "marketing-first": (
        [
            C1,
            ("t1", "사", "010-7777-0002", "t1@example.com", "Y", "N"),
            ("t2", "아", "01077770002", "t2@example.com", "N", "N"),
            ("k1", "자", "010-7777-0004", "k1@example.com", "maybe", "N"),
            ("h1", "차", "010-7777-0005", "h1@example.com", "Y", "N"),
        ],
        {"h1"},
    ),
    # no deliverable phone (none, truncated, shared truncated with a night refuser): the
    # run excludes them before consent; h2 is held
    "no-deliverable-phone": (
        [
            C1,
            ("x1", "카", None, "x1@example.com", "Y", "N"),
            ("x2", "타", "010-1234", "x2@example.com", "Y", "N"),
            ("y1", "파", "0101234", "y1@example.com", "Y", "Y"),
            ("h2", "하", "010-7777-0006", "h2@example.com", "Y", "N"),
        ],
        {"h2"},
    ),
}


def run_at_night(
    wb: hybridwb.Workbench,
    definition: dict[str, Any],
    *,
    quiet_hours: str = "wait",
    template: str = "세일",
) -> Any:
    wf = wb.workflows.create(
        f"night-{uuid.uuid4().hex[:6]}",
        target_config=definition,
        message_config={"template": template, "quiet_hours": quiet_hours},
    )
    run = wb.store.runs.create(wf["id"], {})
    wb.workflows.process(wf["id"], run["id"], progress=False, now=NIGHT)
    return run["id"]


def _ids(run_id: Any) -> tuple[str, str]:
    return str(run_id), uuid.UUID(str(run_id)).hex


def pending(store: str, run_id: Any) -> set[str]:
    """The frozen targets a run neither messaged nor excluded (held), by direct SQL."""
    rows = store_sql(
        store,
        "SELECT t.target_key FROM run_targets t WHERE CAST(t.run_id AS TEXT) IN (%s, %s) "
        "AND NOT EXISTS (SELECT 1 FROM send_records r WHERE r.run_id = t.run_id "
        "AND r.target_key = t.target_key) "
        "AND NOT EXISTS (SELECT 1 FROM run_skips s WHERE s.run_id = t.run_id "
        "AND s.target_key = t.target_key)",
        _ids(run_id),
    )
    return {str(k) for (k,) in rows}


def quiet_skips(store: str, run_id: Any) -> set[str]:
    """The targets an "exclude" run skipped for night consent, by direct SQL."""
    marks = ", ".join(["%s"] * len(QUIET))
    rows = store_sql(
        store,
        "SELECT target_key FROM run_skips WHERE CAST(run_id AS TEXT) IN (%s, %s) "
        f"AND reason IN ({marks})",
        (*_ids(run_id), *QUIET),
    )
    return {str(k) for (k,) in rows}


@pytest.mark.parametrize("case", CASES)
def test_the_preview_counts_the_targets_a_run_at_night_holds(
    source: Callable[..., str],
    any_store: str,  # noqa: F811
    case: str,
) -> None:
    """The preview (made by day: what a run at night would do) counts the targets a real
    advertising run at night leaves pending for night consent, read from the store."""
    rows, expected = CASES[case]
    db = members_source(source, rows)
    wb = workbench(db, any_store, mapping())
    try:
        preview = wb.targets.preview({"table": "members"}, now=DAY)
        run_id = run_at_night(wb, {"table": "members"})
    finally:
        wb.close()
    assert len(src(db, "SELECT code FROM members")) == len(rows)
    assert pending(any_store, run_id) == expected
    assert preview.quality["night_hold"] == len(expected)
    assert "night_hold_unknown" not in preview.quality
    assert "night_hold_not_counted" not in preview.quality
    assert f"'night_hold': {len(expected)}" in repr(preview)  # the result object shows it


def test_a_night_refusal_outside_the_definition_holds_its_sharer(
    source: Callable[..., str],
    any_store: str,  # noqa: F811
) -> None:
    """u2 is not a target (the definition leaves it out) but refused night consent for the
    phone u1 holds: the run reads the whole audience table's refusals, and so does the
    preview; an "exclude" run skips u1 under the shared reason, counted alike."""
    rows = [
        C1,
        ("u1", "가", "010-8888-0001", "u1@example.com", "Y", "Y"),
        ("u2", "나", "01088880001", "u2@example.com", "Y", "N"),
    ]
    definition = {"table": "members", "where": {"field": "code", "op": "ne", "value": "u2"}}
    db = members_source(source, rows)
    wb = workbench(db, any_store, mapping())
    try:
        preview = wb.targets.preview(definition, now=DAY)
        run_id = run_at_night(wb, definition, quiet_hours="exclude")
    finally:
        wb.close()
    assert quiet_skips(any_store, run_id) == {"u1"}
    assert preview.count == 2 and preview.quality["night_hold"] == 1


def test_every_case_at_once_in_exclude_mode(
    source: Callable[..., str],
    any_store: str,  # noqa: F811
) -> None:
    """All the cases in one audience (keys kept apart), and MEMBERS' n1/n2 pair: an
    "exclude" run at night skips exactly the held targets under the three quiet reasons."""
    rows = [r for rows, _ in CASES.values() for r in rows if r[0] != "c1"] + MEMBERS
    expected = set().union(*(held for _, held in CASES.values())) | {"n1", "n2"}
    db = members_source(source, rows)
    wb = workbench(db, any_store, mapping())
    try:
        preview = wb.targets.preview({"table": "members"}, now=DAY)
        run_id = run_at_night(wb, {"table": "members"}, quiet_hours="exclude")
    finally:
        wb.close()
    assert quiet_skips(any_store, run_id) == expected
    assert preview.quality["night_hold"] == len(expected)


def test_an_informational_message_has_no_night_count(
    source: Callable[..., str],
    any_store: str,  # noqa: F811
) -> None:
    """An informational run at night holds nobody (night consent is an advertising rule):
    the preview for one gives no count, and says why; the same audience's advertisement
    holds its night refusers."""
    rows, expected = CASES["own-refusal"]
    db = members_source(source, rows)
    wb = workbench(db, any_store, mapping())
    try:
        info = wb.targets.preview({"table": "members"}, now=DAY, advertising=False)
        ad = wb.targets.preview({"table": "members"}, now=DAY)
        run_id = run_at_night(wb, {"table": "members"}, template="안내")
    finally:
        wb.close()
    assert pending(any_store, run_id) == set()
    assert info.quality["night_hold"] is None
    assert info.quality["night_hold_not_counted"] == q.NIGHT_INFORMATIONAL
    assert "night_hold_unknown" not in info.quality
    assert ad.quality["night_hold"] == len(expected)


def test_an_audience_without_a_night_consent_field_has_no_night_count(
    source: Callable[..., str],
    any_store: str,  # noqa: F811
) -> None:
    """No night-consent field mapped: a run at night holds every target it would message
    (what the reason says), so counting the night column's refusals would be wrong; the
    preview gives no count and says why."""
    rows, _ = CASES["own-refusal"]
    plain = mapping()
    del plain["nightConsent"]
    db = members_source(source, rows)
    wb = workbench(db, any_store, plain)
    try:
        preview = wb.targets.preview({"table": "members"}, now=DAY)
        run_id = run_at_night(wb, {"table": "members"})
    finally:
        wb.close()
    consenting = {str(k) for (k,) in src(db, "SELECT code FROM members WHERE ok = 'Y'")}
    assert pending(any_store, run_id) == consenting == {"c1", "o1", "o2", "o3"}
    assert preview.quality["night_hold"] is None
    assert preview.quality["night_hold_not_counted"] == q.NIGHT_NO_FIELD
    assert "map nightConsent" in q.NIGHT_NO_FIELD and "\n" not in q.NIGHT_NO_FIELD


def test_the_night_count_costs_no_statement_of_its_own(
    source: Callable[..., str], tmp_path: Path
) -> None:
    """The night holds are decided over the rows and the refusals the marketing count
    already read: a preview counting them sends as many statements as one that does not."""
    rows, _ = CASES["another-holder"]
    store = migrated_sqlite(tmp_path / "store.db").render_as_string()
    wb = workbench(members_source(source, rows), store, mapping())
    try:
        counts = []
        for advertising in (False, True):
            before = len(wb.querylog)
            got = wb.targets.preview(
                {"table": "members"}, now=DAY, cache_ttl=None, advertising=advertising
            )
            counts.append(len(wb.querylog) - before)
    finally:
        wb.close()
    assert got.quality["night_hold"] == 2
    assert counts[0] == counts[1] > 0


@pytest.mark.parametrize("bad", ["yes", 1, None])
def test_advertising_must_be_true_or_false(
    source: Callable[..., str], tmp_path: Path, bad: Any
) -> None:
    store = migrated_sqlite(tmp_path / "store.db").render_as_string()
    wb = workbench(members_source(source, [C1]), store, mapping())
    try:
        with pytest.raises(hybridwb.ValidationError, match="advertising must be True or False"):
            wb.targets.preview({"table": "members"}, advertising=bad)
    finally:
        wb.close()


# -- the preview's limits: the marketing count's, exactly ----------------------------------------
def _filler() -> list[tuple[Any, ...]]:
    """`refusals.WINDOW` rows after CASES' own in key order, consenting to both, of unique
    phones; the last one refuses night consent for c1's phone."""
    filler = [
        (f"z{i:05d}", "채", f"010-6{i // 10_000:03d}-{i % 10_000:04d}", f"z{i}@x.com", "Y", "Y")
        for i in range(refusals.WINDOW)
    ]
    filler[-1] = (*filler[-1][:2], "010-5555-0002", filler[-1][3], "Y", "N")
    return filler


def test_a_preview_that_may_not_walk_the_audience_says_the_night_count_is_not_known(
    source: Callable[..., str], tmp_path: Path
) -> None:
    """On an audience table of a window or more, without allow_scan the night count is
    None and one line says why and what to do (as the marketing count's); with
    allow_scan=True it walks the table as the run does and finds the last row's night
    refusal of c1's phone: c1 held, besides o1-o3 (z19999 itself is past the preview's
    sample of the first 10,000 targets, which its counts are over, as its note says). The
    widget's row says the same."""
    import hybridwb.widgets as widgets
    from hybridwb.widgets._targets import NIGHT_AT_SEND

    rows, _ = CASES["own-refusal"]
    big = members_source(source, rows + _filler())
    store = migrated_sqlite(tmp_path / "store.db").render_as_string()
    wb = workbench(big, store, mapping())
    try:
        limited = wb.targets.preview({"table": "members"}, now=DAY)
        walked = wb.targets.preview({"table": "members"}, allow_scan=True, now=DAY)
        widget = widgets.target_preview(wb, {"table": "members"})
        widget.run()
        shown = dict(widget.panel.excluded), widget.panel.exclusions.value
    finally:
        wb.close()
    assert src(big, "SELECT count(*) FROM members") == [(len(rows) + refusals.WINDOW,)]
    assert limited.quality["night_hold"] is None
    message = limited.quality["night_hold_unknown"]
    assert message == q.UNKNOWN_NIGHT_HOLD
    assert "\n" not in message and "not known" in message and "allow_scan=True" in message
    assert "night_hold_not_counted" not in limited.quality
    assert walked.quality["night_hold"] == 4  # o1, o2, o3 (own), c1 (z19999's)
    assert walked.quality["note"].startswith("statistics over the first 10,000")
    assert shown[0][NIGHT_AT_SEND] == "not known (allow_scan=True counts it)"
    assert "야간 동의 없음" in shown[1]


def test_the_widget_and_the_cli_show_the_night_count(
    source: Callable[..., str], tmp_path: Path
) -> None:
    """The target preview widget has a row for it beside the consent row; `hybridwb
    targets preview` prints it, and with --informational says it is not counted."""
    from click.testing import CliRunner

    import hybridwb.widgets as widgets
    from hybridwb import cli
    from hybridwb.widgets._targets import NIGHT_AT_SEND
    from tests.test_attack_once_round2 import source_url

    rows, expected = CASES["another-holder"]
    db = members_source(source, rows)
    store = migrated_sqlite(tmp_path / "store.db").render_as_string()
    wb = workbench(db, store, mapping())
    try:
        widget = widgets.target_preview(wb, {"table": "members"})
        widget.run()
        shown = dict(widget.panel.excluded)
    finally:
        wb.close()
    assert shown[NIGHT_AT_SEND] == len(expected) == 2
    (tmp_path / "target.json").write_text(json.dumps({"table": "members"}), encoding="utf-8")
    env = {"HYBRIDWB_SOURCE_URL": source_url(db), "HYBRIDWB_STORE_URL": store}
    runner = CliRunner()
    with runner.isolated_filesystem(temp_dir=tmp_path):
        Path("target.json").write_text(json.dumps({"table": "members"}), encoding="utf-8")
        ad = runner.invoke(cli.main, ["targets", "preview", "target.json"], env=env)
        info = runner.invoke(
            cli.main, ["targets", "preview", "target.json", "--informational"], env=env
        )
    assert ad.exit_code == info.exit_code == 0, ad.output + info.output
    assert any(line.split() == ["night_hold", "2"] for line in ad.output.splitlines())
    assert "night_hold_not_counted" in info.output and "informational" in info.output
