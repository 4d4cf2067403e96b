"""Store backends: the few primitive operations every backend offers.

`SqlBackend` serves SQLite and Postgres (including Supabase's connection string and its
transaction-mode pooler); `RestBackend` (rest.py) serves Supabase's REST API. Repositories
(repos.py) hold validation and auditing and speak only these primitives.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from sqlalchemy import Engine, and_, create_engine, delete, event, func, insert, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, SQLAlchemyError

from hybridwb.errors import AuthError, StoreError, ValidationError
from hybridwb.platform import schema

T = TypeVar("T")


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


def integrity_message(exc: IntegrityError) -> tuple[str, str | None]:
    """(what collided, field) from a unique/foreign-key violation on any SQL backend."""
    orig = exc.orig
    diag = getattr(orig, "diag", None)
    constraint = getattr(diag, "constraint_name", None)
    detail = getattr(diag, "message_detail", None) or str(orig)
    match = _SQLITE_UNIQUE.search(str(orig))
    if match:
        cols = [c.split(".")[-1] for c in match.group(1).split(", ")]
        return f"{', '.join(cols)} already exists", cols[-1]
    if constraint:
        field = constraint.removesuffix("_key").split("_")[-1]
        if "foreign" in str(orig).lower() or constraint.endswith("_fkey"):
            return f"refers to a row that does not exist ({constraint})", None
        return f"{detail.strip()}".replace("Key ", "").rstrip("."), field
    return str(orig).splitlines()[0], None


def retrying(fn: Callable[[], T], attempts: int = 3, base_delay: float = 0.2) -> T:
    """Run `fn`, retrying transient connection faults with backoff (never constraint errors)."""
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except IntegrityError:
            raise
        except (OperationalError, DBAPIError) as exc:
            transient = exc.connection_invalidated or isinstance(exc, OperationalError)
            if not transient or attempt == attempts:
                raise
            time.sleep(base_delay * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


class SqlBackend:
    """SQLite or Postgres through SQLAlchemy Core."""

    def __init__(self, url: URL, secrets: list[str] | None = None) -> None:
        self.url = url
        self.name = url.get_backend_name()
        self.secrets = secrets or []
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            if self.name == "sqlite":
                from pathlib import Path

                if self.url.database:
                    Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
                self._engine = create_engine(self.url, connect_args={"timeout": 30})

                @event.listens_for(self._engine, "connect")
                def _pragmas(dbapi_conn: Any, record: Any) -> None:
                    cur = dbapi_conn.cursor()
                    cur.execute("PRAGMA foreign_keys = ON")
                    cur.execute("PRAGMA journal_mode = WAL")
                    cur.execute("PRAGMA busy_timeout = 30000")
                    cur.close()

            elif self.name == "postgresql":
                # prepare_threshold=None: no server-side prepared statements, which
                # Supabase's transaction-mode pooler (pgbouncer/supavisor) cannot keep
                self._engine = create_engine(
                    self.url,
                    pool_pre_ping=True,
                    pool_size=5,
                    max_overflow=10,
                    connect_args={"prepare_threshold": None, "connect_timeout": 10},
                )
            else:
                raise StoreError(
                    f"The platform store must be SQLite or Postgres, not {self.name}; "
                    "set HYBRIDWB_STORE_URL or SUPABASE_DB_URL."
                )
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Translate driver errors into store errors users can act on."""
        try:
            yield
        except IntegrityError as exc:
            what, field = integrity_message(exc)
            raise ValidationError(f"{what}; nothing was saved.", field=field) from exc
        except DBAPIError as exc:
            text = str(exc.orig).splitlines()[0] if exc.orig else str(exc)
            for secret in self.secrets:
                text = text.replace(secret, "***")
            if "password authentication failed" in text or (
                "role" in text and "does not exist" in text
            ):
                raise AuthError(
                    f"The platform store refused the login: {text}. Check SUPABASE_DB_URL."
                ) from exc
            if isinstance(exc, OperationalError):
                raise StoreError(
                    f"The platform store is unreachable: {text}. Is it running?"
                ) from exc
            raise StoreError(f"The platform store failed: {text}.") from exc

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

        def run() -> list[dict[str, Any]]:
            with self.engine.connect() as conn:
                return [dict(r._mapping) for r in conn.execute(stmt)]

        with self.errors():
            return retrying(run)

    def count(self, table: str, where: dict[str, Any] | None = None) -> int:
        tbl = schema.metadata.tables[table]
        stmt = select(func.count()).select_from(tbl).where(self._where(tbl, where))

        def run() -> int:
            with self.engine.connect() as conn:
                return int(conn.execute(stmt).scalar_one())

        with self.errors():
            return retrying(run)

    def apply(self, ops: list[Op]) -> None:
        def run() -> None:
            with self.engine.begin() as conn:
                for op in ops:
                    tbl = schema.metadata.tables[op.table]
                    if op.kind == "insert":
                        conn.execute(insert(tbl).values(**(op.values or {})))
                    elif op.kind == "update":
                        conn.execute(
                            update(tbl)
                            .where(self._where(tbl, op.where))
                            .values(**(op.values or {}))
                        )
                    else:
                        conn.execute(delete(tbl).where(self._where(tbl, op.where)))

        with self.errors():
            retrying(run)

    def insert_ignore(self, table: str, rows: list[dict[str, Any]], conflict: list[str]) -> int:
        """Insert rows, skipping those whose `conflict` key exists; returns rows inserted."""
        if not rows:
            return 0
        tbl = schema.metadata.tables[table]
        if self.name == "postgresql":
            run = lambda: self._copy_ignore(tbl, rows, conflict)  # noqa: E731
        else:

            def run() -> int:
                stmt = sqlite_insert(tbl).on_conflict_do_nothing(index_elements=conflict)
                inserted = 0
                with self.engine.begin() as conn:
                    for start in range(0, len(rows), 5000):
                        # sqlite3 sums rowcount over executemany: the rows really inserted
                        inserted += conn.execute(stmt, rows[start : start + 5000]).rowcount
                return inserted

        with self.errors():
            return retrying(run)

    def _copy_ignore(self, tbl: Any, rows: list[dict[str, Any]], conflict: list[str]) -> int:
        """COPY into a temporary table, then INSERT ... ON CONFLICT DO NOTHING (Postgres)."""
        from psycopg.types.json import Jsonb

        cols = [c.name for c in tbl.columns]
        json_cols = {
            i
            for i, c in enumerate(tbl.columns)
            if isinstance(c.type.dialect_impl(self.engine.dialect), JSONB)
        }
        quoted = ", ".join(f'"{c}"' for c in cols)
        with self.engine.begin() as conn:
            raw = conn.connection.dbapi_connection
            with raw.cursor() as cur:
                cur.execute(
                    f'CREATE TEMPORARY TABLE "_load_{tbl.name}" (LIKE "{tbl.name}" INCLUDING DEFAULTS) ON COMMIT DROP'
                )
                with cur.copy(f'COPY "_load_{tbl.name}" ({quoted}) FROM STDIN') as copy:
                    for row in rows:
                        values = [row.get(c) for c in cols]
                        for i in json_cols:
                            if values[i] is not None:
                                values[i] = Jsonb(values[i])
                        copy.write_row(values)
                cur.execute(
                    f'INSERT INTO "{tbl.name}" ({quoted}) SELECT {quoted} FROM "_load_{tbl.name}" '
                    f"ON CONFLICT ({', '.join(conflict)}) DO NOTHING"
                )
                return int(cur.rowcount)

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


__all__ = ["Backend", "Op", "SQLAlchemyError", "SqlBackend", "retrying"]
