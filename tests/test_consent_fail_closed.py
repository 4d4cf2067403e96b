"""Consent fails closed: an ambiguous consent role, and a consent column altered to a date
within the schema cache's minute, are refused at the run's plan, never read.

1. Two fields of the audience mapping carry the `consent` (or `night_consent`) role and no
   path names one: which is the consent is unknown. `role_field` gave None and the plan
   applied no consent filter, so an informational workflow messaged the customers whose
   flag is 0 or NULL. The plan (preview, workflow save, run) now refuses in one line
   naming the fields; saving such an audience mapping is refused too, but a file edited by
   hand reaches the plan, which refuses regardless.
2. The temporal-consent check read column types through the resolver's one-minute schema
   cache: `ALTER TABLE ... MODIFY ok YEAR` within that minute was missed and 2021 read as
   yes. The run's plan now reads its consent columns' types from the server (one
   information_schema read per run; previews and searches keep the cache).

Sources are fresh MariaDB databases, stores SQLite files and PostgreSQL databases; the
oracle is direct SQL on the store (`run_targets`, `send_records`, `run_skips`,
`workflow_runs.error`) and on the source's statement stream.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

import hybridwb
from hybridwb.errors import ValidationError
from tests.conftest import mariadb_maker
from tests.test_attack_once_round2 import (
    AD,
    DAY,
    INFO,
    NIGHT,
    any_store,  # noqa: F401  (a fixture: pytest finds it by name)
    oracle,
    people,
    pg_store,  # noqa: F401
    source_url,
    src,
    start,
)
from tests.test_consent_temporal import written

TABLES = (
    "CREATE TABLE members (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20), "
    "mobile VARCHAR(20), ok TINYINT(1) NULL, ok2 TINYINT(1) NULL, night TINYINT(1) NULL, "
    "night2 TINYINT(1) NULL)",
)
#: m0 consents (day and night); m1 said no; m2 never answered (NULL); ok2 / night2: the same
ROWS = {
    "members": [
        (f"m{i}", "회원", f"010-4933-{i:04d}", v, v, v, v) for i, v in enumerate((1, 0, None))
    ]
}
FIELDS = {
    "ok": {"displayName": "광고동의", "type": "boolean"},
    "ok2": {"displayName": "광고동의2", "type": "boolean"},
    "night": {"displayName": "야간동의", "type": "boolean"},
    "night2": {"displayName": "야간동의2", "type": "boolean"},
}


@pytest.fixture
def source() -> Iterator[Callable[..., str]]:
    yield from mariadb_maker("hybridwb_cfc")


def members(roles: dict[str, str], **paths: str) -> dict[str, Any]:
    """The audience mapping with these field roles (`{"ok": "consent"}`) and paths."""
    fields = {c: {**f, **({"role": roles[c]} if c in roles else {})} for c, f in FIELDS.items()}
    return {**people(fields=fields), "audience": True, **paths}


def edit_by_hand(wb: Any, table: str, mapping: dict[str, Any]) -> None:
    """Write `table`'s mapping into the mapping file as a text editor would (no checks)."""
    path = wb.mappings.path
    data = json.loads(path.read_text(encoding="utf-8"))
    data[table] = mapping
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def sent_keys(store: str, run_id: Any) -> list[str]:
    sql = "SELECT target_key FROM send_records WHERE CAST(run_id AS TEXT) IN (%s, %s)"
    return sorted(str(k) for (k,) in oracle(store, sql, (str(run_id), run_id.hex)))


# -- 1. two fields with the consent role and no path ------------------------------------------
#: (id, the safe mapping the workflow was saved under, the hand-edited one, template, hour,
#: the path attribute the error names)
AMBIGUOUS = [
    (
        "consent-informational",
        members({"ok": "consent"}),
        members({"ok": "consent", "ok2": "consent"}),
        "info",
        DAY,
        "consent",
    ),
    (
        "consent-advertising",
        members({"ok": "consent"}),
        members({"ok": "consent", "ok2": "consent"}),
        "ad",
        DAY,
        "consent",
    ),
    (
        "night-consent-advertising",
        members({"night": "night_consent"}, consent="ok"),
        members({"night": "night_consent", "night2": "night_consent"}, consent="ok"),
        "ad",
        NIGHT,
        "nightConsent",
    ),
]


