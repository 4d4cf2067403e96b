"""The browser tier may not be skipped silently: the gate's hooks (tests/_browser_gate.py)
run in a pytest of their own over one browser test that skips, and the session's exit code
is the oracle."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


def run_gate(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text(
        f"import sys\nsys.path.insert(0, {str(TESTS)!r})\n"
        "from _browser_gate import pytest_runtest_logreport, pytest_sessionfinish\n"
    )
    (tmp_path / "test_one.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.browser\n"
        "def test_in_a_browser():\n"
        "    pytest.skip('no page today')\n\n"
        "def test_plain():\n"
        "    assert True\n"
    )
    full = {k: v for k, v in os.environ.items() if not k.startswith("HYBRIDWB_")}
    full.update(env, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")  # the gate alone: no nbval, no xdist
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore", "."],
        cwd=tmp_path,
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_skipped_browser_test_fails_the_session_where_the_browser_is_required(
    tmp_path: Path,
) -> None:
    done = run_gate(tmp_path, HYBRIDWB_REQUIRE_BROWSER="1")
    assert done.returncode == pytest.ExitCode.TESTS_FAILED, done.stdout
    assert "1 browser test(s) skipped although Chromium is required" in done.stdout


def test_chromium_on_disk_requires_the_tier(tmp_path: Path) -> None:
    fake = tmp_path / "chromium"
    fake.write_text("")
    done = run_gate(tmp_path, HYBRIDWB_CHROMIUM=str(fake))
    assert done.returncode == pytest.ExitCode.TESTS_FAILED, done.stdout


def test_without_chromium_a_skip_is_only_reported(tmp_path: Path) -> None:
    done = run_gate(tmp_path, HYBRIDWB_CHROMIUM=str(tmp_path / "none"))
    assert done.returncode == pytest.ExitCode.OK, done.stdout
    assert "1 passed, 1 skipped" in done.stdout


def test_the_suites_own_session_finish_runs_the_gate(monkeypatch: pytest.MonkeyPatch) -> None:
    """tests/conftest.py has a session-finish hook of its own; the gate's must still run in
    it (a conftest holds one function per hook name: defining another one replaced the
    imported gate, and a skipped browser tier would have passed)."""
    from tests import conftest

    calls: list[int] = []
    monkeypatch.setattr(conftest, "_browser_gate_sessionfinish", lambda s, e: calls.append(e))
    conftest.pytest_sessionfinish(session=None, exitstatus=0)  # type: ignore[arg-type]
    assert calls == [0]
