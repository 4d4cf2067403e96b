"""Round 29 attacks on the secrets guarantee: the read-only guard's refusal repeated a
customer value typed as a statement.

`%%mysql 010-1234-5678` (a phone pasted into the wrong cell), `'김민수'` or a name in
Hangul without quotes: the guard refused it as "Refused: 010-1234-5678 is not a read
statement", and that message is what the query log keeps beside the statement it had
masked to `?` (the platform store's `query_logs.error_message`), what `hybridwb stats`
lists under Errors, and what the notebook shows. The oracle reads the store with sqlite3
and the values from the sample as it was built; MariaDB through the read-only account.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

import hybridwb
from tests.conftest import install_sample_mappings, ro_url


def _customer(db: Path) -> dict[str, str]:
    with sqlite3.connect(db) as conn:
        name, phone = conn.execute(
            "SELECT name, phone FROM customers WHERE name IS NOT NULL AND phone IS NOT NULL "
            "ORDER BY customer_id LIMIT 1"
        ).fetchone()
    return {"name": str(name), "phone": str(phone)}


def _statements(c: dict[str, str]) -> list[str]:
    return [
        c["phone"],  # a phone pasted as the statement: a number, then -digits
        c["phone"].replace("-", ""),  # one NUMBER token
        f"'{c['phone']}'",  # a quoted value
        f"'{c['name']}'",
        c["name"],  # a name in Hangul, unquoted: a bare word
        f"{c['name']} 님께 보낼 목록",
        f'"{c["name"]}"',
    ]


def _refusals(wb: Any, statements: list[str]) -> list[str]:
    shown = []
    for sql in statements:
        with pytest.raises(hybridwb.ReadOnlyViolation) as info:
            wb.sql(sql)
        shown.append(str(info.value))
    wb.querylog.flush()
    return shown


def _logged(store_db: Path) -> str:
    with sqlite3.connect(store_db) as conn:
        rows = conn.execute("SELECT query, error_message FROM query_logs").fetchall()
    return "\n".join(str(v) for row in rows for v in row)


def test_a_value_typed_as_the_statement_is_not_repeated_by_the_refusal(
    shop: Any, tmp_path: Path
) -> None:
    customer = _customer(tmp_path / ".hybridwb" / "sample.db")
    shown = _refusals(shop, _statements(customer))
    logged = _logged(tmp_path / ".hybridwb" / "platform.db")
    for text in [*shown, logged]:
        assert customer["phone"] not in text and customer["phone"].replace("-", "") not in text
        assert customer["name"] not in text, text
    assert logged.count("is not a read statement") == len(shown)  # the refusals were logged
    assert all(s.startswith("Refused: ") for s in shown)


def test_stats_report_lists_the_refusal_without_the_value(shop: Any, tmp_path: Path) -> None:
    """`hybridwb stats` lists the errors the query log holds: the page must not show it."""
    from hybridwb.observability import collect, render_html

    customer = _customer(tmp_path / ".hybridwb" / "sample.db")
    _refusals(shop, _statements(customer))
    page = render_html(collect(shop))
    assert "is not a read statement" in page
    assert customer["phone"] not in page and customer["name"] not in page


def test_a_sql_verb_is_still_named(shop: Any) -> None:
    """The guard keeps naming what it refused when that is SQL (the oracle: the verb)."""
    for sql, verb in [("DELETE FROM customers", "DELETE"), ("SELEC 1", "SELEC")]:
        with pytest.raises(hybridwb.ReadOnlyViolation, match=f"Refused: {verb} is not"):
            shop.sql(sql)


@pytest.mark.mysql
def test_on_mariadb_the_refusal_and_the_log_hold_no_typed_value(
    mysql_db: str, tmp_path: Path
) -> None:
    url = ro_url(mysql_db)
    install_sample_mappings(tmp_path, url)
    customer = {"name": "김민수", "phone": "010-2345-6789"}  # typed, not read: no row needed
    with hybridwb.connect(
        source=url.render_as_string(hide_password=False), cwd=tmp_path, env={}
    ) as wb:
        shown = _refusals(wb, _statements(customer))
    logged = _logged(tmp_path / ".hybridwb" / "platform.db")
    for text in [*shown, logged]:
        assert customer["phone"] not in text and "01023456789" not in text
        assert customer["name"] not in text, text
