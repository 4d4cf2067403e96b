"""The public surface is small and pinned."""

from __future__ import annotations

import hybridwb
from hybridwb import errors


def test_all_is_exactly_what_is_exported() -> None:
    assert sorted(hybridwb.__all__) == sorted(
        [
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
