"""Repositories: CRUD with validation and an audit row written in the same transaction."""

from __future__ import annotations

import builtins
import getpass
import uuid
from datetime import date, datetime
from typing import Any, ClassVar

from hybridwb.errors import NotFound, ValidationError
from hybridwb.platform import schema
from hybridwb.platform.backend import Backend, Op
from hybridwb.platform.models import MappingIn, TemplateIn, VariableIn, WorkflowIn, validate
from hybridwb.platform.schema import now
from hybridwb.validation import INT64, checked_calls, short


def jsonable(value: Any) -> Any:
    """UUIDs and dates as text, recursively: what JSON columns and PostgREST accept."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


def as_uuid(value: Any) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError, RecursionError):  # (str of a deep dict)
        return None


def _key_text(key: Any) -> str:
    """A looked-up key as text; "" for one with no text (a dict nested past the stack)."""
    try:
        return str(key)
    except RecursionError:
        return ""


def lookup_text(value: str, what: str) -> str:
    """A name looked up in the store: text the store's driver can send, or one clear error."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(
            f"The {what} is not valid text (a lone surrogate); retype it."
        ) from None
    if "\x00" in value:  # no store text holds one (PostgreSQL refused the lookup)
        raise ValidationError(f"The {what} holds a NUL character; retype it.")
    return value


class Repository:
    """create / get / list / update / delete for one entity, audited."""

    entity = ""
    table = ""
    model: Any = None
    timestamps = ("created_at", "updated_at")
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, backend: Backend, actor: str | None = None) -> None:
        self.backend = backend
        self.actor = actor or getpass.getuser()

    def _audit(self, action: str, entity_id: Any, before: Any, after: Any) -> Op:
        return Op(
            "insert",
            "audit_log",
            {
                "id": uuid.uuid4(),
                "actor": self.actor,
                "action": action,
                "entity": self.entity,
                "entity_id": str(entity_id),
                "before": jsonable(before),
                "after": jsonable(after),
                "at": now(),
            },
        )

    def _validated(self, data: dict[str, Any]) -> dict[str, Any]:
        return validate(self.model, self.entity, data)

    def _check_unique_name(self, name: str, exclude: Any = None) -> None:
        rows = self.backend.select(self.table, {"name": name})
        if any(r["id"] != exclude for r in rows):
            raise ValidationError(
                f"{self.entity}.name {name!r} already exists; choose another name. Nothing was saved.",
                field="name",
            )

    def create(self, **fields: Any) -> dict[str, Any]:
        data = self._validated(fields)
        self._check_unique_name(data["name"])
        row = {"id": uuid.uuid4(), **self.defaults, **data}
        stamp = now()
        for col in self.timestamps:
            row[col] = stamp
        self.backend.apply(
            [Op("insert", self.table, row), self._audit("create", row["id"], None, row)]
        )
        return row

    def get(self, key: Any) -> dict[str, Any]:
        """By id or by name."""
        ident = as_uuid(key)
        name = None if ident else lookup_text(_key_text(key), f"{self.entity} name")
        rows = self.backend.select(self.table, {"id": ident} if ident else {"name": name})
        if not rows:
            raise NotFound(
                f"No {self.entity} {short(key)}; list them with %platform {self.table}.", key=key
            )
        return rows[0]

    def list(self, limit: int | None = None, **where: Any) -> list[dict[str, Any]]:
        columns = schema.metadata.tables[self.table].c
        for column, value in where.items():
            if column not in columns:
                raise ValidationError(
                    f"{self.entity}s have no field {short(column)}; filter on one of "
                    f"{', '.join(c.name for c in columns)}."
                )
            if isinstance(value, str):
                lookup_text(value, f"{self.entity}.{column}")
            elif isinstance(value, int) and not isinstance(value, bool) and value not in INT64:
                raise ValidationError(f"{self.entity}.{column}: {short(value)} is out of range.")
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit < 2**31
        ):
            raise ValidationError(f"limit must be a positive whole number, not {short(limit)}.")
        return self.backend.select(self.table, where or None, order_by="created_at", limit=limit)

    def update(self, key: Any, **fields: Any) -> dict[str, Any]:
        before = self.get(key)
        editable = {k: v for k, v in before.items() if k in self.model.model_fields}
        unknown = sorted(set(fields) - set(self.model.model_fields))
        if unknown:
            raise ValidationError(
                f"{self.entity}.{unknown[0]} is not a known field; nothing was saved.",
                field=unknown[0],
            )
        data = self._validated({**editable, **fields})
        if data["name"] != before["name"]:
            self._check_unique_name(data["name"], exclude=before["id"])
        changes = {k: v for k, v in data.items() if before.get(k) != v}
        if "updated_at" in self.timestamps:
            changes["updated_at"] = now()
        after = {**before, **changes}
        self.backend.apply(
            [
                Op("update", self.table, changes, {"id": before["id"]}),
                self._audit("update", before["id"], before, after),
            ]
        )
        return after

    def delete(self, key: Any) -> None:
        before = self.get(key)
        self.backend.apply(
            [
                Op("delete", self.table, where={"id": before["id"]}),
                self._audit("delete", before["id"], before, None),
            ]
        )


