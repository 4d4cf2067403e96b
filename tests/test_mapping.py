"""Table mappings: the model, suggestions, drift, saving, the CLI and the widgets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pymysql
import pytest
from click.testing import CliRunner

import hybridwb
from hybridwb.cli import main
from hybridwb.errors import NotFound, ValidationError
from hybridwb.mapping import discovery
from hybridwb.mapping.model import json_schema, parse
from hybridwb.source import Source
from tests import realshop
from tests.conftest import MYSQL_HOST, MYSQL_PORT, SEL_PASSWORD, SEL_USER, ro_url, sel_url

REPO = Path(__file__).resolve().parents[1]
ORIGINAL = {
    "customers": {
        "displayName": "고객 정보",
        "description": "고객 기본 정보 및 연락처",
        "fields": {
            "customer_id": {"displayName": "고객ID", "type": "number", "filterable": True},
            "name": {"displayName": "고객명", "type": "string", "filterable": True},
        },
    }
}


@pytest.fixture
def wb(sample_db: Path, tmp_path: Path) -> hybridwb.Workbench:
    (tmp_path / ".hybridwb").mkdir()
    (tmp_path / ".hybridwb" / "sample.db").write_bytes(sample_db.read_bytes())
    return hybridwb.connect()


def test_original_file_round_trips_unchanged() -> None:
    assert parse(json.dumps(ORIGINAL, ensure_ascii=False)).dump() == ORIGINAL


def test_shipped_mapping_file_is_valid() -> None:
    mappings = parse((REPO / "mappings" / "table-mappings.json").read_text(encoding="utf-8"))
    assert mappings.tables()["customers"].fields["name"].displayName == "고객명"


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (
            {
                "customers": {
                    "displayName": "x",
                    "fields": {"a": {"displayName": "A", "type": "text"}},
                }
            },
            "customers.fields.a.type must be",
        ),
        (
            {
                "customers": {
                    "displayName": "x",
                    "fields": {"a": {"displayName": "A", "filterable": "maybe"}},
                }
            },
            "customers.fields.a.filterable",
        ),
        (
            {
                "customers": {
                    "displayName": "x",
                    "fields": {"a": {"displayName": "같음"}, "b": {"displayName": "같음"}},
                }
            },
            "share the display name '같음'",
        ),
        (
            {"customers": {"displayName": "x", "fields": {"a": {"displayName": "A", "colour": 1}}}},
            "customers.fields.a.colour is not a known key",
        ),
        ({"customers": {"fields": {}}}, "customers.displayName is required"),
        ({"customers": {"displayName": "x", "fields": {}, "key": "nope"}}, "key 'nope'"),
        ("{broken", "not valid JSON"),
    ],
    ids=[
        "unknown-type",
        "wrong-bool",
        "duplicate-display",
        "unknown-key",
        "missing-display",
        "bad-key",
        "not-json",
    ],
)
def test_malformed_mapping_names_the_path(data: object, words: str) -> None:
    with pytest.raises(ValidationError, match=words) as info:
        parse(data if isinstance(data, str) else json.dumps(data, ensure_ascii=False))
    assert "\n" not in str(info.value)


def test_json_schema_is_published() -> None:
    schema = json_schema()
    assert schema["title"] == "hybridwb table mappings"
    assert "FieldMapping" in json.dumps(schema)


def test_suggestions_on_the_sample_shop(wb: hybridwb.Workbench) -> None:
    customers = wb.mappings.suggest("customers")
    roles = {name: f.role for name, f in customers.fields.items()}
    assert roles["customer_id"] == "id" and roles["name"] == "name"
    assert roles["phone"] == "phone" and roles["email"] == "email"
    assert customers.fields["name"].displayName == "고객명"
    assert customers.fields["phone"].displayName == "휴대폰번호"
    assert customers.fields["phone"].pii and not customers.fields["grade"].pii
    assert customers.fields["phone"].filterable and not customers.fields["city"].filterable
    assert customers.key == "customer_id"
    subs = {(r.table, r.kind, r.orderBy) for r in customers.relations}
    assert ("subscriptions", "one-to-many", "ends_at") in subs
    payments = wb.mappings.suggest("payments")
    assert payments.fields["amount"].role == "amount"


def test_save_writes_file_and_store_mirror(wb: hybridwb.Workbench, tmp_path: Path) -> None:
    wb.mappings.save("customers", wb.mappings.suggest("customers"))
    wb.mappings.save("customers", {**ORIGINAL["customers"]})
    on_disk = json.loads(
        (tmp_path / "mappings" / "table-mappings.json").read_text(encoding="utf-8")
    )
    assert on_disk == ORIGINAL
    assert [r["version"] for r in wb.store.mappings.history("customers")] == [2, 1]
    wb.mappings.deactivate("고객 정보")
    assert wb.mappings.get("customers").isActive is False
    assert wb.store.mappings.active() == {}


def test_saving_a_field_the_table_lacks_saves_nothing(
    wb: hybridwb.Workbench, tmp_path: Path
) -> None:
    bad = {"displayName": "고객", "fields": {"nickname": {"displayName": "별명"}}}
    with pytest.raises(ValidationError, match="customers.fields.nickname: no such column"):
        wb.mappings.save("customers", bad)
    assert not (tmp_path / "mappings" / "table-mappings.json").exists()
    assert wb.store.mappings.history("customers") == []


def test_unknown_table_is_not_found(wb: hybridwb.Workbench) -> None:
    with pytest.raises(NotFound, match="no table 'nope'"):
        wb.mappings.suggest("nope")
    with pytest.raises(NotFound, match="No mapping"):
        wb.mappings.get("nope")


def test_drift_findings(wb: hybridwb.Workbench) -> None:
    mapping = wb.mappings.suggest("customers").model_dump(mode="json", exclude_unset=True)
    mapping["fields"]["grade"]["type"] = "number"
    del mapping["fields"]["city"]
    wb.mappings.save("customers", mapping)
    data = wb.mappings.load().dump()
    data["customers"]["fields"]["nickname"] = {"displayName": "별명"}
    data["ghost"] = {"displayName": "유령", "fields": {}}
    wb.mappings._write(parse(data))
    kinds = {(f.table, f.field, f.kind) for f in wb.mappings.check()}
    assert ("customers", "nickname", "column-dropped") in kinds
    assert ("customers", "grade", "type-changed") in kinds
    assert ("customers", "city", "column-added") in kinds
    assert ("ghost", None, "table-missing") in kinds


def test_load_falls_back_to_the_store_mirror(wb: hybridwb.Workbench, tmp_path: Path) -> None:
    wb.mappings.save("customers", ORIGINAL["customers"])
    (tmp_path / "mappings" / "table-mappings.json").unlink()
    assert wb.mappings.get("customers").fields["name"].displayName == "고객명"


def test_cli_mappings(wb: hybridwb.Workbench) -> None:
    runner = CliRunner()
    out = runner.invoke(main, ["mappings", "discover"])
    assert out.exit_code == 0 and "customers" in out.output
    out = runner.invoke(main, ["mappings", "suggest", "customers", "--save"])
    assert out.exit_code == 0 and "휴대폰번호" in out.output
    assert runner.invoke(main, ["mappings", "check"]).exit_code == 0
    assert "고객명" in runner.invoke(main, ["mappings", "show", "customers"]).output
    assert runner.invoke(main, ["mappings", "schema"]).exit_code == 0
    bad = runner.invoke(main, ["mappings", "suggest", "nope"])
    assert bad.exit_code == 1 and "no table 'nope'" in bad.output


def test_schema_browser_widget(wb: hybridwb.Workbench) -> None:
    from hybridwb.widgets import schema_browser

    widget = schema_browser(wb)
    assert ("customers (~2,000 rows)", "customers") in widget.tables.options
    widget.tables.value = "customers"
    assert "customer_id" in widget.columns.value and "PRI" in widget.columns.value
    assert "ix_customers_phone" in widget.indexes.value
    assert widget.sample.value.count("<tr>") == 6  # header + 5 rows


def test_mapping_editor_widget_edits_and_saves(wb: hybridwb.Workbench, tmp_path: Path) -> None:
    from hybridwb.widgets import mapping_editor

    editor = mapping_editor(wb, "customers")
    assert "suggestion" in editor.message.value
    editor.row("name").display.value = "회원명"
    editor.row("city").filterable.value = True
    assert editor.save()
    saved = json.loads((tmp_path / "mappings" / "table-mappings.json").read_text(encoding="utf-8"))
    assert saved["customers"]["fields"]["name"]["displayName"] == "회원명"
    assert saved["customers"]["fields"]["city"]["filterable"] is True
    editor.row("city").display.value = "회원명"  # duplicate display name
    assert not editor.save()
    assert "share the display name" in editor.message.value
    saved_again = json.loads(
        (tmp_path / "mappings" / "table-mappings.json").read_text(encoding="utf-8")
    )
    assert saved_again == saved


# -- real MariaDB with a schema written for the test ------------------------------------
ODD_SCHEMA = [
    "CREATE TABLE `회원 목록` (`회원번호` INT PRIMARY KEY COMMENT '회원 번호', `휴대폰` VARCHAR(20) COMMENT '연락처', `메일 주소` VARCHAR(100), KEY ix_phone (`휴대폰`)) COMMENT '회원'",
    "CREATE TABLE order_lines (order_id INT NOT NULL, line_no INT NOT NULL, amount DECIMAL(10,0), PRIMARY KEY (order_id, line_no))",
    "CREATE TABLE event_log (happened_at DATETIME, note TEXT)",
    "CREATE VIEW vip_customers AS SELECT customer_id, name FROM customers WHERE grade = 'VIP'",
]


@pytest.fixture
def odd_db(mysql_db: str, mysql_admin: pymysql.Connection) -> str:
    with mysql_admin.cursor() as cur:
        cur.execute(f"USE `{mysql_db}`")
        for stmt in ODD_SCHEMA:
            cur.execute(stmt)
        cur.execute(
            "INSERT INTO `회원 목록` VALUES (1, '010-1111-2222', 'a@example.com'), (2, '010-3333-4444', 'b@example.com')"
        )
    yield mysql_db
    with mysql_admin.cursor() as cur:
        cur.execute(f"USE `{mysql_db}`")
        cur.execute("DROP VIEW vip_customers")
        cur.execute("DROP TABLE `회원 목록`, order_lines, event_log")


@pytest.mark.mysql
def test_discovery_on_mariadb_with_odd_names(odd_db: str) -> None:
    wb = hybridwb.connect(source=ro_url(odd_db).render_as_string(hide_password=False))
    infos = {i.name: i for i in wb.mappings.discover()}
    assert {"customers", "회원 목록", "order_lines", "event_log", "vip_customers"} <= set(infos)
    assert infos["order_lines"].primary_key == ["order_id", "line_no"]
    assert infos["event_log"].primary_key == []
    assert infos["vip_customers"].is_view
    assert infos["customers"].rows_estimate is not None
    member = wb.mappings.suggest("회원 목록")
    assert member.displayName == "회원"
    assert member.fields["회원번호"].displayName == "회원 번호"
    assert member.fields["휴대폰"].role == "phone" and member.fields["휴대폰"].filterable
    assert member.fields["메일 주소"].role == "email" and not member.fields["메일 주소"].filterable
    assert wb.mappings.suggest("order_lines").key is None
    assert wb.mappings.suggest("event_log").fields["happened_at"].type == "datetime"
    customers = wb.mappings.suggest("customers")
    assert customers.fields["customer_id"].displayName == "고객ID"  # from the column comment
    assert customers.fields["created_at"].displayName == "가입일시"
    assert wb.mappings.suggest("payments").fields["paid_at"].role == "date"
    wb.close()


def test_shipped_file_can_be_copied_for_a_user(tmp_path: Path) -> None:
    target = tmp_path / "mappings" / "table-mappings.json"
    target.parent.mkdir()
    shutil.copy(REPO / "mappings" / "table-mappings.json", target)
    assert parse(target.read_text(encoding="utf-8")).tables()


# -- realshop: a Sakila-like schema read through a SELECT-only account -----------------------
def _sel_source(database: str) -> Source:
    return Source(sel_url(database))


def test_realshop_account_has_select_and_nothing_else(realshop_db: str) -> None:
    conn = pymysql.connect(
        host=MYSQL_HOST, port=MYSQL_PORT, user=SEL_USER, password=SEL_PASSWORD, database=realshop_db
    )
    with conn.cursor() as cur:
        cur.execute("SHOW GRANTS")
        grants = " ".join(row[0] for row in cur.fetchall())
        assert "SHOW VIEW" not in grants and "GRANT SELECT ON" in grants
        with pytest.raises(pymysql.err.OperationalError):
            cur.execute("SHOW CREATE VIEW customer_list")
    conn.close()


def test_discovery_on_a_select_only_account_sees_the_whole_schema(
    realshop_db: str, mysql_admin: pymysql.Connection
) -> None:
    """Tables, views, columns, keys, indexes and foreign keys, compared with what root sees in
    information_schema (the oracle), read through an account that cannot SHOW VIEW."""
    source = _sel_source(realshop_db)
    try:
        found = {t.name: t for t in discovery.discover(source)}
    finally:
        source.close()
    with mysql_admin.cursor() as cur:
        cur.execute(
            "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA=%s",
            (realshop_db,),
        )
        kinds = dict(cur.fetchall())
        cur.execute(
            "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS"
            " WHERE TABLE_SCHEMA=%s",
            (realshop_db,),
        )
        columns = {(t, c): ty.upper() for t, c, ty in cur.fetchall()}
        cur.execute(
            "SELECT TABLE_NAME, COLUMN_NAME, REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME"
            " FROM information_schema.KEY_COLUMN_USAGE"
            " WHERE TABLE_SCHEMA=%s AND REFERENCED_TABLE_NAME IS NOT NULL",
            (realshop_db,),
        )
        fks = set(cur.fetchall())
        cur.execute(
            "SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX)"
            " FROM information_schema.STATISTICS WHERE TABLE_SCHEMA=%s"
            " GROUP BY TABLE_NAME, INDEX_NAME, NON_UNIQUE",
            (realshop_db,),
        )
        indexes = {(t, i, not nu, cols) for t, i, nu, cols in cur.fetchall()}
    assert set(found) == set(kinds) == set(realshop.TABLES) | set(realshop.VIEWS)
    assert (
        {n for n, t in found.items() if t.is_view}
        == {n for n, k in kinds.items() if k == "VIEW"}
        == {"customer_list"}
    )
    assert {(t, c.name): c.type for t, info in found.items() for c in info.columns} == columns
    assert {
        (t, col, fk["referred_table"], ref)
        for t, info in found.items()
        for fk in info.foreign_keys
        for col, ref in zip(fk["constrained_columns"], fk["referred_columns"], strict=True)
    } == fks
    got_indexes = {
        (t, i["name"], i["unique"], ",".join(i["column_names"]))
        for t, info in found.items()
        for i in info.indexes
    } | {
        (t, "PRIMARY", True, ",".join(info.primary_key))
        for t, info in found.items()
        if info.primary_key
    }
    assert got_indexes == indexes
    assert found["audit_trail"].primary_key == []
    assert found["customer"].comment == "고객"
    assert found["customer"].column("marketing_opt_in").comment == "광고수신동의"
    assert found["customer_list"].rows_estimate is None
    assert (found["customer"].rows_estimate or 0) > 0


def test_describe_one_view_on_a_select_only_account(realshop_db: str) -> None:
    source = _sel_source(realshop_db)
    try:
        info = discovery.describe(source, "customer_list")
        with pytest.raises(NotFound, match="no table 'nope'"):
            discovery.describe(source, "nope")
    finally:
        source.close()
    assert info.is_view and [c.name for c in info.columns] == [
        "customer_id",
        "name",
        "phone",
        "city",
    ]
