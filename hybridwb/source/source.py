"""`Source`: guarded, capped, logged reads from MySQL/MariaDB or the SQLite sample."""

from __future__ import annotations

import sqlite3
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd
from pydantic import SecretStr
from sqlalchemy import Connection, Engine, bindparam, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlglot import exp

from hybridwb.config import Secrets, Settings, scrub
from hybridwb.errors import BindError, HybridwbError
from hybridwb.source import catalogue, guard
from hybridwb.source.binds import check_params
from hybridwb.source.engine import (
    SessionFacts,
    is_sqlite,
    mysql_engine,
    sqlite_engine,
    statement_timeout_sql,
)
from hybridwb.source.grants import write_privileges
from hybridwb.source.querylog import QueryLog, QueryLogEntry
from hybridwb.source.transpile import to_sqlite


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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Source:
    """Read-only access to the source database. Constructing it does no I/O."""

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
        secrets: list[str] | None = None,
        pool_size: int = 5,
        max_overflow: int = 5,
    ) -> None:
        # the password lives only in a SecretStr: vars(source) holds no plain secret
        self._password = SecretStr(str(url.password)) if url.password else None
        self.url = url._replace(password=None)
        self.row_cap = row_cap
        self.statement_timeout = statement_timeout
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.ssl_ca = ssl_ca
        self.ssl_mode = ssl_mode
        self.querylog = querylog if querylog is not None else QueryLog()
        self.use_guard = use_guard
        self.secrets = Secrets(secrets or ())
        self.secrets.add(url.password)
        self.pool_size = pool_size
        self.max_overflow = max_overflow
        self.facts = SessionFacts()
        self._cache: dict[tuple[Any, ...], tuple[float, list[str], list[Any], bool]] = {}
        self._engine: Engine | None = None
        self._ctx = catalogue.Context(
            host=f"{url.host}:{url.port or 3306}" if url.host else str(url.database),
            database=str(url.database or ""),
            user=str(url.username or ""),
        )

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
            pool_size=settings.pool_size,
            max_overflow=settings.max_overflow,
        )

    def __repr__(self) -> str:
        shown = self.url.set(password="***") if self._password else self.url
        return f"Source({shown.render_as_string(hide_password=True)!r})"

    # -- connections -----------------------------------------------------------------------
    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.url)

    @property
    def database(self) -> str:
        return str(self.url.database or "")

    @property
    def engine(self) -> Engine:
        """The pooled engine, created on first use (it is the only way to the source)."""
        if self._engine is None:
            if self.is_sqlite:
                from pathlib import Path

                path = Path(str(self.url.database))
                if not path.is_file():
                    raise HybridwbError(
                        f"The sample database {path} does not exist; run `hybridwb demo`."
                    )
                self._engine = sqlite_engine(path, self.facts, use_guard=self.use_guard)
            else:
                self._engine = mysql_engine(
                    self.url.set(
                        password=self._password.get_secret_value() if self._password else None
                    ),
                    self.facts,
                    statement_timeout=self.statement_timeout,
                    connect_timeout=self.connect_timeout,
                    read_timeout=self.read_timeout,
                    ssl_ca=self.ssl_ca,
                    ssl_mode=self.ssl_mode,
                    use_guard=self.use_guard,
                    pool_size=self.pool_size,
                    max_overflow=self.max_overflow,
                )
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    # -- reading ---------------------------------------------------------------------------
    def prepare(self, query: str, limit: int | None = None) -> tuple[str, guard.Checked, int]:
        """Guard, cap and (for the sample) transpile one statement; pure apart from facts."""
        cap = self.row_cap if limit is None else int(limit)
        if cap <= 0:
            raise BindError(f"limit must be a positive number of rows, not {limit!r}.")
        if self.use_guard:
            checked = guard.check(query)
        else:
            text_ = guard.check_text(query)
            checked = guard.Checked(text_, exp.Command(this=text_), "raw", ())
        expression = checked.expression
        sql = checked.sql
        if checked.kind == "select" and _needs_limit(expression, cap):
            expression = expression.copy().limit(cap + 1)
            sql = expression.sql(dialect="mysql")
        if self.is_sqlite and checked.kind != "raw":
            sql = to_sqlite(checked, expression)
        return sql, checked, cap

    def sql(
        self,
        query: str,
        params: Mapping[str, Any] | None = None,
        *,
        limit: int | None = None,
        timeout: float | None = None,
        cache_ttl: float | None = None,
    ) -> pd.DataFrame:
        """Run one read statement with bound parameters; returns a DataFrame.

        At most `limit` rows (default: the configured cap) come back; when rows were cut a
        `RowsCut` warning says so and `df.attrs["hybridwb"]["truncated"]` is True.
        """
        started = time.perf_counter()
        keys, rows, truncated = self._run(query, params, limit, timeout, cache_ttl)
        df = pd.DataFrame.from_records(rows, columns=keys)
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
    ) -> list[dict[str, Any]]:
        """Like `sql`, as plain dicts: missing values stay None (a DataFrame makes them
        NaN), and no DataFrame is built — what rendering and streaming want."""
        keys, rows, _ = self._run(query, params, limit, timeout, cache_ttl)
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def _run(
        self,
        query: str,
        params: Mapping[str, Any] | None,
        limit: int | None,
        timeout: float | None,
        cache_ttl: float | None = None,
    ) -> tuple[list[str], list[Any], bool]:
        """Guard, bind, execute, cap and log one statement (the path every read takes).

        With `cache_ttl`, an identical statement with identical parameters within that many
        seconds is answered from an in-process cache (previews use it; search does not)."""
        cache_key = None
        if cache_ttl:
            cache_key = (query, repr(sorted((params or {}).items())), limit)
            hit = self._cache.get(cache_key)
            if hit and hit[0] > time.monotonic():
                return hit[1], hit[2], hit[3]
        keys, rows, truncated = self._run_uncached(query, params, limit, timeout)
        if cache_key is not None and cache_ttl:
            self._cache[cache_key] = (time.monotonic() + cache_ttl, keys, rows, truncated)
        return keys, rows, truncated

    def clear_cache(self) -> None:
        self._cache.clear()

    def _run_uncached(
        self, query: str, params: Mapping[str, Any] | None, limit: int | None, timeout: float | None
    ) -> tuple[list[str], list[Any], bool]:
        started = time.perf_counter()
        normalized = guard.normalize(query) if isinstance(query, str) else "<not text>"
        try:
            sql, checked, cap = self.prepare(query, limit)
            normalized = checked.normalized() if checked.tokens else normalized
            clause = text(sql)
            bound = check_params(set(clause._bindparams), params)
            lists = [bindparam(k, expanding=True) for k, v in bound.items() if isinstance(v, list)]
            if lists:
                clause = clause.bindparams(*lists)
            keys, rows = self._execute(clause, bound, cap, timeout)
        except HybridwbError as exc:
            self._log(normalized, started, 0, scrub(str(exc), self.secrets))
            raise
        truncated = len(rows) > cap
        if truncated:
            rows = rows[:cap]
        self._log(normalized, started, len(rows), None)
        if truncated:
            warnings.warn(
                f"Showing the first {cap:,} rows; the rest were cut. "
                "Add a WHERE or LIMIT, or pass a larger limit.",
                RowsCut,
                stacklevel=3,
            )
        return keys, rows, truncated

    def _execute(
        self, clause: Any, params: dict[str, Any], cap: int, timeout: float | None
    ) -> tuple[list[str], list[Any]]:
        for attempt in (1, 2):
            try:
                with self.engine.connect() as conn:
                    with self._time_limit(conn, timeout):
                        result = conn.execute(
                            clause.execution_options(hybridwb_checked=True), params
                        )
                        keys = list(result.keys())
                        # plain tuples straight from the driver: a DataFrame builds 5x
                        # faster from them than from Row objects (text() has no typed
                        # columns, so no result processing is skipped)
                        rows = list(result.cursor.fetchmany(cap + 1)) if result.returns_rows else []
                        result.close()
                    conn.rollback()
                    return keys, rows
            except DBAPIError as exc:
                if attempt == 1 and catalogue.is_retryable(exc):
                    continue
                raise self.translate_error(exc, timeout) from None
            except SQLAlchemyError as exc:
                raise self.translate_error(exc, timeout) from None
        raise AssertionError("unreachable")

    def translate_error(self, exc: BaseException, timeout: float | None = None) -> HybridwbError:
        """A driver error as a one-line hybridwb error, secrets scrubbed."""
        ctx = catalogue.Context(
            self._ctx.host, self._ctx.database, self._ctx.user, timeout or self.statement_timeout
        )
        err = catalogue.translate(exc, ctx)
        # from_cause keeps the cause's type and code but none of its frames (they hold
        # the password in the driver's locals); callers raise it `from None`
        return type(err).from_cause(exc, scrub(err.message, self.secrets), **err.fields)

    @contextmanager
    def _time_limit(self, conn: Connection, timeout: float | None) -> Iterator[None]:
        """Apply a per-query statement time limit, and restore the session default after."""
        if timeout is None:
            yield
            return
        if timeout <= 0:
            raise BindError(f"timeout must be a positive number of seconds, not {timeout!r}.")
        raw = conn.connection.dbapi_connection
        if isinstance(raw, sqlite3.Connection):
            deadline = time.monotonic() + timeout
            raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
            try:
                yield
            finally:
                raw.set_progress_handler(None, 0)
            return
        set_limit = statement_timeout_sql(self.facts.flavour, timeout)
        conn.exec_driver_sql(set_limit, execution_options={"hybridwb_checked": True})
        try:
            yield
        finally:
            if not conn.invalidated:
                try:
                    conn.exec_driver_sql(
                        statement_timeout_sql(self.facts.flavour, self.statement_timeout),
                        execution_options={"hybridwb_checked": True},
                    )
                except DBAPIError:
                    conn.invalidate()

    def _log(self, normalized: str, started: float, rows: int, error: str | None) -> None:
        self.querylog.record(
            QueryLogEntry(
                database=self.database,
                query=normalized,
                executionTime=round((time.perf_counter() - started) * 1000, 3),
                resultCount=rows,
                status="error" if error else "success",
                errorMessage=error,
                kind="sqlite-sample" if self.is_sqlite else "mysql",
            )
        )

    # -- facts about the server ------------------------------------------------------------
    def test_connection(self) -> ConnectionInfo:
        """Reach the server and report what a careful user wants to know; never raises."""
        started = time.perf_counter()
        try:
            with self.engine.connect() as conn:
                run = _runner(conn)
                version = str(
                    run("SELECT VERSION()" if not self.is_sqlite else "SELECT sqlite_version()")[0][
                        0
                    ]
                )
                latency = (time.perf_counter() - started) * 1000
                if self.is_sqlite:
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
                variable = self.facts.timeout_variable
                tx_var = (
                    "tx_read_only" if self.facts.flavour == "MariaDB" else "transaction_read_only"
                )
                read_only = bool(run(f"SELECT @@session.{tx_var}")[0][0])
                limit = float(run(f"SELECT @@session.{variable}")[0][0])
                if self.facts.flavour == "MySQL":
                    limit = limit / 1000
                grants = [str(r[0]) for r in run("SHOW GRANTS")]
                writes = write_privileges(grants)
                cipher = run("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
                ssl = bool(cipher and cipher[0][1])
                conn.rollback()
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
                    self.database,
                )
        except (DBAPIError, SQLAlchemyError) as exc:
            err = self.translate_error(exc, None)
            return ConnectionInfo(
                "error",
                latency_ms=(time.perf_counter() - started) * 1000,
                database=self.database,
                error=err.message,
            )
        except HybridwbError as exc:
            return ConnectionInfo(
                "error", database=self.database, error=scrub(exc.message, self.secrets)
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


def _runner(conn: Connection) -> Any:
    def run(sql: str) -> list[Any]:
        return list(
            conn.exec_driver_sql(sql, execution_options={"hybridwb_checked": True}).fetchall()
        )

    return run


def _needs_limit(expression: exp.Expression, cap: int) -> bool:
    limit = expression.args.get("limit")
    if limit is None:
        return True
    value = limit.expression if isinstance(limit, exp.Limit) else None
    if isinstance(value, exp.Literal) and value.is_int:
        return int(value.this) > cap
    return False
