"""Campaigns over the Supabase REST API: SQL functions PostgREST exposes as RPC.

A campaign needs steps that must happen as one (a batch's heartbeat check and its records;
a frequency-cap check and the insert it allows; taking over a stale lock), and PostgREST
gives one transaction per request. Each such step is therefore one function, called as
`POST /rest/v1/rpc/<name>` by `hybridwb.platform.rest_campaigns`.

Security: every function is SECURITY INVOKER. Only the service role may EXECUTE them
(revoked from PUBLIC, `anon` and `authenticated`, whom Supabase's default privileges
grant EXECUTE on new functions), and they touch only tables the service role already
holds privileges on, so they give no one anything they could not do with plain requests.
SECURITY DEFINER would run them as their owner, past row level security, and make the
EXECUTE grant the only guard; nothing here needs that. `search_path` is pinned, so a
caller's own schema cannot shadow a table or `now()`.

Results are one `jsonb` value, never a set of rows: PostgREST's `db-max-rows` cuts row
sets silently (Supabase: 1000), and a cut page would look like a finished one.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

HEADER = "LANGUAGE plpgsql SECURITY INVOKER SET search_path = public, pg_catalog, pg_temp"

FUNCTIONS: dict[str, str] = {
    # take the workflow's lock; NULL when taken, else the holder's row. A holder whose
    # heartbeat is older than p_stale_after seconds, or the owner the caller found dead on
    # its own host (p_dead_owner), is replaced under the row's lock: one winner.
    "hybridwb_acquire(p_workflow_id uuid, p_run_id uuid, p_owner text, "
    "p_stale_after double precision, p_dead_owner text DEFAULT NULL)": f"""
RETURNS jsonb {HEADER} AS $fn$
DECLARE
    held run_locks;
BEGIN
    FOR attempt IN 1..2 LOOP
        INSERT INTO run_locks (workflow_id, run_id, owner, acquired_at, heartbeat_at)
        VALUES (p_workflow_id, p_run_id, p_owner, now(), now())
        ON CONFLICT (workflow_id) DO NOTHING;
        IF FOUND THEN
            RETURN NULL;
        END IF;
        SELECT * INTO held FROM run_locks WHERE workflow_id = p_workflow_id FOR UPDATE;
        IF FOUND THEN
            EXIT;
        END IF;  -- released in between: try once more
    END LOOP;
    IF held.workflow_id IS NULL THEN
        RETURN NULL;
    END IF;
    IF held.run_id = p_run_id AND held.owner = p_owner THEN
        RETURN NULL;
    END IF;
    IF held.heartbeat_at < now() - make_interval(secs => p_stale_after)
       OR held.owner = p_dead_owner THEN
        -- the row is locked (FOR UPDATE); the compare-and-swap says so again
        UPDATE run_locks
        SET run_id = p_run_id, owner = p_owner, acquired_at = now(), heartbeat_at = now()
        WHERE workflow_id = p_workflow_id AND run_id = held.run_id AND owner = held.owner
          AND heartbeat_at = held.heartbeat_at;
        IF FOUND THEN
            RETURN NULL;
        END IF;
        RETURN (SELECT to_jsonb(l) FROM run_locks l WHERE l.workflow_id = p_workflow_id);
    END IF;
    RETURN to_jsonb(held);
END
$fn$""",
    # beat; false when this owner no longer holds the lock
    "hybridwb_heartbeat(p_workflow_id uuid, p_run_id uuid, p_owner text)": f"""
RETURNS boolean {HEADER} AS $fn$
BEGIN
    UPDATE run_locks SET heartbeat_at = now()
    WHERE workflow_id = p_workflow_id AND run_id = p_run_id AND owner = p_owner;
    RETURN FOUND;
END
$fn$""",
    # the next frozen targets after p_after that have neither a record nor an exclusion,
    # and the last seq looked at
    "hybridwb_pending(p_run_id uuid, p_after integer, p_limit integer, "
    "p_check_done boolean DEFAULT true)": f"""
