"""`Store`: the platform's own database behind one interface, whatever the backend."""

from __future__ import annotations

import contextlib
import getpass
import os
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect, select
from sqlalchemy.engine import URL

from hybridwb.config import Settings
from hybridwb.errors import HybridwbError, StoreError, ValidationError
from hybridwb.extras import require
from hybridwb.platform import migrate, schema
from hybridwb.platform.backend import Backend, Op, SqlBackend
from hybridwb.platform.console import pii_columns, run_sql
from hybridwb.platform.repos import Mappings, Runs, Templates, Variables, Workflows
from hybridwb.platform.schema import now
from hybridwb.platform.times import utc_text, utc_texts
from hybridwb.source.querylog import LogRow, QueryLogEntry
from hybridwb.validation import checked_calls, column_names, short

if TYPE_CHECKING:
    import pandas as pd

SEED_CATEGORIES = [
    ("welcome", "가입 환영"),
    ("renewal", "구독 갱신 안내"),
    ("payment", "결제 안내"),
    ("marketing", "마케팅"),
]
SEED_TEMPLATES = [
    {
        "name": "가입 환영 (SMS)",
        "category": "welcome",
        "message_type": "SMS",
        "content": "{{ 고객명 }}님, 가입을 환영합니다!",
        "variables": ["고객명"],
    },
    {
        "name": "구독 만료 안내 (알림톡)",
        "category": "renewal",
        "message_type": "alimtalk",
        "content": "#{고객명}님, 구독이 #{만료일}에 만료됩니다. 갱신을 원하시면 앱에서 확인해 주세요.",
        "variables": ["고객명", "만료일"],
    },
]
LISTINGS = {
    "workflows": ("workflows", ["name", "status", "trigger_type", "updated_at"]),
    "templates": (
        "message_templates",
        ["name", "category", "message_type", "usage_count", "updated_at"],
    ),
    "variables": (
        "individual_variables",
        ["name", "source_type", "source", "usage_count", "last_used_at"],
    ),
    "mappings": ("table_mappings", ["name", "version", "is_active", "updated_at"]),
    "runs": (
        "workflow_runs",
        ["id", "workflow_id", "status", "target_count", "sent_count", "created_at"],
    ),
}


