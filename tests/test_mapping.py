"""Table mappings: the model, suggestions, drift, saving, the CLI and the widgets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pymysql
import pytest
from click.testing import CliRunner
from sqlalchemy import event, inspect
from sqlalchemy.exc import DBAPIError

import hybridwb
from hybridwb.cli import main
from hybridwb.errors import NotFound, ValidationError
from hybridwb.mapping import discovery, suggest
from hybridwb.mapping.drift import check_table
from hybridwb.mapping.model import FieldMapping, TableMapping, json_schema, parse
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
    assert payments.fields["customer_id"].role == "reference"
    assert customers.audience and customers.recipient == "phone" and customers.channel == "sms"
    assert customers.consent == "marketing_opt_in" and customers.nightConsent is None
    assert not payments.audience and not wb.mappings.suggest("subscriptions").audience


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
    editor.save_button.click()
    assert "saved customers" in editor.message.value, editor.message.value
    saved = json.loads((tmp_path / "mappings" / "table-mappings.json").read_text(encoding="utf-8"))
    assert saved["customers"]["fields"]["name"]["displayName"] == "회원명"
    assert saved["customers"]["fields"]["city"]["filterable"] is True
    editor.row("city").display.value = "회원명"  # duplicate display name
    editor.save_button.click()
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
        ssl_disabled=True,
        host=MYSQL_HOST,
        port=MYSQL_PORT,
        user=SEL_USER,
        password=SEL_PASSWORD,
        database=realshop_db,
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
    information_schema (the oracle), read through an account that cannot SHOW VIEW.

    Discovery sends SELECTs on information_schema and nothing else: SQLAlchemy's inspector
    (`SHOW CREATE TABLE`, `SHOW FULL TABLES`) is refused on a view here, states types as its
    own (`INTEGER` for `INT(10) UNSIGNED`) and drops table comments. The statements sent are
    checked too, so a server that let the inspector through would not hide the path taken."""
    source = _sel_source(realshop_db)
    sent: list[str] = []

    @event.listens_for(source.engine, "before_cursor_execute")
    def _sent(conn, cursor, statement, params, context, many):  # type: ignore[no-untyped-def]
        sent.append(" ".join(statement.split()))

    try:
        found = {t.name: t for t in discovery.discover(source)}
        estimates = discovery.row_estimates(source)
        reads = [s for s in sent if not s.upper().startswith("SET ")]
        # the premise: the inspector cannot describe the view through this account
        with pytest.raises(DBAPIError, match="SHOW VIEW"):
            inspect(source.engine).get_columns("customer_list")
    finally:
        source.close()
    assert reads and all(
        s.upper().startswith("SELECT ") and "information_schema." in s for s in reads
    ), reads
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
    assert set(estimates) == {n for n, k in kinds.items() if k == "BASE TABLE"}


def test_describe_one_view_on_a_select_only_account(realshop_db: str) -> None:
    source = _sel_source(realshop_db)
    try:
        info = discovery.describe(source, "customer_list")
        names = source.column_names("customer_list")  # what the magics complete with
        with pytest.raises(NotFound, match="no table 'nope'"):
            discovery.describe(source, "nope")
    finally:
        source.close()
    view = ["customer_id", "name", "phone", "city"]
    assert info.is_view and [c.name for c in info.columns] == view and names == view


# -- suggestion rules (pure) -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sql_type", "expected"),
    [
        ("TINYINT(1)", "boolean"),
        ("tinyint(1) unsigned", "boolean"),
        ("BOOLEAN", "boolean"),
        ("BIT(1)", "boolean"),
        ("TINYINT(4)", "number"),
        ("TINYINT", "number"),
        ("SMALLINT", "number"),
        ("DECIMAL(10,2)", "number"),
        ("DATETIME", "datetime"),
        ("TIMESTAMP", "datetime"),
        ("DATE", "date"),
        ("VARCHAR(45)", "string"),
    ],
    ids=lambda v: str(v),
)
def test_field_type_from_the_stated_column_type(sql_type: str, expected: str) -> None:
    assert suggest.field_type(sql_type) == expected


