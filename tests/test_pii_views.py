"""Personal data stays masked when a view renames it, and in `wb.sql`'s own display.

Residues of issue 15: a view that renames a pii column (`CREATE VIEW v AS SELECT email AS
contact ...`) showed the addresses unless the view was mapped, and `wb.sql` returned a
plain DataFrame whose repr and notebook HTML showed every value. Lineage now follows an
unmapped view's own SELECT to the base table's pii flags, and `wb.sql`'s frame masks its
display while its values stay intact. Oracles: the sample's SQLite file and direct SQL on
MariaDB as root.
"""

from __future__ import annotations

import pickle
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell

import hybridwb
from hybridwb.lineage import VIEW_DEPTH, pii_output_columns
from hybridwb.magics import load
from tests.conftest import _admin, install_sample_mappings, ro_url, sel_url

#: `limit=` cuts the samples on purpose
pytestmark = pytest.mark.filterwarnings("ignore::hybridwb.source.source.RowsCut")


# -- pure: lineage through a view's definition ------------------------------------------------
SCHEMA = {
    "customers": ["customer_id", "name", "email", "phone", "grade"],
    "v_contacts": ["cid", "contact", "who"],
    "v_deeper": ["k", "reach"],
    "v_mapped": ["cid", "contact"],
}
VIEWS = {
    "v_contacts": "SELECT customer_id AS cid, email AS contact, name AS who FROM customers",
    "v_deeper": "SELECT cid AS k, LOWER(contact) AS reach FROM v_contacts",
    "v_mapped": "SELECT customer_id AS cid, email AS contact FROM customers",
}
PII = {"customers": {"email", "phone"}}


def _trace(sql: str, columns: list[str], views: dict[str, str], pii=PII) -> set[str]:  # type: ignore[no-untyped-def]
    return pii_output_columns(sql, columns, pii, SCHEMA.get, definition_of=views.get)


@pytest.mark.parametrize(
    ("sql", "columns", "masked"),
    [
        ("SELECT * FROM v_contacts", ["cid", "contact", "who"], {"contact"}),
        ("SELECT contact AS c2, who FROM v_contacts", ["c2", "who"], {"c2"}),
        ("SELECT * FROM v_deeper", ["k", "reach"], {"reach"}),
        ("SELECT v.who FROM v_contacts v", ["who"], set()),
    ],
    ids=["star", "renamed-again", "view-over-view", "harmless-column"],
)
def test_a_view_is_followed_to_the_base_tables_pii(
    sql: str, columns: list[str], masked: set[str]
) -> None:
    assert _trace(sql, columns, VIEWS) == masked


def test_without_following_views_the_renamed_column_was_shown() -> None:
    """The residue itself: the same query with no view definitions masks nothing."""
    assert (
        pii_output_columns("SELECT * FROM v_contacts", SCHEMA["v_contacts"], PII, SCHEMA.get)
        == set()
    )


def test_a_view_whose_body_cannot_be_read_is_masked_whole() -> None:
    assert _trace("SELECT * FROM v_contacts", SCHEMA["v_contacts"], {"v_contacts": ""}) == {
        "cid",
        "contact",
        "who",
    }


def test_a_view_body_that_cannot_be_parsed_is_masked_whole() -> None:
    views = {"v_contacts": "SELECT FROM WHERE ((("}
    assert _trace("SELECT who FROM v_contacts", ["who"], views) == {"who"}


def test_views_nested_past_the_depth_bound_are_masked_whole() -> None:
    schema = {"customers": SCHEMA["customers"]}
    views = {}
    for i in range(VIEW_DEPTH + 2):
        below = "customers" if i == 0 else f"v{i - 1}"
        views[f"v{i}"] = f"SELECT name AS name FROM {below}"
        schema[f"v{i}"] = ["name"]
    top = f"v{VIEW_DEPTH + 1}"
    assert pii_output_columns(
        f"SELECT name FROM {top}", ["name"], PII, schema.get, definition_of=views.get
    ) == {"name"}
    assert (
        pii_output_columns(
            "SELECT name FROM v2", ["name"], PII, schema.get, definition_of=views.get
        )
        == set()
    )


def test_a_mapped_view_keeps_the_mappings_flags() -> None:
    pii = {**PII, "v_mapped": {"cid"}}  # the user's own statement about the view
    assert _trace("SELECT * FROM v_mapped", ["cid", "contact"], VIEWS, pii) == {"cid"}


