"""Round 2 attacks on the secrets guarantee: every test here is a leak found on snap1.

Real servers, no mocks. Each test fails while the leak is there.
"""

from __future__ import annotations

import subprocess
import sys
import traceback
from pathlib import Path

import pytest

import hybridwb

HYBRIDWB = str(Path(sys.executable).parent / "hybridwb")
SSL_KEY_CANARY = "sslKeyPassCanary6T3pW"
CONNINFO_CANARY = "conninfoPwCanary2R8kD"


def _everything_shown(wb: object) -> str:
    """The public reprs, vars and descriptions a notebook user sees."""
    parts = [repr(wb), str(wb), repr(vars(wb))]
    settings = wb.settings  # type: ignore[attr-defined]
    parts += [repr(settings), str(settings.describe()), repr(vars(settings))]
    parts += [repr(wb.source), repr(vars(wb.source))]  # type: ignore[attr-defined]
    return "\n".join(parts)


# -- finding 1: ?ssl_key_password=… (pymysql's TLS client-key passphrase) -------------------
SSL_KEY_URL = (
    "mysql+pymysql://hybridwb_ro:hybridwb_ro_pw@127.0.0.1:3306/shop"
    f"?ssl_key_password={SSL_KEY_CANARY}"
)


def test_ssl_key_password_option_is_not_shown_by_repr_or_describe() -> None:
    wb = hybridwb.connect(SSL_KEY_URL)
    try:
        shown = _everything_shown(wb)
    finally:
        wb.close()
    assert SSL_KEY_CANARY not in shown


def test_ssl_key_password_option_from_env_is_not_shown_by_doctor(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HYBRIDWB_SOURCE_URL": SSL_KEY_URL}
    done = subprocess.run(
        [HYBRIDWB, "doctor"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert SSL_KEY_CANARY not in done.stdout + done.stderr
