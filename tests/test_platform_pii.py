"""Which `%%platform` result columns carry the store's personal data (recipients, rendered
messages): followed through the query by lineage, for both store dialects. Pure."""

from __future__ import annotations

from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell

import hybridwb
from hybridwb.platform.console import pii_columns

CASES = [
    ("SELECT recipient AS r FROM run_targets", ["r"], {"r"}),
    ("SELECT upper(content) AS c, status FROM send_records", ["c", "status"], {"c"}),
    ("SELECT r.recipient || '!' AS x FROM run_targets r", ["x"], {"x"}),
    (
        "WITH s AS (SELECT content AS body FROM send_records) SELECT body AS m FROM s",
        ["m"],
        {"m"},
    ),
    ("SELECT m FROM (SELECT recipient AS m FROM send_records) t", ["m"], {"m"}),
    ("SELECT count(recipient) AS n FROM send_records", ["n"], set()),
    ("SELECT status, count(*) AS n FROM workflow_runs GROUP BY status", ["status", "n"], set()),
    ("SELECT content FROM message_templates", ["content"], set()),
    ("SELECT target_key, reason FROM run_skips", ["target_key", "reason"], set()),
    ("SELECT anything AS a FROM someone_elses_table", ["a"], {"a"}),
    (
        "SELECT query, error_message, status FROM query_logs",
        ["query", "error_message", "status"],
        {"query", "error_message"},
    ),
    ("SELECT upper(q.query) AS q FROM query_logs q", ["q"], {"q"}),
    (
        "SELECT actor, action, before, after FROM audit_log",
        ["actor", "action", "before", "after"],
        {"before", "after"},
    ),
    ("SELECT status, error AS why FROM send_records", ["status", "why"], {"why"}),
]


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
@pytest.mark.parametrize(
    ("sql", "columns", "masked"),
    CASES,
    ids=[
        "alias",
        "function",
        "concat",
        "cte",
        "subquery",
        "count",
        "plain",
        "template-content",
        "skips",
        "unknown-table",
        "query-logs",
        "query-logs-expression",
        "audit-log",
        "send-error",
    ],
)
def test_store_pii_columns_are_followed_through_the_query(
    sql: str, columns: list[str], masked: set[str], dialect: str
) -> None:
    assert pii_columns(sql, columns, dialect) == masked


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT recipient AS r FROM run_targets",
        "SELECT 'to ' || recipient AS r FROM run_targets",
        "SELECT content AS body FROM send_records",
        "SELECT s.body FROM (SELECT upper(content) AS body FROM send_records) s",
    ],
    ids=["alias", "concat", "content", "subquery"],
)
def test_platform_magic_masks_store_pii_on_postgres(
    pg_db: object, tmp_path: Path, sql: str
) -> None:
    """On a real PostgreSQL store: the recipient and the rendered message stay hidden in
    every view of the `%%platform` result; the DataFrame keeps them (read explicitly)."""
    import uuid

    from sqlalchemy import create_engine, delete, insert

    from hybridwb.magics import load as load_magics
    from hybridwb.platform import schema
    from tests.test_pii_views import RaisingShell, _unload

    url = pg_db.render_as_string(hide_password=False)  # type: ignore[attr-defined]
    recipient, content = "010-2468-1357", "김지훈님, 안녕하세요"
    with hybridwb.connect(store=url, cwd=tmp_path, env={}) as wb:
        wb.store.init(seed=False)
    engine = create_engine(url)
    wf, run = uuid.uuid4(), uuid.uuid4()
    with engine.begin() as conn:
        conn.execute(insert(schema.workflows).values(id=wf, name=f"wf-{wf.hex[:8]}"))
        conn.execute(insert(schema.workflow_runs).values(id=run, workflow_id=wf))
        conn.execute(
            insert(schema.run_targets).values(
                run_id=run, seq=1, target_key="1", recipient=recipient
            )
        )
        conn.execute(
            insert(schema.send_records).values(
                id=uuid.uuid4(),
                run_id=run,
                workflow_id=wf,
                target_key="1",
                recipient=recipient,
                content=content,
            )
        )
    InteractiveShell.clear_instance()
    sh = RaisingShell.instance()
    wb = hybridwb.connect(store=url, cwd=tmp_path, env={})
    try:
        load_magics(sh, wb)
        result = sh.run_cell(f"%%platform\n{sql}").result
        bundle = sh.display_formatter.format(result)[0]
        shown = "\n".join([*map(str, bundle.values()), repr(result), str(result)])
        assert len(result) >= 1
        assert recipient not in shown and "지훈" not in shown and "2468" not in shown
        assert recipient in result.to_csv() or "지훈" in result.to_csv()  # the frame keeps it
    finally:
        _unload(sh)
        InteractiveShell.clear_instance()
        wb.close()
        with engine.begin() as conn:
            conn.execute(delete(schema.workflows).where(schema.workflows.c.id == wf))
        engine.dispose()


