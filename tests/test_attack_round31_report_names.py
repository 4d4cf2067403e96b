"""Round 31 on "a report names no customer": a customer's name in the target definition.

Round 30 masked the run report's target definition as the query log masks a statement:
digits and e-mail addresses of conditions' and parameters' values, a keyword whole. A
condition on the customer's name (`{"field": "name", "op": "eq", "value": <name>}`, a
campaign for one customer) and a saved query's parameter holding the name have neither,
and every report of the workflow printed the name whole. Now a condition's and a
parameter's text value is masked as a keyword is (its first character kept).

Source: the sample shop on MariaDB (read-only account); store: SQLite; runs through the
runner (papermill); oracle: the customer's name read with pymysql, searched for in the
report file on disk.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import _admin, install_sample_mappings, ro_url
from tests.test_attack_round30_report_definition import reports_of

pytestmark = [pytest.mark.mysql]


def a_name(db: str) -> str:
    conn = _admin()
    try:
        with conn.cursor() as cur:
            cur.execute(
                f"SELECT name FROM `{db}`.customers WHERE marketing_opt_in = 1 AND phone LIKE "
                "'010-%' AND CHAR_LENGTH(name) >= 2 ORDER BY customer_id LIMIT 1"
            )
            (name,) = cur.fetchone()
    finally:
        conn.close()
    return str(name)


def test_a_reports_target_definition_shows_no_customers_name(mysql_db: str, tmp_path: Path) -> None:
    """BREAK: the name in a condition and in a saved query's parameter was printed whole."""
    install_sample_mappings(tmp_path, ro_url(mysql_db))
    name = a_name(mysql_db)
    targets = {
        "where": {"table": "customers", "where": {"field": "name", "op": "eq", "value": name}},
        "in": {"table": "customers", "where": {"field": "name", "op": "in", "value": [name]}},
        "sql-param": {
            "sql": "SELECT customer_id, name, phone, marketing_opt_in FROM customers "
            "WHERE name = :n",
            "params": {"n": name},
        },
    }
    reports = reports_of(mysql_db, tmp_path, targets, "고객님, 이번 달 안내입니다.")
    leaks = [label for label, html in reports.items() if name in html]
    assert not leaks, f"the customer's name is in the reports of {leaks}"
    assert all('"name"' in html or "name" in html for html in reports.values())
