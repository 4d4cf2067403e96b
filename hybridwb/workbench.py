"""The workbench: one object holding config, source, store and mappings (the public API)."""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import warnings
import weakref
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from hybridwb.config import MAX_SAMPLE_CUSTOMERS, Settings, load_settings
from hybridwb.errors import (
    ConfigError,
    ConnectionFailed,
    HybridwbError,
    StoreError,
    ValidationError,
)
from hybridwb.extras import require
from hybridwb.mapping import MappingService
from hybridwb.search import SearchService
from hybridwb.source import ConnectionInfo, QueryLog, Source
from hybridwb.targets import TargetService
from hybridwb.templating import TemplateService
from hybridwb.validation import checked, checked_calls, column_names, short
from hybridwb.workflows import WorkflowService
from hybridwb.workflows.refusals import in_preview

if TYPE_CHECKING:
    import pandas as pd

    from hybridwb.mapping.model import FieldMapping
    from hybridwb.platform.repos import Variables
    from hybridwb.platform.store import Store
    from hybridwb.render import Table


@checked_calls("wb")
class Workbench:
    """Everything an analyst or a scheduled run needs, reached from one object.

    Constructing it does no I/O: connections open on first use. Use it as a context
    manager (`with hybridwb.connect() as wb:`) or call `close()`: closing hands the query
    log to the store. A workbench still open when the interpreter exits (a kernel that is
    shut down) is closed then; one collected without close() hands its query log to a
    store of its own, flushed at exit at the latest.
    """

    def __init__(self, settings: Settings, *, source: Source | None = None) -> None:
        if not isinstance(settings, Settings):
            raise ConfigError(
                f"Workbench needs Settings, not {type(settings).__name__}; use hybridwb.connect()."
            )
        self.settings = settings
        settings.store_sqlalchemy_url()  # a bad store URL or missing driver fails here, no I/O
        self.querylog = QueryLog()
        # the log reaches the store in batches while the workbench lives (the store is
        # opened by the first full batch), not only at close: a buffer never grows unseen
        self.querylog.sink = _StoreSink(self)
        self.source = (
            source if source is not None else Source.from_settings(settings, self.querylog)
        )
        self.source.querylog = self.querylog
        self.closed = False
        self._closing = False
        ref = weakref.ref(self)
        atexit.register(_close_at_exit, ref)
        # collected without close() (`hybridwb.connect().sql(...)`, or only `.source` kept):
        # its query log goes on to a store of its own, flushed at exit at the latest
        self._orphaned = weakref.finalize(self, _adopt_log, self.querylog, settings)
        self._orphaned.atexit = False  # alive at exit: `_close_at_exit` closes it

    def _check_open(self) -> None:
        """A closed workbench stays closed: using it would reopen pools nobody closes and
        log queries nobody saves."""
        if self.closed and not self._closing:
            raise ConnectionFailed(
                "This workbench is closed; open a new one with hybridwb.connect()."
            )

    def __repr__(self) -> str:
        # never raises: a traceback printed with locals calls it on a half-built workbench
        try:
            return f"Workbench(source={self.source!r}, store={self.store_description!r})"
        except Exception:
            return "Workbench(<not configured>)"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- source ----------------------------------------------------------------------------
    def sql(
        self,
        query: str,
        params: Mapping[str, Any] | None = None,
        *,
        limit: int | None = None,
        timeout: float | None = None,
        arrow: bool = False,
    ) -> pd.DataFrame:
        """Run one read-only statement on the source (MySQL dialect, `:name` binds).

        The values are intact; the frame's own display (repr, print, notebook HTML) masks
        the columns that carry personal data, traced through the query by lineage, which
        runs only when the frame is shown. `head()`/`tail()`/`sample()` keep that display;
        anything else derived from it is a plain DataFrame. `arrow=True`: Arrow dtypes (needs `hybridwb[arrow]`)."""
        from hybridwb.grid import SourceFrame, pii_columns, source_frame

        self._check_open()
        df = self.source.sql(
            query, params, limit=limit, timeout=timeout, arrow=arrow, frame_type=SourceFrame
        )
        ref = weakref.ref(self)

        def pii(columns: Sequence[Any]) -> set[str]:
            wb = ref()
            if wb is None:  # the workbench is gone: nothing can be traced
                return {str(c) for c in columns}
            fields, traced = wb.source_pii(query, columns)
            return pii_columns(columns, fields) | traced

        return source_frame(df, pii)

    def source_pii(self, sql: str, columns: Any) -> tuple[dict[str, FieldMapping], set[str]]:
        """The mapping's fields (pii by name) and the columns of a source result of `sql`
        that lineage traces to a pii field, through views too (hybridwb.lineage). No
        readable mapping: nothing is known to be pii by name; lineage still masks what it
        cannot follow."""
        from sqlalchemy.exc import SQLAlchemyError

        from hybridwb.lineage import pii_output_columns

        names = column_names(columns)
        from hybridwb.render import all_fields

        try:
            tables = self.mappings.tables()
        except HybridwbError:
            tables = {}
        pii = {n: {f for f, field in m.fields.items() if field.pii} for n, m in tables.items()}
        lowered = {name.lower(): m for name, m in tables.items()}

        def columns_of(table: str) -> list[str] | None:
            try:
                return self.source.column_names(table)
            except (HybridwbError, SQLAlchemyError):  # the mapping's fields, or unknown
                mapping = lowered.get(table)
                return list(mapping.fields) if mapping is not None else None

        def definition_of(name: str) -> str | None:
            try:
                return self.source.view_definition(name)
            except (HybridwbError, SQLAlchemyError):
                # cannot tell: a view unreadable is masked whole, a mapped table never asked
                return "" if name not in lowered else None

        return all_fields(tables), pii_output_columns(
            sql, names, pii, columns_of, definition_of=definition_of
        )

    def _traced_pii(self, sql: str, columns: list[str]) -> set[str]:
        """The columns of a source result of `sql` to mask: pii by name and by lineage."""
        from hybridwb.grid import pii_columns

        fields, traced = self.source_pii(sql, columns)
        return pii_columns(columns, fields) | traced

    def clear_cache(self) -> None:
        """Forget cached query results (previews cache for 30 s)."""
        self.source.clear_cache()

    def test_connection(self) -> ConnectionInfo:
        """Reach the source and report flavour, version, latency, read-only state and grants."""
        self._check_open()
        return self.source.test_connection()

    def ensure_sample(self, customers: int | None = None, *, rebuild: bool = False) -> Path | None:
        """Build the embedded sample source when it is the configured source and missing."""
        if customers is not None and (
            not isinstance(customers, int)
            or isinstance(customers, bool)
            or not 0 < customers <= MAX_SAMPLE_CUSTOMERS
        ):
            raise ConfigError(
                f"customers must be a whole number from 1 to {MAX_SAMPLE_CUSTOMERS:,}, "
                f"not {short(customers)}."
            )
        if not self.settings.source_is_sample:
            return None
        path = self.settings.sample_path
        if rebuild or not path.is_file():
            require("faker", "The embedded sample shop")
            from hybridwb.source.sample import build_sqlite

            self.source.close()
            try:
                build_sqlite(path, customers or self.settings.sample_customers)
            except OSError as exc:  # round 51: a home under a file, or not writable
                raise ConfigError(
                    f"Cannot build the sample shop at {short(str(path), 120)} "
                    f"({exc.strerror or type(exc).__name__}); set home (HYBRIDWB_HOME) to a "
                    "folder you can write."
                ) from None
        return path

    @cached_property
    def mappings(self) -> MappingService:
        """Table mappings: discover, suggest, get, save, activate, deactivate, check."""
        self._check_open()
        return MappingService(self.source, lambda: self.store, self.settings.mappings_path)

    @cached_property
    def search(self) -> SearchService:
        """`wb.search(table, term, limit=20, page=None, allow_scan=False)`."""
        self._check_open()
        return SearchService(self.mappings)

    @cached_property
    def targets(self) -> TargetService:
        """Target definitions: validate, preview (count, sample, quality), iter."""
        self._check_open()
        # the preview counts the run's consent exclusions with the run's own refusal read
        return TargetService(self.mappings, self.search, self._traced_pii, in_preview)

    @cached_property
    def workflows(self) -> WorkflowService:
        """Workflows: CRUD, papermill runs, resume, schedules."""
        self._check_open()
        return WorkflowService(
            self.settings,
            lambda: self.store,
            self.source,
            self.mappings,
            self.targets,
            self.templates,
        )

    @cached_property
    def templates(self) -> TemplateService:
        """Template library, variable extraction, automatic mapping and rendering."""
        self._check_open()
        service = TemplateService(lambda: self.store, self.mappings)
        service.limits = self.settings.message_limits
        return service

    @property
    def variables(self) -> Variables:
        """Individually managed variables (the original /api/supabase/individual-variables)."""
        return self.store.variables

    # -- store -----------------------------------------------------------------------------
    @cached_property
    def store(self) -> Store:
        """The platform store (SQLite, Postgres or Supabase REST), opened on first use."""
        self._check_open()
        from hybridwb.platform.store import open_store

        store = open_store(self.settings)
        from hybridwb.workflows.pending import flush

        flush(store, self.settings.home)  # a run's final status the store missed, written now
        return store

    @property
    def store_description(self) -> str:
        url = self.settings.store_sqlalchemy_url()
        if url is None:
            return f"supabase-rest:{self.settings.supabase_url}"  # its password was dropped
        return url.render_as_string(hide_password=True)

    # -- presentation ----------------------------------------------------------------------
    def table(
        self,
        rows: Any,
        table: str | None = None,
        *,
        columns: Sequence[str] | None = None,
        labels: Mapping[str, str] | None = None,
        reveal: bool = False,
        max_rows: int | None = None,
        caption: str = "",
    ) -> Table:
        """Rows for people to read, by the mapping: `wb.table(df, "members")`.

        Headers are display names, numbers and dates formatted by the field types, NULLs
        empty, and `pii` fields masked unless `reveal=True`. `table` names the mapped table
        the rows come from (its own fields win, its relations' read as `relation.field`);
        any other mapped field is known by its bare name (a joined column)."""
        from hybridwb.render import all_fields, field_index
        from hybridwb.render import table as render

        self._check_open()
        if table is not None and (not isinstance(table, str) or not table.strip()):
            raise ValidationError("Name the table as text, e.g. wb.table(df, 'members').")
        tables = self.mappings.tables()
        fields = all_fields(tables)  # a joined column (`monthly_fee`) by its bare name
        if table is not None:
            name, _ = self.mappings.resolve(table)
            fields |= field_index(tables, name, self.mappings.resolver.foreign_relations(tables))
        return render(
            rows,
            fields=fields,
            columns=columns,
            labels=labels,
            reveal=reveal,
            max_rows=max_rows,
            caption=caption,
        )

    def status_line(self) -> str:
        """One short line: where the source and store are and whether the source is safe."""
        info = self.test_connection()
        if info.status != "ok":
            return f"hybridwb: source FAILED — {info.error}"
        safety = "read-only" if info.read_only else "NOT read-only"
        if info.can_write:
            safety += ", account CAN WRITE: " + ", ".join(info.write_privileges[:3])
        where = "embedded sample" if self.settings.source_is_sample else repr(self.source)[8:-2]
        return (
            f"hybridwb: source {info.flavour} {info.version.split('-')[0]} ({where}, {safety}, "
            f"{info.latency_ms:.0f} ms) · store {self.store_description}"
        )

    def close(self) -> None:
        """Write the query log to the store and release every connection (idempotent)."""
        if self.closed:
            return
        self.closed = True
        self._orphaned.detach()  # the log is handed over here
        self._closing = True  # the query log's last batch may still open the store
        try:
            self.querylog.flush()  # opens the store when entries are pending
            if self.querylog.pending and "store" not in self.__dict__:
                # the store could not even be opened (a write that failed stays quiet,
                # as a query's own logging does)
                warnings.warn(
                    f"The query log was not saved: {self.querylog.last_error}",
                    RuntimeWarning,
                    stacklevel=2,
                )
        finally:
            self._closing = False
            for service in ("mappings", "search", "targets", "workflows", "templates"):
                self.__dict__.pop(service, None)  # the next use asks again, and is refused
            self.source.close()
            if "store" in self.__dict__:
                self.__dict__.pop("store").close()


