"""A consent column whose type changes family while a run is sending (a yes/no flag made a
VARCHAR, a TEXT, a DECIMAL) fails the run at the next batch it reads, before anything of
that batch is sent.

A column altered to a date or time already failed the run there (its values read as yes:
tests/test_consent_altered_mid_run.py); any other ALTER was still read by value, under
rules the run was never planned with: a VARCHAR's '1', a DECIMAL's 1.00 read as yes for
everyone the UPDATE that came with the ALTER touched. The run's plan types its consent
columns by the server (`plan_for_run`: information_schema; a saved query: its one-row
probe); each batch's read carries the server's type of each column it returns (its cursor
description), and a family other than the plan's stops the run: no statement of its own.

Sources are fresh MariaDB databases, stores SQLite files and PostgreSQL databases. The
ALTER is made just before the run reads its second batch (a hook on `audience.fetch`). The
oracle is direct SQL on `send_records`, `run_targets`, `run_skips` and `workflow_runs`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hybridwb.mapping import discovery
from hybridwb.targets.consent import type_family
from tests.conftest import mariadb_maker
from tests.test_attack_once_round2 import (
    DAY,
    NIGHT,
    any_store,  # noqa: F401  (a fixture: pytest finds it by name)
    pg_store,  # noqa: F401
    src,
    start,
)
from tests.test_consent_altered_mid_run import (
    ROWS,
    TABLES,
    _workbench,
    alters_before_batch,
    fails_at_the_second_batch_then_resumes,
)
from tests.test_consent_fail_closed import sent_keys

pytestmark = [pytest.mark.mysql]


@pytest.fixture
def source() -> Iterator[Callable[..., str]]:
    yield from mariadb_maker("hybridwb_rty")


#: (id, column, its new type, the value everyone gets, message, target, hour, the error's start)
CASES = [
    ("varchar", "ok", "VARCHAR(10)", "'1'", {"template": "세일"}, {"table": "members"}, DAY,
     "members.consent: 'ok' is now a text column"),
    ("text", "ok", "TEXT", "'1'", {"template": "세일"}, {"table": "members"}, DAY,
     "members.consent: 'ok' is now a text column"),
    ("decimal", "ok", "DECIMAL(5,2)", "1.00", {"template": "세일"}, {"table": "members"}, DAY,
     "members.consent: 'ok' is now a decimal column"),
    ("double", "ok", "DOUBLE", "1", {"template": "세일"}, {"table": "members"}, DAY,
     "members.consent: 'ok' is now a floating-point column"),
    ("informational-filtered", "ok", "VARCHAR(10)", "' 1'", {"template": "안내"},
     {"table": "members"}, DAY, "members.consent: 'ok' is now a text column"),
    ("night-varchar", "night", "VARCHAR(10)", "'동의'", {"template": "세일", "quiet_hours": "exclude"},
     {"table": "members"}, NIGHT, "members.nightConsent: 'night' is now a text column"),
    ("night-decimal", "night", "DECIMAL(5,2)", "1.00",
     {"template": "세일", "quiet_hours": "exclude"}, {"table": "members"}, NIGHT,
     "members.nightConsent: 'night' is now a decimal column"),
    ("saved-query-varchar", "ok", "VARCHAR(10)", "'1'", {"template": "세일"},
     {"sql": "SELECT code, name, mobile, ok, night FROM members"}, DAY,
     "members.consent: 'ok' is now a text column"),
    ("saved-query-decimal", "ok", "DECIMAL(5,2)", "1.00", {"template": "세일"},
     {"sql": "SELECT code, name, mobile, ok, night FROM members"}, DAY,
     "members.consent: 'ok' is now a decimal column"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("column", "ddl", "value", "message", "target", "now", "named"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_a_consent_column_retyped_between_batches_fails_the_run_at_the_next_batch(
    source: Callable[..., str],
    any_store: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    column: str,
    ddl: str,
    value: str,
    message: dict[str, Any],
    target: dict[str, Any],
    now: Any,
    named: str,
) -> None:
    """Batches of two; the column is retyped just before the second batch is read. The run
    fails there in one line: the first batch's two records are all that was sent, the other
    four stay pending. Put back, a resume sends exactly those four, each customer once.
    Before: all six were sent on the new type's values."""
    fails_at_the_second_batch_then_resumes(
        source, any_store, monkeypatch, column, message, target, now, named, ddl, value
    )


@pytest.mark.parametrize(
    ("ddl", "value"),
    [("INT", "1"), ("BIGINT UNSIGNED", "1"), ("SMALLINT", "1"), ("BOOLEAN", "TRUE")],
    ids=["int", "bigint-unsigned", "smallint", "boolean"],
)
def test_a_consent_column_widened_within_its_family_does_not_stop_the_run(
    source: Callable[..., str],
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    ddl: str,
    value: str,
) -> None:
    """TINYINT(1) to another whole number type: its values read as they did; the run goes on."""
    store = f"sqlite:///{tmp_path / 'store.db'}"
    db = source(*TABLES, rows=ROWS)
    wb, wf = _workbench(db, store, {"template": "세일"}, {"table": "members"})
    try:
        alters_before_batch(monkeypatch, db, "ok", ddl, value)
        run_id = start(wb, wf)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=2)
    finally:
        wb.close()
    assert sent_keys(store, run_id) == [f"m{i}" for i in range(6)]


