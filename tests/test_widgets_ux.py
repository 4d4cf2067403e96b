"""Widgets as an analyst drives them: set `.value`s, click buttons, check against the data.

Oracles are independent of the code under test: the sample shop read with sqlite3, the
mapping file and the platform store's SQLite file on disk.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import hybridwb
import hybridwb.widgets as widgets
from hybridwb.errors import HybridwbError
from hybridwb.widgets._builder import RELATIONS, RELATIVE, ConditionRow, TargetBuilder, agg_code
from hybridwb.widgets._mapping_editor import MappingEditor
from hybridwb.widgets._monitor import Monitor
from hybridwb.widgets._preview import VariablePreview
from hybridwb.widgets._schema import SchemaBrowser
from hybridwb.widgets._search import SearchWidget
from hybridwb.widgets._targets import TargetPreview


def _db(tmp_path: Path) -> sqlite3.Connection:
    return sqlite3.connect(tmp_path / ".hybridwb" / "sample.db")


def _one(tmp_path: Path, sql: str, *params: Any) -> Any:
    with _db(tmp_path) as conn:
        return conn.execute(sql, params).fetchone()[0]


def _pii(tmp_path: Path, *ids: int) -> list[str]:
    """The personal values of these customers, read directly (what must never be shown)."""
    with _db(tmp_path) as conn:
        marks = ",".join("?" * len(ids))
        rows = conn.execute(
            f"SELECT name, phone, email, birth_date FROM customers WHERE customer_id IN ({marks})",
            ids,
        ).fetchall()
    return [str(v) for row in rows for v in row if v]


def _add_condition(b: TargetBuilder, group: int = 0) -> ConditionRow:
    """Click "add group" until group `group` exists, then its "add condition"; the new row."""
    while len(b.groups) <= group:
        b.add_group_button.click()
    b.groups[group].add_button.click()
    return b.groups[group].rows[-1]


def _find(p: VariablePreview, term: str) -> None:
    """Type a term into the preview's customer box and click 찾기 (find)."""
    p.customer.value = term
    p.customer_button.click()


@pytest.fixture
def statements(shop: hybridwb.Workbench) -> Iterator[list[str]]:
    """Every statement SQLite runs for the source, traced by sqlite3 itself on each new
    connection (the source sends its text on raw cursors, past SQLAlchemy's events)."""
    sent: list[str] = []

    def trace(dbapi_conn: Any, record: Any) -> None:
        dbapi_conn.set_trace_callback(sent.append)

    engine = shop.source.engine
    sa.event.listen(engine, "connect", trace)
    yield sent
    sa.event.remove(engine, "connect", trace)


def test_the_statement_trace_sees_a_search(shop: hybridwb.Workbench, statements: list[str]) -> None:
    shop.search("customers", "김", limit=5)
    assert any("customers" in s for s in statements)


# -- constructors ---------------------------------------------------------------------------
CLASSES = {
    "schema_browser": SchemaBrowser,
    "mapping_editor": MappingEditor,
    "search": SearchWidget,
    "target_preview": TargetPreview,
    "target_builder": TargetBuilder,
    "preview": VariablePreview,
    "monitor": Monitor,
}


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_widget_constructors_never_query_the_source(
    shop: hybridwb.Workbench, statements: list[str], name: str
) -> None:
    CLASSES[name](shop)
    CLASSES[name](shop)
    assert statements == []


def test_the_target_builder_factory_can_be_called_twice(shop: hybridwb.Workbench) -> None:
    first, second = widgets.target_builder(shop), widgets.target_builder(shop)
    assert first is not second and callable(widgets.target_builder)
    assert first.table.value == "customers"  # the mapped audience table


# -- search ----------------------------------------------------------------------------------
def test_use_as_targets_before_a_search_says_so(shop: hybridwb.Workbench) -> None:
    s = widgets.search(shop)
    s.targets_button.click()
    assert "search first" in s.message.value and "hybridwb-warn" in s.message.value
    with pytest.raises(HybridwbError, match="No rows are picked"):
        s.definition()