RETURNS jsonb STABLE {HEADER} AS $fn$
BEGIN
    RETURN (
        SELECT jsonb_build_object(
            'last', coalesce(max(page.seq), p_after),
            'rows', coalesce(
                jsonb_agg(
                    jsonb_build_object(
                        'seq', page.seq, 'target_key', page.target_key,
                        'recipient', page.recipient
                    ) ORDER BY page.seq
                ) FILTER (WHERE NOT page.done),
                '[]'::jsonb
            )
        )
        FROM (
            SELECT t.seq, t.target_key, t.recipient,
                   p_check_done AND (
                       EXISTS (SELECT 1 FROM send_records r
                               WHERE r.run_id = t.run_id AND r.target_key = t.target_key)
                       OR EXISTS (SELECT 1 FROM run_skips s
                                  WHERE s.run_id = t.run_id AND s.target_key = t.target_key)
                   ) AS done
            FROM run_targets t
            WHERE t.run_id = p_run_id AND t.seq > p_after
            ORDER BY t.seq
            LIMIT p_limit
        ) AS page
    );
END
$fn$""",
    # one batch in one transaction: the heartbeat (nothing written, held=false, when the
    # lock has another owner), the records [[key, recipient, content], ...], the
    # exclusions [[key, reason], ...] and the changed count. With p_cap
    # {"space", "messages", "since", "reason", "spellings": {spelling: recipient}} the
    # records are checked again under the cap's advisory lock (the one the SQL backend
    # takes), and a record that would pass the cap becomes an exclusion with that reason. Targets that
    # already have a record or an exclusion are left alone, so a repeated call (a lost
    # answer) writes nothing twice and counts nothing twice.
    "hybridwb_write_batch(p_run_id uuid, p_workflow_id uuid, p_owner text, "
    "p_records jsonb, p_channel text, p_skips jsonb, p_changed integer DEFAULT 0, "
    "p_cap jsonb DEFAULT NULL)": f"""
RETURNS jsonb {HEADER} AS $fn$
DECLARE
    v_new jsonb;
    v_over text[] := '{{}}';
    v_written integer := 0;
    v_n integer;
BEGIN
    IF p_owner IS NOT NULL THEN
        UPDATE run_locks SET heartbeat_at = now()
        WHERE workflow_id = p_workflow_id AND run_id = p_run_id AND owner = p_owner;
        IF NOT FOUND THEN
            RETURN jsonb_build_object('held', false, 'capped', 0);
        END IF;
    END IF;
    -- the targets of this call without a record or an exclusion yet, in order
    SELECT coalesce(jsonb_agg(e.r ORDER BY e.ord), '[]'::jsonb) INTO v_new
    FROM jsonb_array_elements(coalesce(p_records, '[]'::jsonb)) WITH ORDINALITY AS e(r, ord)
    WHERE NOT EXISTS (SELECT 1 FROM send_records x
                      WHERE x.run_id = p_run_id AND x.target_key = e.r->>0)
      AND NOT EXISTS (SELECT 1 FROM run_skips x
                      WHERE x.run_id = p_run_id AND x.target_key = e.r->>0);
    IF p_cap IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(hashtext(p_cap->>'space'));
        WITH batch AS (
            SELECT e.ord, e.r->>0 AS target_key, e.r->>1 AS recipient
            FROM jsonb_array_elements(v_new) WITH ORDINALITY AS e(r, ord)
        ), spell AS (
            SELECT s.key AS spelling, s.value AS recipient
            FROM jsonb_each_text(coalesce(p_cap->'spellings', '{{}}'::jsonb)) AS s
            UNION
            SELECT DISTINCT b.recipient, b.recipient FROM batch b WHERE b.recipient IS NOT NULL
        ), hist AS (
            SELECT spell.recipient, count(*) AS n
            FROM spell JOIN send_records h ON h.recipient = spell.spelling
            WHERE h.created_at >= (p_cap->>'since')::timestamptz
            GROUP BY spell.recipient
        ), ranked AS (
            SELECT b.target_key,
                   coalesce(hist.n, 0)
                   + row_number() OVER (PARTITION BY b.recipient ORDER BY b.ord) AS would_be
            FROM batch b LEFT JOIN hist ON hist.recipient = b.recipient
            WHERE b.recipient IS NOT NULL
        )
        SELECT coalesce(array_agg(target_key), '{{}}') INTO v_over
        FROM ranked WHERE would_be > (p_cap->>'messages')::integer;
    END IF;
    INSERT INTO send_records
        (id, run_id, workflow_id, target_key, recipient, channel, content, status, created_at)
    SELECT gen_random_uuid(), p_run_id, p_workflow_id, e.r->>0, e.r->>1, p_channel,
           e.r->>2, 'queued', now()
    FROM jsonb_array_elements(v_new) WITH ORDINALITY AS e(r, ord)
    WHERE e.r->>0 <> ALL (v_over)
    ORDER BY e.ord
    ON CONFLICT (run_id, target_key) DO NOTHING;
    GET DIAGNOSTICS v_written = ROW_COUNT;
    INSERT INTO run_skips (run_id, target_key, reason, created_at)
    SELECT p_run_id, k.target_key, left(k.reason, 200), now()
    FROM (
        SELECT e->>0 AS target_key, e->>1 AS reason
        FROM jsonb_array_elements(coalesce(p_skips, '[]'::jsonb)) AS e
        WHERE NOT EXISTS (SELECT 1 FROM send_records x
                          WHERE x.run_id = p_run_id AND x.target_key = e->>0)
        UNION ALL
        SELECT unnest(v_over), coalesce(p_cap->>'reason', 'frequency cap')
    ) AS k
    ON CONFLICT (run_id, target_key) DO NOTHING;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_written := v_written + v_n;
    IF p_changed <> 0 AND (
        v_written > 0
        OR (jsonb_array_length(coalesce(p_records, '[]'::jsonb)) = 0
            AND jsonb_array_length(coalesce(p_skips, '[]'::jsonb)) = 0)
    ) THEN
        UPDATE run_state SET changed_count = changed_count + p_changed
        WHERE run_id = p_run_id;
    END IF;
    RETURN jsonb_build_object('held', true, 'capped', cardinality(v_over));
