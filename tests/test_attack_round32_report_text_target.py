"""Round 32: a workflow's target definition given as JSON text is refused in one line.

`targets.parse` takes a definition as a dict or as JSON text (`wb.targets.preview` of
text works), so a workflow saved with `target_config` as text (`'{"table": "customers",
"where": {...}}'`) is a natural thing to try. The report's `shown_definition` masks a
dict only, and `workflows.create` met the text with a raw `AttributeError: 'str' object
has no attribute 'get'` (in `audience_for`). Now such a target (text, or a
`TargetDefinition` object) is refused in one line before anything is saved, as a
`trigger_config` that is not a dict is.

Source: the sample shop on MariaDB (read-only account); store: SQLite; oracle: the
store's `workflows` table read with sqlite3.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from hybridwb.errors import ValidationError
from hybridwb.targets.definition import parse
from tests.conftest import install_sample_mappings, ro_url
from tests.test_attack_round30_report_definition import shop_workbench

pytestmark = [pytest.mark.mysql]


def test_a_target_given_as_text_is_refused_in_one_line(mysql_db: str, tmp_path: Path) -> None:
    """BREAK: create raised AttributeError: 'str' object has no attribute 'get'."""
    install_sample_mappings(tmp_path, ro_url(mysql_db))
    target = {"table": "customers", "where": {"field": "name", "op": "eq", "value": "홍길동"}}
    db = tmp_path / "store.db"
    with shop_workbench(mysql_db, tmp_path) as wb:
        msg = {"content": "고객님, 이번 달 안내입니다."}
        for given in (json.dumps(target, ensure_ascii=False), parse(target)):
            with pytest.raises(ValidationError) as refused:
                wb.workflows.create("text", target_config=given, message_config=msg)
            text = str(refused.value)
            assert "\n" not in text and "target_config must be a dict" in text, text
            assert "홍길동" not in text
        wf = wb.workflows.create("dict", target_config=target, message_config=msg)
        with pytest.raises(ValidationError):
            wb.workflows.update(wf["id"], target_config=json.dumps(target))
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT name, target_config FROM workflows").fetchall()
    assert [(n, json.loads(t)) for n, t in rows] == [("dict", target)]
