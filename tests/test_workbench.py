"""The workbench ties source, store and the QueryLog together."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pymysql
import pytest

import hybridwb
from tests.conftest import ro_url


def test_query_log_reaches_the_store_in_batches(sample_db: Path, tmp_path: Path) -> None:
    (tmp_path / ".hybridwb").mkdir()
    (tmp_path / ".hybridwb" / "sample.db").write_bytes(sample_db.read_bytes())
    wb = hybridwb.connect()
    wb.querylog.batch_size = 3
    store = wb.store  # attaches the store as the log's sink
    for _ in range(4):
        wb.sql("SELECT COUNT(*) FROM customers WHERE grade = 'VIP'")
    stored = store.sql("SELECT query, status FROM query_logs")
    assert len(stored) == 3  # one batch written, one entry pending
    wb.close()
    stored = store.sql("SELECT query, status FROM query_logs")
    assert len(stored) == 4
    assert set(stored["query"]) == {"SELECT COUNT ( * ) FROM customers WHERE grade = ?"}


def sample_project(root: Path, sample_db: Path) -> Path:
    (root / ".hybridwb").mkdir(parents=True, exist_ok=True)
    (root / ".hybridwb" / "sample.db").write_bytes(sample_db.read_bytes())
    return root


def stored_query_logs(root: Path) -> int:
    """Rows in the store's query_logs, read directly with sqlite3 (the oracle)."""
    with sqlite3.connect(root / ".hybridwb" / "platform.db") as conn:
        return conn.execute("SELECT COUNT(*) FROM query_logs").fetchone()[0]


def test_with_block_hands_the_query_log_to_the_store(sample_db: Path, tmp_path: Path) -> None:
    sample_project(tmp_path, sample_db)
    with hybridwb.connect() as wb:
        wb.sql("SELECT COUNT(*) FROM customers")
        wb.sql("SELECT 1")
        assert "store" not in wb.__dict__  # nothing opened the store yet
    assert wb.closed
    assert stored_query_logs(tmp_path) == 2
    wb.close()  # idempotent
    assert stored_query_logs(tmp_path) == 2


def test_a_workbench_left_open_is_closed_when_the_process_ends(
    sample_db: Path, tmp_path: Path
) -> None:
    """What a kernel does: connect, query, get shut down without calling close()."""
    sample_project(tmp_path, sample_db)
    code = "import hybridwb\nwb = hybridwb.connect()\nwb.sql('SELECT 1')\nwb.sql('SELECT 2')\n"
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True, timeout=120)
    assert stored_query_logs(tmp_path) == 2


@pytest.mark.parametrize("marker", ["pyproject", "dot-hybridwb", "HYBRIDWB_HOME"])
def test_a_kernel_in_a_subfolder_uses_the_projects_files(
    sample_db: Path, tmp_path: Path, marker: str
) -> None:
    root = tmp_path / "project"
    root.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYBRIDWB_")}
    if marker == "pyproject":
        (root / "pyproject.toml").write_text("[tool.hybridwb]\n", encoding="utf-8")
    if marker == "HYBRIDWB_HOME":
        env["HYBRIDWB_HOME"] = str(root)
    sample_project(root, sample_db)
    guides = root / "notebooks" / "guides"
    guides.mkdir(parents=True)
    code = (
        "import hybridwb\n"
        "with hybridwb.connect() as wb:\n"
        "    wb.sql('SELECT 1')\n"
        "    print(wb.settings.project_root, wb.settings.mappings_path, wb.settings.reports_dir)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=guides,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout.split()
    assert out == [str(root), str(root / "mappings/table-mappings.json"), str(root / "reports")]
    assert stored_query_logs(root) == 1  # the project's store, not one in notebooks/guides
    assert not (guides / ".hybridwb").exists()


def test_project_root_without_marker_is_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hybridwb import config
    from hybridwb.config import find_project_root

    (tmp_path / "a" / "b").mkdir(parents=True)
    assert find_project_root(tmp_path / "a" / "b", {}) == tmp_path / "a" / "b"
    (tmp_path / "a" / ".hybridwb").mkdir()
    assert find_project_root(tmp_path / "a" / "b", {}) == tmp_path / "a"
    # a stray .hybridwb/ in a ceiling folder (home, temp) is not a project
    monkeypatch.setattr(config, "_ceilings", lambda: {(tmp_path / "a").resolve(), Path("/")})
    assert find_project_root(tmp_path / "a" / "b", {}) == tmp_path / "a" / "b"
    # compatibility: HYBRIDWB_HOME naming the data folder means its parent is the root
    env = {"HYBRIDWB_HOME": str(tmp_path / "x" / ".hybridwb")}
    assert find_project_root(tmp_path / "a", env) == tmp_path / "x"


# -- bad input: one-line HybridwbError, never a raw exception ------------------------------
def _deep_json(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"\xff\xfe{\x00}\x00", "not UTF-8"),
        (_deep_json(100_000).encode(), "nested too deeply"),
        (b'{"customers": ', "not valid JSON"),
    ],
    ids=["not-utf8", "nested-100000", "truncated"],
)
def test_bad_mappings_file_is_one_line_error(
    sample_db: Path, tmp_path: Path, content: bytes, words: str
) -> None:
    sample_project(tmp_path, sample_db)
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "table-mappings.json").write_bytes(content)
    with hybridwb.connect() as wb, pytest.raises(hybridwb.ValidationError, match=words) as info:
        wb.mappings.load()
    assert "\n" not in str(info.value)


