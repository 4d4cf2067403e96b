"""doctor, broken one item at a time; stats from the persisted QueryLog and runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

import hybridwb
from hybridwb.cli import main
from hybridwb.observability import collect, render_html, run_doctor
from tests.conftest import admin_url, ro_url

HYBRIDWB = str(Path(sys.executable).parent / "hybridwb")


def test_healthy_embedded_setup_is_all_ok(shop) -> None:  # type: ignore[no-untyped-def]
    report = run_doctor(shop)
    assert not report.failed
    assert {c.status for c in report.checks} == {"OK"}, report.render()


def test_unreachable_source_fails_and_exits_non_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYBRIDWB_SOURCE_URL", "mysql+pymysql://u:doctor-secret@127.0.0.1:3399/x")
    result = subprocess.run([HYBRIDWB, "doctor"], capture_output=True, text=True)
    assert result.returncode == 1
    assert "FAIL  source" in result.stdout and "Cannot reach MySQL" in result.stdout
    assert "doctor-secret" not in result.stdout + result.stderr


@pytest.mark.mysql
def test_writable_account_fails_with_the_revoke_to_run(mysql_db: str) -> None:
    wb = hybridwb.connect(source=admin_url(mysql_db).render_as_string(hide_password=False))
    report = run_doctor(wb)
    assert report.status_of("account grants") == "FAIL"
    assert "REVOKE ALL PRIVILEGES ON *.* FROM `root`@" in report.render()
    assert report.status_of("read-only session") == "OK"
    assert report.status_of("statement limit") == "OK"
    wb.close()


@pytest.mark.mysql
def test_read_only_account_passes(mysql_db: str) -> None:
    wb = hybridwb.connect(source=ro_url(mysql_db).render_as_string(hide_password=False))
    report = run_doctor(wb)
    assert report.status_of("account grants") == "OK"
    assert report.status_of("ssl") == "OK"  # local host
    wb.close()


def test_store_unreachable_fails(sample_db: Path, tmp_path: Path) -> None:
    (tmp_path / ".hybridwb").mkdir()
    (tmp_path / ".hybridwb" / "sample.db").write_bytes(sample_db.read_bytes())
    wb = hybridwb.connect(store="postgresql+psycopg://postgres:store-secret@127.0.0.1:5499/none")
    report = run_doctor(wb)
    assert report.status_of("store") == "FAIL"
    assert "store-secret" not in report.render()


@pytest.mark.postgres
def test_uninitialized_schema_and_rls_off_warn(sample_db: Path, tmp_path: Path, pg_db) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / ".hybridwb").mkdir()
    (tmp_path / ".hybridwb" / "sample.db").write_bytes(sample_db.read_bytes())
    with psycopg.connect(
        f"host=127.0.0.1 user=postgres dbname={pg_db.database}", autocommit=True
    ) as conn:
        conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    wb = hybridwb.connect(store=pg_db.render_as_string(hide_password=False))
    wb.store.init()
    with psycopg.connect(
        f"host=127.0.0.1 user=postgres dbname={pg_db.database}", autocommit=True
    ) as conn:
        [(head,)] = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        conn.execute("ALTER TABLE send_records DISABLE ROW LEVEL SECURITY")
        conn.execute("UPDATE alembic_version SET version_num = '0001'")
    try:
        report = run_doctor(wb)
        assert report.status_of("row level security") == "WARN"
        assert "send_records" in report.render()
        assert report.status_of("schema") == "WARN" and "hybridwb init" in report.render()
    finally:
        wb.close()
        # the worker's session database is shared: a later file's init must not meet
        # revision 0001 over a schema at head (its migrations failed: policy already exists)
        with psycopg.connect(
            f"host=127.0.0.1 user=postgres dbname={pg_db.database}", autocommit=True
        ) as conn:
            conn.execute("ALTER TABLE send_records ENABLE ROW LEVEL SECURITY")
            conn.execute("UPDATE alembic_version SET version_num = %s", (head,))


def test_mapping_drift_warns(shop) -> None:  # type: ignore[no-untyped-def]
    data = shop.mappings.load().dump()
    data["customers"]["fields"]["nickname"] = {"displayName": "별명"}
    from hybridwb.mapping.model import parse

    shop.mappings._write(parse(data))
    report = run_doctor(shop)
    assert report.status_of("mapping drift") == "WARN" and "nickname" in report.render()


def test_failed_last_run_warns_with_the_resume_command(shop) -> None:  # type: ignore[no-untyped-def]
    wf = shop.store.workflows.create(name="w")
    run = shop.store.runs.create(wf["id"])
    shop.store.runs.update(run["id"], status="failed", error="boom")
    report = run_doctor(shop)
    assert report.status_of("last runs") == "WARN"
    assert f"hybridwb run --resume {run['id']}" in report.render()


def test_stats_from_logs_and_runs(shop, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for _ in range(5):
        shop.sql("SELECT COUNT(*) FROM customers WHERE grade = 'VIP'")
    with pytest.raises(hybridwb.QueryError):
        shop.sql("SELECT * FROM missing_table")
    wf = shop.store.workflows.create(name="w")
    shop.store.runs.update(shop.store.runs.create(wf["id"])["id"], status="succeeded")
    stats = collect(shop)
    assert stats.queries == 6
    assert stats.success_rate == pytest.approx(5 / 6)
    assert stats.meets_success is False and stats.meets_latency is True
    assert stats.errors[0]["count"] == 1 and "missing_table" in stats.errors[0]["error"]
    assert stats.slowest and stats.latency_by_kind[0]["kind"] == "sqlite-sample"
    assert stats.runs_by_day[0]["succeeded"] == 1
    html = render_html(stats)
    assert "83.33%" in html and "missed" in html and "<svg" in html
    assert not any(glyph in html for glyph in "✅❌✔✘")
    result = CliRunner().invoke(main, ["stats", "--out", str(tmp_path / "s.html")])
    assert result.exit_code == 0 and (tmp_path / "s.html").is_file()


def test_monitor_widget(shop) -> None:  # type: ignore[no-untyped-def]
    from hybridwb.widgets import monitor

    shop.sql("SELECT 1")
    widget = monitor(shop)
    assert "query success rate" in widget.page.value


def test_hybridwb_doctor_magic(shop, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    from IPython.core.interactiveshell import InteractiveShell

    from hybridwb.magics import load

    shell = InteractiveShell.instance()
    try:
        load(shell, shop)
        shell.run_line_magic("hybridwb", "doctor")
        out = capsys.readouterr().out
        assert "OK    source" in out
    finally:
        InteractiveShell.clear_instance()


def test_broken_configuration_fails_doctor(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.hybridwb]\nmysql_hots = 'db'\n", encoding="utf-8"
    )
    result = subprocess.run([HYBRIDWB, "doctor"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 1
    assert "FAIL  configuration" in result.stdout and "mysql_hots" in result.stdout


def test_cli_queries_reach_the_query_log(sample_db: Path, tmp_path: Path) -> None:
    """Every CLI command that queries the source leaves its log rows in the store (counted
    with sqlite3 on the store file, not through hybridwb), so `stats` tells the truth."""
    import sqlite3

    (tmp_path / ".hybridwb").mkdir()
    (tmp_path / ".hybridwb" / "sample.db").write_bytes(sample_db.read_bytes())
    (tmp_path / "mappings").mkdir()
    import shutil

    from tests.conftest import REPO

    shutil.copy(
        REPO / "mappings" / "table-mappings.json", tmp_path / "mappings" / "table-mappings.json"
    )
    for term in ("김", "7", "010-0002-0264"):
        done = subprocess.run(
            [HYBRIDWB, "search", "customers", term], capture_output=True, text=True, cwd=tmp_path
        )
        assert done.returncode == 0, done.stderr
    store = tmp_path / ".hybridwb" / "platform.db"
    logged = 0
    if store.exists():
        db = sqlite3.connect(store)
        try:
            (logged,) = db.execute("SELECT COUNT(*) FROM query_logs").fetchone()
        except sqlite3.OperationalError:  # no table: the store was never opened
            logged = 0
        finally:
            db.close()
    assert logged >= 3, f"3 searches, {logged} query log rows"


def test_readable_sql_pretty_prints_a_logged_statement() -> None:
    from hybridwb.observability.stats import readable_sql

    logged = (
        "SELECT c . name , COUNT ( * ) FROM customers AS c WHERE c . grade = ? GROUP BY c . name"
    )
    assert readable_sql(logged) == (
        "SELECT\n  c.name,\n  COUNT(*)\nFROM customers AS c\nWHERE\n  c.grade = ?\nGROUP BY\n  c.name"
    )
    assert readable_sql("<unparseable statement>") == "<unparseable statement>"


def test_slowest_queries_are_whole_readable_and_dated(shop, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    from hybridwb.widgets import monitor

    columns = ", ".join(f"c.{c}" for c in ("customer_id", "name", "grade", "city") * 12)
    first = f"SELECT {columns} FROM customers AS c WHERE c.grade = 'VIP'"
    second = f"SELECT {columns} FROM customers AS c WHERE c.city = '서울'"
    shop.sql(first)
    shop.sql(second)
    stats = collect(shop)
    with sqlite3.connect(tmp_path / ".hybridwb" / "platform.db") as store:
        low, high, n = store.execute(
            "SELECT MIN(timestamp), MAX(timestamp), COUNT(*) FROM query_logs"
        ).fetchone()
    queries = [row["query"] for row in stats.slowest]
    # both whole (a shared 300-character prefix no longer makes them look identical)
    assert any(q.endswith("c.grade = ?") for q in queries), [q[-60:] for q in queries]
    assert any(q.endswith("c.city = ?") for q in queries)
    assert all(" . " not in q for q in queries) and "FROM customers AS c\nWHERE" in queries[0]
    assert stats.queries == n and stats.since.startswith(low[:19].replace("T", " "))
    assert stats.until.startswith(high[:19].replace("T", " "))
    page = monitor(shop).page.value
    assert f"from {stats.since} to {stats.until}" in page and "<pre" in page
    assert "c.grade = ?" in page and "'VIP'" not in page
