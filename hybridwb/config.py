"""Configuration, read once into a model.

Precedence, highest first (documented in the README, pinned by tests):

1. arguments to `hybridwb.connect(...)`
2. the process environment (`MYSQL_*`, `SUPABASE_*`, `NEXT_PUBLIC_SUPABASE_*`, `HYBRIDWB_*`)
3. a `.env` file in the working directory
4. `[tool.hybridwb]` in the working directory's `pyproject.toml`
5. defaults: the embedded sample source and an embedded SQLite store under `.hybridwb/`

Secrets are `SecretStr`; `Settings.describe()` and every URL this module renders mask them.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from pydantic import BaseModel, Field, SecretStr, ValidationError
from sqlalchemy.engine import URL, make_url

from hybridwb.errors import ConfigError

#: environment name -> settings field (several spellings of the original platform)
ENV_NAMES: dict[str, str] = {
    "HYBRIDWB_SOURCE_URL": "source_url",
    "HYBRIDWB_STORE_URL": "store_url",
    "HYBRIDWB_HOME": "home",
    "HYBRIDWB_MAPPINGS": "mappings_path",
    "HYBRIDWB_REPORTS": "reports_dir",
    "HYBRIDWB_WORKFLOWS": "workflows_dir",
    "HYBRIDWB_ROW_CAP": "row_cap",
    "HYBRIDWB_STATEMENT_TIMEOUT": "statement_timeout",
    "MYSQL_HOST": "mysql_host",
    "MYSQL_PORT": "mysql_port",
    "MYSQL_READ_USER": "mysql_user",
    "MYSQL_READ_PASSWORD": "mysql_password",
    "MYSQL_DATABASE": "mysql_database",
    "MYSQL_SSL_CA": "mysql_ssl_ca",
    "MYSQL_SSL_MODE": "mysql_ssl_mode",
    "SUPABASE_URL": "supabase_url",
    "NEXT_PUBLIC_SUPABASE_URL": "supabase_url",
    "SUPABASE_ANON_KEY": "supabase_anon_key",
    "NEXT_PUBLIC_SUPABASE_ANON_KEY": "supabase_anon_key",
    "SUPABASE_SERVICE_ROLE_KEY": "supabase_service_role_key",
    "SUPABASE_DB_URL": "supabase_db_url",
}
SECRET_FIELDS = (
    "source_url",
    "store_url",
    "mysql_password",
    "supabase_anon_key",
    "supabase_service_role_key",
    "supabase_db_url",
)


class Settings(BaseModel):
    """Everything hybridwb needs to know to connect; secrets never print."""

    model_config = {"extra": "forbid", "frozen": True}

    source_url: SecretStr | None = None
    store_url: SecretStr | None = None
    home: Path = Path(".hybridwb")
    mappings_path: Path = Path("mappings/table-mappings.json")
    reports_dir: Path = Path("reports")
    workflows_dir: Path = Path("notebooks/workflows")
    mysql_host: str | None = None
    mysql_port: int = 3306
    mysql_user: str | None = None
    mysql_password: SecretStr | None = None
    mysql_database: str | None = None
    mysql_ssl_ca: str | None = None
    mysql_ssl_mode: str | None = None
    supabase_url: str | None = None
    supabase_anon_key: SecretStr | None = None
    supabase_service_role_key: SecretStr | None = None
    supabase_db_url: SecretStr | None = None
    row_cap: int = Field(100_000, gt=0)
    #: at least binds.MIN_TIMEOUT_SECONDS: a smaller limit would round to 0 = unlimited
    statement_timeout: float = Field(30.0, ge=0.01)
    connect_timeout: int = Field(5, gt=0)
    read_timeout: int = Field(600, gt=0)
    sample_customers: int = Field(10_000, gt=0)
    #: stored functions a DBA vetted; every other non-built-in function call is refused
    allowed_functions: list[str] = Field(default_factory=list)
    #: source connection budget per process: pool_size kept open + max_overflow on demand
    source_pool_size: int = Field(5, gt=0, le=100)
    source_max_overflow: int = Field(10, ge=1, le=100)
    #: where each value came from ("env", ".env", "pyproject", "argument"); for `doctor`
    origins: dict[str, str] = Field(default_factory=dict)

    # -- derived ---------------------------------------------------------------------------
    @property
    def sample_path(self) -> Path:
        return self.home / "sample.db"

    @property
    def source_is_sample(self) -> bool:
        return self.source_url is None and self.mysql_host is None

    def source_sqlalchemy_url(self) -> URL:
        """The source URL; the embedded sample when nothing is configured."""
        if self.source_url is not None:
            return _parse_url(self.source_url.get_secret_value(), "HYBRIDWB_SOURCE_URL")
        if self.mysql_host is not None:
            return URL.create(
                "mysql+pymysql",
                username=self.mysql_user,
                password=self.mysql_password.get_secret_value() if self.mysql_password else None,
                host=self.mysql_host,
                port=self.mysql_port,
                database=self.mysql_database,
                query={"charset": "utf8mb4"},
            )
        return URL.create("sqlite", database=str(self.sample_path))

    def store_sqlalchemy_url(self) -> URL | None:
        """The store URL for a SQL backend, or None when only the REST API is configured."""
        if self.store_url is not None:
            return _parse_url(self.store_url.get_secret_value(), "HYBRIDWB_STORE_URL")
        if self.supabase_db_url is not None:
            url = _parse_url(self.supabase_db_url.get_secret_value(), "SUPABASE_DB_URL")
            if url.drivername in ("postgres", "postgresql"):
                url = url.set(drivername="postgresql+psycopg")
            return url
        if self.supabase_url is not None:
            return None
        return URL.create("sqlite", database=str(self.home / "platform.db"))

    def describe(self) -> dict[str, str]:
        """Every configured value with secrets masked, and where it came from."""
        out: dict[str, str] = {}
        for name in type(self).model_fields:
            if name == "origins":
                continue
            value = getattr(self, name)
            if value is None:
                continue
            if name in ("source_url", "store_url", "supabase_db_url"):
                shown = mask_url(value.get_secret_value())
            elif isinstance(value, SecretStr):
                shown = "***"
            else:
                shown = str(value)
            out[name] = f"{shown} ({self.origins.get(name, 'default')})"
        return out

    def secret_values(self) -> list[str]:
        """The raw secrets, so output can be scrubbed of them."""
        values: list[str] = []
        for name in SECRET_FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            raw = value.get_secret_value()
            if name.endswith("url"):
                try:
                    password = make_url(raw).password
                except Exception:
                    password = None
                if password:
                    values.append(str(password))
            else:
                values.append(raw)
        return [v for v in values if len(v) >= 3]


def mask_url(url: str | URL) -> str:
    """Render a URL with its password replaced by ***."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
        return parsed.render_as_string(hide_password=True)
    except Exception:
        return "<unparseable URL>"


