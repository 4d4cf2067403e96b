"""Store backends: the few primitive operations every backend offers.

`SqlBackend` serves SQLite and Postgres (including Supabase's connection string and its
transaction-mode pooler); `RestBackend` (rest.py) serves Supabase's REST API. Repositories
(repos.py) hold validation and auditing and speak only these primitives.
"""

from __future__ import annotations

import itertools
import json
import operator
import os
import re
import sqlite3
import sys
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from pydantic import SecretStr
from sqlalchemy import (
    Connection,
    Engine,
    Table,
    and_,
    create_engine,
    delete,
    event,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, SQLAlchemyError

from hybridwb.errors import (
    AuthError,
    HybridwbError,
    QueryTimeout,
    StoreError,
    ValidationError,
    drop_frames,
)
from hybridwb.masking import engine_logging_name
from hybridwb.platform import idempotent, schema
from hybridwb.platform.retry import attempt_number, is_connectivity, is_transient, sql_retrying
from hybridwb.source.catalogue import server_text

T = TypeVar("T")


def stored_json(text: str | bytes) -> Any:
    """A JSON column's value as the store holds it, or one `StoreError`.

    A row edited by hand (`%%platform --write`, the Supabase console) may hold text that is
    not JSON, a number of more digits than Python reads (4,300) or nesting deeper than the
    stack: json's raw ValueError or RecursionError would otherwise come out of every read of
    the table (`wb.workflows.list()`, the scheduler's `due`)."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
        raise StoreError(
            "A row of the platform store holds a JSON value hybridwb cannot read (edited by "
            "hand?); fix or delete it with %%platform --write."
        ) from None


@dataclass(frozen=True)
class Op:
    """One write: insert `values`, or update/delete the rows matching `where`."""

    kind: Literal["insert", "update", "delete"]
    table: str
    values: dict[str, Any] | None = None
    where: dict[str, Any] | None = None


class Backend(Protocol):
    name: str

    def select(
        self,
        table: str,
        where: dict[str, Any] | None = None,
        *,
        order_by: str | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> list[dict[str, Any]]: ...

    def apply(self, ops: list[Op]) -> None: ...

    def insert_ignore(self, table: str, rows: list[dict[str, Any]], conflict: list[str]) -> int: ...

    def count(self, table: str, where: dict[str, Any] | None = None) -> int: ...

    def close(self) -> None: ...


_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: ([\w.]+(?:, [\w.]+)*)")


#: the key columns of a Postgres unique violation's detail (the values follow, never shown)
PG_UNIQUE_KEY = re.compile(r"Key \(([\w, ]+)\)=\(")


def integrity_message(exc: IntegrityError) -> tuple[str, str | None]:
    """(what collided, field) from a unique/foreign-key violation on any SQL backend.

    Column and constraint names only: Postgres' detail (`Key (recipient)=(010-…)`) and
    its failing row hold the values, so neither is shown."""

    orig = exc.orig
    diag = getattr(orig, "diag", None)
    constraint = getattr(diag, "constraint_name", None)
    match = _SQLITE_UNIQUE.search(str(orig))
    if match:
        cols = [c.split(".")[-1] for c in match.group(1).split(", ")]
        return f"{', '.join(cols)} already exists", cols[-1]
    state = getattr(orig, "sqlstate", None)
    if constraint and (state == "23503" or constraint.endswith("_fkey")):
        return f"refers to a row that does not exist ({constraint})", None
    if constraint and state == "23505":
        field = constraint.removesuffix("_key").split("_")[-1]
        keys = PG_UNIQUE_KEY.match(getattr(diag, "message_detail", None) or "")
        if keys:
            return f"({keys.group(1)}) already exists", field
        return f"a row with the same key already exists ({constraint})", field
    primary = getattr(diag, "message_primary", None) or str(orig)
    return server_text(primary), None


def retrying(fn: Callable[[], T], attempts: int = 3, base_delay: float = 0.2) -> T:
    """Run `fn`, retried on transient faults only (retry.py decides which); for callers
    that open their own transaction. `fn` must be safe to run again (idempotent)."""
    return sql_retrying(attempts, base_delay)(fn)


#: every SQL backend alive in this process, for the fork hook below
_BACKENDS: weakref.WeakSet[SqlBackend] = weakref.WeakSet()


def _forget_parents_pools() -> None:
    """In a forked child (a notebook's `Pool().map`): each backend's pool holds the
    parent's connections. The child drops its copy without closing or checking in anything
    (`dispose(close=False)`, what SQLAlchemy prescribes for a fork), so it opens its own:
    on the parent's session, the child's statements and the parent's read each other's
    replies, and a transaction the child began and never ended was the parent's next.
    Its lock is new too: another thread of the parent (the query log's hand-over, a run's
    store steps) may have held it at the fork, and the child's first use waited forever."""
    for backend in list(_BACKENDS):
        backend._lock = threading.Lock()
        if backend._engine is not None:
            backend._engine.dispose(close=False)


os.register_at_fork(after_in_child=_forget_parents_pools)


class SqlBackend:
    """SQLite or Postgres through SQLAlchemy Core.

    Secrets are held only in `SecretStr`s (the URL keeps no password; `repr` and `vars`
    show none), errors are raised with a scrubbed message `from None` (a traceback with
    locals cannot reach the driver's frames), and engines hide bound parameters.
    """

    def __init__(
        self,
        url: URL,
        secrets: Iterable[str] | None = None,
        *,
        expect_schema: str | None = None,
        attempts: int = 3,
        base_delay: float = 0.2,
    ) -> None:
        self._password = SecretStr(str(url.password)) if url.password is not None else None
        self.url = url._replace(password=None)  # .set(password=None) keeps it
        self.name = url.get_backend_name()
        self._secrets = [SecretStr(s) for s in [*(secrets or []), *self._raw_password()] if s]
        #: the schema revision this code needs; checked once, on first use (None: no check)
        self.expect_schema = expect_schema
        self.attempts = attempts
        self.base_delay = base_delay
        self._engine: Engine | None = None
        self._lock = threading.Lock()
        _BACKENDS.add(self)

    def __repr__(self) -> str:
        return f"SqlBackend({self.description})"

    @property
    def description(self) -> str:
        """The URL without its password, and without the password where else it appears
        (pasted as the database name too): in messages, reprs and tracebacks' locals."""
        return self.scrub(self.url.render_as_string(hide_password=True))

    def _raw_password(self) -> list[str]:
        return [self._password.get_secret_value()] if self._password is not None else []

    @staticmethod
    def _primary(exc: BaseException) -> str:
        """The driver's own message of `exc` (psycopg: the primary one, no LINE/DETAIL)."""
        orig = getattr(exc, "orig", None) or exc
        diag = getattr(orig, "diag", None)
        return str(getattr(diag, "message_primary", None) or orig)

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            raw = secret.get_secret_value()
            if len(raw) >= 3:
                text = text.replace(raw, "***")
        return text

    @property
    def engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = self._create_engine()
        return self._engine

    def _create_engine(self) -> Engine:
        url = self.url.set(password=self._raw_password()[0]) if self._password else self.url
        if self.name == "sqlite":
            if self.url.database:
                Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(
                url,
                connect_args={"timeout": 30},
                hide_parameters=True,
                logging_name=engine_logging_name(),
                json_deserializer=stored_json,
            )

            @event.listens_for(engine, "connect")
            def _pragmas(dbapi_conn: Any, record: Any) -> None:
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA foreign_keys = ON")
                cur.execute("PRAGMA journal_mode = WAL")
                cur.execute("PRAGMA busy_timeout = 30000")
                cur.close()

            return engine
        if self.name == "postgresql":
            # prepare_threshold=None: no server-side prepared statements, which
            # Supabase's transaction-mode pooler (pgbouncer/supavisor) cannot keep
            return create_engine(
                url,
                pool_pre_ping=True,
                pool_size=5,
                max_overflow=10,
                hide_parameters=True,
                logging_name=engine_logging_name(),
                json_deserializer=stored_json,
                connect_args={"prepare_threshold": None, "connect_timeout": 10},
            )
        raise StoreError(
            f"The platform store must be SQLite or Postgres, not {self.name}; "
            "set HYBRIDWB_STORE_URL or SUPABASE_DB_URL."
        )

    def ready(self) -> Engine:
        """The engine, after checking once that the schema is the one this code needs.

        Opening a store never migrates it (only `hybridwb init` does); an older or newer
        schema is a one-line error instead of a confusing "no such column" later.
        """
        # no Engine local here: its repr names the database, which may hold the password
        if self.expect_schema is None:
            return self.engine
        stmt = select(schema.alembic_version.c.version_num)
        with self.errors():
            for attempt in sql_retrying(self.attempts, self.base_delay):
                with attempt, self.engine.connect() as conn:
                    try:
                        found = conn.execute(stmt).scalar()
                    except (OperationalError, DBAPIError) as exc:
                        if is_transient(exc):
                            raise
                        found = None  # no alembic_version table: never initialised
        if found != self.expect_schema:
            where = self.description
            if found is None:
                raise StoreError(
                    f"The platform store at {where} has no schema yet; run `hybridwb init`."
                )
            raise StoreError(
                f"The platform store at {where} has schema {found}, this hybridwb needs "
                f"{self.expect_schema}; run `hybridwb init` (or upgrade hybridwb if it is newer)."
            )
        self.expect_schema = None
        return self.engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Translate driver errors into store errors users can act on.

        Raised `from None` with a scrubbed message: the driver's frames (which hold the
        connection parameters) never travel with the error; type and code stay as fields.
        """
        try:
            yield
        except IntegrityError as exc:
            refused = self._refused(exc)
            drop_frames(exc)  # `from None` hides it, but __context__ still holds its frames
            drop_text(exc)  # its detail quotes the key: `Key (recipient)=(010-…)`
            raise refused from None
        except DBAPIError as exc:
            translated = self.translate(exc)
            drop_frames(exc)
            drop_text(exc)
            raise translated from None
        except Exception as exc:
            # the driver's own error, from a raw cursor (COPY, SQLite's executemany), is
            # translated as well; a constraint or a trigger's refusal as SQLAlchemy's is
            if not _is_driver_error(exc):
                raise
            error = (
                self._refused(IntegrityError(None, None, exc))
                if _is_integrity_error(exc)
                else self.translate(DBAPIError(None, None, exc))
            )
            drop_frames(exc)
            drop_text(exc)
            raise error from None

    def _refused(self, exc: IntegrityError) -> ValidationError:
        """A write a constraint or trigger refused: what collided, in a line."""
        what, field = integrity_message(exc)
        return ValidationError(
            f"{self.scrub(what)}; nothing was saved.", field=field, code=_code(exc)
        )

    def translate(self, exc: DBAPIError) -> HybridwbError:
        # what the server echoes in quotes (a stored phone in "invalid input syntax") goes,
        # by the one rule for server text (source/catalogue.py)
        raw = self.scrub(self._primary(exc))  # to tell the kind only: never shown
        text = server_text(raw)
        fields = {"cause": type(exc.orig or exc).__name__, "code": _code(exc)}
        if re.search(r'FATAL:\s+database ".*" does not exist', raw):
            return StoreError(
                "The platform store's database does not exist. Check the database name in "
                "SUPABASE_DB_URL (or HYBRIDWB_STORE_URL), or create it.",
                **fields,
            )
        if "password authentication failed" in raw:
            return AuthError(
                "The platform store refused the login (wrong password for the user of the "
                "URL). Check SUPABASE_DB_URL.",
                **fields,
            )
        if "role" in raw and "does not exist" in raw:
            return AuthError(
                "The platform store refused the login (no such user). Check SUPABASE_DB_URL.",
                **fields,
            )
        if fields["code"] == "57014" or "interrupted" in text:
            return QueryTimeout(
                "The store statement ran past its time limit and was stopped; "
                "narrow it or pass a larger timeout.",
                **fields,
            )
        if is_connectivity(exc):
            # libpq: `connection to server at "host" (ip), port n failed: <reason>`
            reason = server_text(raw.splitlines()[0].rpartition("failed: ")[2]) if raw else ""
            return StoreError(
                f"The platform store is unreachable ({self.description}): "
                f"{reason or text}. Is it running?",
                **fields,
            )
        if is_transient(exc):
            return StoreError(
                f"The platform store stayed busy after {self.attempts} tries: {text}. Try again.",
                **fields,
            )
        return StoreError(f"The platform store failed: {text}.", **fields)

    def run(self, fn: Callable[[Connection, int], T], *, write: bool = False) -> T:
        """`fn(conn, attempt)` in one transaction (or connection), retried on transient faults."""
        engine = self.ready()
        with self.errors():
            for attempt in sql_retrying(self.attempts, self.base_delay):
                with attempt:
                    number = attempt_number(attempt)
                    if write:
                        with engine.begin() as conn:
                            return fn(conn, number)
                    with engine.connect() as conn:
                        return fn(conn, number)
        raise AssertionError("unreachable")  # pragma: no cover - tenacity re-raises

    @staticmethod
    def _where(table: Any, where: dict[str, Any] | None) -> Any:
        return and_(*(table.c[k] == v for k, v in (where or {}).items()))

    def select(
        self,
        table: str,
        where: dict[str, Any] | None = None,
        *,
        order_by: str | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        tbl = schema.metadata.tables[table]
        stmt = select(tbl).where(self._where(tbl, where))
        if order_by:
            col = tbl.c[order_by]
            stmt = stmt.order_by(col.desc() if desc else col)
        if limit:
            stmt = stmt.limit(limit)
        return self.run(lambda conn, _: [dict(r._mapping) for r in conn.execute(stmt)])

    def count(self, table: str, where: dict[str, Any] | None = None) -> int:
        tbl = schema.metadata.tables[table]
        stmt = select(func.count()).select_from(tbl).where(self._where(tbl, where))
        return self.run(lambda conn, _: int(conn.execute(stmt).scalar_one()))

    def _insert(self, tbl: Table) -> Any:
        # preserve_rowcount: SQLAlchemy keeps rowcount of INSERTs only when asked
        ins = sqlite_insert(tbl) if self.name == "sqlite" else pg_insert(tbl)
        return ins.execution_options(preserve_rowcount=True)

    def apply(self, ops: list[Op]) -> None:
        """All ops in one transaction. Inserts skip a row whose primary key exists and then
        check it is this write's own row: a retry after a lost commit acknowledgement
        reports success instead of a false "already exists"."""

        def run(conn: Connection, attempt: int) -> None:
            for op in ops:
                tbl = schema.metadata.tables[op.table]
                if op.kind == "insert":
                    values = op.values or {}
                    pk = [c.name for c in tbl.primary_key.columns]
                    stmt = (
                        self._insert(tbl).values(**values).on_conflict_do_nothing(index_elements=pk)
                    )
                    if conn.execute(stmt).rowcount == 0 and not (
                        attempt > 1 and idempotent.is_ours(conn, tbl, values)
                    ):
                        raise ValidationError(
                            f"{op.table} already has a row with this key; nothing was saved.",
                            field=pk[-1],
                        )
                elif op.kind == "update":
                    conn.execute(
                        update(tbl).where(self._where(tbl, op.where)).values(**(op.values or {}))
                    )
                else:
                    conn.execute(delete(tbl).where(self._where(tbl, op.where)))

        self.run(run, write=True)

    def insert_ignore(self, table: str, rows: list[dict[str, Any]], conflict: list[str]) -> int:
        """Insert rows, skipping those whose `conflict` key exists; returns rows inserted.

        On a retry the count comes from a re-check of which rows are this call's own, so a
        lost commit acknowledgement does not turn "inserted" into "already there"."""
        if not rows:
            return 0
        tbl = schema.metadata.tables[table]

        def run(conn: Connection, attempt: int) -> int:
            if self.name == "postgresql":
                inserted = idempotent.copy_ignore(conn, tbl, rows, conflict)
            else:
                stmt = self._insert(tbl).on_conflict_do_nothing(index_elements=conflict)
                whole = _whole_rows(conn, tbl, conflict, rows)
                inserted = 0
                for start in range(0, len(rows), 5000):
                    chunk = rows[start : start + 5000]
                    # sqlite3 sums rowcount over executemany: the rows really inserted
                    if whole is not None:
                        inserted += whole(chunk)
                        continue
                    # Core's executemany takes its columns from the first row (a value
                    # of a column only later rows name is dropped): runs of rows that
                    # name the same columns each go as one, in order (the first wins)
                    for _, same in itertools.groupby(chunk, key=lambda row: row.keys()):
                        inserted += conn.execute(stmt, list(same)).rowcount
            return inserted if attempt == 1 else idempotent.count_ours(conn, tbl, rows)

        return self.run(run, write=True)

    def insert_ignore_stored(
        self,
        table: str,
        columns: tuple[str, ...],
        values: list[tuple[Any, ...]],
        conflict: list[str],
    ) -> int:
        """SQLite only: rows as tuples in `columns` order (every column of the table), each
        value already in the form the column's type binds it on SQLite (the caller's
        promise: the query log's ids as 32 hex digits, its times as SQLAlchemy's storage
        text; `test_search_lean_path.py` compares the rows with what Core writes). One
        executemany of the compiled `INSERT ... ON CONFLICT DO NOTHING` on the driver's
        cursor, in one transaction. Returns the rows the driver counts as inserted."""
        if self.name != "sqlite":
            raise ValueError("insert_ignore_stored is for the SQLite store only")
        if not values:
            return 0
        tbl = schema.metadata.tables[table]

        def run(conn: Connection, attempt: int) -> int:
            text, order = _stored_insert(conn, tbl, columns, conflict)
            raw = conn.connection.dbapi_connection
            cursor = raw.cursor()  # type: ignore[union-attr]
            try:
                cursor.executemany(text, values if order is None else [order(v) for v in values])
                return int(cursor.rowcount)
            finally:
                cursor.close()

        return self.run(run, write=True)

    def insert_row_by_row(
        self, table: str, rows: Iterable[dict[str, Any]], conflict: list[str]
    ) -> int:
        """The slow way, one statement and one commit per row (for benchmarks only)."""
        tbl = schema.metadata.tables[table]
        stmt = pg_insert(tbl).on_conflict_do_nothing(index_elements=conflict)
        n = 0
        for row in rows:
            with self.engine.begin() as conn:
                n += conn.execute(stmt.values(**row)).rowcount
        return n


#: what a translated driver error says of itself afterwards
DROPPED_TEXT = "(the driver's message is not kept: it may quote stored values)"


def drop_text(exc: BaseException) -> None:
    """Forget what a translated driver error says: the server's text quotes the values it
    could not take (a customer's address in a COPY's CONTEXT line, a phone in "invalid
    input syntax"). The store error is raised while `exc` is being handled, so `exc` stays
    chained as its `__context__` (`from None` only hides it from a traceback); a reporter
    walking the chain finds the driver's type and this text, no value."""
    orig = getattr(exc, "orig", None)
    for err in (exc, orig):
        if isinstance(err, BaseException):
            err.args = (DROPPED_TEXT,)


def _is_driver_error(exc: BaseException) -> bool:
    """An error a database driver raised itself (psycopg, sqlite3), not wrapped by SQLAlchemy."""
    psycopg = sys.modules.get("psycopg")
    return isinstance(exc, sqlite3.Error) or (
        psycopg is not None and isinstance(exc, psycopg.Error)
    )


def _is_integrity_error(exc: BaseException) -> bool:
    """A driver's own integrity error (a constraint or a trigger refused the row)."""
    psycopg = sys.modules.get("psycopg")
    return isinstance(exc, sqlite3.IntegrityError) or (
        psycopg is not None and isinstance(exc, psycopg.IntegrityError)
    )


def _code(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "sqlite_errorname", None)


__all__ = ["Backend", "Op", "SQLAlchemyError", "SqlBackend", "retrying"]


#: (table, conflict columns, dialect) -> (INSERT text, [(column, bind processor)])
_WHOLE: dict[tuple[str, tuple[str, ...], str], tuple[str, list[tuple[str, Any]]]] = {}


#: (table, columns, conflict) -> (INSERT text, how a row in `columns` order becomes the
#: statement's order, or None when it is that order already)
_STORED: dict[tuple[str, tuple[str, ...], tuple[str, ...]], tuple[str, Any]] = {}


def _stored_insert(
    conn: Connection, tbl: Table, columns: tuple[str, ...], conflict: list[str]
) -> tuple[str, Any]:
    """The compiled INSERT of `insert_ignore_stored` (made once per table and columns)."""
    key = (tbl.name, columns, tuple(conflict))
    known = _STORED.get(key)
    if known is None:
        if sorted(columns) != sorted(c.name for c in tbl.columns):
            raise ValueError("insert_ignore_stored takes every column of the table")
        stmt = sqlite_insert(tbl).on_conflict_do_nothing(index_elements=conflict)
        compiled = stmt.compile(dialect=conn.dialect, column_keys=list(columns))
        position = list(compiled.positiontup or [])
        if sorted(position) != sorted(columns):  # the binds are the columns, once each
            raise ValueError("insert_ignore_stored: the statement binds other columns")
        order = (
            None
            if tuple(position) == columns
            else operator.itemgetter(*(columns.index(n) for n in position))
        )
        known = _STORED[key] = (compiled.string, order)
    return known


def _whole_rows(
    conn: Connection, tbl: Table, conflict: list[str], rows: list[dict[str, Any]]
) -> Callable[[list[dict[str, Any]]], int] | None:
    """On SQLite, when every row names every column of the table (a query log batch), the
    rows as one executemany on the driver's cursor: the statement SQLAlchemy compiles
    (`INSERT ... ON CONFLICT DO NOTHING`), each value through the type's own bind processor,
    as Core does, without Core's work per row (a tenth of a search's CPU went there).
    None when a row lacks a column: Core then applies that column's default."""
    names = [c.name for c in tbl.columns]
    every = set(names)
    if len(names) < 2 or not all(row.keys() == every for row in rows):
        return None  # (one column: itemgetter would give a value, not a tuple)
    dialect = conn.dialect
    key = (tbl.name, tuple(conflict), dialect.name)
    known = _WHOLE.get(key)
    if known is None:
        stmt = sqlite_insert(tbl).on_conflict_do_nothing(index_elements=conflict)
        compiled = stmt.compile(dialect=dialect, column_keys=names)
        order = list(compiled.positiontup or [])
        if sorted(order) != sorted(names):  # the binds are the columns, once each
            return None
        columns = {c.name: c for c in tbl.columns}
        known = (
            compiled.string,
            [(n, columns[n].type.dialect_impl(dialect).bind_processor(dialect)) for n in order],
        )
        _WHOLE[key] = known
    text, plan = known
    raw = conn.connection.dbapi_connection  # in the transaction `run(write=True)` began
    pick = operator.itemgetter(*(n for n, _ in plan))
    processed = [(i, process) for i, (_, process) in enumerate(plan) if process is not None]

    def write(batch: list[dict[str, Any]]) -> int:
        values: list[Any] = []
        for row in batch:
            value = list(pick(row))  # the row's values in the statement's order
            for i, process in processed:
                value[i] = process(value[i])
            values.append(value)
        cursor = raw.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(text, values)
            return int(cursor.rowcount)
        finally:
            cursor.close()

    return write
