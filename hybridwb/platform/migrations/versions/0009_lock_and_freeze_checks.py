"""Three holes in the lock and freeze functions, closed where the rows are written.

- **A lock names a run of its own workflow.** `run_locks` took any (workflow, run) pair,
  and the freeze functions beat the lock by that pair: a lock on workflow W2 naming a run
  of W1 let its owner clear W1's frozen set. A trigger on `run_locks` now refuses a row
  whose run exists under another workflow (the SQL store's `Campaigns.acquire` and the
  REST `hybridwb_acquire` both write that row), and one on `workflow_runs` refuses a run
  whose id a lock of another workflow names (the runner takes the lock before it creates
  the run). Both raise `check_violation` with a one-line message; a lock row that breaks
  the rule already is deleted first (it can only be such a hijack).
- **A page of the frozen set is checked.** `hybridwb_freeze_page` numbered a page from a
  negative `p_first_seq` and read a bare scalar (`"k"`, `5`) as a pair (PostgreSQL's
  `->> 0` on a scalar). Both are refused with `invalid_parameter_value`.
- **A delayed stats request cannot undo newer stats.** `hybridwb_set_stats` takes
  `p_seq` (bigint, default NULL: an older client's call is unchanged): the run's stats are
  written only when no stats of the same owner with a seq as large are stored
  (`run_state.stats_owner`, `.stats_seq`); a stale request answers true (the lock is
  the caller's) and writes nothing. The client sends a clock-based seq that only grows.
  The SQL store writes stats in the caller's own order and leaves the columns alone.

Security, `search_path` and grants of the functions as in 0005 (service role only,
SECURITY INVOKER; a trigger function runs whatever its EXECUTE grant).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

HEADER = "LANGUAGE plpgsql SECURITY INVOKER SET search_path = public, pg_catalog, pg_temp"

#: the refusals' messages: one line each, no quote (they sit in SQL string literals)
LOCK_OF_ANOTHER_RUN = (
    "A run lock must name a run of its own workflow; "
    "take the lock with the workflow the run belongs to"
)
RUN_LOCKED_ELSEWHERE = (
    "A lock of another workflow names this run id; create the run under that workflow "
    "or with a new id"
)
FIRST_SEQ = "A frozen page starts at seq 0 or later; number it after the pages before it"
PAIRS = (
    "A frozen page is a JSON array of [key, recipient] pairs; "
    "send each target as such a pair, not a bare value"
)

#: beat the lock as p_owner (as 0008's)
BEAT = """
    IF p_owner IS NOT NULL THEN
        UPDATE run_locks SET heartbeat_at = now()
        WHERE workflow_id = p_workflow_id AND run_id = p_run_id AND owner = p_owner;
        IF NOT FOUND THEN
            RETURN {lost};
        END IF;
    END IF;"""

#: 0008's `hybridwb_set_stats`, dropped here and brought back by the downgrade
OLD_SET_STATS = "hybridwb_set_stats(p_run_id uuid, p_workflow_id uuid, p_owner text, p_stats jsonb)"
OLD_SET_STATS_BODY = f"""
RETURNS boolean {HEADER} AS $fn$
BEGIN{BEAT.format(lost="false")}
    UPDATE workflow_runs SET stats = p_stats WHERE id = p_run_id;
    RETURN true;
END
$fn$"""

FREEZE_PAGE = (
    "hybridwb_freeze_page(p_run_id uuid, p_workflow_id uuid, p_owner text, "
    "p_first_seq integer, p_pairs jsonb)"
)
#: 0008's page body, after its beat (the downgrade restores it without the checks)
FREEZE_PAGE_WRITE = """
    INSERT INTO run_targets (run_id, seq, target_key, recipient)
    SELECT p_run_id, p_first_seq + e.ord::integer, e.p->>0, e.p->>1
    FROM jsonb_array_elements(coalesce(p_pairs, '[]'::jsonb)) WITH ORDINALITY AS e(p, ord)
    ORDER BY e.ord
    ON CONFLICT (run_id, target_key) DO NOTHING;
    RETURN true;
