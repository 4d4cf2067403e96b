"""Configuration precedence and secret masking."""

from __future__ import annotations

from pathlib import Path

import pytest

import hybridwb
from hybridwb.config import load_settings, mask_url
from hybridwb.errors import ConfigError


def write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def test_nothing_configured_means_embedded_sample_and_sqlite_store(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, env={})
    assert settings.source_is_sample
    assert settings.source_sqlalchemy_url().get_backend_name() == "sqlite"
    assert str(settings.store_sqlalchemy_url().database).startswith(str(tmp_path / ".hybridwb"))


def test_precedence_argument_env_dotenv_pyproject(tmp_path: Path) -> None:
    write(
        tmp_path / "pyproject.toml",
        '[tool.hybridwb]\nmysql_host = "from-pyproject"\nrow_cap = 10\nmysql_database = "p"\n',
    )
    write(tmp_path / ".env", "MYSQL_HOST=from-dotenv\nMYSQL_DATABASE=d\n")
    env = {"MYSQL_HOST": "from-env"}
    assert load_settings(tmp_path, env=env).mysql_host == "from-env"
    assert load_settings(tmp_path, env={}).mysql_host == "from-dotenv"
    assert load_settings(tmp_path, env={}).mysql_database == "d"
    assert load_settings(tmp_path, env={}).row_cap == 10
    assert load_settings(tmp_path, env=env, mysql_host="from-arg").mysql_host == "from-arg"
    (tmp_path / ".env").unlink()
    assert load_settings(tmp_path, env={}).mysql_host == "from-pyproject"
    assert load_settings(tmp_path, env={}).origins["mysql_host"] == "pyproject"


def test_mysql_variables_build_the_source_url(tmp_path: Path) -> None:
    env = {
        "MYSQL_HOST": "db.example",
        "MYSQL_PORT": "3307",
        "MYSQL_READ_USER": "reader",
        "MYSQL_READ_PASSWORD": "s3cret-pass",
        "MYSQL_DATABASE": "shop",
    }
    settings = load_settings(tmp_path, env=env)
    url = settings.source_sqlalchemy_url()
    assert (url.host, url.port, url.username, url.database) == (
        "db.example",
        3307,
        "reader",
        "shop",
    )
    assert "s3cret-pass" not in repr(settings)
    assert "s3cret-pass" not in str(settings.describe())
    assert "s3cret-pass" in settings.secret_values()


def test_explicit_source_url_wins_over_mysql_variables(tmp_path: Path) -> None:
    env = {"MYSQL_HOST": "a", "HYBRIDWB_SOURCE_URL": "mysql+pymysql://u:pw@b/shop"}
    assert load_settings(tmp_path, env=env).source_sqlalchemy_url().host == "b"


def test_next_public_spellings_are_accepted(tmp_path: Path) -> None:
    env = {
        "NEXT_PUBLIC_SUPABASE_URL": "https://x.supabase.co",
        "NEXT_PUBLIC_SUPABASE_ANON_KEY": "anon-key-123",
    }
    settings = load_settings(tmp_path, env=env)
    assert settings.supabase_url == "https://x.supabase.co"
    assert settings.store_sqlalchemy_url() is None  # REST only
    assert "anon-key-123" not in repr(settings)


