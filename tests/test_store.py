"""One behaviour suite for the platform store, on SQLite and on real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import URL

from hybridwb.config import load_settings
from hybridwb.errors import NotFound, ReadOnlyViolation, StoreError, ValidationError
from hybridwb.platform import migrate
from hybridwb.platform.backend import SqlBackend
from hybridwb.platform.store import Store, open_store
from hybridwb.source.querylog import QueryLogEntry
from tests._stores import _empty_pg, migrated_sqlite


def _reset_pg(url: URL) -> None:
    with psycopg.connect(
        f"host=127.0.0.1 user=postgres dbname={url.database}", autocommit=True
    ) as conn:
        conn.execute(
            "DROP SCHEMA public CASCADE; CREATE SCHEMA public; GRANT ALL ON SCHEMA public TO public"
        )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = migrated_sqlite(tmp_path / "platform.db")  # init below seeds it
    else:
        url = request.getfixturevalue("pg_db")
        _empty_pg(url)  # at head, no rows: init below seeds it
    st = Store(SqlBackend(url), actor="tester")
    st.init()
    yield st
    st.close()


@pytest.fixture
def pg_store(pg_db: URL) -> Iterator[Store]:
    """A fresh, initialised store on the session's PostgreSQL database."""
    _empty_pg(pg_db)  # at head, no rows: init below seeds it
    st = Store(SqlBackend(pg_db))
    st.init()
    yield st
    st.close()


def audit(store: Store) -> list[tuple[str, str]]:
    df = store.sql("SELECT action, entity FROM audit_log ORDER BY at")
    return list(zip(df["action"], df["entity"], strict=True))


def test_init_is_idempotent(store: Store) -> None:
    first = store.sql("SELECT COUNT(*) AS n FROM message_templates")["n"].iloc[0]
    report = store.init()
    assert report["from"] == report["to"] == migrate.head()
    assert report["seeded"] == 0
    assert store.sql("SELECT COUNT(*) AS n FROM message_templates")["n"].iloc[0] == first == 2
    assert store.schema_version() == migrate.head()


def test_workflow_crud_is_audited(store: Store) -> None:
    wf = store.workflows.create(name="welcome", description="환영", trigger_config={"a": 1})
    assert store.workflows.get("welcome")["id"] == wf["id"]
    assert store.workflows.get(str(wf["id"]))["trigger_config"] == {"a": 1}
    updated = store.workflows.update("welcome", status="active")
    assert updated["status"] == "active"
    assert store.workflows.get(wf["id"])["status"] == "active"
    store.workflows.delete("welcome")
    with pytest.raises(NotFound):
        store.workflows.get("welcome")
    assert audit(store)[-3:] == [
        ("create", "workflow"),
        ("update", "workflow"),
        ("delete", "workflow"),
    ]


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({}, "workflow.name is required"),
        ({"name": ""}, "workflow.name"),
        ({"name": "w", "trigger_type": "cron"}, "workflow.trigger_type must be"),
        ({"name": "w", "target_config": "{not json"}, "workflow.target_config is not valid JSON"),
        ({"name": "w", "target_config": "[1, 2]"}, "must be a JSON object"),
        (
            {"name": "w", "trigger_type": "schedule", "schedule_config": {"cron": "every day"}},
            "schedule_config.cron",
        ),
        (
            {"name": "w", "schedule_config": {"cron": "0 9 * * *", "timezone": "Mars/Base"}},
            "timezone",
        ),
        ({"name": "w", "colour": "red"}, "workflow.colour is not a known field"),
    ],
    ids=[
        "missing-name",
        "empty-name",
        "trigger",
        "malformed-json",
        "json-list",
        "cron",
        "timezone",
        "unknown-field",
    ],
)
def test_bad_workflow_names_the_field_and_writes_nothing(
    store: Store, fields: dict, words: str
) -> None:
    before = len(audit(store))
    with pytest.raises(ValidationError, match=words) as info:
        store.workflows.create(**fields)
    assert "\n" not in str(info.value)
    assert store.workflows.list() == []
    assert len(audit(store)) == before


def test_duplicate_name_is_refused(store: Store) -> None:
    store.workflows.create(name="dup")
    with pytest.raises(ValidationError, match="'dup' already exists"):
        store.workflows.create(name="dup")
    assert len(store.workflows.list()) == 1


def test_unique_violation_from_the_database_writes_nothing(store: Store) -> None:
    """Bypassing the friendly pre-check, the constraint itself rolls everything back."""
    from hybridwb.platform.backend import Op

    row = store.workflows.create(name="one")
    before = len(audit(store))
    clash = {**row, "id": uuid.uuid4()}
    with pytest.raises(ValidationError, match="already exists"):
        store.backend.apply(
            [
                Op(
                    "insert",
                    "audit_log",
                    {
                        "id": uuid.uuid4(),
                        "actor": "x",
                        "action": "create",
                        "entity": "workflow",
                        "at": row["created_at"],
                    },
                ),
                Op("insert", "workflows", clash),
            ]
        )
    assert len(audit(store)) == before


def test_unknown_id_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound, match="No workflow"):
        store.workflows.update(str(uuid.uuid4()), status="active")
    with pytest.raises(NotFound):
        store.templates.delete("no such template")


