"""The `hybridwb` command: every command has help; the demo runs on a fresh directory."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from hybridwb.cli import main


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, cmd in group.commands.items():
        found.append((*prefix, name))
        if isinstance(cmd, click.Group):
            found.extend(all_commands(cmd, (*prefix, name)))
    return found


@pytest.mark.parametrize("path", all_commands(main), ids=" ".join)
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output
    cmd = main
    for name in path:
        cmd = cmd.commands[name]
    assert cmd.help, f"{' '.join(path)} has no help text"


def test_demo_builds_the_sample_and_runs_queries(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["demo", "--customers", "300"])
    assert result.exit_code == 0, result.output
    assert "Customers by grade" in result.output
    assert "read-only" in result.output
    assert (tmp_path / ".hybridwb" / "sample.db").is_file()


def test_demo_prints_no_customer_name_phone_or_email(tmp_path: Path) -> None:
    """The demo's query results are printed masked by the mapping's pii flags: on a real
    source `hybridwb demo` would otherwise print real customers' names. Oracle: the file."""
    import sqlite3

    result = CliRunner().invoke(main, ["demo", "--customers", "300"])
    assert result.exit_code == 0, result.output
    assert "Subscriptions ending soon" in result.output and "**" in result.output
    with sqlite3.connect(tmp_path / ".hybridwb" / "sample.db") as conn:
        rows = conn.execute("SELECT name, phone, email FROM customers").fetchall()
    values = {str(v) for row in rows for v in row if v}
    assert values and not [v for v in values if v in result.output]