def test_a_column_retyped_before_the_run_within_the_schema_cache_minute_is_read_as_it_is_now(
    source: Callable[..., str], tmp_path: Any
) -> None:
    """The workflow's save reads the live schema (cached for a minute) while `ok` is a
    TINYINT; it is made a VARCHAR of '1' before the run starts. The run's plan types it by
    the server now (VARCHAR), and so do its batches: nothing changed while it was sending,
    so it sends all six."""
    store = f"sqlite:///{tmp_path / 'store.db'}"
    db = source(*TABLES, rows=ROWS)
    wb, wf = _workbench(db, store, {"template": "세일"}, {"table": "members"})
    try:
        wb.targets.plan({"table": "members"})  # the cache holds TINYINT(1)
        src(db, "ALTER TABLE members MODIFY ok VARCHAR(10) NULL")
        src(db, "UPDATE members SET ok = '1'")
        run_id = start(wb, wf)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=2)
    finally:
        wb.close()
    assert sent_keys(store, run_id) == [f"m{i}" for i in range(6)]


#: a column of each type a consent flag may be kept in, and the family both spellings name
COLUMNS = {
    "c_tinyint1": ("TINYINT(1)", "number"),
    "c_bool": ("BOOLEAN", "number"),
    "c_smallint": ("SMALLINT UNSIGNED", "number"),
    "c_mediumint": ("MEDIUMINT", "number"),
    "c_int": ("INT", "number"),
    "c_bigint": ("BIGINT UNSIGNED", "number"),
    "c_decimal": ("DECIMAL(5,2)", "decimal"),
    "c_numeric": ("NUMERIC(3,0)", "decimal"),
    "c_float": ("FLOAT", "floating-point"),
    "c_double": ("DOUBLE PRECISION", "floating-point"),
    "c_bit": ("BIT(1)", "BIT"),
    "c_char": ("CHAR(1)", "text"),
    "c_varchar": ("VARCHAR(10)", "text"),
    "c_binary": ("BINARY(1)", "text"),
    "c_varbinary": ("VARBINARY(4)", "text"),
    "c_tinytext": ("TINYTEXT", "text"),
    "c_text": ("TEXT", "text"),
    "c_mediumtext": ("MEDIUMTEXT", "text"),
    "c_longtext": ("LONGTEXT", "text"),
    "c_blob": ("BLOB", "text"),
    "c_longblob": ("LONGBLOB", "text"),
    "c_enum": ("ENUM('Y','N')", "text"),
    "c_set": ("SET('Y','N')", "text"),
    "c_json": ("JSON", "text"),
}


def test_a_column_types_family_is_the_same_in_the_schema_and_in_a_reads_description(
    source: Callable[..., str],
) -> None:
    """The plan types a column by information_schema ('TINYINT(1)', 'VARCHAR(10)'), a batch by
    its read's cursor description ('TINY', 'VAR_STRING'): for every type a consent flag may
    be kept in both name one family, so an unaltered column never stops a run."""
    import hybridwb
    from tests.test_attack_once_round2 import source_url

    ddl = ", ".join(f"{name} {kind} NULL" for name, (kind, _) in COLUMNS.items())
    db = source(f"CREATE TABLE t (id INT PRIMARY KEY, {ddl})")
    wb = hybridwb.connect(source=source_url(db), store="sqlite:///:memory:")
    try:
        schema = discovery.column_types(wb.source, [("t", c) for c in COLUMNS])
        _, read = wb.source.typed_records(f"SELECT {', '.join(COLUMNS)} FROM t")
    finally:
        wb.close()
    planned = {c: type_family(schema[("t", c)]) for c in COLUMNS}
    batch = {c: type_family(read[c]) for c in COLUMNS}
    wanted = {c: family for c, (_, family) in COLUMNS.items()}
    assert planned == wanted, schema
    assert batch == wanted, read


@pytest.mark.parametrize(
    ("spelling", "family"),
    [
        ("TINYINT(1)", "number"), ("tinyint(4) unsigned", "number"), ("TINY", "number"),
        ("INT24", "number"), ("LONGLONG", "number"), ("DECIMAL(5,2)", "decimal"),
        ("NEWDECIMAL", "decimal"), ("DOUBLE", "floating-point"), ("VAR_STRING", "text"),
        ("LONG_BLOB", "text"), ("MEDIUM_BLOB", "text"), ("varchar(10)", "text"),
        ("YEAR(4)", "date or time"), ("datetime(6)", "date or time"), ("NULL", None),
        ("", None), ("INTEGER", "number"), ("uuid", None), ("point", None),
    ],
)  # fmt: skip
def test_type_family(spelling: str, family: str | None) -> None:
    assert type_family(spelling) == family