def test_the_search_grid_shows_page_numbers_and_the_rows_seen(shop: hybridwb.Workbench) -> None:
    s = widgets.search(shop)
    s.term.value = "김"
    assert "page 1 · rows 1-20 of more than 20" in s.page_info.value
    assert len(s.checks) == 20 and "20 rows" in s.grid.value
    s.next_button.click()
    assert "page 2 · rows 21-40" in s.page_info.value
    s.prev_button.click()
    assert "page 1 · rows 1-20" in s.page_info.value


def test_a_pick_is_labelled_by_its_key_once_and_who_it_is_masked(
    shop: hybridwb.Workbench, tmp_path: Path
) -> None:
    """Each checkbox reads "key · name · phone" (the key not repeated as the first column),
    name and phone masked as the mapping's pii flags say; the oracle is the stored row."""
    from hybridwb.render import mask

    s = widgets.search(shop)
    s.term.value = "김"
    assert s.checks
    with _db(tmp_path) as conn:
        for box in s.checks:
            key = box.pick[1]
            name, phone = conn.execute(
                "SELECT name, phone FROM customers WHERE customer_id = ?", (key,)
            ).fetchone()
            assert box.description == f"{key} · {mask(name)} · {mask(phone)}"


def test_picks_keep_their_table_when_the_table_is_switched(
    shop: hybridwb.Workbench, tmp_path: Path
) -> None:
    s = widgets.search(shop)
    s.term.value = "김"
    keys = [box.pick[1] for box in s.checks[:3]]
    for box in s.checks[:3]:  # ticked as a click ticks them
        box.value = True
    s.table.value = "payments"  # a different table: its ids are payment ids
    assert s.variables.value == ""
    # the search re-runs on payments: its rows are payments' and none shows as picked,
    # even a payment whose id equals a picked customer id
    assert all(box.pick[0] == "payments" and not box.value for box in s.checks)
    s.targets_button.click()
    assert s.targets == [("customers", k) for k in keys]
    assert "3 from customers" in s.picked.value
    definition = s.definition()
    assert definition["table"] == "customers"
    assert definition["where"]["value"] == keys
    # the builder takes the picks on their own table, whatever table it showed before
    b = widgets.target_builder(shop, table="payments", picks=s)
    assert b.table.value == "customers"
    b.opt_out.value = False
    b.preview_button.click()
    assert b.count == len(keys), b.panel.message.value
    b.table.value = "payments"  # never re-labelled as payment ids: refused, visibly
    assert "not payments" in b.picks_info.value
    with pytest.raises(HybridwbError, match="ids of customers, not payments"):
        b.definition()


def test_picks_with_opt_outs_show_the_exclusion_by_reason(
    shop: hybridwb.Workbench, tmp_path: Path
) -> None:
    with _db(tmp_path) as conn:
        opted_in = [
            r[0]
            for r in conn.execute(
                "SELECT customer_id FROM customers WHERE marketing_opt_in = 1 ORDER BY customer_id LIMIT 2"
            )
        ]
        opted_out = [
            r[0]
            for r in conn.execute(
                "SELECT customer_id FROM customers WHERE marketing_opt_in = 0 ORDER BY customer_id LIMIT 1"
            )
        ]
    b = widgets.target_builder(shop, picks=[("customers", k) for k in opted_in + opted_out])
    b.preview_button.click()
    assert b.count == 2, b.panel.message.value
    assert b.panel.excluded["opt-out (수신 거부)"] == 1
    assert (
        "opt-out" in b.panel.exclusions.value and "exclusions by reason" in b.panel.exclusions.value
    )
    assert "preview only" in b.panel.message.value


