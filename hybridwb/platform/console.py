"""`%%platform` / `store.sql`: SQL typed by a person, run on the platform store.

Reads pass two layers, each holding on its own:

1. the guard (readonly.py) admits only plain SELECTs calling harmless functions, and
   refuses the rest before anything is sent;
2. the read runs in a `READ ONLY` transaction with `SET LOCAL statement_timeout` on
   Postgres (then rolls back, so even a session setting changed inside it is undone), or
   under `PRAGMA query_only` with a time limit on SQLite.

Statements that write need `write=True` (`--write`); they run in one transaction together
with an `audit_log` row, like every other store write. Literals are removed from the
audited text, so no customer value lands in the audit log.
"""

from __future__ import annotations

import functools
import math
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import BindParameter, Connection, bindparam, func, insert, select, text
from sqlglot import exp

from hybridwb.errors import BindError, ValidationError
from hybridwb.platform import schema
from hybridwb.platform.readonly import classify, refusal
from hybridwb.platform.schema import now
from hybridwb.platform.times import UnstorableTime, labelled, utc_text
from hybridwb.source.transpile import sqlite_value
from hybridwb.source.values import exact_value, items_of, sqlite_store_value
from hybridwb.validation import short

if TYPE_CHECKING:
    import pandas as pd

    from hybridwb.platform.backend import SqlBackend

DEFAULT_TIMEOUT = 30.0
MAX_TIMEOUT = 600.0
#: rows a store read returns at most (the result says when it was cut)
ROW_CAP = 100_000
#: the values one statement binds at most: PostgreSQL's protocol counts them in 16 bits
#: (psycopg: "number of parameters must be between 0 and 65535", which the store reported
#: as "unreachable ... Is it running?"); SQLite's is its build's limit (read on first use)
PG_MAX_BINDS = 65_535


def store_text(value: Any) -> Any:
    """A value bound on the SQLite store: a datetime as the text the store's time columns
    hold (`times.utc_text`: `YYYY-MM-DD HH:MM:SS.ffffff`, in UTC; a naive one is UTC, as
    every store timestamp is), a date or time as its text (`sqlite_value`), anything
    else as it is. A `text()` clause's binds have no type, so a datetime went to sqlite3's
    process-wide adapter: `T` after `nbformat.sign`, no microseconds by default (`<=` and
    `=` lost the equal stored value), `+00:00` when aware, a failure for a Timestamp."""
    if isinstance(value, datetime):
        return utc_text(value)
    return sqlite_value(value)