class Workflows(Repository):
    entity, table, model = "workflow", "workflows", WorkflowIn


class Templates(Repository):
    entity, table, model = "template", "message_templates", TemplateIn
    defaults: ClassVar[dict[str, Any]] = {"usage_count": 0}

    def increment_usage(self, key: Any, by: int = 1) -> int:
        row = self.get(key)
        count = int(row["usage_count"]) + by
        self.backend.apply([Op("update", self.table, {"usage_count": count}, {"id": row["id"]})])
        return count


@checked_calls("wb.variables")
class Variables(Repository):
    entity, table, model = "variable", "individual_variables", VariableIn
    defaults: ClassVar[dict[str, Any]] = {"usage_count": 0, "last_used_at": None}

    def record_use(self, key: Any) -> None:
        row = self.get(key)
        self.backend.apply(
            [
                Op(
                    "update",
                    self.table,
                    {"usage_count": int(row["usage_count"]) + 1, "last_used_at": now()},
                    {"id": row["id"]},
                )
            ]
        )

    def usage(self) -> list[dict[str, Any]]:
        """Usage statistics: each variable with its count and last use, most used first."""
        rows = self.backend.select(self.table, order_by="usage_count", desc=True)
        return [
            {k: r[k] for k in ("name", "source_type", "source", "usage_count", "last_used_at")}
            for r in rows
        ]


class Mappings(Repository):
    """Table mappings with a version history: every save adds a version."""

    entity, table, model = "mapping", "table_mappings", MappingIn

    def _check_unique_name(self, name: str, exclude: Any = None) -> None:
        return None  # a name has many versions

    def history(self, name: str) -> list[dict[str, Any]]:
        return self.backend.select(self.table, {"name": name}, order_by="version", desc=True)

    def get(self, key: Any) -> dict[str, Any]:
        ident = as_uuid(key)
        if ident:
            return super().get(ident)
        rows = self.history(str(key))
        if not rows:
            raise NotFound(
                f"No mapping for table {short(key)}; save one with wb.mappings.save().", key=key
            )
        return rows[0]

    def save(self, name: str, config: dict[str, Any], is_active: bool = True) -> dict[str, Any]:
        data = self._validated({"name": name, "config": config, "is_active": is_active})
        versions = self.history(name)
        row = {
            "id": uuid.uuid4(),
            **data,
            "version": (versions[0]["version"] + 1) if versions else 1,
        }
        stamp = now()
        row["created_at"] = row["updated_at"] = stamp
        self.backend.apply(
            [
                Op("insert", self.table, row),
                self._audit("create", row["id"], versions[0] if versions else None, row),
            ]
        )
        return row

    def create(self, **fields: Any) -> dict[str, Any]:
        return self.save(
            fields.get("name", ""), fields.get("config", {}), fields.get("is_active", True)
        )

    def set_active(self, name: str, active: bool) -> dict[str, Any]:
        latest = self.get(name)
        after = {**latest, "is_active": active, "updated_at": now()}
        self.backend.apply(
            [
                Op(
                    "update",
                    self.table,
                    {"is_active": active, "updated_at": after["updated_at"]},
                    {"id": latest["id"]},
                ),
                self._audit("activate" if active else "deactivate", latest["id"], latest, after),
            ]
        )
        return after

    def active(self) -> dict[str, dict[str, Any]]:
        """The latest version of every mapping that is active: {table: config}."""
        latest: dict[str, dict[str, Any]] = {}
        for row in self.backend.select(self.table, order_by="version"):
            latest[row["name"]] = row
        return {name: row["config"] for name, row in latest.items() if row["is_active"]}


#: `Runs.update` without a condition on the run's end
ANY_END: Any = object()


