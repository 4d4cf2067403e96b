"""0009's rule, a lock names a run of its own workflow, however the rows are written.

- **A run's id is checked as its workflow is.** 0009's trigger on `workflow_runs` fired
  on an INSERT and on an UPDATE of `workflow_id`; an UPDATE of `id` to the id a lock of
  another workflow names moved a run under that lock unchecked. It now fires on either
  column (SQLite and PostgreSQL).
- **A lock and a run written at once (PostgreSQL).** Each trigger looked for the other
  row, which a concurrent transaction had written but not committed: both committed, and
  W2's lock named W1's run. Both triggers now take a transaction advisory lock on the run
  id first (the two-key form, class `RUN_ID_LOCK`, apart from the one-key locks of the
  recipient spaces), so the second writer waits for the first to end and then sees its
  row (READ COMMITTED: the next statement reads anew). SQLite has one writer at a time.

Security, `search_path` and grants of the functions as in 0009.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

HEADER = "LANGUAGE plpgsql SECURITY INVOKER SET search_path = public, pg_catalog, pg_temp"
#: the advisory lock class of a run id (two-key form)
RUN_ID_LOCK = 24010

#: 0009's messages (one line each, no quote)
LOCK_OF_ANOTHER_RUN = (
    "A run lock must name a run of its own workflow; "
    "take the lock with the workflow the run belongs to"
)
RUN_LOCKED_ELSEWHERE = (
    "A lock of another workflow names this run id; create the run under that workflow "
    "or with a new id"
)

#: trigger function -> (the run id in NEW, the check, its message)
CHECKS = {
    "hybridwb_lock_names_own_run": (
        "NEW.run_id",
        "SELECT 1 FROM workflow_runs r WHERE r.id = NEW.run_id AND r.workflow_id <> NEW.workflow_id",
        LOCK_OF_ANOTHER_RUN,
    ),
    "hybridwb_run_of_its_lock": (
        "NEW.id",
        "SELECT 1 FROM run_locks l WHERE l.run_id = NEW.id AND l.workflow_id <> NEW.workflow_id",
        RUN_LOCKED_ELSEWHERE,
    ),
}

#: (trigger, table, events) now and as 0009 made them
TRIGGERS = [
    ("hybridwb_lock_names_own_run", "run_locks", "INSERT OR UPDATE OF workflow_id, run_id"),
    ("hybridwb_run_of_its_lock", "workflow_runs", "INSERT OR UPDATE OF id, workflow_id"),
]
TRIGGERS_0009 = [
    ("hybridwb_lock_names_own_run", "run_locks", "INSERT OR UPDATE OF workflow_id, run_id"),
    ("hybridwb_run_of_its_lock", "workflow_runs", "INSERT OR UPDATE OF workflow_id"),
]
#: SQLite's update trigger on workflow_runs: (columns now, columns in 0009)
SQLITE_RUN_TRIGGER = "hybridwb_run_of_its_lock_update"
SQLITE_RUN_CHECK = "EXISTS (SELECT 1 FROM run_locks l WHERE l.run_id = NEW.id AND l.workflow_id <> NEW.workflow_id)"


def _function(name: str, serialized: bool) -> str:
    run_id, check, message = CHECKS[name]
    wait = (
        f"\n    PERFORM pg_advisory_xact_lock({RUN_ID_LOCK}, hashtext({run_id}::text));"
        if serialized
        else ""
    )
    return f"""CREATE OR REPLACE FUNCTION {name}()
RETURNS trigger {HEADER} AS $fn$
BEGIN{wait}
    IF EXISTS ({check}) THEN
        RAISE EXCEPTION '{message}' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$fn$"""


def _postgres(serialized: bool, triggers: list[tuple[str, str, str]]) -> None:
    for name in CHECKS:
        op.execute(_function(name, serialized))  # CREATE OR REPLACE keeps 0009's grants
    for trigger, table, events in triggers:
        op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
        op.execute(
            f"CREATE TRIGGER {trigger} BEFORE {events} ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {trigger}()"
        )


def _sqlite(columns: str) -> None:
    op.execute(f"DROP TRIGGER IF EXISTS {SQLITE_RUN_TRIGGER}")
    op.execute(
        f"CREATE TRIGGER {SQLITE_RUN_TRIGGER} BEFORE UPDATE OF {columns} ON workflow_runs "
        f"WHEN {SQLITE_RUN_CHECK} BEGIN SELECT RAISE(ABORT, '{RUN_LOCKED_ELSEWHERE}'); END"
    )


def upgrade() -> None:
    dialect = op.get_context().dialect.name
    if dialect == "sqlite":
        _sqlite("id, workflow_id")
    elif dialect == "postgresql":
        _postgres(True, TRIGGERS)


def downgrade() -> None:
    dialect = op.get_context().dialect.name
    if dialect == "sqlite":
        _sqlite("workflow_id")
    elif dialect == "postgresql":
        _postgres(False, TRIGGERS_0009)
