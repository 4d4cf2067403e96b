"""Round 26: attacks on today's consent guarantees (a date or time column is never read as
consent; an unclear night consent is no night consent everywhere it is read).

Two breaks, fixed: a saved query returning a date under the consent's name was checked by
the table column of that name (a YEAR 2021 read as yes); and the definition's consent
filter ignored a consent given by its role. The two-hop relation and the view cast held
(kept as regression tests). Sources are fresh MariaDB databases, stores SQLite files; the
oracle is direct SQL on the store's send_records and run_skips after a run.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import hybridwb
from hybridwb.errors import ValidationError
from tests.conftest import mariadb_maker
from tests.test_attack_once_round2 import AD, DAY, INFO, NIGHT, oracle, people, source_url, start
from tests.test_consent_temporal import written

TABLES = (
    "CREATE TABLE members (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20), "
    "mobile VARCHAR(20), ok TINYINT(1) NULL, night TINYINT(1) NULL, since YEAR NULL, "
    "d DATE NULL)",
)
#: nobody consents (ok = 0, night = 0); everyone signed up in 2021
ROWS = {
    "members": [(f"m{i}", "회원", f"010-4930-{i:04d}", 0, 0, 2021, "2021-03-01") for i in range(3)]
}
FIELDS = {
    "ok": {"displayName": "동의", "type": "boolean"},
    "night": {"displayName": "야간동의", "type": "boolean"},
    "since": {"displayName": "가입연도", "type": "string"},
    "d": {"displayName": "가입일", "type": "date"},
}


@pytest.fixture
def source() -> Iterator[Callable[..., str]]:
    yield from mariadb_maker("hybridwb_a26")


@pytest.fixture
def store(tmp_path: Any) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.mark.parametrize(
    ("select", "named", "now"),
    [
        ("since AS ok, night", ("consent", "YEAR"), DAY),
        ("CAST(d AS DATE) AS ok, night", ("consent", "DATE"), DAY),
        ("1 AS ok, since AS night", ("nightConsent", "YEAR"), NIGHT),
        ("1 AS ok, TIMESTAMP(d) AS night", ("nightConsent", "DATETIME"), NIGHT),
    ],
    ids=["year-as-consent", "cast-date-as-consent", "year-as-night", "timestamp-as-night"],
)
def test_a_saved_query_returning_a_date_as_a_consent_column_is_refused(
    source: Callable[..., str], store: str, select: str, named: tuple[str, str], now: Any
) -> None:
    """The mapping's consent and night consent are yes/no columns (`ok`, `night`: no for
    everyone); a saved query returns a YEAR (2021, read as yes: everyone was messaged) or
    a DATE under one of those names. The run reads the query's column, so the plan checks
    the type of the query's column, not the table's: the run, the preview and a new
    workflow are refused in one line; nothing is written, nobody is messaged."""
    db = source(*TABLES, rows=ROWS)
    wb = hybridwb.connect(source=source_url(db), store=store)
    sql = f"SELECT code, name, mobile, {select} FROM members"
    attr, kind = named
    try:
        wb.store.init()
        wb.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
        mapping = {
            **people(fields=FIELDS),
            "audience": True,
            "consent": "ok",
            "nightConsent": "night",
        }
        wb.mappings.save("members", mapping)
        plain = {"sql": "SELECT code, name, mobile, ok, night FROM members"}
        wf = wb.workflows.create(
            "saved",
            target_config=plain,
            message_config={"template": "세일", "quiet_hours": "exclude"},
        )
        # the definition is edited behind the workbench (as an older version saved it)
        wb.store.workflows.update(wf["id"], target_config={"sql": sql})
        wf = wb.store.workflows.get(wf["id"])
        run_id = start(wb, wf)
        with pytest.raises(ValidationError, match=f"as a {kind} column") as run:
            wb.workflows.process(wf["id"], run_id, progress=False, now=now)
        refusals = [run.value]
        for attempt in (
            lambda: wb.targets.preview({"sql": sql}),
            lambda: wb.workflows.create(
                "again", target_config={"sql": sql}, message_config={"template": "세일"}
            ),
        ):
            with pytest.raises(ValidationError, match=f"as a {kind} column") as refused:
                attempt()
            refusals.append(refused.value)
    finally:
        wb.close()
    assert written(store, run_id) == {"run_targets": 0, "send_records": 0, "run_skips": 0}
    assert oracle(store, "SELECT count(*) FROM send_records") == [(0,)]
    assert oracle(store, "SELECT count(*) FROM workflows WHERE name = 'again'") == [(0,)]
    for exc in refusals:
        assert "\n" not in str(exc) and f"members.{attr} " in str(exc), exc


CHAIN = (
    "CREATE TABLE policies (id INT PRIMARY KEY, since YEAR NULL, night TINYINT(1) NULL)",
    "CREATE TABLE agreements (id INT PRIMARY KEY, policy_id INT NULL, "
    "FOREIGN KEY (policy_id) REFERENCES policies (id))",
    "CREATE TABLE members (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20), "
    "mobile VARCHAR(20), ok TINYINT(1) NULL, d DATE NULL, agree_id INT NULL, "
    "FOREIGN KEY (agree_id) REFERENCES agreements (id))",
    "CREATE VIEW member_cast AS SELECT code, name, mobile, CAST(d AS DATETIME) AS ok FROM members",
)
#: everyone: marketing consent yes, night consent no, the policy's year 2021
CHAIN_ROWS = {
    "policies": [(0, 2021, 0)],
    "agreements": [(0, 0)],
    "members": [(f"m{i}", "회원", f"010-4931-{i:04d}", 1, "2021-03-01", 0) for i in range(3)],
}


def chained(table: str, roles: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Mappings of the chain members -> agree -> policy, and `table`'s with `roles`."""

    def rel(table: str, local: str, name: str) -> dict[str, str]:
        return {
            "table": table,
            "localField": local,
            "foreignField": "id",
            "kind": "many-to-one",
            "name": name,
        }

    number = {"displayName": "번호", "type": "number", "role": "id"}
    maps = {
        "policies": {
            "displayName": "약관",
            "key": "id",
            "fields": {
                "id": number,
                "since": {"displayName": "연도", "type": "string"},
                "night": {"displayName": "야간", "type": "boolean"},
            },
        },
        "agreements": {
            "displayName": "동의서",
            "key": "id",
            "fields": {"id": number, "policy_id": {"displayName": "약관번호", "type": "number"}},
            "relations": [rel("policies", "policy_id", "policy")],
        },
    }
    flag = {"ok": {"displayName": "동의", "type": "boolean"}}
    if table == "members":
        extra = {
            "d": {"displayName": "가입일", "type": "date"},
            "agree_id": {"displayName": "동의번호", "type": "number"},
        }
        maps["members"] = {
            **people(fields={**flag, **extra}),
            "audience": True,
            "relations": [rel("agreements", "agree_id", "agree")],
            **roles,
        }
    else:
        maps[table] = {**people(fields=flag), **roles}
    return maps


