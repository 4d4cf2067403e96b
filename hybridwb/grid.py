"""The result grid of `%%mysql` / `%%platform`: sort, page, search and CSV download, offline.

itables (part of the `notebook` extra) draws the DataFrame as a DataTable with the
JavaScript it ships: the first grid a kernel shows carries the library inline, later ones
reuse it, so nothing is fetched from the network. Columns that the mapping flags `pii` are
masked in what is drawn and therefore in the CSV the grid downloads; the DataFrame the
notebook holds keeps the values. Without itables the shared static table (render.py)
is shown instead, with the same masking.
"""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd

from hybridwb.masking import is_null, mask
from hybridwb.render import render_table
from hybridwb.validation import short

if TYPE_CHECKING:
    from hybridwb.mapping.model import FieldMapping

#: the grid's data travels inside the notebook; past this it is cut and says so
MAX_GRID_BYTES = 4 * 2**20
_CSS = (
    ".hybridwb-grid table.dataTable td, .hybridwb-grid table.dataTable th "
    "{ word-break: keep-all; }"
    ".hybridwb-grid table.dataTable caption { white-space: nowrap; text-align: left; }"
)
#: columns of the platform store that hold personal data (the frozen and sent recipient)
STORE_PII = frozenset({"recipient"})
_init_sent = False


def summary(meta: Mapping[str, Any], rows: int) -> str:
    """The line under a result: rows and time, and "cut at N rows" only when rows were cut."""
    count = "1 row" if rows == 1 else f"{rows:,} rows"
    line = f"{count} · {float(meta.get('elapsed_ms') or 0):,.1f} ms"
    if meta.get("truncated"):
        # the user's own --limit needs no advice, only the reminder of what cut the rows
        hint = f"--limit {meta['limit']}" if meta.get("limit") else "add a WHERE, or pass --limit N"
        line += f" · cut at {rows:,} rows ({hint})"
    return line


def pii_columns(columns: Collection[Any], fields: Mapping[str, FieldMapping]) -> set[str]:
    """Result columns that carry personal data: a mapped pii field's name or `relation.name`,
    matched on the bare name too (a query's `c.phone` comes back as `phone`)."""
    flagged = {name for name, f in fields.items() if f.pii}
    flagged |= {name.rsplit(".", 1)[-1] for name in flagged}
    return {str(c) for c in columns if str(c) in flagged}


def masked_display(df: pd.DataFrame, pii: Collection[str]) -> pd.DataFrame:
    """What every display of a result shows (the grid draws and downloads it, the text
    repr prints it): pii columns masked, NULLs as empty cells, whole
    numbers stored as floats (a NULL in an integer column) shown as whole numbers. Numbers
    stay numbers, so the grid sorts them as numbers (DataTables skips empty cells)."""
    out = pd.DataFrame(df, copy=True)
    for column in out.columns:
        series = out[column]
        if str(column) in pii:
            out[column] = series.map(mask)
        elif pd.api.types.is_float_dtype(series):
            values = series.dropna()
            whole = bool(len(values)) and bool((values == values.round()).all())
            if whole or len(values) < len(series):
                out[column] = series.map(
                    lambda v, whole=whole: "" if is_null(v) else int(v) if whole else v
                )
        elif series.isna().any():
            out[column] = series.map(lambda v: "" if is_null(v) else v)
    return out


display_frame = masked_display  # the earlier name


def itables_available() -> bool:
    return importlib.util.find_spec("itables") is not None


def grid_html(df: pd.DataFrame, pii: Collection[str], note: str) -> str:
    """The interactive grid as HTML (itables, offline), or the static table without itables."""
    if not itables_available() or not len(df.columns):
        return render_table(masked_display(df, pii), caption=note)
    from itables import to_html_datatable
    from itables.javascript import generate_init_offline_itables_html
    from itables.options import dt_bundle

    global _init_sent
    head = ""
    if not _init_sent:
        head = generate_init_offline_itables_html(dt_bundle)
        _init_sent = True
    table_id = "hybridwb_" + uuid.uuid4().hex[:12]
    html = to_html_datatable(
        masked_display(df, pii),
        caption=note,
        connected=False,
        showIndex=False,
        buttons=[{"extend": "csvHtml5", "text": "CSV", "title": "result"}],
        layout={"topStart": "buttons", "topEnd": "search", "bottomStart": "info"},
        lengthMenu=[10, 25, 100, 500],
        maxBytes=MAX_GRID_BYTES,
        table_id=table_id,
        classes="display compact cell-border",
        style="table-layout:auto;width:auto;margin:0;caption-side:bottom",
    )
    return f'{head}<style>{_CSS}</style><div class="hybridwb-grid">{html}</div>'


class ResultFrame(pd.DataFrame):
    """A query result: an ordinary DataFrame whose notebook display is the grid.

    Anything derived from it (`df.head()`, a filter) is a plain DataFrame again."""

    _metadata: ClassVar[list[str]] = ["_grid_pii", "_grid_note"]

    @property
    def _constructor(self) -> type[pd.DataFrame]:
        return pd.DataFrame

    def _repr_html_(self) -> str | None:
        return grid_html(
            pd.DataFrame(self), getattr(self, "_grid_pii", ()), getattr(self, "_grid_note", "")
        )

    def __repr__(self) -> str:
        note = getattr(self, "_grid_note", "")
        text = repr(masked_display(pd.DataFrame(self), getattr(self, "_grid_pii", ())))
        return f"{text}\n{note}" if note else text