@checked_calls("wb.store")
class Store:
    """Workflows, templates, variables, mappings, runs, logs. Constructing it does no I/O."""

    def __init__(self, backend: Backend, actor: str | None = None) -> None:
        self.backend = backend
        self.actor = actor or getpass.getuser()
        self._created: dict[str, Any] | None = None
        self.workflows = Workflows(backend, actor)
        self.templates = Templates(backend, actor)
        self.variables = Variables(backend, actor)
        self.mappings = Mappings(backend, actor)
        self.runs = Runs(backend)

    def __repr__(self) -> str:
        return f"Store({self.backend.name})"

    @property
    def is_sql(self) -> bool:
        return isinstance(self.backend, SqlBackend)

    def _sql_backend(self, what: str) -> SqlBackend:
        if not isinstance(self.backend, SqlBackend):
            raise StoreError(
                f"{what} needs a SQL connection to the store; set SUPABASE_DB_URL "
                "(Supabase: Project Settings -> Database -> Connection string)."
            )
        return self.backend

    # -- schema ----------------------------------------------------------------------------
    def init(self, seed: bool = True) -> dict[str, Any]:
        """Create or upgrade the schema and seed it; running it twice changes nothing."""
        backend = self._sql_backend("hybridwb init")
        with backend.errors(), backend.engine.begin() as conn:
            before, after = migrate.upgrade(conn)
        backend.expect_schema = None  # just brought to head
        seeded = self.seed() if seed else 0
        created, self._created = self._created, None
        if (
            created and before == after
        ):  # this process created the embedded store a moment ago: say so
            before, seeded = created["from"], seeded + created["seeded"]
        return {"from": before, "to": after, "seeded": seeded, "backend": backend.name}

    def schema_version(self) -> str | None:
        backend = self._sql_backend("Reading the schema version")
        stmt = select(schema.alembic_version.c.version_num)
        with backend.errors(), backend.engine.connect() as conn:
            if not inspect(conn).has_table(schema.alembic_version.name):
                return None
            return conn.execute(stmt).scalar()

    def seed(self) -> int:
        """Template categories and example templates, each added only when missing."""
        added = 0
        ops: list[Op] = []
        for name, description in SEED_CATEGORIES:
            if not self.backend.select("template_categories", {"name": name}):
                ops.append(
                    Op(
                        "insert",
                        "template_categories",
                        {
                            "id": uuid.uuid4(),
                            "name": name,
                            "description": description,
                            "created_at": now(),
                        },
                    )
                )
        if ops:
            self.backend.apply(ops)
            added += len(ops)
        for template in SEED_TEMPLATES:
            if not self.backend.select("message_templates", {"name": template["name"]}):
                self.templates.create(**template)
                added += 1
        return added

    # -- schedules -------------------------------------------------------------------------
    def claim_schedule(self, workflow_id: Any, scheduled_for: Any, owner: str) -> bool:
        """Take the lock for one workflow at one scheduled time; False if someone has it.

        The lock is a row keyed by (workflow, time): the primary key lets exactly one
        claimant insert it, on SQLite and Postgres alike, and it outlives the process, so
        a second cron call a minute later cannot run the same slot again.
        """
        from hybridwb.platform.repos import as_uuid

        if not isinstance(scheduled_for, datetime):
            raise ValidationError(
                f"scheduled_for must be a datetime, not {type(scheduled_for).__name__}."
            )
        if not isinstance(owner, str) or not owner.isprintable() or len(owner) > 200:
            raise ValidationError(
                f"owner must be a short printable text such as 'host#pid', not {short(owner)}."
            )
        row = {
            "workflow_id": as_uuid(workflow_id),
            # kept in UTC by the column's type (`times.StoreTime`): a slot given in Seoul
            # is the slot given in UTC, on SQLite as on PostgreSQL's timestamptz key
            "scheduled_for": scheduled_for,
            "owner": owner,
            "run_id": None,
            "locked_at": now(),
        }
        return (
            self.backend.insert_ignore("schedule_locks", [row], ["workflow_id", "scheduled_for"])
            == 1
        )

    # -- logs ------------------------------------------------------------------------------
    def write_query_logs(self, entries: list[QueryLogEntry]) -> None:
        """Persist a batch of QueryLog entries in one round trip (`write_query_log_rows`)."""
        if not isinstance(entries, list) or not all(isinstance(e, QueryLogEntry) for e in entries):
            raise ValidationError("entries must be a list of QueryLogEntry (from wb.querylog).")
        self.write_query_log_rows([e.as_row() for e in entries])

    def write_query_log_rows(self, rows: list[LogRow]) -> None:
        """Persist a batch of query log rows (`QueryLogEntry.as_row`) in one round trip. On
        the SQLite store the rows go as the values SQLite stores (ids as 32 hex digits,
        times as the time columns' text, in UTC: `times.utc_texts`), without a dict, a UUID
        object and two bind processors per entry."""
        if not isinstance(rows, list) or not all(
            type(r) is tuple and len(r) == 8 and isinstance(r[7], datetime) for r in rows
        ):
            raise ValidationError("rows must be a list of QueryLogEntry.as_row() tuples.")
        backend = self.backend
        if any(type(r[0]) is str and len(r[0]) > _DATABASE_LENGTH for r in rows):
            # a name longer than the column (a source URL's pasted garbage, a SQLite
            # source's deep path) is cut to it: Postgres refuses it, and the whole batch with
            # it, on every retry; SQLite would keep it whole
            rows = [(r[0][:_DATABASE_LENGTH] if r[0] else r[0], *r[1:]) for r in rows]
        times = [r[7] for r in rows]
        if isinstance(backend, SqlBackend) and backend.name == "sqlite":
            stored = [
                # Uuid's bind on SQLite: `.hex`
                (format(n, "032x"), at, r[0], r[1], r[2], r[3], r[4], r[5], r[6])
                for n, at, r in zip(log_id_numbers(times), sqlite_times(times), rows, strict=True)
            ]
            backend.insert_ignore_stored("query_logs", _LOG_COLUMNS, stored, ["id"])
            return
        ids = log_ids(times)
        dicts = [
            {
                "id": ids[i],
                "timestamp": r[7],
                "database": r[0],
                "query": r[1],
                "execution_time": r[2],
                "result_count": r[3],
                "status": r[4],
                "error_message": r[5],
                "kind": r[6],
            }
            for i, r in enumerate(rows)
        ]
        self.backend.insert_ignore("query_logs", dicts, ["id"])

    # -- SQL and listings ------------------------------------------------------------------
    def sql(
        self,
        query: str,
        params: dict[str, Any] | None = None,
        *,
        write: bool = False,
        limit: int | None = None,
        timeout: float | None = None,
    ) -> pd.DataFrame:
        """Run SQL on the store: reads read-only and time-limited; writes need write=True
        and are audited (see console.py)."""
        backend = self._sql_backend("%%platform")
        return run_sql(
            backend, query, params, write=write, limit=limit, timeout=timeout, actor=self.actor
        )

    def pii_columns(self, query: str, columns: Any) -> set[str]:
        """The columns of a `sql(query)` result that carry personal data, traced through
        aliases and expressions to the store's pii columns (`schema.PII`), for display."""
        names = column_names(columns)
        name = getattr(self.backend, "name", "postgresql")
        dialect = "sqlite" if name == "sqlite" else "postgres"
        return pii_columns(query, names, dialect)

    def listing(self, what: str) -> pd.DataFrame:
        """`%platform workflows|templates|variables|mappings|runs` as a DataFrame."""
        if not isinstance(what, str) or what not in LISTINGS:
            raise ValidationError(
                f"Unknown listing {short(what)}; use one of {', '.join(LISTINGS)}."
            )
        import pandas as pd

        table, cols = LISTINGS[what]
        rows = self.backend.select(table, order_by="created_at", desc=True, limit=1000)
        return pd.DataFrame([{c: r.get(c) for c in cols} for r in rows], columns=cols)

    def close(self) -> None:
        self.backend.close()


