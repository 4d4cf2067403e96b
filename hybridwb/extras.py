"""Optional parts of hybridwb, and the one message a missing one gives.

The base install is what `%%mysql` and the Python API need. Everything else is an extra;
importing it through `require()` turns a `ModuleNotFoundError` into a `MissingExtra` that
says the exact `pip install` line.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from hybridwb.errors import MissingExtra

#: top-level module -> the extra that installs it
EXTRA_OF: dict[str, str] = {
    "psycopg": "postgres",
    "postgrest": "supabase",
    "papermill": "workflows",
    "ipykernel": "workflows",
    "croniter": "workflows",
    "nbformat": "workflows",
    "faker": "demo",
    "jupyterlab": "notebook",
    "sql": "notebook",
    "matplotlib": "notebook",
    # the faster C driver (mysql+mysqldb://); building it needs libmariadb-dev and pkg-config
    "MySQLdb": "mysqlclient",
    "pyarrow": "arrow",
    "itables": "notebook",
}
#: drivers that are not a hybridwb extra -> the package that provides them
PACKAGE_OF: dict[str, str] = {"mysql": "mysql-connector-python"}


def install_line(module: str) -> str:
    """The exact pip command that brings `module`."""
    top = module.split(".")[0]
    if top in EXTRA_OF:
        return f"pip install 'hybridwb[{EXTRA_OF[top]}]'"
    return f"pip install {PACKAGE_OF.get(top, top)}"


def missing_module_error(module: str, needed_for: str) -> MissingExtra:
    """The one-line error for a module that is not installed."""
    top = module.split(".")[0]
    line = install_line(top)
    return MissingExtra(
        f"{needed_for} needs {top}, which is not installed; run: {line}",
        module=top,
        extra=EXTRA_OF.get(top),
        install=line,
    )


def require(module: str, needed_for: str) -> ModuleType:
    """Import `module`, or raise `MissingExtra` with the pip line that installs it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = exc.name or module
        if module != missing and not module.startswith(missing + "."):
            raise  # something inside the module is broken: not a missing extra
        raise missing_module_error(missing, needed_for) from None
