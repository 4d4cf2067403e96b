"""Bad input, round 51: the doors added since rounds 3, 29, 41 and 43.

The guarantee (DESIGN non-negotiable 8): anything a user can type, pass or store is answered
with a `HybridwbError` whose message is one short line, never a raw Python exception, a hang
or unbounded memory, and a refused input leaves nothing written. The oracle is independent
of the code under test: the exception's type and text; for the store, its rows as sqlite3
reads them; for the CLI, the exit status and output.

Round 51 tried the preview's `advertising=`, the CLI's `--informational`, the night-hold row,
the run's clock pin (`as_of`), the determinism refusals of saved queries, `arrow=True` (on
the sample, and on MariaDB through PyMySQL and mysqlclient: zero dates, TIME and DECIMAL
extremes held), the settings, the scheduler's and runs' options, store rows edited by hand,
and odd datetimes, time zones, paths and numbers at each. Fourteen breaks, all fixed (each
test's docstring says what it was): a `now` at the calendar's edge (1), the due window (2),
a time zone that is a folder (3), `as_of` on SQLite (4), a mapping file, home or store
folder that cannot be written (5, 6), path settings no file system takes (7),
`connect(project_root=)` (8), a bool for a number setting (9), hand-edited query log times,
store times, schedule_config and run rows (10-13), and a run's batch options checked only
after its row was made (14). `HELD` keeps what already held as guards.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import hybridwb
import hybridwb.widgets as widgets
from hybridwb.cli import main
from tests.test_attack_bad_input_round3 import refused

GOOD = {"table": "customers", "where": {"field": "grade", "op": "eq", "value": "VIP"}}
HUGE = 10**400
UTC = dt.UTC
PLUS14 = dt.timezone(dt.timedelta(hours=14))
MINUS14 = dt.timezone(dt.timedelta(hours=-14))


def _relative(op: str) -> dict[str, Any]:
    return {"table": "customers", "where": {"field": "created_at", "op": op, "value": {"days": 30}}}


def _runs(root: Path) -> int:
    """The store's run rows, read with sqlite3 (the oracle)."""
    with sqlite3.connect(root / ".hybridwb" / "platform.db") as conn:
        return int(conn.execute("SELECT COUNT(*) FROM workflow_runs").fetchone()[0])


def _workflow(wb: Any, **fields: Any) -> dict[str, Any]:
    return wb.workflows.create(
        f"r51-{uuid.uuid4().hex[:6]}",
        notebook="campaign.ipynb",
        target_config=GOOD,
        message_config={"content": "안녕하세요 #{고객명}님", "advertising": False},
        **fields,
    )


# -- BREAK 1 (fixed): a `now` at the calendar's edge --------------------------------------------
FAR_NOWS = {
    "9999-utc": dt.datetime(9999, 12, 31, 23, 59, tzinfo=UTC),
    "year-1-plus14": dt.datetime(1, 1, 1, tzinfo=PLUS14),
    "9999-naive": dt.datetime(9999, 12, 31, 23, 59),
    "year-1-naive": dt.datetime(1, 1, 1),
    "9999-minus14": dt.datetime(9999, 12, 31, tzinfo=MINUS14),
    "9950-naive": dt.datetime(9950, 1, 1),  # plus a century's span: past 9999
}
NOW_DOORS: dict[str, Callable[[Any, Any], Any]] = {
    "preview": lambda wb, now: wb.targets.preview(GOOD, now=now),
    "preview-within-last": lambda wb, now: wb.targets.preview(_relative("within_last"), now=now),
    "preview-within-next-century": lambda wb, now: wb.targets.preview(
        {
            "table": "customers",
            "where": {"field": "birth_date", "op": "within_next", "value": {"days": 36_600}},
        },
        now=now,
    ),
    "validate-older-than": lambda wb, now: wb.targets.validate(_relative("older_than"), now=now),
    "plan": lambda wb, now: wb.targets.plan(GOOD, now=now),
    "iter": lambda wb, now: next(wb.targets.iter(_relative("within_next"), now=now)),
    "workflows-due": lambda wb, now: wb.workflows.due(now=now),
}


