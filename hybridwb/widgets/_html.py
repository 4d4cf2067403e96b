"""Small HTML helpers shared by the widgets (escaping is never optional).

Tables go through `hybridwb.render.render_table` (the one renderer); this module keeps the
one-line status messages, coloured with JupyterLab's theme variables (dark theme safe).
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

from hybridwb.errors import HybridwbError
from hybridwb.render import field_index

if TYPE_CHECKING:
    from hybridwb.mapping.model import FieldMapping
    from hybridwb.workbench import Workbench

_COLOURS = {
    "ok": "var(--jp-success-color1, #1a7f37)",
    "error": "var(--jp-error-color1, #cf222e)",
    "warn": "var(--jp-warn-color1, #9a6700)",
    "info": "var(--jp-ui-font-color2, #57606a)",
}


def status(message: str, kind: str = "ok") -> str:
    colour = _COLOURS[kind]
    return (
        f'<span class="hybridwb-status hybridwb-{kind}" style="color:{colour};'
        f'word-break:keep-all">{escape(message)}</span>'
    )


def fields_of(wb: Workbench, table: str | None) -> dict[str, FieldMapping]:
    """The mapped fields of `table` (own and `relation.field`), or none when unmapped."""
    if not table:
        return {}
    try:
        tables = wb.mappings.tables()
        return field_index(tables, table, wb.mappings.resolver.foreign_relations(tables))
    except HybridwbError:  # an unreadable mapping file: render unlabelled, masked nothing
        return {}


def plain(value: Any) -> str:
    return escape("" if value is None else str(value))


def wide() -> Any:
    """A layout as wide as the widget's label: a button's default width cuts a label such
    as "대상으로 사용 (use as targets)" to "대상으로 사용 (use ..."."""
    import ipywidgets as w

    return w.Layout(width="auto")