def refused_everywhere(
    wb: Any, wf: Any, target: dict[str, Any], now: Any, *, plan: bool = False
) -> tuple[list[ValidationError], Any]:
    """The target's plan (with `plan`), its preview, a new workflow on it and a run of `wf`,
    each refused: their errors, and the run's id (nothing written is checked by the caller)."""
    refusals = []
    if plan:
        with pytest.raises(ValidationError) as planned:
            wb.targets.plan(target)
        refusals.append(planned.value)
    with pytest.raises(ValidationError) as preview:
        wb.targets.preview(target, allow_scan=True)
    refusals.append(preview.value)
    with pytest.raises(ValidationError) as create:
        wb.workflows.create("again", target_config=target, message_config={"template": "안내"})
    refusals.append(create.value)
    run_id = start(wb, wf)
    with pytest.raises(ValidationError) as run:
        wb.workflows.process(wf["id"], run_id, progress=False, now=now)
    refusals.append(run.value)
    return refusals, run_id


def _workflow(wb: Any, safe: dict[str, Any], template: str, target: dict[str, Any]) -> Any:
    wb.store.init()
    wb.templates.create("안내", INFO, advertising=False)
    wb.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
    wb.mappings.save("members", safe)
    message = {"template": "안내" if template == "info" else "세일", "quiet_hours": "exclude"}
    return wb.workflows.create("roles", target_config=target, message_config=message)


@pytest.mark.parametrize(
    ("safe", "edited", "template", "now", "attr"),
    [c[1:] for c in AMBIGUOUS],
    ids=[c[0] for c in AMBIGUOUS],
)
def test_two_fields_with_the_consent_role_and_no_path_are_refused_by_the_plan(
    source: Callable[..., str],
    any_store: str,  # noqa: F811
    safe: dict[str, Any],
    edited: dict[str, Any],
    template: str,
    now: Any,
    attr: str,
) -> None:
    """The workflow was saved while one field had the role; the mapping file is then edited
    by hand to give it to a second field too. The preview, a new workflow and the run are
    refused in one line naming both fields and what to do; the run froze, excluded and sent
    nothing (before: the informational run messaged m1 and m2, whose flag is 0 / NULL)."""
    db = source(*TABLES, rows=ROWS)
    wb = hybridwb.connect(source=source_url(db), store=any_store)
    target = {"table": "members"}
    try:
        wf = _workflow(wb, safe, template, target)
        edit_by_hand(wb, "members", edited)
        refusals, run_id = refused_everywhere(wb, wf, target, now)
    finally:
        wb.close()
    assert written(any_store, run_id) == {"run_targets": 0, "send_records": 0, "run_skips": 0}
    assert oracle(any_store, "SELECT count(*) FROM send_records") == [(0,)]
    assert oracle(any_store, "SELECT count(*) FROM workflows WHERE name = 'again'") == [(0,)]
    role = "consent" if attr == "consent" else "night_consent"
    first, second = [c for c, f in edited["fields"].items() if f.get("role") == role]
    for exc in refusals:
        text = str(exc)
        assert "\n" not in text, text
        assert text.startswith(f"members.{attr}: "), text
        assert f"{first!r} and {second!r}" in text, text
        assert f"set the mapping's {attr!r}" in text and "one field" in text, text
        assert "010-" not in text, text


def test_a_saved_query_target_with_two_consent_roles_is_refused(
    source: Callable[..., str], tmp_path: Any
) -> None:
    """A saved-query target reads the audience mapping's consent the same way: two fields
    with the role and no path refuse its plan; nothing is frozen or sent."""
    store = f"sqlite:///{tmp_path / 'store.db'}"
    db = source(*TABLES, rows=ROWS)
    wb = hybridwb.connect(source=source_url(db), store=store)
    target = {"sql": "SELECT code, name, mobile, ok, ok2 FROM members"}
    try:
        wf = _workflow(wb, members({"ok": "consent"}), "info", target)
        edit_by_hand(wb, "members", members({"ok": "consent", "ok2": "consent"}))
        with pytest.raises(ValidationError, match="'ok' and 'ok2' both have the role"):
            wb.targets.preview(target, allow_scan=True)
        run_id = start(wb, wf)
        with pytest.raises(ValidationError, match="'ok' and 'ok2' both have the role"):
            wb.workflows.process(wf["id"], run_id, progress=False, now=DAY)
    finally:
        wb.close()
    assert written(store, run_id) == {"run_targets": 0, "send_records": 0, "run_skips": 0}


