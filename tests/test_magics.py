"""%load_ext hybridwb and %%mysql through a real InteractiveShell."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import hybridwb
from hybridwb.errors import ReadOnlyViolation
from hybridwb.magics import bind_cell, load, parse_args
from tests.conftest import ro_url


class RaisingShell(InteractiveShell):
    """A shell whose cells raise their errors, so tests see them."""

    def run_cell(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        result = super().run_cell(*args, **kwargs)
        result.raise_error()
        return result


@pytest.fixture
def shell(sample_db: Path, tmp_path: Path) -> RaisingShell:
    sh = RaisingShell()
    home = tmp_path / ".hybridwb"
    home.mkdir()
    (home / "sample.db").write_bytes(sample_db.read_bytes())
    sh.run_cell("%load_ext hybridwb")
    yield sh
    sh.run_cell("%unload_ext hybridwb")
    RaisingShell.clear_instance()


def test_load_ext_prints_one_status_line(
    shell: RaisingShell, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.run_cell("%hybridwb status")
    out = capsys.readouterr().out.strip()
    assert out.startswith("hybridwb: source SQLite") and "read-only" in out
    assert len(out.splitlines()) == 1


def test_load_ext_shows_only_the_status_line_in_a_kernel(sample_db: Path, tmp_path: Path) -> None:
    """In a real kernel jupysql greets with tips and a banner (display outputs) when it
    loads; `%load_ext hybridwb`, which loads it, still shows exactly one line."""
    pytest.importorskip("sql")
    import nbformat
    from nbclient import NotebookClient

    # a project's pyproject.toml (jupysql looks for its own section there and says so)
    (tmp_path / "pyproject.toml").write_text("[tool.hybridwb]\n", encoding="utf-8")
    home = tmp_path / ".hybridwb"
    home.mkdir()
    (home / "sample.db").write_bytes(sample_db.read_bytes())
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext hybridwb"),
        nbformat.v4.new_code_cell("'sql' in get_ipython().extension_manager.loaded"),
    ]
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    assert nb.cells[1].outputs[0]["data"]["text/plain"] == "True"  # jupysql did load
    [output] = nb.cells[0].outputs
    assert output["output_type"] == "stream" and output["name"] == "stdout", output
    lines = output["text"].strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hybridwb: source SQLite"), lines


def test_mysql_cell_binds_from_the_namespace(shell: RaisingShell) -> None:
    shell.run_cell("grade = 'VIP'")
    shell.run_cell("%%mysql -o vip\nSELECT customer_id, grade FROM customers WHERE grade = :grade")
    vip = shell.user_ns["vip"]
    assert isinstance(vip, pd.DataFrame) and set(vip["grade"]) == {"VIP"}


def test_template_braces_bind_too(shell: RaisingShell) -> None:
    shell.run_cell("g = 'GOLD'")
    result = shell.run_cell("%%mysql --limit 5\nSELECT grade FROM customers WHERE grade = {{ g }}")
    assert set(result.result["grade"]) == {"GOLD"}
    assert len(result.result) == 5


def test_value_that_looks_like_sql_stays_a_value(shell: RaisingShell) -> None:
    shell.run_cell("evil = \"x' OR '1'='1\"")
    result = shell.run_cell("%%mysql\nSELECT * FROM customers WHERE name = {{ evil }}")
    assert len(result.result) == 0


def test_ident_filter_only_takes_live_names(shell: RaisingShell) -> None:
    shell.run_cell("col = 'grade'")
    result = shell.run_cell("%%mysql\nSELECT {{ col | ident }} FROM customers LIMIT 2")
    assert list(result.result.columns) == ["grade"]
    shell.run_cell("col = 'grade; DROP TABLE customers'")
    with pytest.raises(UsageError, match="not a table or column"):
        shell.run_cell("%%mysql\nSELECT {{ col | ident }} FROM customers")


def test_expected_errors_are_usage_errors_without_traceback(shell: RaisingShell) -> None:
    with pytest.raises(UsageError, match="Refused"):
        shell.run_cell("%%mysql\nDELETE FROM customers")
    with pytest.raises(UsageError, match="not defined in the notebook"):
        shell.run_cell("%%mysql\nSELECT * FROM customers WHERE grade = :nope")
    with pytest.raises(UsageError, match="empty"):
        shell.run_cell("%%mysql\n   ")


@pytest.mark.parametrize("magic", ["mysql", "platform"])
def test_a_cell_of_megabytes_is_a_usage_error_read_no_further(
    shell: RaisingShell, magic: str
) -> None:
    """A 4 MB cell: one line, saying the limit, with the memory allocated under 3x the
    cell. BREAK (fixed): `bind_cell` tokenized it whole before the guard saw it (~1 GB)."""
    import tracemalloc

    cell = "SELECT 1 WHERE 1 IN (" + ",".join(["1"] * (2 * 1024 * 1024)) + ")"
    tracemalloc.start()
    try:
        with pytest.raises(UsageError, match="limit") as info:
            shell.run_cell_magic(magic, "", cell)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "\n" not in str(info.value) and len(str(info.value)) < 300
    assert peak < 3 * len(cell)


@pytest.mark.parametrize(
    ("where", "plan"),
    [
        ("customer_id = 1", "SEARCH customers USING INTEGER PRIMARY KEY (rowid=?)"),
        ("city = '서울'", "SCAN customers"),
    ],
    ids=["primary-key-lookup", "full-scan"],
)
def test_explain_option_shows_the_plan(shell: RaisingShell, where: str, plan: str) -> None:
    """--explain returns the planner's plan for this statement (not its rows): a key
    lookup and a full scan give different, exact plans."""
    result = shell.run_cell(f"%%mysql --explain\nSELECT * FROM customers WHERE {where}")
    assert list(result.result["detail"]) == [plan]


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("--limit x", "positive whole number"),
        ("-o 1x", "Python name"),
        ("--bogus", "Unknown option"),
        ("--timeout", "needs a value"),
        ("--timeout -1", "more than 0"),
        ("--write", "only for %%platform"),
    ],
    ids=["limit", "out", "unknown", "no-value", "negative-timeout", "write"],
)
def test_bad_options_are_explained(line: str, words: str) -> None:
    with pytest.raises(UsageError, match=words):
        parse_args(line)


def test_parse_args_reads_every_option() -> None:
    args = parse_args("-o df --limit 10 --timeout 2.5 --explain")
    assert (args.output, args.limit, args.timeout, args.explain) == ("df", 10, 2.5, True)


def test_bind_cell_is_pure() -> None:
    sql, params = bind_cell(
        "SELECT * FROM t WHERE a = {{ x }} AND b = :y AND c = '12:30'",
        {"x": 1, "y": "z", "other": 3},
    )
    assert sql == "SELECT * FROM t WHERE a = :x AND b = :y AND c = '12:30'"
    assert params == {"x": 1, "y": "z"}


@pytest.mark.parametrize(
    ("cell", "sql", "names"),
    [
        ("SELECT '{{ a }}' AS x", "SELECT '{{ a }}' AS x", []),
        ("SELECT ':a' AS x, {{ b }} AS y", "SELECT ':a' AS x, :b AS y", ["b"]),
        ("SELECT 1 -- {{ a }}\nFROM t", "SELECT 1 -- {{ a }}\nFROM t", []),
        ("SELECT `{{ a }}` FROM t", "SELECT `{{ a }}` FROM t", []),
        ("SELECT {{a}}, {{ b }}", "SELECT :a, :b", ["a", "b"]),
    ],
    ids=["braces-in-string", "colon-in-string", "braces-in-comment", "braces-in-backticks", "both"],
)
def test_binds_in_a_cell_are_found_outside_quotes_only(
    cell: str, sql: str, names: list[str]
) -> None:
    got_sql, params = bind_cell(cell, {"a": " OR 1=1 INTO OUTFILE", "b": "#"})
    assert got_sql == sql
    assert sorted(params) == names


@pytest.mark.mysql
def test_braces_inside_a_literal_cannot_write_a_file(mysql_db: str, tmp_path: Path) -> None:
    """The issue's attack through %%mysql: {{ a }} inside quotes stays text."""
    import shutil
    import tempfile

    from tests.conftest import admin_url

    drop = Path(tempfile.mkdtemp(prefix="hwb-outfile-"))  # a place the server can write
    drop.chmod(0o777)
    sh = RaisingShell()
    try:
        load(sh, hybridwb.connect(source=admin_url(mysql_db).render_as_string(hide_password=False)))
        sh.user_ns.update(a=" OR 1=1 INTO OUTFILE", b="#")
        result = sh.run_cell(
            f"%%mysql\nSELECT customer_id FROM customers WHERE name = '{{{{ a }}}}{drop}/x{{{{ b }}}}'"
        )
        assert len(result.result) == 0
        assert list(drop.iterdir()) == []
    finally:
        shutil.rmtree(drop, ignore_errors=True)
        RaisingShell.clear_instance()


