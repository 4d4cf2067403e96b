"""Round 40: dates reaching SQLite by paths other than the sample's `wb.sql` and its load.

sqlite3 turns a Python date or datetime into text through process-wide adapters any library
may replace: importing `nbformat.sign` makes a datetime `isoformat()` (a `T` between date
and time), pandas' `read_sql` on a sqlite3 connection makes it `isoformat(" ")` (Python
3.11's own default too) and adds a `datetime.time` adapter. Paths tried here:

* `%%platform` / `wb.store.sql` on the SQLite store: its binds are a `text()` clause's
  with a plain dict (NullType, no bind processor), so a datetime went to sqlite3's adapter.
  The store keeps SQLAlchemy's text, `2026-06-09 19:00:00.000000`, in UTC: a `T` sorted
  after every value of that day, the default adapter's `2026-06-09 19:00:00` (no
  microseconds) before the equal stored value (`<=` and `=` lost it), a tz-aware value
  (`+00:00` appended) after it, and a written datetime was stored with a `T`. A pandas
  Timestamp (an adapter is found by exact type) and a `datetime.time` failed to bind; a
  numpy datetime64 was bound as a BLOB and matched nothing, silently.
* The sample's `wb.sql` with a tz-aware datetime or Timestamp: `+09:00` appended to the
  bound text, so `>=` dropped the equal row and `=` found none, where a MySQL driver sends
  the wall-clock fields (PyMySQL's `escape_datetime`).
* `pd.read_sql(sql, wb.source.engine, params=...)` on the sample: the driver's own params,
  through sqlite3's adapter.

Now: `console.store_text` binds the store's own text (UTC, microseconds) and refuses a
datetime64, `transpile.sqlite_value` sends an aware value's wall clock, and the sample
engine's `before_cursor_execute` hook turns a caller's dates into the sample's text.
The store's other paths (typed Core columns, `insert_ignore_stored`, `_whole_rows`) were
run with the `T` adapter in place: their binds are text by then (DateTime's processor).

Oracles: sqlite3 on the file with the bounds given as text, and the file's stored text."""

from __future__ import annotations

import datetime as dt
import sqlite3
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pymysql.converters
import pytest
import sqlalchemy as sa

import hybridwb
from hybridwb.errors import BindError
from hybridwb.platform.backend import SqlBackend
from hybridwb.platform.store import Store
from hybridwb.source.sample import build_sqlite
from tests.conftest import REPO

sys.path.insert(0, str(Path(__file__).parent))
import _stores

UTC = dt.UTC
KST = ZoneInfo("Asia/Seoul")


def _t_adapters(monkeypatch: pytest.MonkeyPatch) -> None:
    """What importing `nbformat.sign` registers (a `T`), for datetime and date."""
    for kind in (dt.datetime, dt.date):
        monkeypatch.setitem(sqlite3.adapters, (kind, sqlite3.PrepareProtocol), _iso_t)


def _pandas_adapters(monkeypatch: pytest.MonkeyPatch) -> None:
    """What `pd.read_sql` on a sqlite3 connection registers (pandas/io/sql.py)."""
    monkeypatch.setitem(
        sqlite3.adapters,
        (dt.time, sqlite3.PrepareProtocol),
        lambda t: f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}.{t.microsecond:06d}",
    )
    monkeypatch.setitem(sqlite3.adapters, (dt.date, sqlite3.PrepareProtocol), _iso_t)
    monkeypatch.setitem(
        sqlite3.adapters, (dt.datetime, sqlite3.PrepareProtocol), lambda v: v.isoformat(" ")
    )


def _iso_t(value: Any) -> str:
    return str(value.isoformat())


ADAPTERS = {"nbformat": _t_adapters, "pandas": _pandas_adapters, "default": None}