def test_test_connection_json(tmp_path: Path, sample_db: Path) -> None:
    (tmp_path / ".hybridwb").mkdir()
    (tmp_path / ".hybridwb" / "sample.db").write_bytes(sample_db.read_bytes())
    result = CliRunner().invoke(main, ["test-connection", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["status"] == "ok" and info["read_only"] is True


def test_unreachable_source_exits_non_zero_without_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HYBRIDWB_SOURCE_URL", "mysql+pymysql://u:pw-secret@127.0.0.1:3399/x")
    result = CliRunner().invoke(main, ["test-connection"])
    assert result.exit_code == 1, result.output
    # CliRunner never prints a traceback: an unexpected exception shows up here instead
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    fields = dict([*line.split(None, 1), ""][:2] for line in result.output.splitlines())
    assert fields["status"] == "error"
    assert fields["error"] == (
        "Cannot reach MySQL at 127.0.0.1:3399; is the server running? "
        "Check MYSQL_HOST and MYSQL_PORT."
    )
    assert "pw-secret" not in result.output


def test_init_twice_changes_nothing_the_second_time() -> None:
    first = CliRunner().invoke(main, ["init"])
    second = CliRunner().invoke(main, ["init"])
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    assert "0 seed rows added" in second.output


def test_init_sql_prints_the_migration() -> None:
    result = CliRunner().invoke(main, ["init", "--sql"])
    assert result.exit_code == 0
    assert "CREATE TABLE workflows" in result.output


def shop_project(root: Path, sample_db: Path) -> None:
    import shutil

    from tests.conftest import REPO

    (root / ".hybridwb").mkdir(exist_ok=True)
    (root / ".hybridwb" / "sample.db").write_bytes(sample_db.read_bytes())
    (root / "mappings").mkdir(exist_ok=True)
    shutil.copy(REPO / "mappings" / "table-mappings.json", root / "mappings")


def stored_query_logs(root: Path) -> int:
    import sqlite3

    with sqlite3.connect(root / ".hybridwb" / "platform.db") as conn:
        return conn.execute("SELECT COUNT(*) FROM query_logs").fetchone()[0]


def test_cli_queries_reach_query_logs_and_stats_counts_them(
    tmp_path: Path, sample_db: Path
) -> None:
    shop_project(tmp_path, sample_db)
    for term in ("1", "2", "3"):
        result = CliRunner().invoke(main, ["search", "customers", term])
        assert result.exit_code == 0, result.output
    logged = stored_query_logs(tmp_path)  # the oracle: rows in the store's own table
    assert logged >= 3
    result = CliRunner().invoke(main, ["stats", "--out", str(tmp_path / "stats.html")])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{logged:,} queries")


def test_doctor_with_unknown_url_option_reports_and_does_not_raise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HYBRIDWB_SOURCE_URL", "mysql+pymysql://u:pw-secret@127.0.0.1/x?bogus=1")
    result = CliRunner().invoke(main, ["doctor"])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "FAIL" in result.output and "bogus" in result.output
    assert "pw-secret" not in result.output


def test_doctor_shows_the_connection_budget(
    tmp_path: Path, sample_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop_project(tmp_path, sample_db)
    monkeypatch.setenv("HYBRIDWB_POOL_SIZE", "3")
    monkeypatch.setenv("HYBRIDWB_MAX_OVERFLOW", "4")
    result = CliRunner().invoke(main, ["doctor"])
    assert "at most 7 source connections per process" in result.output, result.output


def test_lab_opens_jupyterlab_on_the_project_with_the_extension(
    tmp_path: Path, sample_db: Path
) -> None:
    shop_project(tmp_path, sample_db)
    (tmp_path / "notebooks").mkdir()
    import os

    os.chdir(tmp_path / "notebooks")  # started from a subfolder: still the project
    result = CliRunner().invoke(main, ["lab", "--print-only", "--no-browser"])
    assert result.exit_code == 0, result.output
    assert f"--ServerApp.root_dir={tmp_path}" in result.output and "--no-browser" in result.output
    config = tmp_path / ".hybridwb" / "ipython" / "profile_default" / "ipython_config.py"
    assert "extensions = ['hybridwb']" in config.read_text(encoding="utf-8")


@pytest.mark.slow
def test_a_kernel_of_the_lab_loads_hybridwb_on_the_project(
    tmp_path: Path, sample_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `hybridwb lab` sets up, used by a real kernel started in notebooks/guides/ (as
    JupyterLab starts one for a guide): `wb` exists without `%load_ext`, on the project's
    own sample (the oracle: sqlite3 on that file), and no second project grows there."""
    import os
    import sqlite3

    from jupyter_client.manager import start_new_kernel

    shop_project(tmp_path, sample_db)
    guides = tmp_path / "notebooks" / "guides"
    guides.mkdir(parents=True)
    monkeypatch.chdir(guides)
    result = CliRunner().invoke(main, ["lab", "--print-only"])
    assert result.exit_code == 0, result.output
    lab_env = dict(line.split("=", 1) for line in result.output.splitlines()[1:])
    assert set(lab_env) == {"IPYTHONDIR", "HYBRIDWB_HOME"}, result.output
    with sqlite3.connect(tmp_path / ".hybridwb" / "sample.db") as db:
        [(vip,)] = db.execute("SELECT COUNT(*) FROM customers WHERE grade = 'VIP'").fetchall()

    km, kc = start_new_kernel(kernel_name="python3", env={**os.environ, **lab_env}, cwd=guides)
    shown: list[str] = []
    try:
        reply = kc.execute_interactive(
            "print(wb.settings.project_root)\n"
            "print(int(wb.sql(\"SELECT COUNT(*) AS n FROM customers WHERE grade = 'VIP'\")['n'][0]))",
            timeout=120,
            output_hook=lambda msg: shown.append(msg["content"].get("text", "")),
        )
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert reply["content"]["status"] == "ok", reply["content"]
    assert "".join(shown).split() == [str(tmp_path), str(vip)]
    assert not (guides / ".hybridwb").exists() and not (guides / "mappings").exists()


def test_targets_preview_of_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "t.json").write_bytes(b"\xff\xfe")
    result = CliRunner().invoke(main, ["targets", "preview", str(tmp_path / "t.json")])
    assert result.exit_code == 1 and "not UTF-8" in result.output
    # CliRunner keeps an uncaught exception in .exception, never in the output
    assert isinstance(result.exception, SystemExit), result.exception
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_demo_without_the_demo_extra_says_the_pip_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    program = "import sys\nsys.modules['faker'] = None\nfrom hybridwb.cli import main\nmain()"
    out = subprocess.run(
        [sys.executable, "-c", program, "demo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1
    assert "pip install 'hybridwb[demo]'" in out.stderr and "Traceback" not in out.stderr


def test_doctor_never_raises_on_an_unexpected_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CA file that does not exist fails inside the driver set-up with a raw OSError."""
    monkeypatch.setenv("MYSQL_HOST", "127.0.0.1")
    monkeypatch.setenv("MYSQL_READ_USER", "nobody")
    monkeypatch.setenv("MYSQL_SSL_CA", "/nonexistent/ca.pem")
    result = CliRunner().invoke(main, ["doctor"])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "FAIL  source" in result.output


def test_stats_into_an_unwritable_place_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x", encoding="utf-8")
    result = CliRunner().invoke(main, ["stats", "--out", str(tmp_path / "file" / "s.html")])
    assert result.exit_code == 1 and "Cannot write" in result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert len(result.output.strip().splitlines()) == 1, result.output
