"""Bound values (pure): each as the plain Python value a driver writes exactly, or refused.

The drivers write a value by its exact type. PyMySQL looks up `type(value)` and writes any
type it does not know as `str(value)`, quoted: a pandas `NaT` went as the text 'NaT'
(matching nothing), a `Timestamp` with a zone or nanoseconds as its own text, an
`np.float64` as text, and a subclass of int, float or datetime as whatever its `__str__`
said. sqlite3 binds a numpy number as a BLOB of its bytes and a float NaN as NULL. So
each value is made one of the plain types first, from its value (never its `__str__`), or
refused in one line when it has no exact meaning: a missing value (`NaT`, `pd.NA`), a
time with nanoseconds, a numpy float narrower than 64 bits, a Decimal wider than MySQL's
DECIMAL (whose text would also be megabytes: `Decimal('1E+100000000')`). Bytes in another
buffer (a bytearray, a memoryview of bytes) are bytes on every side (`buffer_bytes`).
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import sys
import uuid
from collections.abc import Mapping
from typing import Any

from hybridwb.errors import BindError
from hybridwb.validation import INT64

#: the types every driver writes exactly as themselves
PLAIN = (str, int, float, bool, decimal.Decimal, dt.date, dt.datetime, dt.time, bytes)
#: MariaDB's widest DECIMAL: 65 digits, 38 of them after the point
DECIMAL_DIGITS = 65
DECIMAL_SCALE = 38


def exact_value(name: str, item: object, *, store: bool = False) -> Any:
    """`item` as a value of one of the `PLAIN` types (or None), equal to what it means.

    `store`: for the platform store's binds, which hold NaN, infinities and any Decimal
    exactly on PostgreSQL (`store_value` then decides for SQLite), and whose driver adapts
    more types (uuid, timedelta): those are left as they are."""
    kind = type(item)
    if item is None or kind is bool or kind is bytes:
        return item
    if kind is str:
        _check_text(name, item)  # type: ignore[arg-type]
        return item
    if kind is int:
        if item not in INT64:
            big = "text" if store else "a Decimal or text"
            raise BindError(
                f"Parameter {name!r} is a whole number beyond 64 bits; bind it as {big}.",
                name=name,
            )
        return item
    if kind is float:
        if not store and not math.isfinite(item):  # type: ignore[arg-type]
            raise BindError(f"Parameter {name!r} is {item}; bind a finite number.", name=name)
        return item
    if kind is decimal.Decimal:
        if not store:
            _check_decimal(name, item)  # type: ignore[arg-type]
        return item
    if kind is dt.datetime or kind is dt.date or kind is dt.time:
        return item
    missing = _missing(item)
    if missing:
        raise BindError(
            f"Parameter {name!r} is {missing} (a missing value); bind None for NULL "
            "(IS NULL finds it), or a real value.",
            name=name,
        )
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(item, numpy.generic) and not isinstance(item, PLAIN):
        if isinstance(item, numpy.bool_ | numpy.integer):
            return exact_value(name, item.item(), store=store)
        raise BindError(
            f"Parameter {name!r} is a numpy {kind.__name__}, which has no exact plain value; "
            "bind value.item() converted to a float, int, str or datetime.",
            name=name,
        )
    if numpy is not None and isinstance(item, numpy.ndarray):
        # (sqlite3 bound one as a BLOB of its bytes)
        raise BindError(
            f"Parameter {name!r} is a numpy array; pass a list (value.tolist()) after IN.",
            name=name,
        )
    if isinstance(item, bytearray | memoryview):
        return buffer_bytes(name, item)
    plain = _plain(name, item)
    if plain is not None:
        return exact_value(name, plain, store=store)
    if store:
        return _store_only(name, item)
    raise BindError(
        f"Parameter {name!r} is a {kind.__name__}; bind a str, number, date, or a list of them.",
        name=name,
    )


def driver_params(params: Any) -> Any:
    """The MySQL driver's own parameters (a dict or a sequence, as SQLAlchemy hands them to
    the cursor) with every value as `exact_value` gives it, a sequence value (an IN list)
    item by item: for statements a caller sends through the source's engine
    (`pd.read_sql(sql, wb.source.engine, params=...)`, SQLAlchemy Core), which reach
    PyMySQL as given, and PyMySQL writes a type it does not know as `str(value)` (`pd.NaT`
    as 'NaT', a float subclass as its `__str__`). `wb.sql` checks its binds before this."""
    if isinstance(params, dict):
        return {k: _driver_value(str(k), v) for k, v in dict.items(params)}
    listed = items_of(params)
    if listed is not None:
        return tuple(_driver_value(f"#{i}", v) for i, v in enumerate(listed, 1))
    return params


def driver_sql_params(params: Any) -> Any:
    """`Connection.exec_driver_sql`'s parameters as SQLAlchemy takes them, or refused in one
    line: SQLAlchemy raised a raw `ArgumentError` (which pandas wrapped in its own
    `DatabaseError`) for a params object that is neither a tuple, a mapping nor a list (a
    `pd.Series`, an `np.ndarray`) and for a list of values rather than of rows. A list of
    values is one row of positional values, as pandas documents `params` and as the
    DB-API drivers take a list (its values are then checked like a tuple's)."""
    if params is None or isinstance(params, tuple | Mapping):
        return params
    if isinstance(params, list):
        listed = list(list.__iter__(params))
        if not listed or isinstance(listed[0], tuple | Mapping):
            return params  # rows (executemany), for SQLAlchemy and the guard to judge
        return tuple(listed)
    raise _shape_error(
        params, "a tuple of values or a dict of named values (a Series: tuple(params.tolist()))"
    )


def core_params(params: Any) -> Any:
    """`Connection.execute`'s parameters (a dict, or a list of dicts), or refused in one line
    where SQLAlchemy raised a raw `ArgumentError` ("mapping or list expected")."""
    if params is None or isinstance(params, Mapping):
        return params
    if isinstance(params, list | tuple):
        listed = list(list.__iter__(params) if isinstance(params, list) else tuple.__iter__(params))
        if not listed or isinstance(listed[0], Mapping):
            return params
    raise _shape_error(params, "a dict of named values (:name in the statement)")


def _shape_error(params: object, wanted: str) -> BindError:
    kind = type(params).__name__
    return BindError(
        f"The statement's parameters are a {kind}; pass {wanted}.",
        name="params",
    )


def held_params(params: Any) -> Any:
    """SQLAlchemy's execute parameters (a dict) with each list, tuple, set or frozenset
    value (and each one inside it: a tuple IN's rows) as the items it holds (`items_of`),
    for SQLAlchemy to expand; anything else as given."""
    if not isinstance(params, dict):
        return params
    return {k: _held(v, 2) for k, v in dict.items(params)}


def _held(value: Any, depth: int) -> Any:
    listed = items_of(value)
    if listed is None or depth == 0:
        return value
    kind = tuple if isinstance(value, tuple) else list
    if type(value) in (list, tuple) and not any(items_of(i) is not None for i in listed):
        return value  # (the common case: a plain list of plain values, as given)
    return kind(_held(item, depth - 1) for item in listed)


def _driver_value(name: str, value: Any) -> Any:
    listed = items_of(value)
    if listed is not None:
        return tuple(exact_value(name, item) for item in listed)
    return exact_value(name, value)


def items_of(value: object) -> list[Any] | None:
    """The items a list, tuple, set or frozenset holds, read by its base type's own
    iterator, or None for any other value. A subclass's `__iter__` (or `__len__`) may say
    other items than it holds: `(1, 2)` bound as (1), which IN matched silently less."""
    if isinstance(value, list):
        return list(list.__iter__(value))
    if isinstance(value, tuple):
        return list(tuple.__iter__(value))
    if isinstance(value, set):
        return list(set.__iter__(value))
    if isinstance(value, frozenset):
        return list(frozenset.__iter__(value))
    return None


def _store_only(name: str, item: object) -> Any:
    """The values only the store's binds take besides the `PLAIN` ones: a uuid (its ids)
    and a timedelta, which psycopg adapts exactly (`sqlite_store_value` decides for
    SQLite). Anything else (a dict, a Fraction, an
    address object) is refused here in one line that says what to bind: psycopg said only
    "cannot adapt type", and sqlite3 "type is not supported", naming no parameter."""
    kind = type(item)
    if kind is uuid.UUID or kind is dt.timedelta:
        return item
    raise BindError(
        f"Parameter {name!r} is of type {kind.__name__}; bind a str, number, date, uuid or bytes, "
        "or a list of them (a dict or list as JSON: json.dumps(value)).",
        name=name,
    )


def buffer_bytes(name: str, item: bytearray | memoryview) -> bytes:
    """The one rule for bytes in another buffer, on the source and the store alike: a
    bytearray, or a memoryview of single bytes, binds as the bytes it holds (read by the
    base type, never a subclass's `__bytes__`); PyMySQL wrote a bytearray as the text
    "bytearray(b'...')". A memoryview of wider items (an array of ints or floats) means its
    numbers, whose bytes depend on the machine: refused, as a released one is."""
    if isinstance(item, bytearray):
        return bytes(bytearray.copy(item))
    try:
        if item.format in ("B", "b", "c"):
            return item.tobytes()
        held = f"of {item.format!r} items"
    except ValueError:  # (released)
        held = "that was released"
    raise BindError(
        f"Parameter {name!r} is a memoryview {held}, not bytes; bind value.tobytes() for "
        "its bytes or value.tolist() for its values.",
        name=name,
    )


def _plain(name: str, item: object) -> Any:
    """A subclass's value as the plain type it extends (read from the value, never through
    the subclass's own methods), or None."""
    if isinstance(item, str):
        return str.__str__(item)
    if isinstance(item, int):  # an IntEnum, a numpy-free int subclass
        return int.__int__(item)
    if isinstance(item, float):  # np.float64
        return float.__float__(item)
    if isinstance(item, decimal.Decimal):
        return decimal.Decimal(item)
    if isinstance(item, bytes):
        return bytes(memoryview(item))
    if isinstance(item, dt.datetime):  # a pandas Timestamp
        if getattr(item, "nanosecond", 0):
            raise BindError(
                f"Parameter {name!r} is a time with nanoseconds, which no database here "
                "keeps; bind value.floor('us') (or round it to microseconds).",
                name=name,
            )
        return dt.datetime(
            item.year,
            item.month,
            item.day,
            item.hour,
            item.minute,
            item.second,
            item.microsecond,
            item.tzinfo,
            fold=item.fold,
        )
    if isinstance(item, dt.date):
        return dt.date(item.year, item.month, item.day)
    if isinstance(item, dt.time):
        return dt.time(
            item.hour, item.minute, item.second, item.microsecond, item.tzinfo, fold=item.fold
        )
    return None


def _missing(item: object) -> str | None:
    """'pd.NaT' or 'pd.NA' for pandas' missing values (NaT is a datetime, and went as the
    text 'NaT'), else None."""
    pandas = sys.modules.get("pandas")
    if pandas is None:
        return None
    if item is pandas.NaT:
        return "pd.NaT"
    if item is pandas.NA:
        return "pd.NA"
    return None


def _check_text(name: str, item: str) -> None:
    if not item.isascii():
        try:
            item.encode("utf-8")
        except UnicodeEncodeError:
            raise BindError(
                f"Parameter {name!r} is not valid text (it holds a lone surrogate); "
                "retype the odd character.",
                name=name,
            ) from None


def _check_decimal(name: str, item: decimal.Decimal) -> None:
    """A finite Decimal a MySQL DECIMAL holds (65 digits, 38 after the point, trailing
    zeros aside). A wider one was written out in full (`1E+100000000`: 100 MB of digits,
    minutes of tokenizing) and then clamped or cut by the server (`1E+100` bound as 65
    nines, `1E-80` as 0)."""
    if not item.is_finite():
        raise BindError(f"Parameter {name!r} is {item}; bind a finite number.", name=name)
    _, digits, exponent = item.as_tuple()
    assert isinstance(exponent, int)  # (finite)
    zeros = len(digits) - len(bytes(digits).rstrip(b"\x00"))
    scale = max(0, -(exponent + min(zeros, len(digits) - 1)))
    whole = max(0, len(digits) + exponent)
    if scale > DECIMAL_SCALE or whole + scale > DECIMAL_DIGITS:
        raise BindError(
            f"Parameter {name!r} is a Decimal beyond what a MySQL DECIMAL holds "
            f"({DECIMAL_DIGITS} digits, {DECIMAL_SCALE} after the point); bind a float or text.",
            name=name,
        )


def sqlite_number(name: str, item: decimal.Decimal) -> int | float:
    """A Decimal as the number SQLite keeps for it (sqlite3 binds no Decimal: "type '?' is
    not supported"): a whole one within 64 bits as an int; else a float when the Decimal
    is that float's shortest text (what SQLite makes of the same literal); else refused."""
    if item.is_finite():
        if item == item.to_integral_value():
            whole = int(item)
            if whole in INT64:
                return whole
        else:
            number = float(item)
            if decimal.Decimal(repr(number)) == item:
                return number
    raise BindError(
        f"Parameter {name!r} is a Decimal SQLite keeps no exact copy of (its numbers are "
        "64-bit); bind a float, an int or text.",
        name=name,
    )


def sqlite_store_value(name: str, item: Any) -> Any:
    """What the SQLite store compares exactly: a Decimal as `sqlite_number`, a uuid as the
    32 hex digits the store's id columns hold; a float NaN refused (sqlite3 binds it as
    NULL, which matches nothing)."""
    if type(item) is decimal.Decimal:
        return sqlite_number(name, item)
    if type(item) is uuid.UUID:
        return item.hex
    if type(item) is dt.timedelta:  # (sqlite3: "type is not supported", naming no parameter)
        raise BindError(
            f"Parameter {name!r} is a timedelta, which the SQLite store has no type for; "
            "bind its seconds (value.total_seconds()) or a datetime.",
            name=name,
        )
    if type(item) is float and math.isnan(item):
        raise BindError(
            f"Parameter {name!r} is nan, which SQLite binds as NULL; bind None for NULL "
            "(IS NULL finds it), or a number.",
            name=name,
        )
    return item
