"""Round 41, values at the boundary: every bound value reaches the database as exactly the
value it means, or is refused in one `BindError` line saying what to do.

BREAKS found here (fixed in hybridwb/source/values.py, validation.INT64, console._clause):
- a subclass of int (an `IntEnum` member, any int subclass) as a bind never returned:
  `value in range(-2**63, 2**63)` walks every number for a non-exact int (source binds,
  `%%platform` binds, a `timeout=`);
- PyMySQL writes a type it does not know as `str(value)`: `pd.NaT` went as the text 'NaT'
  (matched nothing), an `np.float64` as text, a Timestamp with nanoseconds as its
  nanosecond text, a subclass of float/int/datetime/Decimal as whatever its `__str__` said;
- a Decimal past MySQL's DECIMAL was clamped or cut by the server (`1E+100` bound as 65
  nines, `1E-80` as 0), and `1E+100000000` was written out as 100 MB of digits;
- on the SQLite sample any Decimal failed ("type '?' is not supported");
- on the SQLite store an `np.int64`/`np.bool_` bound as a BLOB of its bytes (matched
  nothing), a float NaN as NULL, pd.NaT as 'NaT', a Decimal or a uuid failed; a set as an
  IN list raised a raw SQLAlchemy `StatementError` on both stores.

Oracle: the same statement through the plain driver (pymysql / sqlite3 / psycopg) with the
intended plain value; or the exception's type and text.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import fractions
import ipaddress
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import _mysql
import _stores
import numpy as np
import pandas as pd
import pytest
from sqlalchemy.engine import URL

from hybridwb.errors import BindError, ValidationError
from hybridwb.platform.store import Store
from hybridwb.source.source import Source

store = _stores.store
oracle = _stores.oracle
REPO = Path(__file__).resolve().parents[1]


class Level(enum.IntEnum):
    GOLD = 3


class LoudInt(int):
    def __str__(self) -> str:
        return "7"

    __repr__ = __str__


class LoudFloat(float):
    def __str__(self) -> str:
        return "7"

    __repr__ = __str__


class LoudText(str):
    def __str__(self) -> str:
        return "other"


class LoudDecimal(decimal.Decimal):
    def __str__(self) -> str:
        return "7"


class LoudDatetime(dt.datetime):
    def __str__(self) -> str:
        return "1999-01-01 00:00:00"


SEOUL = dt.timezone(dt.timedelta(hours=9))

#: (id, value given, the plain value it means)
EXACT = [
    ("np-int64", np.int64(5), 5),
    ("np-bool", np.bool_(True), True),
    ("np-float64", np.float64(0.25), 0.25),
    ("int-enum", Level.GOLD, 3),
    ("int-subclass", LoudInt(3), 3),
    ("float-subclass", LoudFloat(0.5), 0.5),
    ("str-subclass", LoudText("real"), "real"),
    ("decimal-subclass", LoudDecimal("1.5"), decimal.Decimal("1.5")),
    ("datetime-subclass", LoudDatetime(2024, 1, 2, 3, 4, 5), dt.datetime(2024, 1, 2, 3, 4, 5)),
    (
        "timestamp-aware",
        pd.Timestamp("2024-01-02 03:04:05", tz="Asia/Seoul"),
        dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=SEOUL),
    ),
]

#: (id, value, words the one-line refusal must hold)
REFUSED = [
    ("nat", pd.NaT, "pd.NaT (a missing value); bind None"),
    ("na", pd.NA, "pd.NA (a missing value); bind None"),
    ("nat-in-list", [dt.datetime(2024, 1, 1), pd.NaT], "pd.NaT"),
    ("nanoseconds", pd.Timestamp("2024-01-02 03:04:05.123456789"), "floor('us')"),
    ("np-float32", np.float32(0.1), "numpy float32"),
    ("np-array", np.array([1, 2]), "value.tolist()"),
    ("decimal-huge", decimal.Decimal("1E+100"), "MySQL DECIMAL"),
    ("decimal-tiny", decimal.Decimal("1E-80"), "MySQL DECIMAL"),
    ("decimal-megabytes", decimal.Decimal("1E+100000000"), "MySQL DECIMAL"),
]


def assert_one_line(exc: BaseException, words: str) -> None:
    assert isinstance(exc, BindError), f"{type(exc).__name__}: {exc}"
    text = str(exc)
    assert "\n" not in text and len(text) < 220, text
    assert words in text and "Parameter 'a'" in text, text


# -- the MariaDB source ------------------------------------------------------------------------
db, source = _mysql.scratch_fixtures("bindvals", 1)


def mysql_oracle(db: str, value: Any) -> Any:
    conn = _mysql.plain_root(db)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT %s AS a", (value,))
            return cur.fetchall()[0][0]
    finally:
        conn.close()


@pytest.mark.parametrize(("value", "meant"), [e[1:] for e in EXACT], ids=[e[0] for e in EXACT])
def test_a_value_binds_on_mariadb_as_the_plain_value_it_means(
    source: Source, db: str, value: Any, meant: Any
) -> None:
    [row] = source.records("SELECT :a AS a", {"a": value})
    assert row["a"] == mysql_oracle(db, meant)
    assert type(row["a"]) is type(mysql_oracle(db, meant))


@pytest.mark.parametrize(("value", "words"), [e[1:] for e in REFUSED], ids=[e[0] for e in REFUSED])
def test_a_value_without_an_exact_meaning_is_refused_on_mariadb(
    source: Source, value: Any, words: str
) -> None:
    query = "SELECT a FROM t WHERE a IN :a" if isinstance(value, list) else "SELECT :a AS a"
    with pytest.raises(Exception) as caught:
        source.records(query, {"a": value})
    assert_one_line(caught.value, words)


@pytest.mark.parametrize(
    "text", ["1" * 27 + "." + "1" * 38, "9" * 65, "1." + "0" * 60, "-0.5"], ids=str.__len__
)
def test_a_decimal_mysql_holds_still_binds_exactly(source: Source, db: str, text: str) -> None:
    value = decimal.Decimal(text)
    [row] = source.records("SELECT :a AS a", {"a": value})
    assert row["a"] == mysql_oracle(db, value) == value


def test_an_int_subclass_bind_returns_at_once() -> None:
    """Before: `Level.GOLD in range(-2**63, 2**63)` walked the range (2**64 steps)."""
    code = (
        "import enum\n"
        "from hybridwb.source.binds import check_params\n"
        "from hybridwb.platform.console import _clause\n"
        "from hybridwb.source.binds import seconds_arg\n"
        "class L(enum.IntEnum):\n    A = 3\n"
        "assert check_params({'a'}, {'a': L.A}) == {'a': 3}\n"
        "assert type(check_params({'a'}, {'a': L.A})['a']) is int\n"
        "assert _clause('SELECT :a', {'a': L.A})[1] == {'a': 3}\n"
        "assert seconds_arg(L.A, 'timeout', None) == 3.0\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]


# -- the SQLite sample source ------------------------------------------------------------------
@pytest.fixture
def sample(tmp_path: Path) -> Iterator[Source]:
    path = tmp_path / "sample.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (a REAL)")
        conn.execute("INSERT INTO t VALUES (1.5), (10)")
    conn.close()
    src = Source(URL.create("sqlite", database=str(path)))
    yield src
    src.close()


SAMPLE_EXACT = [
    ("decimal-fraction", decimal.Decimal("1.5"), 1.5),
    ("decimal-whole", decimal.Decimal("10"), 10),
    ("decimal-tenth", decimal.Decimal("0.1"), 0.1),
    ("np-int64", np.int64(10), 10),
    ("int-enum", Level.GOLD, 3),
]


@pytest.mark.parametrize(
    ("value", "meant"), [e[1:] for e in SAMPLE_EXACT], ids=[e[0] for e in SAMPLE_EXACT]
)
def test_a_value_binds_on_the_sample_as_the_plain_value_it_means(
    sample: Source, value: Any, meant: Any
) -> None:
    got = sample.records("SELECT :a AS a, (SELECT count(*) FROM t WHERE a = :a) AS n", {"a": value})
    path = str(sample.url.database)
    with sqlite3.connect(path) as conn:
        want = conn.execute(
            "SELECT ? AS a, (SELECT count(*) FROM t WHERE a = ?) AS n", (meant, meant)
        ).fetchall()
    conn.close()
    assert [(r["a"], r["n"]) for r in got] == want
    assert type(got[0]["a"]) is type(want[0][0])


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (pd.NaT, "pd.NaT"),
        (decimal.Decimal(2**64), "SQLite keeps no exact copy"),
        (decimal.Decimal("0.1000000000000000000001"), "SQLite keeps no exact copy"),
    ],
    ids=["nat", "decimal-beyond-64-bits", "decimal-beyond-a-float"],
)
def test_a_value_without_an_exact_meaning_is_refused_on_the_sample(
    sample: Source, value: Any, words: str
) -> None:
    with pytest.raises(Exception) as caught:
        sample.records("SELECT :a AS a", {"a": value})
    assert_one_line(caught.value, words)


# -- the platform store (`wb.store.sql` / `%%platform`) ----------------------------------------
STORE_EXACT = [
    ("np-int64", np.int64(5), 5),
    ("np-bool", np.bool_(True), True),
    ("int-enum", Level.GOLD, 3),
    ("float-subclass", LoudFloat(0.5), 0.5),
    ("str-subclass", LoudText("real"), "real"),
]


@pytest.mark.parametrize(
    ("value", "meant"), [e[1:] for e in STORE_EXACT], ids=[e[0] for e in STORE_EXACT]
)
def test_a_value_binds_on_the_store_as_the_plain_value_it_means(
    store: Store, oracle: _stores.Oracle, value: Any, meant: Any
) -> None:
    got = store.sql("SELECT :a AS a", {"a": value})["a"].tolist()
    want = [r[0] for r in oracle.rows("SELECT ? AS a", meant)]
    if not oracle.postgres and isinstance(meant, bool):
        want = [int(w) for w in want]  # SQLite has no bool: True is 1
    assert got == want
    assert [type(v) for v in got] == [type(v) for v in want]


def test_a_decimal_and_a_uuid_bind_on_the_store_as_it_keeps_them(
    store: Store, oracle: _stores.Oracle
) -> None:
    ident = uuid.UUID(int=5)
    got = store.sql("SELECT :a AS a, :b AS b", {"a": decimal.Decimal("1.5"), "b": ident})
    if oracle.postgres:
        assert (got["a"].tolist(), got["b"].tolist()) == ([decimal.Decimal("1.5")], [ident])
    else:  # the SQLite store keeps numbers as 64-bit ones, ids as 32 hex digits
        assert oracle.rows("SELECT ?, ?", 1.5, oracle.uid(ident)) == [(got["a"][0], got["b"][0])]


def test_a_set_binds_on_the_store_as_an_in_list(store: Store) -> None:
    """Before: a raw `StatementError` ('set' object is not subscriptable)."""
    got = store.sql("SELECT 1 AS a WHERE 2 IN :a", {"a": {1, 2, 3}})
    assert got["a"].tolist() == [1]


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (pd.NaT, "pd.NaT"),
        ([pd.NaT], "pd.NaT"),
        (np.float32(0.1), "numpy float32"),
        (pd.Timestamp("2024-01-02 03:04:05.000000001"), "floor('us')"),
    ],
    ids=["nat", "nat-in-list", "np-float32", "nanoseconds"],
)
def test_a_value_without_an_exact_meaning_is_refused_on_the_store(
    store: Store, value: Any, words: str
) -> None:
    query = "SELECT 1 AS a WHERE 1 IN :a" if isinstance(value, list) else "SELECT :a AS a"
    with pytest.raises(Exception) as caught:
        store.sql(query, {"a": value})
    assert_one_line(caught.value, words)


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1},
        [{"a": 1}],
        fractions.Fraction(1, 3),
        complex(1, 2),
        ipaddress.ip_address("10.0.0.1"),
    ],
    ids=["dict", "dict-in-list", "fraction", "complex", "ip-address"],
)
def test_a_value_no_store_column_holds_is_refused_saying_what_to_bind(
    store: Store, value: Any
) -> None:
    """Before: psycopg's "cannot adapt type '?'" and sqlite3's "Error binding parameter 1:
    type '?' is not supported" (a raw-looking StoreError naming neither the parameter nor
    what to do); PostgreSQL bound an address object as inet."""
    query = "SELECT 1 AS a WHERE 1 IN :a" if isinstance(value, list) else "SELECT :a AS a"
    with pytest.raises(BindError) as caught:
        store.sql(query, {"a": value})
    assert_one_line(caught.value, "'a' is of type")
    assert "json.dumps" in str(caught.value)


def test_a_uuid_timedelta_and_buffer_bind_as_the_store_keeps_them(
    store: Store, oracle: _stores.Oracle
) -> None:
    """A buffer (bytearray, memoryview) binds as its bytes on both stores; a timedelta as an
    interval on PostgreSQL, and is refused on SQLite (no type holds one there; sqlite3's
    own error named no parameter)."""
    got = store.sql("SELECT :a AS a, :b AS b", {"a": bytearray(b"k1"), "b": memoryview(b"k2")})
    assert [bytes(got["a"][0]), bytes(got["b"][0])] == [
        bytes(v) for v in oracle.rows("SELECT ?, ?", b"k1", b"k2")[0]
    ]
    hour = dt.timedelta(hours=1)
    if oracle.postgres:
        assert store.sql("SELECT :a AS a", {"a": hour})["a"][0] == hour
        return
    with pytest.raises(BindError) as caught:
        store.sql("SELECT :a AS a", {"a": hour})
    assert_one_line(caught.value, "total_seconds()")


def test_nan_is_refused_on_the_sqlite_store_and_exact_on_postgres(
    store: Store, oracle: _stores.Oracle
) -> None:
    """Before: sqlite3 bound NaN as NULL (matched nothing)."""
    if oracle.postgres:
        assert np.isnan(store.sql("SELECT :a AS a", {"a": float("nan")})["a"][0])
        return
    with pytest.raises(Exception) as caught:
        store.sql("SELECT :a AS a", {"a": float("nan")})
    assert_one_line(caught.value, "binds as NULL")


# -- target definition filter values ------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "ftype", "meant"),
    [
        (1e-05, "number", 1e-05),
        (5e-324, "number", 5e-324),
        ("1e-05", "number", 1e-05),
        (Level.GOLD, "number", 3),
        (LoudFloat(0.5), "number", 0.5),
        (LoudText("VIP"), "string", "VIP"),
        (LoudInt(3), "string", "3"),
    ],
    ids=[
        "float-exponent",
        "float-tiny",
        "text-exponent",
        "int-enum",
        "float-subclass",
        "str-subclass",
        "int-subclass",
    ],
)
def test_a_target_condition_value_is_bound_as_the_value_it_means(
    value: Any, ftype: str, meant: Any
) -> None:
    """Before: a float whose text has no point (`1e-05`) became `int(1e-05)`, 0 (`amount >
    0.00001` selected every positive amount); a str subclass bound as its `__str__`."""
    from hybridwb.targets.sql import coerce

    got = coerce(value, ftype, "condition")
    assert got == meant and type(got) is type(meant)


# -- search terms ---------------------------------------------------------------------------------
class OddTerm(str):
    """A str subclass whose own methods say other text."""

    def strip(self, chars: str | None = None) -> str:
        return "김"

    def __str__(self) -> str:
        return "김"


def test_a_search_term_subclass_searches_for_the_text_it_holds(shop: Any) -> None:
    """Before: the subclass's own `strip` was used, and 'zzzz' found 20 customers named 김."""
    found = shop.search("customers", OddTerm("zzzz"))
    path = str(shop.source.url.database)
    with sqlite3.connect(path) as conn:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(customers)")]
        whole = " || ' ' || ".join(f"coalesce({c}, '')" for c in columns)
        [(want,)] = conn.execute(f"SELECT count(*) FROM customers WHERE instr({whole}, 'zzzz')")
    conn.close()
    assert len(found) == want == 0