END
$fn$"""

FUNCTIONS: dict[str, str] = {
    # a page of the frozen set, checked before anything is written
    FREEZE_PAGE: f"""
RETURNS boolean {HEADER} AS $fn$
BEGIN
    IF p_first_seq IS NULL OR p_first_seq < 0 THEN
        RAISE EXCEPTION '{FIRST_SEQ}' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_pairs IS NOT NULL AND (
        jsonb_typeof(p_pairs) <> 'array'
        OR EXISTS (SELECT 1 FROM jsonb_array_elements(p_pairs) AS e(p)
                   WHERE jsonb_typeof(e.p) <> 'array' OR jsonb_array_length(e.p) <> 2)
    ) THEN
        RAISE EXCEPTION '{PAIRS}' USING ERRCODE = 'invalid_parameter_value';
    END IF;{BEAT.format(lost="false")}{FREEZE_PAGE_WRITE}""",
    # the run's stats, unless stats of this owner from a later request are stored
    "hybridwb_set_stats(p_run_id uuid, p_workflow_id uuid, p_owner text, p_stats jsonb, "
    "p_seq bigint DEFAULT NULL)": f"""
RETURNS boolean {HEADER} AS $fn$
BEGIN{BEAT.format(lost="false")}
    IF p_seq IS NOT NULL THEN
        UPDATE run_state SET stats_owner = p_owner, stats_seq = p_seq
        WHERE run_id = p_run_id
          AND (stats_seq IS NULL OR stats_owner IS DISTINCT FROM p_owner OR stats_seq < p_seq);
        IF NOT FOUND AND EXISTS (SELECT 1 FROM run_state WHERE run_id = p_run_id) THEN
            RETURN true;  -- a later request of this owner wrote its stats: this one is stale
        END IF;
    END IF;
    UPDATE workflow_runs SET stats = p_stats WHERE id = p_run_id;
    RETURN true;
END
$fn$""",
    # trigger: a lock row whose run exists under another workflow is refused
    "hybridwb_lock_names_own_run()": f"""
RETURNS trigger {HEADER} AS $fn$
BEGIN
    IF EXISTS (SELECT 1 FROM workflow_runs r
               WHERE r.id = NEW.run_id AND r.workflow_id <> NEW.workflow_id) THEN
        RAISE EXCEPTION '{LOCK_OF_ANOTHER_RUN}' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$fn$""",
    # trigger: a run whose id a lock of another workflow names is refused
    "hybridwb_run_of_its_lock()": f"""
