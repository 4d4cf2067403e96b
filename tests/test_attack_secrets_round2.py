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
    """Refused (nothing could mask it), and the refusal does not repeat it."""
    from hybridwb.errors import ConfigError

    with pytest.raises(ConfigError) as refused:
        hybridwb.connect(SSL_KEY_URL)
    assert SSL_KEY_CANARY not in str(refused.value)
    # nothing chained (frames of the caller's own call hold what the caller passed)
    assert refused.value.__cause__ is None and refused.value.__context__ is None


def test_ssl_key_password_option_from_env_is_not_shown_by_doctor(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HYBRIDWB_SOURCE_URL": SSL_KEY_URL}
    done = subprocess.run(
        [HYBRIDWB, "doctor"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert SSL_KEY_CANARY not in done.stdout + done.stderr


# -- finding 2: %%mysql output masks pii by column name only; an alias shows the values ----
def test_mysql_magic_output_masks_pii_columns_under_an_alias(
    sample_db: Path, tmp_path: Path
) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    from tests.conftest import install_sample_mappings

    install_sample_mappings(tmp_path)
    home = tmp_path / ".hybridwb"
    home.mkdir()
    (home / "sample.db").write_bytes(sample_db.read_bytes())
    shell = InteractiveShell()
    try:
        shell.run_cell("%load_ext hybridwb")
        plain = shell.run_cell("%%mysql\nSELECT email, phone FROM customers LIMIT 5").result
        aliased = shell.run_cell(
            "%%mysql\nSELECT email AS contact, phone AS tel FROM customers LIMIT 5"
        ).result
        customers: set[str] = set()
        import hybridwb

        wb = hybridwb.connect(cwd=tmp_path)
        try:
            raw = wb.sql("SELECT email, phone FROM customers LIMIT 5")
        finally:
            wb.close()
        customers |= {str(v) for col in ("email", "phone") for v in raw[col] if v}
        assert customers
        shown_plain = "\n".join(map(str, shell.display_formatter.format(plain)[0].values()))
        shown_alias = "\n".join(map(str, shell.display_formatter.format(aliased)[0].values()))
        # the plain column names are masked (the defence works there) ...
        assert not [v for v in customers if v in shown_plain]
        # ... but the same values under another name are shown as they are
        assert not [v for v in customers if v in shown_alias], "aliased pii shown in %%mysql output"
    finally:
        shell.run_cell("%unload_ext hybridwb")
        InteractiveShell.clear_instance()


# -- finding 3: a template error echoes the customer value it failed on ---------------------
def _sample_project(sample_db: Path, tmp_path: Path) -> None:
    from tests.conftest import install_sample_mappings

    install_sample_mappings(tmp_path)
    home = tmp_path / ".hybridwb"
    home.mkdir(exist_ok=True)
    (home / "sample.db").write_bytes(sample_db.read_bytes())


@pytest.mark.parametrize("template", ["{{ {}[email] }}", "{{ {}[phone] }}", "{{ name[email] }}"])
def test_template_render_error_names_no_customer_value(
    sample_db: Path, tmp_path: Path, template: str
) -> None:
    _sample_project(sample_db, tmp_path)
    wb = hybridwb.connect(cwd=tmp_path)
    try:
        row = (
            wb.sql("SELECT * FROM customers WHERE email IS NOT NULL AND phone IS NOT NULL LIMIT 1")
            .iloc[0]
            .to_dict()
        )
        customer = {str(row["email"]), str(row["phone"])}
        with pytest.raises(hybridwb.HybridwbError) as info:
            wb.templates.render(template, row, table="customers")
    finally:
        wb.close()
    shown = "".join(
        traceback.TracebackException.from_exception(info.value, capture_locals=False).format()
    )
    assert not [v for v in customer if v in shown], shown.splitlines()[-1]


def test_workflow_run_with_a_failing_template_leaks_no_customer_value(
    sample_db: Path, tmp_path: Path
) -> None:
    import os
    import sqlite3

    _sample_project(sample_db, tmp_path)
    wb = hybridwb.connect(cwd=tmp_path)
    try:
        raw = wb.sql("SELECT email, phone FROM customers")
        customers = {str(v) for col in ("email", "phone") for v in raw[col] if v}
        wb.templates.create("leaky", "#{고객명}님 {{ {}[email] }}", message_type="SMS")
        wb.workflows.create(
            "leakwf",
            target_config={
                "table": "customers",
                "where": {"field": "grade", "op": "in", "value": ["VIP"]},
            },
            message_config={"template": "leaky", "mode": "strict"},
        )
    finally:
        wb.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HYBRIDWB_", "MYSQL_"))}
    done = subprocess.run(
        [HYBRIDWB, "run", "leakwf", "--limit", "5"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    leaks: dict[str, list[str]] = {}
    hits = [v for v in customers if v in done.stdout + done.stderr]
    if hits:
        leaks["CLI output"] = hits
    for path in (tmp_path / "reports").rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            hits = [v for v in customers if v in text]
            if hits:
                leaks[f"report file {path.suffix}"] = hits
    conn = sqlite3.connect(tmp_path / ".hybridwb" / "platform.db")
    try:
        errors = [str(e) for (e,) in conn.execute("SELECT error FROM workflow_runs")]
    finally:
        conn.close()
    hits = [v for v in customers if any(v in e for e in errors)]
    if hits:
        leaks["store workflow_runs.error"] = hits
    assert not leaks, leaks


# -- finding 5: ?password=… holding an unencoded '@' ---------------------------------------
AT_CANARY = "atOptCanary4M9vB"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"source": f"mysql+pymysql://hybridwb_ro@127.0.0.1:3306/mysql?password=pw@{AT_CANARY}"},
        {"store": f"postgresql+psycopg://postgres@127.0.0.1:5432/postgres?password=pw@{AT_CANARY}"},
    ],
    ids=["source-mysql", "store-postgres"],
)
def test_password_option_with_an_at_sign_is_not_shown(kwargs: dict[str, str]) -> None:
    wb = hybridwb.connect(**kwargs)
    try:
        shown = _everything_shown(wb) + repr(wb.store)
    finally:
        wb.close()
    assert AT_CANARY not in shown


# -- finding 6: a password with characters outside latin-1 ---------------------------------
UNI_CANARY = "uniPwCanary8Z5qH"
UNI_URL = f"mysql+pymysql://hybridwb_ro:{UNI_CANARY}비밀@127.0.0.1:3306/mysql"
UNI_ENV = {
    "MYSQL_HOST": "127.0.0.1",
    "MYSQL_READ_USER": "hybridwb_ro",
    "MYSQL_READ_PASSWORD": f"{UNI_CANARY}비밀",
    "MYSQL_DATABASE": "mysql",
}


def _traceback_with_locals(action) -> str:  # type: ignore[no-untyped-def]
    """Run `action` (reads only module globals, so no frame of this file holds a canary)
    and render what it raised with every frame's locals, the whole chain."""
    try:
        action()
    except BaseException as exc:
        return "".join(
            traceback.TracebackException.from_exception(exc, capture_locals=True).format()
        )
    return ""


@pytest.mark.parametrize(
    "route",
    ["url-argument", "env-fields"],
)
def test_non_latin1_password_error_carries_no_driver_frames(route: str) -> None:
    if route == "url-argument":
        shown = _traceback_with_locals(lambda: hybridwb.connect(UNI_URL).sql("SELECT 1"))
    else:
        shown = _traceback_with_locals(lambda: hybridwb.connect(env=UNI_ENV).sql("SELECT 1"))
    assert shown, "the login with a wrong password should fail"
    assert UNI_CANARY not in shown, [
        ln.strip()[:90] for ln in shown.splitlines() if UNI_CANARY in ln
    ]


def test_non_latin1_password_in_mysql_magic_with_verbose_tracebacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    for name, value in UNI_ENV.items():
        monkeypatch.setenv(name, value)
    shell = InteractiveShell()
    try:
        shell.run_cell("%load_ext hybridwb")
        shell.run_cell("%xmode Verbose")
        shell.run_cell("%%mysql\nSELECT 1")
    finally:
        shell.run_cell("%unload_ext hybridwb")
        InteractiveShell.clear_instance()
    captured = capsys.readouterr()
    shown = captured.out + captured.err
    assert "Error" in shown  # the login cannot succeed
    assert UNI_CANARY not in shown


# -- finding 7: store errors echo the stored recipient (phone) they failed on ---------------
def test_store_sql_error_does_not_echo_a_stored_recipient(sample_db: Path, tmp_path: Path) -> None:
    import os
    import uuid

    import psycopg

    name = f"atk_r2_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True
    ) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    store = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        _sample_project(sample_db, tmp_path)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HYBRIDWB_", "MYSQL_"))}
        env["HYBRIDWB_STORE_URL"] = store
        subprocess.run(
            [HYBRIDWB, "init"], cwd=tmp_path, env=env, check=True, capture_output=True, timeout=60
        )
        wb = hybridwb.connect(store=store, cwd=tmp_path)
        try:
            wb.templates.create("ok", "#{고객명}님 안녕", message_type="SMS")
            wb.workflows.create(
                "okwf",
                target_config={
                    "table": "customers",
                    "where": {"field": "grade", "op": "in", "value": ["VIP"]},
                },
                message_config={"template": "ok", "mode": "strict"},
            )
        finally:
            wb.close()
        subprocess.run(
            [HYBRIDWB, "run", "okwf", "--limit", "3"],
            cwd=tmp_path,
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        wb = hybridwb.connect(store=store, cwd=tmp_path)
        try:
            recipients = {
                str(r) for r in wb.store.sql("SELECT recipient FROM run_targets")["recipient"] if r
            }
            assert recipients
            with pytest.raises(hybridwb.HybridwbError) as info:
                wb.store.sql("SELECT recipient::uuid FROM run_targets")
        finally:
            wb.close()
        assert not [r for r in recipients if r in str(info.value)], str(info.value)
    finally:
        with psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True
        ) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- finding 8: SearchResult's repr (text/plain output) shows phones and e-mails ------------
def test_search_result_repr_and_text_output_mask_customer_values(
    sample_db: Path, tmp_path: Path
) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    _sample_project(sample_db, tmp_path)
    wb = hybridwb.connect(cwd=tmp_path)
    try:
        row = wb.sql(
            "SELECT email, phone FROM customers WHERE email IS NOT NULL AND phone IS NOT NULL "
            "LIMIT 1 OFFSET 7"
        ).iloc[0]
        customer = {str(row["email"]), str(row["phone"])}
        result = wb.search("customers", str(row["phone"]))
    finally:
        wb.close()
    shell = InteractiveShell()
    try:
        bundle = shell.display_formatter.format(result)[0]  # what a notebook cell saves
    finally:
        InteractiveShell.clear_instance()
    leaks = {
        where: [v for v in customer if v in text]
        for where, text in {
            "repr": repr(result),
            "vars": repr(vars(result)),
            **{f"display {mime}": str(data) for mime, data in bundle.items()},
        }.items()
    }
    assert not {k: v for k, v in leaks.items() if v}, leaks


# -- finding 9: a Supabase URL without a scheme: the key in the REST backend's frame --------
SB_KEY_CANARY = "sbServiceKeyCanary2W6nE"
SB_ENV = {"SUPABASE_URL": "abcd.supabase.co", "SUPABASE_SERVICE_ROLE_KEY": SB_KEY_CANARY}


def test_supabase_url_without_scheme_error_carries_no_key_in_frames() -> None:
    shown = _traceback_with_locals(lambda: hybridwb.connect(env=SB_ENV).store.workflows.list())
    assert "AuthError" in shown or "StoreError" in shown or "ConfigError" in shown
    assert SB_KEY_CANARY not in shown, [
        ln.strip()[:90] for ln in shown.splitlines() if SB_KEY_CANARY in ln
    ]


# -- finding 10: ?ssl_ca= / ?ssl_cert= naming a missing file: raw FileNotFoundError --------
SSL_FILE_CANARY = "sslFilePwCanary3Y7uJ"
SSL_CA_URL = (
    f"mysql+pymysql://hybridwb_ro:{SSL_FILE_CANARY}@127.0.0.1:3306/mysql?ssl_ca=/nonexistent/ca.pem"
)
SSL_CERT_URL = (
    f"mysql+pymysql://hybridwb_ro:{SSL_FILE_CANARY}@127.0.0.1:3306/mysql"
    "?ssl_cert=/nonexistent/c.pem&ssl_key=/nonexistent/k.pem"
)


@pytest.mark.parametrize("which", ["ssl_ca", "ssl_cert"])
def test_missing_tls_file_in_url_options_carries_no_driver_frames(which: str) -> None:
    if which == "ssl_ca":
        shown = _traceback_with_locals(lambda: hybridwb.connect(SSL_CA_URL).sql("SELECT 1"))
    else:
        shown = _traceback_with_locals(lambda: hybridwb.connect(SSL_CERT_URL).sql("SELECT 1"))
    assert shown, "a missing CA/cert file cannot connect"
    assert SSL_FILE_CANARY not in shown, [
        ln.strip()[:90] for ln in shown.splitlines() if SSL_FILE_CANARY in ln
    ]


# -- finding 11: the REST backend's public `client` attribute holds the key in its vars ------
def test_rest_backend_public_attributes_hold_no_plain_key() -> None:
    wb = hybridwb.connect(
        env={"SUPABASE_URL": "https://abcd.supabase.co", "SUPABASE_SERVICE_ROLE_KEY": SB_KEY_CANARY}
    )
    try:
        backend = wb.store.backend
        shown = repr(vars(backend)) + "".join(
            repr(vars(value))
            for name, value in vars(backend).items()
            if not name.startswith("_") and hasattr(value, "__dict__")
        )
    finally:
        wb.close()
    assert SB_KEY_CANARY not in shown


# -- finding 12: %%mysql {{ x | ident }} echoes the refused value ---------------------------
def test_ident_filter_refusal_does_not_echo_a_customer_value(
    sample_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    _sample_project(sample_db, tmp_path)
    shell = InteractiveShell()
    try:
        shell.run_cell("%load_ext hybridwb")
        wb = hybridwb.connect(cwd=tmp_path)
        try:
            email = str(
                wb.sql("SELECT email FROM customers WHERE email IS NOT NULL LIMIT 1")["email"].iloc[
                    0
                ]
            )
        finally:
            wb.close()
        shell.user_ns["contact"] = email
        capsys.readouterr()
        shell.run_cell("%%mysql\nSELECT {{ contact | ident }} FROM customers LIMIT 1")
    finally:
        shell.run_cell("%unload_ext hybridwb")
        InteractiveShell.clear_instance()
    captured = capsys.readouterr()
    shown = captured.out + captured.err
    assert "ident" in shown  # the refusal was shown
    assert email not in shown, shown.strip().splitlines()[-1]