def test_a_search_term_with_a_lone_surrogate_is_refused_in_one_line(shop: Any) -> None:
    with pytest.raises(Exception) as caught:
        shop.search("customers", "a\udc80")
    assert isinstance(caught.value, ValidationError), repr(caught.value)
    text = str(caught.value)
    assert "search term" in text and "surrogate" in text and "b0_0" not in text, text


# -- `%%mysql` cells: {{ name | ident }} ----------------------------------------------------------
class PosingName(str):
    """Text that says it equals any live name, and whose `replace` returns other SQL."""

    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return hash("customers")

    def replace(self, *args: Any, **kwargs: Any) -> str:  # type: ignore[override]
        return "customers` UNION SELECT password FROM `users"


def test_an_ident_splice_is_the_text_the_value_holds() -> None:
    """Before: the subclass passed `value not in known` by its own `__eq__`/`__hash__` and
    its own `replace` chose the spliced text."""
    from hybridwb.magics import MagicError, bind_cell

    with pytest.raises(MagicError) as caught:
        bind_cell(
            "SELECT * FROM {{ t | ident }}",
            {"t": PosingName("nosuch")},
            lambda: {"customers"},
        )
    assert "not a table or column" in str(caught.value)
    sql, params = bind_cell(
        "SELECT * FROM {{ t | ident }}", {"t": LoudText("customers")}, lambda: {"customers"}
    )
    assert (sql, params) == ("SELECT * FROM `customers`", {})