def test_templates_count_usage(store: Store) -> None:
    store.templates.create(
        name="t", message_type="sms", content="안녕하세요 {{ 고객명 }}님", variables=["고객명"]
    )
    assert store.templates.get("t")["message_type"] == "SMS"
    assert store.templates.increment_usage("t") == 1
    assert store.templates.increment_usage("t", 2) == 3
    with pytest.raises(ValidationError, match="message_type must be one of"):
        store.templates.create(name="u", message_type="fax", content="x")


def test_individual_variables_and_usage_statistics(store: Store) -> None:
    store.variables.create(
        name="고객명", source_type="field", source="customers.name", formatter="honorific"
    )
    store.variables.create(name="회사명", source_type="constant", source="하이브리드")
    store.variables.record_use("회사명")
    store.variables.record_use("회사명")
    usage = store.variables.usage()
    assert (
        usage[0]["name"] == "회사명" and usage[0]["usage_count"] == 2 and usage[0]["last_used_at"]
    )
    with pytest.raises(ValidationError, match="table.field"):
        store.variables.create(name="x", source_type="field", source="name")


def test_mappings_keep_versions_and_activation(store: Store) -> None:
    store.mappings.save("customers", {"displayName": "고객"})
    store.mappings.save("customers", {"displayName": "고객 정보"})
    assert store.mappings.get("customers")["version"] == 2
    assert [r["version"] for r in store.mappings.history("customers")] == [2, 1]
    assert store.mappings.active() == {"customers": {"displayName": "고객 정보"}}
    store.mappings.set_active("customers", False)
    assert store.mappings.active() == {}
    assert ("deactivate", "mapping") in audit(store)


def test_send_records_are_written_once_per_target(store: Store) -> None:
    wf = store.workflows.create(name="w")
    run = store.runs.create(wf["id"], {"limit": 10})
    records = [
        {
            "run_id": run["id"],
            "workflow_id": wf["id"],
            "target_key": str(i),
            "recipient": f"010-0000-{i:04d}",
            "content": "안녕",
        }
        for i in range(2500)
    ]
    assert store.runs.add_records(records[:1500]) == 1500
    assert store.runs.add_records(records) == 1000  # the first 1500 are skipped
    assert store.runs.record_count(run["id"]) == 2500
    assert store.runs.done_keys(run["id"]) == {str(i) for i in range(2500)}


def test_query_log_is_persisted_in_batches(store: Store) -> None:
    entries = [QueryLogEntry("shop", "SELECT ?", 1.5, 1, "success") for _ in range(5)]
    store.write_query_logs(entries)
    assert store.sql("SELECT COUNT(*) AS n FROM query_logs")["n"].iloc[0] == 5


def test_platform_sql_reads_and_needs_write_for_changes(store: Store) -> None:
    with pytest.raises(ReadOnlyViolation, match="--write"):
        store.sql("DELETE FROM workflows")
    with pytest.raises(ValidationError, match="empty"):
        store.sql("  ")
    store.workflows.create(name="z")
    assert (
        store.sql("DELETE FROM workflows WHERE name = :n", {"n": "z"}, write=True)[
            "rows_affected"
        ].iloc[0]
        == 1
    )


def test_listings(store: Store) -> None:
    store.workflows.create(name="l")
    assert store.listing("workflows")["name"].tolist() == ["l"]
    assert len(store.listing("templates")) == 2
    with pytest.raises(ValidationError, match="Unknown listing"):
        store.listing("nothing")


@pytest.mark.postgres
def test_connections_killed_between_operations_are_replaced(pg_store: Store, pg_db: URL) -> None:
    """The server ends every session of the store (as a restart or failover would); the
    next operation reconnects. Done with pg_terminate_backend, never by restarting the
    shared server."""
    st = pg_store
    st.workflows.create(name="before")
    with psycopg.connect(
        f"host=127.0.0.1 user=postgres dbname={pg_db.database}", autocommit=True
    ) as conn:
        killed = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    assert killed and killed[0] >= 1
    st.workflows.create(name="after")
    assert {w["name"] for w in st.workflows.list()} == {"before", "after"}


def test_init_sql_prints_postgres_ddl_with_rls() -> None:
    sql = migrate.sql_script()
    assert "CREATE TABLE workflows" in sql
    assert "JSONB" in sql
    assert "ENABLE ROW LEVEL SECURITY" in sql
    assert "CREATE POLICY" in sql


def test_embedded_store_is_the_default(tmp_path: Path) -> None:
    st = open_store(load_settings(tmp_path, env={}))
    assert st.backend.name == "sqlite"
    assert (tmp_path / ".hybridwb" / "platform.db").is_file()
    assert len(st.templates.list()) == 2
    st.close()


def test_rest_only_store_explains_what_sql_needs(tmp_path: Path) -> None:
    st = open_store(
        load_settings(
            tmp_path,
            env={
                "SUPABASE_URL": "https://x.supabase.co",
                "SUPABASE_SERVICE_ROLE_KEY": "aaa.bbb.ccc",
            },
        )
    )
    with pytest.raises(StoreError, match="SUPABASE_DB_URL"):
        st.sql("SELECT 1")
    with pytest.raises(StoreError, match="SUPABASE_DB_URL"):
        st.init()


@pytest.mark.postgres
def test_no_server_side_prepared_statements_for_the_transaction_pooler(pg_db: URL) -> None:
    backend = SqlBackend(pg_db)
    raw = backend.engine.raw_connection()
    try:
        assert raw.driver_connection.prepare_threshold is None
    finally:
        raw.close()
        backend.close()
