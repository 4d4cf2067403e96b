"""Rows of the one guarded read path as a DataFrame with Arrow dtypes (`wb.sql(..., arrow=True)`).

Why not connectorx: its MySQL reader does not always send the text it was given. Watched in
MariaDB's general_log (tests/test_fastpath.py): with `return_type="pandas"` it first runs
`SELECT count(*) FROM (<the statement re-printed by its own SQL parser>) AS CXTMPTAB_COUNT`,
which runs the whole statement without the row cap; and whenever the server cannot prepare
the statement it sends `<the statement> LIMIT 0` *before* its pre-execution queries, that is
on a session that is not yet READ ONLY nor time-limited. Both break "the server executes
exactly the text the guard approved, on a read-only, time-limited, capped session".

So the Arrow path is the normal path: the same guard, final-text check, session, server-side
cap and query log (`Source._run`), with the rows turned into Arrow arrays column by column.
With the `mysqlclient` driver (`mysql+mysqldb://`) the rows are decoded in C; see
benchmarks/bench_fastpath.py for what that costs against connectorx.

Column types (Arrow, inferred from the values MySQL's column type gives the driver):

| MySQL | `arrow=True` | normal path (`arrow=False`) |
|---|---|---|
| TINYINT…BIGINT | int64[pyarrow] (NULL stays <NA>) | int64, or float64 when a NULL is present |
| BIGINT UNSIGNED above 2**63 | uint64[pyarrow] | object |
| FLOAT, DOUBLE | double[pyarrow] | float64 |
| DECIMAL | decimal128(p, s)[pyarrow], p and s from the values | object (Decimal) |
| CHAR, VARCHAR, TEXT, ENUM, SET, JSON | string[pyarrow] | object (str); `str` on pandas 3 |
| BINARY, VARBINARY, BLOB, BIT | binary[pyarrow] | object (bytes) |
| DATE | date32[day][pyarrow] | object (datetime.date) |
| DATETIME, TIMESTAMP | timestamp[us][pyarrow] | datetime64[us] |
| TIME | duration[us][pyarrow] | timedelta64[us] |
| a column of only NULLs | null[pyarrow] | object (None) |
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from hybridwb.errors import QueryError
from hybridwb.extras import require


def frame(keys: list[str], rows: list[Any]) -> pd.DataFrame:
    """A DataFrame with Arrow dtypes from driver rows (tuples), built column by column."""
    pa = require("pyarrow", "wb.sql(..., arrow=True)")
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in keys]
    arrays = [_array(pa, column, position) for position, column in enumerate(columns, 1)]
    table = pa.Table.from_arrays(arrays, names=[str(k) for k in keys])
    return table.to_pandas(types_mapper=pd.ArrowDtype)


def _array(pa: Any, values: tuple[Any, ...], position: int) -> Any:
    """One column as an Arrow array; BIGINT UNSIGNED above 2**63 as uint64."""
    try:
        return pa.array(values)
    except OverflowError:
        try:
            return pa.array(values, type=pa.uint64())
        except (OverflowError, pa.ArrowException):
            pass
    except pa.ArrowException:
        pass
    # the column is named by position only: a name may echo a literal from the statement
    raise QueryError(
        f"Column {position} holds values Arrow cannot keep in one type; "
        "run the query with arrow=False."
    )
