"""hybridwb: a JupyterLab workbench over a read-only production MySQL and a Supabase store."""

from hybridwb.errors import (
    AuthError,
    BindError,
    CellTimeoutError,
    ConfigError,
    ConnectionFailed,
    HybridwbError,
    MissingExtra,
    NotFound,
    QueryError,
    QueryTimeout,
    ReadOnlyViolation,
    ScanRefused,
    StoreError,
    TemplateError,
    TranspileError,
    UnknownAttribute,
    ValidationError,
)
from hybridwb.workbench import Workbench, connect

__version__ = "0.1.0"

__all__ = [
    "AuthError",
    "BindError",
    "CellTimeoutError",
    "ConfigError",
    "ConnectionFailed",
    "HybridwbError",
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
    "Workbench",
    "__version__",
    "connect",
    "load_ipython_extension",
]


def load_ipython_extension(ipython: object) -> None:
    """`%load_ext hybridwb`: connect from the configuration and register the magics."""
    from hybridwb.magics import load

    load(ipython)


def unload_ipython_extension(ipython: object) -> None:
    from hybridwb.magics import unload

    unload(ipython)
