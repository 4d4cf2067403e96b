"""Attack round 30 on "no phone or e-mail in reports": the run report's target definition.

The HTML report written beside each run notebook shows the workflow's target definition as
JSON, verbatim: a keyword target for one customer (`"keyword": "010-…"`, what the search
widget's picks become), a condition on an e-mail, a saved query with the phone as a literal
or a parameter put the customer's phone or e-mail in every report of the workflow. Now the
report shows the definition as the query log shows a statement: a saved query's literals as
`?`, its parameters' and the conditions' values with their digits and e-mail addresses
masked, and a keyword masked whole.

Source: the sample shop on MariaDB (read-only account); store: SQLite; runs through the
runner (papermill); oracle: the customer's phone and e-mail read with pymysql, searched for
in the report file on disk.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import hybridwb
from tests.conftest import _admin, install_sample_mappings, ro_url

pytestmark = [pytest.mark.mysql]


def a_customer(db: str) -> dict[str, Any]:
    conn = _admin()
    try:
        with conn.cursor() as cur:
            cur.execute(
                f"SELECT customer_id, phone, email FROM `{db}`.customers WHERE phone LIKE "
                "'010-%' AND email IS NOT NULL AND marketing_opt_in = 1 ORDER BY customer_id "
                "LIMIT 1"
            )
            key, phone, email = cur.fetchone()
    finally:
        conn.close()
    return {"key": key, "phone": phone, "email": email}


def test_a_reports_target_definition_shows_no_phone_or_email(mysql_db: str, tmp_path: Path) -> None:
    install_sample_mappings(tmp_path, ro_url(mysql_db))
    who = a_customer(mysql_db)
    phone, email = who["phone"], who["email"]
    targets = {
        "keyword": {"table": "customers", "keyword": phone},
        "where": {"table": "customers", "where": {"field": "email", "op": "eq", "value": email}},
        "sql-literal": {
            "sql": "SELECT customer_id, name, phone, marketing_opt_in FROM customers "
            f"WHERE phone = '{phone}' OR email = \"{email}\""
        },
        "sql-param": {
            "sql": "SELECT customer_id, name, phone, marketing_opt_in FROM customers "
            "WHERE phone = :p OR email = :e",
            "params": {"p": phone, "e": email},
        },
    }
    reports = reports_of(mysql_db, tmp_path, targets, "{{ 고객명 }}님, 이번 달 안내입니다.")
    spelled = {phone, phone.replace("-", ""), email}
    leaks = {name: [v for v in spelled if v in html] for name, html in reports.items()}
    assert not {name: hits for name, hits in leaks.items() if hits}, leaks
    assert all("Target definition" in html for html in reports.values())
    assert "customers" in reports["keyword"] and "?" in reports["sql-literal"]


# -- the same definition shown by `%%platform` ----------------------------------------------
def test_the_platform_magic_masks_a_workflows_target_definition(
    mysql_db: str, tmp_path: Path
) -> None:
    """`%%platform SELECT * FROM workflows` showed the keyword target's phone as stored."""
    from tests.test_attack_secrets_round3 import _shown
    from tests.test_pii_views import RaisingShell, _unload

    install_sample_mappings(tmp_path, ro_url(mysql_db))
    phone = a_customer(mysql_db)["phone"]
    with shop_workbench(mysql_db, tmp_path) as wb:
        wb.templates.create("안내", "{{ 고객명 }}님, 이번 달 안내입니다.")
        wb.workflows.create(
            "one",
            target_config={"table": "customers", "keyword": phone},
            message_config={"template": "안내"},
        )
        assert phone in str(wb.workflows.get("one")["target_config"])  # read explicitly: kept
        from IPython.core.interactiveshell import InteractiveShell

        from hybridwb.magics import load as load_magics

        InteractiveShell.clear_instance()
        sh = RaisingShell.instance()
        try:
            load_magics(sh, wb)
            shown = {
                sql: _shown(sh.run_cell(f"%%platform\n{sql}").result)
                for sql in (
                    "SELECT * FROM workflows",
                    "SELECT target_config AS t FROM workflows",
                    "SELECT name, target_config FROM workflows WHERE name = 'one'",
                )
            }
        finally:
            _unload(sh)
            InteractiveShell.clear_instance()
    leaks = [sql for sql, text in shown.items() if phone in text]
    assert not leaks, leaks
    assert all("one" in text for text in shown.values() if "name" in text)


def reports_of(
    mysql_db: str, tmp_path: Path, targets: dict[str, dict[str, Any]], template: str
) -> dict[str, str]:
    """{workflow: its run report's text} of one workflow per target, each run once by the
    runner (papermill) on the sample shop, store SQLite; each run must send."""
    reports: dict[str, str] = {}
    with shop_workbench(mysql_db, tmp_path) as wb:
        wb.templates.create("안내", template)
        for name, target in targets.items():
            wb.workflows.create(name, target_config=target, message_config={"template": "안내"})
            run = wb.workflows.run(name, progress=False)
            assert run["status"] == "succeeded" and run["sent_count"] >= 1, run.get("error")
            reports[name] = Path(run["report_path"]).read_text(encoding="utf-8")
    return reports


@pytest.mark.parametrize(
    "value", [1012345678, 1012345678.0, Decimal("1012345678"), "010-1234-5678", "01012345678"]
)
def test_a_phone_given_as_a_number_is_masked_in_the_shown_definition(value: Any) -> None:
    """A condition's or a parameter's value typed as a number (a phone without its leading
    zero) is masked as text is: every run of 3+ digits but its last 2. A small number
    (a count, a flag) reads as written."""
    from hybridwb.workflows.report import shown_definition

    target = {
        "table": "customers",
        "where": {"all": [{"field": "phone", "op": "eq", "value": value},
                          {"field": "orders", "op": "gt", "value": 12}]},
        "params": {"p": value, "n": 7},
    }  # fmt: skip
    shown = json.dumps(shown_definition(target), default=str)
    assert "12345" not in shown, shown
    assert '"value": 12' in shown and '"n": 7' in shown, shown


def shop_workbench(mysql_db: str, tmp_path: Path) -> hybridwb.Workbench:
    """The sample shop on MariaDB through the read-only account, a SQLite store in
    `tmp_path` (initialised), the project in `tmp_path`."""
    wb = hybridwb.connect(
        source=ro_url(mysql_db).render_as_string(hide_password=False),
        store=f"sqlite:///{tmp_path / 'store.db'}",
        cwd=tmp_path,
    )
    wb.store.init()
    return wb