@pytest.fixture(params=list(ADAPTERS))
def adapters(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    install = ADAPTERS[request.param]
    if install is not None:
        install(monkeypatch)
    return str(request.param)


# -- the SQLite platform store: `%%platform` / wb.store.sql --------------------------------

#: times written by the store's own Core path (`claim_schedule`), all UTC
STORED = [
    dt.datetime(2026, 6, 8, 23, 59, 59, 999999, tzinfo=UTC),
    dt.datetime(2026, 6, 9, 19, 0, tzinfo=UTC),
    dt.datetime(2026, 6, 9, 19, 0, 0, 500000, tzinfo=UTC),
    dt.datetime(2026, 6, 9, 23, 30, tzinfo=UTC),
    dt.datetime(2026, 6, 10, 0, 0, tzinfo=UTC),
]
AT = dt.datetime(2026, 6, 9, 19, 0)  # the instant of STORED[1], in UTC
#: the one instant as a caller may hold it: naive (the store's UTC), aware UTC, aware in
#: Seoul, a pandas Timestamp naive and aware
BOUNDS = {
    "naive": AT,
    "utc": AT.replace(tzinfo=UTC),
    "kst": AT.replace(tzinfo=UTC).astimezone(KST),
    "timestamp": pd.Timestamp(AT),
    "timestamp-kst": pd.Timestamp(AT, tz="UTC").tz_convert("Asia/Seoul"),
}
OPS = (">=", ">", "<=", "<", "=")


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[tuple[Store, Path]]:
    path = tmp_path / "platform.db"
    st = Store(SqlBackend(_stores.migrated_sqlite(path)))
    workflow = uuid.uuid4()
    for at in STORED:
        assert st.claim_schedule(workflow, at, f"owner-{at:%d%H%M%S%f}")
    yield st, path
    st.close()


def _count(path: Path, sql: str, *params: Any) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute(sql, params).fetchone()[0])


def _stored_text(path: Path, owner: str) -> str:
    with sqlite3.connect(path) as conn:
        return str(
            conn.execute(
                "SELECT scheduled_for FROM schedule_locks WHERE owner = ?", (owner,)
            ).fetchone()[0]
        )


@pytest.mark.parametrize("bound", list(BOUNDS))
def test_a_store_sql_datetime_bind_compares_as_the_stored_text(
    sqlite_store: tuple[Store, Path], adapters: str, bound: str
) -> None:
    """Each comparison with the instant counts what sqlite3 counts with the stored text of
    that instant (the text the store's own write of it left, read from the file)."""
    st, path = sqlite_store
    text = _stored_text(path, f"owner-{STORED[1]:%d%H%M%S%f}")
    assert text == "2026-06-09 19:00:00.000000", text  # SQLAlchemy's storage text
    for op in OPS:
        sql = f"SELECT count(*) AS n FROM schedule_locks WHERE scheduled_for {op} :at"
        expected = _count(path, sql.replace(":at", "?"), text)
        got = int(st.sql(sql, {"at": BOUNDS[bound]})["n"].iloc[0])
        assert got == expected, (op, got, expected)


def test_a_store_sql_date_bind_compares_as_the_day(
    sqlite_store: tuple[Store, Path], adapters: str
) -> None:
    """A date is the day's text (every adapter's): `>=` from the day's start, `date(...) =`."""
    st, path = sqlite_store
    day = dt.date(2026, 6, 9)
    for sql in (
        "SELECT count(*) AS n FROM schedule_locks WHERE scheduled_for >= :d",
        "SELECT count(*) AS n FROM schedule_locks WHERE date(scheduled_for) = :d",
    ):
        got = int(st.sql(sql, {"d": day})["n"].iloc[0])
        assert got == _count(path, sql.replace(":d", "?"), "2026-06-09"), sql


