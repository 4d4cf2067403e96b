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
    if wb is not None:
        return wb
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:  # pragma: no cover
        shell = None
    from hybridwb.workbench import Workbench, connect

    found = shell.user_ns.get("wb") if shell is not None else None
    return found if isinstance(found, Workbench) else connect()


def schema_browser(wb: Workbench | None = None) -> Any:
    from hybridwb.widgets._schema import SchemaBrowser

    widget = SchemaBrowser(_workbench(wb))
    widget.refresh()
    return widget


def mapping_editor(wb: Workbench | None = None, table: str | None = None) -> Any:
    from hybridwb.widgets._mapping_editor import MappingEditor

    widget = MappingEditor(_workbench(wb))
    widget.refresh(table)
    return widget


def search(wb: Workbench | None = None, table: str | None = None) -> Any:
    from hybridwb.widgets._search import SearchWidget

    widget = SearchWidget(_workbench(wb))
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

    widget = TargetBuilder(_workbench(wb))
    widget.refresh(table)
    if picks is not None:
        widget.use_picks(picks)
    return widget


def preview(template: str = "", wb: Workbench | None = None, table: str | None = None) -> Any:
    """The variable preview on `table`, by default the mapped audience table."""
    from hybridwb.widgets._preview import VariablePreview

    widget = VariablePreview(_workbench(wb), table=table)
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
