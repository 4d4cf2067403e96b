"""IPython front end: `%load_ext hybridwb`, `%%mysql`, `%%platform`, `%hybridwb`.

Magics parse their input (pure functions below, tested on their own), make one workbench
call and present the result. Expected errors become `UsageError`: one line, no traceback.
"""

from __future__ import annotations

import keyword
import re
import shlex
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.utils.capture import capture_output
from sqlglot.tokens import TokenType

from hybridwb.completion import matcher
from hybridwb.errors import HybridwbError
from hybridwb.mapping.model import FieldMapping
from hybridwb.render import row_count
from hybridwb.source import RowsCut
from hybridwb.source.binds import find_binds, positive_int_arg, seconds_arg, tokenize
from hybridwb.validation import short
from hybridwb.workbench import Workbench, connect

if TYPE_CHECKING:  # pandas (and hybridwb.grid with it) is imported where a frame is built
    import pandas as pd


class MagicError(UsageError):
    """An expected error in a magic: one line, no traceback, and still an *error*.

    IPython prints a plain `UsageError` to stderr and reports nothing a notebook runner
    sees; this subclass renders as a one-line error output, so nbval and papermill fail
    a guide or a workflow whose cell fails, while a person sees just the message.
    """

    def __init__(self, message: str, kind: str = "UsageError") -> None:
        super().__init__(message)
        self.kind = kind

    def _render_traceback_(self) -> list[str]:
        return [f"{self.kind}: {self}"]


def _fail(exc: HybridwbError) -> MagicError:
    return MagicError(str(exc), type(exc).__name__)


_TEMPLATE_BIND = re.compile(r"\{\{\s*([A-Za-z_]\w*)\s*(?:\|\s*(\w+)\s*)?\}\}")


@dataclass(frozen=True)
class CellArgs:
    output: str | None = None
    limit: int | None = None
    timeout: float | None = None
    explain: bool = False
    write: bool = False