def test_a_store_sql_list_of_datetimes_binds_each_as_the_stored_text(
    sqlite_store: tuple[Store, Path], adapters: str
) -> None:
    st, path = sqlite_store
    texts = [_stored_text(path, f"owner-{at:%d%H%M%S%f}") for at in STORED[1:3]]
    got = st.sql(
        "SELECT count(*) AS n FROM schedule_locks WHERE scheduled_for IN :ats",
        {"ats": [STORED[1], STORED[2].astimezone(KST)]},
    )
    sql = "SELECT count(*) FROM schedule_locks WHERE scheduled_for IN (?, ?)"
    assert int(got["n"].iloc[0]) == _count(path, sql, *texts) == 2


@pytest.mark.parametrize("bound", ["naive", "kst", "timestamp"])
def test_a_store_sql_write_stores_a_datetime_as_the_store_does(
    sqlite_store: tuple[Store, Path], adapters: str, bound: str
) -> None:
    """`--write` of a datetime leaves the text the store's own write of it leaves (with a
    `T` it was read back as the same time, but compared after every value of its day)."""
    st, path = sqlite_store
    owner = f"owner-{STORED[0]:%d%H%M%S%f}"
    st.sql(
        "UPDATE schedule_locks SET locked_at = :at WHERE owner = :o",
        {"at": BOUNDS[bound], "o": owner},
        write=True,
    )
    with sqlite3.connect(path) as conn:
        (locked,) = conn.execute(
            "SELECT locked_at FROM schedule_locks WHERE owner = ?", (owner,)
        ).fetchone()
    assert locked == _stored_text(path, f"owner-{STORED[1]:%d%H%M%S%f}")


def test_a_store_sql_time_bind_is_its_text(sqlite_store: tuple[Store, Path], adapters: str) -> None:
    """A `datetime.time` binds as its text whatever pandas registered (without pandas it
    failed: sqlite3 has no adapter for it)."""
    st, path = sqlite_store
    sql = "SELECT count(*) AS n FROM schedule_locks WHERE time(scheduled_for) >= :t"
    got = int(st.sql(sql, {"t": dt.time(19, 0)})["n"].iloc[0])
    assert got == _count(path, sql.replace(":t", "?"), "19:00:00") == 4


def test_a_store_sql_numpy_datetime64_is_refused_not_bound_as_bytes(
    sqlite_store: tuple[Store, Path],
) -> None:
    """sqlite3 bound it as a BLOB (numpy's buffer), which no stored text equals: the read
    answered 0 rows. Refused, as `wb.sql` refuses it, naming the parameter."""
    st, _ = sqlite_store
    with pytest.raises(BindError, match="'at'.*datetime64"):
        st.sql(
            "SELECT count(*) AS n FROM schedule_locks WHERE scheduled_for >= :at",
            {"at": np.datetime64("2026-06-09T19:00:00")},
        )


def test_a_store_sql_datetime_past_year_9999_in_utc_is_refused_in_one_line(
    sqlite_store: tuple[Store, Path],
) -> None:
    """Its conversion to UTC overflows: a `BindError` naming the parameter, not Python's
    raw OverflowError."""
    st, _ = sqlite_store
    late = dt.datetime.max.replace(tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    with pytest.raises(BindError, match="'at'.*9999"):
        st.sql("SELECT count(*) AS n FROM schedule_locks WHERE scheduled_for >= :at", {"at": late})


# -- the embedded sample ---------------------------------------------------------------


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[tuple[hybridwb.Workbench, Path]]:
    (tmp_path / ".hybridwb").mkdir()
    path = tmp_path / ".hybridwb" / "sample.db"
    build_sqlite(path, 300)
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "table-mappings.json").write_bytes(
        (REPO / "mappings" / "table-mappings.json").read_bytes()
    )
    wb = hybridwb.connect()
    yield wb, path
    wb.close()


