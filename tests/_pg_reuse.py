"""PostgreSQL test databases used again instead of dropped: a `DROP DATABASE` forces a
checkpoint on PostgreSQL 15 (one per drop, and the dropping test waits for it) and a copy
from a template writes the whole database to the WAL, about a second per test together.

A database is used again only when it is, by an independent reading, the state a fresh
copy would be: every other connection to it ended, every table emptied, and then the
catalog's description of everything a test could have changed (`fingerprint`: relations,
columns, defaults, constraints, indexes, triggers, policies, functions, types, schemas, comments,
grants, owners, row security, database and role settings, extensions, large objects,
prepared transactions, the rows of the table it keeps) equal to the one the database had when it was made. Anything else
(a test that added a trigger, altered a column, set a database default, left a prepared
transaction) is dropped as before. Statistics and counters are reset, so a plan or a
`pg_stat_user_tables` reading starts where a fresh copy's does."""

from __future__ import annotations

import time

import psycopg

#: one text line per catalog fact a test could change; the md5 of them all, in order
FINGERPRINT = r"""
WITH ns AS (
    SELECT oid, nspname FROM pg_namespace
    WHERE nspname NOT IN ('pg_catalog', 'information_schema')
      AND nspname NOT LIKE 'pg\_toast%' AND nspname NOT LIKE 'pg\_temp\_%'
), facts(x) AS (
    SELECT concat_ws(' ', 'ns', nspname, nspowner::regrole, nspacl)
    FROM pg_namespace WHERE oid IN (SELECT oid FROM ns)
    UNION ALL
    SELECT concat_ws(' ', 'rel', c.oid::regclass, c.relkind, c.relowner::regrole, c.relacl,
                     c.relrowsecurity, c.relforcerowsecurity, c.reloptions, c.relpersistence,
                     c.relreplident, c.relispartition,
                     CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END,
                     CASE WHEN c.relkind = 'i' THEN pg_get_indexdef(c.oid) END)
    FROM pg_class c WHERE c.relnamespace IN (SELECT oid FROM ns)
    UNION ALL
    SELECT concat_ws(' ', 'col', a.attrelid::regclass, a.attnum, a.attname,
                     format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attidentity,
                     a.attgenerated, a.attcollation, a.attacl, a.attstattarget,
                     pg_get_expr(d.adbin, d.adrelid))
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE c.relnamespace IN (SELECT oid FROM ns) AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT concat_ws(' ', 'con', conrelid::regclass, contypid::regtype, conname,
                     pg_get_constraintdef(oid), condeferrable, condeferred, convalidated)
    FROM pg_constraint WHERE connamespace IN (SELECT oid FROM ns)
    UNION ALL
    SELECT concat_ws(' ', 'trg', tgrelid::regclass, tgname, tgenabled, pg_get_triggerdef(oid))
    FROM pg_trigger WHERE NOT tgisinternal
    UNION ALL
    SELECT concat_ws(' ', 'pol', polrelid::regclass, polname, polcmd, polpermissive, polroles,
                     pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid))
    FROM pg_policy
    UNION ALL
    SELECT concat_ws(' ', 'rule', ev_class::regclass, rulename, ev_enabled)
    FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
    WHERE c.relnamespace IN (SELECT oid FROM ns)
    UNION ALL
    SELECT concat_ws(' ', 'fn', p.oid::regprocedure, p.proowner::regrole, p.proacl,
                     p.prosecdef, p.provolatile, p.proconfig, md5(p.prosrc))
    FROM pg_proc p WHERE p.pronamespace IN (SELECT oid FROM ns)
    UNION ALL
    SELECT concat_ws(' ', 'type', t.oid::regtype, t.typtype, t.typowner::regrole, t.typacl,
                     (SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder)
                      FROM pg_enum e WHERE e.enumtypid = t.oid))
    FROM pg_type t WHERE t.typnamespace IN (SELECT oid FROM ns) AND t.typrelid = 0
      AND t.typelem = 0
    UNION ALL
    SELECT concat_ws(' ', 'seq', seqrelid::regclass, seqtypid::regtype, seqstart, seqincrement,
                     seqmax, seqmin, seqcache, seqcycle)
    FROM pg_sequence
    UNION ALL
    SELECT concat_ws(' ', 'ext', extname, extversion, extnamespace::regnamespace)
    FROM pg_extension
    UNION ALL
    SELECT concat_ws(' ', 'defacl', defaclrole::regrole, defaclnamespace, defaclobjtype,
                     defaclacl)
    FROM pg_default_acl
    UNION ALL
    SELECT concat_ws(' ', 'evt', evtname, evtevent, evtenabled) FROM pg_event_trigger
    UNION ALL
    SELECT concat_ws(' ', 'pub', pubname) FROM pg_publication
    UNION ALL
    SELECT concat_ws(' ', 'lo', count(*)) FROM pg_largeobject_metadata
    UNION ALL
    SELECT concat_ws(' ', 'db', datdba::regrole, datacl, datconnlimit, datallowconn,
                     datistemplate, datcollate, datctype)
    FROM pg_database WHERE datname = current_database()
    UNION ALL
    SELECT concat_ws(' ', 'setting', setrole, setconfig)
    FROM pg_db_role_setting
    WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
    UNION ALL
    SELECT concat_ws(' ', 'comment', pg_describe_object(classoid, objoid, objsubid), description)
    FROM pg_description
    WHERE objoid >= 16384 OR classoid = 'pg_namespace'::regclass
    UNION ALL
    SELECT concat_ws(' ', 'kept rows', CASE WHEN to_regclass('public.alembic_version') IS NOT NULL
        THEN query_to_xml('SELECT * FROM public.alembic_version ORDER BY 1', false, false, '')
        END)
    UNION ALL
    SELECT concat_ws(' ', 'prepared', gid)
    FROM pg_prepared_xacts WHERE database = current_database()
)
SELECT md5(string_agg(x, E'\n' ORDER BY x)) FROM facts
"""


