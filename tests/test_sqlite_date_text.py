"""Dates reach the embedded sample as the sample's own text whatever sqlite3's process-wide
adapters say. Importing `nbformat.sign` (JupyterLab's server, IPython's `%notebook`, some
test in a worker) makes sqlite3 write a datetime as `isoformat()`, with a `T`; the sample
stores `2026-06-09 19:48:28`, and a `T` sorts after the space: "paid in the last 180 days"
dropped its first day and took in all of today (the target builder counted 23 where direct
SQL counted 22, a full run's flake). `transpile.sqlite_params` binds, and `sample.load`
writes, the text itself.

Oracles: sqlite3 on the file with the bounds given as text, and the file's stored text."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

import hybridwb
from hybridwb.source.sample import build_sqlite
from tests.conftest import REPO

TZ_FREE = (dt.datetime, sqlite3.PrepareProtocol)


@pytest.fixture
def t_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    """sqlite3's datetime adapter as `nbformat.sign` registers it (undone after the test)."""
    monkeypatch.setitem(sqlite3.adapters, TZ_FREE, lambda value: value.isoformat())
    monkeypatch.setitem(
        sqlite3.adapters, (dt.date, sqlite3.PrepareProtocol), lambda value: value.isoformat()
    )


@pytest.fixture
def shop_t(tmp_path: Path, t_adapter: None) -> Iterator[hybridwb.Workbench]:
    """A workbench on a sample built while the `T` adapter is in place."""
    (tmp_path / ".hybridwb").mkdir()
    build_sqlite(tmp_path / ".hybridwb" / "sample.db", 300)
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "table-mappings.json").write_bytes(
        (REPO / "mappings" / "table-mappings.json").read_bytes()
    )
    wb = hybridwb.connect()
    yield wb
    wb.close()


def _direct(tmp_path: Path, sql: str, *params: str) -> int:
    with sqlite3.connect(tmp_path / ".hybridwb" / "sample.db") as conn:
        return int(conn.execute(sql, params).fetchone()[0])


def test_the_sample_stores_dates_with_a_space_whatever_the_adapter(
    shop_t: hybridwb.Workbench, tmp_path: Path
) -> None:
    with sqlite3.connect(tmp_path / ".hybridwb" / "sample.db") as conn:
        paid = [r[0] for r in conn.execute("SELECT paid_at FROM payments LIMIT 50")]
        born = [r[0] for r in conn.execute("SELECT birth_date FROM customers LIMIT 50")]
    assert paid and all(isinstance(v, str) and v[10] == " " for v in paid), paid[:3]
    assert all(v is None or len(v) == 10 for v in born), born[:3]


def test_a_bound_datetime_compares_as_the_stored_text(
    shop_t: hybridwb.Workbench, tmp_path: Path
) -> None:
    """From one payment's own time: direct SQL counts it and every later one; so must a
    bound datetime (with a `T` it lost that payment's whole day)."""
    first = _direct_text(tmp_path, "SELECT MIN(paid_at) FROM payments")
    at = dt.datetime.fromisoformat(first)
    expected = _direct(tmp_path, "SELECT COUNT(*) FROM payments WHERE paid_at >= ?", first)
    got = shop_t.sql("SELECT COUNT(*) AS n FROM payments WHERE paid_at >= :at", {"at": at})
    assert int(got["n"].iloc[0]) == expected
    day = at.date()  # a date bound against a DATETIME column: the day's start, as text
    assert int(
        shop_t.sql("SELECT COUNT(*) AS n FROM payments WHERE paid_at >= :d", {"d": day})["n"].iloc[
            0
        ]
    ) == _direct(tmp_path, "SELECT COUNT(*) FROM payments WHERE paid_at >= ?", day.isoformat())


def test_a_recent_window_counts_as_direct_sql(shop_t: hybridwb.Workbench, tmp_path: Path) -> None:
    """The builder's "at least k payments in the last 180 days" for the customer of the
    sample's first payment, at the `now` whose window starts at that payment itself, k
    being direct SQL's count of that customer's payments in the window: the target is that
    customer (with a `T` bound, the first payment, and so the customer, fell out)."""
    with sqlite3.connect(tmp_path / ".hybridwb" / "sample.db") as conn:
        first, customer = conn.execute(
            "SELECT paid_at, customer_id FROM payments ORDER BY paid_at LIMIT 1"
        ).fetchone()
    now = dt.datetime.fromisoformat(first) + dt.timedelta(days=180)
    k = _direct(
        tmp_path,
        "SELECT COUNT(*) FROM payments WHERE customer_id = ? AND paid_at >= ? AND paid_at <= ?",
        customer,
        first,
        now.isoformat(" "),
    )
    definition = {
        "table": "customers",
        "where": {
            "all": [
                {"field": "customer_id", "op": "eq", "value": customer},
                {
                    "aggregate": "count",
                    "relation": "payments",
                    "op": "gte",
                    "value": k,
                    "within_last": {"days": 180},
                },
            ]
        },
        "exclude_opt_out": False,
    }
    assert k >= 1
    assert shop_t.targets.preview(definition, sample=0, cache_ttl=None, now=now).count == 1


def _direct_text(tmp_path: Path, sql: str) -> str:
    with sqlite3.connect(tmp_path / ".hybridwb" / "sample.db") as conn:
        return str(conn.execute(sql).fetchone()[0])
