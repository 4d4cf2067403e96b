"""`hybridwb demo`: the main job on embedded sample data, for a fresh machine."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import hybridwb

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


def run_demo(
    customers: int = 10_000, echo: Callable[[str], object] = print, cwd: Path | None = None
) -> hybridwb.Workbench:
    wb = hybridwb.connect(cwd=cwd)
    if wb.settings.source_is_sample:
        echo(f"Building the sample shop ({customers:,} customers) ...")
        wb.ensure_sample(customers, rebuild=True)
    echo(wb.status_line())
    for title, query, params in DEMO_QUERIES:
        df = wb.sql(query, params)
        meta = df.attrs["hybridwb"]
        echo(f"\n## {title} ({meta['rows']} rows, {meta['elapsed_ms']:.1f} ms)")
        echo(df.to_string(index=False))
    return wb