@pytest.mark.parametrize(
    ("name", "ftype", "values", "kwargs", "role"),
    [
        ("customer_id", "number", [], {"is_key": True}, "id"),
        ("store_id", "number", [], {"is_reference": True}, "reference"),
        ("customer_id", "number", [], {}, "reference"),  # not this table's key
        ("id", "number", [], {"is_reference": True}, "reference"),
        ("first_name", "string", ["JANE"], {}, "first_name"),
        ("last_name", "string", ["DOE"], {}, "last_name"),
        ("name", "string", ["백지훈"], {}, "name"),
        ("nickname_kr", "string", ["백지훈", "김민준"], {}, "name"),
        ("marketing_opt_in", "boolean", [1, 0], {}, "consent"),
        ("sms_agree", "boolean", [], {}, "consent"),
        ("email_agree_yn", "string", ["Y", "N"], {}, "consent"),
        ("광고수신동의", "boolean", [], {}, "consent"),
        ("flag_a", "boolean", [], {"comment": "광고수신동의"}, "consent"),
        ("night_opt_in", "boolean", [], {}, "night_consent"),
        ("야간수신동의", "number", [0, 1], {}, "night_consent"),
        ("agree_date", "datetime", [], {}, "date"),
        ("accept_language", "string", ["ko-KR", "en"], {}, "text"),
        ("active", "boolean", [1], {}, "flag"),
        ("phone", "string", ["02-123-4567"], {}, "phone"),
        ("contact", "string", ["+82 10-1234-5678", "821012345678"], {}, "phone"),
        ("hotel", "string", ["Hilton"], {}, "text"),
        ("email", "string", [], {}, "email"),
        ("amount", "number", [], {}, "amount"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_role_for_a_column(name: str, ftype: str, values: list, kwargs: dict, role: str) -> None:
    is_key = kwargs.pop("is_key", False)
    assert suggest.role_for(name, ftype, values, is_key, **kwargs) == role


@pytest.mark.parametrize(
    ("column", "referred", "name"),
    [
        ("address_id", "address", "address"),
        ("billing_address_id", "address", "billing_address"),
        ("id", "store", "store"),
        ("cust_no", "customer", "cust"),
    ],
)
def test_relation_is_named_by_its_column(column: str, referred: str, name: str) -> None:
    assert suggest.relation_name(column, referred) == name


# -- suggestion quality against information_schema (the oracle) -------------------------------
def _oracle(conn: pymysql.Connection, database: str) -> dict:
    """What information_schema says, read as root with hand-written SQL."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, DATA_TYPE, COLUMN_KEY"
            " FROM information_schema.COLUMNS WHERE TABLE_SCHEMA=%s",
            (database,),
        )
        columns = {(t, c): (ct.lower(), dt.lower(), key) for t, c, ct, dt, key in cur.fetchall()}
        cur.execute(
            "SELECT TABLE_NAME, GROUP_CONCAT(COLUMN_NAME) FROM information_schema.STATISTICS"
            " WHERE TABLE_SCHEMA=%s AND INDEX_NAME='PRIMARY' GROUP BY TABLE_NAME",
            (database,),
        )
        pks = {t: cols.split(",") for t, cols in cur.fetchall()}
        cur.execute(
            "SELECT TABLE_NAME, INDEX_NAME, GROUP_CONCAT(COLUMN_NAME) FROM information_schema.STATISTICS"
            " WHERE TABLE_SCHEMA=%s AND NON_UNIQUE=0 GROUP BY TABLE_NAME, INDEX_NAME",
            (database,),
        )
        unique = {(t, cols) for t, _, cols in cur.fetchall()}
        cur.execute(
            "SELECT TABLE_NAME, COLUMN_NAME, REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME"
            " FROM information_schema.KEY_COLUMN_USAGE"
            " WHERE TABLE_SCHEMA=%s AND REFERENCED_TABLE_NAME IS NOT NULL",
            (database,),
        )
        fks = set(cur.fetchall())
        cur.execute(
            "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA=%s",
            (database,),
        )
        kinds = dict(cur.fetchall())
    return {"columns": columns, "pks": pks, "unique": unique, "fks": fks, "kinds": kinds}


SCHEMAS = {
    # schema -> (fixture, url maker, expected audience table and roles)
    "sample": (
        "mysql_db",
        ro_url,
        "customers",
        {"key": "customer_id", "recipient": "phone", "consent": "marketing_opt_in"},
    ),
    "realshop": (
        "realshop_db",
        sel_url,
        "customer",
        {
            "key": "customer_id",
            "recipient": "address.phone",
            "consent": "marketing_opt_in",
            "nightConsent": "night_opt_in",
        },
    ),
}


@pytest.fixture(params=sorted(SCHEMAS))
def schema_wb(request: pytest.FixtureRequest, mysql_admin: pymysql.Connection) -> tuple:
    fixture, url, audience, roles = SCHEMAS[request.param]
    database = request.getfixturevalue(fixture)
    wb = hybridwb.connect(source=url(database).render_as_string(hide_password=False))
    request.addfinalizer(wb.close)
    return wb, _oracle(mysql_admin, database), audience, roles


@pytest.mark.mysql
def test_suggestions_agree_with_information_schema(schema_wb: tuple) -> None:
    """Types, id/reference roles, relations and searchability, table by table, compared with
    what information_schema says (not with the code's own discovery)."""
    wb, oracle, _, _ = schema_wb
    for table, kind in oracle["kinds"].items():
        mapping = wb.mappings.suggest(table)
        pk = oracle["pks"].get(table, [])
        fk_columns = {c for t, c, _, _ in oracle["fks"] if t == table}
        for name, field in mapping.fields.items():
            column_type, data_type, _ = oracle["columns"][(table, name)]
            where = f"{table}.{name}"
            if column_type.startswith("tinyint(1)"):
                assert field.type == "boolean", where
            elif data_type in ("int", "smallint", "tinyint", "bigint", "decimal", "mediumint"):
                assert field.type == "number", where
            elif data_type in ("datetime", "timestamp"):
                assert field.type == "datetime", where
            if name in fk_columns:
                assert field.role == "reference" and not field.searchable, where
            if pk == [name]:
                assert field.role == "id", where
            elif field.role == "id":
                pytest.fail(f"{where} is suggested as the id but is not the primary key")
            if field.role in ("email", "phone", "name", "first_name", "last_name"):
                assert field.searchable and field.pii, where
        to_one = {
            (r.table, r.localField, r.foreignField)
            for r in mapping.relations
            if r.kind == "many-to-one"
        }
        declared = {(rt, c, rc) for t, c, rt, rc in oracle["fks"] if t == table}
        assert declared <= to_one, table
        to_many = {
            (r.table, r.localField, r.foreignField): r
            for r in mapping.relations
            if r.kind == "one-to-many"
        }
        pointing = {(t, rc, c) for t, c, rt, rc in oracle["fks"] if rt == table}
        assert pointing <= set(to_many), table
        for (other, _, _), rel in to_many.items():
            if rel.orderBy is not None:
                assert oracle["columns"][(other, rel.orderBy)][1] in (
                    "date",
                    "datetime",
                    "timestamp",
                )
        assert len({r.path_name for r in mapping.relations}) == len(mapping.relations)
        if kind == "VIEW" or not pk:
            assert not mapping.audience, table


@pytest.mark.mysql
def test_audience_is_suggested_for_the_people_table(schema_wb: tuple) -> None:
    wb, oracle, audience, roles = schema_wb
    mapping = wb.mappings.suggest(audience)
    assert mapping.audience
    assert {k: getattr(mapping, k) for k in roles} == roles
    # the key is a primary key or unique index, per information_schema
    assert [mapping.key] == oracle["pks"][audience] or (audience, mapping.key) in oracle["unique"]
    # the recipient path ends in a live column reached through a declared foreign key
    *hops, leaf = mapping.recipient.split(".")
    here = audience
    for hop in hops:
        rel = next(r for r in mapping.relations if r.path_name == hop)
        assert (here, rel.localField, rel.table, rel.foreignField) in oracle["fks"]
        here = rel.table
    assert (here, leaf) in oracle["columns"]
    saved = wb.mappings.save(audience, mapping)
    assert saved.audience and saved.recipient == mapping.recipient


@pytest.mark.mysql
def test_saved_suggestions_have_no_type_drift(schema_wb: tuple) -> None:
    """tinyint(1) suggested as boolean is not reported as drift (drift and suggest agree)."""
    wb, oracle, audience, _ = schema_wb
    wb.mappings.save(audience, wb.mappings.suggest(audience))
    booleans = [
        c
        for (t, c), (ct, _, _) in oracle["columns"].items()
        if t == audience and ct.startswith("tinyint(1)")
    ]
    assert all(wb.mappings.get(audience).fields[c].type == "boolean" for c in booleans)
    findings = [f for f in wb.mappings.check() if f.severity != "info"]
    assert findings == []


# -- realshop workbench: save checks, one source's mappings, delete ---------------------------
@pytest.fixture
def real(realshop_db: str, tmp_path: Path) -> hybridwb.Workbench:
    """A workbench on realshop (SELECT-only) in a directory that also holds the repository's
    sample mappings at the default path, as in a clone of the repository."""
    (tmp_path / "mappings").mkdir(exist_ok=True)
    shutil.copy(REPO / "mappings" / "table-mappings.json", tmp_path / "mappings")
    wb = hybridwb.connect(source=sel_url(realshop_db).render_as_string(hide_password=False))
    yield wb
    wb.close()


def _customer(real: hybridwb.Workbench, **changes: object) -> dict:
    data = real.mappings.suggest("customer").model_dump(mode="json", exclude_unset=True)
    data.update(changes)
    return data


def _files(root: Path) -> dict[str, dict]:
    return {
        str(p.relative_to(root)): json.loads(p.read_text(encoding="utf-8"))
        for p in sorted((root / "mappings").rglob("*.json"))
    }


@pytest.mark.mysql
@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"key": "first_name"}, "customer.first_name: the audience key is not a primary key"),
        ({"key": "store_id"}, "not a primary key or unique index"),
        ({"key": None}, "an audience table needs a key"),
        ({"recipient": None}, "needs the field messages go to"),
        ({"recipient": "store.phone"}, "store has no column 'phone'"),
        ({"recipient": "nope.phone"}, "'nope' is not a to-one relation of customer"),
        # a one-to-many relation may only be a recipient's last (its latest row's field)
        ({"recipient": "payment.customer.phone"}, "'payment' is not a to-one relation"),
        ({"consent": "opt_in"}, "'opt_in' is not a mapped field of customer"),
    ],
    ids=[
        "key-not-unique",
        "key-is-a-reference",
        "no-key",
        "no-recipient",
        "no-such-column",
        "no-such-relation",
        "to-many-path",
        "consent-not-a-field",
    ],
)
def test_audience_mapping_is_checked_against_the_live_schema_on_save(
    real: hybridwb.Workbench, tmp_path: Path, changes: dict, words: str
) -> None:
    before = _files(tmp_path)
    with pytest.raises(ValidationError, match=words) as caught:
        real.mappings.save("customer", _customer(real, **changes))
    assert "\n" not in str(caught.value) and "Nothing was saved" in str(caught.value)
    assert _files(tmp_path) == before  # the file on disk is untouched