# -- SQLite sample: %%mysql and wb.sql ----------------------------------------------------------
class RaisingShell(InteractiveShell):
    def run_cell(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        result = super().run_cell(*args, **kwargs)
        result.raise_error()
        return result


def _unload(sh: InteractiveShell) -> None:
    """Unload the extension and close jupysql's connections while the shell still exists
    (jupysql's exit hook would otherwise print to a shell that is gone)."""
    sh.run_cell("%unload_ext hybridwb")
    from sql.connection import ConnectionManager

    ConnectionManager.close_all()


def _values(rows: list[tuple[object, ...]]) -> set[str]:
    return {str(v) for row in rows for v in row if v}


def _everything_shown(frame: object) -> str:
    """Every way a notebook or a terminal shows an object, without reading it explicitly."""
    bundle = InteractiveShell.instance().display_formatter.format(frame)[0]
    return "\n".join([*map(str, bundle.values()), repr(frame), str(frame), f"{frame}"])


@pytest.fixture
def sample_project(sample_db: Path, tmp_path: Path) -> Iterator[Path]:
    install_sample_mappings(tmp_path)
    home = tmp_path / ".hybridwb"
    home.mkdir()
    db = home / "sample.db"
    db.write_bytes(sample_db.read_bytes())
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE VIEW v_reach AS SELECT customer_id AS cid, email AS contact, "
            "phone AS tel, grade AS tier FROM customers"
        )
        conn.execute("CREATE VIEW v_reach2 (k, addr) AS SELECT cid, LOWER(contact) FROM v_reach")
    yield tmp_path
    InteractiveShell.clear_instance()


def _sample_values(project: Path) -> set[str]:
    with sqlite3.connect(project / ".hybridwb" / "sample.db") as conn:  # the oracle
        return _values(conn.execute("SELECT email, phone FROM customers").fetchall())


VIEW_CELLS = [
    "SELECT * FROM v_reach",
    "SELECT contact AS c, tel FROM v_reach",
    "SELECT * FROM v_reach2",
]


def test_mysql_cells_mask_a_view_that_renames_pii_on_sqlite(sample_project: Path) -> None:
    values = _sample_values(sample_project)
    InteractiveShell.clear_instance()  # a test before it in this worker may have left one
    sh = RaisingShell.instance()
    load(sh, hybridwb.connect(cwd=sample_project))
    try:
        for cell in VIEW_CELLS:
            result = sh.run_cell(f"%%mysql --limit 40\n{cell}").result
            shown = _everything_shown(result)
            assert not [v for v in values if v in shown], cell
        tiers = sh.run_cell("%%mysql --limit 40\nSELECT tier FROM v_reach").result
        assert "BRONZE" in _everything_shown(tiers)  # followed, not masked whole
    finally:
        _unload(sh)


def test_wb_sql_display_is_masked_and_its_values_are_intact(sample_project: Path) -> None:
    values = _sample_values(sample_project)
    with hybridwb.connect(cwd=sample_project) as wb:
        for sql in [*VIEW_CELLS, "SELECT email AS e, phone, grade FROM customers"]:
            shown = _everything_shown(wb.sql(sql, limit=40))
            assert not [v for v in values if v in shown], sql
        df = wb.sql("SELECT customer_id, email AS e, grade FROM customers ORDER BY customer_id")
        # values are read explicitly, exactly as the file holds them
        with sqlite3.connect(sample_project / ".hybridwb" / "sample.db") as conn:
            direct = [
                r[0] for r in conn.execute("SELECT email FROM customers ORDER BY customer_id")
            ]
        assert [None if pd.isna(v) else v for v in df["e"]] == direct
        assert isinstance(df, pd.DataFrame)
        for first_look in (df.head(), df.head(50), df.tail(), df.sample(10, random_state=1)):
            shown = _everything_shown(first_look)
            assert not [v for v in values if v in shown]
            assert list(first_look.columns) == ["customer_id", "e", "grade"]
        # columns that are not personal are shown as they are
        shown = _everything_shown(df)
        assert "grade" in shown and str(df["grade"].iloc[0]) in shown


def test_wb_sql_of_counts_shows_like_a_plain_dataframe(sample_project: Path) -> None:
    with hybridwb.connect(cwd=sample_project) as wb:
        df = wb.sql("SELECT grade, COUNT(*) AS n FROM customers GROUP BY grade ORDER BY grade")
        plain = pd.DataFrame(df)
        assert repr(df) == repr(plain) and df._repr_html_() == plain._repr_html_()


def test_a_wb_sql_frame_that_lost_its_link_masks_everything(sample_project: Path) -> None:
    values = _sample_values(sample_project)
    with hybridwb.connect(cwd=sample_project) as wb:
        df = wb.sql("SELECT grade, email FROM customers", limit=20)
        back = pickle.loads(pickle.dumps(df))
    shown = _everything_shown(back)
    assert not [v for v in values if v in shown]
    assert not {"VIP", "GOLD", "SILVER", "BRONZE"} & set(shown.split())


