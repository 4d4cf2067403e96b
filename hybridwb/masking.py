"""Personal values as hybridwb shows them: one rule, used by every display path.

A masked value keeps its first character and stands the rest in with `*` (at most eight,
so the length of an address or a number is not told either): `010-1234-5678` ->
`0********`, `kim@example.com` -> `k********`. The grid, the shared table renderer, the
search result's text and HTML views and jupysql's `%sql` output all mask through here; the
values themselves stay in the DataFrame or the result, to be read explicitly.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import sys
from decimal import Decimal
from typing import Any

#: the values a driver gives, whose `pd.isna` is `value != value` (NaN): read without
#: pandas, so a run that renders them never imports it (pandas and numpy: ~0.25 s)
_PLAIN = frozenset({int, bool, float, Decimal, dt.date, dt.datetime, dt.time, dt.timedelta})


def is_null(value: Any) -> bool:
    """None, NaN, pandas NA/NaT: shown as an empty cell."""
    if value is None:
        return True
    if isinstance(value, str | bytes | list | tuple | dict):
        return False
    if type(value) in _PLAIN:  # exactly these types: pd.NaT is a datetime subclass
        if value != value:  # a float or Decimal NaN (a signalling NaN raises, as in pandas)
            return True
        # an infinity is NA only under pandas 2's `mode.use_inf_as_na`: pandas decides it
        if not (type(value) is float and math.isinf(value) and "pandas" in sys.modules):
            return False
    import pandas as pd

    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def mask(value: Any) -> str:
    """A masked stand-in that keeps only the first character (the shape, not the value)."""
    if is_null(value):
        return ""
    text = str(value)
    if len(text) <= 1:
        return "*"
    return text[0] + "*" * min(len(text) - 1, 8)


__all__ = ["is_null", "mask"]


class _NoRows(logging.Filter):
    """Drops SQLAlchemy's DEBUG record of each row a result reads (`Row (...)`): it holds
    customer values (a target's phone, a send record's message), which the engines'
    `hide_parameters` does not cover. Statements and column names still log, a statement
    with its literals as `?` (`querylog.literals_hidden`): the source's engine sends the
    text with the bound values pasted in, and SQLAlchemy logs the text it sends."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.msg
        if not isinstance(msg, str):
            return True
        if msg.endswith("Row %r"):
            return False
        if not record.args:  # a statement is logged as the record's whole message
            from hybridwb.source.querylog import literals_hidden

            record.msg = literals_hidden(msg)
        return True


def engine_logging_name() -> str:
    """The `logging_name` every engine of hybridwb is made with: its records go through
    `sqlalchemy.engine.Engine.hybridwb`, which logs no row (`_NoRows`, added once)."""
    logger = logging.getLogger("sqlalchemy.engine.Engine.hybridwb")
    if not any(isinstance(f, _NoRows) for f in logger.filters):
        logger.addFilter(_NoRows())
    return "hybridwb"
