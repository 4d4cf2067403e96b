"""Round 43, values at the boundary (again): every bound value reaches the database as
exactly the value it means, or is refused in one `BindError` line naming the parameter.

BREAKS found here (fixed in values.items_of, binds, console._clause, engine, transpile):
- a list or tuple subclass whose `__iter__`/`__len__` says other items bound those items,
  not the ones it holds: `2 IN LyingTuple((1, 2))` was false, silently, on the MariaDB
  engine (pandas, Core), in `wb.sql` and on both stores;
- a params dict subclass whose `items()` says other values bound those (`driver_params`);
- a params sequence whose `__iter__` lies was refused as "do not fit its placeholders";
  a namedtuple as the params of a statement on the SQLite sample's engine raised a raw
  TypeError (its constructor takes no one iterable);
- an IN list SQLAlchemy expands (`bindparam(expanding=True)`) was expanded by the subclass's
  `__iter__` before any hook saw it; MariaDB's 4078 for a bound row was "MySQL client error";
- an IN list of 70,000 values on the PostgreSQL store was reported as "The platform store
  is unreachable (...): number of parameters must be between 0 and 65535. Is it running?";
- an IN list of 300,000 ids bound through the MariaDB engine was refused with the guard's
  "Put long value lists in a bound parameter" (which it was), naming no parameter.

Oracle: the same statement through the plain driver (pymysql / sqlite3 / psycopg) with the
items the value holds; or the exception's type and text.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import _mysql
import _stores
import pandas as pd
import pytest
from sqlalchemy import text

from hybridwb.errors import BindError
from hybridwb.platform.store import Store
from hybridwb.source.source import Source

store = _stores.store
oracle = _stores.oracle


class LyingTuple(tuple):  # type: ignore[type-arg]
    """Holds its items, but says it holds only 1."""

    def __iter__(self) -> Iterator[Any]:
        return iter((1,))

    def __len__(self) -> int:
        return 1


class LyingList(list):  # type: ignore[type-arg]
    def __iter__(self) -> Iterator[Any]:
        return iter((1,))

    def __len__(self) -> int:
        return 1


LIARS = [LyingTuple((1, 2)), LyingList((1, 2))]


def assert_one_line(exc: BaseException, words: str, name: str = "a") -> None:
    assert isinstance(exc, BindError), f"{type(exc).__name__}: {exc}"
    text_ = str(exc)
    assert "\n" not in text_ and len(text_) < 240, text_
    assert words in text_ and f"Parameter {name!r}" in text_, text_


db, source = _mysql.scratch_fixtures("bindvals43", 1)


def mysql_oracle(db: str, sql: str, params: Any) -> Any:
    conn = _mysql.plain_root(db)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return [tuple(r) for r in cur.fetchall()]
    finally:
        conn.close()


@pytest.mark.parametrize("value", LIARS, ids=["tuple", "list"])
def test_a_sequence_subclass_binds_the_items_it_holds_on_the_mysql_engine(
    source: Source, db: str, value: Any
) -> None:
    want = mysql_oracle(db, "SELECT 2 IN %(a)s AS x", {"a": (1, 2)})
    got = pd.read_sql("SELECT 2 IN %(a)s AS x", source.engine, params={"a": value})
    assert [tuple(r) for r in got.itertuples(index=False)] == want == [(1,)]
    with source.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT 2 IN %s AS x", (value,)).fetchall()
    assert [tuple(r) for r in rows] == want


@pytest.mark.parametrize("value", LIARS, ids=["tuple", "list"])
def test_a_sequence_subclass_binds_the_items_it_holds_in_wb_sql(
    source: Source, db: str, value: Any
) -> None:
    want = mysql_oracle(db, "SELECT 2 IN %(a)s AS x", {"a": (1, 2)})
    got = [tuple(r.values()) for r in source.records("SELECT 2 IN :a AS x", {"a": value})]
    assert got == want == [(1,)]


def test_a_params_sequence_subclass_binds_the_values_it_holds_on_the_mysql_engine(
    source: Source, db: str
) -> None:
    want = mysql_oracle(db, "SELECT %s AS x, %s AS y", (5, 6))
    got = pd.read_sql("SELECT %s AS x, %s AS y", source.engine, params=LyingTuple((5, 6)))
    assert [tuple(r) for r in got.itertuples(index=False)] == want == [(5, 6)]


@pytest.mark.parametrize("value", LIARS, ids=["tuple", "list"])
def test_a_sequence_subclass_binds_the_items_it_holds_on_the_store(
    store: Store, oracle: _stores.Oracle, value: Any
) -> None:
    got = store.sql("SELECT 1 AS x WHERE 2 IN :a", {"a": value})["x"].tolist()
    assert got == [r[0] for r in oracle.rows("SELECT 1 WHERE 2 IN (?, ?)", 1, 2)] == [1]


def test_a_namedtuple_binds_as_positional_params_on_the_sample_engine(shop: Any) -> None:
    """Before: a raw TypeError (the namedtuple was rebuilt from one generator)."""
    pair = collections.namedtuple("pair", "a b")
    query = "SELECT count(*) AS n FROM customers WHERE customer_id IN (?, ?)"
    got = pd.read_sql(query, shop.source.engine, params=pair(1, 2))
    with sqlite3.connect(str(shop.source.url.database)) as conn:
        [(want,)] = conn.execute(query, (1, 2)).fetchall()
    conn.close()
    assert got["n"].tolist() == [want] == [2]


def test_a_list_past_the_stores_bind_limit_is_refused_naming_it(
    store: Store, oracle: _stores.Oracle
) -> None:
    """Before (PostgreSQL): "The platform store is unreachable (...): number of parameters
    must be between 0 and 65535. Is it running?". SQLite binds up to its build's limit."""
    ids = list(range(70_000))
    if oracle.postgres:
        with pytest.raises(Exception) as caught:
            store.sql("SELECT 1 AS x WHERE 1 IN :a", {"a": ids})
        assert_one_line(caught.value, "holds 70,000 values; the store binds at most 65,535")
    else:
        assert store.sql("SELECT 1 AS x WHERE 1 IN :a", {"a": ids})["x"].tolist() == [1]
    with pytest.raises(Exception) as caught:
        store.sql("SELECT 1 AS x WHERE 1 IN :a", {"a": list(range(300_000)), "b": 1})
    assert_one_line(caught.value, "holds 300,000 values")


