"""The guides are the documentation: they must run, and show what they say they show.

On the embedded sample every code cell's output is compared with the one committed in
the notebook (strict nbval), after tests/guides_sanitize.cfg has rewritten what varies
between runs; `make guides` (scripts/regen_guides.py) makes those outputs in the same
set-up (tests/_guides.py). On MariaDB + PostgreSQL the guides run strict too, with
tests/guides_servers_sanitize.cfg added (server names, versions, URLs): every cell is
compared except the few in SERVER_OUTPUTS, each with the reason its output is the
server's own; those still run and must not raise.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests import _guides
from tests._guides import GUIDES, SANITIZE
from tests.conftest import install_sample_mappings, ro_url

#: at most this many cells are run without comparing their output (each says why)
MAX_IGNORED = 2
#: on MariaDB + PostgreSQL: the rules added to tests/guides_sanitize.cfg
SERVERS_SANITIZE = Path(__file__).with_name("guides_servers_sanitize.cfg")
#: cells whose output on MariaDB + PostgreSQL is the servers' own (they run, must not raise,
#: and are not compared there; the sample run compares them)
SERVER_OUTPUTS = {
    ("02_mysql_query_guide.ipynb", 5): "why: EXPLAIN is the server's plan (MariaDB's columns, "
    "not SQLite's query plan)",
    ("03_table_mapping.ipynb", 1): "why: MariaDB indexes a foreign key by itself "
    "(payments.subscription_id) and estimates row counts",
    ("03_table_mapping.ipynb", 2): "why: the suggestion reads MariaDB's column comments "
    "(created_at: 가입일시); SQLite keeps none",
    ("06_troubleshooting.ipynb", 1): "why: doctor lists the configured URLs and the MySQL "
    "connection budget, which the sample does not have",
    ("06_troubleshooting.ipynb", 4): "why: MySQL's timeout message adds what to do; the cell "
    "asserts the shared start of the message",
}


def run_guides(
    tmp_path: Path,
    sample_db: Path | None,
    extra_env: dict[str, str],
    paths: list[Path] | None = None,
    *,
    strict: bool = True,
    sanitize: Path = SANITIZE,
) -> subprocess.CompletedProcess:
    """nbval over the guides (or `paths`) in a project of their own under tmp_path."""
    root = tmp_path / "project"
    source = extra_env.get("HYBRIDWB_SOURCE_URL")  # mappings belong to one source
    if source:
        install_sample_mappings(root, make_url(source))
    env = _guides.project(root, sample_db, extra_env)
    mode = ["--nbval", f"--nbval-sanitize-with={sanitize}"] if strict else ["--nbval-lax"]
    targets = [str(p) for p in (paths or [GUIDES])]
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *mode,
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


def _code_cells(path: Path) -> list:  # type: ignore[type-arg]
    nb = nbformat.read(path, as_version=4)
    return [c for c in nb.cells if c.cell_type == "code"]


def test_guides_exist() -> None:
    names = [p.name for p in _guides.guides()]
    assert len(names) == 6 and names[0].startswith("01_")


def test_every_cell_is_compared_except_a_few_that_say_why() -> None:
    """Strict nbval compares every code cell; the only opt-out is NBVAL_IGNORE_OUTPUT with
    a reason, on at most MAX_IGNORED cells in all guides."""
    ignored = []
    for path in _guides.guides():
        for cell in _code_cells(path):
            lines = cell.source.splitlines()
            for marker in ("NBVAL_SKIP", "NBVAL_CHECK_OUTPUT", "NBVAL_RAISES_EXCEPTION"):
                assert marker not in cell.source, f"{path.name}: {marker} in\n{cell.source}"
            if "NBVAL_IGNORE_OUTPUT" in cell.source:
                # nbval reads the marker alone on its line; the next line says why
                assert lines[0] == "# NBVAL_IGNORE_OUTPUT", f"{path.name}:\n{cell.source}"
                assert re.match(r"# why: \w.{20,}", lines[1]), (
                    f"{path.name}: say why the output is not compared:\n{cell.source}"
                )
                ignored.append(path.name)
    assert len(ignored) <= MAX_IGNORED, ignored


def test_committed_outputs_are_sanitized_small_and_tables() -> None:
    """What is committed is what the sanitizer leaves (no run ids, machine paths or
    timestamps of the machine that made it), without the 1 MB grid library, and results
    are shown as tables (HTML), not as printed dicts and lists."""
    rules = _guides.patterns()
    tables = 0
    for path in _guides.guides():
        text = path.read_text(encoding="utf-8")
        assert len(text) < 200_000, f"{path.name} is {len(text):,} bytes"
        assert str(_guides.REPO) not in text and "/tmp/hwb-" not in text, path.name
        for cell in _code_cells(path):
            for output in cell.outputs:
                values = [output.get("text", "")] + [
                    v for v in output.get("data", {}).values() if isinstance(v, str)
                ]
                for value in values:
                    assert _guides.sanitize(value, rules) == value, f"{path.name}: {value[:300]}"
                plain = output.get("data", {}).get("text/plain", "")
                assert not plain.startswith(("{'", "[{", "[('")), f"{path.name}: a raw repr {plain}"
                html = output.get("data", {}).get("text/html", "")
                tables += "hybridwb-table" in html
    assert tables >= 12


EMPTY = re.compile(r"(?<![\d,.])0 rows\b|\bno rows\b|Empty DataFrame|대상 0명")


def test_every_example_returns_rows_on_the_demo() -> None:
    """A guide teaches with results: no committed output (which strict nbval holds equal to
    what the seeded demo returns) is an empty result."""
    empty = []
    for path in _guides.guides():
        for cell in _code_cells(path):
            for output in cell.outputs:
                texts = [output.get("text", "")] + [
                    v for v in output.get("data", {}).values() if isinstance(v, str)
                ]
                if any(EMPTY.search(t) for t in texts):
                    empty.append(f"{path.name}: {cell.source[:80]}")
    assert not empty, empty


def test_outputs_were_made_with_the_installed_versions() -> None:
    """Faker draws the sample's names and cities, pandas prints the text tables, itables
    draws the grids: outputs made with other versions would not compare."""
    installed = _guides.versions()
    for path in _guides.guides():
        assert _guides.recorded_versions(path) == installed, (
            f"{path.name} was made with {_guides.recorded_versions(path)}; installed are "
            f"{installed}: run `make guides` (or install the versions pinned in the dev extra)"
        )


def test_error_cells_assert_the_class_and_message() -> None:
    """A cell that shows an error fails when the error stops coming, changes class or
    changes its message: it has an `else: raise AssertionError`, asserts the exact type
    and asserts on the message (printing alone would pass anything)."""
    cells = 0
    for path in _guides.guides():
        for cell in _code_cells(path):
            source = cell.source
            if "except " not in source or "except hybridwb.NotFound:  # left by" in source:
                continue
            cells += 1
            assert "else:\n" in source and "raise AssertionError" in source, (
                f"{path.name}: an error cell passes when nothing is raised:\n{source}"
            )
            assert "except (" not in source, f"{path.name}: one class per except"
            assert re.search(r"assert type\(\w+\) is hybridwb\.\w+", source), source
            assert re.search(r"assert str\(\w+\)(\.startswith\(| == )", source), source
    assert cells >= 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("schema           version 0004", "schema           version REV"),
        (
            "OK    schema           version 0005_campaign_tables",
            "OK    schema           version REV",
        ),
        (
            "17 settings from default, env:HYBRIDWB_HOME",
            "N settings from default, env:HYBRIDWB_HOME",
        ),
        ("…/7d9e4c1a-3b2f-4f9e-8a1b-0c2d3e4f5a6b.html", "…/RUN-ID.html"),
        ("reachable in 12 ms", "reachable in N ms"),
        ("3 rows · 1,234.5 ms", "3 rows · N ms"),
        ("ran past its 0.2s limit", "ran past its 0.2s limit"),
        ("started 2026-12-04 11:40:12.123456+00:00", "started TIMESTAMP"),
        ("first 2026-12-04 11:40:12 UTC", "first TIMESTAMP"),
        ("created 2023-04-18 13:22:50", "created 2023-04-18 13:22:50"),
        ("store sqlite:////tmp/x/y/.hybridwb/platform.db", "store sqlite:///…/platform.db"),
        ("project /work/main/notebooks/guides", "project …/guides"),
        ("source SQLite 3.40.1 (", "source SQLite X.Y.Z ("),
        ('<table id="hybridwb_0123456789ab">', '<table id="hybridwb_GRID">'),
        ("</td></tr> https://itables.org/x", "</td></tr> https://itables.org/x"),
    ],
)
def test_the_sanitizer_rewrites_only_what_varies(text: str, expected: str) -> None:
    assert _guides.sanitize(text) == expected


@pytest.mark.slow
def test_a_changed_output_fails_the_guides(tmp_path: Path, sample_db: Path) -> None:
    """The committed outputs are really compared: a guide whose expected output is wrong
    (as if the formatter had changed) fails."""
    nb = nbformat.read(GUIDES / "04_variable_mapping.ipynb", as_version=4)
    cell = next(c for c in nb.cells if "phone_mask(" in c.source)
    cell.outputs[0]["text"] = cell.outputs[0]["text"].replace("010-****-5678", "010-1234-5678")
    nb.cells = nb.cells[: nb.cells.index(cell) + 1]  # the cells after it prove nothing here
    path = tmp_path / "doctored.ipynb"
    nbformat.write(nb, path)
    result = run_guides(tmp_path, sample_db, {}, [path])
    assert result.returncode != 0, result.stdout[-2000:]
    assert "010-****-5678" in result.stdout


@pytest.mark.slow
def test_a_changed_grid_value_fails_the_guides(tmp_path: Path, sample_db: Path) -> None:
    """A `%%mysql` grid is committed as itables HTML and compared too, data and all: a guide
    whose committed grid holds another row than the query returns fails, even with its
    text form left right."""
    nb = nbformat.read(GUIDES / "02_mysql_query_guide.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.source.startswith("%%mysql --limit 5"))
    [grid] = [o for o in cell.outputs if "hybridwb_GRID" in o.get("data", {}).get("text/html", "")]
    html = grid["data"]["text/html"]
    first = re.search(r'"data_json": "\[\[(\d+),', html)
    assert first, "the committed grid carries its rows as data_json"
    doctored = f'"data_json": "[[{int(first.group(1)) + 1},'
    grid["data"]["text/html"] = html.replace(first.group(0), doctored, 1)
    nb.cells = nb.cells[: nb.cells.index(cell) + 1]  # the cells after it prove nothing here
    path = tmp_path / "doctored.ipynb"
    nbformat.write(nb, path)
    result = run_guides(tmp_path, sample_db, {}, [path])
    assert result.returncode != 0, result.stdout[-2000:]
    assert "1 failed" in result.stdout, result.stdout[-3000:]
    assert "mismatch 'text/html'" in result.stdout, result.stdout[-3000:]
    assert f"[[{int(first.group(1)) + 1}," in result.stdout, result.stdout[-3000:]


@pytest.mark.slow
def test_guides_show_their_committed_outputs_on_the_embedded_sample(
    tmp_path: Path, sample_db: Path
) -> None:
    result = run_guides(tmp_path, sample_db, {})
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    last = result.stdout.strip().splitlines()[-1]
    assert "failed" not in last and "passed" in last, last
    compared = int(re.search(r"(\d+) passed", last).group(1))
    cells = sum(len(_code_cells(p)) for p in _guides.guides())
    assert compared == cells, f"{compared} of {cells} code cells ran"


@pytest.mark.slow
@pytest.mark.mysql
@pytest.mark.postgres
def test_guides_run_on_mariadb_and_postgres(tmp_path: Path, fresh_mysql_db: str, pg_db) -> None:  # type: ignore[no-untyped-def]
    # its own copy of the shop: the session database may hold tables other files added,
    # which `SHOW TABLES` in guide 01 would list
    mysql_db = fresh_mysql_db
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
    rules = tmp_path / "sanitize.cfg"
    rules.write_text(
        SANITIZE.read_text(encoding="utf-8") + "\n" + SERVERS_SANITIZE.read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    result = run_guides(tmp_path, None, env, sanitize=rules)
    out = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)
    (tmp_path / "nbval.out").write_text(out, encoding="utf-8")  # whole, after a failure
    found = re.findall(r"^FAILED \S*?(\d\d_\w+\.ipynb)::Cell (\d+)", out, re.MULTILINE)
    failed = {(name, int(cell)) for name, cell in found}
    assert failed == set(SERVER_OUTPUTS), (
        failed ^ set(SERVER_OUTPUTS),
        out[-6000:],
    )
    # the cells that differ only differ: none raised. nbval gives each failing cell's reason
    # in the failures section; the short summary may repeat it (untruncated when CI is set)
    report = out.split("short test summary info")[0]
    reasons = re.findall(r"Cell \d+: (Cell [a-z ]+|Timeout[^\n]*|Unrun[^\n]*)", report)
    assert reasons == ["Cell outputs differ"] * len(found), (reasons, out[-20000:])
    last = out.strip().splitlines()[-1]
    compared = int(re.search(r"(\d+) passed", last).group(1))  # type: ignore[union-attr]
    cells = sum(len(_code_cells(p)) for p in _guides.guides())
    assert compared + len(failed) == cells, f"{compared} + {len(failed)} of {cells} cells ran"


def _servers_patterns() -> list[tuple[str, str]]:
    from nbval.plugin import get_sanitize_patterns

    return list(get_sanitize_patterns(SERVERS_SANITIZE.read_text(encoding="utf-8")))


def test_the_cells_left_uncompared_on_the_servers_exist_and_say_why() -> None:
    for (name, cell), why in SERVER_OUTPUTS.items():
        assert len(_code_cells(GUIDES / name)) > cell, (name, cell)
        assert re.match(r"why: \w.{20,}", why), why
    assert len(SERVER_OUTPUTS) <= 5


def test_the_servers_rules_rewrite_only_server_words() -> None:
    rules = _guides.patterns() + _servers_patterns()
    banner = (
        "hybridwb: source MariaDB 10.11.19 (mysql+pymysql://hybridwb_ro:***@127.0.0.1:3306/"
        "hybridwb_t_86f21ae8?charset=utf8mb4, read-only, 12 ms) · store "
        "postgresql+psycopg://postgres@127.0.0.1:5432/hybridwb_t_f645afa8"
    )
    sample = (
        "hybridwb: source SQLite 3.40.1 (embedded sample, read-only, 3 ms) · store "
        "sqlite:////tmp/p/.hybridwb/platform.db"
    )
    assert _guides.sanitize(banner, rules) == _guides.sanitize(sample, rules)
    # a session that is not read-only still differs
    writable = _guides.sanitize(banner.replace("read-only", "read-write"), rules)
    assert writable != _guides.sanitize(sample, rules)
    assert _guides.sanitize("<td>MariaDB</td><td>예</td>", rules) == "<td>SQLite</td><td>예</td>"
    assert _guides.sanitize("Tables_in_hybridwb_t_86f21ae8", rules) == "Tables_in_sample"
    assert _guides.sanitize("MariaDB stores it", rules) == "MariaDB stores it"
    assert _guides.sanitize("    ok MariaDB   예", rules) == _guides.sanitize(
        "  ok  SQLite 예", rules
    )
    assert _guides.sanitize("a  b\n0   1622", rules) == "a b\n0 1622"
    assert _guides.sanitize("0 1622", rules) != _guides.sanitize("0 1623", rules)


def test_a_broken_guide_fails_the_build(tmp_path: Path, sample_db: Path) -> None:
    broken = nbformat.v4.new_notebook()
    broken.cells = [
        nbformat.v4.new_code_cell("%load_ext hybridwb"),
        nbformat.v4.new_code_cell("%%mysql\nSELECT * FROM no_such_table"),
    ]
    path = tmp_path / "broken_guide.ipynb"
    nbformat.write(broken, path)
    result = run_guides(tmp_path, sample_db, {}, [path], strict=False)
    assert result.returncode != 0
    assert "no_such_table" in result.stdout


def test_regeneration_is_one_command() -> None:
    """`make guides` runs scripts/regen_guides.py, which writes what the test compares."""
    makefile = (_guides.REPO / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^guides:.*\n\t.*scripts/regen_guides\.py", makefile, re.MULTILINE)
    meta = json.loads((GUIDES / "01_getting_started.ipynb").read_text(encoding="utf-8"))
    assert "outputs_made_with" in meta["metadata"]["hybridwb"]
