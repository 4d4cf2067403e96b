"""The final text is guarded where it is sent.

A `before_cursor_execute` hook asks the driver for the exact text it would send
(`cursor.mogrify(statement, params)`: the values pasted in as escaped literals), runs the
guard on that text, and hands the driver that text with *no* parameters, so nothing is
interpolated after the check. The driver's own connection is guarded too (rawguard.py): it
lets through the text this hook approved and guards any other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, event
from sqlglot import exp

from hybridwb.errors import BindError, HybridwbError, ReadOnlyViolation
from hybridwb.source import drivers, guard, rawguard
from hybridwb.source.binds import bind_layout, only_values_differ, values_fit
from hybridwb.source.session import SessionFacts, SessionPolicy, escape_as_read
from hybridwb.source.values import driver_params, held_params
from hybridwb.source.verdicts import VERDICTS


def install_final_text_guard(engine: Engine, facts: SessionFacts, policy: SessionPolicy) -> None:
    """Guard the exact text the driver will send, and send exactly that text."""

    @event.listens_for(engine, "before_execute", retval=True)
    def _held_items(
        conn: Any, element: Any, multiparams: Any, params: Any, execution_options: Any
    ) -> tuple[Any, Any, Any]:
        # SQLAlchemy expands an IN list (`bindparam(..., expanding=True)`, `column.in_`)
        # by iterating the value before the cursor hook sees it: a subclass's `__iter__`
        # chose the items
        return element, [held_params(p) for p in multiparams], held_params(params)

    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def _guard_final_text(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> tuple[str, None]:
        if many:
            raise ReadOnlyViolation("Refused: executemany is for writes; hybridwb only reads.")
        refused: HybridwbError | None = None
        try:
            escape_as_read(conn.connection, facts, policy)
            parameters = driver_params(parameters)  # each the plain value it means
            final = final_text(cursor, statement, parameters, context)
            _check_bound_size(statement, final, parameters)
            guard_final_text(final, policy, whole_result=True)
        except HybridwbError as exc:
            refused = exc  # the parser's error holds the statement: nothing may be chained
        if refused is not None:
            raise refused.detached()
        # query() lets it pass once the engine hands it to the driver (`rawguard.sending`)
        rawguard.expect(conn.connection.dbapi_connection, final)
        return final, None


def _check_bound_size(statement: str, final: str, parameters: Any) -> None:
    """Refuse, naming the parameter, a statement whose bound values make the text the
    driver sends longer than the guard reads: the guard's own refusal told a caller who
    had bound an IN list of 300,000 ids to "put long value lists in a bound parameter"."""
    limit = guard.MAX_QUERY_BYTES
    if len(final) * 4 <= limit:  # (4 bytes a character at most)
        return
    size = len(final.encode("utf-8", "replace"))
    if size <= limit or len(statement.encode("utf-8", "replace")) > limit:
        return
    named = parameters.items() if isinstance(parameters, dict) else enumerate(parameters or (), 1)
    sizes = {
        (str(k) if isinstance(parameters, dict) else f"#{k}"): len(v)
        if isinstance(v, tuple | str | bytes)
        else 1
        for k, v in named
    }
    if not sizes:
        return
    name = max(sizes, key=sizes.__getitem__)
    raise BindError(
        f"Parameter {name!r} makes the statement {size:,} bytes; the limit is {limit:,}. "
        "Bind fewer or shorter values (split the list), or join on a table instead.",
        name=name,
    )


def guard_final_text(
    final: str,
    policy: SessionPolicy,
    *,
    approved: Any = None,
    params: Mapping[str, Any] | None = None,
    whole_result: bool,
) -> None:
    """The guard on the text the driver sends.

    `approved` is what `Source` already admitted (its text, tokens and binds): when the final
    text is that text, or tokenizes as it with only the binds replaced by literals, the
    decision is the same and the parse is skipped; anything else is checked in full. With
    the `params` it was made from, a final text that is the approved text with a str or int
    literal in place of each bind, in a place nothing can join it to another token, is seen
    to be one without tokenizing (`binds.values_in_place`). Both
    decisions are remembered by the exact final text (verdicts.py): a text sent again is
    not tokenized again. `whole_result` callers (pandas, jupysql) read every row at once, so a LIMIT above the cap
    is refused for them."""
    if approved is not None:
        if final == approved.sql:
            return
        if params is not None:
            # the layout of its binds, made once per statement when it keeps one (`Prepared`)
            layout: Any = getattr(approved, "layout", _UNKNOWN)
            if layout is _UNKNOWN:
                layout = bind_layout(approved.sql, approved.binds)
            if values_fit(layout, params, final):
                return  # the approved text with a literal in place of each bind: nothing new
        key = ("values of", approved.sql, policy.allowed_functions, final)
        if VERDICTS.admits(key, lambda: _values_only(final, approved)):
            return
    checked = VERDICTS.check(final, policy.allowed_functions)
    if whole_result:
        refuse_large_limit(checked, policy.select_limit - 1)


#: an approved statement that keeps no `layout` of its binds
_UNKNOWN = object()


def _values_only(final: str, approved: Any) -> bool:
    """`final` tokenizes as the approved statement with a value in place of each bind."""
    try:
        tokens = guard._DIALECT.tokenize(final)
    except Exception:  # the full check says what is wrong
        return False
    return bool(tokens) and only_values_differ(
        list(approved.checked.tokens), list(approved.binds), tokens
    )


def final_text(cursor: Any, statement: str, parameters: Any, context: Any) -> str:
    """The text the driver (PyMySQL or mysqlclient) would send for
    `execute(statement, parameters)`: both escape the values with the connection's own
    rules and return the whole statement."""
    if parameters is None or (not parameters and context is not None and context.no_parameters):
        return statement
    try:
        return str(cursor.mogrify(statement, parameters))
    except drivers.errors(TypeError, ValueError, KeyError):
        raise BindError(
            "The statement's parameters do not fit its placeholders "
            "(a literal % must be written %% when parameters are given)."
        ) from None


def refuse_large_limit(checked: guard.Checked, cap: int) -> None:
    """For callers that read a whole result at once (pandas, jupysql): the server's
    `sql_select_limit` caps a SELECT without LIMIT, but an explicit LIMIT overrides it."""
    if checked.kind != "select":
        return
    node = checked.expression
    limit = node.args.get("limit")
    # `(SELECT ... LIMIT n)`: the server applies the LIMIT inside the parentheses and no
    # sql_select_limit, when none stands outside them
    while limit is None and isinstance(node, exp.Subquery):
        node = node.this
        limit = node.args.get("limit")
    if limit is None:
        return
    value = limit.expression if isinstance(limit, exp.Limit) else limit
    if isinstance(value, exp.Literal) and value.is_int and int(value.this) <= cap + 1:
        return
    raise ReadOnlyViolation(
        f"Refused: a LIMIT above the row cap ({cap:,}) on the engine would read the whole "
        "result into memory; use wb.sql(...), which stops at the cap, or a smaller LIMIT.",
        reason="limit above the row cap",
    )