def parse_args(line: str, *, allow_write: bool = False) -> CellArgs:
    """Parse `-o NAME --limit N --timeout S --explain [--write]` from a magic line."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise MagicError(f"Cannot read the options: {exc}.") from None
    values: dict[str, Any] = {}
    i = 0
    while i < len(words):
        word = words[i]
        if word in ("--explain", "--write"):
            if word == "--write" and not allow_write:
                raise MagicError("--write is only for %%platform; the source is read-only.")
            values[word[2:]] = True
            i += 1
            continue
        if word not in ("-o", "--out", "--limit", "--timeout"):
            raise MagicError(
                f"Unknown option {short(word)}; use -o NAME, --limit N, --timeout SECONDS, --explain."
            )
        if i + 1 >= len(words):
            raise MagicError(f"{word} needs a value.")
        value = words[i + 1]
        if word in ("-o", "--out"):
            if not value.isidentifier() or keyword.iskeyword(value):
                raise MagicError(f"-o needs a Python name, not {short(value)}.")
            values["output"] = value
        elif word == "--limit":
            # ASCII digits only: '²' is a digit to str.isdigit but not to int()
            if not (value.isascii() and value.isdigit()) or len(value) > 12 or int(value) <= 0:
                raise MagicError(f"--limit needs a positive whole number, not {short(value)}.")
            try:
                values["limit"] = positive_int_arg(int(value), "--limit")
            except HybridwbError as exc:
                raise MagicError(exc.message) from None
        else:
            try:
                values["timeout"] = float(value)
            except ValueError:
                raise MagicError(f"--timeout needs seconds, not {short(value)}.") from None
            # the same floor as timeout= (a tiny limit would round to "unlimited")
            try:
                values["timeout"] = seconds_arg(values["timeout"], "--timeout", None)
            except HybridwbError as exc:
                raise MagicError(exc.message) from None
        i += 2
    return CellArgs(**values)


def bind_cell(
    cell: str,
    namespace: Mapping[str, Any],
    identifiers: Callable[[], set[str]] | None = None,
    quote: str = "`",
) -> tuple[str, dict[str, Any]]:
    """Turn `:name` and `{{ name }}` into bound parameters taken from the namespace.

    `{{ name | ident }}` splices an identifier, but only one that exists in the live schema
    (`identifiers()`), quoted; every other value travels as a bound parameter.
    """
    known: set[str] | None = None

    def template(match: re.Match[str]) -> str:
        nonlocal known
        name, flt = match.group(1), match.group(2)
        if flt is None:
            return f":{name}"
        if flt != "ident":
            raise MagicError(
                f"Unknown filter |{flt}; the only filter is |ident (a table or column name)."
            )
        if name not in namespace:
            raise MagicError(f"{name} is not defined in the notebook; set it first.")
        value = namespace[name]
        if isinstance(value, str):  # the text itself: a subclass's `__eq__`/`__hash__` could
            value = str.__str__(value)  # pass the check and its `replace` splice other text
        if known is None:
            known = identifiers() if identifiers else set()
        if not isinstance(value, str) or value not in known:
            raise MagicError(  # the value itself is not repeated: it may be a customer value
                f"The value of {name} is not a table or column of the source; |ident only takes "
                "live names."
            )
        return quote + value.replace(quote, quote * 2) + quote

    try:
        tokens = tokenize(cell)
    except HybridwbError as exc:
        raise _fail(exc) from None
    # a {{ }} inside a string literal, a quoted name or a comment is text, not a bind
    code_starts = {t.start for t in tokens if t.token_type == TokenType.L_BRACE}
    pieces: list[str] = []
    pos = 0
    for match in _TEMPLATE_BIND.finditer(cell):
        if match.start() not in code_starts:
            continue
        pieces += [cell[pos : match.start()], template(match)]
        pos = match.end()
    sql = "".join(pieces) + cell[pos:]
    try:
        names = {b.name for b in find_binds(sql)}
    except HybridwbError as exc:
        raise _fail(exc) from None
    missing = sorted(n for n in names if n not in namespace)
    if missing:
        raise MagicError(
            f":{missing[0]} is not defined in the notebook; set {missing[0]} = ... first."
        )
    return sql, {n: namespace[n] for n in names}


_Magic = TypeVar("_Magic", bound=Callable[..., Any])


def _line_magic_named(name: str) -> Callable[[_Magic], _Magic]:
    """`line_magic(name)`: IPython annotates both call forms as one union; by name it is a
    decorator."""
    return cast("Callable[[_Magic], _Magic]", line_magic(name))


@magics_class
class HybridwbMagics(Magics):
    def __init__(self, shell: Any, wb: Workbench) -> None:
        super().__init__(shell)
        self.wb = wb

    def _user_ns(self) -> dict[str, Any]:
        if self.shell is None:  # only a Magics built without a shell; IPython always passes one
            raise MagicError("This magic needs a running IPython shell.")
        return self.shell.user_ns

    def _present(self, df: Any, args: CellArgs, *, sql: str = "", store: bool = False) -> Any:
        """The result as the grid (sort, page, search, CSV; pii columns masked), with its
        rows and time, and "cut at N rows" only when rows were cut. Source results are
        masked by the mapping's pii flags, followed through the query (an alias, an
        expression, a subquery: hybridwb.lineage); store results by the store's pii columns
        (recipients, rendered messages), followed the same way."""
        if args.limit is not None:  # the summary names the user's own limit
            df.attrs.setdefault("hybridwb", {})["limit"] = args.limit
        from hybridwb.grid import STORE_PII, result_frame

        if store:
            result = result_frame(df, {}, STORE_PII | self.wb.store.pii_columns(sql, df.columns))
        else:
            result = result_frame(df, *source_pii(self.wb, sql, df.columns))
        if args.output:
            self._user_ns()[args.output] = result
        return result

    @cell_magic
    def mysql(self, line: str, cell: str) -> Any:
        """Run read-only SQL (MySQL dialect) on the source: -o NAME --limit N --timeout S --explain."""
        args = parse_args(line)
        source = self.wb.source
        try:
            sql, params = bind_cell(cell, self._user_ns(), lambda: _live_identifiers(self.wb))
            if args.explain:
                sql = "EXPLAIN " + sql
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RowsCut)  # _present says it in the output
                df = source.sql(sql, params, limit=args.limit, timeout=args.timeout)
        except HybridwbError as exc:
            raise _fail(exc) from None
        return self._present(df, args, sql=sql)

    @cell_magic
    def platform(self, line: str, cell: str) -> Any:
        """Run SQL on the platform store: -o NAME --limit N --timeout S [--write].

        Reads run read-only with a time limit; a statement that changes anything needs
        --write and is recorded in the store's audit_log in the same transaction."""
        args = parse_args(line, allow_write=True)
        if args.explain:
            raise MagicError("--explain is only for %%mysql; use EXPLAIN in the statement.")
        try:
            sql, params = bind_cell(cell, self._user_ns())
            df = self.wb.store.sql(
                sql, params, write=args.write, limit=args.limit, timeout=args.timeout
            )
        except HybridwbError as exc:
            raise _fail(exc) from None
        if args.write and "rows_affected" in df:
            print(f"{int(df['rows_affected'].iloc[0]):,} rows changed (audited)")
            if args.output:
                self._user_ns()[args.output] = df
            return df
        return self._present(df, args, sql=sql, store=True)

    @_line_magic_named("platform")
    def platform_line(self, line: str) -> Any:
        """%platform workflows|templates|variables|mappings|runs — list them."""
        what = line.strip()
        try:
            return self.wb.store.listing(what)
        except HybridwbError as exc:
            raise _fail(exc) from None

    @line_magic
    def hybridwb(self, line: str) -> Any:
        """%hybridwb status | doctor | flush"""
        what = line.strip() or "status"
        try:
            if what == "status":
                print(self.wb.status_line())
                return None
            if what == "doctor":
                from hybridwb.observability import run_doctor

                report = run_doctor(self.wb)
                print(report.render())
                return None
        except HybridwbError as exc:
            raise _fail(exc) from None
        raise MagicError(f"Unknown command {short(what)}; use status or doctor.")


