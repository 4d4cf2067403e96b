"""Rows of the one guarded read path as a DataFrame with Arrow dtypes (`wb.sql(..., arrow=True)`).

Why not connectorx: its MySQL reader does not always send the text it was given. Watched in
MariaDB's general_log (tests/test_fastpath.py): with `return_type="pandas"` it first runs
`SELECT count(*) FROM (<the statement re-printed by its own SQL parser>) AS CXTMPTAB_COUNT`,
which runs the whole statement without the row cap; and whenever the server cannot prepare
the statement it sends `<the statement> LIMIT 0` *before* its pre-execution queries, that is
on a session that is not yet READ ONLY nor time-limited. Both break "the server executes
exactly the text the guard approved, on a read-only, time-limited, capped session". (Its
`return_type="arrow"` on a preparable statement sends Prepare, the SETs, Execute of the
exact text; but no result can be ended past the cap, so `LIMIT 10000000` is read whole.)

So the Arrow path is the normal path: the same guard, final-text check, session, server-side
cap and query log (`Source._run`), with the rows turned into Arrow arrays column by column.
With the `mysqlclient` driver (`mysql+mysqldb://`), numbers and dates are not turned into
Python objects at all: that one result keeps them as the server's text, and Arrow parses
each column in one vectorised cast by its MySQL type (strings are decoded in C). The rows
are read in chunks of `CHUNK` (`Batches`), each turned into Arrow arrays as soon as it
arrives and then dropped, with the cyclic garbage collector paused meanwhile: the Python
values of a chunk are freed while they are still in the CPU cache, and the collector does not
walk a heap of 200,000 row tuples again and again. See benchmarks/bench_fastpath.py for what
this costs against connectorx.

Column types (Arrow, inferred from the values MySQL's column type gives the driver):

| MySQL | `arrow=True` | normal path (`arrow=False`) |
|---|---|---|
| TINYINT…BIGINT | int64[pyarrow] (NULL stays <NA>) | int64, or float64 when a NULL is present |
| BIGINT UNSIGNED above 2**63 | uint64[pyarrow] | object |
| FLOAT, DOUBLE | double[pyarrow] | float64 |
| DECIMAL(p, s) | decimal128(38, s) on mysqlclient (decimal256(76, s) when p + 1 > 38: DECIMAL(38, s) and wider); on PyMySQL decimal128 with p and s from the values | object (Decimal) |
| CHAR, VARCHAR, TEXT, ENUM, SET, JSON | string[pyarrow] | object (str); `str` on pandas 3 |
| BINARY, VARBINARY, BLOB, BIT | binary[pyarrow] | object (bytes) |
| DATE | date32[day][pyarrow] | object (datetime.date) |
| DATETIME, TIMESTAMP | timestamp[us][pyarrow] | datetime64[us] |
| TIME | duration[us][pyarrow] | timedelta64[us] |
| a column of only NULLs | on mysqlclient its MySQL type; on PyMySQL null[pyarrow] | object (None) |
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from hybridwb.errors import QueryError
from hybridwb.extras import require

if TYPE_CHECKING:
    import pandas as pd


def frame(
    keys: list[str], rows: list[Any], described: tuple[Any, ...] | None = None
) -> pd.DataFrame:
    """A DataFrame with Arrow dtypes from driver rows (tuples), built column by column.

    `described`: the cursor description when numbers and dates are still the server's text
    (mysqlclient, `drivers.raw_text_values`); Arrow then parses each such column in one
    vectorised cast, by its MySQL type."""
    import pandas as pd

    pa = require("pyarrow", "wb.sql(..., arrow=True)")
    if isinstance(rows, Batches):
        table = pa.Table.from_arrays(rows.arrays(), names=[str(k) for k in keys])
        return table.to_pandas(types_mapper=pd.ArrowDtype)
    columns = _columns(rows, len(keys))
    if described is None:
        arrays = [_array(pa, column, position) for position, column in enumerate(columns, 1)]
    else:
        arrays = [
            _parsed(pa, column, position, description)
            for position, (column, description) in enumerate(
                zip(columns, described, strict=True), 1
            )
        ]
    table = pa.Table.from_arrays(arrays, names=[str(k) for k in keys])
    return table.to_pandas(types_mapper=pd.ArrowDtype)


#: rows turned into columns at a time: a block's tuples are still in the CPU cache when
#: they are read (zip of all 200,000 rows at once, or one itemgetter pass per column over
#: all of them, reads every row from memory again; a block is about twice as fast)
BLOCK = 256


def _columns(rows: list[Any], width: int) -> list[list[Any]]:
    """The rows' values column by column, in row order."""
    columns: list[list[Any]] = [[] for _ in range(width)]
    if width == 0:
        return columns
    for start in range(0, len(rows), BLOCK):
        for column, part in zip(
            columns, zip(*rows[start : start + BLOCK], strict=True), strict=True
        ):
            column.extend(part)
    return columns


