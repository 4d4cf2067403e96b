"""`Source.sql(frame_type=...)`: the rows become a frame of that class once (the workbench's
masked frame), and anything that is not a DataFrame class is refused before any I/O."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy.engine import URL

from hybridwb.errors import BindError
from hybridwb.grid import SourceFrame
from hybridwb.source import Source
from hybridwb.source.frames import frame_of


@pytest.mark.parametrize("bad", [dict, "DataFrame", None, int], ids=["dict", "str", "none", "int"])
def test_a_frame_type_that_is_not_a_dataframe_class_is_refused(tmp_path: Path, bad: object) -> None:
    src = Source(URL.create("sqlite", database=str(tmp_path / "missing.db")))
    with pytest.raises(BindError, match="frame_type must be pandas.DataFrame"):
        src.sql("SELECT 1", frame_type=bad)  # type: ignore[arg-type]


# -- the frame is built as `from_records` builds it (frame_of) ------------------------------

_D = Decimal("12.50")
_ROWS = {
    "ints": [(1, 2), (3, 4)],
    "one_row_text": [(7, "김민수", "p7@example.kr")],
    "ints_with_null": [(1, None), (None, 2)],
    "floats_nan": [(1.5, float("nan")), (None, 2.0)],
    "decimals": [(_D, None), (Decimal("0"), _D)],
    "dates": [(date(2024, 1, 2), datetime(2024, 1, 2, 3, 4, 5)), (None, None)],
    "datetime_with_micro": [(datetime(2024, 1, 2, 3, 4, 5, 6),)],
    "timedelta": [(timedelta(hours=-1, seconds=3),), (timedelta(0),)],
    "bytes": [(b"\x00\xff", bytearray(b"a")), (b"", None)],
    "mixed_column": [(1, "a"), ("b", 2), (None, 3.5)],
    "all_null": [(None, None)],
    "bools": [(True, 0), (False, 1)],
    "big_unsigned": [(2**64 - 1, -(2**63))],
    "duplicate_names": [(1, 2)],
}
_KEYS = {"one_row_text": ["id", "name", "email"], "duplicate_names": ["a", "a"]}


@pytest.mark.parametrize("frame_type", [pd.DataFrame, SourceFrame], ids=["plain", "masked"])
@pytest.mark.parametrize("case", list(_ROWS), ids=list(_ROWS))
def test_rows_become_the_frame_from_records_makes(frame_type: type, case: str) -> None:
    rows = _ROWS[case]
    keys = _KEYS.get(case, [f"c{i}" for i in range(len(rows[0]))])
    got = frame_of(frame_type, keys, list(rows))
    want = frame_type.from_records(list(rows), columns=keys)
    assert type(got) is frame_type
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert [type(v) for v in got.to_numpy().ravel()] == [type(v) for v in want.to_numpy().ravel()]


def test_frames_of_the_same_columns_do_not_share_a_column_name() -> None:
    """The column Index is made once per list of names; each frame's is its own object, so
    naming one frame's columns leaves the next frame's alone."""
    first = frame_of(SourceFrame, ["a", "b"], [(1, 2)])
    first.columns.name = "renamed"
    first.columns = first.columns.str.upper()
    second = frame_of(SourceFrame, ["a", "b"], [(3, 4)])
    assert second.columns.name is None
    assert list(second.columns) == ["a", "b"]
    assert second.columns is not first.columns


@pytest.mark.parametrize(
    "rows", [[], [[1, 2]], ((1, 2),)], ids=["no_rows", "list_rows", "tuple_of_rows"]
)
def test_other_rows_take_from_records_itself(rows: Any) -> None:
    got = frame_of(SourceFrame, ["a", "b"], rows)
    want = SourceFrame.from_records(rows, columns=["a", "b"])
    assert type(got) is SourceFrame
    pd.testing.assert_frame_equal(got, want, check_exact=True)


def test_wb_sql_frame_is_the_raw_drivers_rows_from_records(mysql_db: str, tmp_path: Path) -> None:
    """On MariaDB: the frame wb.sql returns equals the raw driver's rows through
    `pandas.DataFrame.from_records` (the oracle), dtypes and values, 1 row and several."""
    import hybridwb
    from tests._mysql import plain_root
    from tests.conftest import ro_url

    query = (
        "SELECT c.*, NULL AS nothing, 1.5 AS f, CAST(2.25 AS DECIMAL(6,2)) AS d"
        " FROM customers c ORDER BY 1 LIMIT {n}"
    )
    raw = plain_root(mysql_db)
    try:
        with hybridwb.connect(
            source=ro_url(mysql_db).render_as_string(hide_password=False), cwd=tmp_path
        ) as wb:
            for n in (1, 7):
                got = wb.sql(query.format(n=n))
                with raw.cursor() as cur:
                    cur.execute(query.format(n=n))
                    want = pd.DataFrame.from_records(
                        list(cur.fetchall()), columns=[d[0] for d in cur.description]
                    )
                assert len(want) == n
                pd.testing.assert_frame_equal(pd.DataFrame(got), want, check_exact=True)
    finally:
        raw.close()