def admin_dsn(database: str) -> str:
    return f"host=127.0.0.1 port=5432 user=postgres dbname={database}"


def fingerprint(database: str) -> str:
    """The md5 of the catalog facts a test could change (the module's docstring)."""
    with psycopg.connect(admin_dsn(database), autocommit=True) as conn:
        row = conn.execute(FINGERPRINT).fetchone()
    assert row is not None
    return str(row[0])


def reset(database: str, expected: str, *, migrated: bool, end_sessions: bool = True) -> bool:
    """Make `database` what a fresh one with fingerprint `expected` is: every other
    connection ended (`end_sessions`; else a session holding a lock makes this wait up to
    its lock timeout and fail); `migrated` (a copy of the store's template): every table but
    `alembic_version` emptied, identities restarted; else (an empty database): its public
    schema made again as PostgreSQL makes it; statistics and counters reset. True when it
    is (by its fingerprint, read again after the reset); False when it is not, or the reset
    failed: drop it then."""
    keep = ["alembic_version"] if migrated else []
    try:
        with psycopg.connect(admin_dsn(database), autocommit=True) as conn:
            if end_sessions:
                _end_other_sessions(conn)
            conn.execute("SET lock_timeout = '10s'")
            if not migrated:
                conn.execute(
                    "DROP SCHEMA public CASCADE; "
                    "CREATE SCHEMA public AUTHORIZATION pg_database_owner; "
                    "GRANT USAGE ON SCHEMA public TO PUBLIC; "
                    "COMMENT ON SCHEMA public IS 'standard public schema'"
                )
            tables = [
                name
                for (name,) in conn.execute(
                    "SELECT format('%%I.%%I', schemaname, tablename) FROM pg_tables "
                    "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') "
                    "AND NOT (schemaname = 'public' AND tablename = ANY(%s))",
                    (keep,),
                )
            ]
            if tables:
                conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
            conn.execute(
                "DELETE FROM pg_statistic WHERE starelid IN (SELECT c.oid FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast'))"
            )
            conn.execute("SELECT pg_stat_reset()")
            found = conn.execute(FINGERPRINT).fetchone()
    except psycopg.Error:
        return False
    return found is not None and found[0] == expected


def _end_other_sessions(conn: psycopg.Connection) -> None:
    """Every other connection to this database ended, and gone (a terminated backend
    releases its locks as it exits)."""
    conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    for _ in range(200):
        left = conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
        if left is None or left[0] == 0:
            return
        time.sleep(0.01)