@pytest.mark.mysql
def test_mysql_magic_on_mariadb(mysql_db: str, tmp_path: Path) -> None:
    sh = RaisingShell()
    try:
        load(sh, hybridwb.connect(source=ro_url(mysql_db).render_as_string(hide_password=False)))
        sh.run_cell("ids = [1, 2, 3]")
        result = sh.run_cell(
            "%%mysql\nSELECT customer_id FROM customers WHERE customer_id IN :ids ORDER BY 1"
        )
        assert result.result["customer_id"].tolist() == [1, 2, 3]
        with pytest.raises(UsageError, match="READ ONLY|Refused"):
            sh.run_cell("%%mysql\nSELECT * FROM customers FOR UPDATE")
    finally:
        RaisingShell.clear_instance()


def test_jupysql_gets_the_same_guarded_engine(shell: RaisingShell, tmp_path: Path) -> None:
    from sql.connection import ConnectionManager

    assert "mysql" in ConnectionManager.connections
    shell.run_cell("%load_ext sql")
    shell.run_cell("%sql mysql")
    result = shell.run_cell("%sql SELECT COUNT(*) AS n FROM customers")
    assert list(result.result.dict()["n"]) == [2000]
    with pytest.raises(ReadOnlyViolation, match="Refused"):
        shell.run_cell("%sql DELETE FROM customers")
    with sqlite3.connect(tmp_path / ".hybridwb" / "sample.db") as conn:  # the file itself
        assert conn.execute("SELECT COUNT(*) FROM customers").fetchone() == (2000,)


