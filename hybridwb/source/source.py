"""`Source`: guarded, capped, logged reads from MySQL/MariaDB or the SQLite sample.

On MySQL the bytes the server executes are the bytes the guard approved: binds are found by
the tokenizer (binds.py), the final interpolated text is guarded where it is sent (finaltext.py),
and nothing is regenerated; the row cap is enforced by the server (execute.py). Only the
embedded SQLite sample runs transpiled SQL.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import sqlite3
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from cachetools import LRUCache, TTLCache
from pydantic import SecretStr
from sqlalchemy import Connection, Engine
from sqlalchemy.engine import URL
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlglot import exp

from hybridwb.config import Settings, scrub
from hybridwb.errors import (
    BindError,
    ConnectionFailed,
    HybridwbError,
    QueryError,
    ReadOnlyViolation,
)
from hybridwb.source import catalogue, diagnostics, drivers, guard
from hybridwb.source import grants as grants_
from hybridwb.source.arrow import frame as arrow_frame
from hybridwb.source.binds import (
    Bind,
    Layout,
    bind_layout,
    check_params,
    find_binds,
    positive_int_arg,
    seconds_arg,
    sent_size,
    to_pyformat,
)
from hybridwb.source.cache import ResultCache, SchemaObjects, ViewNames, WeighedLRU, lookup
from hybridwb.source.checkout import Parking, abandon, this_process
from hybridwb.source.connect import mysql_connect_args
from hybridwb.source.engine import is_sqlite, mysql_engine, side_engine, sqlite_engine
from hybridwb.source.execute import check_as_of, run_mysql
from hybridwb.source.frames import frame_of
from hybridwb.source.querylog import QueryLog, log_text, log_text_of
from hybridwb.source.session import (
    FACTS_SQL,
    SessionFacts,
    SessionPolicy,
    owe_session,
    run_internal,
)
from hybridwb.source.snapshot import (
    END_SQL,
    ISOLATION_SQL,
    SNAPSHOT_KEY,
    START_SQL,
    SnapshotLost,
    SnapshotRefused,
)
from hybridwb.source.transpile import expand_lists, sqlite_params, to_sqlite
from hybridwb.source.verdicts import VERDICTS
from hybridwb.source.verdicts import weight as verdict_weight

if TYPE_CHECKING:
    import pandas as pd


T = TypeVar("T")

#: every source alive in this process, for the fork hook below
_SOURCES: weakref.WeakSet[Source] = weakref.WeakSet()


def _forget_parents_pools() -> None:
    """In a forked child: each source's pools are the parent's sockets (an idle pooled
    connection holds the reply to the session SET the parent sent at checkin). The child
    drops its copies without closing or checking in anything (`dispose(close=False)`, what
    SQLAlchemy prescribes for a fork), so its reads open connections of their own. A fork
    inside `one_connection()`: the forking thread's pinned connection is the parent's too,
    forgotten the same way (the child's reads in the block take their own).

    Each source's locks, and the caches they guard, are new too: a lock another thread of
    the parent held at the fork (a run's read-ahead, a widget's search: every read takes
    them for a moment) stays held in the child forever, and its first read waited for it;
    what that thread was changing under it may be half changed."""
    for source in list(_SOURCES):
        if getattr(source._pinned, "conn", None) is not None:
            abandon(source._pinned.conn)
            source._pinned.conn = None
        for engine in (source._engine, source._side_engine):
            if engine is not None:
                engine.dispose(close=False)
        source._lock = threading.Lock()
        source._schema_names = TTLCache(1, SCHEMA_NAMES_TTL)
        source._prepared = WeighedLRU(PREPARED_STATEMENTS, PREPARED_UNIT, _prepared_weight)
        source._views = ViewNames()
        source._cache = ResultCache(
            max_bytes=source._cache.max_bytes, max_ttl=source._cache.max_ttl
        )
        source._parking.after_fork()


os.register_at_fork(after_in_child=_forget_parents_pools)


class _PlainFrame:
    """`Source.sql`'s default `frame_type`: pandas.DataFrame, which is imported only when a
    frame is built (pandas and numpy are ~0.25 s of every process's start)."""

    def __repr__(self) -> str:
        return "pandas.DataFrame"


PLAIN_FRAME: Any = _PlainFrame()

#: statements the guard admitted, remembered by text
PREPARED_STATEMENTS = 512
#: and their estimated memory at most: PREPARED_STATEMENTS * PREPARED_UNIT (32 MB)
PREPARED_UNIT = 64 * 1024
#: seconds the schema's names are trusted for error hints and failed-statement logs
SCHEMA_NAMES_TTL = 60.0
#: at most this many (table, column) rows are read for them
SCHEMA_NAMES_LIMIT = 50_000
#: tries of one read when the server drops its connection (killed, restarted, timed out):
#: a read has no effect to repeat, so each lost connection is replaced and the read sent
#: again, with 0.1, 0.2, 0.4 … s between tries (at most 1 s)
READ_ATTEMPTS = 6
#: a statement larger than this (text and bound values, bytes) is not sent again after
#: the server dropped the connection: the likely reason is its size (max_allowed_packet
#: is 1 MB at the least, 16 MB on MariaDB), which a second send would only repeat
RESEND_MAX_BYTES = 1024 * 1024
#: MariaDB's Sequence engine tables (`seq_1_to_100`, `seq_0_to_30_step_5`)
_SEQUENCE_TABLE = re.compile(r"seq_[0-9]+_to_[0-9]+(_step_[0-9]+)?")


class Fetched(NamedTuple):
    """What one read brought back."""

    keys: list[str]
    rows: list[Any]
    truncated: bool
    #: the cursor's description when the values are the server's raw text (mysqlclient)
    described: tuple[Any, ...] | None = None
    #: the cursor's description (MySQL; none on SQLite): `column_types` reads it
    columns: Any = ()


def _dicts(keys: list[str], rows: list[Any]) -> list[dict[str, Any]]:
    """The rows as {column: value}."""
    if {*map(len, rows)} - {len(keys)}:  # never from a driver: zip says which row
        return [dict(zip(keys, row, strict=True)) for row in rows]
    # every row checked above; no `strict=` (a keyword argument costs zip a dict per row)
    return list(map(dict, map(zip, repeat(keys), rows)))


def _typed(fetched: Fetched) -> list[tuple[str, str]]:
    """(column, the protocol's name of its type) from a read's cursor description."""
    types = [d[1] for d in fetched.columns] or [""] * len(fetched.keys)
    return [(k, drivers.type_name(t)) for k, t in zip(fetched.keys, types, strict=True)]


def _prepared_weight(prepared: Prepared) -> int:
    """A remembered statement's estimated memory: its verdict's, and the text once more."""
    return verdict_weight(prepared.checked) + len(prepared.sql)


def _echoes_server_text(checked: Any) -> bool:
    """SHOW WARNINGS/ERRORS and EXPLAIN: their rows are masked (`diagnostics.scrub_rows`)."""
    if not isinstance(checked, guard.Checked):
        return False
    return diagnostics.shows_diagnostics(checked) or diagnostics.explains(checked)


#: schemas whose objects the server makes and no one can replace by a view
_SYSTEM_SCHEMAS = frozenset({"information_schema", "performance_schema"})


class RowsCut(UserWarning):
    """The result had more rows than the cap; the rest were not fetched."""


@dataclass
class ConnectionInfo:
    """What `test_connection()` found (the original /api/mysql/test)."""

    status: str  # ok | error
    flavour: str = ""
    version: str = ""
    latency_ms: float = 0.0
    read_only: bool | None = None
    can_write: bool | None = None
    write_privileges: list[str] = field(default_factory=list)
    ssl: bool | None = None
    statement_timeout: float | None = None
    database: str = ""
    error: str | None = None
    revokes: list[str] = field(default_factory=list)  # what to run to make the grants safe

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Prepared:
    """One statement the guard approved, and the text to hand the driver."""

    sql: str  # exactly what the guard approved
    checked: guard.Checked
    binds: tuple[Bind, ...]
    cap: int
    #: (schema or "", name) of every table the statement names, in lower case
    tables: tuple[tuple[str, str], ...] = ()
    #: the text for the query log (literals as `?`), made once: every log entry of this
    #: statement shares the one string
    logged: str = ""
    #: the names its WITH clauses define that stand for nothing else in it (`own_ctes`)
    ctes: frozenset[str] = frozenset()
    #: the names it reads that are a Sequence-engine table as written (`seq_1_to_100`, lower
    #: case: `SEQ_1_TO_2` is no such table to MariaDB, and may be a view)
    sequences: frozenset[str] = frozenset()

    @functools.cached_property
    def names(self) -> frozenset[str]:
        """The names of its binds, made once per statement."""
        return frozenset(b.name for b in self.binds)

    @functools.cached_property
    def layout(self) -> Layout | None:
        """Its binds' layout, for the final-text guard (`binds.bind_layout`), made once."""
        return bind_layout(self.sql, self.binds)

    @functools.cached_property
    def echoes(self) -> bool:
        """Whether its rows are server text masked afterwards (`_echoes_server_text`)."""
        return _echoes_server_text(self.checked)

    @functools.cached_property
    def driver_text(self) -> str:
        """The text for the driver (binds as `%(name)s`), made once per statement."""
        return to_pyformat(self.sql, list(self.binds))


#: what decides the read-only layers of a source: given when it is made, never changed after
#: (`wb.source.use_guard = False` and a writable `policy` typed before the first query made
#: an engine with neither layer)
_FIXED = frozenset({"use_guard", "read_only_session", "allowed_functions", "policy"})


class Source:
    """Read-only access to the source database. Constructing it does no I/O.

    `use_guard=False` and `read_only_session=False` switch a layer off, for tests that prove
    each layer on its own; production code never does. They (and `allowed_functions`, and the
    session `policy` made of them) are fixed once the source is made.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _FIXED and name in self.__dict__:
            raise ReadOnlyViolation(
                f"Refused: Source.{name} is fixed when the source is made; hybridwb only "
                "reads. Make a new Source (or set it in the configuration) instead."
            )
        object.__setattr__(self, name, value)

    def __init__(
        self,
        url: URL,
        *,
        row_cap: int = 100_000,
        statement_timeout: float = 30.0,
        connect_timeout: int = 5,
        read_timeout: int = 600,
        ssl_ca: str | None = None,
        ssl_mode: str | None = None,
        querylog: QueryLog | None = None,
        use_guard: bool = True,
        read_only_session: bool = True,
        allowed_functions: list[str] | tuple[str, ...] = (),
        secrets: Iterable[str] | None = None,
        pool_size: int = 5,
        max_overflow: int = 10,
        result_cache_mb: float = 32.0,
        max_statement_mb: float = 1.0,
    ) -> None:
        # the password lives only in a SecretStr: vars(source) holds no plain secret
        self._password = SecretStr(str(url.password)) if url.password else None
        self.url = url._replace(password=None)
        self.row_cap = positive_int_arg(row_cap, "row_cap")
        self.statement_timeout = seconds_arg(statement_timeout, "statement_timeout", None)
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.ssl_ca = ssl_ca
        self.ssl_mode = ssl_mode
        self.querylog = querylog if querylog is not None else QueryLog()
        self.use_guard = use_guard
        self.read_only_session = read_only_session
        self.allowed_functions = tuple(allowed_functions)
        self._secrets = [SecretStr(s) for s in (secrets or []) if s]
        if url.password:
            self._secrets.append(SecretStr(str(url.password)))
        self.pool_size = pool_size
        self.max_overflow = max_overflow
        self.facts = SessionFacts()
        self.policy = SessionPolicy(
            read_only=read_only_session,
            timeout=self.statement_timeout,
            select_limit=self.row_cap + 1,
            allowed_functions=self.allowed_functions,
        )
        self._cache = ResultCache(max_bytes=int(result_cache_mb * 1024 * 1024))
        #: the text of a statement with its bound values, at most (`max_statement_mb`)
        self.max_statement_bytes = int(max_statement_mb * 1024 * 1024)
        self._views = ViewNames()
        self._schema_names: TTLCache[str, frozenset[str]] = TTLCache(1, SCHEMA_NAMES_TTL)
        self._prepared: LRUCache[str, Prepared] = WeighedLRU(
            PREPARED_STATEMENTS, PREPARED_UNIT, _prepared_weight
        )
        self._lock = threading.Lock()
        # .conn: this thread's connection in one_connection(); .snapshot: inside consistent()
        # (.sqlite: its SQLite connection)
        self._pinned = threading.local()
        self._kind: tuple[URL, bool] | None = None  # (url, is it SQLite)
        self._shown: tuple[tuple[Any, ...], str] | None = None  # (url, secrets), database shown
        self._engine: Engine | None = None
        self._side_engine: Engine | None = None
        self._ctx = catalogue.Context(
            host=f"{url.host}:{url.port or 3306}" if url.host else str(url.database),
            database=str(url.database or ""),
            user=str(url.username or ""),
        )
        # the connection of the last read, kept for the next (checkout.py); not when the
        # pool keeps one connection only: the engine's own users (pandas) would not find it
        self._parking = Parking(
            self.facts,
            self.policy,
            self._ctx,
            lambda: self.secrets,
            enabled=pool_size >= 2,
        )
        _SOURCES.add(self)

    @classmethod
    def from_settings(cls, settings: Settings, querylog: QueryLog | None = None) -> Source:
        return cls(
            settings.source_sqlalchemy_url(),
            row_cap=settings.row_cap,
            statement_timeout=settings.statement_timeout,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            ssl_ca=settings.mysql_ssl_ca,
            ssl_mode=settings.mysql_ssl_mode,
            querylog=querylog,
            secrets=settings.secret_values(),
            allowed_functions=tuple(settings.allowed_functions),
            pool_size=settings.source_pool_size,
            max_overflow=settings.source_max_overflow,
            result_cache_mb=settings.result_cache_mb,
            max_statement_mb=settings.max_statement_mb,
        )

    def __repr__(self) -> str:
        shown = self.url.set(password="***") if self._password else self.url
        # scrubbed too: a password pasted into the database name (or user, host) as well
        return scrub(f"Source({shown.render_as_string(hide_password=True)!r})", self.secrets)

    @property
    def secrets(self) -> list[str]:
        """The raw secrets, for scrubbing text meant for a person."""
        return [s.get_secret_value() for s in self._secrets]

    # -- connections -----------------------------------------------------------------------
    @property
    def is_sqlite(self) -> bool:
        # asked several times per read: worked out once per url (SQLAlchemy's answer costs
        # a parse of the driver name each time)
        url, known = self.url, self._kind
        if known is None or known[0] is not url:
            self._kind = known = (url, is_sqlite(url))
        return known[1]

    @property
    def database(self) -> str:
        return str(self.url.database or "")

    @property
    def _shown_database(self) -> str:
        """The database name as output shows it: scrubbed (a password pasted there too).
        Every query log entry names it: scrubbed once per url and set of secrets."""
        key = (self.url, *self._secrets)  # equal objects (by identity first) scrub the same
        known = self._shown
        if known is None or known[0] != key:
            self._shown = known = (key, scrub(self.database, self.secrets))
        return known[1]

    @property
    def engine(self) -> Engine:
        """The pooled engine, created once on first use (it is the only way to the source)."""
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    self._engine = self._create_engine()
        return self._engine

    def _create_engine(self) -> Engine:
        if self.is_sqlite:
            path = Path(str(self.url.database))
            if not path.is_file():
                raise HybridwbError(
                    f"The sample database {path} does not exist; run `hybridwb demo`."
                )
            return sqlite_engine(path, self.facts, use_guard=self.use_guard)
        require_driver(self.url)
        connect_args = mysql_connect_args(
            self.connect_timeout,
            self.read_timeout,
            self.ssl_ca,
            self.ssl_mode,
            driver=self.url.get_driver_name(),
        )
        self._side_engine = side_engine(
            self.url,
            connect_args,
            password=self._password,
            error_context=self._ctx,
            secrets=lambda: self.secrets,
        )
        return mysql_engine(
            self.url,
            self.facts,
            policy=self.policy,
            connect_args=connect_args,
            use_guard=self.use_guard,
            pool_size=self.pool_size,
            max_overflow=self.max_overflow,
            error_context=self._ctx,
            password=self._password,  # handed to the driver at each login, never in a URL
            secrets=lambda: self.secrets,
        )

    def close(self) -> None:
        self._parking.clear()
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None
            if self._side_engine is not None:
                self._side_engine.dispose()
                self._side_engine = None

    # -- reading ---------------------------------------------------------------------------
    @contextmanager
    def one_connection(self) -> Iterator[None]:
        """Statements read inside run on one pooled connection: one checkout, so the
        read-only session is set once for all of them (a search's probe and its page).
        Each statement is still guarded, bounded, checked and logged on its own; nothing
        but this thread's reads uses the connection, and it goes back to the pool after."""
        if self.is_sqlite or getattr(self._pinned, "conn", None) is not None:
            yield
            return
        try:
            conn, epoch = self._parking.take(self.engine)
        except DBAPIError as exc:
            raise self.translate_error(exc) from None
        self._pinned.conn, pid = conn, this_process()
        try:
            yield
        except BaseException:
            if self._unpin(pid):
                conn.close()  # the pool's checkin decides what happens to it (`Parking.reader`)
            raise
        if self._unpin(pid):
            self._parking.park(conn, epoch)

    def consistent(self, read: Callable[[], T]) -> T:
        """`read()` with every statement it sends reading one moment of the source: on one
        pinned connection inside a read-only consistent snapshot (`snapshot.py`), one
        transaction on SQLite; always ended, however `read` ends. A connection lost inside
        is not read again alone: `read` is run again whole on a new connection and a new
        snapshot (`READ_ATTEMPTS` in all). Nested in another, it is that one's moment."""
        if getattr(self._pinned, "snapshot", False):
            return read()
        outer = getattr(self._pinned, "conn", None) is not None  # one_connection()'s: kept
        for attempt in range(1, READ_ATTEMPTS + 1):
            if attempt > 1:
                time.sleep(min(0.05 * 2 ** (attempt - 1), 1.0))
            try:
                with self._snapshot():
                    return read()
            except SnapshotLost:
                if attempt == READ_ATTEMPTS or outer:
                    raise
        raise AssertionError("unreachable")

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        if self.is_sqlite:
            with self._sqlite_snapshot():
                yield
            return
        with self.one_connection():
            conn = self._pinned.conn
            raw, info = conn.connection.dbapi_connection, conn.connection.info
            try:
                run_internal(raw, ISOLATION_SQL)
                run_internal(raw, START_SQL)
            except drivers.errors() as exc:
                conn.invalidate()
                error = self.translate_error(exc)
                if catalogue.is_retryable(exc):
                    raise SnapshotLost(error.message, **error.fields) from None
                raise error from None
            except BaseException:  # interrupted: `run_own` closed a connection owing a reply
                conn.invalidate()
                raise
            info[SNAPSHOT_KEY] = True
            self._pinned.snapshot, self._pinned.refused = True, ""
            try:
                try:
                    yield
                except Exception:
                    if getattr(self._pinned, "refused", ""):  # what failed, said in one line
                        raise SnapshotRefused(self._pinned.refused) from None
                    raise
                self._still_one_moment()  # a refusal the block caught fails it here
            finally:
                self._pinned.snapshot, self._pinned.refused = False, ""
                info.pop(SNAPSHOT_KEY, None)
                if not conn.invalidated and not conn.closed:
                    try:
                        run_internal(raw, END_SQL)
                    except Exception:  # the reads are done; the transaction ends with it
                        conn.invalidate()
                    except BaseException:  # Ctrl-C: `run_own` closed it, owing the reply
                        conn.invalidate()
                        raise

    def _still_one_moment(self) -> None:
        """Inside `consistent`: a statement of the block ran server code whose reset ended
        the snapshot (`SnapshotRefused`): every later read of the block, and the block
        itself, fails with its message, even when the block caught the first."""
        refused = getattr(self._pinned, "refused", "")
        if refused:
            raise SnapshotRefused(refused)

    @contextmanager
    def _sqlite_snapshot(self) -> Iterator[None]:
        """One deferred read transaction on one connection: its first read takes the
        snapshot (WAL) or the shared lock (a rollback journal) that the later ones share."""
        with self.engine.connect() as conn:
            raw = _dbapi(conn)
            if not isinstance(raw, sqlite3.Connection):  # the sample engine is sqlite3's
                raise QueryError("The sample is not an SQLite database; reconnect to it.")
            raw.execute("BEGIN")
            self._pinned.sqlite, self._pinned.snapshot = raw, True
            try:
                yield
            finally:
                self._pinned.sqlite, self._pinned.snapshot = None, False
                with suppress(sqlite3.Error):  # a read transaction: nothing to keep
                    raw.execute("COMMIT")

    def _unpin(self, pid: int) -> bool:
        """End `one_connection`'s pin made in process `pid`: whether its connection is this
        process's to park or close. In a child forked inside the block it is the parent's
        (the fork hook forgot it): neither, or the checkin's SET would go on its socket."""
        if pid != this_process():
            return False
        self._pinned.conn = None
        return True

    def prepare(self, query: object, limit: object = None) -> Prepared:
        """Guard one statement and find its binds (no I/O).

        Admitted statements are remembered by their exact text (a bounded LRU): the guard's
        decision depends on nothing else, and searches and previews repeat the same text
        with different values."""
        cap = self.row_cap if limit is None else positive_int_arg(limit, "limit")
        if isinstance(query, str):
            with self._lock:
                hit = lookup(self._prepared, query)
            if hit is not None:
                return hit if hit.cap == cap else dataclasses.replace(hit, cap=cap)
        try:
            text_ = guard.check_text(query)
            tokens = None
            if self.use_guard:
                checked = VERDICTS.check(text_, self.allowed_functions)
                tokens = list(checked.tokens)
            else:
                checked = guard.Checked(text_, exp.Command(this=text_), "raw", ())
            binds = tuple(find_binds(text_, tokens))
        except RecursionError:
            raise QueryError(
                "The query is nested too deeply to check; simplify it (fewer nested brackets)."
            ) from None
        tables = tuple(
            dict.fromkeys(
                (str(t.db or "").lower(), str(t.name).lower())
                for t in checked.expression.find_all(exp.Table)
                if t.name
            )
        )
        ctes = own_ctes(checked.expression)
        logged = log_text(checked.tokens) if checked.tokens else log_text_of(text_)
        sequences = frozenset(
            str(t.name)
            for t in checked.expression.find_all(exp.Table)
            if _SEQUENCE_TABLE.fullmatch(str(t.name))
        )
        prepared = Prepared(text_, checked, binds, cap, tables, logged, ctes, sequences)
        with self._lock:
            self._prepared[text_] = prepared
        return prepared

    def sql(
        self,
        query: str,
        params: Mapping[str, Any] | None = None,
        *,
        limit: int | None = None,
        timeout: float | None = None,
        cache_ttl: float | None = None,
        arrow: bool = False,
        frame_type: type[pd.DataFrame] = PLAIN_FRAME,
    ) -> pd.DataFrame:
        """Run one read statement with bound parameters; returns a DataFrame.

        At most `limit` rows (default: the configured cap) come back; when rows were cut a
        `RowsCut` warning says so and `df.attrs["hybridwb"]["truncated"]` is True.
        `arrow=True` gives the same rows with Arrow dtypes (see `hybridwb.source.arrow`).
        `frame_type`: the DataFrame subclass to build (the workbench's masked frame), so
        the rows become a frame once, not a frame and then a copy of it.
        """
        if not isinstance(arrow, bool):
            raise BindError(f"arrow must be True or False, not {type(arrow).__name__}.")
        import pandas as pd

        if frame_type is PLAIN_FRAME:
            frame_type = pd.DataFrame
        if not (isinstance(frame_type, type) and issubclass(frame_type, pd.DataFrame)):
            raise BindError("frame_type must be pandas.DataFrame or a subclass of it.")
        started = time.perf_counter()
        keys, rows, truncated, described, *_ = self._run(
            query, params, limit, timeout, cache_ttl, raw_values=arrow
        )
        df = arrow_frame(keys, rows, described) if arrow else frame_of(frame_type, keys, rows)
        elapsed = (time.perf_counter() - started) * 1000
        df.attrs["hybridwb"] = {"rows": len(df), "elapsed_ms": elapsed, "truncated": truncated}
        return df

    def records(
        self,
        query: str,
        params: Mapping[str, Any] | None = None,
        *,
        limit: int | None = None,
        timeout: float | None = None,
        cache_ttl: float | None = None,
        refresh: bool = False,
        as_of: float | None = None,
    ) -> list[dict[str, Any]]:
        """Like `sql`, as plain dicts: missing values stay None (a DataFrame makes them
        NaN), and no DataFrame is built — what rendering and streaming want. `refresh`:
        read anew though the cache holds the statement, and cache that for `cache_ttl`.
        `as_of`: the server's clock the statement sees (epoch seconds, `clock()`): its
        NOW(), CURDATE(), UNIX_TIMESTAMP() ..., in a view's body too (`execute.clock_sql`)."""
        keys, rows, *_ = self._run(
            query, params, limit, timeout, cache_ttl, refresh=refresh, as_of=as_of
        )
        return _dicts(keys, rows)

    def cached(
        self, query: str, params: Mapping[str, Any] | None = None, *, limit: int | None = None
    ) -> bool:
        """Whether `sql` / `records` of this statement (with `cache_ttl`, no timeout) would
        be answered from the result cache now."""
        key = ResultCache.key(query, params, limit, None, False, None)
        return key is not None and self._cache.get(key) is not None

    def typed_records(
        self,
        query: str,
        params: Mapping[str, Any] | None = None,
        *,
        limit: int | None = None,
        timeout: float | None = None,
        as_of: float | None = None,
    ) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """`records`, and each column's type as the server states it for this very read
        ({name: 'YEAR'}, '' on SQLite), from its cursor description: a check of the types
        a read returns (a column ALTERed a moment ago) costs no statement of its own.
        `as_of`: as `records`'."""
        fetched = self._run(query, params, limit, timeout, as_of=as_of)
        return _dicts(fetched.keys, fetched.rows), dict(_typed(fetched))

    def clock(self) -> float | None:
        """The server's clock now (epoch seconds, to the microsecond): what a workflow run
        pins its reads to at its freeze (`records(as_of=)`), so a saved query or a view on
        NOW() or CURDATE() picks the same rows in every batch, a resume days later too.
        None on SQLite, whose 'now' cannot be fixed."""
        if self.is_sqlite:
            return None
        rows = self.records("SELECT UNIX_TIMESTAMP(NOW(6)) AS clock", limit=1)
        return float(rows[0]["clock"])

    def column_types(
        self, query: str, params: Mapping[str, Any] | None = None
    ) -> list[tuple[str, str]]:
        """Each column a read returns with the type the server states for it ('YEAR',
        'DATE', 'LONG' ...), from a one-row probe: a saved query's column is typed by its
        expression, not by the table column it is named after. SQLite states none ('')."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RowsCut)  # one row on purpose
            fetched = self._run(query, params, 1, None)
        return _typed(fetched)

    def _run(
        self,
        query: str,
        params: Mapping[str, Any] | None,
        limit: int | None,
        timeout: float | None,
        cache_ttl: float | None = None,
        *,
        raw_values: bool = False,
        refresh: bool = False,
        as_of: float | None = None,
    ) -> Fetched:
        """Guard, bind, execute, cap and log one statement (the path every read takes).

        With `cache_ttl`, an identical statement with identical parameters within that many
        seconds is answered from a bounded in-process cache (previews use it).
        `raw_values`: on mysqlclient, numbers and dates come back as the server's text, for
        Arrow to parse column by column (the 4th item then describes the columns).
        `refresh`: not answered from the cache, but cached (with `cache_ttl`) all the same."""
        check_as_of(as_of)  # SQLite, which cannot pin its clock, refuses what MySQL would
        if cache_ttl is not None:
            cache_ttl = seconds_arg(cache_ttl, "cache_ttl", self._cache.max_ttl, minimum=0.0)
        key = (
            ResultCache.key(query, params, limit, timeout, raw_values, as_of) if cache_ttl else None
        )
        if key is not None and not refresh:
            hit = self._cache.get(key)
            if hit is not None:
                return Fetched(*hit)
        result = self._run_uncached(query, params, limit, timeout, raw_values, as_of)
        if key is not None and cache_ttl:
            self._cache.put(key, result, cache_ttl)
        return result

    def clear_cache(self) -> None:
        self._cache.clear()

    def _run_uncached(
        self,
        query: str,
        params: Mapping[str, Any] | None,
        limit: int | None,
        timeout: float | None,
        raw_values: bool = False,
        as_of: float | None = None,
    ) -> Fetched:
        started = time.perf_counter()
        bound: dict[str, Any] | None = None
        error: HybridwbError | None = None
        try:
            seconds = None if timeout is None else seconds_arg(timeout, "timeout", self.ceiling)
            prepared = self.prepare(query, limit)
            bound = check_params(prepared.names, params)
            if bound and sent_size(prepared.sql, bound, self.max_statement_bytes) > (
                self.max_statement_bytes
            ):
                raise QueryError(
                    f"The statement with its values is over {self.max_statement_bytes:,} "
                    "bytes (max_statement_mb); bind fewer or shorter values, or join on a "
                    "table instead."
                )
            keys, rows, truncated, described, columns = self._execute(
                prepared, bound, seconds, raw_values, as_of
            )
        except HybridwbError as exc:
            error = exc
        except RecursionError:
            error = QueryError("The query is nested too deeply to check; simplify it.")
        if error is not None:
            # the values to take out of the message, flattened only when there is one
            values = _flat_values(bound) if bound is not None else []
            message = scrub(catalogue.redact(error.message, values), self.secrets)
            self._log(self._masked_log_text(query, error), started, 0, message)
            raise _detached(error, message)
        cap = prepared.cap
        if prepared.echoes:
            rows = diagnostics.scrub_rows(prepared.checked, list(keys), list(rows))
        logged = self._masked_log_text(query) if self.is_sqlite else prepared.logged
        self._log(logged, started, len(rows), None)
        if truncated:
            warnings.warn(
                f"Showing the first {cap:,} rows; the rest were cut. "
                "Add a WHERE or LIMIT, or pass a larger limit.",
                RowsCut,
                stacklevel=4,
            )
        return Fetched(keys, rows, truncated, described, columns)

    @property
    def ceiling(self) -> float:
        """The configured statement time limit: a query may ask for less, never more."""
        return self.statement_timeout

    def _execute(
        self,
        prepared: Prepared,
        params: dict[str, Any],
        timeout: float | None,
        raw_values: bool = False,
        as_of: float | None = None,
    ) -> Fetched:
        cap = prepared.cap
        for attempt in range(1, READ_ATTEMPTS + 1):
            if attempt > 1:
                time.sleep(min(0.05 * 2 ** (attempt - 1), 1.0))
            started = time.monotonic()
            try:
                if self.is_sqlite:
                    return Fetched(*self._execute_sqlite(prepared, params, timeout))
                engine = self.engine
                policy = self.policy.with_query(timeout, cap + 1)
                reads_view = self.reads_view(prepared)
                pinned = getattr(self._pinned, "conn", None) if attempt == 1 else None
                if getattr(self._pinned, "snapshot", False):
                    self._still_one_moment()
                    if pinned is None or pinned.invalidated:
                        # the snapshot's connection is gone: `consistent` reads it all again
                        raise SnapshotLost("The source connection was lost inside a snapshot.")
                # a pinned connection is one_connection's; else one is taken for this read
                # and parked after it (`Parking.reader`, without a context manager's calls)
                conn, epoch = (
                    (pinned, None) if pinned is not None else self._parking.take(engine, policy)
                )
                try:
                    outcome = run_mysql(
                        engine,
                        self._side_engine or engine,
                        self.facts,
                        self.policy,
                        policy,
                        prepared,
                        params,
                        cap,
                        use_guard=self.use_guard,
                        reads_view=reads_view,
                        pinned=conn,
                        raw_values=raw_values,
                        # rows whose server text is masked afterwards stay Python rows
                        batches=raw_values and not prepared.echoes,
                        as_of=as_of,
                    )
                except SnapshotRefused as exc:
                    self._pinned.refused = exc.message  # the block's later reads fail too
                    raise
                except BaseException:
                    if epoch is not None:
                        conn.close()  # the pool's checkin decides what happens to it
                    raise
                if epoch is not None:
                    self._parking.park(conn, epoch)
                elif not reads_view and not conn.invalidated and self._names_tables(prepared):
                    # pinned: the list that found no view in it may be `VIEW_TTL` old, and a
                    # table replaced by a view since ran its code unread; the next statement
                    # on this connection sets the session first, as a checkout would, or
                    # carries READ ONLY, the time limit and the cap itself (`SessionOwed`)
                    owe_session(conn.connection.info)
                return Fetched(
                    outcome.keys,
                    outcome.rows,
                    outcome.truncated,
                    outcome.described,
                    outcome.columns,
                )
            except DBAPIError as exc:
                if self._read_again(exc, attempt, started, prepared, params):
                    self._not_in_snapshot(exc, timeout, params)
                    continue
                raise self._lost(exc, timeout, prepared, params) from None
            except drivers.errors() as exc:
                if self._read_again(exc, attempt, started, prepared, params):
                    self._not_in_snapshot(exc, timeout, params)
                    continue
                raise self._lost(exc, timeout, prepared, params) from None
            except (SQLAlchemyError, sqlite3.Error) as exc:
                raise self.translate_error(exc, timeout, _flat_values(params)) from None
        raise AssertionError("unreachable")

    def _not_in_snapshot(
        self, exc: BaseException, timeout: float | None, params: dict[str, Any]
    ) -> None:
        """Inside `consistent`'s snapshot a lost read is not sent again on another
        connection (another moment): `SnapshotLost`, and the block is read again whole."""
        if getattr(self._pinned, "snapshot", False):
            error = self.translate_error(exc, timeout, _flat_values(params))
            raise SnapshotLost(error.message, **error.fields) from None

    def _read_again(
        self,
        exc: BaseException,
        attempt: int,
        started: float,
        prepared: Prepared,
        params: dict[str, Any],
    ) -> bool:
        """Whether a read that lost its connection is sent again: not after the last try,
        not when the socket's own read timeout ended it (it would only wait that long
        again), and not a statement over `RESEND_MAX_BYTES` (`_lost` says why)."""
        return (
            attempt < READ_ATTEMPTS
            and catalogue.is_retryable(exc)
            and time.monotonic() - started < self.read_timeout * 0.9
            and sent_size(prepared.sql, params, RESEND_MAX_BYTES) <= RESEND_MAX_BYTES
        )

    def _lost(
        self,
        exc: BaseException,
        timeout: float | None,
        prepared: Prepared,
        params: dict[str, Any],
    ) -> HybridwbError:
        """The driver error as a hybridwb error; a lost connection under a statement over
        `RESEND_MAX_BYTES` says it is most likely over the server's max_allowed_packet."""
        if catalogue.is_retryable(exc) and sent_size(prepared.sql, params, RESEND_MAX_BYTES) > (
            RESEND_MAX_BYTES
        ):
            return ConnectionFailed.from_cause(
                exc,
                "The server dropped the connection while the statement came in; with its "
                "values it is likely over the server's max_allowed_packet: bind fewer or "
                "shorter values, or set max_statement_mb below that size.",
            )
        return self.translate_error(exc, timeout, _flat_values(params))

    def reads_view(self, prepared: Prepared) -> bool:
        """Whether the statement names a view: its body is server code the guard never saw
        (GET_LOCK, LOAD_FILE, a stored function), so the session is read back after it.
        A SHOW statement counts as one: its WHERE may hold a subquery over a view, and
        SHOW statements are not parsed into a table list."""
        checked = getattr(prepared, "checked", None)
        if checked is not None and checked.kind == "show":
            return True
        for schema, name in prepared.tables:
            schema_given = bool(schema)
            schema = schema or self.database.lower()
            if not schema:
                continue
            objects = self._views.get(schema)
            if objects is None:
                objects = self._load_views(schema)
            if objects.is_plain_table(name):
                continue
            if name not in objects.others and (
                # the Sequence engine (MariaDB's only): listed nowhere, no code; matched on
                # the name as written, since `SEQ_1_TO_2` may be a view made since the list
                (name in getattr(prepared, "sequences", ()) and self.facts.flavour == "MariaDB")
                or (name in getattr(prepared, "ctes", ()) and not schema_given)  # a WITH's own
            ):
                continue
            return True  # a view, or made since the list was read
        return False

    def _names_tables(self, prepared: Prepared) -> bool:
        """Whether the statement names a table outside the server's own schemas, which
        no one can replace by a view (whether it is read back then rests on the list)."""
        return any(
            (schema or self.database).lower() not in _SYSTEM_SCHEMAS
            for schema, _ in prepared.tables
        )

    def _load_views(self, schema: str) -> SchemaObjects:
        """What one schema holds (a plain SELECT on information_schema)."""
        from sqlalchemy import column, func, select
        from sqlalchemy import table as sql_table

        tables = sql_table(
            "TABLES",
            column("TABLE_SCHEMA"),
            column("TABLE_NAME"),
            column("TABLE_TYPE"),
            schema="information_schema",
        )
        query = select(tables.c.TABLE_NAME, tables.c.TABLE_TYPE).where(
            func.lower(tables.c.TABLE_SCHEMA) == schema,  # names are compared in lower case
        )
        with self.engine.connect() as conn:
            rows = [(str(name), str(kind)) for name, kind in conn.execute(query)]
        # a sequence's row is its state: reading it runs nothing (NEXTVAL is refused); the
        # server's own information_schema views run no one's code
        plain = {"BASE TABLE", "SYSTEM VERSIONED", "SEQUENCE", "SYSTEM VIEW"}
        self._views.put(
            schema,
            [name for name, kind in rows if kind in plain],
            [name for name, kind in rows if kind not in plain],
        )
        return self._views.get(schema) or SchemaObjects(frozenset(), frozenset())

    def _execute_sqlite(
        self, prepared: Prepared, params: dict[str, Any], timeout: float | None
    ) -> tuple[list[str], list[Any], bool]:
        if prepared.checked.kind == "raw":
            sql, bound = prepared.sql, params
            if any(isinstance(v, list) for v in bound.values()):
                raise BindError("List parameters need the guard (use_guard=True) on the sample.")
        else:
            expression, bound = expand_lists(prepared.checked.expression, params)
            sql = to_sqlite(prepared.checked, expression)
        bound = sqlite_params(bound)  # dates as the sample's text, not sqlite3's adapters'
        pinned = getattr(self._pinned, "sqlite", None)  # `consistent`'s transaction
        with self.engine.connect() if pinned is None else nullcontext(pinned) as conn:
            raw = conn if isinstance(conn, sqlite3.Connection) else _dbapi(conn)
            if not isinstance(raw, sqlite3.Connection):  # the sample engine is sqlite3's
                raise QueryError("The sample is not an SQLite database; reconnect to it.")
            with _sqlite_time_limit(raw, timeout):
                cursor = raw.cursor()
                try:
                    cursor.execute(sql, bound)
                    keys = [str(d[0]) for d in cursor.description] if cursor.description else []
                    # sqlite3 takes a C int; no result that large fits in memory anyway
                    size = min(prepared.cap + 1, 2**31 - 1)
                    rows = list(cursor.fetchmany(size)) if keys else []
                finally:
                    cursor.close()
        return keys, rows[: prepared.cap], len(rows) > prepared.cap

    def translate_error(
        self, exc: BaseException, timeout: float | None = None, values: list[Any] | None = None
    ) -> HybridwbError:
        """A driver error as a one-line hybridwb error: secrets, literals and bound values
        removed; the cause's type name and code kept as fields (raise it `from None`)."""
        ctx = catalogue.Context(
            self._ctx.host, self._ctx.database, self._ctx.user, timeout or self.statement_timeout
        )
        err = catalogue.translate(exc, ctx, values or (), self.schema_names)
        # from_cause drops the frames of the cause and its chain (a driver frame holds the
        # password in its locals), keeping the type and code the catalogue recorded
        return type(err).from_cause(exc, scrub(err.message, self.secrets), **err.fields)

    def schema_names(self) -> frozenset[str]:
        """Table and column names of the source database, in lower case, read once a
        minute at most: error hints and the log of a failed statement keep only names
        that resolve against the schema. Raises like any read (callers on an error path
        catch it and show no name)."""
        with self._lock:
            names = self._schema_names.get("names")
        if names is not None:
            return names
        from sqlalchemy import column, func, select
        from sqlalchemy import table as sql_table

        if self.is_sqlite:
            found = set()
            for table in self.table_names():
                found.add(table)
                found.update(self.column_names(table))
        else:
            cols = sql_table(
                "COLUMNS",
                column("TABLE_SCHEMA"),
                column("TABLE_NAME"),
                column("COLUMN_NAME"),
                schema="information_schema",
            )
            query = (
                select(cols.c.TABLE_NAME, cols.c.COLUMN_NAME)
                .where(cols.c.TABLE_SCHEMA == func.database())  # noqa: SIM300
                .limit(SCHEMA_NAMES_LIMIT)
            )
            pinned = getattr(self._pinned, "conn", None)  # the pool may hold one connection
            if getattr(self._pinned, "snapshot", False):
                # the engine's statement would be followed by the session reset
                # (`_check_session`), which ends `consistent`'s snapshot: the block's later
                # reads would be of a later moment, silently (round 60's BREAK 2)
                raise QueryError("The schema's names are not read inside a snapshot.")
            if pinned is not None:
                found = {str(n) for row in pinned.execute(query) for n in row}
            else:
                with self.engine.connect() as conn:
                    found = {str(n) for row in conn.execute(query) for n in row}
        names = frozenset(n.lower() for n in (self.database, *found))
        with self._lock:
            self._schema_names["names"] = names
        return names

    def _masked_log_text(self, query: object, error: HybridwbError | None = None) -> str:
        """The log text of a statement that failed (or ran on the sample): literals, and
        names that resolve neither against the schema nor to an alias of the statement, as
        `?`. A value typed without quotes is an unknown name to the server; on the sample
        a double-quoted (backticked) unknown name even runs, as a string. When the names
        cannot be read (the server is down), every name is `?`."""
        if not isinstance(query, str):
            return "<not text>"
        names: frozenset[str] = frozenset()
        if not isinstance(error, ConnectionFailed):  # do not wait on a server that is gone
            try:
                names = self.schema_names()
            except Exception:
                names = frozenset()
        with self._lock:
            prepared = self._prepared.get(query)
        if prepared is None:  # refused by the guard: no parse to take aliases from
            return log_text_of(query, names)
        aliases = {
            str(node.alias if isinstance(node, exp.Alias) else node.name).lower()
            for node in prepared.checked.expression.find_all(exp.TableAlias, exp.Alias)
        }
        if not prepared.checked.tokens:
            return log_text_of(query, names | aliases)
        return log_text(prepared.checked.tokens, names | aliases)

    def _log(self, normalized: str, started: float, rows: int, error: str | None) -> None:
        # the time in whole microseconds, as milliseconds (`round(ms, 3)` costs more than
        # the rest of the entry: it goes through the float's decimal digits)
        elapsed = int((time.perf_counter() - started) * 1_000_000 + 0.5) / 1000
        # the entry as its row (`QueryLog.record_row`): no object per statement
        self.querylog.record_row(
            (
                self._shown_database,
                normalized,
                elapsed,
                rows,
                "error" if error else "success",
                error,
                "sqlite-sample" if self.is_sqlite else "mysql",
                datetime.now(UTC),
            )
        )

    # -- facts about the server ------------------------------------------------------------
    def test_connection(self) -> ConnectionInfo:
        """Reach the server and report what a careful user wants to know; never raises."""
        started = time.perf_counter()
        try:
            with self.engine.connect() as conn:
                run = _runner(conn)
                if self.is_sqlite:
                    version = str(run("SELECT sqlite_version()")[0][0])
                    latency = (time.perf_counter() - started) * 1000
                    read_only = bool(run("PRAGMA query_only")[0][0])
                    return ConnectionInfo(
                        "ok",
                        "SQLite",
                        version,
                        latency,
                        read_only,
                        False,
                        [],
                        None,
                        None,
                        self.database,
                    )
                version = str(run("SELECT VERSION()")[0][0])
                latency = (time.perf_counter() - started) * 1000
                read_only_raw, limit_raw = run(FACTS_SQL[self.facts.flavour])[0]
                read_only = bool(read_only_raw)
                limit = float(limit_raw)
                if self.facts.flavour == "MySQL":
                    limit = limit / 1000
                found = grants_.review(
                    grants_.expand(
                        lambda role: [
                            str(r[0])
                            for r in run(
                                "SHOW GRANTS" if role is None else grants_.show_grants_for(role)
                            )
                        ],
                        (DBAPIError, *drivers.errors()),
                    ),
                    self.allowed_functions,
                )
                writes = list(dict.fromkeys(f.describe() for f in found))
                cipher = run("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
                ssl = bool(cipher and cipher[0][1])
                return ConnectionInfo(
                    "ok",
                    self.facts.flavour,
                    version,
                    latency,
                    read_only,
                    bool(writes),
                    writes,
                    ssl,
                    limit,
                    self._shown_database,
                    revokes=[f.revoke for f in found],
                )
        except drivers.errors(DBAPIError, SQLAlchemyError, sqlite3.Error) as exc:
            err = self.translate_error(exc, None)
            return ConnectionInfo(
                "error",
                latency_ms=(time.perf_counter() - started) * 1000,
                database=self._shown_database,
                error=err.message,
            )
        except HybridwbError as exc:
            return ConnectionInfo(
                "error", database=self._shown_database, error=scrub(exc.message, self.secrets)
            )

    def table_names(self) -> list[str]:
        """Tables and views of the source (the live schema, for identifier checks)."""
        from sqlalchemy import inspect

        try:
            insp = inspect(self.engine)
            return sorted(insp.get_table_names() + insp.get_view_names())
        except DBAPIError as exc:
            raise self.translate_error(exc, None) from None

    def column_names(self, table: str) -> list[str]:
        """Column names in table order. On MySQL from information_schema: SELECT is enough
        there, while the inspector's SHOW CREATE TABLE needs SHOW VIEW on a view."""
        from sqlalchemy import column, func, inspect, select
        from sqlalchemy import table as sql_table

        try:
            if self.is_sqlite:
                return [c["name"] for c in inspect(self.engine).get_columns(table)]
            cols = sql_table(
                "COLUMNS",
                column("TABLE_SCHEMA"),
                column("TABLE_NAME"),
                column("COLUMN_NAME"),
                column("ORDINAL_POSITION"),
                schema="information_schema",
            )
            query = (
                select(cols.c.COLUMN_NAME)
                .where(cols.c.TABLE_SCHEMA == func.database(), cols.c.TABLE_NAME == table)  # noqa: SIM300
                .order_by(cols.c.ORDINAL_POSITION)
            )
            with self.engine.connect() as conn:
                return [str(name) for (name,) in conn.execute(query)]
        except DBAPIError as exc:
            raise self.translate_error(exc, None) from None

    def view_definition(self, name: str) -> str | None:
        """A view's SELECT in MySQL dialect, for lineage to follow; None when `name` is not a
        view, "" when it is one whose body the account cannot read (MySQL shows it only
        with SHOW VIEW). On MySQL a plain SELECT on information_schema.VIEWS."""
        from sqlalchemy import column, func, select
        from sqlalchemy import table as sql_table

        try:
            if self.is_sqlite:
                master = sql_table("sqlite_master", column("type"), column("name"), column("sql"))
                query = select(master.c.sql).where(
                    master.c.type == "view", func.lower(master.c.name) == name.lower()
                )
            else:
                views = sql_table(
                    "VIEWS",
                    column("TABLE_SCHEMA"),
                    column("TABLE_NAME"),
                    column("VIEW_DEFINITION"),
                    schema="information_schema",
                )
                query = select(views.c.VIEW_DEFINITION).where(
                    views.c.TABLE_SCHEMA == func.database(),  # noqa: SIM300
                    func.lower(views.c.TABLE_NAME) == name.lower(),
                )
            with self.engine.connect() as conn:
                row = conn.execute(query).first()
        except DBAPIError as exc:
            raise self.translate_error(exc, None) from None
        if row is None:
            return None
        body = str(row[0] or "")
        return _view_select(body) if self.is_sqlite else body


def own_ctes(expression: exp.Expression) -> frozenset[str]:
    """The names a statement's WITH clauses define (lower case) that it reads nowhere
    else: every unqualified table of the name is in the scope of a WITH that defines it.
    Read where no such WITH is in scope (another subquery, the entry's own body when not
    RECURSIVE, an earlier entry of the list), the name is the schema's table or view:
    `SELECT x FROM v, (WITH v AS (...) SELECT ... FROM v) z` reads the view `v`."""
    defined = {str(c.alias_or_name).lower() for c in expression.find_all(exp.CTE)}
    if not defined:
        return frozenset()
    elsewhere = {
        str(t.name).lower()
        for t in expression.find_all(exp.Table)
        if not t.db and str(t.name).lower() in defined and not _cte_in_scope(t)
    }
    return frozenset(defined - elsewhere)


def _cte_in_scope(table: exp.Table) -> bool:
    """Whether a WITH entry named like `table` is visible where the table is read."""
    name = str(table.name).lower()
    node: Any = table
    via: Any = None  # the WITH entry whose body the climb is in
    while node.parent is not None:
        parent = node.parent
        if isinstance(node, exp.CTE):
            via = node
        with_ = parent.args.get("with_") if isinstance(parent, exp.Query) else None
        if isinstance(with_, exp.With):
            entries = list(with_.expressions)
            if node is with_:  # from an entry's body: itself only when RECURSIVE
                mine = next((i for i, e in enumerate(entries) if e is via), 0)
                entries = entries if with_.args.get("recursive") else entries[:mine]
            if any(str(e.alias_or_name).lower() == name for e in entries):
                return True
        node = parent
    return False


def _view_select(create: str) -> str:
    """The SELECT of a SQLite `CREATE VIEW` statement, in MySQL dialect ("" if unreadable)."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(create, read="sqlite")
        body = tree.expression if isinstance(tree, exp.Create) else None
        return body.sql(dialect="mysql") if isinstance(body, exp.Query) else ""
    except Exception:  # sqlglot raises several types: the view is then masked whole
        return ""


def _dbapi(conn: Connection) -> DBAPIConnection:
    """The driver connection under `conn` (None only once SQLAlchemy has invalidated it)."""
    raw = conn.connection.dbapi_connection
    if raw is None:
        raise QueryError("The connection was closed under the query; run it again.")
    return raw


def require_driver(url: URL) -> None:
    """The URL's driver is installed, or a `MissingExtra` with the exact pip line."""
    from hybridwb.extras import require

    module = drivers.MODULE_OF.get(url.get_driver_name())
    if module is not None:
        require(module, f"The source driver {url.drivername}://")


def _runner(conn: Connection) -> Any:
    """Constant statements of hybridwb's own, on the connection's DBAPI cursor."""
    raw = _dbapi(conn)

    def run(sql: str) -> list[Any]:
        # not `rawguard.internal`: SHOW GRANTS FOR names a role as the server printed it, so
        # the driver-level guard checks these texts like any other
        cursor = raw.cursor()
        try:
            cursor.execute(sql)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    return run


def _flat_values(params: Mapping[str, Any]) -> list[Any]:
    out: list[Any] = []
    for value in params.values():
        out.extend(value if isinstance(value, list) else [value])
    return out


def _detached(error: HybridwbError, message: str) -> HybridwbError:
    """The error with a scrubbed message and no chained cause or driver frames."""
    error.message = message
    error.args = (message,)
    error.__cause__ = None
    error.__context__ = None
    error.__suppress_context__ = True
    return error.with_traceback(None)


@contextmanager
def _sqlite_time_limit(raw: sqlite3.Connection, timeout: float | None) -> Iterator[None]:
    if timeout is None:
        yield
        return
    deadline = time.monotonic() + timeout
    raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    try:
        yield
    finally:
        raw.set_progress_handler(None, 0)
