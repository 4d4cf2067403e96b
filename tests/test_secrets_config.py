"""Canary secrets through every configuration route, attacked: bad files, wrong types,
passwords hidden in URL options, debug logging of the settings sources.

Each finding of the attack on issue 15 is a test here. The oracle is the rendering a
traceback printer with locals produces (every frame of the error and of everything chained
to it, `__cause__` and `__context__`), the logs, and the reprs — searched for the canary.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

import hybridwb
from hybridwb.config import load_settings
from hybridwb.errors import ConfigError, HybridwbError
from hybridwb.workflows import context

CANARY = "cAnaryCfg9Xq2"


def caught(call: Callable[[], Any]) -> HybridwbError:
    try:
        call()
    except HybridwbError as exc:
        return exc
    raise AssertionError("expected a HybridwbError")


def chain(exc: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    todo = [exc]
    while todo:
        err = todo.pop()
        if not any(err is f for f in found):
            found.append(err)
            todo += [e for e in (err.__cause__, err.__context__) if e is not None]
    return found


def leaks(exc: BaseException) -> list[str]:
    """Where the canary shows in what a verbose traceback printer would print: every frame's
    locals of the error and of its whole chain (the test's own frames excluded: `caught`
    and the lambda hold nothing, everything below them is hybridwb's or a library's)."""
    found = []
    for err in chain(exc):
        for frame, _ in traceback.walk_tb(err.__traceback__):
            if frame.f_code.co_name in ("caught", "<lambda>"):
                continue
            for name, value in frame.f_locals.items():
                try:
                    text = repr(value)
                except Exception:  # a repr that fails is printed as such, not the value
                    continue
                if CANARY in text:
                    found.append(f"{frame.f_code.co_name} local {name}")
        if CANARY in str(err) or CANARY in repr(err):
            found.append(f"message of {type(err).__name__}")
    return found


def one_line_and_clean(exc: HybridwbError) -> None:
    assert isinstance(exc, ConfigError) and "\n" not in str(exc)
    assert chain(exc) == [exc], "a parser's or validator's error is chained"
    assert not leaks(exc), leaks(exc)


# -- bad files holding a secret ------------------------------------------------------------
def test_unreadable_pyproject_holding_a_password_leaks_nothing(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        f'[tool.hybridwb]\nsource_url = "mysql+pymysql://u:{CANARY}@h/db\n', encoding="utf-8"
    )
    exc = caught(lambda: load_settings(tmp_path, env={}))
    one_line_and_clean(exc)
    assert "not valid TOML" in str(exc)


def test_a_dotenv_that_is_not_utf8_leaks_nothing(tmp_path: Path) -> None:
    (tmp_path / ".env").write_bytes(f"MYSQL_READ_PASSWORD={CANARY}\n\xff\xfe".encode("latin-1"))
    exc = caught(lambda: load_settings(tmp_path, env={}))
    one_line_and_clean(exc)
    assert "not UTF-8" in str(exc)


@pytest.mark.parametrize("route", ["env", "dotenv", "pyproject"])
def test_a_secret_in_the_wrong_setting_is_never_repeated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, route: str
) -> None:
    """A password pasted into MYSQL_PORT: the error names the setting and where it came from,
    not the value; nothing chained holds it, and no frame holds the environment."""
    if route == "env":
        # the real case: os.environ itself, which a frame's locals would print whole
        monkeypatch.setenv("MYSQL_PORT", CANARY)
        monkeypatch.setenv("MYSQL_READ_PASSWORD", CANARY)
        monkeypatch.setenv("MYSQL_HOST", "db.example")
        call = lambda: hybridwb.connect(cwd=tmp_path)  # noqa: E731
    elif route == "dotenv":
        (tmp_path / ".env").write_text(f"MYSQL_HOST=h\nMYSQL_PORT={CANARY}\n", encoding="utf-8")
        call = lambda: hybridwb.connect(cwd=tmp_path)  # noqa: E731
    else:
        (tmp_path / "pyproject.toml").write_text(
            f'[tool.hybridwb]\nmysql_host = "h"\nmysql_port = "{CANARY}"\n', encoding="utf-8"
        )
        call = lambda: hybridwb.connect(cwd=tmp_path)  # noqa: E731
    exc = caught(call)
    one_line_and_clean(exc)
    assert "mysql_port" in str(exc)


def test_a_pyproject_password_of_the_wrong_type_is_taken_as_text_and_hidden(
    tmp_path: Path,
) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.hybridwb]\nmysql_host = 'h'\nmysql_password = 12345678\n", encoding="utf-8"
    )
    settings = load_settings(tmp_path, env={})
    assert settings.mysql_password.get_secret_value() == "12345678"
    assert "12345678" not in repr(settings) + str(settings.describe())


def test_a_malformed_run_context_leaks_none_of_its_secrets() -> None:
    payload = json.dumps({"mysql_password": CANARY})[:-2]  # cut short: not JSON
    exc = caught(lambda: context.settings_from_payload(payload))
    one_line_and_clean(exc)


# -- the settings sources' own debug log ---------------------------------------------------
@pytest.mark.parametrize("route", ["argument", "env", "dotenv", "pyproject"])
def test_pydantic_settings_debug_log_shows_no_secret(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    route: str,
) -> None:
    """PYDANTIC_SETTINGS_DEBUG logs what every source returned; secrets leave the sources
    wrapped, so the log shows `**********`."""
    from pydantic_settings import BaseSettings

    if not hasattr(BaseSettings, "_settings_log_debug"):
        pytest.skip("this pydantic-settings has no debug log (2.6 has none; 2.16 has)")
    monkeypatch.setenv("PYDANTIC_SETTINGS_DEBUG", "1")
    url = f"mysql+pymysql://u:{CANARY}@h/db"
    kwargs: dict[str, Any] = {}
    if route == "argument":
        kwargs = {"source_url": url, "supabase_service_role_key": CANARY}
    elif route == "env":
        monkeypatch.setenv("HYBRIDWB_SOURCE_URL", url)
        monkeypatch.setenv("SUPABASE_SERVICE_ROLE_KEY", CANARY)
    elif route == "dotenv":
        (tmp_path / ".env").write_text(
            f"HYBRIDWB_SOURCE_URL={url}\nSUPABASE_SERVICE_ROLE_KEY={CANARY}\n", encoding="utf-8"
        )
    else:
        (tmp_path / "pyproject.toml").write_text(
            f"[tool.hybridwb]\nsource_url = '{url}'\nsupabase_service_role_key = '{CANARY}'\n",
            encoding="utf-8",
        )
    with caplog.at_level(logging.DEBUG):
        settings = load_settings(tmp_path, **kwargs)
    assert settings.secret_values().scrub(url) == "mysql+pymysql://u:***@h/db"
    assert "Resolving settings" in caplog.text  # the debug log really ran
    assert CANARY not in caplog.text


# -- passwords where a parser does not look for them ---------------------------------------
@pytest.mark.parametrize("option", ["password", "passwd", "PASSWORD"])
@pytest.mark.parametrize("setting", ["HYBRIDWB_SOURCE_URL", "HYBRIDWB_STORE_URL"])
def test_a_password_given_as_a_url_option_is_masked_and_scrubbed(
    tmp_path: Path, option: str, setting: str
) -> None:
    scheme = "mysql+pymysql" if "SOURCE" in setting else "postgresql+psycopg"
    raw = f"{scheme}://u@127.0.0.1:1/db?{option}={quote(CANARY)}&connect_timeout=3"
    if "STORE" in setting:
        raw = raw.replace("&connect_timeout=3", "")
    wb = hybridwb.connect(cwd=tmp_path, env={setting: raw})
    url = (
        wb.settings.source_sqlalchemy_url()
        if "SOURCE" in setting
        else wb.settings.store_sqlalchemy_url()
    )
    assert url.password == CANARY and option.lower() not in {k.lower() for k in url.query}
    shown = repr(wb) + repr(wb.source) + str(wb.settings.describe()) + wb.store_description
    assert CANARY not in shown
    assert CANARY in wb.settings.secret_values()  # scrubbed from whatever a server echoes


def test_two_different_passwords_in_one_url_are_refused_without_either(tmp_path: Path) -> None:
    raw = f"mysql+pymysql://u:other{CANARY}@h/db?password={CANARY}"
    settings = load_settings(tmp_path, env={"HYBRIDWB_SOURCE_URL": raw})
    del raw
    exc = caught(settings.source_sqlalchemy_url)
    one_line_and_clean(exc)
    assert "more than one password" in str(exc)


def test_an_ssl_key_passphrase_in_the_url_is_refused_without_repeating_it(tmp_path: Path) -> None:
    raw = f"postgresql+psycopg://u@h/db?sslpassword={CANARY}"
    settings = load_settings(tmp_path, env={"HYBRIDWB_STORE_URL": raw})
    del raw
    exc = caught(settings.store_sqlalchemy_url)
    one_line_and_clean(exc)
    assert "sslpassword" in str(exc)


def test_a_key_in_the_supabase_url_query_is_dropped(tmp_path: Path) -> None:
    env = {
        "SUPABASE_URL": f"https://svc:{CANARY}@x.supabase.co/?apikey={CANARY}#{CANARY}",
        "SUPABASE_ANON_KEY": "anon-key-1",
    }
    wb = hybridwb.connect(cwd=tmp_path, env=env)
    assert wb.settings.supabase_url == "https://svc@x.supabase.co/"
    assert CANARY not in repr(wb) + wb.store_description + str(wb.settings.describe())


@pytest.mark.parametrize(
    "host", [f"reader:{CANARY}@db.example", f"db.example/{CANARY}", f"db.example?{CANARY}"]
)
def test_a_host_carrying_a_password_is_refused_without_repeating_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    """`Cannot reach MySQL at <host>` would print whatever MYSQL_HOST holds."""
    monkeypatch.setenv("MYSQL_HOST", host)
    exc = caught(lambda: hybridwb.connect(cwd=tmp_path))
    one_line_and_clean(exc)
    assert "mysql_host" in str(exc) and "env:MYSQL_HOST" in str(exc)


def test_a_half_built_workbench_repr_never_raises(tmp_path: Path) -> None:
    """A traceback printer with locals calls repr on every local, a half-built workbench too."""
    wb = hybridwb.Workbench.__new__(hybridwb.Workbench)
    assert "Workbench" in repr(wb)


# -- customer values in statements the guard refuses ----------------------------------------
CUSTOMER = "kim.canary.4711@example.com"


@pytest.mark.parametrize(
    "sql",
    [
        f"SELECT customer_id FROM customers WHERE email = '{CUSTOMER}' AND AND",
        f"SELECT customer_id FROM customers WHERE email = '{CUSTOMER}",
        f"SELECT customer_id FROM customers WHERE email = `{CUSTOMER}",
    ],
    ids=["syntax", "unclosed-quote", "unclosed-backtick"],
)
def test_a_refused_saved_query_repeats_no_customer_value(
    sample_db: Path, tmp_path: Path, sql: str
) -> None:
    """The parser's own error quotes the statement; a refusal chains none of it and its
    message repeats no literal (saved targets are checked outside the source's redaction)."""
    (tmp_path / ".hybridwb").mkdir()
    (tmp_path / ".hybridwb" / "sample.db").write_bytes(sample_db.read_bytes())
    with hybridwb.connect(cwd=tmp_path, env={}) as wb:
        wb.mappings.save("customers", wb.mappings.suggest("customers"))
        exc = caught(lambda: wb.targets.preview({"sql": sql}))
    assert chain(exc) == [exc], "the parser's error is chained"
    assert CUSTOMER not in str(exc) and CUSTOMER not in repr(exc.fields)