@pytest.mark.parametrize(
    ("table", "roles", "refused", "now"),
    [
        (
            "members",
            {"consent": "ok", "nightConsent": "agree.policy.since"},
            "members.nightConsent: 'agree.policy.since' is a YEAR column",
            NIGHT,
        ),
        ("member_cast", {"consent": "ok"}, "member_cast.consent: 'ok' is a DATETIME column", DAY),
    ],
    ids=["two-hop-year-night", "view-cast-datetime"],
)
def test_a_date_through_two_relations_or_a_view_cast_is_refused(
    source: Callable[..., str],
    store: str,
    table: str,
    roles: dict[str, str],
    refused: str,
    now: Any,
) -> None:
    """Holds: the night consent two to-one hops away (members -> agree -> policy) on a YEAR
    column, and a view's `CAST(d AS DATETIME) AS ok`, are typed by the live schema of the
    column they end on: the run is refused and writes nothing (unchecked, the YEAR 2021
    reads as night consent, the DATETIME as an unclear consent)."""
    db = source(*CHAIN, rows=CHAIN_ROWS)
    wb = hybridwb.connect(source=source_url(db), store=store)
    try:
        wb.store.init()
        wb.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
        safe = {"consent": "ok", "nightConsent": "agree.policy.night"}
        for name, mapping in chained(table, safe if table == "members" else {}).items():
            wb.mappings.save(name, mapping)
        wf = wb.workflows.create(
            "chain",
            target_config={"table": table},
            message_config={"template": "세일", "quiet_hours": "exclude"},
        )
        wb.mappings.save(table, chained(table, roles)[table])
        run_id = start(wb, wf)
        with pytest.raises(ValidationError, match=re.escape(refused)):
            wb.workflows.process(wf["id"], run_id, progress=False, now=now)
    finally:
        wb.close()
    assert written(store, run_id) == {"run_targets": 0, "send_records": 0, "run_skips": 0}


@pytest.mark.parametrize("given", ["path", "role"])
def test_a_consent_given_by_its_role_filters_an_informational_target_as_a_path_does(
    source: Callable[..., str], store: str, given: str
) -> None:
    """The audience's consent is its path, else the one field with the `consent` role. The
    target definition's `exclude_opt_out` (on by default) filtered only by the path: with
    the role alone an informational workflow messaged the customers whose flag is 0 or
    NULL. Now either way exactly the clear yes is messaged (oracle: send_records)."""
    db = source(
        *TABLES,
        rows={
            "members": [
                (f"m{i}", "회원", f"010-4932-{i:04d}", ok, 0, 2021, "2021-03-01")
                for i, ok in enumerate((1, 0, None))
            ]
        },
    )
    wb = hybridwb.connect(source=source_url(db), store=store)
    try:
        wb.store.init()
        wb.templates.create("안내", INFO, advertising=False)
        if given == "path":
            wb.mappings.save(
                "members", {**people(fields=FIELDS), "audience": True, "consent": "ok"}
            )
        else:
            fields = {**FIELDS, "ok": {**FIELDS["ok"], "role": "consent"}}
            wb.mappings.save("members", {**people(fields=fields), "audience": True})
        wf = wb.workflows.create(
            "info", target_config={"table": "members"}, message_config={"template": "안내"}
        )
        run_id = start(wb, wf)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY)
    finally:
        wb.close()
    sent = "SELECT target_key FROM send_records WHERE CAST(run_id AS TEXT) IN (%s, %s)"
    assert oracle(store, sent, (str(run_id), run_id.hex)) == [("m0",)]