# -- the visual target builder ---------------------------------------------------------------
Row = tuple[int, str, str, str]  # group, field code, op, value
BUILDS: dict[str, tuple[list[Row], dict[str, Any], str]] = {
    "one-condition": (
        [(0, "f:grade", "eq", "VIP")],
        {},
        "grade = 'VIP' AND marketing_opt_in = 1",
    ),
    "or-group": (
        [(0, "f:grade", "eq", "VIP"), (0, "f:grade", "eq", "GOLD")],
        {"group_join": "any"},
        "grade IN ('VIP', 'GOLD') AND marketing_opt_in = 1",
    ),
    "two-groups-and": (
        [(0, "f:grade", "in", "VIP, GOLD"), (1, "f:created_at", "gte", "2022-01-01")],
        {},
        "grade IN ('VIP','GOLD') AND created_at >= '2022-01-01' AND marketing_opt_in = 1",
    ),
    "two-groups-or": (
        [(0, "f:grade", "eq", "VIP"), (1, "f:city", "eq", "영월군")],
        {"join": "any"},
        "(grade = 'VIP' OR city = '영월군') AND marketing_opt_in = 1",
    ),
    "opt-out-kept": ([(0, "f:grade", "eq", "VIP")], {"opt_out": False}, "grade = 'VIP'"),
    "number-and-null": (
        [(0, "f:customer_id", "between", "10, 500"), (0, "f:email", "is_null", "")],
        {"opt_out": False},
        "customer_id BETWEEN 10 AND 500 AND email IS NULL",
    ),
}


@pytest.mark.parametrize("case", sorted(BUILDS))
def test_the_builder_count_matches_direct_sql(
    shop: hybridwb.Workbench, tmp_path: Path, case: str
) -> None:
    rows, options, where = BUILDS[case]
    b = widgets.target_builder(shop)
    b.live.value = False
    for group, code, op, value in rows:
        row = _add_condition(b, group)
        row.field.value, row.op.value, row.value.value = code, op, value
    if "group_join" in options:
        b.groups[0].join.value = options["group_join"]
    if "join" in options:
        b.join.value = options["join"]
    if "opt_out" in options:
        b.opt_out.value = options["opt_out"]
    b.preview_button.click()
    expected = _one(tmp_path, f"SELECT COUNT(*) FROM customers WHERE {where}")
    assert expected > 0
    assert b.count == expected, (b.message.value, b.panel.message.value, b.definition())
    assert f"대상 {expected:,}명" in b.panel.count.value
    assert "SELECT" in b.panel.sql.value  # the generated SQL is shown
    assert "고객명" in b.panel.sample.value  # headers are display names


def test_the_builder_counts_live_as_values_change(shop: hybridwb.Workbench, tmp_path: Path) -> None:
    b = widgets.target_builder(shop)
    row = _add_condition(b)
    row.field.value, row.op.value = "f:grade", "eq"
    row.value.value = "GOLD"
    assert b.count == _one(
        tmp_path, "SELECT COUNT(*) FROM customers WHERE grade='GOLD' AND marketing_opt_in=1"
    )


def test_the_builder_offers_operators_by_type(shop: hybridwb.Workbench) -> None:
    b = widgets.target_builder(shop)
    row = _add_condition(b)
    row.field.value = "f:grade"
    text_ops = {v for _, v in row.op.options}
    row.field.value = "f:created_at"
    date_ops = {v for _, v in row.op.options}
    assert "prefix" in text_ops and "gt" not in text_ops
    assert "gt" in date_ops and "prefix" not in date_ops
    assert date_ops >= RELATIVE


@pytest.mark.skipif(not RELATIONS, reason="the relations target model has not landed")
def test_the_builder_aggregates_over_a_to_many_relation(
    shop: hybridwb.Workbench, tmp_path: Path
) -> None:
    b = widgets.target_builder(shop)
    b.live.value = False
    b.opt_out.value = False
    row = _add_condition(b)
    row.field.value, row.op.value, row.value.value = (
        agg_code("sum", "payments", "amount"),
        "gt",
        "200000",
    )
    b.preview_button.click()
    expected = _one(
        tmp_path,
        "SELECT COUNT(*) FROM customers c WHERE (SELECT SUM(amount) FROM payments p "
        "WHERE p.customer_id = c.customer_id) > 200000",
    )
    assert b.count == expected, b.panel.message.value


@pytest.mark.parametrize(
    ("relation", "field"),
    [("payments", "amount"), ("pay:ments", "amount"), ("payments", "a:mount"), ("a:b", "")],
)
def test_an_aggregate_code_reads_back_names_with_colons(relation: str, field: str) -> None:
    """The builder's aggregate code keeps a relation and a field whole whatever they hold
    (a colon split `agg:sum:a:b:x` into relation `a` and field `b:x`)."""
    from hybridwb.widgets._builder import condition

    node = condition(agg_code("sum", relation, field), "number", "gt", "5", "days", 0)
    want = {"aggregate": "sum", "relation": relation, "op": "gt", "value": 5}
    assert node == ({**want, "field": field} if field else want)


