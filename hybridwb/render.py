"""One table renderer for every widget, guide and magic output (pure: rows + mapping -> HTML).

Readable Korean (`word-break: keep-all`), headers from the mapping's display names, values
formatted by the mapping's field types (amounts as `39,800`, dates without a time of zero),
NULL/NaN as empty cells, and personal data masked by the mapping's `pii` flag unless the
caller reveals it explicitly. Colours come from JupyterLab's CSS variables, so the table
reads in the dark theme too; no glyph needs a special font.
"""

from __future__ import annotations

import datetime as dt
import functools
import numbers
import re
from collections.abc import Collection, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, Template

from hybridwb.errors import ValidationError
from hybridwb.mapping.graph import merge_relations
from hybridwb.masking import is_null, mask
from hybridwb.validation import short

if TYPE_CHECKING:
    from hybridwb.mapping.model import FieldMapping, Relation, TableMapping

#: fields whose numbers are identifiers: never grouped with thousands separators
_ID_ROLES = {"id", "reference"}
#: an unmapped column whose name ends in one of these holds identifiers or codes, not
#: amounts (`customer_id`, `order_no`, `zip`, `year`, `phone`): whole numbers stay ungrouped
_ID_WORDS = {"id", "pk", "no", "key", "code", "seq", "zip", "year", "phone", "tel"}

_STYLE = """
.hybridwb-table { border-collapse: collapse; margin: 4px 0; word-break: keep-all;
  color: var(--jp-ui-font-color1, inherit); font-size: var(--jp-ui-font-size1, 13px); }
.hybridwb-table caption { caption-side: bottom; text-align: left; padding-top: 4px;
  color: var(--jp-ui-font-color2, inherit); }
.hybridwb-table th, .hybridwb-table td { padding: 2px 8px; word-break: keep-all;
  overflow-wrap: break-word; border-bottom: 1px solid var(--jp-border-color2, #ccc);
  text-align: left; vertical-align: top; }
.hybridwb-table th { background: var(--jp-layout-color2, transparent);
  font-weight: 600; white-space: nowrap; }
.hybridwb-table td.num { text-align: right; font-variant-numeric: tabular-nums; }
.hybridwb-table td.masked { color: var(--jp-ui-font-color2, inherit); }
"""

_TEMPLATE = """<style>{{ style }}</style>
<table class="hybridwb hybridwb-table" style="word-break: keep-all">
<caption>{{ caption }}</caption>
<thead><tr>{% for h in headers %}<th title="{{ h.name }}">{{ h.label }}</th>{% endfor %}</tr></thead>
<tbody>
{%- for row in rows %}
<tr>{% for cell in row %}<td{% if cell.css %} class="{{ cell.css }}"{% endif %}>{{ cell.text }}</td>{% endfor %}</tr>
{%- endfor %}
</tbody></table>"""

_ENV = Environment(autoescape=True)


@functools.cache
def _table() -> Template:
    """The table's template, compiled when the first table is drawn (not at import)."""
    return _ENV.from_string(_TEMPLATE)


def _number(value: Any, *, grouped: bool) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = Decimal(value.strip())
        except ArithmeticError:
            return None
    if isinstance(value, Decimal):
        value = int(value) if value == value.to_integral_value() else float(value)
    if hasattr(value, "item") and not isinstance(value, int | float):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        return f"{value:,}" if grouped else str(value)
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".") if grouped else f"{value:.2f}"
    return None