@pytest.mark.parametrize("now", list(FAR_NOWS.values()), ids=list(FAR_NOWS))
@pytest.mark.parametrize("door", list(NOW_DOORS.values()), ids=list(NOW_DOORS))
def test_a_now_at_the_calendars_edge_is_refused_in_one_line(
    shop: Any, door: Callable[[Any, Any], Any], now: Any
) -> None:
    """BREAK 1 (fixed): `now` 9999-12-31 23:59 UTC (or year 1 at +14:00) raised the raw
    OverflowError of its conversion to the definition's zone; a naive 9999 or year 1 (any
    year within a span of its edge) raised it from `now ± span` of a relative condition.
    Now every door refuses it by the years it takes."""
    exc = refused(lambda: door(shop, now))
    assert isinstance(exc, hybridwb.ValidationError)
    assert "now must be a time from 1900 to 8999" in str(exc)


@pytest.mark.parametrize(
    "now",
    ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59"],
    ids=["9999-minus14", "year-1-plus14", "9999-seoul"],
)
def test_a_far_now_is_refused_before_a_run_row_is_written(
    shop: Any, tmp_path: Path, now: str
) -> None:
    """BREAK 1 (fixed): `hybridwb run WF --now 9999-12-31T23:59:59-14:00` (or
    `wb.workflows.run(now=...)`) made the run's row and started its kernel, whose clock
    then overflowed: a failed run left for a typo. Now the CLI exits 2 and the API raises
    one line, and the store has no run (sqlite3)."""
    wf = _workflow(shop)
    before = _runs(tmp_path)
    result = CliRunner().invoke(main, ["run", wf["name"], "--now", now])
    assert result.exit_code == 2, result.output
    assert "now must be a time from 1900 to 8999" in result.output
    assert "Traceback" not in result.output
    refused(lambda: shop.workflows.run(wf["id"], now=now))
    refused(lambda: shop.workflows.run(wf["id"], now=dt.datetime.fromisoformat(now)))
    assert _runs(tmp_path) == before


@pytest.mark.parametrize(
    "now",
    [
        dt.datetime(1900, 1, 1, tzinfo=UTC),
        dt.datetime(8999, 12, 31, 12, 0, tzinfo=UTC),
        dt.datetime(2026, 3, 1, 22, 30, tzinfo=PLUS14),
        dt.datetime(2026, 3, 1, 22, 30),
    ],
    ids=["1900-utc", "8999-noon-utc", "2026-plus14", "2026-naive"],
)
def test_a_now_within_the_years_still_previews(shop: Any, now: dt.datetime) -> None:
    assert shop.targets.preview(_relative("older_than"), now=now, sample=1).count >= 0


# -- BREAK 2 (fixed): the scheduler's look-back window -------------------------------------------
@pytest.mark.parametrize(
    "window",
    ["5", None, -1, 0, float("nan"), float("inf"), True, HUGE, decimal.Decimal(5), 86_401],
    ids=repr,
)
def test_a_bad_due_window_is_refused_in_one_line(shop: Any, window: Any) -> None:
    """BREAK 2 (fixed): `wb.workflows.due(window_s='5')` (or None) raised a raw TypeError
    once a scheduled workflow was active; -1, 0 and NaN reported nothing due, True a
    window of one second, inf or 10**400 every slot since the cron began: all silently."""
    wf = _workflow(shop, trigger_type="schedule", schedule_config={"cron": "* * * * *"})
    shop.workflows.update(wf["id"], status="active")
    exc = refused(lambda: shop.workflows.due(window_s=window))
    assert "window_s must be seconds" in str(exc)


def test_a_good_due_window_still_finds_the_slot(shop: Any) -> None:
    wf = _workflow(shop, trigger_type="schedule", schedule_config={"cron": "* * * * *"})
    shop.workflows.update(wf["id"], status="active")
    for window in (61, 120.5, np.float64(90.0), 86_400):
        assert [w["id"] for w, _ in shop.workflows.due(window_s=window)] == [wf["id"]]