# -- pandas and Core on the MariaDB source's engine ---------------------------------------------
@pytest.mark.parametrize(("value", "meant"), [e[1:] for e in EXACT], ids=[e[0] for e in EXACT])
def test_pandas_on_the_mysql_engine_binds_the_plain_value(
    source: Source, db: str, value: Any, meant: Any
) -> None:
    """Before (round 41's leftover): `pd.read_sql(sql, wb.source.engine, params=...)`
    reached PyMySQL as given, which wrote a type it does not know as `str(value)`: a float
    subclass whose `__str__` says '7' bound as '7', a datetime subclass as its own text."""
    got = pd.read_sql("SELECT %(a)s AS a", source.engine, params={"a": value})
    assert got["a"].tolist() == [mysql_oracle(db, meant)]


@pytest.mark.parametrize(("value", "words"), [e[1:] for e in REFUSED], ids=[e[0] for e in REFUSED])
def test_a_value_without_an_exact_meaning_is_refused_on_the_mysql_engine(
    source: Source, value: Any, words: str
) -> None:
    """Before: pd.NaT went to the server as the text 'NaT' (matched nothing, silently), a
    huge Decimal was clamped by the server."""
    from sqlalchemy import text

    query = "SELECT 1 AS a FROM DUAL WHERE 1 IN :a" if isinstance(value, list) else "SELECT :a AS a"
    params = {"a": tuple(value) if isinstance(value, list) else value}
    with pytest.raises(Exception) as caught, source.engine.connect() as conn:
        conn.execute(text(query).bindparams(), params).fetchall()
    assert_one_line(caught.value, words)


