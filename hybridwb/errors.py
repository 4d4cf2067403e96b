"""The errors a hybridwb user catches, by meaning.

Every message says what happened and what to do, in one line. Errors that wrap a driver
or library exception are built with `HybridwbError.from_cause(exc, message)` and raised
`from None`: the cause's type and code stay as fields (`cause_type`, `code`), but its
frames do not travel with the error, because a driver frame holds the password in its
locals and any traceback printed with locals (IPython `%xmode Verbose`, error reporters)
would show it.

    HybridwbError
    ├── ConfigError            configuration missing or malformed
    │   └── MissingExtra       an optional part is not installed (says the pip line)
    ├── ConnectionFailed       a server cannot be reached or refused the login
    ├── ReadOnlyViolation      the guard or the server refused a statement that could write
    ├── QueryError             the server rejected a read (syntax, unknown table, ...)
    │   └── QueryTimeout       the statement ran past its time limit
    ├── BindError              a bound parameter is missing or of the wrong type
    ├── TranspileError         MySQL SQL that cannot run on the embedded SQLite sample
    ├── ValidationError        bad input to the store, mappings, templates, workflows
    │   └── UnknownAttribute   a misspelt method or attribute (also an AttributeError)
    ├── NotFound               an id or name that does not exist
    ├── StoreError             the platform store failed
    │   └── AuthError          the store refused the key (anon / service role / expired)
    ├── TemplateError          a template that does not parse, escapes the sandbox or
    │                          renders too much, too deep or too long
    ├── CellTimeoutError       a workflow notebook cell ran past its time limit (the run
    │                          is recorded as failed; resume it)
    ├── ScanRefused            a search or target query that would scan a large table
    └── InternalError          an error nobody expected (a bug, memory) left a public call:
                               its type and place only (`validation.checked_call`)
"""

from __future__ import annotations

from typing import Any, Self

__all__ = [
    "AuthError",
    "BindError",
    "CellTimeoutError",
    "ConfigError",
    "ConnectionFailed",
    "HybridwbError",
    "InternalError",
    "MissingExtra",
    "NotFound",
    "QueryError",
    "QueryTimeout",
    "ReadOnlyViolation",
    "ScanRefused",
    "StoreError",
    "TemplateError",
    "TranspileError",
    "UnknownAttribute",
    "ValidationError",
]


def cause_code(exc: BaseException) -> Any:
    """The driver's error code of `exc` (MySQL number, SQLSTATE), or None."""
    orig = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps the DBAPI error in .orig
    for attr in ("sqlstate", "pgcode", "errno"):
        value = getattr(orig, attr, None)
        if value is not None:
            return value
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int):
        return args[0]
    return None


def drop_frames(exc: BaseException | None) -> None:
    """Forget the frames of an exception and of everything chained to it."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        exc.__traceback__ = None
        orig = getattr(exc, "orig", None)
        if isinstance(orig, BaseException):
            drop_frames(orig)
        exc = exc.__cause__ or exc.__context__


class HybridwbError(Exception):
    """Root of every error hybridwb raises on purpose."""

    def __init__(self, message: str, **fields: object) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields
        for key, value in fields.items():
            setattr(self, key, value)

    def __str__(self) -> str:
        return self.message

    @classmethod
    def from_cause(cls, exc: BaseException, message: str, **fields: object) -> Self:
        """This error for a driver/library exception, carrying no frame of it.

        Raise the result `from None`::

            except DBAPIError as exc:
                raise ConnectionFailed.from_cause(exc, "Cannot reach ...") from None

        The message must already be scrubbed of secrets. The cause's type and code stay as
        the fields `cause_type` and `code`; the cause's frames (and those of anything
        chained to it) are dropped, so no traceback printer can reach a driver's locals.
        """
        fields.setdefault("cause_type", f"{type(exc).__module__}.{type(exc).__qualname__}")
        fields.setdefault("code", cause_code(exc))
        drop_frames(exc)
        return cls(message.splitlines()[0] if message else message, **fields)

    def detached(self) -> Self:
        """This error with no chained cause or context and no frames, to raise from a hook
        whose caller (SQLAlchemy, pandas) would otherwise carry them along."""
        self.__cause__ = None
        self.__context__ = None
        self.__suppress_context__ = True
        return self.with_traceback(None)


class ConfigError(HybridwbError):
    pass


class MissingExtra(ConfigError):
    """An optional dependency is missing; `.install` is the exact pip line."""


class ConnectionFailed(HybridwbError):
    pass


class ReadOnlyViolation(HybridwbError):
    pass


class QueryError(HybridwbError):
    pass


class QueryTimeout(QueryError):
    pass


class BindError(HybridwbError):
    pass


class TranspileError(HybridwbError):
    pass


class ValidationError(HybridwbError):
    pass


class NotFound(HybridwbError):
    pass


class UnknownAttribute(ValidationError, AttributeError):
    """A name that is not a method or attribute of a workbench object (also an
    AttributeError, so `hasattr` and `getattr(obj, name, default)` keep working)."""


class StoreError(HybridwbError):
    pass


class AuthError(StoreError):
    pass


class TemplateError(HybridwbError):
    pass


class ScanRefused(HybridwbError):
    pass


class CellTimeoutError(HybridwbError):
    """A workflow notebook cell ran past `cell_timeout`; raised after the run is recorded
    as failed and its lock released. Fields: `run_id`, `cell` (its number in the executed
    notebook, or None), `timeout` (seconds) and `run` (the finished run row)."""


class InternalError(HybridwbError):
    """An error hybridwb did not raise on purpose (a bug, a library's, memory) left a public
    call: the message names its type and the line it came from, never its text or frames,
    which may hold what the call worked on (a page of phones). `HYBRIDWB_DEBUG=1` lets the
    original through instead, for whoever debugs with customer data in front of them."""