def test_supabase_db_url_selects_psycopg(tmp_path: Path) -> None:
    env = {"SUPABASE_DB_URL": "postgresql://postgres:dbpass@db.x.supabase.co:6543/postgres"}
    url = load_settings(tmp_path, env=env).store_sqlalchemy_url()
    assert url.drivername == "postgresql+psycopg"


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"MYSQL_PORT": "abc"}, "mysql_port"),
        ({"MYSQL_PORT": "Hunter2-S3cret!"}, "mysql_port"),
        ({"HYBRIDWB_ROW_CAP": "-1"}, "row_cap"),
        ({"HYBRIDWB_ROW_CAP": "-0x5ecret"}, "row_cap"),
        ({"HYBRIDWB_SOURCE_URL": "not a url"}, "HYBRIDWB_SOURCE_URL"),
        ({"HYBRIDWB_SOURCE_URL": "Hunter2-S3cret! not a url"}, "HYBRIDWB_SOURCE_URL"),
        (
            {"HYBRIDWB_SOURCE_URL": "mysql+pymysql://u:Hunter2-S3cret!@h:x/db"},
            "HYBRIDWB_SOURCE_URL",
        ),
    ],
    ids=["port", "port-secret", "row-cap", "row-cap-secret", "url", "url-secret", "url-password"],
)
def test_bad_settings_name_the_setting(tmp_path: Path, env: dict, words: str) -> None:
    """The message names the setting and leaves the value out: a password pasted into the
    wrong setting must not be printed back."""
    with pytest.raises(ConfigError, match=words) as caught:
        load_settings(tmp_path, env=env).source_sqlalchemy_url()
    (value,) = env.values()
    message = str(caught.value)
    assert value not in message
    assert "S3cret" not in message and "5ecret" not in message


def test_unknown_pyproject_key_is_reported(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", "[tool.hybridwb]\nmysql_hots = 'x'\n")
    with pytest.raises(ConfigError, match="mysql_hots"):
        load_settings(tmp_path, env={})


def test_mask_url_hides_the_password() -> None:
    assert mask_url("mysql+pymysql://u:topsecret@h/db") == "mysql+pymysql://u:***@h/db"


def test_workbench_repr_hides_secrets(tmp_path: Path, sample_db: Path) -> None:
    wb = hybridwb.connect(
        source="mysql+pymysql://u:topsecret@127.0.0.1:3399/db",
        store="postgresql+psycopg://p:alsosecret@127.0.0.1/x",
    )
    assert "topsecret" not in repr(wb) and "alsosecret" not in repr(wb)
    assert "topsecret" not in wb.status_line()


def test_every_value_says_where_it_came_from(tmp_path: Path) -> None:
    """The origins `doctor` shows, one per layer, the highest layer that gave the value."""
    write(tmp_path / "pyproject.toml", '[tool.hybridwb]\nrow_cap = 10\nmysql_host = "p"\n')
    write(tmp_path / ".env", "MYSQL_DATABASE=d\nMYSQL_HOST=dotenv\n")
    env = {"NEXT_PUBLIC_SUPABASE_URL": "https://x.supabase.co", "MYSQL_PORT": "3307"}
    settings = load_settings(tmp_path, env=env, statement_timeout=5)
    assert settings.origins == {
        "statement_timeout": "argument",
        "supabase_url": "env:NEXT_PUBLIC_SUPABASE_URL",
        "mysql_port": "env:MYSQL_PORT",
        "mysql_database": ".env:MYSQL_DATABASE",
        "mysql_host": ".env:MYSQL_HOST",
        "row_cap": "pyproject",
    }
    described = settings.describe()
    assert described["row_cap"] == "10 (pyproject)"
    assert described["connect_timeout"] == "5 (default)"
    assert (settings.mysql_host, settings.mysql_port, settings.statement_timeout) == (
        "dotenv",
        3307,
        5.0,
    )


def test_settings_built_directly_read_no_environment_or_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run's kernel rebuilds its parent's settings with Settings(**values): nothing from
    the kernel's own environment or working directory may slip in."""
    from hybridwb.config import Settings

    monkeypatch.setenv("MYSQL_HOST", "from-env")
    monkeypatch.setenv("HYBRIDWB_ROW_CAP", "7")
    write(tmp_path / ".env", "MYSQL_HOST=from-dotenv\n")
    write(tmp_path / "pyproject.toml", '[tool.hybridwb]\nmysql_host = "p"\n')
    settings = Settings(project_root=tmp_path)
    assert settings.mysql_host is None and settings.row_cap == 100_000
