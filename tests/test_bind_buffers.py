"""Bytes in another buffer follow one rule on every side: a bytearray, or a memoryview of
single bytes, binds as the bytes it holds (on the MariaDB source through `wb.sql` and the
engine, and on both stores); a memoryview of wider items (an array of ints) is refused in
one `BindError` line on every side.

Before: the source refused a bytearray and a memoryview ("bind a str, number, date...")
while the stores bound them as bytes, and the stores bound a memoryview of 4-byte ints as
its machine-order bytes.

Oracle: the plain `bytes` value through the plain driver (pymysql as root, psycopg, sqlite3).
"""

from __future__ import annotations

import array
from typing import Any

import _mysql
import _stores
import pandas as pd
import pytest

from hybridwb.errors import BindError
from hybridwb.platform.store import Store
from hybridwb.source.source import Source

store = _stores.store
oracle = _stores.oracle
db, source = _mysql.scratch_fixtures("bindbuf", 1)

HELD = b"\x00\xff'\\k\x80"


class LyingBytearray(bytearray):
    """Holds HELD, but its `__bytes__` says other bytes."""

    def __bytes__(self) -> bytes:
        return b"lie"


BUFFERS = {
    "bytearray": lambda: bytearray(HELD),
    "memoryview": lambda: memoryview(HELD),
    "strided-view": lambda: memoryview(bytes(x for b in HELD for x in (b, 0)))[::2],
    "bytearray-subclass": lambda: LyingBytearray(HELD),
}


def mysql_hex(db: str, value: bytes) -> str:
    conn = _mysql.plain_root(db)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT HEX(%s)", (value,))
            return str(cur.fetchone()[0])
    finally:
        conn.close()


@pytest.mark.parametrize("kind", list(BUFFERS))
def test_a_buffer_of_bytes_binds_as_its_bytes_on_the_source(
    source: Source, db: str, kind: str
) -> None:
    want = mysql_hex(db, HELD)
    [row] = source.records("SELECT HEX(:a) AS h", {"a": BUFFERS[kind]()})
    assert row["h"] == want == HELD.hex().upper()
    got = pd.read_sql("SELECT HEX(%(a)s) AS h", source.engine, params={"a": BUFFERS[kind]()})
    assert got["h"].tolist() == [want]


@pytest.mark.parametrize("kind", list(BUFFERS))
def test_a_buffer_of_bytes_binds_as_its_bytes_on_the_store(
    store: Store, oracle: _stores.Oracle, kind: str
) -> None:
    got = store.sql("SELECT :a AS a", {"a": BUFFERS[kind]()})["a"][0]
    assert bytes(got) == bytes(oracle.one("SELECT ?", HELD)) == HELD


def _released() -> memoryview:
    view = memoryview(HELD)
    view.release()
    return view


WIDE = {
    "int-array": lambda: memoryview(array.array("i", [1, 2])),
    "released": _released,
}


def _refused(exc: BaseException) -> None:
    assert isinstance(exc, BindError), repr(exc)
    message = str(exc)
    assert "\n" not in message and len(message) < 240, message
    assert "Parameter 'a' is a memoryview" in message and "tobytes()" in message, message


@pytest.mark.parametrize("kind", list(WIDE))
def test_a_memoryview_of_wider_items_is_refused_on_the_source(source: Source, kind: str) -> None:
    with pytest.raises(Exception) as caught:
        source.records("SELECT HEX(:a) AS h", {"a": WIDE[kind]()})
    _refused(caught.value)
    with pytest.raises(Exception) as caught:
        pd.read_sql("SELECT HEX(%(a)s) AS h", source.engine, params={"a": WIDE[kind]()})
    _refused(caught.value)


@pytest.mark.parametrize("kind", list(WIDE))
def test_a_memoryview_of_wider_items_is_refused_on_the_store(store: Store, kind: str) -> None:
    with pytest.raises(Exception) as caught:
        store.sql("SELECT :a AS a", {"a": WIDE[kind]()})
    _refused(caught.value)


def test_the_sample_engine_binds_a_buffer_as_its_bytes(shop: Any) -> None:
    import sqlite3

    query = "SELECT hex(?) AS h"
    got = pd.read_sql(query, shop.source.engine, params=(bytearray(HELD),))
    with sqlite3.connect(str(shop.source.url.database)) as conn:
        [(want,)] = conn.execute(query, (HELD,)).fetchall()
    conn.close()
    assert got["h"].tolist() == [want] == [HELD.hex().upper()]