def _datetime(value: Any, *, date_only: bool) -> str | None:
    if hasattr(value, "to_pydatetime"):  # pandas Timestamp
        value = value.to_pydatetime()
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    if isinstance(value, dt.datetime):
        if date_only or (value.hour, value.minute, value.second) == (0, 0, 0):
            return value.strftime("%Y-%m-%d")
        return value.strftime("%Y-%m-%d %H:%M" if value.second == 0 else "%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    return None


def _names_an_identifier(column: str | None) -> bool:
    """`customer_id`, `customerId`, `order.no`, `id`: a column name that says its numbers
    are identifiers or codes (the last word of snake_case, camelCase or a dotted path)."""
    if not column:
        return False
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", column).lower()
    return re.split(r"[_.\s-]+", words)[-1] in _ID_WORDS


def _plain_number(value: Any) -> bool:
    """An int, float, Decimal or numpy number; never a bool."""
    return isinstance(value, numbers.Real | Decimal) and not isinstance(value, bool)


def format_value(
    value: Any,
    field: FieldMapping | None = None,
    *,
    reveal: bool = False,
    column: str | None = None,
) -> str:
    """One cell as text: empty for NULL, masked for a pii field, typed by the mapping.

    A number in an unmapped column is grouped (`1,187`) unless the `column` name says it
    is an identifier (`customer_id`)."""
    if is_null(value):
        return ""
    if field is not None and field.pii and not reveal:
        return mask(value)
    ftype = field.type if field is not None else None
    if ftype == "number" or (ftype is None and _plain_number(value)):
        ident = _names_an_identifier(column) if field is None else field.role in _ID_ROLES
        text = _number(value, grouped=not ident)
        if text is not None:
            return text
    if ftype in ("date", "datetime") or isinstance(value, dt.date):
        text = _datetime(value, date_only=ftype == "date")
        if text is not None:
            return text
    if ftype == "boolean" or isinstance(value, bool):
        if str(value).lower() in ("1", "true"):
            return "예"
        if str(value).lower() in ("0", "false"):
            return "아니오"
    return str(value)


def _is_numeric(value: Any, field: FieldMapping | None) -> bool:
    if field is not None:
        return field.type == "number" and not field.pii
    return _plain_number(value)


def field_index(
    tables: Mapping[str, TableMapping],
    table: str,
    extra: Mapping[str, list[Relation]] | None = None,
) -> dict[str, FieldMapping]:
    """The fields a row of `table` can carry: its own by name, and related ones as
    `relation.field` (how previews and samples label columns read through relations).
    `extra` are the relations the live schema's foreign keys add (the resolver's)."""
    mapping = tables.get(table)
    if mapping is None:
        return {}
    out: dict[str, FieldMapping] = dict(mapping.fields)
    for relation in merge_relations(mapping.relations, (extra or {}).get(table, [])):
        other = tables.get(relation.table)
        if other is None:
            continue
        for name, field in other.fields.items():
            out.setdefault(f"{relation.path_name}.{name}", field)
    return out


def _records(rows: Any) -> tuple[list[str], list[dict[str, Any]]]:
    if hasattr(rows, "to_dict") and hasattr(rows, "columns"):  # a DataFrame
        return [str(c) for c in rows.columns], rows.to_dict("records")
    if not isinstance(rows, Sequence) or isinstance(rows, str | bytes):
        raise ValidationError("render_table takes a DataFrame or a list of row dicts.")
    if not all(isinstance(r, Mapping) for r in rows):
        raise ValidationError("Each row must be a dict of column -> value; pass a list of dicts.")
    records = [dict(r) for r in rows]
    columns: list[str] = []
    for r in records:
        columns += [str(c) for c in r if str(c) not in columns]
    return columns, records


def _check_options(columns: Any, labels: Any, caption: Any) -> None:
    """The presentation arguments, each of the type it is read as, or one clear error."""
    if columns is not None and (
        isinstance(columns, str | bytes)
        or not isinstance(columns, Sequence)
        or not all(isinstance(c, str) for c in columns)
    ):
        raise ValidationError("columns must be a list of column names, e.g. ['name', 'grade'].")
    if labels is not None and (
        not isinstance(labels, Mapping)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items())
    ):
        raise ValidationError("labels must be a dict of column -> header text.")
    if not isinstance(caption, str):
        raise ValidationError("caption must be text.")
    for text in [*(columns or ()), *(labels or {}).values(), caption]:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError(
                "A column name, label or caption is not valid text (a lone surrogate); retype it."
            ) from None


def row_count(n: int) -> str:
    return "1 row" if n == 1 else f"{n:,} rows"


def render_table(
    rows: Any,
    mapping: TableMapping | None = None,
    *,
    fields: Mapping[str, FieldMapping] | None = None,
    columns: Sequence[str] | None = None,
    labels: Mapping[str, str] | None = None,
    reveal: bool = False,
    max_rows: int | None = None,
    cut_at: int | None = None,
    caption: str = "",
) -> str:
    """Rows (a DataFrame or list of dicts) as an HTML table.

    `mapping` (or `fields`, for `relation.field` columns) gives display names, types and
    the `pii` flags; `reveal=True` is the only way to show pii values. `max_rows` cuts the
    rows shown; `cut_at` says the caller's query was already cut at that many rows. The
    caption gives the count and says "cut at N rows" only when rows were cut.
    """
    if max_rows is not None and (not isinstance(max_rows, int) or max_rows < 1):
        raise ValidationError(f"max_rows must be a positive number, not {short(max_rows)}.")
    _check_options(columns, labels, caption)
    found, records = _records(rows)
    columns = list(columns) if columns is not None else found
    known: dict[str, FieldMapping] = dict(mapping.fields) if mapping is not None else {}
    known.update(fields or {})
    labels = dict(labels or {})
    total = len(records)
    cut = cut_at
    if max_rows is not None and total > max_rows:
        records, cut = records[:max_rows], max_rows
    headers = [
        {"name": c, "label": labels.get(c) or (known[c].displayName if c in known else c)}
        for c in columns
    ]
    body = []
    for record in records:
        cells = []
        for c in columns:
            value, field = record.get(c), known.get(c)
            masked = field is not None and field.pii and not reveal and not is_null(value)
            css = "masked" if masked else "num" if _is_numeric(value, field) else ""
            text = format_value(value, field, reveal=reveal, column=c)
            cells.append({"text": text, "css": css})
        body.append(cells)
    parts = [caption] if caption else []
    parts.append(row_count(total))
    if cut is not None:
        parts.append(f"cut at {cut:,} rows")
    if not columns:
        return _ENV.from_string("<em>{{ text }}</em>").render(text=" · ".join(parts))
    return _table().render(style=_STYLE, caption=" · ".join(parts), headers=headers, rows=body)