@pytest.mark.mysql
def test_audience_key_may_be_a_unique_index(
    real: hybridwb.Workbench, mysql_admin, realshop_db
) -> None:  # type: ignore[no-untyped-def]
    with mysql_admin.cursor() as cur:
        cur.execute(
            "SELECT NON_UNIQUE FROM information_schema.STATISTICS"
            " WHERE TABLE_SCHEMA=%s AND TABLE_NAME='customer' AND COLUMN_NAME='email'",
            (realshop_db,),
        )
        assert cur.fetchone()[0] == 0  # the oracle: email has a unique index
    assert real.mappings.save("customer", _customer(real, key="email")).key == "email"


@pytest.mark.mysql
def test_sample_mappings_never_apply_to_another_database(
    real: hybridwb.Workbench, tmp_path: Path, sample_db: Path
) -> None:
    shipped = (REPO / "mappings" / "table-mappings.json").read_bytes()
    assert real.mappings.tables() == {}
    assert [f.message for f in real.mappings.check()] == []
    out = CliRunner().invoke(
        main,
        ["mappings", "check"],
        env={"HYBRIDWB_SOURCE_URL": real.settings.source_url.get_secret_value()},
    )
    assert out.exit_code == 0 and "gone" not in out.output, out.output
    from hybridwb.observability.doctor import run_doctor

    report = run_doctor(real)
    assert report.status_of("mapping drift") == "OK", report.render()
    assert "gone from the source" not in report.render()
    real.mappings.save("customer", _customer(real))
    files = _files(tmp_path)
    mine = [name for name, data in files.items() if data.get("$source") == real.mappings.identity]
    assert mine == [str(real.mappings.path.relative_to(tmp_path))] and "sources" in mine[0]
    assert set(files[mine[0]]) == {"$source", "customer"}
    assert (tmp_path / "mappings" / "table-mappings.json").read_bytes() == shipped
    # the sample in the same directory and store still sees only its own mappings
    (tmp_path / ".hybridwb").mkdir(exist_ok=True)
    (tmp_path / ".hybridwb" / "sample.db").write_bytes(sample_db.read_bytes())
    sample = hybridwb.connect()
    assert set(sample.mappings.tables()) == set(json.loads(shipped))
    (tmp_path / "mappings" / "table-mappings.json").unlink()  # now from the store mirror
    assert sample.mappings.tables() == {}  # nothing of realshop's mirror
    sample.close()
    real.mappings.path.unlink()
    assert set(real.mappings.tables()) == {"customer"}  # its own mirror, stamped


