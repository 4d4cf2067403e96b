"""The HTML summary written next to each executed run notebook (pure: data in, HTML out)."""

from __future__ import annotations

from html import escape
from typing import Any


def _bar_chart(counts: dict[str, int]) -> str:
    """An inline SVG bar chart of outcomes: no plotting library, renders anywhere."""
    if not counts:
        return ""
    top = max(counts.values()) or 1
    colours = {
        "sent": "#1a7f37",
        "queued": "#1a7f37",
        "rendered": "#1a7f37",
        "skipped": "#9a6700",
        "failed": "#cf222e",
    }
    bars = []
    for i, (label, value) in enumerate(counts.items()):
        width = int(300 * value / top)
        y = 10 + i * 28
        bars.append(
            f'<text x="0" y="{y + 15}" font-size="12">{escape(label)}</text>'
            f'<rect x="110" y="{y}" width="{width}" height="20" fill="{colours.get(label, "#57606a")}"/>'
            f'<text x="{115 + width}" y="{y + 15}" font-size="12">{value:,}</text>'
        )
    height = 20 + 28 * len(counts)
    return f'<svg class="outcomes" width="480" height="{height}" role="img" aria-label="outcomes">{"".join(bars)}</svg>'


def render_html(workflow: dict[str, Any], run: dict[str, Any]) -> str:
    stats = run.get("stats") or {}
    skipped = stats.get("skipped_by_reason") or {}
    outcomes = {
        "queued" if not run.get("dry_run") else "rendered": int(
            run.get("sent_count") or run.get("rendered_count") or 0
        ),
        "skipped": int(run.get("skipped_count") or 0),
        "failed": int(run.get("failed_count") or 0),
    }
    rows = (
        "".join(f"<tr><td>{escape(str(k))}</td><td>{v:,}</td></tr>" for k, v in skipped.items())
        or '<tr><td colspan="2">none</td></tr>'
    )
    missing = ", ".join(escape(str(m)) for m in run.get("missing_variables") or []) or "none"
    error = (
        f'<p class="error"><b>Error:</b> {escape(str(run["error"]))}</p>'
        if run.get("error")
        else ""
    )
    timing = (
        f"{stats.get('duration_s', 0):.2f} s, {stats.get('messages_per_s', 0):,.0f} messages/s"
        if stats
        else "not recorded"
    )
    return f"""<!doctype html>
<html lang="ko"><head><meta charset="utf-8"><title>{escape(workflow["name"])} — run {escape(str(run["id"]))}</title>
<style>body{{font-family:sans-serif;max-width:760px;margin:2em auto}}td,th{{padding:2px 10px;text-align:left}}.error{{color:#cf222e}}</style></head>
<body>
<h1>{escape(workflow["name"])}</h1>
<p>Run <code>{escape(str(run["id"]))}</code> · status <b class="status">{escape(str(run["status"]))}</b>{" · dry run" if run.get("dry_run") else ""}</p>
{error}
<table>
<tr><th>targets</th><td class="targets">{int(run.get("target_count") or 0):,}</td></tr>
<tr><th>rendered</th><td>{int(run.get("rendered_count") or 0):,}</td></tr>
<tr><th>send records</th><td class="sent">{int(run.get("sent_count") or 0):,}</td></tr>
<tr><th>skipped</th><td>{int(run.get("skipped_count") or 0):,}</td></tr>
<tr><th>failed</th><td>{int(run.get("failed_count") or 0):,}</td></tr>
<tr><th>timing</th><td>{timing}</td></tr>
<tr><th>missing variables</th><td>{missing}</td></tr>
</table>
<h2>Outcomes</h2>
{_bar_chart(outcomes)}
<h2>Skipped, by reason</h2>
<table>{rows}</table>
</body></html>
"""