# -- the columns that keep text hybridwb was handed: logs, audit, delivery errors -------------
CANARY_PHONE, CANARY_NAME = "010-7531-8642", "정카나리"


def _seed_logs(url: str) -> None:
    """A query log, an audit entry and a send record holding a customer's values, written
    straight into the store (as an older hybridwb or a gateway might have left them)."""
    import uuid
    from datetime import UTC, datetime

    from sqlalchemy import create_engine, insert

    from hybridwb.platform import schema

    engine = create_engine(url)
    wf, run = uuid.uuid4(), uuid.uuid4()
    echo = f"WHERE name = {CANARY_NAME} AND phone = {CANARY_PHONE}"
    with engine.begin() as conn:
        conn.execute(
            insert(schema.query_logs).values(
                id=uuid.uuid4(),
                timestamp=datetime.now(UTC),
                query=f"SELECT * FROM customers {echo}",
                execution_time=1.0,
                status="error",
                error_message=f"Unknown column {CANARY_NAME} near {CANARY_PHONE}",
            )
        )
        conn.execute(
            insert(schema.audit_log).values(
                id=uuid.uuid4(),
                actor="analyst",
                action="sql",
                entity="sql",
                before={"recipient": CANARY_PHONE},
                after={"statement": f"UPDATE x SET y = 1 {echo}", "rows": 1},
                at=datetime.now(UTC),
            )
        )
        conn.execute(insert(schema.workflows).values(id=wf, name=f"wf-{wf.hex[:8]}"))
        conn.execute(insert(schema.workflow_runs).values(id=run, workflow_id=wf))
        conn.execute(
            insert(schema.send_records).values(
                id=uuid.uuid4(),
                run_id=run,
                workflow_id=wf,
                target_key="1",
                status="failed",
                error=f"gateway refused {CANARY_PHONE} ({CANARY_NAME})",
            )
        )
    engine.dispose()


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT query, error_message, status FROM query_logs",
        "SELECT 'q: ' || query AS q FROM query_logs",
        "SELECT actor, before, after FROM audit_log",
        "SELECT status, error FROM send_records",
        "SELECT e FROM (SELECT error AS e FROM send_records) t",
    ],
    ids=["query-logs", "query-logs-concat", "audit-log", "send-error", "send-error-subquery"],
)
def test_platform_magic_masks_logs_audit_and_send_errors(tmp_path: Path, sql: str) -> None:
    """On the SQLite store: `%%platform` shows none of the customer values a log, an
    audit entry or a delivery error may hold; the DataFrame keeps them (read explicitly)."""
    from hybridwb.magics import load as load_magics
    from tests.test_pii_views import RaisingShell, _unload

    url = f"sqlite:///{tmp_path / 'store.db'}"
    with hybridwb.connect(store=url, cwd=tmp_path, env={}) as wb:
        wb.store.init(seed=False)
    _seed_logs(url)
    InteractiveShell.clear_instance()
    sh = RaisingShell.instance()
    wb = hybridwb.connect(store=url, cwd=tmp_path, env={})
    try:
        load_magics(sh, wb)
        result = sh.run_cell(f"%%platform\n{sql}").result
        bundle = sh.display_formatter.format(result)[0]
        shown = "\n".join([*map(str, bundle.values()), repr(result), str(result)])
        assert len(result) >= 1
        assert CANARY_PHONE not in shown and CANARY_NAME not in shown, shown
        kept = result.to_csv()
        assert CANARY_PHONE in kept or CANARY_NAME in kept  # the oracle: the values are there
    finally:
        _unload(sh)
        InteractiveShell.clear_instance()
        wb.close()
