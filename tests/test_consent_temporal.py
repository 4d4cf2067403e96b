"""A consent or night-consent role on a date or time column is refused, never read.

A YEAR column comes back from PyMySQL as an int (2021), which reads as yes: a "year of
signup" column mapped as consent by mistake made every customer consent (DATE, DATETIME,
TIMESTAMP and TIME read as unclear and excluded everyone, just as silently). The one check
sits where the target plan resolves the roles against the live schema, so a preview, a
workflow's save and a run are refused alike, before anything is written. Sources are fresh
MariaDB databases, stores SQLite files; the oracle is direct SQL on the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import hybridwb
from hybridwb.errors import ValidationError
from hybridwb.targets.consent import temporal_type
from tests.conftest import mariadb_maker
from tests.test_attack_once_round2 import AD, DAY, NIGHT, oracle, people, source_url, start

TABLES = (
    "CREATE TABLE agreements (id INT PRIMARY KEY, signed YEAR NULL, ok TINYINT(1) NULL)",
    "CREATE TABLE members (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20), "
    "mobile VARCHAR(20), ok TINYINT(1) NULL, night TINYINT(1) NULL, since YEAR NULL, "
    "d DATE NULL, dt DATETIME NULL, ts TIMESTAMP NULL, tm TIME NULL, agree_id INT NULL, "
    "FOREIGN KEY (agree_id) REFERENCES agreements (id))",
    "CREATE VIEW member_v AS SELECT code, name, mobile, ok, since FROM members",
)
#: the values of d, dt, ts and tm (every customer's)
WHEN = ("2021-03-01", "2021-03-01 10:00:00", "2021-03-01 10:00:00", "10:00:00")
ROWS = {
    "agreements": [(i, 2021, 1) for i in range(3)],
    "members": [(f"m{i}", "회원", f"010-4930-{i:04d}", 1, 1, 2021, *WHEN, i) for i in range(3)],
}
#: the members' extra columns as a careless user maps them (the type `suggest` gives)
EXTRA = {
    "ok": "boolean",
    "night": "boolean",
    "since": "string",
    "d": "date",
    "dt": "datetime",
    "ts": "datetime",
    "tm": "string",
    "agree_id": "number",
}
AGREEMENTS = {
    "displayName": "동의서",
    "key": "id",
    "fields": {
        "id": {"displayName": "동의번호", "type": "number", "role": "id"},
        "signed": {"displayName": "동의연도", "type": "string"},
        "ok": {"displayName": "동의여부", "type": "boolean"},
    },
}
RELATION = {
    "table": "agreements",
    "localField": "agree_id",
    "foreignField": "id",
    "kind": "many-to-one",
    "name": "agree",
}


@pytest.fixture
def source() -> Iterator[Callable[..., str]]:
    yield from mariadb_maker("hybridwb_ct")


@pytest.fixture
def store(tmp_path: Any) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


def members(**roles: Any) -> dict[str, Any]:
    """The members mapping with these role paths (`consent="since"`) and field roles
    (`since="consent"`: the field with the role, no path)."""
    base = people()
    fields = dict(base["fields"])
    for column, ftype in EXTRA.items():
        role = roles.pop(column, None)
        fields[column] = {"displayName": f"열 {column}", "type": ftype}
        if role is not None:
            fields[column]["role"] = role
    return {**base, "audience": True, "fields": fields, "relations": [RELATION], **roles}


def written(store: str, run_id: Any) -> dict[str, int]:
    """Rows of this run in each table a run writes, read directly."""
    out = {}
    for table in ("run_targets", "send_records", "run_skips"):
        sql = f"SELECT count(*) FROM {table} WHERE CAST(run_id AS TEXT) IN (%s, %s)"
        out[table] = int(oracle(store, sql, (str(run_id), run_id.hex))[0][0])
    return out


#: (id, mapping roles, the field and type the error names, the hour the run is at)
CASES = [
    ("year", {"consent": "since"}, ("consent", "YEAR"), DAY),
    ("date", {"consent": "d"}, ("consent", "DATE"), DAY),
    ("datetime", {"consent": "dt"}, ("consent", "DATETIME"), DAY),
    ("timestamp", {"consent": "ts"}, ("consent", "TIMESTAMP"), DAY),
    ("time", {"consent": "tm"}, ("consent", "TIME"), DAY),
    ("night-year", {"consent": "ok", "nightConsent": "since"}, ("nightConsent", "YEAR"), NIGHT),
    ("night-date", {"consent": "ok", "nightConsent": "d"}, ("nightConsent", "DATE"), NIGHT),
    ("relation-year", {"consent": "agree.signed"}, ("consent", "YEAR"), DAY),
    (
        "relation-night-year",
        {"consent": "agree.ok", "nightConsent": "agree.signed"},
        ("nightConsent", "YEAR"),
        NIGHT,
    ),
    ("role-year", {"since": "consent"}, ("fields.since.role", "YEAR"), DAY),
    (
        "role-night-year",
        {"consent": "ok", "since": "night_consent"},
        ("fields.since.role", "YEAR"),
        NIGHT,
    ),
]


def mapped(wb: Any, **roles: Any) -> None:
    """A new store with the ad template, `agreements` and `members` mapped (these roles)."""
    wb.store.init()
    wb.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
    wb.mappings.save("agreements", AGREEMENTS)
    wb.mappings.save("members", members(**roles))


@pytest.mark.parametrize(
    ("roles", "named", "now"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_a_date_or_time_column_as_consent_is_refused_and_nothing_is_written(
    source: Callable[..., str], store: str, roles: dict[str, str], named: tuple[str, str], now: Any
) -> None:
    """The workflow was saved while consent was a yes/no column; the mapping then names a
    temporal column. The preview, a new workflow and the run are refused with one line
    naming the field and the type; the run froze, excluded and sent nothing."""
    db = source(*TABLES, rows=ROWS)
    wb = hybridwb.connect(source=source_url(db), store=store)
    try:
        mapped(wb, consent="ok", nightConsent="night")
        target = {"table": "members"}
        wf = wb.workflows.create(
            "temporal",
            target_config=target,
            message_config={"template": "세일", "quiet_hours": "exclude"},
        )
        wb.mappings.save("members", members(**roles))
        refusals = []
        with pytest.raises(ValidationError) as preview:
            wb.targets.preview(target)
        refusals.append(preview.value)
        with pytest.raises(ValidationError) as create:
            wb.workflows.create("again", target_config=target, message_config={"template": "세일"})
        refusals.append(create.value)
        run_id = start(wb, wf)
        with pytest.raises(ValidationError) as run:
            wb.workflows.process(wf["id"], run_id, progress=False, now=now)
        refusals.append(run.value)
    finally:
        wb.close()
    attr, kind = named
    for exc in refusals:
        text = str(exc)
        assert "\n" not in text
        assert f"members.{attr}: " in text and f"a {kind} column" in text, text
        assert "map a yes/no column" in text, text
    assert written(store, run_id) == {"run_targets": 0, "send_records": 0, "run_skips": 0}
    assert oracle(store, "SELECT count(*) FROM workflows WHERE name = 'again'") == [(0,)]


def test_a_run_of_a_refused_mapping_fails_and_sends_nothing(
    source: Callable[..., str], store: str
) -> None:
    """`wb.workflows.run` (the runner: its run row, lock and notebook) fails the run at its
    target plan, as any run whose mapping went wrong: the run row says why in one line, no
    target is frozen, nothing is sent and the lock is released."""
    db = source(*TABLES, rows=ROWS)
    wb = hybridwb.connect(source=source_url(db), store=store)
    try:
        mapped(wb, consent="ok")
        wf = wb.workflows.create(
            "runner", target_config={"table": "members"}, message_config={"template": "세일"}
        )
        wb.mappings.save("members", members(consent="since"))
        final = wb.workflows.run(wf["id"], progress=False)
    finally:
        wb.close()
    assert final["status"] == "failed"
    [(error,)] = oracle(store, "SELECT error FROM workflow_runs")
    assert "a YEAR column" in str(error) and "\n" not in str(error), error
    for table in ("run_targets", "run_locks", "send_records"):
        assert oracle(store, f"SELECT count(*) FROM {table}") == [(0,)], table


def test_a_view_column_is_typed_like_a_table_column(source: Callable[..., str], store: str) -> None:
    """information_schema gives a view's YEAR column the type it gives the table's, so a
    view mapped as the target table is refused the same way."""
    db = source(*TABLES, rows=ROWS)
    wb = hybridwb.connect(source=source_url(db), store=store)
    try:
        wb.store.init()
        wb.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
        fields = {
            c: f
            for c, f in members()["fields"].items()
            if c in ("code", "name", "mobile", "ok", "since")
        }
        wb.mappings.save("member_v", {**people(), "fields": fields, "consent": "ok"})
        target = {"table": "member_v"}
        wf = wb.workflows.create("view", target_config=target, message_config={"template": "세일"})
        wb.mappings.save("member_v", {**people(), "fields": fields, "consent": "since"})
        assert wb.mappings.describe("member_v").column("since").type == "YEAR(4)"
        refused = r"member_v.consent: 'since' is a YEAR column"
        with pytest.raises(ValidationError, match=refused):
            wb.targets.preview(target, allow_scan=True)
        run_id = start(wb, wf)
        with pytest.raises(ValidationError, match=refused):
            wb.workflows.process(wf["id"], run_id, progress=False, now=DAY)
    finally:
        wb.close()
    assert written(store, run_id) == {"run_targets": 0, "send_records": 0, "run_skips": 0}


@pytest.mark.parametrize(
    ("column_type", "word"),
    [
        ("YEAR(4)", "YEAR"),
        ("year", "YEAR"),
        ("DATE", "DATE"),
        ("DATETIME(6)", "DATETIME"),
        ("datetime /* mariadb-5.3 */", "DATETIME"),
        ("TIMESTAMP", "TIMESTAMP"),
        ("TIME(3)", "TIME"),
        ("TINYINT(1)", None),
        ("INT(11)", None),
        ("DECIMAL(3,1)", None),
        ("BIT(1)", None),
        ("CHAR(1)", None),
        ("VARCHAR(8)", None),
        ("ENUM('Y','N')", None),
        ("", None),
    ],
    ids=repr,
)
def test_temporal_column_types_are_told_by_their_type_word(
    column_type: str, word: str | None
) -> None:
    assert temporal_type(column_type) == word