def test_platform_magic_reads_and_guards_writes(shell: RaisingShell) -> None:
    result = shell.run_cell(
        "%%platform -o tpl\nSELECT name, message_type FROM message_templates ORDER BY name"
    )
    assert len(shell.user_ns["tpl"]) == 2 and list(result.result.columns) == [
        "name",
        "message_type",
    ]
    with pytest.raises(UsageError, match="--write"):
        shell.run_cell("%%platform\nDELETE FROM message_templates")
    shell.run_cell("n = '가입 환영 (SMS)'")
    shell.run_cell(
        "%%platform --write\nUPDATE message_templates SET usage_count = 5 WHERE name = :n"
    )
    assert shell.run_cell("%platform templates").result["usage_count"].max() == 5


def test_platform_listing_rejects_unknown_names(shell: RaisingShell) -> None:
    with pytest.raises(UsageError, match="Unknown listing"):
        shell.run_cell("%platform everything")


# -- pii in %%mysql output: followed through the query, not matched by name -------------
LINEAGE_CELLS = [
    "SELECT email AS contact, phone AS tel FROM customers",
    "SELECT LOWER(email) AS e, CONCAT(phone, '') AS p FROM customers",
    "SELECT x FROM (SELECT email AS x FROM customers) t",
    "WITH c AS (SELECT phone AS p FROM customers) SELECT p AS q FROM c",
    "SELECT grade AS g FROM customers UNION ALL SELECT email FROM customers",
    "SELECT c.* FROM customers c",
    "SELECT * FROM customers",
]


