"""The guides are the documentation: they must run, on the embedded sample and on real servers.

Each pass runs `pytest --nbval-lax notebooks/guides` in a subprocess with its own home,
mapping file and reports directory, so the repository is never written to.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import REPO, install_sample_mappings, ro_url

GUIDES = REPO / "notebooks" / "guides"


def run_guides(
    tmp_path: Path,
    sample_db: Path | None,
    extra_env: dict[str, str],
    paths: list[Path] | None = None,
) -> subprocess.CompletedProcess:
    home = tmp_path / ".hybridwb"
    home.mkdir(exist_ok=True)
    if sample_db is not None:
        (home / "sample.db").write_bytes(sample_db.read_bytes())
    source = extra_env.get("HYBRIDWB_SOURCE_URL")  # mappings belong to one source
    mappings = install_sample_mappings(tmp_path, make_url(source) if source else None)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HYBRIDWB_", "MYSQL_", "SUPABASE_"))
    }
    env.update(
        HYBRIDWB_HOME=str(home),
        HYBRIDWB_MAPPINGS=str(mappings),
        HYBRIDWB_REPORTS=str(tmp_path / "reports"),
        HYBRIDWB_WORKFLOWS=str(REPO / "notebooks" / "workflows"),
        **extra_env,
    )
    targets = [str(p) for p in (paths or [GUIDES])]
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nbval-lax",
            "-p",
            "no:cacheprovider",
            "-q",
            "--nbval-cell-timeout=300",
            *targets,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )


def test_guides_exist() -> None:
    names = sorted(p.name for p in GUIDES.glob("*.ipynb"))
    assert len(names) == 6 and names[0].startswith("01_")


def test_guides_commit_outputs_only_where_nbval_checks_them() -> None:
    import nbformat

    checked = 0
    for path in GUIDES.glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        for cell in (c for c in nb.cells if c.cell_type == "code"):
            if cell.source.startswith("# NBVAL_CHECK_OUTPUT"):
                assert cell.outputs, f"{path.name}: a checked cell needs its expected output"
                checked += 1
            else:
                assert not cell.get("outputs"), (
                    f"{path.name}: outputs committed in an unchecked cell"
                )
    assert checked >= 5


def _error_cells(nb) -> list:  # type: ignore[no-untyped-def]
    return [c for c in nb.cells if c.cell_type == "code" and "except " in c.source]


def test_error_cells_assert_instead_of_printing() -> None:
    """A cell that shows an error must fail when the error stops coming (or changes class):
    it names one error class and has an `else: raise` or an assert on the message."""
    import nbformat

    cells = 0
    for path in GUIDES.glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        for cell in _error_cells(nb):
            if "except hybridwb.NotFound" in cell.source:  # clean-up of an earlier run
                continue
            cells += 1
            assert "else:\n" in cell.source and "raise AssertionError" in cell.source, (
                f"{path.name}: an error cell passes when nothing is raised:\n{cell.source}"
            )
            assert "except (" not in cell.source, f"{path.name}: one class per except"
    assert cells >= 3


@pytest.mark.slow
def test_a_changed_checked_output_fails_the_guides(tmp_path: Path, sample_db: Path) -> None:
    """The checked outputs are really compared: a guide whose expected output is wrong
    (as if the formatter had changed) fails."""
    import nbformat

    nb = nbformat.read(GUIDES / "04_variable_mapping.ipynb", as_version=4)
    cell = next(c for c in nb.cells if "phone_mask(" in c.source)
    assert cell.source.startswith("# NBVAL_CHECK_OUTPUT")
    cell.outputs[0]["text"] = cell.outputs[0]["text"].replace("010-****-5678", "010-1234-5678")
    path = tmp_path / "doctored.ipynb"
    nbformat.write(nb, path)
    result = run_guides(tmp_path, sample_db, {}, [path])
    assert result.returncode != 0, result.stdout[-2000:]
    assert "010-****-5678" in result.stdout


@pytest.mark.slow
def test_guides_run_on_the_embedded_sample(tmp_path: Path, sample_db: Path) -> None:
    result = run_guides(tmp_path, sample_db, {})
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "failed" not in result.stdout.splitlines()[-1]


@pytest.mark.slow
@pytest.mark.mysql
@pytest.mark.postgres
def test_guides_run_on_mariadb_and_postgres(tmp_path: Path, mysql_db: str, pg_db) -> None:  # type: ignore[no-untyped-def]
    with psycopg.connect(
        f"host=127.0.0.1 user=postgres dbname={pg_db.database}", autocommit=True
    ) as conn:
        conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    env = {
        "HYBRIDWB_SOURCE_URL": ro_url(mysql_db).render_as_string(hide_password=False),
        "HYBRIDWB_STORE_URL": pg_db.render_as_string(hide_password=False),
    }
    init = subprocess.run(
        [str(Path(sys.executable).parent / "hybridwb"), "init"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    assert init.returncode == 0, init.stdout + init.stderr  # a team runs this once per store
    result = run_guides(tmp_path, None, env)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_a_broken_guide_fails_the_build(tmp_path: Path, sample_db: Path) -> None:
    import nbformat

    broken = nbformat.v4.new_notebook()
    broken.cells = [
        nbformat.v4.new_code_cell("%load_ext hybridwb"),
        nbformat.v4.new_code_cell("%%mysql\nSELECT * FROM no_such_table"),
    ]
    path = tmp_path / "broken_guide.ipynb"
    nbformat.write(broken, path)
    result = run_guides(tmp_path, sample_db, {}, [path])
    assert result.returncode != 0
    assert "no_such_table" in result.stdout