RETURNS trigger {HEADER} AS $fn$
BEGIN
    IF EXISTS (SELECT 1 FROM run_locks l
               WHERE l.run_id = NEW.id AND l.workflow_id <> NEW.workflow_id) THEN
        RAISE EXCEPTION '{RUN_LOCKED_ELSEWHERE}' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$fn$""",
}

#: (trigger, table, when, function or SQLite condition)
TRIGGERS = [
    ("hybridwb_lock_names_own_run", "run_locks", "INSERT OR UPDATE OF workflow_id, run_id"),
    ("hybridwb_run_of_its_lock", "workflow_runs", "INSERT OR UPDATE OF workflow_id"),
]
SQLITE_TRIGGERS = {
    "hybridwb_lock_names_own_run": (
        "run_locks",
        "EXISTS (SELECT 1 FROM workflow_runs r"
        " WHERE r.id = NEW.run_id AND r.workflow_id <> NEW.workflow_id)",
        LOCK_OF_ANOTHER_RUN,
        "workflow_id, run_id",
    ),
    "hybridwb_run_of_its_lock": (
        "workflow_runs",
        "EXISTS (SELECT 1 FROM run_locks l WHERE l.run_id = NEW.id"
        " AND l.workflow_id <> NEW.workflow_id)",
        RUN_LOCKED_ELSEWHERE,
        "workflow_id",
    ),
}

#: the columns `hybridwb_set_stats` orders its writes by (in `schema.run_state` since this
#: revision, so 0001 or 0004 may have created them already)
NEW_COLUMNS: list[sa.Column[Any]] = [
    sa.Column("stats_owner", sa.String(200)),
    sa.Column("stats_seq", sa.BigInteger),
]


def _name(signature: str) -> str:
    """`name(arg type, ...)` -> `name(type, ...)`: how GRANT and DROP name a function (as
    0005's; a migration imports nothing from another, so each stays as it was applied)."""
    name, _, args = signature.partition("(")
    types = [" ".join(arg.split(" DEFAULT ")[0].split()[1:]) for arg in args.rstrip(")").split(",")]
    return f"{name}({', '.join(t for t in types if t)})"


def _create(signature: str, body: str) -> None:
    op.execute(f"CREATE OR REPLACE FUNCTION {signature}\n{body}")
    name = _name(signature)
    op.execute(f"REVOKE ALL ON FUNCTION {name} FROM PUBLIC")
    op.execute(
        "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') "
        f"THEN REVOKE ALL ON FUNCTION {name} FROM anon, authenticated; "
        f"GRANT EXECUTE ON FUNCTION {name} TO service_role; END IF; END $$"
    )


def upgrade() -> None:
    context = op.get_context()
    dialect = context.dialect.name
    have: set[str] = set()
    if not context.as_sql:  # an offline script's 0001 created run_state with them
        have = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("run_state")}
        for column in NEW_COLUMNS:
            if column.name not in have:
                op.add_column("run_state", column._copy())
    # a lock naming another workflow's run can only be the hijack this revision refuses
    op.execute(
        "DELETE FROM run_locks WHERE EXISTS (SELECT 1 FROM workflow_runs r"
        " WHERE r.id = run_locks.run_id AND r.workflow_id <> run_locks.workflow_id)"
    )
    if dialect == "sqlite":
        for trigger, (table, condition, message, columns) in SQLITE_TRIGGERS.items():
            for event, suffix in (("INSERT", "insert"), (f"UPDATE OF {columns}", "update")):
                op.execute(f"DROP TRIGGER IF EXISTS {trigger}_{suffix}")
                op.execute(
                    f"CREATE TRIGGER {trigger}_{suffix} BEFORE {event} ON {table} "
                    f"WHEN {condition} BEGIN SELECT RAISE(ABORT, '{message}'); END"
                )
        return
    if dialect != "postgresql":
        return
    op.execute(f"DROP FUNCTION IF EXISTS {_name(OLD_SET_STATS)}")
    for signature, body in FUNCTIONS.items():
        _create(signature, body)
    for trigger, table, events in TRIGGERS:
        # dropped first: a store stamped back and migrated again runs this once more
        op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
        op.execute(
            f"CREATE TRIGGER {trigger} BEFORE {events} ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {trigger}()"
        )
    # PostgREST learns of changed functions when told (a no-op where nobody listens)
    op.execute("NOTIFY pgrst, 'reload schema'")


def downgrade() -> None:
    dialect = op.get_context().dialect.name
    if dialect == "sqlite":
        for trigger in SQLITE_TRIGGERS:
            for suffix in ("insert", "update"):
                op.execute(f"DROP TRIGGER IF EXISTS {trigger}_{suffix}")
    elif dialect == "postgresql":
        for trigger, table, _ in TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
        for signature in FUNCTIONS:
            if not signature.startswith(FREEZE_PAGE.partition("(")[0]):
                op.execute(f"DROP FUNCTION IF EXISTS {_name(signature)}")
        _create(OLD_SET_STATS, OLD_SET_STATS_BODY)
        _create(
            FREEZE_PAGE,
            f"\nRETURNS boolean {HEADER} AS $fn$\nBEGIN{BEAT.format(lost='false')}"
            f"{FREEZE_PAGE_WRITE}",
        )
        op.execute("NOTIFY pgrst, 'reload schema'")
    for column in reversed(NEW_COLUMNS):
        op.drop_column("run_state", column.name)