def test_an_in_list_on_the_mysql_engine_binds_each_plain_value(source: Source, db: str) -> None:
    """A sequence value (PyMySQL's IN list) item by item: an np.int64 and a float subclass
    among plain ints."""
    got = pd.read_sql(
        "SELECT %(a)s IN %(list)s AS hit, %(b)s IN %(list)s AS miss",
        source.engine,
        params={"a": 0.5, "b": 7, "list": [np.int64(3), LoudFloat(0.5)]},
    )
    conn = _mysql.plain_root(db)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT %s IN (3, 0.5), %s IN (3, 0.5)", (0.5, 7))
            want = cur.fetchall()[0]
    finally:
        conn.close()
    assert (got["hit"][0], got["miss"][0]) == want == (1, 0)


# -- pandas on the sample's engine ----------------------------------------------------------------
def test_pandas_on_the_sample_engine_binds_the_plain_value(shop: Any) -> None:
    """Before: `pd.read_sql(sql, wb.source.engine, params=...)` handed an np.int64 to sqlite3,
    which bound it as a BLOB of its 8 bytes (matched nothing), and pd.NaT as the text 'NaT'."""
    from sqlalchemy import text

    path = str(shop.source.url.database)
    query = "SELECT count(*) AS n FROM customers WHERE customer_id = :a"
    got = pd.read_sql(text(query), shop.source.engine, params={"a": np.int64(1)})
    with sqlite3.connect(path) as conn:
        [(want,)] = conn.execute(query.replace(":a", "?"), (1,)).fetchall()
    conn.close()
    assert got["n"].tolist() == [want] == [1]
    with pytest.raises(Exception) as caught:
        pd.read_sql(text("SELECT :a AS a"), shop.source.engine, params={"a": pd.NaT})
    assert "pd.NaT" in str(caught.value) and "\n" not in str(caught.value), repr(caught.value)


def test_driver_sql_on_the_sample_engine_binds_the_plain_value(shop: Any) -> None:
    """The named (dict) form sqlite3 gets from `exec_driver_sql`: an np.int64 was a BLOB."""
    query = "SELECT count(*) FROM customers WHERE customer_id = :a"
    with shop.source.engine.connect() as conn:
        got = conn.exec_driver_sql(query, {"a": np.int64(1)}).fetchall()
    with sqlite3.connect(str(shop.source.url.database)) as plain:
        want = plain.execute(query, {"a": 1}).fetchall()
    plain.close()
    assert [tuple(r) for r in got] == want == [(1,)]