def _seoul_bounds(days: int) -> list[tuple[str, str]]:
    """(now - days, now) as the sample's naive text, in the definition's zone (Asia/Seoul),
    read just before and just after the builder counts (a row on the boundary may move)."""
    from zoneinfo import ZoneInfo

    now = dt.datetime.now(ZoneInfo("Asia/Seoul")).replace(tzinfo=None, microsecond=0)
    return [
        ((t - dt.timedelta(days=days)).isoformat(" "), t.isoformat(" "))
        for t in (now, now + dt.timedelta(seconds=5))
    ]


def test_the_builder_counts_a_relative_date_as_direct_sql(
    shop: hybridwb.Workbench, tmp_path: Path
) -> None:
    """ "Joined in the last 365 days", picked from the menus: the count is direct SQL's over
    the same window, evaluated in Seoul time."""
    b = widgets.target_builder(shop)
    b.live.value = False
    b.opt_out.value = False
    row = _add_condition(b)
    row.field.value, row.op.value = "f:created_at", "within_last"
    row.value.value, row.unit.value = "365", "days"
    bounds = _seoul_bounds(365)
    b.preview_button.click()
    bounds += _seoul_bounds(365)  # and after: a slow count sees a later window
    assert b.definition()["where"] == {
        "field": "created_at",
        "op": "within_last",
        "value": {"days": 365},
    }
    sql = "SELECT COUNT(*) FROM customers WHERE created_at >= ? AND created_at <= ?"
    expected = {_one(tmp_path, sql, lo, hi) for lo, hi in bounds}
    assert 0 < min(expected) < _one(tmp_path, "SELECT COUNT(*) FROM customers")
    assert b.count in expected, (b.count, expected, b.panel.message.value)


@pytest.mark.skipif(not RELATIONS, reason="the relations target model has not landed")
def test_the_builder_aggregates_within_a_recent_window(
    shop: hybridwb.Workbench, tmp_path: Path
) -> None:
    """ "Paid more than 30,000 in the last 180 days": an aggregate over payments limited to
    the relation's own date (its orderBy, paid_at), counted as direct SQL counts it."""
    b = widgets.target_builder(shop)
    b.live.value = False
    b.opt_out.value = False
    row = _add_condition(b)
    row.field.value, row.op.value, row.value.value = (
        agg_code("sum", "payments", "amount"),
        "gt",
        "30000",
    )
    row.window.value = 180
    bounds = _seoul_bounds(180)
    b.preview_button.click()
    bounds += _seoul_bounds(180)  # and after: a slow count sees a later window
    sql = (
        "SELECT COUNT(*) FROM customers c WHERE (SELECT SUM(amount) FROM payments p "
        "WHERE p.customer_id = c.customer_id AND p.paid_at >= ? AND p.paid_at <= ?) > 30000"
    )
    expected = {_one(tmp_path, sql, lo, hi) for lo, hi in bounds}
    unwindowed = _one(
        tmp_path,
        "SELECT COUNT(*) FROM customers c WHERE (SELECT SUM(amount) FROM payments p "
        "WHERE p.customer_id = c.customer_id) > 30000",
    )
    assert min(expected) > 0 and max(expected) < unwindowed  # the window matters here
    assert b.count in expected, (b.count, expected, b.panel.message.value)


def test_the_builder_saves_the_definition_into_a_workflow(
    shop: hybridwb.Workbench, tmp_path: Path
) -> None:
    shop.workflows.create("vip-welcome")
    b = widgets.target_builder(shop)
    row = _add_condition(b)
    row.field.value, row.op.value, row.value.value = "f:grade", "eq", "VIP"
    b.workflow.value = "vip-welcome"
    b.save_button.click()
    assert "saved" in b.message.value, b.message.value
    with sqlite3.connect(tmp_path / ".hybridwb" / "platform.db") as conn:
        stored = conn.execute(
            "SELECT target_config FROM workflows WHERE name = 'vip-welcome'"
        ).fetchone()[0]
    assert json.loads(stored) == b.definition()
    assert json.loads(stored)["where"] == {"field": "grade", "op": "eq", "value": "VIP"}