@pytest.mark.mysql
def test_delete_a_mapping_through_api_cli_and_editor(
    real: hybridwb.Workbench, tmp_path: Path
) -> None:
    import sqlite3

    real.mappings.save("customer", _customer(real))
    real.mappings.save("payment", real.mappings.suggest("payment"))
    real.mappings.delete("payment")
    assert set(_files(tmp_path)[str(real.mappings.path.relative_to(tmp_path))]) == {
        "$source",
        "customer",
    }
    store = sqlite3.connect(tmp_path / ".hybridwb" / "platform.db")
    active = store.execute(  # the mirror row is keyed by source: never the sample's `payment`
        "SELECT is_active FROM table_mappings WHERE name=? ORDER BY version DESC",
        (f"{real.mappings.identity}/payment",),
    ).fetchone()
    assert not active[0]
    with pytest.raises(NotFound, match="No mapping for 'payment'"):
        real.mappings.delete("payment")
    env = {"HYBRIDWB_SOURCE_URL": real.settings.source_url.get_secret_value()}
    out = CliRunner().invoke(main, ["mappings", "delete", "고객"], env=env)
    assert out.exit_code == 0, out.output
    assert "customer" not in _files(tmp_path)[str(real.mappings.path.relative_to(tmp_path))]
    bad = CliRunner().invoke(main, ["mappings", "delete", "nope"], env=env)
    assert bad.exit_code == 1 and "No mapping for 'nope'" in bad.output
    # CliRunner keeps an uncaught exception in .exception, never in the output
    assert isinstance(bad.exception, SystemExit), bad.exception
    from hybridwb.widgets import mapping_editor

    real.mappings.save("customer", _customer(real))
    editor = mapping_editor(real, "customer")
    assert editor.audience.value and editor.recipient.value == "address.phone"
    editor.delete_button.click()
    assert "deleted the mapping of customer" in editor.message.value, editor.message.value
    assert "customer" not in _files(tmp_path)[str(real.mappings.path.relative_to(tmp_path))]
    editor.delete_button.click()  # nothing left to delete: one line, no exception
    assert "No mapping for &#x27;customer" in editor.message.value


