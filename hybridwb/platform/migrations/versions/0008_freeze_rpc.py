"""A run's freeze and stats over the Supabase REST API, each step with its lock check.

Over SQL, a freeze's clear, each page and its mark, and a run's stats are each written in
a transaction that first beats the workflow's lock as the run's owner (`Campaigns._hold`):
a process whose lock was taken over writes nothing more. Over REST the beat was a request
of its own before each step, so a takeover between the two was not seen: a page read
before the takeover landed in the new owner's set, a half set was marked frozen, the new
owner's set was cleared. Each step is now one function, the beat and the write in one
transaction (as `hybridwb_write_batch` does for a batch): nothing is written, and false
(`held: false`) is returned, when the lock has another owner. A call without an owner
(`p_owner` NULL) writes without the check, as `Campaigns` does.

Security, `search_path` and grants as in 0005 (service role only, SECURITY INVOKER).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

HEADER = "LANGUAGE plpgsql SECURITY INVOKER SET search_path = public, pg_catalog, pg_temp"

#: beat the lock as p_owner (row locked until commit, so a takeover waits); RETURN false
#: from the function when another owner holds it
BEAT = """
    IF p_owner IS NOT NULL THEN
        UPDATE run_locks SET heartbeat_at = now()
        WHERE workflow_id = p_workflow_id AND run_id = p_run_id AND owner = p_owner;
        IF NOT FOUND THEN
            RETURN {lost};
        END IF;
    END IF;"""

FUNCTIONS: dict[str, str] = {
    # the run's frozen set emptied (a freeze starts again whole)
    "hybridwb_freeze_clear(p_run_id uuid, p_workflow_id uuid, p_owner text)": f"""
RETURNS boolean {HEADER} AS $fn$
BEGIN{BEAT.format(lost="false")}
    DELETE FROM run_targets WHERE run_id = p_run_id;
    RETURN true;
END
$fn$""",
    # a page of the frozen set: p_pairs [[key, recipient], ...] as seq p_first_seq + 1, ...;
    # a key already frozen (a repeated request, a key the source repeated) is left alone
    "hybridwb_freeze_page(p_run_id uuid, p_workflow_id uuid, p_owner text, "
    "p_first_seq integer, p_pairs jsonb)": f"""
RETURNS boolean {HEADER} AS $fn$
BEGIN{BEAT.format(lost="false")}
    INSERT INTO run_targets (run_id, seq, target_key, recipient)
    SELECT p_run_id, p_first_seq + e.ord::integer, e.p->>0, e.p->>1
    FROM jsonb_array_elements(coalesce(p_pairs, '[]'::jsonb)) WITH ORDINALITY AS e(p, ord)
    ORDER BY e.ord
    ON CONFLICT (run_id, target_key) DO NOTHING;
    RETURN true;
END
$fn$""",
    # the set marked frozen with its count: {"held": true, "count": n}, or {"held": false}
    "hybridwb_freeze_mark(p_run_id uuid, p_workflow_id uuid, p_owner text)": f"""
RETURNS jsonb {HEADER} AS $fn$
DECLARE
    v_count integer;
BEGIN{BEAT.format(lost="jsonb_build_object('held', false)")}
    SELECT count(*) INTO v_count FROM run_targets WHERE run_id = p_run_id;
    UPDATE run_state SET frozen_at = now(), frozen_count = v_count WHERE run_id = p_run_id;
    RETURN jsonb_build_object('held', true, 'count', v_count);
END
$fn$""",
    # the run's stats (its frozen as-of time among them)
    "hybridwb_set_stats(p_run_id uuid, p_workflow_id uuid, p_owner text, p_stats jsonb)": f"""
RETURNS boolean {HEADER} AS $fn$
BEGIN{BEAT.format(lost="false")}
    UPDATE workflow_runs SET stats = p_stats WHERE id = p_run_id;
    RETURN true;
END
$fn$""",
}


def _name(signature: str) -> str:
    """`name(arg type, ...)` -> `name(type, ...)`: how GRANT and DROP name a function (as
    0005's; a migration imports nothing from another, so each stays as it was applied)."""
    name, _, args = signature.partition("(")
    types = [" ".join(arg.split(" DEFAULT ")[0].split()[1:]) for arg in args.rstrip(")").split(",")]
    return f"{name}({', '.join(types)})"


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return  # SQLite stores run campaigns over SQL; there is no REST API to serve
    for signature, body in FUNCTIONS.items():
        op.execute(f"CREATE OR REPLACE FUNCTION {signature}\n{body}")
        name = _name(signature)
        op.execute(f"REVOKE ALL ON FUNCTION {name} FROM PUBLIC")
        op.execute(
            "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') "
            f"THEN REVOKE ALL ON FUNCTION {name} FROM anon, authenticated; "
            f"GRANT EXECUTE ON FUNCTION {name} TO service_role; END IF; END $$"
        )
    # PostgREST learns of new functions when told (a no-op where nobody listens)
    op.execute("NOTIFY pgrst, 'reload schema'")


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for signature in FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {_name(signature)}")
    op.execute("NOTIFY pgrst, 'reload schema'")