def _clause(
    query: str, params: dict[str, Any] | None, *, sqlite: bool = False
) -> tuple[Any, dict[str, Any]]:
    clause = text(query)
    names = set(clause._bindparams)
    given = {k: v for k, v in (params or {}).items() if k in names}
    missing = sorted(names - given.keys())
    if missing:
        raise BindError(f":{missing[0]} has no value; define it first.")
    numpy = sys.modules.get("numpy")  # (a value cannot be numpy's unless it is loaded)
    for name, value in given.items():
        held = items_of(value)  # (the items it holds, not its subclass's `__iter__`)
        listed = held is not None
        items = held if held is not None else [value]
        for i, item in enumerate(items):
            if numpy is not None and isinstance(item, numpy.datetime64):
                # SQLite bound it as a BLOB (numpy's buffer), which no stored text equals
                raise BindError(
                    f"Parameter {name!r} is a datetime64; bind a datetime "
                    "(pd.Timestamp(value).to_pydatetime()) or a str."
                )
            # the value itself, not its subclass's or numpy's (sqlite3 bound an np.int64
            # as a BLOB of its bytes, and pd.NaT as the text 'NaT')
            item = items[i] = exact_value(name, item, store=True)
            if sqlite:
                item = items[i] = sqlite_store_value(name, item)
            if isinstance(item, str) and "\x00" in item:
                # PostgreSQL text cannot hold one (psycopg's message named no parameter);
                # an SQLite store is refused alike, as for every text the store keeps
                raise BindError(
                    f"Parameter {name!r} holds a NUL character (\\x00), which the store's "
                    "text cannot hold; remove it (value.replace('\\x00', ''))."
                )
        # a set binds as a list (SQLAlchemy's expanding bind indexes it)
        given[name] = items if listed else items[0]
    _check_bind_count(given, sqlite)
    lists: list[BindParameter[Any]] = [
        bindparam(k, expanding=True) for k, v in given.items() if isinstance(v, list | tuple)
    ]
    if not sqlite:  # PostgreSQL: a naive time is the store's UTC, not the session's zone
        for name, value in given.items():
            given[name] = (
                [labelled(v) for v in value] if isinstance(value, list | tuple) else labelled(value)
            )
    else:
        for name, value in given.items():
            try:
                given[name] = (
                    [store_text(v) for v in value]
                    if isinstance(value, list | tuple)
                    else store_text(value)
                )
            except UnstorableTime as exc:  # UTC past year 9999 (or before 1), or NaT
                raise BindError(
                    f"Parameter {name!r} is a time beyond the years 1 to 9999 in UTC; "
                    "bind a time within them."
                    if exc.fields.get("reason") == "range"
                    else f"Parameter {name!r} is a missing time (NaT); bind a datetime."
                ) from None
    return (clause.bindparams(*lists) if lists else clause), given


def _check_bind_count(given: dict[str, Any], sqlite: bool) -> None:
    """Refuse, naming the longest list, a statement binding more values than the store's
    driver sends in one (an IN list of 70,000 ids on PostgreSQL)."""
    sizes = {k: len(v) if isinstance(v, list) else 1 for k, v in given.items()}
    total = sum(sizes.values())
    if total <= PG_MAX_BINDS:
        return
    limit = _sqlite_max_binds() if sqlite else PG_MAX_BINDS
    if total > limit:
        name = max(sizes, key=sizes.__getitem__)
        raise BindError(
            f"Parameter {name!r} holds {sizes[name]:,} values; the store binds at most "
            f"{limit:,} in one statement. Split the list, or join on a table instead.",
            name=name,
        )


@functools.cache
def _sqlite_max_binds() -> int:
    """This SQLite build's limit on the values one statement binds."""
    import sqlite3

    probe = sqlite3.connect(":memory:")
    try:
        return probe.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    finally:
        probe.close()


def _timeout(timeout: float | None) -> float:
    if timeout is None:
        return DEFAULT_TIMEOUT
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or (isinstance(timeout, float) and not math.isfinite(timeout))
        or timeout <= 0
    ):
        raise ValidationError(
            f"timeout must be a positive number of seconds, not {short(timeout)}."
        )
    return float(min(timeout, MAX_TIMEOUT))  # an int beyond a float is capped first


def _limit(limit: int | None) -> int:
    if limit is None:
        return ROW_CAP
    if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
        raise ValidationError(f"limit must be a positive whole number, not {short(limit)}.")
    return min(limit, ROW_CAP)


def redacted(tree: exp.Expr, dialect: str) -> str:
    """The statement with every literal replaced by `?` (for the audit log)."""
    if isinstance(tree, exp.Command):
        return f"{tree.name} …"
    return tree.transform(
        lambda node: exp.Placeholder() if isinstance(node, exp.Literal) else node
    ).sql(dialect)


def _set_limits(conn: Connection, backend: SqlBackend, seconds: float, *, read: bool) -> Any:
    """Session limits for this one transaction; returns an undo for SQLite."""
    if backend.name == "postgresql":
        if read:
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        conn.execute(select(func.set_config("statement_timeout", f"{int(seconds * 1000)}", True)))
        return lambda: None
    raw = conn.connection.dbapi_connection
    assert raw is not None
    deadline = time.monotonic() + seconds
    raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    if read:
        conn.exec_driver_sql("PRAGMA query_only = ON")

    def undo() -> None:
        raw.set_progress_handler(None, 0)
        if read:
            conn.exec_driver_sql("PRAGMA query_only = OFF")

    return undo


