"""hybridwb: a JupyterLab workbench over a read-only production MySQL and a Supabase store.

`Workbench` and `connect` are imported on first use (PEP 562): `import hybridwb` alone (the
CLI's help and version, a program that only catches hybridwb's errors) loads neither
SQLAlchemy, sqlglot, pydantic nor the rest of the workbench (~0.5 s).
"""

import os as _os
from typing import TYPE_CHECKING, Any

from hybridwb._run_kernel import ENV_VAR as _RUN_ENV
from hybridwb._run_kernel import quiet_shutdown_race as _quiet_shutdown_race
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

if TYPE_CHECKING:
    from hybridwb.workbench import Workbench, connect

if _os.environ.get(_RUN_ENV):  # the kernel of a `hybridwb run`
    _quiet_shutdown_race()

_LAZY = ("Workbench", "connect")

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


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from hybridwb import workbench

        value = getattr(workbench, name)
        globals()[name] = value  # found directly from now on
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


def load_ipython_extension(ipython: object) -> None:
    """`%load_ext hybridwb`: connect from the configuration and register the magics."""
    from hybridwb.magics import load

    load(ipython)


def unload_ipython_extension(ipython: object) -> None:
    from hybridwb.magics import unload

    unload(ipython)