def open_store(settings: Settings, actor: str | None = None) -> Store:
    """The store the settings name: a SQL URL when given, else Supabase REST, else SQLite.

    Opening never migrates: the schema is compared with this code's on first use and a
    mismatch says "run `hybridwb init`". The one exception is an SQLite file that does not
    exist yet — the embedded store is ours to create, once.
    """
    url = settings.store_sqlalchemy_url()
    secrets = settings.secret_values()
    if url is None:
        require("postgrest", "The Supabase REST backend")  # a missing extra: its pip line
        from hybridwb.platform.rest import RestBackend

        return Store(RestBackend.from_settings(settings), actor)
    backend = SqlBackend(url, secrets, expect_schema=migrate.head_revision())
    store = Store(backend, actor)
    if backend.name == "sqlite" and url.database and not Path(url.database).exists():
        try:
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # round 51: a raw FileNotFoundError or FileExistsError
            backend.close()
            raise StoreError(
                f"Cannot make the folder of the SQLite store {short(url.database, 120)} "
                f"({exc.strerror or type(exc).__name__}); point the store URL (or home) at a "
                "folder you can write."
            ) from None
        store._created = _create_sqlite(Path(url.database), actor)
    return store


def _create_sqlite(path: Path, actor: str | None) -> dict[str, Any] | None:
    """Create an SQLite store whole, or not at all: migrated and seeded under a temporary
    name, then linked into place only if no other process got there first (two kernels
    starting at once never see a half-made store). None when another process won.

    The migrations run once per process (`_migrated_image`); each store after the first
    starts as a copy of that schema and is seeded on its own."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    image = _migrated_image(path.parent)
    if image is not None:
        # the mode SQLite gives a file it makes (0644 less the umask), not Python's 0666:
        # under a umask of 002 or 0 the store was writable by the group or by everyone
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _SQLITE_MODE), "wb") as f:
            f.write(image)
    fresh = Store(SqlBackend(URL.create("sqlite", database=str(tmp))), actor)
    report: dict[str, Any] | None
    try:
        if image is None:
            report = fresh.init()
        else:  # at head already (the image's): only seeded
            seeded = fresh.seed()
            report = {"from": None, "to": migrate.head_revision(), "seeded": seeded}
            report["backend"] = "sqlite"
        fresh.close()
        _sync(tmp)  # the bytes on disk before the name is (SQLite's close syncs them too)
        try:
            os.link(tmp, path)  # atomic, and fails if the store exists by now
        except FileExistsError:
            report = None
    finally:
        fresh.close()
        _remove_sqlite(tmp)
    if report is not None:
        _sync_folder(path.parent)  # the new name on disk: a crash does not take it back
    return report


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_folder(folder: Path) -> None:
    """The folder's entries on disk; where a folder cannot be opened or synced (Windows,
    some network file systems) the link stands as the system keeps it."""
    with contextlib.suppress(OSError):
        _sync(folder)


#: the mode SQLite creates a database file with (SQLITE_DEFAULT_FILE_PERMISSIONS)
_SQLITE_MODE = 0o644
#: (head revision, the file of an SQLite store just migrated to it and not seeded)
_IMAGE: tuple[str, bytes] | None = None
_IMAGE_LOCK = threading.Lock()


def _new_image_lock() -> None:
    """In a forked child: a lock another thread of the parent held at the fork (making the
    image) would stay held forever, and the child's first new store wait for it."""
    global _IMAGE_LOCK
    _IMAGE_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_new_image_lock)