def test_a_run_of_an_ambiguous_consent_role_fails_at_its_plan_and_releases_the_lock(
    source: Callable[..., str], tmp_path: Any
) -> None:
    """`wb.workflows.run` (the runner: run row, lock, notebook): the run fails, its row's
    error says which fields and what to do in one line, nothing is frozen or sent, the
    lock is released."""
    store = f"sqlite:///{tmp_path / 'store.db'}"
    db = source(*TABLES, rows=ROWS)
    wb = hybridwb.connect(source=source_url(db), store=store)
    try:
        wf = _workflow(wb, members({"ok": "consent"}), "info", {"table": "members"})
        edit_by_hand(wb, "members", members({"ok": "consent", "ok2": "consent"}))
        final = wb.workflows.run(wf["id"], progress=False)
    finally:
        wb.close()
    assert final["status"] == "failed"
    [(error,)] = oracle(store, "SELECT error FROM workflow_runs")
    assert "'ok' and 'ok2' both have the role 'consent'" in str(error), error
    assert "\n" not in str(error), error
    for table in ("run_targets", "run_locks", "send_records", "run_skips"):
        assert oracle(store, f"SELECT count(*) FROM {table}") == [(0,)], table


@pytest.mark.parametrize(
    ("paths", "sent"),
    [({"consent": "ok"}, ["m0"]), ({"consent": "ok2"}, ["m0"])],
    ids=["path-ok", "path-ok2"],
)
def test_a_consent_path_settles_two_fields_with_the_role(
    source: Callable[..., str], tmp_path: Any, paths: dict[str, str], sent: list[str]
) -> None:
    """The path names the consent the run reads, so two fields with the role are no
    ambiguity: the mapping saves, and an informational run messages exactly the clear yes
    of the path's column (oracle: send_records)."""
    store = f"sqlite:///{tmp_path / 'store.db'}"
    db = source(*TABLES, rows=ROWS)
    wb = hybridwb.connect(source=source_url(db), store=store)
    try:
        mapping = members({"ok": "consent", "ok2": "consent"}, **paths)
        wf = _workflow(wb, mapping, "info", {"table": "members"})
        run_id = start(wb, wf)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY)
    finally:
        wb.close()
    assert sent_keys(store, run_id) == sent


@pytest.mark.parametrize("role", ["consent", "night_consent"])
def test_saving_an_audience_mapping_with_two_fields_of_a_consent_role_is_refused(
    source: Callable[..., str], tmp_path: Any, role: str
) -> None:
    """The mapping's own save refuses it at the boundary (nothing written to the file);
    a table that is not the audience may keep two such fields (a consent table reached by
    a path, `agree.sms_ok`), since no run reads its roles."""
    store = f"sqlite:///{tmp_path / 'store.db'}"
    db = source(*TABLES, rows=ROWS)
    wb = hybridwb.connect(source=source_url(db), store=store)
    first, second = ("ok", "ok2") if role == "consent" else ("night", "night2")
    attr = "consent" if role == "consent" else "nightConsent"
    try:
        wb.store.init()
        wb.mappings.save("members", members({}))
        before = wb.mappings.path.read_bytes()
        with pytest.raises(ValidationError) as refused:
            wb.mappings.save("members", members({first: role, second: role}))
        after = wb.mappings.path.read_bytes()
        plain = {**members({first: role, second: role}), "audience": False}
        wb.mappings.save("members", plain)
        kept = wb.mappings.get("members")
    finally:
        wb.close()
    text = str(refused.value)
    assert text.startswith(f"members.{attr}: "), text
    assert f"{first!r} and {second!r} both have the role {role!r}" in text, text
    assert text.endswith("Nothing was saved."), text
    assert "\n" not in text
    assert after == before
    assert [n for n, f in kept.fields.items() if f.role == role] == [first, second]


# -- 2. a consent column altered to a date within the schema cache's minute -----------------
def statements(wb: Any) -> list[str]:
    """Every statement the source's engine sends from now on (appended as they go)."""
    seen: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    sa.event.listen(wb.source.engine, "before_cursor_execute", note)
    return seen


