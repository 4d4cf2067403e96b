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