def _customer_values(rows: list[tuple[object, ...]]) -> set[str]:
    return {str(v) for row in rows for v in row if v}


def _shown(sh: InteractiveShell, cell: str) -> str:
    result = sh.run_cell(f"%%mysql --limit 40\n{cell}").result
    bundle = sh.display_formatter.format(result)[0]
    return "\n".join(map(str, bundle.values())) + repr(result)


def test_mysql_output_masks_pii_however_the_query_names_it(sample_db: Path, tmp_path: Path) -> None:
    from tests.conftest import install_sample_mappings

    install_sample_mappings(tmp_path)
    home = tmp_path / ".hybridwb"
    home.mkdir()
    (home / "sample.db").write_bytes(sample_db.read_bytes())
    with sqlite3.connect(home / "sample.db") as conn:  # the oracle: the file itself
        values = _customer_values(conn.execute("SELECT email, phone FROM customers").fetchall())
    sh = RaisingShell()
    try:
        load(sh, hybridwb.connect(cwd=tmp_path))
        for cell in LINEAGE_CELLS:
            shown = _shown(sh, cell)
            assert not [v for v in values if v in shown], cell
        # the frame itself keeps the values: masking is what is shown, not what is held
        held = sh.run_cell(
            "%%mysql -o held --limit 5\nSELECT email AS e FROM customers WHERE email IS NOT NULL"
        ).result
        assert set(held["e"]) <= values and len(held) == 5
    finally:
        sh.run_cell("%unload_ext hybridwb")
        RaisingShell.clear_instance()


@pytest.mark.mysql
def test_mysql_output_masks_pii_through_the_query_on_mariadb(mysql_db: str, tmp_path: Path) -> None:
    import pymysql

    from tests.conftest import _admin, install_sample_mappings

    url = ro_url(mysql_db)
    install_sample_mappings(tmp_path, url)
    conn = _admin()
    try:
        conn.select_db(mysql_db)
        with conn.cursor() as cur:
            cur.execute("SELECT email, phone FROM customers")
            values = _customer_values(list(cur.fetchall()))
    finally:
        conn.close()
    assert values and pymysql
    sh = RaisingShell()
    try:
        load(sh, hybridwb.connect(source=url.render_as_string(hide_password=False), cwd=tmp_path))
        for cell in LINEAGE_CELLS:
            shown = _shown(sh, cell)
            assert not [v for v in values if v in shown], cell
    finally:
        RaisingShell.clear_instance()


def test_jupysql_output_is_masked_like_mysql_cells(sample_db: Path, tmp_path: Path) -> None:
    """`%sql` (jupysql) shows its result through hybridwb's formatter: pii masked by name
    and by lineage, in the HTML and the text output a notebook saves."""
    from tests.conftest import install_sample_mappings

    install_sample_mappings(tmp_path)
    home = tmp_path / ".hybridwb"
    home.mkdir()
    (home / "sample.db").write_bytes(sample_db.read_bytes())
    with sqlite3.connect(home / "sample.db") as conn:  # the oracle: the file itself
        values = _customer_values(
            conn.execute("SELECT email, phone FROM customers ORDER BY customer_id").fetchall()
        )
    sh = RaisingShell()
    try:
        load(sh, hybridwb.connect(cwd=tmp_path))
        sh.run_cell("%sql mysql")
        for cell in [
            "SELECT customer_id, email, phone FROM customers ORDER BY customer_id",
            "SELECT customer_id, email AS contact, LOWER(phone) AS p FROM customers "
            "ORDER BY customer_id",
        ]:
            result = sh.run_cell(f"%sql {cell}").result
            bundle = sh.display_formatter.format(result)[0]
            shown = "\n".join(map(str, bundle.values()))
            assert "customer_id" in shown and "********" in shown
            assert not [v for v in values if v in shown], cell
        # the values are still in the result, read explicitly
        assert set(map(str, result.DataFrame()["contact"].dropna())) <= values
    finally:
        sh.run_cell("%unload_ext hybridwb")
        RaisingShell.clear_instance()
