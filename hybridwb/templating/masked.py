"""A template's inputs with personal values masked, for a message shown on screen.

Masking the rendered text afterwards finds a value only where it appears verbatim; a
template that transforms it (`{{ email | upper }}`, `{{ name[1:] }}`, `replace('-', '')`)
would show it. Rendering from inputs whose pii fields already hold their masked form
(`hybridwb.masking.mask`) makes every transformation work on the stand-in instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hybridwb.masking import is_null, mask

if TYPE_CHECKING:
    from hybridwb.mapping.model import TableMapping
    from hybridwb.templating.matching import Report


def _pii(tables: Mapping[str, TableMapping], table: str | None, field: str | None) -> bool:
    mapping = tables.get(table) if table else None
    found = mapping.fields.get(field) if mapping is not None and field else None
    return found is not None and bool(found.pii)


def _masked(value: Any) -> Any:
    return value if is_null(value) or value == "" else mask(value)


def masked_inputs(
    report: Report,
    row: Mapping[str, Any],
    related: Mapping[str, Any] | None,
    tables: Mapping[str, TableMapping],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """`row` and its `related` values (`{path name: value}`) with every pii field masked.

    An empty value stays empty, so strict and fallback modes decide as they would on the
    real row."""
    own = {k: _masked(v) if _pii(tables, report.table, k) else v for k, v in row.items()}
    others = dict(related or {})
    for variable in report.variables:
        src = variable.source
        path = src.path if src is not None else None
        if (
            path is not None
            and path.hops
            and path.name in others
            and _pii(tables, path.table, path.field)
        ):
            others[path.name] = _masked(others[path.name])
    return own, others


__all__ = ["masked_inputs"]