def _migrated_image(where: Path) -> bytes | None:
    """The bytes of an empty SQLite store at this code's schema, made by the migrations
    the first time a process creates a store (a process that creates many, a test run or
    a server of many projects, paid ~0.2 s of DDL for each). None when it cannot be made
    here: the store is then migrated in place, as the first one is."""
    global _IMAGE
    head = migrate.head_revision()
    with _IMAGE_LOCK:
        if _IMAGE is not None and _IMAGE[0] == head:
            return _IMAGE[1]
        made = where / f".hybridwb-schema.{uuid.uuid4().hex}.tmp"
        try:
            blank = Store(SqlBackend(URL.create("sqlite", database=str(made))))
            try:
                blank.init(seed=False)
            finally:
                blank.close()
            if made.with_name(made.name + "-wal").exists():
                return None  # not folded into the file on close: not a whole image
            _IMAGE = (head, made.read_bytes())
        except (OSError, HybridwbError):
            return None
        finally:
            _remove_sqlite(made)
        return _IMAGE[1]


def _remove_sqlite(path: Path) -> None:
    for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)


def log_id(at: datetime) -> uuid.UUID:
    """A query log entry's id: a UUID version 7 (RFC 9562), its first 48 bits the entry's
    time in milliseconds, the rest random. Entries are written in time order, so each id
    lands at the end of the primary key's index: a random (version 4) id lands anywhere,
    and on a log of some thousand entries each write then touched pages all over the
    index (the kernel time of a search's log write grew with the log)."""
    return log_ids([at])[0]


def log_ids(times: list[datetime]) -> list[uuid.UUID]:
    """`log_id` of each time, with the random bits of all of them read from the system in
    one call (a batch of the query log: one `getrandom` instead of one per entry)."""
    return [uuid.UUID(int=n) for n in log_id_numbers(times)]


def log_id_numbers(times: list[datetime]) -> list[int]:
    """The 128-bit numbers of `log_ids`."""
    pool = os.urandom(10 * len(times))
    out = []
    for i, at in enumerate(times):
        # a naive time is the store's UTC (`times.utc_wall`), not this machine's local
        # time, which `timestamp()` reads it in
        utc = at if at.utcoffset() is not None else at.replace(tzinfo=UTC)
        ms = int(utc.timestamp() * 1000) & (2**48 - 1)
        rand = int.from_bytes(pool[10 * i : 10 * i + 10], "big")  # 80 bits, 74 of them kept
        value = (ms << 80) | (0x7 << 76) | ((rand >> 64) & 0xFFF) << 64 | 0x2 << 62
        out.append(value | rand & (2**62 - 1))
    return out


#: the length of `query_logs.database` (a query log row's database is cut to it)
_DATABASE_LENGTH: int = schema.query_logs.c.database.type.length  # type: ignore[attr-defined]

#: the query log's columns in the order `write_query_logs` gives them on SQLite
_LOG_COLUMNS = (
    "id",
    "timestamp",
    "database",
    "query",
    "execution_time",
    "result_count",
    "status",
    "error_message",
    "kind",
)


def sqlite_time(at: datetime) -> str:
    """A datetime as the SQLite store's time columns hold it (`times.utc_text`)."""
    return utc_text(at)


def sqlite_times(times: list[datetime]) -> list[str]:
    """`sqlite_time` of each time (`times.utc_texts`: made once per second of the batch)."""
    return utc_texts(times)
