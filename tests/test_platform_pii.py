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
