"""Small HTML helpers shared by the widgets (escaping is never optional)."""

from __future__ import annotations

from html import escape
from typing import Any


def table(
    rows: list[dict[str, Any]],
    columns: list[str] | None = None,
    labels: dict[str, str] | None = None,
) -> str:
    if not rows:
        return "<em>no rows</em>"
    columns = columns or list(rows[0])
    labels = labels or {}
    head = "".join(f"<th>{escape(str(labels.get(c, c)))}</th>" for c in columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{escape('' if r.get(c) is None else str(r.get(c)))}</td>" for c in columns)
        + "</tr>"
        for r in rows
    )
    return f'<table class="hybridwb"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def status(message: str, kind: str = "ok") -> str:
    colour = {"ok": "#1a7f37", "error": "#cf222e", "warn": "#9a6700", "info": "#57606a"}[kind]
    return f'<span class="hybridwb-status hybridwb-{kind}" style="color:{colour}">{escape(message)}</span>'
