"""`wb.sql(..., arrow=True)` on mysqlclient: every MariaDB column type gets the documented
Arrow type (hybridwb/source/arrow.py) and the values the normal path gives, however the
result is cut into chunks.

The oracle is a raw mysqlclient connection as root with the driver's own converters (what
the normal path reads), on a table this file makes and drops.
"""

from __future__ import annotations

import gc
import uuid
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pymysql
import pytest

from hybridwb.errors import QueryTimeout
from hybridwb.source import RowsCut, Source, arrow
from tests.conftest import MYSQL_HOST, MYSQL_PORT, admin_url

pytestmark = pytest.mark.mysql
MySQLdb = pytest.importorskip("MySQLdb", reason="the mysqlclient extra is not installed")
pa = pytest.importorskip("pyarrow", reason="the arrow extra is not installed")

#: column -> (MySQL type, Arrow dtype the module docstring promises for these values)
COLUMNS = {
    "flag": ("TINYINT(1)", "int64[pyarrow]"),
    "si": ("SMALLINT", "int64[pyarrow]"),
    "i": ("INT", "int64[pyarrow]"),
    "bi": ("BIGINT", "int64[pyarrow]"),
    "ubi": ("BIGINT UNSIGNED", "uint64[pyarrow]"),  # holds 2**64 - 1
    "yr": ("YEAR", "int64[pyarrow]"),
    "fl": ("FLOAT", "double[pyarrow]"),
    "db": ("DOUBLE", "double[pyarrow]"),
    "money": ("DECIMAL(10, 2)", "decimal128(38, 2)[pyarrow]"),
    "wide": ("DECIMAL(65, 10)", "decimal256(76, 10)[pyarrow]"),  # holds 55 digits
    "d38": ("DECIMAL(37, 0)", "decimal128(38, 0)[pyarrow]"),  # 37 nines: the widest decimal128
    "ch": ("CHAR(5)", "string[pyarrow]"),
    "vc": ("VARCHAR(50)", "string[pyarrow]"),
    "tx": ("TEXT", "string[pyarrow]"),
    "en": ("ENUM('a', 'b')", "string[pyarrow]"),
    "st": ("SET('x', 'y')", "string[pyarrow]"),
    "js": ("JSON", "string[pyarrow]"),
    "bn": ("BINARY(3)", "binary[pyarrow]"),
    "vb": ("VARBINARY(10)", "binary[pyarrow]"),
    "bl": ("BLOB", "binary[pyarrow]"),
    "bt": ("BIT(8)", "binary[pyarrow]"),
    "day": ("DATE", "date32[day][pyarrow]"),
    "dtm": ("DATETIME(6)", "timestamp[us][pyarrow]"),
    "ts": ("TIMESTAMP NULL", "timestamp[us][pyarrow]"),
    "tm": ("TIME", "duration[us][pyarrow]"),
}
ORDINARY = (
    "1, -32768, 2147483647, -9223372036854775808, 7, 2024, 1.5, 0.1, 12.34, "
    "'-12345678901234567890.0123456789', 1, 'abc', '김지훈 😀', 'Ünïcode ✓', 'b', 'x,y', "
    """'{"k": "값"}', 'ab', x'00ff', x'deadbeef', b'10100101', '2024-02-29', """
    "'2024-01-02 03:04:05.123456', '2024-03-04 05:06:07', '-01:02:03'"
)
NULLS = ", ".join(["NULL"] * len(COLUMNS))
EXTREMES = (
    "0, 32767, -2147483648, 9223372036854775807, 18446744073709551615, 1901, -3.5e38, "
    "-1.7976931348623157e308, -99999999.99, "
    "'123456789012345678901234567890123456789012345.6789012345', "
    "-9999999999999999999999999999999999999, '', '', '', 'a', '', "
    "'[]', '', '', '', b'0', '0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', "
    "'838:59:59'"
)
PARTIAL_ZERO = (
    "0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 'z', 'z', 'z', 'a', 'y', '1', 'z', 'z', 'z', b'1', "
    "'2024-00-15', '2024-02-00 10:00:00', NULL, '00:00:00'"
)
#: rows by id: all NULL in two neighbours, the extremes (uint64, 55 digits, zero dates) once
ROWS = [ORDINARY, ORDINARY, NULLS, NULLS, EXTREMES, PARTIAL_ZERO, ORDINARY]
SELECT = f"SELECT {', '.join(COLUMNS)} FROM typed ORDER BY id"