# -- BREAK 3 (fixed): a target definition's time zone that is a folder or too long ---------------
ZONES = {"folder-America": "America", "folder-Etc": "Etc", "5000-chars": "A" * 5000}


@pytest.mark.parametrize("zone", list(ZONES.values()), ids=list(ZONES))
def test_a_time_zone_that_is_a_folder_or_too_long_is_refused(
    shop: Any, tmp_path: Path, zone: str
) -> None:
    """BREAK 3 (fixed): `{"timezone": "America"}` raised the raw IsADirectoryError of the
    zone database's folder, 5,000 characters a raw OSError (file name too long), from
    `wb.targets.preview`, the target widget (its message left empty) and `hybridwb targets
    preview` (a traceback). Now each says it is not a time zone name."""
    definition = {"table": "customers", "timezone": zone}
    exc = refused(lambda: shop.targets.preview(definition))
    assert "is not a time zone name" in str(exc)
    panel = widgets.target_preview(shop, definition).panel
    assert panel.show(shop, json.dumps(definition)) is False
    assert "is not a time zone name" in panel.message.value
    file = tmp_path / "t.json"
    file.write_text(json.dumps(definition), encoding="utf-8")
    result = CliRunner().invoke(main, ["targets", "preview", str(file), "--informational"])
    assert result.exit_code == 1 and not isinstance(result.exception, OSError)
    assert "is not a time zone name" in result.output


# -- BREAK 4 (fixed): the run's clock pin on a source that cannot pin -----------------------------
AS_OF = {"nan": float("nan"), "neg": -1, "str": "now", "huge": HUGE, "true": True, "half": 0.5}


@pytest.mark.parametrize("as_of", list(AS_OF.values()), ids=list(AS_OF))
def test_a_bad_as_of_is_refused_on_every_source(shop: Any, as_of: Any) -> None:
    """BREAK 4 (fixed): `wb.source.records(sql, as_of="now")` (NaN, -1, 10**400, True) ran
    on the SQLite sample without a word, though MySQL refuses it: a notebook tried on the
    sample failed only in production. 0.5 passed everywhere and, printed as `timestamp =
    0.000000`, is MariaDB's "the clock again", not a pin. Now each source refuses them."""
    exc = refused(lambda: shop.source.records("SELECT 1 AS a", as_of=as_of))
    assert isinstance(exc, hybridwb.QueryError) and "as_of must be epoch seconds" in str(exc)


def test_a_good_as_of_still_reads(shop: Any) -> None:
    assert shop.source.records("SELECT 1 AS a", as_of=1_767_225_600.25) == [{"a": 1}]


# -- BREAK 5 (fixed): a mapping file path that is a folder or cannot be made ---------------------
def _mapping_rows(root: Path) -> int:
    with sqlite3.connect(root / ".hybridwb" / "platform.db") as conn:
        return int(conn.execute("SELECT COUNT(*) FROM table_mappings").fetchone()[0])


@pytest.mark.parametrize("where", ["folder", "under-a-file"])
def test_a_mapping_file_that_cannot_be_written_is_refused_and_leaves_nothing(
    shop: Any, tmp_path: Path, where: str
) -> None:
    """BREAK 5 (fixed): with mappings_path a folder, `wb.mappings.save` raised the raw
    IsADirectoryError of its rename and left its temporary `.table-mappings.*.tmp` beside
    the folder; under a file (`a/b.json` where `a` is a file) the raw FileExistsError of
    mkdir. Now one line naming the setting; no temporary file is left and the store holds
    no mapping row (sqlite3)."""
    suggested = shop.mappings.suggest("customers")
    shop.store.workflows.list()  # the store is made: its rows are the oracle
    before = _mapping_rows(tmp_path)
    parent = tmp_path / "elsewhere"
    parent.mkdir()
    if where == "folder":
        target = parent / "table-mappings.json"
        target.mkdir()
    else:
        (parent / "a-file").write_text("x", encoding="utf-8")
        target = parent / "a-file" / "table-mappings.json"
    wb = hybridwb.connect(mappings_path=str(target))
    try:
        exc = refused(lambda: wb.mappings.save("customers", suggested))
    finally:
        wb.close()
    assert isinstance(exc, hybridwb.ConfigError)
    assert "Cannot write the mapping file" in str(exc) and "HYBRIDWB_MAPPINGS" in str(exc)
    assert sorted(p.name for p in parent.iterdir()) == sorted(
        ["table-mappings.json"] if where == "folder" else ["a-file"]
    )
    assert _mapping_rows(tmp_path) == before


