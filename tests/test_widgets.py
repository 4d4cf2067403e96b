"""Widgets: each factory can be called any number of times, on any mapped audience table."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import hybridwb
import hybridwb.widgets as widgets
from tests.conftest import sel_url

FACTORIES = {
    "schema_browser": lambda wb: widgets.schema_browser(wb),
    "mapping_editor": lambda wb: widgets.mapping_editor(wb, None),
    "search": lambda wb: widgets.search(wb),
    "target_preview": lambda wb: widgets.target_preview(wb),
    "preview": lambda wb: widgets.preview("#{고객명}님", wb),
    "monitor": lambda wb: widgets.monitor(wb),
}


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_a_widget_factory_can_be_called_twice(shop, name: str) -> None:  # type: ignore[no-untyped-def]
    first = FACTORIES[name](shop)
    second = FACTORIES[name](shop)
    assert first is not second and type(first) is type(second)
    assert callable(getattr(widgets, name))  # the package attribute is still the function


def test_widget_modules_never_shadow_the_factories() -> None:
    import importlib

    for name in FACTORIES:
        for module in ("_schema", "_mapping_editor", "_search", "_targets", "_preview", "_monitor"):
            importlib.import_module(f"hybridwb.widgets.{module}")
        assert callable(getattr(widgets, name)), name


@pytest.fixture
def real(realshop_db: str, tmp_path: Path) -> Iterator[hybridwb.Workbench]:
    wb = hybridwb.connect(source=sel_url(realshop_db).render_as_string(hide_password=False))
    wb.mappings.save("address", wb.mappings.suggest("address"))  # mapped first, not people
    wb.mappings.save("customer", wb.mappings.suggest("customer"))
    yield wb
    wb.close()


@pytest.mark.mysql
def test_widgets_work_on_the_mapped_audience_table(
    real: hybridwb.Workbench, tmp_path: Path
) -> None:
    saved = json.loads(real.mappings.path.read_text(encoding="utf-8"))
    audience = [name for name, m in saved.items() if isinstance(m, dict) and m.get("audience")]
    assert audience == ["customer"]  # the oracle: the file on disk
    for _ in range(2):
        preview = widgets.preview("#{이메일}", real)
        assert preview.table == "customer"
        search = widgets.search(real)
        assert search.table.value == "customer"
        search.term.value = "jane.doe@example.com"
        assert len(search.checks) == 1, search.message.value  # found, and shown masked
        assert "jane.doe@example.com" not in search.grid.value
        assert "j********" in search.grid.value


def test_preview_without_an_audience_says_what_to_do(sample_db: Path, tmp_path: Path) -> None:
    (tmp_path / ".hybridwb").mkdir()
    (tmp_path / ".hybridwb" / "sample.db").write_bytes(sample_db.read_bytes())
    wb = hybridwb.connect()  # no mapping file: nothing is marked as the audience
    widget = widgets.preview("#{고객명}님", wb)
    assert "marked as the audience" in widget.completeness.value
    wb.close()


@pytest.mark.mysql
def test_mapping_editor_keeps_the_audience_roles_on_save(real: hybridwb.Workbench) -> None:
    before = json.loads(real.mappings.path.read_text(encoding="utf-8"))["customer"]
    editor = widgets.mapping_editor(real, "customer")
    editor.row("first_name").display.value = "이름 (first)"
    editor.save_button.click()
    assert "saved customer" in editor.message.value, editor.message.value
    after = json.loads(real.mappings.path.read_text(encoding="utf-8"))["customer"]
    roles = ("audience", "key", "recipient", "channel", "consent", "nightConsent", "relations")
    assert {k: after.get(k) for k in roles} == {k: before.get(k) for k in roles}
    assert (
        after["recipient"] == "address.phone"
        and after["fields"]["first_name"]["displayName"] == "이름 (first)"
    )


@pytest.mark.mysql
def test_schema_browser_shows_views_and_foreign_keys(realshop_db: str) -> None:
    wb = hybridwb.connect(source=sel_url(realshop_db).render_as_string(hide_password=False))
    browser = widgets.schema_browser(wb)
    assert ("customer_list (view)", "customer_list") in browser.tables.options
    browser.tables.value = "customer"
    assert "→ address.address_id" in browser.columns.value  # fk_customer_address in the DDL
    assert "idx_customer_name" in browser.indexes.value
    browser.tables.value = "customer_list"  # a view, on an account without SHOW VIEW
    assert "city" in browser.columns.value and "error" not in browser.message.value
    wb.close()
