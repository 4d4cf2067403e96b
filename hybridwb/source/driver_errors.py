"""Driver errors on the source's engines, as hybridwb errors.

Errors on the engine (pandas, jupysql, the inspector) are hybridwb errors with a one-line,
scrubbed message and nothing chained: the driver is called from SQLAlchemy's `do_connect` /
`do_execute` hooks, and a driver error is translated where it happens and raised outside
the `except`, so neither SQLAlchemy (which would chain it `from` the driver error) nor a
traceback printer with locals ever reaches the driver's frames (the password, the text
with the values pasted in).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Engine, event

from hybridwb.config import scrub
from hybridwb.errors import HybridwbError, ReadOnlyViolation
from hybridwb.source import catalogue, drivers

#: the statements of SQLAlchemy's own probes that set `skip_user_error_events` (the MySQL
#: dialect's has_table, reflection): a table's name, no value
_PROBE = re.compile(r"\s*(?:DESCRIBE|SHOW\s+CREATE\s+TABLE)\s", re.IGNORECASE)
#: client errors that mean the connection is gone (the pool then opens a new one)
_GONE = frozenset({2006, 2013, 2014, 2045, 2055, 4031})


Secrets = Callable[[], Iterable[str]]


def driver_error(
    exc: BaseException, ctx: catalogue.Context, secrets: Secrets = tuple
) -> HybridwbError:
    """A driver error as a hybridwb error: one scrubbed line, the cause's type and code as
    fields, no frames of the cause (raise it outside the `except` that caught `exc`)."""
    err = catalogue.translate(exc, ctx)
    return type(err).from_cause(exc, scrub(err.message, secrets()), **err.fields)


def _own_probe(context: Any, statement: Any) -> bool:
    """One of SQLAlchemy's own probes (`_PROBE`, with `skip_user_error_events`), whose
    driver error SQLAlchemy reads itself; its text is a table's name, no value."""
    return (
        context is not None
        and bool(context.execution_options.get("skip_user_error_events"))
        and isinstance(statement, str)
        and _PROBE.match(statement) is not None
    )


def is_gone(exc: BaseException) -> bool:
    """The connection is dead (the pool must not hand it out again)."""
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    return isinstance(exc, drivers.interface_errors()) or code in _GONE


def install_driver_errors(
    engine: Engine,
    ctx: catalogue.Context,
    secrets: Secrets,
    driver: type[BaseException] | tuple[type[BaseException], ...],
    gone: Callable[[BaseException], bool],
    after_error: Callable[[Any], None] | None = None,
    before_send: Callable[[Any, str], None] | None = None,
) -> None:
    """Statements on the engine call the driver here, so its errors become hybridwb errors
    before SQLAlchemy sees them (it would chain them `from` the driver error).
    `before_send(cursor, statement)` runs right before the driver is called."""

    def call(context: Any, method: Callable[..., Any], *args: Any) -> None:
        failed: BaseException | None = None
        try:
            method(*args)
        except driver as exc:
            failed = exc
        if failed is None:
            return
        if _own_probe(context, args[0] if args else None):
            # SQLAlchemy's own probes (has_table: DESCRIBE -> 1146 means "no") read the
            # driver error themselves; their statements hold no values. The session is
            # still read back after it: a caller can set the option on any statement, and
            # a view's function may have changed the session before it failed. Any other
            # statement's error is translated as always (round 50: raw, SQLAlchemy wrapped
            # it with `[SQL: <the text sent>]`, the bound phone pasted in, or the server's
            # `Duplicate entry '<a customer's phone>'`)
            if after_error is not None and not gone(failed):
                violation: ReadOnlyViolation | None = None
                try:
                    after_error(context)
                except ReadOnlyViolation as exc:
                    violation = exc
                if violation is not None:
                    raise violation.detached()
            raise failed
        dead = gone(failed)
        error: HybridwbError = driver_error(failed, ctx, secrets)
        del failed
        if dead and context is not None and not context.root_connection.invalidated:
            context.root_connection.invalidate()  # never handed out again
        elif after_error is not None and context is not None:
            # a statement that failed may have run server code first (a view or function
            # that changed the session, then raised): read the session back before the
            # connection is used again; a changed session is restored and said instead
            try:
                after_error(context)
            except ReadOnlyViolation as violation:
                error = violation.detached()
        raise error

    @event.listens_for(engine, "do_execute")
    def _do_execute(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
        if before_send is not None:
            before_send(cursor, statement)
        call(context, cursor.execute, statement, parameters)
        return True

    @event.listens_for(engine, "do_execute_no_params")
    def _do_execute_no_params(cursor: Any, statement: str, context: Any) -> bool:
        if before_send is not None:
            before_send(cursor, statement)
        call(context, cursor.execute, statement)
        return True


def install_error_translation(engine: Engine, error_context: Any) -> None:
    """A fallback for driver errors that reach SQLAlchemy some other way (the hooks above
    translate the usual ones): one-line hybridwb errors, although SQLAlchemy chains them.

    The text sent holds the values (the driver pasted them in), and SQLAlchemy's own error
    would print it; the translated error carries the server's message with literals removed
    and no statement."""

    @event.listens_for(engine, "handle_error")
    def _translate(context: Any) -> None:
        exc = context.original_exception
        if _own_probe(context.execution_context, context.statement):
            # SQLAlchemy's has_table reads DESCRIBE's 1146 as "no such table" itself, but
            # asks only the connection's options whether to skip this event: translated,
            # `inspect(engine).has_table("missing")` raised QueryError instead of False
            return
        if isinstance(exc, drivers.errors()):
            raise catalogue.translate(exc, error_context) from None