def result_frame(
    df: pd.DataFrame,
    fields: Mapping[str, FieldMapping],
    extra_pii: Collection[str] = (),
) -> ResultFrame:
    """Wrap a query result for display: its pii columns (mapped pii fields, plus
    `extra_pii` column names) and its summary line."""
    out = ResultFrame(df)
    out.attrs = dict(df.attrs)
    pii = pii_columns(df.columns, fields) | {str(c) for c in df.columns if str(c) in extra_pii}
    out._grid_pii = frozenset(pii)
    out._grid_note = summary(df.attrs.get("hybridwb", {}), len(df))
    return out


class SourceFrame(pd.DataFrame):
    """`wb.sql`'s result: an ordinary DataFrame with its values intact, whose own display
    (repr, print, notebook HTML) masks the columns that carry personal data.

    Which columns those are is worked out (by lineage, through the query and its views)
    the first time the frame is shown, so a result that is only computed on costs nothing.
    A frame that lost that link (unpickled, copied by `__setstate__`) masks every column.
    `head()`, `tail()` and `sample()` keep the masked display; anything else derived from
    it (a filter, a groupby) is a plain DataFrame again; reading values (`df["email"]`,
    `to_csv`) is explicit and shows them."""

    _metadata: ClassVar[list[str]] = []

    @property
    def _constructor(self) -> type[pd.DataFrame]:
        return pd.DataFrame

    def _shown(self) -> pd.DataFrame:
        plain = pd.DataFrame(self)
        trace = self.__dict__.get("_hwb_trace")
        pii = self.__dict__.get("_hwb_pii")
        if pii is None:
            try:
                pii = frozenset(trace(list(plain.columns))) if trace is not None else None
            except Exception:  # a display must not fail open
                pii = None
            if pii is None:
                pii = frozenset(str(c) for c in plain.columns)
            object.__setattr__(self, "_hwb_pii", pii)
        if not pii:
            return plain
        shown = plain.copy()
        for i, column in enumerate(plain.columns):
            if str(column) in pii:
                shown.isetitem(i, plain.iloc[:, i].map(mask))
        return shown

    def __repr__(self) -> str:
        return repr(self._shown())

    def _repr_html_(self) -> str | None:
        return self._shown()._repr_html_()

    def _repr_latex_(self) -> str | None:
        return self._shown()._repr_latex_()

    def _repr_data_resource_(self) -> Any:
        return self._shown()._repr_data_resource_()

    # the usual first look at a result keeps its columns, so it keeps the masked display
    def head(self, n: int = 5) -> pd.DataFrame:
        return self._same_columns(pd.DataFrame(self).head(n))

    def tail(self, n: int = 5) -> pd.DataFrame:
        return self._same_columns(pd.DataFrame(self).tail(n))

    def sample(self, *args: Any, **kwargs: Any) -> pd.DataFrame:
        return self._same_columns(pd.DataFrame(self).sample(*args, **kwargs))

    def _same_columns(self, rows: pd.DataFrame) -> SourceFrame:
        out = SourceFrame(rows)
        out.attrs = dict(self.attrs)
        for name in ("_hwb_trace", "_hwb_pii"):
            if name in self.__dict__:
                object.__setattr__(out, name, self.__dict__[name])
        return out


def source_frame(df: pd.DataFrame, trace: Any) -> SourceFrame:
    """Wrap a source result: `trace(columns)` names the columns to mask when it is shown.
    A result built as a `SourceFrame` already is given its trace in place."""
    if isinstance(df, SourceFrame):
        out = df
    else:
        out = SourceFrame(df)
        out.attrs = dict(df.attrs)
    object.__setattr__(out, "_hwb_trace", trace)
    return out


def _numeric(series: pd.Series) -> bool:
    """A column whose every value is a number (Decimal columns come back as objects)."""
    values = pd.to_numeric(series, errors="coerce")
    return bool(values.notna().any()) and int(values.notna().sum()) == int(series.notna().sum())


def chart(df: pd.DataFrame, x: str | None = None, y: str | None = None, kind: str = "bar") -> Any:
    """One line to a chart: `chart(df)` plots the first column against the numeric ones.

    `kind` is bar, barh, line or pie; x and y default to the first column and every
    numeric column. Returns the matplotlib Axes."""
    from hybridwb.errors import ValidationError
    from hybridwb.extras import require

    if kind not in ("bar", "barh", "line", "pie"):
        raise ValidationError(f"kind must be bar, barh, line or pie, not {short(kind)}.")
    if not isinstance(df, pd.DataFrame) or df.empty:
        raise ValidationError("chart() needs a DataFrame with rows; the query returned none.")
    columns = [str(c) for c in df.columns]
    x = x if x is not None else columns[0]
    if x not in columns:
        raise ValidationError(f"{short(x)} is not a column; the columns are {', '.join(columns)}.")
    if y is not None and y not in columns:
        raise ValidationError(f"{short(y)} is not a column; the columns are {', '.join(columns)}.")
    ys = [y] if y is not None else [c for c in columns if c != x and _numeric(df[c])]
    if not ys:
        raise ValidationError("chart() found no numeric column to plot; pass y='column'.")
    require("matplotlib", "chart()")
    data = df[[x, *ys]].copy()
    for c in ys:
        data[c] = pd.to_numeric(data[c], errors="coerce")
    if kind == "pie":
        return data.set_index(x)[ys[0]].plot.pie(ylabel="")
    return data.plot(x=x, y=ys, kind=kind, legend=len(ys) > 1)


__all__ = [
    "ResultFrame",
    "SourceFrame",
    "chart",
    "display_frame",
    "grid_html",
    "masked_display",
    "pii_columns",
    "result_frame",
    "source_frame",
    "summary",
]