def source_pii(wb: Workbench, sql: str, columns: Any) -> tuple[dict[str, FieldMapping], set[str]]:
    """The mapping's fields (pii by name) and the result columns that lineage traces to a
    pii field, for a source result of `sql` (Workbench.source_pii)."""
    return wb.source_pii(sql, columns)


def _live_identifiers(wb: Workbench) -> set[str]:
    names = set(wb.source.table_names())
    for table in list(names):
        names.update(wb.source.column_names(table))
    return names


def register_jupysql(wb: Workbench, ipython: Any = None) -> bool:
    """Give jupysql the same guarded engine under the alias `mysql`, when jupysql is there,
    and load `%sql` itself, so `%sql SELECT ...` works with no further set-up."""
    try:
        from sql.connection import ConnectionManager
    except ImportError:
        return False
    if ipython is not None:
        ipython.extension_manager.load_extension("sql")
    ConnectionManager.set(wb.source.engine, displaycon=False, alias="mysql")
    return True


#: jupysql's result type, named so registering needs no import of jupysql
_RESULTSET = "sql.run.resultset.ResultSet"
_SHOWN_ROWS = 10  # jupysql's default displaylimit, when its config cannot be read


def _resultset_frame(rs: Any) -> tuple[pd.DataFrame, str, str]:
    """The rows a jupysql ResultSet would show (its display limit), its statement, and the
    line under them."""
    import pandas as pd

    rs.fetch_for_repr_if_needed()
    limit = int(getattr(rs._config, "displaylimit", _SHOWN_ROWS) or 0)
    rows = rs._results if limit == 0 else rs._results[:limit]
    columns = [str(k) for k in rs.keys]
    frame = pd.DataFrame.from_records([tuple(r) for r in rows], columns=columns, nrows=len(rows))
    more = len(rs._results) > len(rows) or not getattr(rs, "_mark_fetching_as_done", True)
    note = f"{row_count(len(rows))} shown" + (" (more in the result)" if more else "")
    return frame, str(rs._statement or ""), note


def _masked_resultset(wb: Workbench, rs: Any) -> tuple[pd.DataFrame, set[str], str]:
    from hybridwb.grid import pii_columns

    frame, sql, note = _resultset_frame(rs)
    fields, traced = source_pii(wb, sql, frame.columns)
    return frame, pii_columns(frame.columns, fields) | traced, note