def option_label(
    row: Mapping[str, Any],
    columns: Sequence[str],
    fields: Mapping[str, FieldMapping],
    *,
    reveal: bool = False,
) -> str:
    """A one-line label for a row in a picker (masked like the table)."""
    return " · ".join(
        format_value(row.get(c), fields.get(c), reveal=reveal, column=c) for c in columns
    )


def all_fields(tables: Mapping[str, TableMapping]) -> dict[str, FieldMapping]:
    """Every mapped field by name and as `relation.field`, for rows whose table is not known;
    where two tables share a name the pii one wins, so masking errs on the safe side."""
    out: dict[str, FieldMapping] = {}
    for table in tables:
        for name, field in field_index(tables, table).items():
            if name not in out or (field.pii and not out[name].pii):
                out[name] = field
    return out


def with_pii(fields: Mapping[str, FieldMapping], pii: Collection[str]) -> dict[str, FieldMapping]:
    """`fields` with the `pii` columns marked pii too (a saved query's `phone AS tel`, which
    no mapped name says is a phone), so a table of those rows masks them."""
    from hybridwb.mapping.model import FieldMapping

    out = dict(fields)
    for column in pii:
        field = out.get(column)
        if field is None:
            out[column] = FieldMapping(displayName=column, pii=True)
        elif not field.pii:
            out[column] = field.model_copy(update={"pii": True})
    return out


def text_table(
    rows: Any,
    fields: Mapping[str, FieldMapping],
    *,
    reveal: bool = False,
    labels: Mapping[str, str] | None = None,
    columns: Sequence[str] | None = None,
) -> str:
    """Rows as plain text for a terminal, formatted and masked exactly like `render_table`."""
    import pandas as pd

    found, records = _records(rows)
    columns = list(columns) if columns is not None else found
    if not records:
        return "no rows"
    shown = [
        {
            (labels or {}).get(c, c): format_value(r.get(c), fields.get(c), reveal=reveal, column=c)
            for c in columns
        }
        for r in records
    ]
    return pd.DataFrame.from_records(shown).to_string(index=False)


class Table:
    """A rendered table: the HTML table in a notebook, aligned text anywhere else.

    Both forms come from the same rows, formatted and masked the same way, so a guide's
    committed text output says exactly what the HTML shows."""

    def __init__(self, html: str, text: str) -> None:
        self.html = html
        self.text = text

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self.text

    __str__ = __repr__


def table(
    rows: Any,
    mapping: TableMapping | None = None,
    *,
    fields: Mapping[str, FieldMapping] | None = None,
    columns: Sequence[str] | None = None,
    labels: Mapping[str, str] | None = None,
    reveal: bool = False,
    max_rows: int | None = None,
    caption: str = "",
) -> Table:
    """The one table renderer: rows (a DataFrame or list of dicts) for people to read.

    Korean wraps by word (`word-break: keep-all`), headers are the mapping's display names
    (or `labels`), numbers are grouped and dates shortened by the mapping's field types,
    NULLs are empty and `pii` fields masked unless `reveal=True`. `wb.table(rows, "members")`
    finds the mapping for you."""
    known: dict[str, FieldMapping] = dict(mapping.fields) if mapping is not None else {}
    known.update(fields or {})
    html = render_table(
        rows,
        fields=known,
        columns=columns,
        labels=labels,
        reveal=reveal,
        max_rows=max_rows,
        caption=caption,
    )
    found, records = _records(rows)
    shown = records[:max_rows] if max_rows is not None else records
    columns = list(columns) if columns is not None else found
    headers = {
        c: (labels or {}).get(c) or (known[c].displayName if c in known else c) for c in columns
    }
    body = text_table(shown, known, reveal=reveal, labels=headers, columns=columns)
    parts = [caption] if caption else []
    parts.append(row_count(len(records)))
    if max_rows is not None and len(records) > max_rows:
        parts.append(f"cut at {max_rows:,} rows")
    return Table(html, f"{body}\n({' · '.join(parts)})")
