"""The preview bubble (reveal off) renders from masked pii inputs: a value an individual
variable's expression transforms stays hidden too. SQLite sample; oracle: sqlite3."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import hybridwb
from hybridwb.source.sample import build_sqlite
from tests.conftest import install_sample_mappings


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / ".hybridwb").mkdir()
    build_sqlite(tmp_path / ".hybridwb" / "sample.db", 40)
    install_sample_mappings(tmp_path)
    return tmp_path


def test_preview_masks_a_pii_value_an_expression_variable_transforms(project: Path) -> None:
    from hybridwb import widgets

    with sqlite3.connect(project / ".hybridwb" / "sample.db") as conn:
        (name,) = conn.execute("SELECT name FROM customers WHERE customer_id = 1").fetchone()
    with hybridwb.connect(cwd=project, env={}) as wb:
        wb.variables.create(name="이름만", source_type="expression", source="name[1:]")
        p = widgets.preview("#{이름만}님, 안녕하세요", wb)
        p.customer.value = "1"
        p.customer_button.click()
        p.customers.value = 1
        assert "hybridwb-bubble" in p.rendered.value
        assert name[1:] not in p.rendered.value + p.filled.value
        p.reveal.value = True  # the user's explicit choice shows the real message
        assert f"{name[1:]}님" in p.rendered.value