@pytest.mark.parametrize(
    ("column", "message", "now", "named"),
    [
        ("ok", {"template": "세일"}, DAY, "members.consent: 'ok' is a YEAR column"),
        ("ok", {"template": "안내"}, DAY, "members.consent: 'ok' is a YEAR column"),
        (
            "night",
            {"template": "세일", "quiet_hours": "exclude"},
            NIGHT,
            "members.nightConsent: 'night' is a YEAR column",
        ),
    ],
    ids=["consent-advertising", "consent-informational", "night-consent"],
)
def test_a_consent_column_altered_to_year_within_the_cache_minute_fails_the_run(
    source: Callable[..., str],
    any_store: str,  # noqa: F811
    column: str,
    message: dict[str, Any],
    now: Any,
    named: str,
) -> None:
    """A run warms the schema cache (m0 consents and is messaged). The consent column is
    then altered to YEAR and every value set to 2021 (reads as yes), and the workflow run
    again at once: the run's plan reads the column's type from the server, fails in one
    line and freezes, excludes and sends nothing. Before: the cached TINYINT passed and m1
    and m2, who had said no, were messaged."""
    db = source(*TABLES, rows=ROWS)
    wb = hybridwb.connect(source=source_url(db), store=any_store)
    try:
        wb.store.init()
        wb.templates.create("안내", INFO, advertising=False)
        wb.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
        wb.mappings.save("members", members({}, consent="ok", nightConsent="night"))
        wf = wb.workflows.create(
            "altered", target_config={"table": "members"}, message_config=message
        )
        first = start(wb, wf)
        wb.workflows.process(wf["id"], first, progress=False, now=now)
        src(db, f"ALTER TABLE members MODIFY {column} YEAR NULL")
        src(db, f"UPDATE members SET {column} = 2021")
        second = start(wb, wf)
        with pytest.raises(ValidationError) as run:
            wb.workflows.process(wf["id"], second, progress=False, now=now)
    finally:
        wb.close()
    assert sent_keys(any_store, first) == ["m0"]
    assert str(run.value).startswith(named) and "\n" not in str(run.value), run.value
    assert written(any_store, second) == {"run_targets": 0, "send_records": 0, "run_skips": 0}
    assert oracle(any_store, "SELECT count(*) FROM send_records") == [(1,)]


def test_a_resume_after_the_consent_column_was_altered_to_year_is_refused(
    source: Callable[..., str],
    any_store: str,  # noqa: F811
) -> None:
    """Frozen at night in "wait" mode (everyone consents by day, nobody at night: all three
    wait for 08:00); the consent column is then altered to YEAR (2021 for everyone) and the
    morning's resume comes within the minute. A resume does not freeze, so its own plan
    reads the consent column's type from the server: refused, nothing sent or excluded."""
    db = source(
        *TABLES,
        rows={"members": [(f"m{i}", "회원", f"010-4934-{i:04d}", 1, 1, 0, 0) for i in range(3)]},
    )
    wb = hybridwb.connect(source=source_url(db), store=any_store)
    try:
        wb.store.init()
        wb.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
        wb.mappings.save("members", members({}, consent="ok", nightConsent="night"))
        wf = wb.workflows.create(
            "waiting",
            target_config={"table": "members"},
            message_config={"template": "세일", "quiet_hours": "wait"},
        )
        run_id = start(wb, wf)
        wb.workflows.process(wf["id"], run_id, progress=False, now=NIGHT)
        src(db, "ALTER TABLE members MODIFY ok YEAR NULL")
        src(db, "UPDATE members SET ok = 2021")
        with pytest.raises(ValidationError, match="members.consent: 'ok' is a YEAR column"):
            wb.workflows.process(wf["id"], run_id, progress=False, now=DAY)
    finally:
        wb.close()
    assert written(any_store, run_id) == {"run_targets": 3, "send_records": 0, "run_skips": 0}


def test_the_fresh_type_read_is_one_statement_per_run_and_none_for_a_warm_preview(
    source: Callable[..., str], tmp_path: Any
) -> None:
    """Only the run's plan reads its consent columns' types from the server, in one
    statement (both columns); a preview and a search within the minute read no schema."""
    store = f"sqlite:///{tmp_path / 'store.db'}"
    db = source(*TABLES, rows=ROWS)
    wb = hybridwb.connect(source=source_url(db), store=store)
    target = {"table": "members"}
    try:
        wb.store.init()
        wb.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
        wb.mappings.save("members", members({}, consent="ok", nightConsent="night"))
        wf = wb.workflows.create("one", target_config=target, message_config={"template": "세일"})
        wb.targets.preview(target, allow_scan=True)
        wb.search("members", "회원", allow_scan=True)
        seen = statements(wb)
        wb.targets.preview(target, allow_scan=True, cache_ttl=None)
        wb.search("members", "회원", allow_scan=True)
        warm = [s for s in seen if "information_schema" in s.lower()]
        seen.clear()
        run_id = start(wb, wf)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY)
        typed = [s for s in seen if "column_type" in s.lower()]
    finally:
        wb.close()
    assert warm == []
    assert len(typed) == 1, typed
    assert sent_keys(store, run_id) == ["m0"]
