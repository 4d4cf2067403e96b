"""`hybridwb demo`: the main job on embedded sample data, for a fresh machine."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import hybridwb
from hybridwb.errors import NotFound
from hybridwb.workflows.report import excluded_note

DEMO_QUERIES = [
    (
        "Customers by grade (active only)",
        "SELECT grade, COUNT(*) AS customers FROM customers WHERE status = :status "
        "GROUP BY grade ORDER BY customers DESC",
        {"status": "active"},
    ),
    (
        "Subscriptions ending soon, with the customer",
        "SELECT c.name, c.grade, s.plan, s.ends_at FROM subscriptions s "
        "JOIN customers c ON c.customer_id = s.customer_id "
        "WHERE s.status = 'active' ORDER BY s.ends_at LIMIT 5",
        None,
    ),
    (
        "Revenue by payment method",
        "SELECT method, SUM(amount) AS revenue FROM payments WHERE status = 'paid' "
        "GROUP BY method ORDER BY revenue DESC",
        None,
    ),
]
DEMO_WORKFLOW = "demo-renewal-notice"
DEMO_TEMPLATE = "데모 구독 만료 안내"


def ensure_mappings(wb: hybridwb.Workbench, echo: Callable[[str], object]) -> None:
    """Map the sample tables from suggestions when no mapping exists yet."""
    for table in ("customers", "subscriptions", "payments"):
        try:
            wb.mappings.get(table)
        except NotFound:
            wb.mappings.save(table, wb.mappings.suggest(table))
            echo(f"mapped {table} (suggested) -> {wb.mappings.path}")


def ensure_workflow(wb: hybridwb.Workbench) -> dict:
    try:
        wb.templates.get(DEMO_TEMPLATE)
    except NotFound:
        wb.templates.create(
            DEMO_TEMPLATE,
            "#{고객명}님, 이용 중인 {{ 요금제 }} 구독이 {{ 만료일 | date_ko }}에 만료됩니다. 앱에서 갱신해 주세요.",
            message_type="LMS",
            category="renewal",
        )
    try:
        return wb.workflows.get(DEMO_WORKFLOW)
    except NotFound:
        return wb.workflows.create(
            DEMO_WORKFLOW,
            description="VIP·GOLD 활성 고객에게 구독 만료 안내",
            target_config={
                "table": "customers",
                "where": {
                    "all": [
                        {"field": "grade", "op": "in", "value": ["VIP", "GOLD"]},
                        {"field": "status", "op": "eq", "value": "active"},
                    ]
                },
            },
            message_config={"template": DEMO_TEMPLATE, "mode": "strict"},
            trigger_type="schedule",
            schedule_config={"cron": "0 9 * * *", "timezone": "Asia/Seoul"},
        )


def run_demo(
    customers: int = 10_000,
    echo: Callable[[str], object] = print,
    cwd: Path | None = None,
    run: bool = True,
) -> hybridwb.Workbench:
    import pandas as pd

    from hybridwb.grid import masked_display, pii_columns

    wb = hybridwb.connect(cwd=cwd)
    if wb.settings.source_is_sample:
        echo(f"Building the sample shop ({customers:,} customers) ...")
        wb.ensure_sample(customers, rebuild=True)
    echo(wb.status_line())
    report = wb.store.init()
    echo(f"platform store: schema {report['to']} on {report['backend']}")
    ensure_mappings(wb, echo)  # first: the query results below are masked by its pii flags
    for title, query, params in DEMO_QUERIES:
        df = wb.sql(query, params)
        meta = df.attrs["hybridwb"]
        echo(f"\n## {title} ({meta['rows']} rows, {meta['elapsed_ms']:.1f} ms)")
        fields, traced = wb.source_pii(query, df.columns)
        shown = masked_display(pd.DataFrame(df), pii_columns(df.columns, fields) | traced)
        echo(shown.to_string(index=False))
    wf = ensure_workflow(wb)
    if run:
        echo(f"\nRunning workflow {wf['name']!r} with papermill ...")
        final = wb.workflows.run(wf["id"], progress=False)
        echo(
            f"run {final['id']}: {final['status']} · targets {final['target_count']:,} · "
            f"send records {final['sent_count']:,} · skipped {final['skipped_count']:,}"
        )
        if final.get("error"):
            echo(f"error: {final['error']}")
        note = excluded_note(final)
        if note:
            echo(f"warning: {note}")
        echo(f"report: {final['report_path']}")
        echo(f"notebook: {Path(str(final['report_path'])).with_suffix('.ipynb')}")
    return wb