def _first_paid(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return str(conn.execute("SELECT MIN(paid_at) FROM payments").fetchone()[0])


def _wall_text(value: dt.datetime) -> str:
    """The text a MySQL driver sends for `value`: its fields, the zone left out."""
    return str(pymysql.converters.escape_datetime(value)).strip("'")


@pytest.mark.parametrize("kind", ["aware", "timestamp-tz"])
def test_a_sample_tz_aware_bind_compares_as_its_wall_clock_text(
    shop: tuple[hybridwb.Workbench, Path], adapters: str, kind: str
) -> None:
    """An aware datetime on the sample compares as the wall-clock text a MySQL driver sends
    for it (before: `+09:00` appended, so `>=` lost the equal row and `=` found none)."""
    wb, path = shop
    first = _first_paid(path)
    wall = dt.datetime.fromisoformat(first).replace(tzinfo=KST)
    value: Any = wall if kind == "aware" else pd.Timestamp(wall)
    text = _wall_text(wall)
    assert text == first
    for op in OPS:
        sql = f"SELECT COUNT(*) AS n FROM payments WHERE paid_at {op} :at"
        got = int(wb.sql(sql, {"at": value})["n"].iloc[0])
        assert got == _count(path, sql.replace(":at", "?"), text), op


def test_pandas_on_the_sample_engine_binds_a_datetime_as_the_stored_text(
    shop: tuple[hybridwb.Workbench, Path], adapters: str
) -> None:
    """`pd.read_sql` on `wb.source.engine` with a datetime parameter, named (a `text()`
    clause, NullType binds) and positional (the driver's own params): what sqlite3 counts
    with the stored text."""
    wb, path = shop
    first = _first_paid(path)
    at = dt.datetime.fromisoformat(first)
    expected = _count(path, "SELECT COUNT(*) FROM payments WHERE paid_at >= ?", first)
    named = pd.read_sql(
        sa.text("SELECT COUNT(*) AS n FROM payments WHERE paid_at >= :at"),
        wb.source.engine,
        params={"at": at},
    )
    positional = pd.read_sql(
        "SELECT COUNT(*) AS n FROM payments WHERE paid_at >= ?", wb.source.engine, params=(at,)
    )
    assert int(named["n"].iloc[0]) == int(positional["n"].iloc[0]) == expected


# -- the SQLite store's own writes of an aware time in another zone -------------------------


def test_a_schedule_slot_claimed_in_another_zone_is_the_same_slot(tmp_path: Path) -> None:
    """One instant given in Seoul and then in UTC is one slot: the second claim is refused,
    as PostgreSQL's timestamptz key refuses it (SQLAlchemy's DateTime drops the zone on
    SQLite, so the Seoul time was stored as its wall clock, a slot of its own)."""
    path = tmp_path / "platform.db"
    st = Store(SqlBackend(_stores.migrated_sqlite(path)))
    try:
        workflow = uuid.uuid4()
        assert st.claim_schedule(workflow, STORED[1].astimezone(KST), "a")
        assert not st.claim_schedule(workflow, STORED[1], "b")
    finally:
        st.close()
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT scheduled_for, owner FROM schedule_locks").fetchall()
    assert rows == [("2026-06-09 19:00:00.000000", "a")]


def test_a_query_log_entry_timed_in_another_zone_is_stored_in_utc(tmp_path: Path) -> None:
    """Was a strict xfail (BREAK): the fast path kept Core's text, and Core's DateTime the
    Seoul wall clock. Both write `times.utc_text` now (the column type `StoreTime`)."""
    from hybridwb.source.querylog import QueryLogEntry

    path = tmp_path / "platform.db"
    st = Store(SqlBackend(_stores.migrated_sqlite(path)))
    try:
        st.write_query_logs(
            [
                QueryLogEntry(
                    "shop", "SELECT 1", 1.0, 1, "success", timestamp=STORED[1].astimezone(KST)
                )
            ]
        )
    finally:
        st.close()
    with sqlite3.connect(path) as conn:
        stamps = [r[0] for r in conn.execute("SELECT timestamp FROM query_logs")]
    assert stamps == ["2026-06-09 19:00:00.000000"]