# -- BREAK 6 (fixed): a home or SQLite store folder that cannot be made ---------------------------
def test_a_home_that_cannot_be_made_is_a_config_error(tmp_path: Path) -> None:
    """BREAK 6 (fixed): `connect(home=...)` (or HYBRIDWB_HOME) under a file raised the raw
    FileExistsError of the sample's mkdir; now one line naming the setting."""
    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    exc = refused(lambda: hybridwb.connect(home=str(tmp_path / "a-file" / ".hybridwb")))
    assert isinstance(exc, hybridwb.ConfigError) and "HYBRIDWB_HOME" in str(exc)
    assert (tmp_path / "a-file").read_text(encoding="utf-8") == "x"


def test_a_sqlite_store_whose_folder_cannot_be_made_is_a_store_error(
    shop: Any, tmp_path: Path
) -> None:
    """BREAK 6 (fixed): a store URL `sqlite:///<a file>/x.db` raised the raw
    FileExistsError of its folder's mkdir at the first use of `wb.store`."""
    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    wb = hybridwb.connect(store=f"sqlite:///{tmp_path / 'a-file' / 'store.db'}")
    try:
        exc = refused(lambda: wb.store.workflows.list())
    finally:
        with pytest.warns(RuntimeWarning, match="query log was not saved"):
            wb.sql("SELECT 1 AS a")
            wb.close()
    assert isinstance(exc, hybridwb.StoreError) and "Cannot make the folder" in str(exc)
    assert (tmp_path / "a-file").read_text(encoding="utf-8") == "x"


# -- BREAK 7 (fixed): a path setting no file system takes -----------------------------------------
PATHS = {"nul": "a\x00b", "long-name": "n" * 256, "surrogate": "\ud800"}


@pytest.mark.parametrize("value", list(PATHS.values()), ids=list(PATHS))
@pytest.mark.parametrize("setting", ["home", "mappings_path", "reports_dir", "workflows_dir"])
def test_a_path_setting_no_file_system_takes_is_a_config_error(
    sample_db: Path, setting: str, value: str
) -> None:
    """BREAK 7 (fixed): a NUL or a name over 255 bytes in `home`, `mappings_path`,
    `reports_dir` or `workflows_dir` was taken, and the first file operation on it raised
    its raw ValueError or OSError (`wb.mappings.tables()`, the sample's build, a run's
    report); now `connect` refuses it naming the setting."""
    exc = refused(lambda: hybridwb.connect(**{setting: value}))
    assert isinstance(exc, hybridwb.ConfigError)
    assert f"Setting {setting} (from argument) is invalid" in str(exc)
    assert "Value error" not in str(exc)


def test_a_long_mapping_path_from_pyproject_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        f'[tool.hybridwb]\nmappings_path = "{"m" * 300}.json"\n', encoding="utf-8"
    )
    exc = refused(lambda: hybridwb.connect(cwd=tmp_path))
    assert "mappings_path (from pyproject) is invalid: a name in it is over 255 bytes" in str(exc)


# -- BREAK 8 (fixed): connect(project_root=...) ----------------------------------------------------
def test_project_root_as_an_argument_is_a_config_error(tmp_path: Path) -> None:
    """BREAK 8 (fixed): `hybridwb.connect(project_root=...)` raised the raw TypeError
    "got multiple values for keyword argument 'project_root'"; now it points at cwd=."""
    exc = refused(lambda: hybridwb.connect(project_root=str(tmp_path)))
    assert isinstance(exc, hybridwb.ConfigError) and "pass cwd= instead" in str(exc)


