"""Monitoring from the persisted QueryLog and workflow runs: numbers and an HTML page."""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from typing import TYPE_CHECKING, Any

import sqlglot
from sqlglot.errors import SqlglotError

if TYPE_CHECKING:
    import pandas as pd

    from hybridwb.workbench import Workbench

#: the original platform's success metrics
TARGET_SUCCESS = 0.99
TARGET_AVG_MS = 2000.0


@dataclass
class Stats:
    queries: int
    success_rate: float | None
    avg_ms: float | None
    latency_by_kind: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    slowest: list[dict[str, Any]] = field(default_factory=list)
    runs_by_day: list[dict[str, Any]] = field(default_factory=list)
    since: str | None = None  # the time range of the logs summarised
    until: str | None = None

    @property
    def meets_success(self) -> bool | None:
        return None if self.success_rate is None else self.success_rate >= TARGET_SUCCESS

    @property
    def meets_latency(self) -> bool | None:
        return None if self.avg_ms is None else self.avg_ms <= TARGET_AVG_MS


def readable_sql(text: str, dialect: str = "mysql") -> str:
    """A logged statement (tokens joined by spaces, literals as `?`) pretty-printed by sqlglot
    for people to read: `c . name` becomes `c.name`, one clause per line. Display only; the
    log keeps the text as logged. Text sqlglot cannot read is returned as it is."""
    try:
        parsed = sqlglot.parse(text, read=dialect)
        if len(parsed) != 1 or parsed[0] is None:
            return text
        return parsed[0].sql(dialect=dialect, pretty=True)
    except (SqlglotError, ValueError, RecursionError):
        return text


def _when(value: Any) -> str:
    import pandas as pd

    stamp = pd.to_datetime(value, utc=True)
    return "" if pd.isna(stamp) else stamp.strftime("%Y-%m-%d %H:%M:%S UTC")


def _timed(logs: pd.DataFrame) -> pd.DataFrame:
    """The log rows whose execution time is a finite number: a row edited by hand
    (`%%platform --write`: 'abc', or PostgreSQL's 'Infinity') raised pandas' raw TypeError
    or ValueError from every mean, quantile and bar (round 51); it still counts as a query."""
    import pandas as pd

    times = pd.to_numeric(logs["execution_time"], errors="coerce").astype("float64")
    finite = times.notna() & (times.abs() != float("inf"))
    return logs.assign(execution_time=times)[finite]


def collect(wb: Workbench, limit: int = 50_000) -> Stats:
    """Read the logs and runs through the store (any backend) and summarize them."""
    import pandas as pd

    store = wb.store  # opening the store attaches the log's sink: flush after, not before
    wb.querylog.flush()
    logs = pd.DataFrame(
        store.backend.select("query_logs", order_by="timestamp", desc=True, limit=limit)
    )
    runs = pd.DataFrame(
        store.backend.select("workflow_runs", order_by="created_at", desc=True, limit=limit)
    )
    if logs.empty:
        stats = Stats(0, None, None)
    else:
        ok = logs["status"] == "success"
        timed = _timed(logs)
        by_kind = timed.groupby("kind")["execution_time"]
        stats = Stats(
            queries=len(logs),
            success_rate=float(ok.mean()),
            avg_ms=float(timed["execution_time"].mean()) if len(timed) else None,
            latency_by_kind=[
                {
                    "kind": k,
                    "queries": int(s.size),
                    "p50_ms": round(float(s.quantile(0.5)), 2),
                    "p95_ms": round(float(s.quantile(0.95)), 2),
                }
                for k, s in by_kind
            ],
            errors=[
                {"error": str(e)[:120], "count": int(n)}
                for e, n in logs.loc[~ok, "error_message"]
                .fillna("unknown")
                .str.split(";")
                .str[0]
                .value_counts()
                .head(10)
                .items()
            ],
            slowest=[
                {
                    "query": readable_sql(str(q)),
                    "runs": int(g.size),
                    "avg_ms": round(float(g["execution_time"].mean()), 2),
                    "max_ms": round(float(g["execution_time"].max()), 2),
                    "first": _when(g["timestamp"].min()),
                    "last": _when(g["timestamp"].max()),
                }
                for q, g in sorted(
                    timed.groupby("query"), key=lambda kv: -kv[1]["execution_time"].mean()
                )[:10]
            ],
            since=_when(logs["timestamp"].min()),
            until=_when(logs["timestamp"].max()),
        )
    if not runs.empty:
        runs["day"] = pd.to_datetime(runs["created_at"], utc=True).dt.strftime("%Y-%m-%d")
        table = runs.groupby(["day", "status"]).size().unstack(fill_value=0)
        stats.runs_by_day = [
            {"day": day, **{k: int(v) for k, v in row.items()}}
            for day, row in table.sort_index().iterrows()
        ]
    return stats


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p><em>none</em></p>"
    cols = list(rows[0])
    head = "".join(f"<th>{escape(str(c))}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(r.get(c, '')))}</td>" for c in cols) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _bars(rows: list[dict[str, Any]], label: str, value: str) -> str:
    if not rows:
        return ""
    top = max(float(r[value]) for r in rows) or 1.0
    parts = []
    for i, r in enumerate(rows):
        w = int(300 * float(r[value]) / top)
        y = 8 + i * 24
        parts.append(
            f'<text x="0" y="{y + 13}" font-size="11" fill="currentColor">{escape(str(r[label]))}</text>'
            f'<rect x="120" y="{y}" width="{w}" height="16" fill="#0969da"/><text x="{125 + w}" y="{y + 13}" font-size="11" fill="currentColor">{r[value]}</text>'
        )
    return f'<svg width="520" height="{16 + 24 * len(rows)}">{"".join(parts)}</svg>'


