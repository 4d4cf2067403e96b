"""The monitoring view: the `hybridwb stats` numbers inside the notebook, refreshable.

Drawn with the shared table renderer and theme colours (readable in the dark theme), with
words instead of glyphs that need a special font."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from hybridwb.errors import HybridwbError
from hybridwb.observability import collect
from hybridwb.observability.stats import TARGET_AVG_MS, TARGET_SUCCESS, slowest_html, time_range
from hybridwb.render import render_table
from hybridwb.widgets._html import status

if TYPE_CHECKING:
    from hybridwb.observability.stats import Stats
    from hybridwb.workbench import Workbench


def _verdict(ok: bool | None) -> str:
    return "" if ok is None else ("met (충족)" if ok else "missed (미달)")


def bars(rows: list[dict[str, Any]], label: str, value: str) -> str:
    """Horizontal bars in theme colours, labels as text (no SVG text that vanishes)."""
    if not rows:
        return ""
    top = max(float(r.get(value) or 0) for r in rows) or 1.0
    parts = []
    for r in rows:
        width = max(1, int(100 * float(r.get(value) or 0) / top))
        parts.append(
            '<div style="display:flex;align-items:center;gap:6px;margin:2px 0">'
            f'<span style="width:120px;color:var(--jp-ui-font-color1,inherit)">'
            f"{escape(str(r.get(label)))}</span>"
            f'<span style="display:inline-block;height:12px;width:{width * 3}px;'
            'background:var(--jp-brand-color1,#1976d2)"></span>'
            f'<span style="color:var(--jp-ui-font-color1,inherit)">'
            f"{escape(str(r.get(value)))}</span></div>"
        )
    return "".join(parts)


def page(stats: Stats) -> str:
    success = "" if stats.success_rate is None else f"{stats.success_rate:.2%}"
    avg = "" if stats.avg_ms is None else f"{stats.avg_ms:,.1f} ms"
    metrics = [
        {
            "metric": "query success rate",
            "measured": success,
            "target": f">= {TARGET_SUCCESS:.0%}",
            "verdict": _verdict(stats.meets_success),
        },
        {
            "metric": "average response",
            "measured": avg,
            "target": f"<= {TARGET_AVG_MS / 1000:g} s",
            "verdict": _verdict(stats.meets_latency),
        },
        {"metric": "queries logged", "measured": f"{stats.queries:,}", "target": "", "verdict": ""},
    ]
    return "".join(
        [
            render_table(metrics, caption=f"hybridwb monitoring · {time_range(stats)}"),
            render_table(stats.latency_by_kind, caption="latency by kind"),
            bars(stats.latency_by_kind, "kind", "p95_ms"),
            render_table(stats.errors, caption="errors"),
            '<div style="color:var(--jp-ui-font-color1,inherit)">'
            "<b>slowest normalized queries</b>" + slowest_html(stats.slowest) + "</div>",
            render_table(stats.runs_by_day, caption="runs per day"),
        ]
    )


class Monitor(w.VBox):
    def __init__(self, wb: Workbench) -> None:
        self.wb = wb
        self.page = w.HTML()
        self.refresh_button = w.Button(description="새로고침", icon="refresh")
        self.refresh_button.on_click(lambda _: self.refresh())
        super().__init__([self.refresh_button, self.page])

    def refresh(self) -> None:
        try:
            self.page.value = page(collect(self.wb))
        except HybridwbError as exc:
            self.page.value = status(str(exc), "error")