# -- BREAK 9 (fixed): true or false where a number setting goes ---------------------------------
@pytest.mark.parametrize(
    "line",
    ["source_pool_size = true", "row_cap = true", "statement_timeout = false", "mysql_port = true"],
    ids=lambda t: t.split(" ")[0],
)
def test_a_bool_for_a_number_setting_is_a_config_error(tmp_path: Path, line: str) -> None:
    """BREAK 9 (fixed): `source_pool_size = true` in pyproject.toml was a pool of 1,
    `row_cap = true` a cap of one row, `statement_timeout = false` refused as "greater than
    or equal to 0.01": pydantic reads a bool as 0 or 1. Now each says it wants a number."""
    (tmp_path / "pyproject.toml").write_text(f"[tool.hybridwb]\n{line}\n", encoding="utf-8")
    exc = refused(lambda: hybridwb.connect(cwd=tmp_path))
    assert isinstance(exc, hybridwb.ConfigError)
    assert f"Setting {line.split(' ')[0]} (from pyproject) is invalid: it must be a number" in str(
        exc
    )


def test_number_settings_still_read_from_text_and_numbers(sample_db: Path, tmp_path: Path) -> None:
    (tmp_path / ".hybridwb").mkdir()
    (tmp_path / ".hybridwb" / "sample.db").write_bytes(sample_db.read_bytes())
    (tmp_path / "pyproject.toml").write_text(
        "[tool.hybridwb]\nsource_pool_size = 3\nrow_cap = 1e3\n", encoding="utf-8"
    )
    wb = hybridwb.connect(cwd=tmp_path, env={"HYBRIDWB_STATEMENT_TIMEOUT": "12.5"})
    try:
        assert (wb.settings.source_pool_size, wb.settings.row_cap) == (3, 1000)
        assert wb.settings.statement_timeout == 12.5
    finally:
        wb.close()


# -- BREAK 10 (fixed): a query log row's execution time edited by hand --------------------------
def _store_sql(root: Path, sql: str) -> list[Any]:
    """Direct SQL on the SQLite store (the oracle, and `%%platform --write`'s stand-in)."""
    with sqlite3.connect(root / ".hybridwb" / "platform.db") as conn:
        return conn.execute(sql).fetchall()


def _logged(wb: Any) -> None:
    wb.sql("SELECT 1 AS a")
    wb.sql("SELECT 2 AS b")
    wb.store.workflows.list()
    wb.querylog.flush()


@pytest.mark.parametrize("value", ["'abc'", "1e999", "-1e999", "X'00'"], ids=repr)
def test_a_query_logs_execution_time_that_is_not_a_number_is_left_out(
    shop: Any, tmp_path: Path, value: str
) -> None:
    """BREAK 10 (fixed): one query_logs row whose execution_time was 'abc' (or inf, which
    PostgreSQL's float8 holds as 'Infinity') made `hybridwb stats` and the monitor widget
    raise pandas' raw TypeError or ValueError. Now that row counts as a query, its time is
    left out of the averages and the rest is summarised."""
    from hybridwb.observability import collect

    _logged(shop)
    first = "(SELECT MIN(rowid) FROM query_logs)"
    _store_sql(tmp_path, f"UPDATE query_logs SET execution_time = {value} WHERE rowid = {first}")
    assert _store_sql(tmp_path, "SELECT COUNT(*) FROM query_logs") == [(2,)]
    (edited,) = _store_sql(tmp_path, f"SELECT execution_time FROM query_logs WHERE rowid = {first}")
    assert not isinstance(edited[0], float) or edited[0] in (float("inf"), float("-inf"))
    stats = collect(shop)
    assert stats.queries == 2 and stats.avg_ms is not None and stats.avg_ms >= 0
    assert all(row["p95_ms"] >= 0 for row in stats.latency_by_kind)
    page = widgets.monitor(shop).page.value
    assert "queries logged" in page and "hybridwb-error" not in page
    result = CliRunner().invoke(main, ["stats", "--out", str(tmp_path / "s.html")])
    assert result.exit_code == 0, result.output
    assert "2 queries" in result.output


