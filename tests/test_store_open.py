"""Opening a store never migrates or seeds it; only `hybridwb init` does (and the very first
use of the embedded SQLite store, when its file does not exist yet)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from sqlalchemy.engine import URL

from hybridwb.cli import main
from hybridwb.config import load_settings
from hybridwb.errors import StoreError
from hybridwb.platform import migrate
from hybridwb.platform.backend import SqlBackend
from hybridwb.platform.store import Store, open_store
from tests.test_store import _reset_pg


def version(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return str(conn.execute("SELECT version_num FROM alembic_version").fetchone()[0])


def sql(db: Path, statement: str) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(statement)


def test_head_revision_is_read_from_the_files_as_alembic_sees_it() -> None:
    assert migrate.head_revision() == migrate.head()


def test_first_use_of_the_embedded_store_creates_and_seeds_it(tmp_path: Path) -> None:
    db = tmp_path / ".hybridwb" / "platform.db"
    assert not db.exists()
    st = open_store(load_settings(tmp_path, env={}))
    st.close()
    assert version(db) == migrate.head_revision()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM message_templates").fetchone()[0] == 2


def test_opening_an_existing_store_neither_migrates_nor_seeds(tmp_path: Path) -> None:
    """Checked in a fresh interpreter: alembic is never imported, and seed rows deleted
    by the user stay deleted."""
    open_store(load_settings(tmp_path, env={})).close()
    db = tmp_path / ".hybridwb" / "platform.db"
    sql(db, "DELETE FROM message_templates")
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from hybridwb.config import load_settings\n"
        "from hybridwb.platform.store import open_store\n"
        f"st = open_store(load_settings(Path({str(tmp_path)!r}), env={{}}))\n"
        "print(len(st.templates.list()), len(st.workflows.list()))\n"
        "st.close()\n"
        "print('alembic' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=tmp_path
    ).stdout.split()
    assert out == ["0", "0", "False"]
    assert version(db) == migrate.head_revision()


def test_an_old_schema_says_run_init_and_init_upgrades_it(tmp_path: Path) -> None:
    open_store(load_settings(tmp_path, env={})).close()
    db = tmp_path / ".hybridwb" / "platform.db"
    sql(db, "UPDATE alembic_version SET version_num = '0002'")
    st = open_store(load_settings(tmp_path, env={}))
    with pytest.raises(StoreError, match=r"schema 0002.*run `hybridwb init`") as info:
        st.workflows.list()
    assert "\n" not in str(info.value)
    st.close()
    result = CliRunner().invoke(main, ["init"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert version(db) == migrate.head_revision()
    st = open_store(load_settings(tmp_path, env={}))
    assert st.workflows.list() == []
    st.close()


@pytest.mark.postgres
def test_an_uninitialised_postgres_store_says_run_init(pg_db: URL) -> None:
    _reset_pg(pg_db)
    env = {"HYBRIDWB_STORE_URL": pg_db.render_as_string(hide_password=False)}
    st = open_store(load_settings(env=env))
    with pytest.raises(StoreError, match="no schema yet; run `hybridwb init`"):
        st.workflows.list()
    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={pg_db.database}") as conn:
        assert conn.execute("SELECT to_regclass('public.workflows')").fetchone() == (None,)
    st.init()
    assert st.workflows.list() == []
    st.close()


def test_init_on_a_fresh_directory_reports_the_creation(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["init"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"store schema none -> {migrate.head_revision()} on sqlite; 6 seed rows" in result.output
    again = CliRunner().invoke(main, ["init"], catch_exceptions=False)
    assert "0 seed rows" in again.output


def test_kernels_starting_at_once_all_get_the_whole_embedded_store(tmp_path: Path) -> None:
    """Four processes open a fresh directory at the same moment: none sees a half-made
    store, and the seed rows exist once."""
    script = (
        "from pathlib import Path\n"
        "from hybridwb.config import load_settings\n"
        "from hybridwb.platform.store import open_store\n"
        f"st = open_store(load_settings(Path({str(tmp_path)!r}), env={{}}))\n"
        "print(len(st.templates.list()))\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0]
    assert outputs == ["2"] * 4
    db = tmp_path / ".hybridwb" / "platform.db"
    assert version(db) == migrate.head_revision()
    assert [p.name for p in db.parent.iterdir() if p.name.endswith(".tmp")] == []


def _schema(db: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT type, name, coalesce(sql, '') FROM sqlite_master ORDER BY type, name"
        ).fetchall()


def _seeded(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT id, name FROM message_templates ORDER BY name").fetchall()


def test_stores_made_after_the_first_have_the_schema_the_migrations_make(tmp_path: Path) -> None:
    """Each embedded store after a process's first starts as a copy of the schema its
    migrations made once (`_migrated_image`). The oracle is a store the migrations build
    in place (`Store.init` on an empty file): every table, index and trigger the same, the
    same revision, the seed rows each store's own (ids of their own, no row twice)."""
    made = []
    for name in ("a", "b", "c"):
        st = open_store(load_settings(tmp_path / name, env={}))
        assert st._created is not None and st._created["from"] is None
        st.close()
        made.append(tmp_path / name / ".hybridwb" / "platform.db")
    oracle = tmp_path / "in-place.db"
    st = Store(SqlBackend(URL.create("sqlite", database=str(oracle))))
    st.init()
    st.close()
    for db in made:
        assert _schema(db) == _schema(oracle)
        assert version(db) == migrate.head_revision()
        assert [n for _, n in _seeded(db)] == [n for _, n in _seeded(oracle)]
        assert [p.name for p in db.parent.iterdir() if p.name.endswith(".tmp")] == []
    ids = [i for db in made for i, _ in _seeded(db)]
    assert len(set(ids)) == len(ids) == 2 * len(made)
