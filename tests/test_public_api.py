"""The public surface is small and pinned."""

from __future__ import annotations

import hybridwb
from hybridwb import errors


def test_all_is_exactly_what_is_exported() -> None:
    assert sorted(hybridwb.__all__) == sorted(
        [
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
    )
    for name in hybridwb.__all__:
        assert hasattr(hybridwb, name)


def test_every_error_derives_from_the_root_and_is_drawn_in_the_docstring() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.HybridwbError)
        assert name in errors.__doc__


def test_every_imported_package_is_declared_and_the_base_needs_no_extra() -> None:
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "check_imports.py"
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_from_cause_keeps_type_and_code_but_no_frames() -> None:
    import traceback

    import pymysql

    def driver() -> None:
        password = "frame-local-secret"  # what a driver frame holds
        raise pymysql.err.OperationalError(1045, f"denied {len(password)}")

    def ours() -> None:
        try:
            driver()
        except pymysql.err.OperationalError as exc:
            raise errors.ConnectionFailed.from_cause(exc, "Login refused; check it.") from None

    try:
        ours()
    except errors.ConnectionFailed as exc:
        caught = exc
    assert caught.code == 1045 and caught.cause_type == "pymysql.err.OperationalError"
    assert caught.__cause__ is None and caught.__suppress_context__
    assert caught.__context__ is not None and caught.__context__.__traceback__ is None
    verbose = traceback.TracebackException.from_exception(caught, capture_locals=True)
    assert "frame-local-secret" not in "".join(verbose.format())
    # even a reporter that ignores __suppress_context__ finds no driver frame to print
    chained = traceback.TracebackException.from_exception(caught.__context__, capture_locals=True)
    assert "frame-local-secret" not in "".join(chained.format())