# -- BREAK 11 (fixed): a stored time edited by hand on the SQLite store ---------------------------
@pytest.mark.parametrize("value", ["'garbage'", "12345", "'2026-13-45 99:00:00'"], ids=repr)
def test_a_stored_time_that_is_not_a_time_is_a_store_error(
    shop: Any, tmp_path: Path, value: str
) -> None:
    """BREAK 11 (fixed): a query_logs.timestamp (or a run's started_at) edited to 'garbage'
    or a number raised SQLAlchemy's raw ValueError or TypeError from every read of the
    table: `hybridwb stats` died with it, `wb.store.runs.get` too. Now one StoreError
    that says to fix or delete the row; the monitor shows it as its message."""
    _logged(shop)
    wf = _workflow(shop)
    run = shop.store.runs.create(wf["id"], {})
    _store_sql(tmp_path, f"UPDATE query_logs SET timestamp = {value}")
    _store_sql(tmp_path, f"UPDATE workflow_runs SET started_at = {value}")
    exc = refused(lambda: shop.store.runs.get(run["id"]))
    assert isinstance(exc, hybridwb.StoreError) and "%%platform --write" in str(exc)
    assert "holds a time hybridwb cannot read" in widgets.monitor(shop).page.value
    result = CliRunner().invoke(main, ["stats", "--out", str(tmp_path / "s.html")])
    assert result.exit_code == 1 and not isinstance(result.exception, ValueError | TypeError)
    assert "holds a time hybridwb cannot read" in result.output
    assert not (tmp_path / "s.html").exists()


# -- BREAK 12 (fixed): a schedule_config that is not an object ----------------------------------
@pytest.mark.parametrize(
    "value", ["'\"0 9 * * *\"'", "'[1]'", "'5'"], ids=["text", "list", "number"]
)
def test_a_schedule_config_that_is_not_an_object_is_skipped_not_fatal(
    shop: Any, tmp_path: Path, value: str
) -> None:
    """BREAK 12 (fixed): a workflow whose schedule_config was edited by hand to JSON text
    or a list made `wb.workflows.due()` and `run_due` raise a raw AttributeError, and the
    `hybridwb schedule` loop (which goes on past hybridwb's errors only) died of it: every
    other schedule stopped. Now the row is reported and skipped, as a bad cron is."""
    bad = _workflow(shop, trigger_type="schedule", schedule_config={"cron": "0 9 * * *"})
    shop.workflows.update(bad["id"], status="active")
    good = _workflow(shop, trigger_type="schedule", schedule_config={"cron": "* * * * *"})
    shop.workflows.update(good["id"], status="active")
    _store_sql(
        tmp_path, f"UPDATE workflows SET schedule_config = {value} WHERE name = '{bad['name']}'"
    )
    assert [w["id"] for w, _ in shop.workflows.due()] == [good["id"]]
    # the public call says what it skipped, as `run_due` does (round 51's leftover)
    (said,) = shop.workflows.last_problems
    assert bad["name"] in said and "schedule_config is not a JSON object" in said
    from hybridwb.workflows import scheduler

    check = scheduler.due(shop.workflows.list())
    assert [d.workflow["id"] for d in check.due] == [good["id"]]
    (problem,) = check.problems
    assert bad["name"] in problem and "schedule_config is not a JSON object" in problem


# -- BREAK 13 (fixed): resuming a run whose row was edited by hand ---------------------------------
@pytest.mark.parametrize(
    ("column", "value"),
    [("parameters", "'\"x\"'"), ("stats", "'\"x\"'"), ("parameters", "'[1, 2]'")],
    ids=["parameters-text", "stats-text", "parameters-list"],
)
def test_resuming_a_run_whose_row_is_not_an_object_runs_nothing(
    shop: Any, tmp_path: Path, column: str, value: str
) -> None:
    """BREAK 13 (fixed): `wb.workflows.run(None, resume=ID)` of a run whose parameters
    were edited to JSON text raised a raw AttributeError; whose stats were, started its
    kernel, sent, and then raised a raw TypeError at the run's end, its status left as
    it was. Now refused before the lock or the kernel: the run row, its records and the
    locks are as they were (sqlite3)."""
    wf = _workflow(shop)
    run = shop.store.runs.create(wf["id"], {})
    _store_sql(tmp_path, f"UPDATE workflow_runs SET {column} = {value}")
    before = _store_sql(tmp_path, "SELECT * FROM workflow_runs")
    exc = refused(lambda: shop.workflows.run(None, resume=run["id"]))
    assert isinstance(exc, hybridwb.ValidationError)
    assert f"{column} is not a JSON object" in str(exc) and "Nothing was run" in str(exc)
    assert _store_sql(tmp_path, "SELECT * FROM workflow_runs") == before
    assert _store_sql(tmp_path, "SELECT COUNT(*) FROM send_records") == [(0,)]
    assert _store_sql(tmp_path, "SELECT COUNT(*) FROM run_locks") == [(0,)]