def test_a_bound_list_past_the_text_limit_is_refused_naming_it(source: Source) -> None:
    """Before: "The query is 1,988,908 bytes; ... Put long value lists in a bound
    parameter (:ids) instead of the text." for a list that was bound."""
    with pytest.raises(Exception) as caught:
        pd.read_sql(
            "SELECT 1 IN %(a)s AS x", source.engine, params={"a": list(range(300_000)), "b": 1}
        )
    assert_one_line(caught.value, "makes the statement")
    with pytest.raises(Exception) as caught, source.engine.connect() as conn:
        conn.execute(text("SELECT 1 IN :a AS x"), {"a": tuple(range(300_000))}).fetchall()
    assert_one_line(caught.value, "makes the statement")


@pytest.mark.parametrize("params", ["series", "array"])
@pytest.mark.parametrize("where", ["mysql", "sample"])
def test_a_params_object_that_is_a_series_or_array_is_refused_in_one_bind_line(
    source: Source, shop: Any, params: str, where: str
) -> None:
    """Before: pandas' DatabaseError ("mapping or sequence expected for parameters", from
    SQLAlchemy's exec_driver_sql), before any hook of the engine saw the params."""
    import numpy as np

    given = pd.Series([1, 2]) if params == "series" else np.array([1, 2])
    engine = source.engine if where == "mysql" else shop.source.engine
    marker = "%s" if where == "mysql" else "?"
    with pytest.raises(Exception) as caught:
        pd.read_sql(f"SELECT {marker} AS x, {marker} AS y", engine, params=given)
    assert_shape_refused(caught.value, type(given).__name__)
    with pytest.raises(Exception) as caught:
        pd.read_sql(text("SELECT :a AS x"), engine, params=given)
    assert_shape_refused(caught.value, type(given).__name__)


def assert_shape_refused(exc: BaseException, kind: str) -> None:
    assert isinstance(exc, BindError), repr(exc)
    message = str(exc)
    assert "\n" not in message and len(message) < 240, message
    assert f"parameters are a {kind}; pass " in message, message