@pytest.fixture(scope="module")
def typed_db() -> Iterator[str]:
    db = f"hwb_arrow_types_{uuid.uuid4().hex[:8]}"
    conn = pymysql.connect(
        ssl_disabled=True,
        host=MYSQL_HOST,
        port=MYSQL_PORT,
        user="root",
        charset="utf8mb4",
        autocommit=True,
    )
    columns = ", ".join(f"{name} {kind}" for name, (kind, _) in COLUMNS.items())
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{db}` CHARACTER SET utf8mb4")
        cur.execute("SET SESSION sql_mode = ''")  # zero dates and zero-in-date allowed
        cur.execute(f"CREATE TABLE `{db}`.typed (id INT PRIMARY KEY, {columns})")
        for at, values in enumerate(ROWS, 1):
            cur.execute(f"INSERT INTO `{db}`.typed VALUES ({at}, {values})")
    try:
        yield db
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
        conn.close()


def driver_reads(db: str, sql: str) -> list[tuple[Any, ...]]:
    """The rows as mysqlclient's own converters give them (the normal path's values)."""
    raw = MySQLdb.connect(
        host=MYSQL_HOST, port=MYSQL_PORT, user="root", database=db, charset="utf8mb4"
    )
    try:
        cur = raw.cursor()
        cur.execute(sql)
        return [tuple(row) for row in cur.fetchall()]
    finally:
        raw.close()


def arrow_rows(df: pd.DataFrame) -> list[tuple[Any, ...]]:
    table = pa.Table.from_pandas(df, preserve_index=False)
    return list(zip(*(column.to_pylist() for column in table.columns), strict=True))


def mysqlclient_source(db: str, **kw: Any) -> Source:
    return Source(admin_url(db).set(drivername="mysql+mysqldb"), pool_size=1, **kw)


@pytest.mark.parametrize("chunk", [arrow.CHUNK, 2, 3], ids=["one-chunk", "chunks-of-2", "of-3"])
def test_every_column_type_has_its_documented_dtype_and_the_normal_paths_values(
    typed_db: str, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks of 2 put the two all-NULL rows in a chunk of their own and the uint64 and
    55-digit values in a later chunk than the ordinary ones: the column keeps one type."""
    monkeypatch.setattr(arrow, "CHUNK", chunk)
    src = mysqlclient_source(typed_db)
    try:
        df = src.sql(SELECT, arrow=True)
    finally:
        src.close()
    assert {k: str(v) for k, v in df.dtypes.items()} == {k: t for k, (_, t) in COLUMNS.items()}
    want = driver_reads(typed_db, SELECT)
    assert len(want) == len(ROWS)
    assert arrow_rows(df) == want
    # the independent statement of what the normal path reads for the odd values
    extremes, partial = want[4], want[5]
    names = list(COLUMNS)
    assert extremes[names.index("ubi")] == 2**64 - 1
    assert extremes[names.index("day")] is None and extremes[names.index("dtm")] is None
    assert partial[names.index("day")] is None and partial[names.index("dtm")] is None


@pytest.mark.parametrize("chunk", [arrow.CHUNK, 2, 3, 4], ids=["one-chunk", "2", "3", "4"])
def test_the_row_cap_cuts_inside_a_chunk(
    typed_db: str, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(arrow, "CHUNK", chunk)
    src = mysqlclient_source(typed_db, row_cap=5)
    try:
        with pytest.warns(RowsCut):
            df = src.sql(SELECT, arrow=True)
        exact = src.sql(SELECT, arrow=True, limit=len(ROWS))
    finally:
        src.close()
    want = driver_reads(typed_db, SELECT)
    assert arrow_rows(df) == want[:5] and df.attrs["hybridwb"]["truncated"] is True
    assert arrow_rows(exact) == want and exact.attrs["hybridwb"]["truncated"] is False


def test_an_empty_result_keeps_the_mysql_types(typed_db: str) -> None:
    src = mysqlclient_source(typed_db)
    try:
        df = src.sql(f"{SELECT.replace(' ORDER BY', ' WHERE id < 0 ORDER BY')}", arrow=True)
    finally:
        src.close()
    assert len(df) == 0
    raw_text = {
        "flag",
        "si",
        "i",
        "bi",
        "yr",
        "fl",
        "db",
        "money",
        "wide",
        "d38",
        "day",
        "dtm",
        "ts",
    }
    got = {k: str(v) for k, v in df.dtypes.items() if k in raw_text}
    want = {k: t for k, (_, t) in COLUMNS.items() if k in raw_text}
    assert got == want


@pytest.mark.parametrize("was_on", [True, False], ids=["on", "off"])
def test_the_garbage_collector_is_left_as_it_was(typed_db: str, was_on: bool) -> None:
    src = mysqlclient_source(typed_db)
    (gc.enable if was_on else gc.disable)()
    try:
        src.sql(SELECT, arrow=True)
        with pytest.raises(QueryTimeout):  # the server's time limit, while rows stream in
            src.sql(
                "SELECT a.seq FROM seq_1_to_100000 a JOIN seq_1_to_100000 b ON a.seq + b.seq = 7",
                arrow=True,
                timeout=0.5,
            )
        after = gc.isenabled()
    finally:
        gc.enable()
        src.close()
    assert after is was_on