@pytest.mark.parametrize(
    ("column_type", "mapped", "drift"),
    [
        ("TINYINT(1)", "boolean", False),
        ("TINYINT(1)", "number", False),
        ("SMALLINT", "boolean", False),  # a flag kept in a SMALLINT (the sample shop)
        ("DATETIME", "date", False),
        ("VARCHAR(10)", "date", False),
        ("VARCHAR(10)", "number", True),
        ("INT", "string", True),
        ("DATE", "boolean", True),
    ],
    ids=lambda v: str(v),
)
def test_type_drift_only_when_the_mapped_type_no_longer_fits(
    column_type: str, mapped: str, drift: bool
) -> None:
    live = discovery.TableInfo(
        "t", None, [discovery.ColumnInfo("c", column_type, True)], primary_key=["c"]
    )
    mapping = TableMapping(
        displayName="T", fields={"c": FieldMapping(displayName="C", type=mapped)}
    )
    kinds = [f.kind for f in check_table("t", mapping, live)]
    assert ("type-changed" in kinds) is drift


@pytest.mark.parametrize(
    ("table", "columns", "role"),
    [
        ("store", ["store_id", "name"], "text"),
        ("product", ["product_id", "name", "price"], "text"),
        ("customer_list", ["customer_id", "name", "phone"], "name"),
        ("members", ["member_id", "name"], "name"),
        ("accounts", ["account_id", "name", "email"], "name"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_a_name_column_is_a_person_only_in_a_people_table(
    table: str, columns: list[str], role: str
) -> None:
    info = discovery.TableInfo(
        table,
        None,
        [discovery.ColumnInfo(c, "VARCHAR(40)", True) for c in columns],
        primary_key=[columns[0]],
    )
    field = suggest.suggest_fields(info, [])["name"]
    assert field.role == role and field.pii is (role == "name")


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (
            {
                "relations": [
                    {"table": "address", "localField": "a", "foreignField": "a", "name": "home"},
                    {"table": "home", "localField": "a", "foreignField": "a"},
                ]
            },
            "two relations are both reached as 'home'",
        ),
        ({"recipient": "address..phone"}, "recipient 'address..phone' must be a field"),
        # a space inside a name is the name's (`home address.phone`); at an end it is not
        ({"consent": "address. phone"}, "consent 'address. phone' must be a field"),
        ({"nightConsent": ""}, "nightConsent '' must be a field"),
        (
            {"relations": [{"table": "sales.customers", "localField": "a", "foreignField": "a"}]},
            "path name 'sales.customers' holds a dot",
        ),
        (
            {"relations": [{"table": "t", "localField": "a", "foreignField": "a", "name": " t"}]},
            "path name ' t' holds a dot, or starts or ends with a space",
        ),
    ],
    ids=["duplicate-relation-name", "empty-hop", "edge-space", "empty", "dotted-table", "spaced"],
)
def test_malformed_relations_and_paths_are_refused(extra: dict, words: str) -> None:
    data = {"t": {"displayName": "T", "fields": {"a": {"displayName": "A"}}, **extra}}
    with pytest.raises(ValidationError, match=words):
        parse(data)


@pytest.mark.mysql
def test_every_realshop_suggestion_saves_and_checks_clean(real: hybridwb.Workbench) -> None:
    """On a SELECT-only account: discover, suggest and save every table and view, then the
    drift check has nothing to say; the file on disk holds exactly those tables."""
    out = CliRunner().invoke(
        main,
        ["mappings", "discover"],
        env={"HYBRIDWB_SOURCE_URL": real.settings.source_url.get_secret_value()},
    )
    assert out.exit_code == 0, out.output
    assert "customer_list" in out.output and "view" in out.output
    names = [info.name for info in real.mappings.discover()]
    assert set(names) == set(realshop.TABLES) | set(realshop.VIEWS)
    for name in names:
        real.mappings.save(name, real.mappings.suggest(name))
    assert [f.message for f in real.mappings.check() if f.severity != "info"] == []
    on_disk = json.loads(real.mappings.path.read_text(encoding="utf-8"))
    assert set(on_disk) == {"$source", *names}


@pytest.mark.mysql
def test_a_file_stamped_for_another_source_is_never_overwritten(
    real: hybridwb.Workbench,
) -> None:
    path = real.mappings.path
    path.parent.mkdir(parents=True, exist_ok=True)
    foreign = {"$source": "mysql://elsewhere:3306/shop", "t": {"displayName": "T", "fields": {}}}
    path.write_text(json.dumps(foreign), encoding="utf-8")
    assert real.mappings.tables() == {}
    with pytest.raises(ValidationError, match="holds the mappings of mysql://elsewhere"):
        real.mappings.save("customer", _customer(real))
    assert json.loads(path.read_text(encoding="utf-8")) == foreign


@pytest.mark.mysql
def test_check_reports_an_audience_key_that_is_not_unique(real: hybridwb.Workbench) -> None:
    """A file edited by hand (not through save) with a non-unique audience key is drift."""
    real.mappings.save("customer", _customer(real))
    data = json.loads(real.mappings.path.read_text(encoding="utf-8"))
    data["customer"]["key"] = "last_name"
    real.mappings.path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    found = [(f.kind, f.severity) for f in real.mappings.check() if f.field == "last_name"]
    assert ("key-not-unique", "error") in found


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("customers", "고객 정보"),
        ("Customer", "고객 정보"),
        ("orders", "주문"),
        ("shop_items", "Shop items"),
    ],
)
def test_table_labels_come_from_the_name_singular_or_plural(name: str, label: str) -> None:
    assert suggest.table_label_for(name) == label


@pytest.mark.parametrize(("people", "label"), [(True, "고객명"), (False, "이름")])
def test_a_bare_name_column_is_the_customers_only_in_a_people_table(
    people: bool, label: str
) -> None:
    assert suggest.display_name("name", None, people=people) == label
    assert suggest.display_name("name", " 상호 ", people=people) == "상호"