#: rows fetched and turned into Arrow arrays at a time on mysqlclient (`Batches`): large enough
#: that Arrow's per-call cost vanishes, small enough that a chunk's Python values are freed
#: while still in the CPU cache (measured: 65,536 beat 4,096 and 16,384 and one whole pass)
CHUNK = 65_536


class Batches:
    """A result read chunk by chunk and kept as Arrow arrays (mysqlclient's raw text).

    `len()` is the number of rows kept. Every chunk of a column is parsed by the same MySQL
    type; a chunk of only NULLs (null type), or one whose integers or decimals needed the
    wider type, is cast to the column's one type when the arrays are joined."""

    def __init__(self, described: tuple[Any, ...]) -> None:
        self.described = described
        self.chunks: list[list[Any]] = [[] for _ in described]
        self.count = 0

    def __len__(self) -> int:
        return self.count

    @property
    def nbytes(self) -> int:
        return sum(chunk.nbytes for column in self.chunks for chunk in column)

    def add(self, rows: Sequence[Any]) -> None:
        pa = require("pyarrow", "wb.sql(..., arrow=True)")
        columns = _columns(list(rows), len(self.described))
        for position, (column, description, chunks) in enumerate(
            zip(columns, self.described, self.chunks, strict=True), 1
        ):
            chunks.append(_parsed(pa, column, position, description))
        self.count += len(rows)

    def arrays(self) -> list[Any]:
        """One chunked array per column."""
        pa = require("pyarrow", "wb.sql(..., arrow=True)")
        return [_joined(pa, chunks, position) for position, chunks in enumerate(self.chunks, 1)]