# -- BREAK 14 (fixed): a run's batch options, refused after its row was made ---------------------
RUN_OPTIONS = {
    "batch-size-0": ["-p", "batch_size", "0"],
    "batch-size-true": ["-p", "batch_size", "true"],
    "batch-pause-negative": ["-p", "batch_pause", "-1"],
    "batch-pause-text": ["-p", "batch_pause", "soon"],
    "now-garbage": ["-p", "now", "garbage"],
    "now-9999": ["-p", "now", "9999-12-31T23:59:59"],
    "limit-negative": ["--limit", "-5"],
}


@pytest.mark.parametrize("options", list(RUN_OPTIONS.values()), ids=list(RUN_OPTIONS))
def test_a_bad_run_option_is_refused_before_the_run_is_made(
    shop: Any, tmp_path: Path, options: list[str]
) -> None:
    """BREAK 14 (fixed): `hybridwb run WF -p batch_size 0` (`-p batch_pause -1`, `-p now
    garbage`, `--limit -5`) made the run's row, started its kernel and failed there: a
    failed run, a report and "resume with: hybridwb run --resume ..." for a typo, the resume
    failing alike. Now refused in one line before anything is written: no run row
    (sqlite3), no report."""
    wf = _workflow(shop)
    before = _runs(tmp_path)
    result = CliRunner().invoke(main, ["run", wf["name"], *options])
    assert result.exit_code == 1, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert "resume" not in result.output and "Traceback" not in result.output
    assert _runs(tmp_path) == before
    assert not (tmp_path / "reports").exists() or not any((tmp_path / "reports").rglob("*.html"))


def test_bad_run_options_through_the_api_are_refused_alike(shop: Any, tmp_path: Path) -> None:
    wf = _workflow(shop)
    before = _runs(tmp_path)
    for call in (
        lambda: shop.workflows.run(wf["id"], {"batch_size": -1}),
        lambda: shop.workflows.run(wf["id"], {"batch_pause": float("inf")}),
        lambda: shop.workflows.run(wf["id"], {"now": "tomorrow"}),
        lambda: shop.workflows.run(wf["id"], limit=2.5),
    ):
        assert isinstance(refused(call), hybridwb.ValidationError)
    assert _runs(tmp_path) == before