def test_a_list_of_values_binds_as_one_row_of_positional_values(source: Source, db: str) -> None:
    """A list of values (not rows) is one row, as pandas documents `params` and PyMySQL
    takes a list. Before: SQLAlchemy's raw ArgumentError ("List argument must consist only
    of tuples or dictionaries")."""
    want = mysql_oracle(db, "SELECT %s AS x, %s IN %s AS y", [5, 2, [1, 2]])
    with source.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT %s AS x, %s IN %s AS y", [5, 2, [1, 2]]).fetchall()
    assert [tuple(r) for r in rows] == want == [(5, 1)]
    got = pd.read_sql("SELECT %s AS x, %s IN %s AS y", source.engine, params=[5, 2, [1, 2]])
    assert [tuple(r) for r in got.itertuples(index=False)] == want


@pytest.mark.parametrize("where", ["mysql", "sample"])
def test_a_list_holding_a_missing_value_is_refused_in_one_bind_line(
    source: Source, shop: Any, where: str
) -> None:
    """Before: SQLAlchemy's raw ArgumentError for `exec_driver_sql(sql, [pd.NaT])`."""
    engine = source.engine if where == "mysql" else shop.source.engine
    marker = "%s" if where == "mysql" else "?"
    with pytest.raises(Exception) as caught, engine.connect() as conn:
        conn.exec_driver_sql(f"SELECT {marker} AS x", [pd.NaT])
    assert_one_line(caught.value, "is pd.NaT (a missing value)", "#1")


@pytest.mark.parametrize("where", ["engine", "wb"])
def test_a_sequence_subclass_needs_no_items_beyond_what_it_holds(
    source: Source, where: str, tmp_path: Path
) -> None:
    """An empty tuple subclass that says it holds items is still empty: refused in wb.sql,
    the server's own syntax error on the engine (as with a plain empty tuple)."""

    class Claims(tuple):  # type: ignore[type-arg]
        def __iter__(self) -> Iterator[Any]:
            return iter((1, 2))

        def __len__(self) -> int:
            return 2

    if where == "wb":
        with pytest.raises(Exception) as caught:
            source.records("SELECT 1 IN :a AS x", {"a": Claims()})
        assert_one_line(caught.value, "is an empty list")
        return
    with pytest.raises(Exception) as caught:
        pd.read_sql("SELECT 1 IN %(a)s AS x", source.engine, params={"a": Claims()})
    assert "syntax" in str(caught.value).lower(), repr(caught.value)


class LyingDict(dict):  # type: ignore[type-arg]
    """Holds {'a': 1}, but its `items()` says {'a': 9}."""

    def items(self) -> Any:
        return [("a", 9)]


def test_a_params_dict_subclass_binds_the_values_it_holds_on_the_mysql_engine(
    source: Source, db: str
) -> None:
    """Before: `driver_params` read the values through the subclass's `items()`: 9 was
    bound for the 1 the dict held."""
    want = mysql_oracle(db, "SELECT %(a)s AS x", {"a": 1})
    got = pd.read_sql("SELECT %(a)s AS x", source.engine, params=LyingDict(a=1))
    assert [tuple(r) for r in got.itertuples(index=False)] == want == [(1,)]


@pytest.mark.parametrize("value", LIARS, ids=["tuple", "list"])
def test_a_sequence_subclass_in_an_expanding_core_bind_binds_the_items_it_holds(
    source: Source, db: str, value: Any
) -> None:
    """Before: SQLAlchemy expanded the IN list by the subclass's own `__iter__` (before the
    cursor hook), so `2 IN (1)` was sent and matched nothing, silently."""
    from sqlalchemy import bindparam

    want = mysql_oracle(db, "SELECT 2 IN %(a)s AS x", {"a": (1, 2)})
    clause = text("SELECT 2 IN :a AS x").bindparams(bindparam("a", expanding=True))
    with source.engine.connect() as conn:
        got = [tuple(r) for r in conn.execute(clause, {"a": value}).fetchall()]
    assert got == want == [(1,)]


def test_a_server_type_error_on_a_bound_row_is_a_refused_query_not_a_lost_connection(
    source: Source,
) -> None:
    """Before: MariaDB's 4078 ("Illegal parameter data types int and row") for `2 IN :a`
    bound [[1, 2]] was reported as ConnectionFailed "MySQL client error 4078"."""
    from sqlalchemy import bindparam

    from hybridwb.errors import QueryError

    clause = text("SELECT 2 IN :a AS x").bindparams(bindparam("a", expanding=True))
    with pytest.raises(Exception) as caught, source.engine.connect() as conn:
        conn.execute(clause, {"a": [[1, 2]]}).fetchall()
    assert type(caught.value) is QueryError, repr(caught.value)
    assert "server rejected" in str(caught.value) and "client error" not in str(caught.value)
