"""Tab completion of table and column names in `%%mysql` and `%%platform` cells.

`sql_completions` is pure (cell text, cursor, known names -> suggestions) and tested on its
own; `matcher` wraps it as an IPython matcher (API v2) that JupyterLab's Tab reaches through
the kernel. `%%mysql` offers the mapping's tables and fields (what the team named and uses),
`%%platform` the store's own tables; nothing is read from a database while typing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

_WORD = re.compile(r"[A-Za-z_][\w$]*")
_MAGIC = re.compile(r"%%(mysql|platform)\b")

Names = Mapping[str, Sequence[str]]  # table -> its columns


def sql_completions(cell: str, cursor: int, token: str, names: Names) -> list[tuple[str, str]]:
    """Suggestions `(text, kind)` for the token before `cursor`, kind being table or column.

    `table.` + prefix gives that table's columns; a bare prefix gives tables, then the
    columns of tables the cell names (a query's own tables first). The magic's own line
    gets nothing: options are not table names."""
    if "\n" not in cell[:cursor]:
        return []
    lowered = {t.lower(): t for t in names}
    if "." in token:
        head, _, prefix = token.rpartition(".")
        table = lowered.get(head.rsplit(".", 1)[-1].strip('`"').lower())
        if table is None:
            return []
        return [
            (f"{head}.{c}", "column") for c in names[table] if c.lower().startswith(prefix.lower())
        ]
    prefix = token.strip('`"').lower()
    out = [(t, "table") for t in names if t.lower().startswith(prefix)]
    named = [lowered[w.lower()] for w in _WORD.findall(cell) if w.lower() in lowered]
    seen = {t for t, _ in out}
    for table in dict.fromkeys(named):  # tables the cell names, in order, once
        for column in names[table]:
            if column.lower().startswith(prefix) and column not in seen:
                seen.add(column)
                out.append((column, "column"))
    return out


def matcher(names_for: Callable[[str], Names]) -> Callable[..., Any]:
    """An IPython matcher for cells that start with %%mysql / %%platform; `names_for(magic)`
    returns the known names (called on Tab, so it must be cheap)."""
    from IPython.core.completer import CompletionContext, SimpleCompletion, context_matcher

    @context_matcher()
    def hybridwb_sql(context: CompletionContext) -> dict[str, Any]:
        match = _MAGIC.match(context.full_text)
        if match is None:
            return {"completions": [], "suppress": False}
        lines = context.full_text.split("\n")
        cursor = sum(len(line) + 1 for line in lines[: context.cursor_line])
        cursor += context.cursor_position
        found = sql_completions(context.full_text, cursor, context.token, names_for(match.group(1)))
        if not found:
            return {"completions": [], "suppress": False}
        return {
            "completions": [SimpleCompletion(text, type=kind) for text, kind in found],
            "suppress": True,  # Python names are noise inside SQL
        }

    return hybridwb_sql


__all__ = ["matcher", "sql_completions"]