def register_sql_formatters(ipython: Any, wb: Workbench) -> None:
    """jupysql's `%sql` results are shown like `%%mysql`'s: pii masked by the mapping and by
    lineage (its own HTML and text views would show the values). Anything that fails here
    shows a one-line placeholder, never the rows."""

    def html(rs: Any) -> str:
        try:
            from hybridwb.grid import grid_html

            frame, pii, note = _masked_resultset(wb, rs)
            return grid_html(frame, pii, note)
        except Exception as exc:  # a display must not fail open
            return f"<p>(hybridwb: result not shown: {type(exc).__name__})</p>"

    def plain(rs: Any, printer: Any, cycle: bool) -> None:
        try:
            from hybridwb.grid import masked_display

            frame, pii, note = _masked_resultset(wb, rs)
            printer.text(f"{masked_display(frame, pii).to_string(index=False)}\n{note}")
        except Exception as exc:
            printer.text(f"(hybridwb: result not shown: {type(exc).__name__})")

    formatters = ipython.display_formatter.formatters
    module, name = _RESULTSET.rsplit(".", 1)
    formatters["text/html"].for_type_by_name(module, name, html)
    formatters["text/plain"].for_type_by_name(module, name, plain)


def _unregister_sql_formatters(ipython: Any) -> None:
    formatter = getattr(ipython, "display_formatter", None)
    if formatter is None:
        return
    for mime in ("text/html", "text/plain"):
        formatter.formatters[mime].pop(_RESULTSET, None)


def one_line_error(
    shell: Any, etype: type[BaseException], value: BaseException, tb: Any, tb_offset: Any = None
) -> list[str]:
    """Any hybridwb error a cell raises (a refusal inside jupysql's `%sql`, a widget or an API
    call) is shown as its one-line message; IPython still records it as the cell's error,
    so papermill and nbval fail the cell as before."""
    stb = [f"{etype.__name__}: {value}"]
    shell._showtraceback(etype, value, stb)  # an error output, as a traceback would be
    return stb


def _names_for(wb: Workbench) -> Callable[[str], dict[str, list[str]]]:
    def names(magic: str) -> dict[str, list[str]]:
        if magic == "platform":
            from hybridwb.platform.schema import metadata

            return {name: [c.name for c in t.columns] for name, t in metadata.tables.items()}
        try:
            return {name: list(m.fields) for name, m in wb.mappings.tables().items()}
        except HybridwbError:
            return {}

    return names


def load(ipython: Any, wb: Workbench | None = None) -> Workbench:
    try:
        wb = wb if wb is not None else connect()
    except HybridwbError as exc:
        raise _fail(exc) from None
    ipython.register_magics(HybridwbMagics(ipython, wb))
    import hybridwb

    ipython.user_ns.setdefault("wb", wb)
    ipython.user_ns.setdefault("hybridwb", hybridwb)
    print(wb.status_line())
    ipython.set_custom_exc((HybridwbError,), one_line_error)
    completer = getattr(ipython, "Completer", None)
    if completer is not None:
        _unregister_matcher(ipython)
        completer.custom_matchers.append(matcher(_names_for(wb)))
    register_sql_formatters(ipython, wb)
    # jupysql greets with tips and a banner (display outputs): %load_ext shows one status line
    with capture_output(stdout=True, stderr=True, display=True):
        try:
            registered: Exception | bool = register_jupysql(wb, ipython)
        except Exception as exc:  # jupysql is optional; say why it is not wired (below)
            registered = exc
    if isinstance(registered, Exception):
        print(f"hybridwb: jupysql not registered ({type(registered).__name__}); %%mysql works.")
    return wb


def _unregister_matcher(ipython: Any) -> None:
    completer = getattr(ipython, "Completer", None)
    if completer is not None:
        completer.custom_matchers[:] = [
            m for m in completer.custom_matchers if getattr(m, "__name__", "") != "hybridwb_sql"
        ]


def unload(ipython: Any) -> None:
    _unregister_matcher(ipython)
    _unregister_sql_formatters(ipython)
    ipython.set_custom_exc((), None)
    wb = ipython.user_ns.get("wb")
    if isinstance(wb, Workbench):
        wb.close()


__all__ = ["CellArgs", "HybridwbMagics", "bind_cell", "load", "parse_args"]