END
$fn$""",
    # per recipient with history: [recipient, records of this run, of earlier runs of this
    # workflow, of those since p_cool_since, of any workflow since p_cap_since]
    "hybridwb_seen(p_recipients text[], p_workflow_id uuid, p_run_id uuid, "
    "p_cool_since timestamptz DEFAULT NULL, p_cap_since timestamptz DEFAULT NULL)": f"""
RETURNS jsonb STABLE {HEADER} AS $fn$
BEGIN
    RETURN (
        SELECT coalesce(jsonb_agg(jsonb_build_array(g.recipient, g.a, g.b, g.c, g.d)), '[]')
        FROM (
            SELECT r.recipient,
                   count(*) FILTER (WHERE r.run_id = p_run_id) AS a,
                   count(*) FILTER (WHERE r.workflow_id = p_workflow_id
                                    AND r.run_id <> p_run_id) AS b,
                   count(*) FILTER (WHERE r.workflow_id = p_workflow_id
                                    AND r.run_id <> p_run_id
                                    AND r.created_at >= p_cool_since) AS c,
                   count(*) FILTER (WHERE r.created_at >= p_cap_since) AS d
            FROM send_records r
            WHERE r.recipient = ANY (p_recipients)
              AND (r.workflow_id = p_workflow_id
                   OR r.created_at >= least(p_cool_since, p_cap_since))
            GROUP BY r.recipient
        ) AS g
    );
END
$fn$""",
    # targets (frozen), records, exclusions by reason: from the rows themselves
    "hybridwb_run_counts(p_run_id uuid)": f"""
RETURNS jsonb STABLE {HEADER} AS $fn$
BEGIN
    RETURN jsonb_build_object(
        'targets', (SELECT count(*) FROM run_targets WHERE run_id = p_run_id),
        'records', (SELECT count(*) FROM send_records WHERE run_id = p_run_id),
        'by_reason', (
            SELECT coalesce(jsonb_object_agg(g.reason, g.n), '{{}}'::jsonb)
            FROM (SELECT reason, count(*) AS n FROM run_skips
                  WHERE run_id = p_run_id GROUP BY reason) AS g
        )
    );
END
$fn$""",
    # the run's excluded targets in frozen order: key, frozen recipient, reason
    "hybridwb_exclusions(p_run_id uuid, p_limit integer)": f"""
RETURNS jsonb STABLE {HEADER} AS $fn$
BEGIN
    RETURN (
        SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'target_key', x.target_key, 'recipient', x.recipient, 'reason', x.reason
               ) ORDER BY x.seq), '[]'::jsonb)
        FROM (
            SELECT t.seq, t.target_key, t.recipient, s.reason
            FROM run_targets t
            JOIN run_skips s ON s.run_id = t.run_id AND s.target_key = t.target_key
            WHERE t.run_id = p_run_id
            ORDER BY t.seq
            LIMIT p_limit
        ) AS x
    );
END
$fn$""",
}


def _name(signature: str) -> str:
    """`name(arg type, ...)` -> `name(type, ...)`: how GRANT and DROP name a function."""
    name, _, args = signature.partition("(")
    types = []
    for arg in args.rstrip(")").split(","):
        words = arg.split(" DEFAULT ")[0].split()
        types.append(" ".join(words[1:]))
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
