"""The platform store's schema, defined once for every backend.

The original platform's tables keep their columns (`workflows`, `message_templates`); the
workbench adds what it needs. JSON is JSONB on Postgres; ids are UUIDs everywhere.
Alembic migrations under `migrations/` move a database forward to this shape.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB

from hybridwb.platform.times import StoreTime

metadata = MetaData()

#: the store's columns that hold personal data: the frozen and sent recipient, and the
#: rendered message (it carries the customer's name and whatever else the template used);
#: and, as a second line of defence, the columns that keep text hybridwb was handed or a
#: server said: a delivery error (a gateway may echo the number), the logged statement and
#: its error (scrubbed when written, but a value typed as a name is a name to the
#: tokenizer), and an audit entry's before/after (entity rows, a `%%platform` statement).
#: `%%platform` masks every result column that lineage traces to one of them.
PII: dict[str, frozenset[str]] = {
    "send_records": frozenset({"recipient", "content", "error"}),
    "run_targets": frozenset({"recipient"}),
    "query_logs": frozenset({"query", "error_message"}),
    "audit_log": frozenset({"before", "after"}),
    # a target definition holds what someone targeted a customer by (a keyword, a
    # condition's value, a saved query's literal or parameter: a phone, an e-mail)
    "workflows": frozenset({"target_config"}),
}
Json = JSON().with_variant(JSONB(), "postgresql")


def now() -> datetime:
    return datetime.now(UTC)


def _id() -> Column:
    return Column("id", Uuid, primary_key=True, default=uuid.uuid4)


def _created() -> Column:
    return Column("created_at", StoreTime(), nullable=False, default=now)


def _updated() -> Column:
    return Column("updated_at", StoreTime(), nullable=False, default=now, onupdate=now)


workflows = Table(
    "workflows",
    metadata,
    _id(),
    Column("name", String(200), nullable=False, unique=True),
    Column("description", Text),
    Column("status", String(20), nullable=False, default="draft"),
    Column("trigger_type", String(20), nullable=False, default="manual"),
    Column("trigger_config", Json, nullable=False, default=dict),
    Column("target_config", Json, nullable=False, default=dict),
    Column("message_config", Json, nullable=False, default=dict),
    Column("variables", Json, nullable=False, default=dict),
    Column("schedule_config", Json, nullable=False, default=dict),
    Column("notebook", String(300)),
    _created(),
    _updated(),
)

template_categories = Table(
    "template_categories",
    metadata,
    _id(),
    Column("name", String(100), nullable=False, unique=True),
    Column("description", Text),
    _created(),
)

message_templates = Table(
    "message_templates",
    metadata,
    _id(),
    Column("name", String(200), nullable=False, unique=True),
    Column("category", String(100)),
    Column("message_type", String(20), nullable=False, default="SMS"),
    Column("content", Text, nullable=False),
    Column("variables", Json, nullable=False, default=list),
    Column("usage_count", Integer, nullable=False, default=0),
    # 정보통신망법 제50조: advertising templates carry (광고), the sender and a free opt-out
    Column("advertising", Boolean, nullable=False, default=False, server_default="0"),
    Column("sender", String(100)),
    _created(),
    _updated(),
)

table_mappings = Table(
    "table_mappings",
    metadata,
    _id(),
    Column("name", String(200), nullable=False),
    Column("config", Json, nullable=False),
    Column("is_active", Boolean, nullable=False, default=True),
    Column("version", Integer, nullable=False, default=1),
    _created(),
    _updated(),
    UniqueConstraint("name", "version", name="uq_table_mappings_name_version"),
)

individual_variables = Table(
    "individual_variables",
    metadata,
    _id(),
    Column("name", String(200), nullable=False, unique=True),
    Column("source_type", String(20), nullable=False),  # field | constant | expression
    Column("source", Text, nullable=False),
    Column("default_value", Text),
    Column("fallback_value", Text),
    Column("formatter", String(100)),
    Column("description", Text),
    Column("usage_count", Integer, nullable=False, default=0),
    Column("last_used_at", StoreTime()),
    _created(),
    _updated(),
)

workflow_runs = Table(
    "workflow_runs",
    metadata,
    _id(),
    Column("workflow_id", Uuid, ForeignKey("workflows.id", ondelete="CASCADE"), nullable=False),
    Column("status", String(20), nullable=False, default="queued"),
    Column("parameters", Json, nullable=False, default=dict),
    Column("dry_run", Boolean, nullable=False, default=False),
    Column("started_at", StoreTime()),
    Column("finished_at", StoreTime()),
    Column("target_count", Integer, nullable=False, default=0),
    Column("rendered_count", Integer, nullable=False, default=0),
    Column("skipped_count", Integer, nullable=False, default=0),
    Column("failed_count", Integer, nullable=False, default=0),
    Column("sent_count", Integer, nullable=False, default=0),
    Column("missing_variables", Json, nullable=False, default=list),
    Column("stats", Json, nullable=False, default=dict),
    Column("report_path", String(500)),
    Column("error", Text),
    _created(),
    Index("ix_workflow_runs_workflow", "workflow_id", "created_at"),
)

send_records = Table(
    "send_records",
    metadata,
    _id(),
    Column("run_id", Uuid, ForeignKey("workflow_runs.id", ondelete="CASCADE"), nullable=False),
    Column("workflow_id", Uuid, nullable=False),
    # a target's key and address as the source holds them, however long (migration 0007)
    Column("target_key", Text, nullable=False),
    Column("recipient", Text),
    Column("channel", String(20), nullable=False, default="outbox"),
    Column("content", Text),
    Column("status", String(20), nullable=False, default="queued"),
    Column("error", Text),
    _created(),
    UniqueConstraint("run_id", "target_key", name="uq_send_records_run_target"),
    # send policies read the history by recipient and time (migration 0004)
    Index("ix_send_records_recipient", "recipient", "created_at"),
)

#: recipients of `send_records` that are digits only: how versions before E.164 phones
#: stored them. Migration 0006 rewrites those it can to the canonical phone and indexes
#: the rest (`ix_send_records_legacy_recipient`, partial, so it stays as small as what is
#: left); a run asks it once per batch whether any are left. The text is the index's own
#: predicate, so each server's planner sees the query is answered by that index. The
#: index is not in `metadata`: 0001 would create it whole, without its WHERE.
LEGACY_RECIPIENT = {
    "postgresql": "recipient ~ '^[0-9]+$'",
    "sqlite": "recipient <> '' AND recipient NOT GLOB '*[^0-9]*'",
}
LEGACY_RECIPIENT_INDEX = "ix_send_records_legacy_recipient"

query_logs = Table(
    "query_logs",
    metadata,
    _id(),
    Column("timestamp", StoreTime(), nullable=False, default=now),
    Column("database", String(200)),
    Column("query", Text, nullable=False),
    Column("execution_time", Float, nullable=False),
    Column("result_count", Integer, nullable=False, default=0),
    Column("status", String(20), nullable=False),
    Column("error_message", Text),
    Column("kind", String(30), nullable=False, default="mysql"),
    Index("ix_query_logs_timestamp", "timestamp"),
)

audit_log = Table(
    "audit_log",
    metadata,
    _id(),
    Column("actor", String(200), nullable=False),
    Column("action", String(20), nullable=False),
    Column("entity", String(60), nullable=False),
    Column("entity_id", String(64)),
    Column("before", Json),
    Column("after", Json),
    Column("at", StoreTime(), nullable=False, default=now),
    Index("ix_audit_log_entity", "entity", "entity_id"),
)

user_settings = Table(
    "user_settings",
    metadata,
    _id(),
    Column("user_name", String(200), nullable=False),
    Column("key", String(200), nullable=False),
    Column("value", Json),
    _updated(),
    UniqueConstraint("user_name", "key", name="uq_user_settings_user_key"),
)

schedule_locks = Table(
    "schedule_locks",
    metadata,
    Column("workflow_id", Uuid, primary_key=True),
    Column("scheduled_for", StoreTime(), primary_key=True),
    Column("owner", String(200), nullable=False),
    Column("run_id", Uuid),
    Column("locked_at", StoreTime(), nullable=False, default=now),
)

# -- campaigns (migration 0004): the frozen target set, exclusions, one run per workflow ----

run_targets = Table(
    "run_targets",
    metadata,
    Column("run_id", Uuid, ForeignKey("workflow_runs.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("target_key", Text, nullable=False),
    Column("recipient", Text),
    UniqueConstraint("run_id", "target_key", name="uq_run_targets_run_target"),
)

run_skips = Table(
    "run_skips",
    metadata,
    Column("run_id", Uuid, ForeignKey("workflow_runs.id", ondelete="CASCADE"), primary_key=True),
    Column("target_key", Text, primary_key=True),
    Column("reason", String(200), nullable=False),
    _created(),
)

run_state = Table(
    "run_state",
    metadata,
    Column("run_id", Uuid, ForeignKey("workflow_runs.id", ondelete="CASCADE"), primary_key=True),
    Column("owner", String(200)),
    Column("trigger", String(60)),
    Column("frozen_at", StoreTime()),
    Column("frozen_count", Integer, nullable=False, default=0),
    Column("changed_count", Integer, nullable=False, default=0),
    # which request's stats the run holds over REST: `hybridwb_set_stats` writes only a
    # newer one of the same owner (a delayed retry cannot undo later stats; migration 0009)
    Column("stats_owner", String(200)),
    Column("stats_seq", BigInteger),
)

run_locks = Table(
    "run_locks",
    metadata,
    Column("workflow_id", Uuid, primary_key=True),
    Column("run_id", Uuid, nullable=False),
    Column("owner", String(200), nullable=False),
    Column("acquired_at", StoreTime(), nullable=False, default=now),
    Column("heartbeat_at", StoreTime(), nullable=False, default=now),
)

CAMPAIGN_TABLES = ("run_targets", "run_skips", "run_state", "run_locks")

TABLES = [t.name for t in metadata.sorted_tables]

#: alembic's bookkeeping table, read to check the schema without importing alembic; kept
#: out of `metadata` so that migrations never create or drop it as one of ours
alembic_version = Table(
    "alembic_version",
    MetaData(),
    Column("version_num", String(32), primary_key=True),
)
