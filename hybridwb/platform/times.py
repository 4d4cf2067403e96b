"""The store's times: one instant, one stored value, on every backend.

PostgreSQL keeps a `timestamptz`, an instant, whatever zone it was given in. SQLite has
no time type: SQLAlchemy's DateTime writes a datetime's fields as text
(`YYYY-MM-DD HH:MM:SS.ffffff`) and drops its zone, so a time given in Seoul was kept as
Seoul's wall clock: one instant, two texts, and every comparison of that text (periods,
cooldowns, caps, heartbeats, the query log's ranges, a slot's key) off by the offset.

`StoreTime`, the type of every time column of the schema, writes the UTC wall clock there
(`utc_text`); a naive time is a store time, UTC, as the store reads its own back (SQLite
hands them back naive, `campaigns.as_utc`). The paths that write SQLite's text by hand
(the query log's rows, `%%platform`'s binds) call the same function, so the text form of
a file written before is the text written now: no data is rewritten.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import DateTime, TypeDecorator
from sqlalchemy.dialects.sqlite import DATETIME
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DontWrapMixin

from hybridwb.errors import StoreError, ValidationError

#: SQLAlchemy's default storage format of a DateTime on SQLite (the text every store file
#: holds): what `utc_text` writes
TEXT_FORMAT = "%04d-%02d-%02d %02d:%02d:%02d.%06d"
_SECOND_FORMAT = TEXT_FORMAT.removesuffix(".%06d")


class UnstorableTime(ValidationError, DontWrapMixin):
    """A time the SQLite store cannot write: pandas' NaT, or an aware time whose UTC falls
    outside the years 1 to 9999. `DontWrapMixin`: raised from a bind, it reaches the
    caller as itself, not inside SQLAlchemy's StatementError."""


class UnreadableTime(StoreError, DontWrapMixin):
    """A time column's stored text that is not a time (a row edited by hand)."""


def utc_wall(at: datetime) -> datetime:
    """`at` as the naive UTC wall clock the store keeps: an aware time converted, a naive
    one taken as UTC already. A pandas Timestamp stays one (its nanoseconds are never
    written: `utc_text` takes the microseconds)."""
    try:
        offset = at.utcoffset()
    except ValueError:  # pandas' NaT: "NaTType does not support utcoffset"
        raise UnstorableTime(
            "A missing time (NaT) cannot be stored as a time; pass a datetime or None.",
            reason="missing",
        ) from None
    wall = at.replace(tzinfo=None) if at.tzinfo is not None else at
    if not offset:
        return wall
    try:
        return wall - offset
    except (OverflowError, ValueError):  # pandas: OutOfBoundsDatetime is a ValueError
        raise UnstorableTime(
            f"A time of {at.year:04d} in its zone is beyond the years 1 to 9999 in UTC, "
            "which the store cannot hold; pass a time within them.",
            reason="range",
        ) from None


def labelled(value: Any) -> Any:
    """`value` as a server that keeps instants takes it: a naive datetime labelled UTC
    (what a naive store time means), a pandas Timestamp's nanoseconds dropped.

    PostgreSQL casts a naive time to `timestamptz` in the session's `TimeZone` (`PGTZ`, a
    role's or the database's setting), so a naive time and its UTC twin were two instants
    there; and it rounds a Timestamp's nanoseconds to the microsecond (`.999999999` was
    the next second), where SQLite's text (`utc_text`) truncates them."""
    if isinstance(value, datetime):
        if getattr(value, "nanosecond", 0):
            value = value.replace(nanosecond=0)  # type: ignore[call-arg]
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
    return value


def utc_text(at: datetime) -> str:
    """The text the SQLite store holds for `at`: its UTC wall clock (`utc_wall`) with
    microseconds, `YYYY-MM-DD HH:MM:SS.ffffff`. The one function every SQLite write of a
    time goes through, the column type's and the hand-written paths'."""
    w = utc_wall(at)
    return TEXT_FORMAT % (w.year, w.month, w.day, w.hour, w.minute, w.second, w.microsecond)


def utc_texts(times: list[datetime]) -> list[str]:
    """`utc_text` of each time, the text up to the second made once per second of the
    batch (a query log batch's entries share a few seconds)."""
    seconds: dict[tuple[int, ...], str] = {}
    out = []
    for at in times:
        w = utc_wall(at)
        second = (w.year, w.month, w.day, w.hour, w.minute, w.second)
        head = seconds.get(second)
        if head is None:
            head = seconds[second] = _SECOND_FORMAT % second
        out.append(f"{head}.{w.microsecond:06d}")
    return out


def _sqlite_bind(value: Any) -> str | None:
    """A value bound to a time column on SQLite: SQLAlchemy's DATETIME binds, a datetime
    written as its UTC (`utc_text`)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return utc_text(value)
    if isinstance(value, date):  # a day has no zone: its midnight, as SQLAlchemy writes it
        return TEXT_FORMAT % (value.year, value.month, value.day, 0, 0, 0, 0)
    raise TypeError("SQLite DateTime type only accepts Python datetime and date objects as input.")


class _SqliteUtc(DATETIME):
    """SQLite's DATETIME (same DDL, same text, read back naive) writing the UTC wall clock."""

    def bind_processor(self, dialect: Dialect) -> Any:
        return _sqlite_bind

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        """SQLAlchemy's reading of the text, or one `StoreError`: a row edited by hand
        ('garbage', a number) raised its raw ValueError or TypeError from every read of
        the table (round 51: `hybridwb stats`, the monitor widget)."""
        read = super().result_processor(dialect, coltype)
        if read is None:
            return None

        def checked(value: Any) -> Any:
            try:
                return read(value)
            except (ValueError, TypeError):
                raise UnreadableTime(
                    "A row of the platform store holds a time hybridwb cannot read (edited by "
                    "hand?); fix or delete it with %%platform --write."
                ) from None

        return checked


class StoreTime(TypeDecorator[datetime]):
    """A point in time: `timestamptz` on PostgreSQL, as before; on SQLite the UTC wall
    clock's text (`utc_text`), read back naive (UTC), as before. The DDL of both is
    unchanged (SQLite's `DATETIME`, PostgreSQL's `TIMESTAMP WITH TIME ZONE`)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return _SqliteUtc(timezone=True)
        return self.impl_instance

    def coerce_compared_value(self, op: Any, value: Any) -> Any:
        """A value compared with a time column binds as DateTime would bind it: a datetime
        (or date) as this type, a text as text, a timedelta as an interval (a
        TypeDecorator's default binds every value as itself: a text then failed)."""
        coerced = self.impl_instance.coerce_compared_value(op, value)
        return self if coerced is self.impl_instance else coerced

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        """A naive time is UTC on every backend (`labelled`); on SQLite `utc_text` reads
        it so already, and an aware time is written as the instant it is."""
        return value if dialect.name == "sqlite" else labelled(value)


__all__ = [
    "TEXT_FORMAT",
    "StoreTime",
    "UnstorableTime",
    "labelled",
    "utc_text",
    "utc_texts",
    "utc_wall",
]