class Runs:
    """Workflow runs and their send records."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def create(
        self,
        workflow_id: Any,
        parameters: dict[str, Any] | None = None,
        dry_run: bool = False,
        run_id: Any = None,
    ) -> dict[str, Any]:
        row = {
            "id": as_uuid(run_id) or uuid.uuid4(),
            "workflow_id": as_uuid(workflow_id),
            "status": "queued",
            "parameters": jsonable(parameters or {}),
            "dry_run": dry_run,
            "started_at": None,
            "finished_at": None,
            "target_count": 0,
            "rendered_count": 0,
            "skipped_count": 0,
            "failed_count": 0,
            "sent_count": 0,
            "missing_variables": [],
            "stats": {},
            "report_path": None,
            "error": None,
            "created_at": now(),
        }
        self.backend.apply([Op("insert", "workflow_runs", row)])
        return row

    def get(self, run_id: Any) -> dict[str, Any]:
        ident = as_uuid(run_id)
        rows = self.backend.select("workflow_runs", {"id": ident}) if ident else []
        if not rows:
            raise NotFound(f"No run {short(run_id)}; list runs with %platform runs.", key=run_id)
        return rows[0]

    def update(
        self, run_id: Any, *, ended: Any = ANY_END, started: Any = ANY_END, **fields: Any
    ) -> None:
        """Write `fields`; given `ended` (None: the run is open; a time: the end the caller
        read) and `started` (the start the caller read), only while the run's `finished_at`
        and `started_at` are still those, in the write's own statement. A status write is
        retried after a lost answer (a 504), and its first attempt may still be run by the
        server later, after the writes that followed: so every status write names the
        period of the run it was meant for (`reopen`, `update_open`), and one sent late
        finds the run moved on and writes nothing."""
        where: dict[str, Any] = {"id": as_uuid(run_id)}
        if ended is not ANY_END:
            where["finished_at"] = ended
        if started is not ANY_END:
            where["started_at"] = started
        self.backend.apply([Op("update", "workflow_runs", _jsonable_json(fields), where)])

    def reopen(self, run: dict[str, Any], **fields: Any) -> None:
        """The run `running` again, its end cleared, if its end and start are still the ones
        in `run` (as read): a reopen sent late after the run ended again undoes nothing
        (round 33: a retried `running` landed after the run's `succeeded`). It stamps a new
        `started_at` unless `fields` names one (a kernel going on with the period its
        runner opened): a new period of the run, which a late write meant for an earlier
        one does not match (`update_open`)."""
        fields.setdefault("started_at", now())
        self.update(
            run["id"],
            status="running",
            finished_at=None,
            ended=run.get("finished_at"),
            started=run.get("started_at"),
            **fields,
        )

    def update_open(self, run: dict[str, Any], **fields: Any) -> None:
        """`fields` (an end: `status` and `finished_at`; or `stale`), only while the run has
        not ended and is still in the period `run` was read in (its `started_at`): a write
        sent late after another end, or after a resume opened the run again, writes nothing
        (round 34: `finished_at IS NULL` alone held again once a resume had reopened the
        run, and the first run's late `failed` ended the resumed one)."""
        self.update(run["id"], ended=None, started=run.get("started_at"), **fields)

    def list(
        self, workflow_id: Any = None, limit: int | None = None
    ) -> builtins.list[dict[str, Any]]:
        where = {"workflow_id": as_uuid(workflow_id)} if workflow_id else None
        return self.backend.select(
            "workflow_runs", where, order_by="created_at", desc=True, limit=limit
        )

    def add_records(self, records: builtins.list[dict[str, Any]]) -> int:
        """Write send records once per (run, target): duplicates are skipped, not doubled."""
        stamp = now()
        rows = [
            {
                "id": uuid.uuid4(),
                "channel": "outbox",
                "status": "queued",
                "recipient": None,
                "content": None,
                "error": None,
                "created_at": stamp,
                **r,
                "run_id": as_uuid(r["run_id"]),
                "workflow_id": as_uuid(r["workflow_id"]),
                "target_key": str(r["target_key"]),
            }
            for r in records
        ]
        return self.backend.insert_ignore("send_records", rows, ["run_id", "target_key"])

    def records(self, run_id: Any) -> builtins.list[dict[str, Any]]:
        return self.backend.select(
            "send_records", {"run_id": as_uuid(run_id)}, order_by="created_at"
        )

    def record_count(self, run_id: Any) -> int:
        return self.backend.count("send_records", {"run_id": as_uuid(run_id)})

    def done_keys(self, run_id: Any) -> set[str]:
        return {r["target_key"] for r in self.records(run_id)}


def _jsonable_json(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: (jsonable(v) if isinstance(v, dict | list) else v) for k, v in fields.items()}