def scrub(text: str, secrets: list[str]) -> str:
    """Remove every secret from a text meant for a person."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _parse_url(raw: str, name: str) -> URL:
    try:
        return make_url(raw)
    except Exception:
        raise ConfigError(
            f"{name} is not a database URL (expected e.g. mysql+pymysql://user@host/db)."
        ) from None


def _from_env(env: Mapping[str, str | None], origin: str) -> tuple[dict[str, Any], dict[str, str]]:
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for env_name, field in ENV_NAMES.items():
        value = env.get(env_name)
        if value not in (None, "") and field not in values:
            values[field] = value
            origins[field] = f"{origin}:{env_name}"
    return values, origins


def _from_pyproject(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{path} is not valid TOML ({exc}); fix it or remove [tool.hybridwb]."
        ) from exc
    section = data.get("tool", {}).get("hybridwb", {})
    if not isinstance(section, dict):
        raise ConfigError(f"[tool.hybridwb] in {path} must be a table of settings.")
    return dict(section)


def load_settings(
    cwd: Path | None = None, env: Mapping[str, str] | None = None, **overrides: Any
) -> Settings:
    """Read the configuration once, in the documented precedence."""
    cwd = Path.cwd() if cwd is None else cwd
    env = os.environ if env is None else env
    layers: list[tuple[dict[str, Any], dict[str, str]]] = []
    layers.append(
        (
            {k: v for k, v in overrides.items() if v is not None},
            {k: "argument" for k, v in overrides.items() if v is not None},
        )
    )
    layers.append(_from_env(env, "env"))
    dotenv = cwd / ".env"
    if dotenv.is_file():
        layers.append(_from_env(dotenv_values(dotenv), ".env"))
    project = _from_pyproject(cwd / "pyproject.toml")
    layers.append((project, dict.fromkeys(project, "pyproject")))

    merged: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for values, where in reversed(layers):
        merged.update(values)
        origins.update(where)
    for key, default in (
        ("home", ".hybridwb"),
        ("mappings_path", "mappings/table-mappings.json"),
        ("reports_dir", "reports"),
    ):
        path = Path(merged.get(key, default))
        merged[key] = path if path.is_absolute() else cwd / path
    try:
        return Settings(**merged, origins=origins)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        where = origins.get(field, "default")
        if err["type"] == "extra_forbidden":
            raise ConfigError(f"Unknown setting {field!r} (from {where}); remove it.") from None
        raise ConfigError(f"Setting {field} (from {where}) is invalid: {err['msg']}.") from None