def time_range(stats: Stats) -> str:
    if not stats.since:
        return "no queries logged yet"
    return f"{stats.queries:,} queries from {stats.since} to {stats.until}"


def slowest_html(rows: list[dict[str, Any]]) -> str:
    """Each slow statement whole and readable (pretty-printed, in a <pre>), with its numbers
    and when it ran; colours come from the page, so it reads in a dark theme too."""
    if not rows:
        return "<p><em>none</em></p>"
    parts = []
    for r in rows:
        when = r["first"] if r["first"] == r["last"] else f"{r['first']} to {r['last']}"
        parts.append(
            '<div class="slow-query" style="margin:6px 0">'
            f"<div>avg {r['avg_ms']:,} ms · max {r['max_ms']:,} ms · {r['runs']:,} runs · "
            f"{escape(when)}</div>"
            '<pre style="white-space:pre-wrap;margin:2px 0;padding:4px;'
            "border-left:3px solid var(--jp-border-color1,#999);"
            'color:var(--jp-content-font-color1,inherit);background:transparent">'
            f"{escape(r['query'])}</pre></div>"
        )
    return "".join(parts)


def render_html(stats: Stats) -> str:
    def verdict(ok: bool | None) -> str:
        return "" if ok is None else ("met" if ok else "missed")

    success = "—" if stats.success_rate is None else f"{stats.success_rate:.2%}"
    avg = "—" if stats.avg_ms is None else f"{stats.avg_ms:,.1f} ms"
    return f"""<!doctype html><html lang="ko"><head><meta charset="utf-8"><title>hybridwb stats</title>
<style>body{{font-family:sans-serif;max-width:900px;margin:2em auto}}td,th{{padding:2px 8px;text-align:left}}</style></head><body>
<h1>hybridwb monitoring</h1>
<table class="targets">
<tr><th>metric</th><th>measured</th><th>target</th><th></th></tr>
<tr><td>query success rate</td><td class="success">{success}</td><td>≥ {TARGET_SUCCESS:.0%}</td><td>{verdict(stats.meets_success)}</td></tr>
<tr><td>average response</td><td class="avg">{avg}</td><td>≤ {TARGET_AVG_MS / 1000:g} s</td><td>{verdict(stats.meets_latency)}</td></tr>
<tr><td>queries logged</td><td>{stats.queries:,}</td><td></td><td></td></tr>
</table>
<h2>Latency by kind</h2>{_table(stats.latency_by_kind)}{_bars(stats.latency_by_kind, "kind", "p95_ms")}
<h2>Errors</h2>{_table(stats.errors)}
<p class="range">{escape(time_range(stats))}</p>
<h2>Slowest normalized queries</h2>{slowest_html(stats.slowest)}
<h2>Runs per day</h2>{_table(stats.runs_by_day)}
</body></html>"""
