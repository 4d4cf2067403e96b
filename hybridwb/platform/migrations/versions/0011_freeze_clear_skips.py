"""A freeze started again clears the exclusions its cut-short attempt recorded.

A freeze records, page by page and before it stores each page, the targets another row
of the audience refused marketing for (`run_skips`, `refusals.suppressing`), and marks the
set frozen after its last page. A freeze cut short (the source read failing on a later
page, the kernel killed) is redone whole by the next attempt, which cleared the frozen
pages (`hybridwb_freeze_clear`) but not those exclusions: the run counted targets of a set
never frozen, and a target the first attempt excluded, and the second did not (its
sharer consents now), kept its stale exclusion, which the run's batches take for done,
so it was never messaged. The clear now empties the run's exclusions with its frozen set,
in the same transaction: before a set is frozen no batch has run, so every exclusion of
the run is the cut-short freeze's.

SQL stores do the same in `Campaigns.freeze`. Security, `search_path` and grants of the
function as in 0008 (CREATE OR REPLACE keeps them).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

HEADER = "LANGUAGE plpgsql SECURITY INVOKER SET search_path = public, pg_catalog, pg_temp"

#: beat the lock as p_owner, as 0008's functions do
BEAT = """
    IF p_owner IS NOT NULL THEN
        UPDATE run_locks SET heartbeat_at = now()
        WHERE workflow_id = p_workflow_id AND run_id = p_run_id AND owner = p_owner;
        IF NOT FOUND THEN
            RETURN false;
        END IF;
    END IF;"""

SIGNATURE = "hybridwb_freeze_clear(p_run_id uuid, p_workflow_id uuid, p_owner text)"


def _clear(also_skips: bool) -> str:
    skips = "\n    DELETE FROM run_skips WHERE run_id = p_run_id;" if also_skips else ""
    return f"""CREATE OR REPLACE FUNCTION {SIGNATURE}
RETURNS boolean {HEADER} AS $fn$
BEGIN{BEAT}
    DELETE FROM run_targets WHERE run_id = p_run_id;{skips}
    RETURN true;
END
$fn$"""


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(_clear(True))
        op.execute("NOTIFY pgrst, 'reload schema'")


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(_clear(False))
        op.execute("NOTIFY pgrst, 'reload schema'")