# -- MariaDB: views read by the read-only and the SELECT-only account ----------------------------
@pytest.fixture
def mysql_views(mysql_db: str) -> Iterator[tuple[str, str]]:
    tag = uuid.uuid4().hex[:6]
    conn = _admin()
    conn.select_db(mysql_db)
    view, deeper = f"v_reach_{tag}", f"v_reach2_{tag}"
    with conn.cursor() as cur:
        cur.execute(
            f"CREATE VIEW `{view}` AS SELECT customer_id AS cid, email AS contact, "
            f"CONCAT('t:', phone) AS tel, grade AS tier FROM customers"
        )
        cur.execute(f"CREATE VIEW `{deeper}` (k, addr) AS SELECT cid, LOWER(contact) FROM `{view}`")
    try:
        yield view, deeper
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP VIEW IF EXISTS `{deeper}`, `{view}`")
        conn.close()


def _mysql_values(database: str) -> set[str]:
    conn = _admin()
    try:
        conn.select_db(database)
        with conn.cursor() as cur:  # the oracle: direct SQL as root
            cur.execute("SELECT email, phone FROM customers")
            return _values(list(cur.fetchall()))
    finally:
        conn.close()


@pytest.mark.mysql
def test_views_renaming_pii_are_masked_on_mariadb(
    mysql_db: str, mysql_views: tuple[str, str], tmp_path: Path
) -> None:
    view, deeper = mysql_views
    values = _mysql_values(mysql_db)
    url = ro_url(mysql_db)  # SELECT and SHOW VIEW: the definitions are readable
    install_sample_mappings(tmp_path, url)
    InteractiveShell.clear_instance()  # a test before it in this worker may have left one
    sh = RaisingShell.instance()
    wb = hybridwb.connect(source=url.render_as_string(hide_password=False), cwd=tmp_path)
    load(sh, wb)
    try:
        for sql in (
            f"SELECT * FROM {view}",
            f"SELECT contact AS c FROM {view}",
            f"SELECT * FROM {deeper}",
        ):
            shown = _everything_shown(sh.run_cell(f"%%mysql --limit 40\n{sql}").result)
            assert not [v for v in values if v in shown], sql
            shown = _everything_shown(wb.sql(sql, limit=40))
            assert not [v for v in values if v in shown], sql
        # the view was followed, not masked whole: its harmless column is shown
        shown = _everything_shown(wb.sql(f"SELECT cid, tier FROM {view} ORDER BY cid", limit=5))
        assert "********" not in shown and "cid" in shown
    finally:
        _unload(sh)
        InteractiveShell.clear_instance()
        wb.close()


@pytest.mark.mysql
def test_a_view_the_account_cannot_read_is_masked_whole_on_mariadb(
    mysql_db: str, mysql_views: tuple[str, str], tmp_path: Path
) -> None:
    view, _ = mysql_views
    values = _mysql_values(mysql_db)
    url = sel_url(mysql_db)  # SELECT only: information_schema.VIEWS hides the body
    with hybridwb.connect(source=url.render_as_string(hide_password=False), cwd=tmp_path) as wb:
        assert wb.source.view_definition(view) == ""
        assert wb.source.view_definition("customers") is None
        df = wb.sql(f"SELECT cid, contact, tier FROM {view} ORDER BY cid", limit=20)
        shown = _everything_shown(df)
        assert not [v for v in values if v in shown]
        assert set(df.columns) == {"cid", "contact", "tier"} and not df["contact"].isna().all()


# -- an executed notebook keeps what a cell showed: a wb.sql result must be masked there ------
def test_an_executed_notebook_showing_wb_sql_holds_no_customer_value(sample_project: Path) -> None:
    """A workflow notebook (or any papermill run) whose cell ends in a `wb.sql(...)` result
    saves that cell's display in the executed notebook on disk: before, the plain DataFrame's
    HTML and text carried every phone and email. Real kernel; oracle: the notebook file."""
    import nbformat
    import papermill as pm

    values = _sample_values(sample_project)
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("import hybridwb\nwb = hybridwb.connect()"),
        nbformat.v4.new_code_cell(
            "wb.sql('SELECT customer_id, email AS contact, phone FROM customers LIMIT 30')"
        ),
        nbformat.v4.new_code_cell("df = wb.sql('SELECT * FROM v_reach LIMIT 30')\ndf.head(20)"),
        nbformat.v4.new_code_cell("print(wb.sql('SELECT email FROM customers LIMIT 30'))"),
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, sample_project / "look.ipynb")
    pm.execute_notebook(
        str(sample_project / "look.ipynb"),
        str(sample_project / "looked.ipynb"),
        kernel_name="python3",
        progress_bar=False,
        cwd=str(sample_project),
    )
    saved = (sample_project / "looked.ipynb").read_text(encoding="utf-8")
    assert saved.count("********") >= 3  # the cells did show their results, masked
    assert not [v for v in values if v in saved]