def _frame(result: Any, limit: int) -> pd.DataFrame:
    """At most `limit` rows (fetching one more tells whether the result was cut)."""
    import pandas as pd

    if not result.returns_rows:
        return pd.DataFrame({"rows_affected": [result.rowcount]})
    rows = result.fetchmany(limit + 1)
    df = pd.DataFrame.from_records([tuple(r) for r in rows[:limit]], columns=list(result.keys()))
    df.attrs["hybridwb"] = {"rows": len(df), "elapsed_ms": 0.0, "truncated": len(rows) > limit}
    return df


def run_sql(
    backend: SqlBackend,
    query: str,
    params: dict[str, Any] | None = None,
    *,
    write: bool = False,
    limit: int | None = None,
    timeout: float | None = None,
    actor: str = "hybridwb",
) -> pd.DataFrame:
    """Run one statement; reads read-only and time-limited, writes audited."""
    if not isinstance(query, str):
        raise ValidationError("The query must be SQL text.")
    if "\x00" in query:  # SQLite refused it in its own words; PostgreSQL cut the text there
        raise ValidationError(
            "The query holds a NUL character (\\x00); remove it and run it again."
        )
    if params is not None and not isinstance(params, dict):
        raise BindError("params must be a dict of name -> value.")
    dialect = "postgres" if backend.name == "postgresql" else "sqlite"
    tree, verdict = classify(query, dialect)
    if not verdict.read and not write:
        raise refusal(verdict)
    seconds, limit = _timeout(timeout), _limit(limit)
    clause, given = _clause(query, params, sqlite=backend.name == "sqlite")
    started = time.perf_counter()

    def read(conn: Connection, _: int) -> pd.DataFrame:
        undo = _set_limits(conn, backend, seconds, read=True)
        try:
            return _frame(conn.execute(clause, given), limit)
        finally:
            conn.rollback()  # nothing to keep: also undoes any setting changed inside
            undo()

    def change(conn: Connection) -> pd.DataFrame:
        undo = _set_limits(conn, backend, seconds, read=False)
        try:
            df = _frame(conn.execute(clause, given), limit)
        finally:
            undo()
        affected = int(df["rows_affected"].iloc[0]) if "rows_affected" in df else len(df)
        conn.execute(
            insert(schema.audit_log).values(
                id=uuid.uuid4(),
                actor=actor,
                action="sql",
                entity="sql",
                entity_id=None,
                before=None,
                after={"statement": redacted(tree, dialect), "rows": affected},
                at=now(),
            )
        )
        return df

    if verdict.read:
        df = backend.run(read)
    else:
        engine = backend.ready()
        with backend.errors(), engine.begin() as conn:
            df = change(conn)
    meta = df.attrs.setdefault("hybridwb", {"rows": len(df), "truncated": False})
    meta["elapsed_ms"] = (time.perf_counter() - started) * 1000
    return df


def pii_columns(query: str, columns: Sequence[Any], dialect: str) -> set[str]:
    """The result columns of `query` that carry the store's personal data
    (`schema.PII`), followed through aliases, expressions, subqueries and CTEs by
    `hybridwb.lineage`. A table outside the store's schema (a user's own table or view,
    a catalogue) is not known: its columns are masked, as is whatever cannot be followed."""
    from hybridwb.lineage import pii_output_columns

    def columns_of(table: str) -> list[str] | None:
        known = schema.metadata.tables.get(table)
        return [c.name for c in known.columns] if known is not None else None

    return pii_output_columns(query, columns, schema.PII, columns_of, dialect=dialect)


__all__ = ["pii_columns", "redacted", "run_sql"]