class _StoreSink:
    """The query log's sink: the workbench's store, opened when the first batch is due."""

    def __init__(self, wb: Workbench) -> None:
        self._wb = weakref.ref(wb)  # the atexit hook must not keep the workbench alive
        self._lock = threading.Lock()  # one store is opened, however many threads log
        _SINKS.add(self)

    def _live(self) -> Workbench:
        wb = self._wb()
        if wb is None:  # the batch stays pending for the log's next sink (`_adopt_log`)
            raise StoreError("The workbench is gone; its query log was not written.")
        return wb

    def write_query_logs(self, entries: list[Any]) -> None:
        wb = self._live()
        with self._lock:
            wb.store.write_query_logs(entries)

    def write_query_log_rows(self, rows: list[Any]) -> None:
        wb = self._live()
        with self._lock:
            wb.store.write_query_log_rows(rows)

    def __repr__(self) -> str:
        return "<query log sink: the workbench's store>"


class _OwnStoreSink:
    """The query log's sink once its workbench was collected without close(): a store of
    its own, opened from the same settings when the first batch is due."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._store: Any = None
        self._lock = threading.Lock()
        _SINKS.add(self)

    def _open(self) -> Any:
        if self._store is None:
            from hybridwb.platform.store import open_store

            self._store = open_store(self._settings)
        return self._store

    def write_query_logs(self, entries: list[Any]) -> None:
        with self._lock:
            self._open().write_query_logs(entries)

    def write_query_log_rows(self, rows: list[Any]) -> None:
        with self._lock:
            self._open().write_query_log_rows(rows)

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    def __repr__(self) -> str:
        return "<query log sink: a store of the collected workbench's settings>"


#: every query log sink of this process, for the fork hook
_SINKS: weakref.WeakSet[_StoreSink | _OwnStoreSink] = weakref.WeakSet()


def _renew_sink_locks() -> None:
    """In a forked child: a sink's lock another thread of the parent held at the fork
    (writing a batch of the query log) would stay held forever, and the child's first
    batch wait for it."""
    for sink in list(_SINKS):
        sink._lock = threading.Lock()


os.register_at_fork(after_in_child=_renew_sink_locks)


def _adopt_log(log: QueryLog, settings: Settings) -> None:
    """A workbench was collected without close(): what its source still logs, and what was
    pending, go to a store of its own, and the rest is flushed when the process ends."""
    sink = _OwnStoreSink(settings)
    log.sink = sink
    atexit.register(_flush_at_exit, log, sink)


def _flush_at_exit(log: QueryLog, sink: _OwnStoreSink) -> None:
    with contextlib.suppress(Exception):  # the interpreter is going away: best effort
        try:
            log.flush()
        finally:
            sink.close()


def _close_at_exit(ref: weakref.ref[Workbench]) -> None:
    wb = ref()
    if wb is not None and not wb.closed:
        with contextlib.suppress(Exception):  # the interpreter is going away: best effort
            wb.close()


@checked("hybridwb.connect")
def connect(
    source: str | None = None,
    store: str | None = None,
    *,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    **settings: Any,
) -> Workbench:
    """Build a workbench from arguments, environment, `.env` and `[tool.hybridwb]`.

    With nothing configured the source is the embedded sample shop (built on first use)
    and the store an SQLite file under `.hybridwb/`.
    """
    for what, value in (("source", source), ("store", store)):
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{what} must be a database URL (text), not {type(value).__name__}.")
    if cwd is not None and (not isinstance(cwd, str | Path) or not Path(cwd).is_dir()):
        raise ConfigError(f"cwd must be a folder (a path), not {short(cwd)}.")
    loaded = load_settings(
        Path(cwd) if cwd is not None else None, env, source_url=source, store_url=store, **settings
    )
    wb = Workbench(loaded)
    wb.ensure_sample()
    return wb
