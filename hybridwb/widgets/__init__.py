"""ipywidgets front ends. Each takes the workbench and holds no logic of its own.

Constructors build controls only; the factory functions below load the first data, so a
widget object can be created and driven in tests without a database round trip. The widget
classes live in private modules (`_search.py` …): a public submodule named like its factory
would replace the function on the package at first import, and the second call would fail.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hybridwb.workbench import Workbench


def _workbench(wb: Workbench | None) -> Workbench:
    """The given workbench, the notebook's `wb` from `%load_ext hybridwb`, or a new one."""
    from hybridwb.errors import ValidationError
    from hybridwb.workbench import Workbench

    if isinstance(wb, Workbench):
        return wb
    if wb is not None:
        raise ValidationError(
            f"wb must be the workbench (wb = hybridwb.connect()), not {type(wb).__name__}; "
            "e.g. hybridwb.widgets.search(wb, 'members')."
        )
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:  # pragma: no cover
        shell = None
    from hybridwb.workbench import connect

    found = shell.user_ns.get("wb") if shell is not None else None
    return found if isinstance(found, Workbench) else connect()


def _table(wb: Workbench, table: Any, *, mapped: bool = True) -> str | None:
    """`table` as the widget's table list names it, or one error saying which to give: a
    mapped and active table (by name or display name), or for the mapping editor any table
    of the source. (A name the list does not hold raised traitlets' TraitError.)"""
    from hybridwb.errors import NotFound, ValidationError
    from hybridwb.validation import short

    if table is None:
        return None
    if not mapped:
        if not isinstance(table, str) or table not in wb.source.table_names():
            raise NotFound(f"The source has no table {short(table)}; see wb.mappings.discover().")
        return table
    name, mapping = wb.mappings.resolve(table)
    if not mapping.isActive:
        raise ValidationError(
            f"The mapping of {name} is inactive; activate it with wb.mappings.activate({name!r})."
        )
    return name


def schema_browser(wb: Workbench | None = None) -> Any:
    from hybridwb.widgets._schema import SchemaBrowser

    widget = SchemaBrowser(_workbench(wb))
    widget.refresh()
    return widget


def mapping_editor(wb: Workbench | None = None, table: str | None = None) -> Any:
    from hybridwb.widgets._mapping_editor import MappingEditor

    wb = _workbench(wb)
    table = _table(wb, table, mapped=False)
    widget = MappingEditor(wb)
    widget.refresh(table)
    return widget


def search(wb: Workbench | None = None, table: str | None = None) -> Any:
    from hybridwb.widgets._search import SearchWidget

    wb = _workbench(wb)
    table = _table(wb, table)
    widget = SearchWidget(wb)
    widget.refresh(table)
    return widget


def target_preview(wb: Workbench | None = None, definition: Any = None) -> Any:
    from hybridwb.widgets._targets import TargetPreview

    widget = TargetPreview(_workbench(wb))
    if definition is not None:
        widget.set_definition(definition)
    return widget


def target_builder(wb: Workbench | None = None, table: str | None = None, picks: Any = None) -> Any:
    """The visual target builder on `table` (default: the audience table); `picks` (the
    search widget, or (table, key) pairs) become an `in` condition on their own table."""
    from hybridwb.widgets._builder import TargetBuilder

    wb = _workbench(wb)
    table = _table(wb, table)
    widget = TargetBuilder(wb)
    widget.refresh(table)
    if picks is not None:
        widget.use_picks(picks)
    return widget


def preview(template: str = "", wb: Workbench | None = None, table: str | None = None) -> Any:
    """The variable preview on `table`, by default the mapped audience table."""
    from hybridwb.errors import ValidationError
    from hybridwb.widgets._preview import VariablePreview

    if not isinstance(template, str):
        raise ValidationError(
            f"preview() takes the template text first, not {type(template).__name__}: "
            "hybridwb.widgets.preview('#{고객명}님, 안녕하세요', wb)."
        )
    wb = _workbench(wb)
    widget = VariablePreview(wb, table=_table(wb, table))
    widget.editor.value = template
    widget.update()
    return widget


def monitor(wb: Workbench | None = None) -> Any:
    from hybridwb.widgets._monitor import Monitor

    widget = Monitor(_workbench(wb))
    widget.refresh()
    return widget


__all__ = [
    "mapping_editor",
    "monitor",
    "preview",
    "schema_browser",
    "search",
    "target_builder",
    "target_preview",
]