def test_saving_into_a_missing_workflow_is_one_clear_message(shop: hybridwb.Workbench) -> None:
    b = widgets.target_builder(shop)
    b.workflow.value = "no-such-workflow"
    b.save_button.click()
    assert "hybridwb-error" in b.message.value and "no-such-workflow" in b.message.value


# -- personal data in every widget ----------------------------------------------------------
def test_personal_data_is_masked_in_every_widget(shop: hybridwb.Workbench, tmp_path: Path) -> None:
    first = _one(tmp_path, "SELECT name FROM customers WHERE customer_id = 1")
    secrets = _pii(tmp_path, 1, 2, 3, 4, 5)
    shown: dict[str, str] = {}

    s = widgets.search(shop)
    s.term.value = first
    assert s.result is not None and len(s.result)
    shown["search grid"] = s.grid.value
    shown["search checkboxes"] = " ".join(box.description for box in s.checks)

    browser = widgets.schema_browser(shop)
    browser.tables.value = "customers"
    shown["schema sample"] = browser.sample.value

    editor = widgets.mapping_editor(shop, "customers")
    shown["mapping editor samples"] = " ".join(r.sample.value for r in editor.rows)

    p = widgets.preview("#{고객명}님 안녕하세요", shop)
    _find(p, first)
    shown["preview picker"] = " ".join(label for label, _ in p.customers.options)
    p.customers.value = 1
    shown["preview bubble"] = p.rendered.value + p.filled.value

    t = widgets.target_preview(
        shop, {"table": "customers", "where": {"field": "customer_id", "op": "lte", "value": 5}}
    )
    t.run_button.click()
    shown["target preview sample"] = t.sample.value

    b = widgets.target_builder(shop, picks=[("customers", k) for k in (1, 2, 3, 4, 5)])
    b.opt_out.value = False
    shown["target builder sample"] = b.panel.sample.value

    for where, html in shown.items():
        assert html, where
        leaked = [v for v in secrets if v in html]
        assert not leaked, f"{where} shows personal data"

    p.reveal.value = True  # explicitly revealed: the preview may show the name
    assert first in p.rendered.value


def test_the_message_bubble_shows_the_byte_count_and_the_filling_rows(
    shop: hybridwb.Workbench, tmp_path: Path
) -> None:
    p = widgets.preview("#{고객명}님, 구독이 #{만료일}에 만료됩니다.", shop)
    p.reveal.value = True
    _find(p, "1")
    p.customers.value = 1
    text = p.rendered.value
    assert "hybridwb-bubble" in text and "bytes (EUC-KR)" in text
    # the message written by hand from sqlite3: customer 1's name and its one subscription
    name = _one(tmp_path, "SELECT name FROM customers WHERE customer_id = 1")
    assert _one(tmp_path, "SELECT COUNT(*) FROM subscriptions WHERE customer_id = 1") == 1
    ends = _one(tmp_path, "SELECT ends_at FROM subscriptions WHERE customer_id = 1")
    message = f"{name}님, 구독이 {ends}에 만료됩니다."
    assert f">{message}</div>" in text
    assert f"{len(message)}자 · {len(message.encode('euc-kr'))} bytes (EUC-KR)" in text
    assert "고객명" in p.filled.value and "customers 1" in p.filled.value
    # the related row the expiry date came from, by its key as stored
    sub = _one(tmp_path, "SELECT subscription_id FROM subscriptions WHERE customer_id = 1")
    assert f"subscriptions (subscription_id={sub})" in p.filled.value, p.filled.value


