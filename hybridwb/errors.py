"""The errors a hybridwb user catches, by meaning.

Every message says what happened and what to do, in one line; the cause is chained.

    HybridwbError
    ├── ConfigError            configuration missing or malformed
    ├── ConnectionFailed       a server cannot be reached or refused the login
    ├── ReadOnlyViolation      the guard or the server refused a statement that could write
    ├── QueryError             the server rejected a read (syntax, unknown table, ...)
    │   └── QueryTimeout       the statement ran past its time limit
    ├── BindError              a bound parameter is missing or of the wrong type
    ├── TranspileError         MySQL SQL that cannot run on the embedded SQLite sample
    ├── ValidationError        bad input to the store, mappings, templates, workflows
    ├── NotFound               an id or name that does not exist
    ├── StoreError             the platform store failed
    │   └── AuthError          the store refused the key (anon / service role / expired)
    ├── TemplateError          a template that does not parse or tries to escape the sandbox
    └── ScanRefused            a search or target query that would scan a large table
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "BindError",
    "ConfigError",
    "ConnectionFailed",
    "HybridwbError",
    "NotFound",
    "QueryError",
    "QueryTimeout",
    "ReadOnlyViolation",
    "ScanRefused",
    "StoreError",
    "TemplateError",
    "TranspileError",
    "ValidationError",
]


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


class ConfigError(HybridwbError):
    pass


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


class StoreError(HybridwbError):
    pass


class AuthError(StoreError):
    pass


class TemplateError(HybridwbError):
    pass


class ScanRefused(HybridwbError):
    pass
