"""The browser tier may not be skipped silently: where Chromium is installed (or
HYBRIDWB_REQUIRE_BROWSER=1), a skipped browser test fails the session. conftest.py imports
these hooks; tests/test_browser_gate.py runs them in a pytest of their own."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_SKIPPED_BROWSER: list[str] = []


def browser_required() -> bool:
    """Where Chromium is installed (or HYBRIDWB_REQUIRE_BROWSER=1), a skipped browser test
    is a failure: `make test` must not pass without the tier it claims to run."""
    chromium = os.environ.get("HYBRIDWB_CHROMIUM", "/usr/bin/chromium")
    return os.environ.get("HYBRIDWB_REQUIRE_BROWSER") == "1" or Path(chromium).exists()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and "browser" in report.keywords:
        _SKIPPED_BROWSER.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _SKIPPED_BROWSER and browser_required():
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        tr = session.config.pluginmanager.get_plugin("terminalreporter")
        if tr is not None:
            tr.write_line(
                f"FAILED: {len(_SKIPPED_BROWSER)} browser test(s) skipped although Chromium is "
                "required here (installed, or HYBRIDWB_REQUIRE_BROWSER=1)",
                red=True,
            )
