"""What the server says about statements, without the values it echoes (pure).

`SHOW WARNINGS` / `SHOW ERRORS` read the diagnostics a pooled connection kept from an earlier
statement (a redacted error's raw message, "Truncated incorrect DOUBLE value: '<phone>'"),
and EXPLAIN prints the values of a table it read while planning (a const table) inside its
conditions. Neither is table rows, so lineage masks nothing there: these functions mask the
text cells before they reach a frame.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sqlglot import exp

from hybridwb.source.catalogue import server_text
from hybridwb.source.guard import Checked, normalize

#: a SQL string literal as the server prints it in a plan (backslash-escaped quotes)
_SQL_STRING = re.compile(r"'(?:[^'\\]|\\.)*'")
_REWRITTEN_QUERY_NOTE = 1003  # EXPLAIN EXTENDED's note: the SELECT as the optimizer rewrote it


def _words(checked: Checked) -> list[str]:
    return [t.text.upper() for t in checked.tokens[:6]]


def shows_diagnostics(checked: Checked) -> bool:
    """`SHOW WARNINGS|ERRORS [LIMIT …]` (the count form shows no message)."""
    words = _words(checked)
    return checked.kind == "show" and len(words) > 1 and words[1] in ("WARNINGS", "ERRORS")


def explains(checked: Checked) -> bool:
    """A plan of a statement, whatever its first word (`DESC FORMAT=JSON SELECT …` is one,
    `EXPLAIN customers` describes a table): the guard wraps the statement it explains."""
    return checked.kind == "describe" and isinstance(checked.expression, exp.Describe)


def message(text: str, code: Any = None) -> str:
    """A server message by the one rule for server text (`catalogue.server_text`: what it
    quotes may hold a value with an apostrophe, so no quote parsing is trusted); the
    rewritten-query note is SQL, shown with every literal as `?`."""
    if str(code) == str(_REWRITTEN_QUERY_NOTE):
        return normalize(text)
    return server_text(text)


def plan_text(text: str) -> str:
    """An EXPLAIN cell with every quoted literal as `'?'` (JSON plans string by string);
    a quote left over (a literal the pattern misread) cuts the text there."""
    if text.lstrip().startswith("{"):
        try:
            plan = json.loads(text)
            masked_plan = _plan_json(plan)
        except ValueError:
            pass
        else:  # the server's own text when nothing was masked
            return text if masked_plan == plan else json.dumps(masked_plan, indent=2)
    masked = _SQL_STRING.sub("'?'", text)
    stray = masked.replace("'?'", "").find("'")
    if stray < 0:
        return masked
    # a plan prints numbers bare, so nothing after the first quote is kept
    return masked[: masked.find("'")] + "'?'"


def _plan_json(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            # a condition is SQL where a const table's number is a bare literal too
            k: normalize(v) if isinstance(v, str) and "condition" in k else _plan_json(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_plan_json(v) for v in node]
    return plan_text(node) if isinstance(node, str) else node


def scrub_rows(checked: Checked, keys: list[str], rows: list[Any]) -> list[Any]:
    """`rows` of `checked`'s result with server-echoed values masked (others unchanged)."""
    if shows_diagnostics(checked):
        lowered = [str(k).lower() for k in keys]
        if "message" not in lowered:
            return rows
        at, code_at = lowered.index("message"), lowered.index("code") if "code" in lowered else None
        out = []
        for row in rows:
            cells = list(row)
            if isinstance(cells[at], str):
                code = cells[code_at] if code_at is not None else None
                cells[at] = message(cells[at], code)
            out.append(tuple(cells))
        return out
    if explains(checked):
        return [tuple(plan_text(c) if isinstance(c, str) else c for c in row) for row in rows]
    return rows
