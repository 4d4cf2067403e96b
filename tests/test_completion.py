"""Completion of mapped tables and columns in %%mysql / %%platform cells, through IPython's
own completer in a real InteractiveShell, and jupysql wired with one-line refusals.

The oracle for names is the mapping file on disk and the store's tables in sqlite3."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from IPython.core.completer import provisionalcompleter
from IPython.core.interactiveshell import InteractiveShell

from hybridwb.completion import sql_completions
from tests.conftest import install_sample_mappings
from tests.test_magics import RaisingShell

NAMES = {"customers": ["customer_id", "name", "phone"], "payments": ["payment_id", "amount"]}


@pytest.mark.parametrize(
    ("cell", "token", "expected"),
    [
        ("%%mysql\nSELECT * FROM cu", "cu", [("customers", "table")]),
        ("%%mysql\nSELECT customers.ph", "customers.ph", [("customers.phone", "column")]),
        ("%%mysql\nSELECT `customers`.na", "`customers`.na", [("`customers`.name", "column")]),
        ("%%mysql\nSELECT na FROM customers", "na", [("name", "column")]),
        ("%%mysql\nSELECT p FROM payments", "p", [("payments", "table"), ("payment_id", "column")]),
        ("%%mysql\nSELECT nope.x", "nope.x", []),
        ("%%mysql --li", "--li", []),
    ],
    ids=[
        "table",
        "table-dot-column",
        "quoted-table",
        "column-of-named-table",
        "both",
        "unknown-table",
        "magic-line",
    ],
)
def test_sql_completions(cell: str, token: str, expected: list) -> None:
    cursor = cell.index(token) + len(token)
    assert sql_completions(cell, cursor, token, NAMES) == expected


@pytest.fixture
def shell(sample_db: Path, tmp_path: Path) -> RaisingShell:
    sh = RaisingShell()
    (tmp_path / ".hybridwb").mkdir()
    (tmp_path / ".hybridwb" / "sample.db").write_bytes(sample_db.read_bytes())
    install_sample_mappings(tmp_path)
    sh.run_cell("%load_ext hybridwb")
    yield sh
    sh.run_cell("%unload_ext hybridwb")
    InteractiveShell.clear_instance()


def complete(shell: InteractiveShell, cell: str, cursor: int | None = None) -> list[str]:
    """What Tab offers at `cursor` (default: the end), through IPython's own completer."""
    at = len(cell) if cursor is None else cursor
    with provisionalcompleter():
        return [c.text for c in shell.Completer.completions(cell, at)]


def test_mapped_tables_and_columns_complete_in_mysql_cells(
    shell: RaisingShell, tmp_path: Path
) -> None:
    mapping = json.loads((tmp_path / "mappings" / "table-mappings.json").read_text("utf-8"))
    tables = [t for t in mapping if not t.startswith("_")]
    assert complete(shell, "%%mysql\nSELECT * FROM cust") == [
        t for t in tables if t.startswith("cust")
    ]
    assert set(complete(shell, "%%mysql\nSELECT customers.")) == {
        f"customers.{f}" for f in mapping["customers"]["fields"]
    }
    cell = "%%mysql\nSELECT ph FROM customers"
    assert "phone" in complete(shell, cell, cell.index("ph ") + 2)
    # not in a Python cell, and not on the magic's own line
    assert "customers" not in complete(shell, "cust")
    assert "customers" not in complete(shell, "%%mysql cust")


def test_store_tables_complete_in_platform_cells(shell: RaisingShell, tmp_path: Path) -> None:
    shell.run_cell("%platform templates")  # the embedded store is created on first use
    with sqlite3.connect(tmp_path / ".hybridwb" / "platform.db") as store:
        tables = {n for (n,) in store.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        columns = {r[1] for r in store.execute("PRAGMA table_info(message_templates)")}
    got = complete(shell, "%%platform\nSELECT * FROM message_")
    assert got and set(got) <= tables and "message_templates" in got
    assert set(complete(shell, "%%platform\nSELECT message_templates.")) == {
        f"message_templates.{c}" for c in columns
    }


def test_jupysql_is_ready_without_load_ext_and_refusals_are_one_line(
    sample_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sh = InteractiveShell()  # a normal shell: errors are shown, not raised
    (tmp_path / ".hybridwb").mkdir()
    (tmp_path / ".hybridwb" / "sample.db").write_bytes(sample_db.read_bytes())
    try:
        sh.run_cell("%load_ext hybridwb")
        result = sh.run_cell("%sql SELECT COUNT(*) AS n FROM customers")  # no %load_ext sql
        assert result.error_in_exec is None and list(result.result.dict()["n"]) == [2000]
        capsys.readouterr()
        refused = sh.run_cell("%sql DELETE FROM customers")
        shown = capsys.readouterr()
        assert type(refused.error_in_exec).__name__ == "ReadOnlyViolation"  # still an error
        lines = [
            line
            for line in (shown.out + shown.err).splitlines()
            if line.strip() and not line.startswith("Running query in")  # jupysql's own note
        ]
        assert lines == [
            "ReadOnlyViolation: Refused: DELETE is not a read statement; hybridwb only reads. "
            "Use SELECT, SHOW, DESCRIBE or EXPLAIN."
        ]
        with sqlite3.connect(tmp_path / ".hybridwb" / "sample.db") as db:
            assert db.execute("SELECT COUNT(*) FROM customers").fetchone() == (2000,)
    finally:
        sh.run_cell("%unload_ext hybridwb")
        InteractiveShell.clear_instance()