def test_target_nested_a_thousand_levels_is_one_line_error(sample_db: Path, tmp_path: Path) -> None:
    sample_project(tmp_path, sample_db)
    definition: dict = {"table": "customers", "where": {"all": []}}
    inner = definition["where"]
    for _ in range(1000):
        child: dict = {"all": []}
        inner["all"].append(child)
        inner = child
    with hybridwb.connect() as wb:
        with pytest.raises(hybridwb.ValidationError, match="nested too deeply"):
            wb.targets.preview(definition)
        text = '{"table": "customers", "where": ' + '{"all": [' * 1000 + "]}" * 1000 + "}"
        with pytest.raises(hybridwb.ValidationError, match="nested too deeply"):
            wb.targets.preview(text)


@pytest.mark.parametrize(
    ("url", "error", "words"),
    [
        (
            "mysql+pymysql://u:pw@127.0.0.1/db?bogus_option=1",
            "ConfigError",
            "unknown option ?bogus_option",
        ),
        (
            "mysql+mysqlconnector://u:pw@127.0.0.1/db",
            "MissingExtra",
            "pip install mysql-connector-python",
        ),
        ("oracle+nosuch://u:pw@h/db", "ConfigError", "unknown kind of database"),
    ],
    ids=["unknown-query-option", "driver-not-installed", "unknown-dialect"],
)
def test_bad_source_url_is_one_line_error(tmp_path: Path, url: str, error: str, words: str) -> None:
    with pytest.raises(hybridwb.HybridwbError) as info:
        hybridwb.connect(url, env={})
    assert type(info.value).__name__ == error
    assert words in str(info.value) and "\n" not in str(info.value)
    assert "pw" not in str(info.value).replace("pip", "")


@pytest.mark.parametrize(
    ("module", "code", "line"),
    [
        ("faker", "hybridwb.connect()", "pip install 'hybridwb[demo]'"),
        (
            "psycopg",
            "hybridwb.connect(store='postgresql+psycopg://u@127.0.0.1/x')",
            "pip install 'hybridwb[postgres]'",
        ),
    ],
    ids=["demo-extra", "postgres-extra"],
)
def test_a_missing_extra_says_the_pip_line(
    tmp_path: Path, module: str, code: str, line: str
) -> None:
    program = (
        "import sys\n"
        f"sys.modules[{module!r}] = None  # as if the extra were not installed\n"
        "import hybridwb\n"
        "try:\n"
        f"    {code}\n"
        "except hybridwb.ConfigError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", program], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("MissingExtra") and line in out.stdout
    assert out.stdout.count("\n") == 1


def test_connect_refuses_arguments_of_the_wrong_kind(tmp_path: Path) -> None:
    with pytest.raises(hybridwb.ConfigError, match="must be a database URL"):
        hybridwb.connect(42)  # type: ignore[arg-type]
    with pytest.raises(hybridwb.ConfigError, match="Unknown setting"):
        hybridwb.connect(no_such_setting=1)


@pytest.mark.mysql
def test_close_releases_every_source_connection(
    mysql_db: str, mysql_admin: pymysql.Connection, tmp_path: Path
) -> None:
    """A leaked pool is invisible to the caller; the server's processlist is the oracle."""

    def open_connections() -> int:
        with mysql_admin.cursor() as cur:
            cur.execute(
                "SELECT COUNT(*) FROM information_schema.processlist "
                "WHERE db = %s AND id <> CONNECTION_ID()",
                (mysql_db,),
            )
            return int(cur.fetchone()[0])

    before = open_connections()
    wb = hybridwb.connect(source=ro_url(mysql_db).render_as_string(hide_password=False))
    wb.sql("SELECT COUNT(*) FROM customers")
    assert open_connections() > before, "the query left no connection to count"
    wb.close()
    deadline = time.monotonic() + 5
    while open_connections() != before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert open_connections() == before, "wb.close() left source connections open"


def test_the_query_log_reaches_the_store_while_the_workbench_lives(
    sample_db: Path, tmp_path: Path
) -> None:
    """A kernel that runs for days hands full batches to the store as it goes (the store is
    opened by the first full batch), so the buffer never grows unseen."""
    sample_project(tmp_path, sample_db)
    wb = hybridwb.connect()
    wb.querylog.batch_size = 3
    for _ in range(4):
        wb.sql("SELECT COUNT(*) FROM customers")
    assert stored_query_logs(tmp_path) == 3  # before close: one batch written, one pending
    wb.close()
    assert stored_query_logs(tmp_path) == 4


def test_a_failing_log_sink_is_left_alone_and_the_buffer_stays_bounded() -> None:
    from hybridwb.source.querylog import QueryLog, QueryLogEntry

    class Down:
        calls = 0

        def write_query_logs(self, entries: list[QueryLogEntry]) -> None:
            Down.calls += 1
            raise ConnectionRefusedError("store down")

    log = QueryLog(maxlen=50, batch_size=10)
    log.sink = Down()
    for n in range(500):
        log.record(QueryLogEntry("db", f"SELECT {n}", 1.0, 1, "success"))
    assert Down.calls == 1  # one try, then the sink is left alone for RETRY_AFTER seconds
    assert log.pending == 50  # bounded: the oldest were dropped
    assert log.flush() == 0 and Down.calls == 2  # an explicit flush always tries
    assert log.last_error == "ConnectionRefusedError"