def test_the_preview_names_the_latest_related_row_that_filled_a_variable(
    shop: hybridwb.Workbench, tmp_path: Path
) -> None:
    """A customer with several subscriptions: the expiry date comes from the latest by the
    relation's orderBy (ends_at), and the preview names that row by its key, as stored."""
    cid = _one(
        tmp_path,
        "SELECT customer_id FROM subscriptions GROUP BY customer_id "
        "HAVING COUNT(*) > 1 ORDER BY customer_id LIMIT 1",
    )
    sub, ends = (
        _db(tmp_path)
        .execute(
            "SELECT subscription_id, ends_at FROM subscriptions WHERE customer_id = ? "
            "ORDER BY ends_at DESC LIMIT 1",
            (cid,),
        )
        .fetchone()
    )
    p = widgets.preview("#{고객명}님, 구독이 #{만료일}에 만료됩니다.", shop)
    _find(p, str(cid))
    p.customers.value = cid
    assert f"구독이 {ends}에" in p.rendered.value
    assert f"subscriptions (subscription_id={sub})" in p.filled.value, p.filled.value
    assert f"customers {cid}" in p.filled.value


# -- mapping editor -----------------------------------------------------------------------
def test_the_mapping_editor_keeps_unsaved_edits_when_the_table_is_switched(
    shop: hybridwb.Workbench, tmp_path: Path
) -> None:
    path = tmp_path / "mappings" / "table-mappings.json"
    before = path.read_text(encoding="utf-8")
    editor = widgets.mapping_editor(shop, "customers")
    assert not editor.dirty
    editor.row("grade").display.value = "회원 등급"
    assert editor.dirty and "unsaved" in editor.unsaved.value
    editor.table.value = "payments"
    assert "customers: unsaved edits kept" in editor.message.value
    assert path.read_text(encoding="utf-8") == before  # nothing written behind the user
    editor.table.value = "customers"
    assert editor.row("grade").display.value == "회원 등급"
    assert editor.dirty
    editor.save_button.click()
    assert "saved customers" in editor.message.value, editor.message.value
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert saved["customers"]["fields"]["grade"]["displayName"] == "회원 등급"
    assert not editor.dirty and editor.drafts == {}


def test_the_mapping_editor_discards_edits_on_request(shop: hybridwb.Workbench) -> None:
    editor = widgets.mapping_editor(shop, "customers")
    editor.row("grade").display.value = "회원 등급"
    editor.discard_button.click()
    assert editor.row("grade").display.value == "등급" and not editor.dirty


def test_the_mapping_editor_has_headers_full_names_and_samples(
    shop: hybridwb.Workbench, tmp_path: Path
) -> None:
    editor = widgets.mapping_editor(shop, "customers")
    header = editor.children[editor.children.index(editor.fields) - 1]
    assert "필드 (field)" in header.children[0].value
    assert "marketing_opt_in" in editor.row("marketing_opt_in").label.value
    grade = _one(tmp_path, "SELECT grade FROM customers ORDER BY customer_id LIMIT 1")
    assert grade in editor.row("grade").sample.value
    phone = _one(tmp_path, "SELECT phone FROM customers ORDER BY customer_id LIMIT 1")
    assert phone not in editor.row("phone").sample.value  # pii: masked
    editor.row("phone").pii.value = False
    assert phone in editor.row("phone").sample.value


def test_the_monitor_reads_in_the_dark_theme_without_glyph_fonts(
    shop: hybridwb.Workbench,
) -> None:
    shop.search("customers", "김", limit=5)  # something in the query log
    html = widgets.monitor(shop).page.value
    assert "hybridwb-table" in html and "var(--jp-" in html
    assert "latency by kind" in html and "word-break: keep-all" in html
    assert not any(glyph in html for glyph in "✅❌✔✘")


def test_the_live_count_previews_each_distinct_definition_once(
    shop: hybridwb.Workbench, statements: list[str]
) -> None:
    b = widgets.target_builder(shop)
    row = _add_condition(b)
    row.field.value, row.op.value, row.value.value = "f:grade", "eq", "VIP"
    b.panel.count.value = "previewed before"  # a re-preview would replace it
    row.value.value = "VIP"  # no change
    b.join.value = "any"  # one group: the definition is the same
    assert b.panel.count.value == "previewed before"
    before = len(statements)
    row.value.value = "GOLD"
    assert "대상" in b.panel.count.value and len(statements) > before
