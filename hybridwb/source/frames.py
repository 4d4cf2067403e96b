"""A read's rows as a DataFrame, built as `DataFrame.from_records` builds it, for less.

On a 1-row read the frame costs more than the query: `from_records` does steps a list of
driver tuples does not need and, for a subclass (the workbench's `SourceFrame`), builds the
frame a second time (`cls(df, copy=False)`); and each frame makes its column labels into an
`Index` anew. Here driver rows go through the constructor, which converts them with the very
functions `from_records` uses (`to_arrays`, `arrays_to_mgr`), under a column `Index` made
once per list of names and handed to each frame as a view of its own (its `name` is the
frame's; the labels themselves cannot be changed in place).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from cachetools import LRUCache, cached

if TYPE_CHECKING:  # pandas is imported where a frame is built
    import pandas as pd

#: lists of column names whose Index is kept (a notebook repeats a few statements)
COLUMN_INDEXES = 256


@cached(LRUCache(maxsize=COLUMN_INDEXES), lock=threading.Lock())
def _column_index(keys: tuple[str, ...]) -> pd.Index:
    import pandas as pd

    return pd.Index(list(keys))


def frame_of(frame_type: type[pd.DataFrame], keys: list[str], rows: list[Any]) -> pd.DataFrame:
    """The rows as a `frame_type`, equal to `frame_type.from_records(rows, columns=keys)`.
    Driver rows (a non-empty list of plain tuples) take the constructor; anything else
    (no rows, other row types) takes `from_records` itself."""
    if rows and type(rows) is list and type(rows[0]) is tuple:
        return frame_type(rows, columns=_column_index(tuple(keys)).view())
    return frame_type.from_records(rows, columns=keys)
