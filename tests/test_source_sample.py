"""The source on the embedded SQLite sample: binds, caps, transpiling, bad input."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy.engine import URL

from hybridwb.errors import BindError, QueryError, QueryTimeout, ReadOnlyViolation, TranspileError
from hybridwb.source import RowsCut, Source
from tests.conftest import SAMPLE_CUSTOMERS


@pytest.fixture
def source(sample_db: Path) -> Source:
    return Source(URL.create("sqlite", database=str(sample_db)))


def test_bound_parameter_filters_rows(source: Source) -> None:
    df = source.sql(
        "SELECT customer_id, grade FROM customers WHERE grade = :grade", {"grade": "VIP"}
    )
    assert len(df) > 0
    assert set(df["grade"]) == {"VIP"}


def test_list_parameter_expands_into_in(source: Source) -> None:
    df = source.sql(
        "SELECT customer_id FROM customers WHERE customer_id IN :ids ORDER BY 1", {"ids": [3, 1, 2]}
    )
    assert df["customer_id"].tolist() == [1, 2, 3]


def test_mysql_functions_are_transpiled(source: Source) -> None:
    df = source.sql(
        "SELECT DATE_FORMAT(created_at, '%Y') AS y, IFNULL(email, 'none') e FROM customers LIMIT 3"
    )
    assert df["y"].str.match(r"^\d{4}$").all()


def test_show_tables_and_describe_work_on_the_sample(source: Source) -> None:
    assert set(source.sql("SHOW TABLES").iloc[:, 0]) == {"customers", "subscriptions", "payments"}
    fields = source.sql("DESCRIBE customers")
    assert "customer_id" in set(fields["Field"])


def test_untranspilable_show_gets_a_clear_error(source: Source) -> None:
    with pytest.raises(TranspileError, match="SHOW TABLES"):
        source.sql("SHOW PROCESSLIST")


def test_result_without_limit_is_capped_and_says_so(sample_db: Path) -> None:
    source = Source(URL.create("sqlite", database=str(sample_db)), row_cap=100)
    with pytest.warns(RowsCut, match="first 100 rows"):
        df = source.sql("SELECT * FROM customers")
    assert len(df) == 100
    assert df.attrs["hybridwb"]["truncated"] is True


def test_result_under_the_cap_is_not_cut(source: Source) -> None:
    df = source.sql("SELECT * FROM customers")
    assert len(df) == SAMPLE_CUSTOMERS
    assert df.attrs["hybridwb"]["truncated"] is False


def test_explicit_limit_is_respected(source: Source) -> None:
    assert len(source.sql("SELECT * FROM customers LIMIT 7")) == 7


def test_write_is_refused_before_it_reaches_the_database(source: Source) -> None:
    with pytest.raises(ReadOnlyViolation):
        source.sql("DELETE FROM customers")
    assert len(source.sql("SELECT customer_id FROM customers")) == SAMPLE_CUSTOMERS


def test_sample_is_read_only_even_without_the_guard(sample_db: Path) -> None:
    unguarded = Source(URL.create("sqlite", database=str(sample_db)), use_guard=False)
    with pytest.raises(ReadOnlyViolation):
        unguarded.sql("DELETE FROM customers")


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({}, ":grade but no value"),
        ({"grade": "VIP", "extra": 1}, "'extra' is not used"),
        ({"grade": {"a": 1}}, "is a dict"),
        ({"grade": object()}, "is a object"),
        ({"grade": []}, "empty list"),
    ],
    ids=["missing", "unknown-name", "dict", "object", "empty-list"],
)
def test_bad_binds_get_a_clear_error(source: Source, params: dict, error: str) -> None:
    with pytest.raises(BindError, match=error):
        source.sql("SELECT * FROM customers WHERE grade = :grade", params)


def test_dates_and_numbers_bind(source: Source) -> None:
    df = source.sql(
        "SELECT COUNT(*) AS n FROM customers WHERE created_at >= :since AND customer_id > :n",
        {"since": dt.datetime(2020, 1, 1), "n": 10},
    )
    assert int(df["n"].iloc[0]) > 0


def test_unknown_table_names_it(source: Source) -> None:
    with pytest.raises(QueryError, match="nope"):
        source.sql("SELECT * FROM nope")


def test_timeout_stops_a_long_query(source: Source) -> None:
    with pytest.raises(QueryTimeout):
        source.sql(
            "WITH RECURSIVE n AS (SELECT 1 AS i UNION ALL SELECT i + 1 FROM n) SELECT COUNT(*) FROM n",
            timeout=0.2,
        )
    assert len(source.sql("SELECT 1 AS one")) == 1


def test_every_query_is_logged_without_literals(source: Source) -> None:
    source.sql("SELECT * FROM customers WHERE name = '홍길동'")
    with pytest.raises(QueryError):
        source.sql("SELECT * FROM missing_table WHERE phone = '010-1234-5678'")
    ok, failed = list(source.querylog.entries)[-2:]
    assert ok.status == "success" and ok.resultCount == 0 and "홍길동" not in ok.query
    assert failed.status == "error" and "010-1234-5678" not in failed.query
    assert failed.errorMessage and failed.executionTime >= 0


def test_missing_sample_says_how_to_build_it(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="hybridwb demo"):
        Source(URL.create("sqlite", database=str(tmp_path / "none.db"))).sql("SELECT 1")


def test_result_is_a_dataframe_with_timing(source: Source) -> None:
    df = source.sql("SELECT 1 AS one")
    assert isinstance(df, pd.DataFrame)
    assert df.attrs["hybridwb"]["elapsed_ms"] >= 0