def fetch_batches(cursor: Any, limit: int, keep: int) -> tuple[Batches, int]:
    """Up to `limit` rows from an unbuffered mysqlclient cursor whose numbers and dates are
    the server's text; the first `keep` of them as `Batches`. Returns them with the number
    of rows fetched (more than `keep` tells the caller the result was cut)."""
    batches = Batches(tuple(cursor.description))
    fetched = 0
    with _collector_paused():
        while fetched < limit:
            rows = cursor.fetchmany(min(CHUNK, limit - fetched))
            if not rows:
                break
            wanted = keep - fetched
            fetched += len(rows)
            if wanted > 0:
                batches.add(rows[:wanted] if len(rows) > wanted else rows)
            del rows  # freed before the next chunk is read
    if not batches.count:
        batches.add(())  # no rows: the columns still get their MySQL types
    return batches, fetched


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off for the block (row tuples and their values make no
    cycles; each chunk's are freed by reference counting), on again after it if it was."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


_WIDER = {"int64": "uint64", "decimal128": "decimal256"}


def _joined(pa: Any, chunks: list[Any], position: int) -> Any:
    """A column's chunks as one chunked array of one type (see `Batches`)."""
    types = {chunk.type for chunk in chunks} - {pa.null()}
    if len(types) <= 1:
        kind = types.pop() if types else pa.null()
    else:  # BIGINT UNSIGNED past 2**63, or DECIMAL past 38 digits, in some chunks only
        kind = max(types, key=lambda t: str(t).split("(")[0] in _WIDER.values())
    try:
        return pa.chunked_array([c if c.type == kind else c.cast(kind) for c in chunks], kind)
    except pa.ArrowException:
        pass
    raise QueryError(
        f"Column {position} holds values Arrow cannot keep in one type; "
        "run the query with arrow=False."
    )


_INTEGER = frozenset({1, 2, 3, 8, 9, 13})  # TINY, SHORT, LONG, LONGLONG, INT24, YEAR
_FLOAT = frozenset({4, 5})
_DECIMAL = frozenset({0, 246})
_DATE = frozenset({10, 14})
_DATETIME = frozenset({7, 12})  # TIMESTAMP, DATETIME


def _parsed(pa: Any, values: list[Any], position: int, description: Any) -> Any:
    """One column of server text (bytes) parsed by its MySQL type code."""
    type_code, scale = description[1], description[5]
    if type_code not in _INTEGER | _FLOAT | _DECIMAL | _DATE | _DATETIME:
        return _array(pa, values, position)  # already Python values (strings, TIME, BLOB)
    pc = require("pyarrow.compute", "wb.sql(..., arrow=True)")
    # bytes in as binary, then checked as UTF-8 in one vectorised cast: about half the
    # time of handing each bytes object to a string array
    try:
        text = pa.array(values, type=pa.binary()).cast(pa.string())
        if type_code in _INTEGER:
            try:
                return pc.cast(text, pa.int64())
            except pa.ArrowInvalid:  # BIGINT UNSIGNED above 2**63
                return pc.cast(text, pa.uint64())
        if type_code in _FLOAT:
            return pc.cast(text, pa.float64())
        if type_code in _DECIMAL:
            # chosen by the column's declared size, never by trying: Arrow's cast to
            # decimal128 does not fail on a value past 38 digits, it wraps it silently
            # (a 55-digit value read back as a 37-digit one, tests/test_arrow_types.py)
            wide = _digits(description) > 38
            return pc.cast(text, pa.decimal256(76, scale) if wide else pa.decimal128(38, scale))
        # MySQL's zero dates ('0000-00-00') are NULL, as the drivers make them
        kind = pa.date32() if type_code in _DATE else pa.timestamp("us")
        try:
            return pc.cast(pc.if_else(pc.starts_with(text, "0000-00-00"), None, text), kind)
        except pa.ArrowInvalid:
            return _as_driver_reads(pa, text, kind)
    except pa.ArrowException:
        pass
    raise QueryError(
        f"Column {position} holds values Arrow cannot read as its MySQL type; "
        "run the query with arrow=False."
    )


def _digits(description: Any) -> int:
    """At most how many digits a DECIMAL column's values have: its display length (digits,
    point, sign) less the point; the sign is counted as a digit, to be safe."""
    length, scale = description[3] or 99, description[5] or 0
    return int(length) - (1 if scale else 0)


def _as_driver_reads(pa: Any, text: Any, kind: Any) -> Any:
    """Dates Arrow cannot read that the server keeps (a zero in the date, '2024-00-15', or
    a day past the month's end under ALLOW_INVALID_DATES) read value by value by
    mysqlclient's own converter, as the normal path reads them: NULL where it gives None."""
    times = require("MySQLdb.times", "wb.sql(..., arrow=True)")
    read = times.Date_or_None if kind == pa.date32() else times.DateTime_or_None
    return pa.array([None if v is None else read(v) for v in text.to_pylist()], type=kind)


def _array(pa: Any, values: list[Any], position: int) -> Any:
    """One column as an Arrow array; BIGINT UNSIGNED above 2**63 as uint64.

    Text and bytes are given their type (the first value that is not NULL says which):
    Arrow then skips a pass that infers it, a third of the time of such a column."""
    first = next((v for v in values if v is not None), None)
    given = pa.string() if type(first) is str else pa.binary() if type(first) is bytes else None
    if given is not None:
        try:
            return pa.array(values, type=given)
        except pa.ArrowException:
            pass  # not all of one kind: inferred below (and refused if it has no one type)
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