# -- what held: kept as guards -----------------------------------------------------------------
HELD: list[tuple[str, Callable[[Any], Any]]] = [
    # preview(advertising=) takes a bool only
    *[
        (f"preview-advertising-{name}", lambda wb, v=v: wb.targets.preview(GOOD, advertising=v))
        for name, v in {
            "1": 1,
            "0": 0,
            "yes": "yes",
            "None": None,
            "np-bool": np.bool_(True),
        }.items()
    ],
    ("preview-sample-np-int", lambda wb: wb.targets.preview(GOOD, sample=np.int64(5))),
    ("preview-sample-huge", lambda wb: wb.targets.preview(GOOD, sample=HUGE)),
    (
        "preview-cache-ttl-decimal",
        lambda wb: wb.targets.preview(GOOD, cache_ttl=decimal.Decimal(1)),
    ),
    ("preview-now-date", lambda wb: wb.targets.preview(GOOD, now=dt.date(2026, 1, 1))),
    ("preview-now-np-datetime64", lambda wb: wb.targets.preview(GOOD, now=np.datetime64("2026"))),
    # arrow=True
    ("sql-arrow-int", lambda wb: wb.sql("SELECT 1 AS a", arrow=1)),
    ("sql-arrow-str", lambda wb: wb.sql("SELECT 1 AS a", arrow="yes")),
    ("sql-arrow-mixed-column", lambda wb: wb.sql("SELECT 1 AS a UNION ALL SELECT 'x'", arrow=True)),
    ("sql-arrow-nul", lambda wb: wb.sql("SELECT 'a\x00b' AS a", arrow=True)),
    ("sql-arrow-surrogate", lambda wb: wb.sql("SELECT '\ud800' AS a", arrow=True)),
    ("sql-arrow-bind-nan", lambda wb: wb.sql("SELECT :a AS a", {"a": float("nan")}, arrow=True)),
    (
        "sql-arrow-bind-decimal-nan",
        lambda wb: wb.sql("SELECT :a AS a", {"a": decimal.Decimal("NaN")}, arrow=True),
    ),
    ("sql-limit-unicode-digit", lambda wb: wb.sql("SELECT 1 AS a", limit="\u0665")),
    ("sql-timeout-decimal-nan", lambda wb: wb.sql("SELECT 1 AS a", timeout=decimal.Decimal("NaN"))),
    # the scheduler's and the runs' other options
    ("stale-after-str", lambda wb: wb.workflows.stale("5")),
    ("stale-after-nan", lambda wb: wb.workflows.stale(float("nan"))),
    ("due-now-garbage", lambda wb: wb.workflows.due(now="tomorrow 9am")),
    ("run-now-int", lambda wb: wb.workflows.run("nope", now=5)),
    # a target definition's odd values
    (
        "definition-nan-value",
        lambda wb: wb.targets.preview(
            '{"table":"customers","where":{"field":"customer_id","op":"gt","value":NaN}}'
        ),
    ),
    ("definition-timezone-nul", lambda wb: wb.targets.preview({**GOOD, "timezone": "\x00"})),
    ("definition-timezone-path", lambda wb: wb.targets.preview({**GOOD, "timezone": "../x"})),
    ("definition-opt-out-str", lambda wb: wb.targets.preview({**GOOD, "exclude_opt_out": None})),
]


@pytest.mark.parametrize(("case", "call"), HELD, ids=[c for c, _ in HELD])
def test_held_inputs_are_refused_with_one_line(
    shop: Any, case: str, call: Callable[[Any], Any]
) -> None:
    refused(lambda: call(shop))


# -- leftover (fixed, stop 47): run options stored in trigger_config, refused when saved ----------
BAD_STORED = {
    "batch-size-0": {"batch_size": 0},
    "batch-size-text": {"batch_size": "5"},
    "limit-negative": {"limit": -5},
    "pause-nan": {"batch_pause": float("nan")},
    "now-9999": {"now": "9999-12-31T23:59:00+00:00"},
}


@pytest.mark.parametrize("params", list(BAD_STORED.values()), ids=list(BAD_STORED))
def test_run_options_stored_in_the_trigger_config_are_refused_when_saved(
    shop: Any, tmp_path: Path, params: dict[str, Any]
) -> None:
    """Before: `trigger_config.parameters` were checked for their names only; a stored
    `batch_size: 0` was refused at every run the scheduler started, each a failed run. Now
    create and update refuse them in one line and save nothing."""
    wf = _workflow(shop, trigger_config={"parameters": {"batch_size": 50}})
    rows = "SELECT name, trigger_config FROM workflows ORDER BY name"
    before = _store_sql(tmp_path, rows)
    exc = refused(lambda: _workflow(shop, trigger_config={"parameters": params}))
    assert next(iter(params)) in str(exc)
    exc = refused(lambda: shop.workflows.update(wf["id"], trigger_config={"parameters": params}))
    assert next(iter(params)) in str(exc)
    assert _store_sql(tmp_path, rows) == before  # neither saved anything
    (kept,) = [json.loads(r[1]) for r in before if r[0] == wf["name"]]
    assert kept == {"parameters": {"batch_size": 50}}
