"""At night, an unclear night-consent value is excluded under its own reason, not as "no".

Night consent is read as day consent is (`consent.consent_of`: a DECIMAL 1.0 or '동의' is
yes, 'maybe' or 0.5 unclear). In "exclude" mode an unclear value was counted as `quiet hours
(no night consent)`, so a source full of values nobody can read looked like customers who
had said no; it now has its own reason, one of `CONSENT_REASONS`. In "wait" mode it waits for
the day, like a no: by day night consent is not needed. Source: a fresh MariaDB database;
oracle: direct SQL on the SQLite store against the values the test put in the source.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

import hybridwb
from hybridwb.workflows import policies
from hybridwb.workflows.report import render_html
from tests.conftest import mariadb_maker
from tests.test_attack_once_round2 import (
    AD,
    DAY,
    NIGHT,
    oracle,
    people,
    records,
    run_once,
    skips,
    source_url,
)

#: customer -> (night consent as text, as DECIMAL(3,1)); marketing consent is yes for all
VALUES = {
    "n0": ("Y", "1.0"),
    "n1": ("N", "0.0"),
    "n2": ("maybe", "0.5"),
    "n3": ("동의", "2.0"),
    "n4": (None, None),
    "n5": ("1.0", "1.5"),
}
YES, NO, UNCLEAR = {"n0", "n3"}, {"n1", "n4"}, {"n2", "n5"}


@pytest.fixture
def source() -> Iterator[Callable[..., str]]:
    yield from mariadb_maker("hybridwb_nc")


@pytest.fixture
def store(tmp_path: Any) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


def night_source(source: Callable[..., str]) -> str:
    return source(
        "CREATE TABLE members (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20), "
        "mobile VARCHAR(20), ok TINYINT(1), night_txt VARCHAR(8) NULL, "
        "night_dec DECIMAL(3,1) NULL)",
        rows={
            "members": [
                (k, "회원", f"010-4940-{i:04d}", 1, *v) for i, (k, v) in enumerate(VALUES.items())
            ]
        },
    )


def mapping(column: str) -> dict[str, Any]:
    base = people()
    fields = {
        **base["fields"],
        "ok": {"displayName": "광고동의", "type": "boolean"},
        "night_txt": {"displayName": "야간동의", "type": "string"},
        "night_dec": {"displayName": "야간동의값", "type": "number"},
    }
    return {**base, "audience": True, "consent": "ok", "nightConsent": column, "fields": fields}


def pending(store: str, run_id: Any) -> int:
    """Frozen targets with neither a send record nor an exclusion: waiting."""
    rid = (str(run_id), run_id.hex)
    sql = (
        "SELECT count(*) FROM run_targets t WHERE CAST(t.run_id AS TEXT) IN (?, ?) "
        "AND NOT EXISTS (SELECT 1 FROM send_records r WHERE r.run_id = t.run_id "
        "AND r.target_key = t.target_key) AND NOT EXISTS (SELECT 1 FROM run_skips s "
        "WHERE s.run_id = t.run_id AND s.target_key = t.target_key)"
    )
    return int(oracle(store, sql, rid)[0][0])


@pytest.mark.parametrize("column", ["night_txt", "night_dec"])
def test_an_unclear_night_consent_is_excluded_under_its_own_reason(
    source: Callable[..., str], store: str, column: str
) -> None:
    """At night in "exclude" mode: a send record for exactly the yes values (DECIMAL 1.0
    and 2.0, 'Y', '동의'), the no values counted as quiet hours, the unclear ones under
    their own reason; the report counts both with the consent exclusions."""
    db = night_source(source)
    wb = hybridwb.connect(source=source_url(db), store=store)
    try:
        wb.store.init()
        wb.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
        wb.mappings.save("members", mapping(column))
        wf = wb.workflows.create(
            f"night-{column}",
            target_config={"table": "members"},
            message_config={"template": "세일", "quiet_hours": "exclude"},
        )
        run_id = run_once(wb, wf, now=NIGHT)
        run = wb.store.runs.get(run_id)
    finally:
        wb.close()
    assert {k for k, _ in records(store, run_id)} == YES
    want = {policies.QUIET: len(NO), policies.UNCLEAR_NIGHT_CONSENT: len(UNCLEAR)}
    assert skips(store, run_id) == want
    assert policies.UNCLEAR_NIGHT_CONSENT in policies.CONSENT_REASONS
    assert run["stats"]["skipped_by_reason"] == want
    html = render_html(wf, run)
    assert re.search(r'class="by-consent">4<', html)
    assert "<td>unclear night consent value (neither yes nor no)</td><td>2</td>" in html


def test_an_unclear_night_consent_waits_for_the_day_in_wait_mode(
    source: Callable[..., str], store: str
) -> None:
    """In "wait" mode an unclear night consent is left pending at night like a no (not
    excluded), and the morning's resume sends to every one of them: by day night consent
    is not needed."""
    db = night_source(source)
    wb = hybridwb.connect(source=source_url(db), store=store)
    try:
        wb.store.init()
        wb.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
        wb.mappings.save("members", mapping("night_txt"))
        wf = wb.workflows.create(
            "night-wait",
            target_config={"table": "members"},
            message_config={"template": "세일", "quiet_hours": "wait"},
        )
        run_id = run_once(wb, wf, now=NIGHT)
        at_night = ({k for k, _ in records(store, run_id)}, skips(store, run_id))
        waiting = pending(store, run_id)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY)
    finally:
        wb.close()
    assert at_night == (YES, {})
    assert waiting == len(NO) + len(UNCLEAR)
    assert {k for k, _ in records(store, run_id)} == set(VALUES)
    assert (skips(store, run_id), pending(store, run_id)) == ({}, 0)
    assert DAY > NIGHT and isinstance(DAY, datetime)


@pytest.mark.parametrize(
    ("night_value", "exclude", "wait"),
    [
        (1, None, None),
        ("동의", None, None),
        (Decimal("1.0"), None, None),  # read as day consent reads it
        (0, policies.QUIET, policies.WAIT),
        (None, policies.QUIET, policies.WAIT),
        ("N", policies.QUIET, policies.WAIT),
        ("maybe", policies.UNCLEAR_NIGHT_CONSENT, policies.WAIT),
        (0.5, policies.UNCLEAR_NIGHT_CONSENT, policies.WAIT),
        (b"\x02", policies.UNCLEAR_NIGHT_CONSENT, policies.WAIT),
    ],
    ids=repr,
)
def test_night_consent_is_decided_by_the_consent_reading(
    night_value: Any, exclude: str | None, wait: str | None
) -> None:
    """`decide` at night, per quiet-hours mode; by day night consent is not read."""
    got = {}
    for mode, now in (("exclude", NIGHT), ("wait", NIGHT), ("day", DAY)):
        rules = policies.Rules(
            "wf", "run", now, policies.SendPolicy(), True, "wait" if mode == "wait" else "exclude"
        )
        candidate = policies.Candidate("a", "+821023456789", consent=1, night_consent=night_value)
        [got[mode]] = policies.decide([candidate], [], rules)
    assert got == {"exclude": exclude, "wait": wait, "day": None}
