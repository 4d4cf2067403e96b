"""Configuration, read once into a model.

Precedence, highest first (documented in the README, pinned by tests):

1. arguments to `hybridwb.connect(...)`
2. the process environment (`MYSQL_*`, `SUPABASE_*`, `NEXT_PUBLIC_SUPABASE_*`, `HYBRIDWB_*`)
3. a `.env` file in the project root
4. `[tool.hybridwb]` in the project root's `pyproject.toml`
5. defaults: the embedded sample source and an embedded SQLite store under `.hybridwb/`

The project root is found the way git finds its repository: from the working directory
upwards, the first folder holding a `pyproject.toml` with `[tool.hybridwb]` or a
`.hybridwb/` folder (or `HYBRIDWB_HOME`). The search stops below the home and temp
folders, so a stray `.hybridwb/` there never captures unrelated work. So a kernel started in `notebooks/guides/`, the
CLI and papermill runs share one mapping file, store and reports folder.

The layers are pydantic-settings sources (`Settings.settings_customise_sources`): the
arguments (`InitSettingsSource`), the environment and `.env` (`NamedEnvSource`: the platform's
own variable names, from a mapping the caller may pass instead of `os.environ`) and
`pyproject.toml` (`PyprojectTomlConfigSettingsSource`, table `[tool.hybridwb]`).
pydantic-settings merges them in that order and validates once; each source also notes the
fields it gave, so `Settings.origins` says where every value came from (`doctor`).
`Settings(**values)` built directly (a run's kernel rebuilding its parent's settings) reads
no environment and no file.

Secrets live only in `SecretStr` holders (`Secrets` for the scrub list); URLs are parsed by
`hybridwb.urls` (userinfo encoded, or refused with how to encode); `Settings.describe()` and
every URL this module renders mask them. A bad setting is a one-line `ConfigError` naming
the setting and where it came from, never its value, raised with nothing chained (a parser's
error or frames would hold the file's text, passwords included).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    PyprojectTomlConfigSettingsSource,
    SettingsConfigDict,
)
from sqlalchemy.engine import URL

from hybridwb.errors import ConfigError
from hybridwb.limits import MAX_SAMPLE_CUSTOMERS as MAX_SAMPLE_CUSTOMERS
from hybridwb.urls import check_driver, parse_db_url, strip_http_password
from hybridwb.urls import mask_url as mask_url
from hybridwb.validation import short

#: environment name -> settings field (several spellings of the original platform)
ENV_NAMES: dict[str, str] = {
    "HYBRIDWB_SOURCE_URL": "source_url",
    "HYBRIDWB_STORE_URL": "store_url",
    "HYBRIDWB_MAPPINGS": "mappings_path",
    "HYBRIDWB_REPORTS": "reports_dir",
    "HYBRIDWB_WORKFLOWS": "workflows_dir",
    "HYBRIDWB_ROW_CAP": "row_cap",
    "HYBRIDWB_STATEMENT_TIMEOUT": "statement_timeout",
    "HYBRIDWB_POOL_SIZE": "source_pool_size",
    "HYBRIDWB_MAX_OVERFLOW": "source_max_overflow",
    "HYBRIDWB_RESULT_CACHE_MB": "result_cache_mb",
    "HYBRIDWB_MAX_STATEMENT_MB": "max_statement_mb",
    "HYBRIDWB_SMS_MAX_BYTES": "sms_max_bytes",
    "HYBRIDWB_LMS_MAX_BYTES": "lms_max_bytes",
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


PROJECT_MARKER = ".hybridwb"
#: the pyproject.toml table that holds settings
TABLE = ("tool", "hybridwb")


class Secrets:
    """The raw secrets, held so output can be scrubbed of them, never shown.

    Iterating yields the values (for `scrub`); repr, str and pickling-by-vars show none.
    """

    __slots__ = ("_values",)

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values: tuple[SecretStr, ...] = tuple(
            SecretStr(str(v)) for v in values if v and len(str(v)) >= 3
        )

    def add(self, value: str | None) -> None:
        if value and len(str(value)) >= 3:
            self._values = (*self._values, SecretStr(str(value)))

    def __iter__(self) -> Iterator[str]:
        return (v.get_secret_value() for v in self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, value: object) -> bool:
        return any(value == v.get_secret_value() for v in self._values)

    def __repr__(self) -> str:
        return f"Secrets({len(self._values)} hidden)"

    def scrub(self, text: str) -> str:
        """`text` with every secret replaced by ***."""
        return scrub(text, self)


@dataclass
class _Loading:
    """What one `load_settings` call hands to the sources, and what they report back."""

    root: Path
    env: Mapping[str, str | None]
    #: field -> origin, one dict per source, in the order pydantic-settings asked them
    #: (highest precedence first)
    given: list[dict[str, str]] = field(default_factory=list)
    #: a problem a source found; raised by load_settings with nothing chained
    problem: str | None = None


_LOADING: ContextVar[_Loading | None] = ContextVar("hybridwb_settings_loading", default=None)


class NamedEnvSource(PydanticBaseSettingsSource):
    """Settings from environment variables by the platform's own names (`ENV_NAMES`:
    `MYSQL_READ_USER` -> mysql_user, `NEXT_PUBLIC_SUPABASE_URL` -> supabase_url ...), read
    from a mapping (the process environment, a caller's `env=`, or a `.env` file)."""

    def __init__(
        self, settings_cls: type[BaseSettings], env: Mapping[str, str | None], origin: str
    ) -> None:
        super().__init__(settings_cls)
        self.env = env
        self.origin = origin

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        for env_name, name in ENV_NAMES.items():
            value = self.env.get(env_name)
            if name == field_name and value not in (None, ""):
                return value, env_name, False
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        where: dict[str, str] = {}
        for env_name, name in ENV_NAMES.items():
            value = self.env.get(env_name)
            if value not in (None, "") and name not in values:  # the first spelling wins
                values[name] = value
                where[name] = f"{self.origin}:{env_name}"
        _note(where)
        return _hidden(values)


class _Arguments(InitSettingsSource):
    """`connect(...)` arguments; None means "not given"."""

    def __call__(self) -> dict[str, Any]:
        values = _hidden({k: v for k, v in super().__call__().items() if v is not None})
        _note(dict.fromkeys(values, "argument"))
        return values


class _Pyproject(PyprojectTomlConfigSettingsSource):
    """`[tool.hybridwb]` in the project root's pyproject.toml."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        problem = None
        try:
            # the table is named by the class's config; a subclass carries it, so plain
            # Settings(...) (no files) is not told about a source it does not use
            table = type(
                "InToolHybridwb",
                (settings_cls,),
                {"model_config": SettingsConfigDict(pyproject_toml_table_header=TABLE)},
            )
            super().__init__(table, toml_file=path)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            problem = f"{path} is not valid TOML; fix it or remove [tool.hybridwb]."
        except (AttributeError, TypeError):  # tool or tool.hybridwb is not a table
            problem = f"[tool.hybridwb] in {path} must be a table of settings."
        if problem is not None:  # reported by load_settings; the file's text stays here
            _report(problem)
            InitSettingsSource.__init__(self, settings_cls, {})
        elif not isinstance(self.toml_data, dict):
            _report(f"[tool.hybridwb] in {path} must be a table of settings.")
            InitSettingsSource.__init__(self, settings_cls, {})

    def __call__(self) -> dict[str, Any]:
        values = _hidden(super().__call__())
        _note(dict.fromkeys(values, "pyproject"))
        return values


class _Fixed(InitSettingsSource):
    """A value a loader derives (the `.hybridwb` folder named by HYBRIDWB_HOME)."""

    def __init__(self, settings_cls: type[BaseSettings], values: dict[str, Any], origin: str):
        super().__init__(settings_cls, values)
        self.origin = origin

    def __call__(self) -> dict[str, Any]:
        values = super().__call__()
        _note(dict.fromkeys(values, self.origin))
        return values


def _hidden(values: dict[str, Any]) -> dict[str, Any]:
    """Secret settings wrapped as they leave a source: pydantic-settings' debug log
    (PYDANTIC_SETTINGS_DEBUG) and a validation error's input show `**********`."""
    return {
        k: SecretStr(str(v)) if k in SECRET_FIELDS and not isinstance(v, SecretStr) else v
        for k, v in values.items()
    }


def _note(where: dict[str, str]) -> None:
    loading = _LOADING.get()
    if loading is not None:
        loading.given.append(where)


def _report(problem: str) -> None:
    loading = _LOADING.get()
    if loading is not None and loading.problem is None:
        loading.problem = problem


#: settings that name a folder or file: relative values are relative to the project root
PATH_FIELDS = ("home", "mappings_path", "reports_dir", "workflows_dir")
#: the number settings: a bool (TOML `true`) is refused, not read as 1
NUMBER_FIELDS = (
    "mysql_port",
    "row_cap",
    "statement_timeout",
    "connect_timeout",
    "read_timeout",
    "sample_customers",
    "source_pool_size",
    "source_max_overflow",
    "result_cache_mb",
    "max_statement_mb",
    "sms_max_bytes",
    "lms_max_bytes",
)


def _refuse_unusable_path(value: Path) -> None:
    """A path no file system takes (round 51: a NUL or a 5,000-character name raised the
    raw ValueError or OSError of the first file operation on it, whichever that was)."""
    try:
        names = [os.fsencode(part) for part in value.parts]
    except UnicodeEncodeError:
        raise ValueError("it holds a character no file name can (a lone surrogate)") from None
    if any(b"\x00" in name for name in names):
        raise ValueError("it holds a NUL character")
    if any(len(name) > 255 for name in names):
        raise ValueError("a name in it is over 255 bytes")


class Settings(BaseSettings):
    """Everything hybridwb needs to know to connect; secrets never print."""

    model_config = SettingsConfigDict(extra="forbid", frozen=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Highest precedence first: arguments > environment > .env > pyproject.toml
        (> the field defaults). Outside `load_settings` only the arguments count."""
        loading = _LOADING.get()
        if loading is None:
            return (init_settings,)
        init = init_settings.init_kwargs  # type: ignore[attr-defined]
        sources: list[PydanticBaseSettingsSource] = [
            _Arguments(settings_cls, {k: v for k, v in init.items() if k != "project_root"}),
            NamedEnvSource(settings_cls, loading.env, "env"),
        ]
        dotenv = loading.root / ".env"
        if dotenv.is_file():
            try:
                sources.append(NamedEnvSource(settings_cls, dotenv_values(dotenv), ".env"))
            except UnicodeDecodeError:
                _report(f"{dotenv} is not UTF-8 text; save it as UTF-8.")
        sources.append(_Pyproject(settings_cls, loading.root / "pyproject.toml"))
        home_env = loading.env.get("HYBRIDWB_HOME")
        if home_env and Path(home_env).name == PROJECT_MARKER:
            # compatibility: HYBRIDWB_HOME once named the .hybridwb data folder itself
            sources.append(_Fixed(settings_cls, {"home": Path(home_env)}, "env:HYBRIDWB_HOME"))
        sources.append(InitSettingsSource(settings_cls, {"project_root": loading.root}))
        return tuple(sources)

    source_url: SecretStr | None = None
    store_url: SecretStr | None = None
    project_root: Path = Path()
    home: Path = Path(".hybridwb")
    mappings_path: Path = Path("mappings/table-mappings.json")
    reports_dir: Path = Path("reports")
    workflows_dir: Path = Path("notebooks/workflows")
    mysql_host: str | None = None
    mysql_port: int = Field(3306, ge=1, le=65_535)
    mysql_user: str | None = None
    mysql_password: SecretStr | None = None
    mysql_database: str | None = None
    mysql_ssl_ca: str | None = None
    mysql_ssl_mode: str | None = None
    supabase_url: str | None = None
    supabase_anon_key: SecretStr | None = None
    supabase_service_role_key: SecretStr | None = None
    supabase_db_url: SecretStr | None = None
    row_cap: int = Field(100_000, gt=0, le=2_000_000_000)  # a driver fetch takes a C int
    #: at least binds.MIN_TIMEOUT_SECONDS: a smaller limit would round to 0 = unlimited
    statement_timeout: float = Field(30.0, ge=0.01, le=86_400)
    connect_timeout: int = Field(5, gt=0, le=3_600)
    read_timeout: int = Field(600, gt=0, le=86_400)
    sample_customers: int = Field(10_000, gt=0, le=MAX_SAMPLE_CUSTOMERS)
    #: stored functions a DBA vetted; every other non-built-in function call is refused
    allowed_functions: list[str] = Field(default_factory=list)
    #: source connection budget per process: pool_size kept open + max_overflow on demand
    source_pool_size: int = Field(5, gt=0, le=100)
    source_max_overflow: int = Field(10, ge=1, le=100)
    #: memory the result cache (previews) may hold per process, in MB; 0 switches it off
    result_cache_mb: float = Field(32.0, ge=0, le=4096)
    #: a source statement's text with its bound values, at most, in MB (the text alone is
    #: held to the guard's 256 kB); keep it under the server's max_allowed_packet
    max_statement_mb: float = Field(1.0, gt=0, le=1024)
    #: the longest message each type may render to, in EUC-KR bytes
    sms_max_bytes: int = Field(90, gt=0, le=100_000)
    lms_max_bytes: int = Field(2000, gt=0, le=100_000)
    #: where each value came from ("env", ".env", "pyproject", "argument"); for `doctor`
    origins: dict[str, str] = Field(default_factory=dict)

    @field_validator("supabase_url")
    @classmethod
    def _no_password_in_supabase_url(cls, value: str | None) -> str | None:
        # the REST API authenticates with the key; a password in the URL (or a key in its
        # query) is never used, so it is dropped rather than kept where a print could show it
        return strip_http_password(value) if value else value

    @field_validator("mysql_host")
    @classmethod
    def _host_name_only(cls, value: str | None) -> str | None:
        # a host is printed in messages ("Cannot reach MySQL at …"): user:password@ in it
        # would be printed too
        if value is not None and (not value.strip() or any(c in value for c in "@/?#\\ ")):
            raise ValueError(
                "it must be a host name or address only (put the user, password and port "
                "in MYSQL_READ_USER, MYSQL_READ_PASSWORD and MYSQL_PORT)"
            )
        return value

    @field_validator(*NUMBER_FIELDS, mode="before")
    @classmethod
    def _not_a_bool(cls, value: Any) -> Any:
        # round 51: `source_pool_size = true` in pyproject.toml was a pool of 1 (pydantic
        # reads a bool as 0 or 1)
        if isinstance(value, bool):
            raise ValueError("it must be a number, not true or false")
        return value

    @field_validator(*PATH_FIELDS)
    @classmethod
    def _under_the_project_root(cls, value: Path, info: ValidationInfo) -> Path:
        _refuse_unusable_path(value)
        root = info.data.get("project_root")
        return value if value.is_absolute() or root is None else root / value

    # -- derived ---------------------------------------------------------------------------
    @property
    def connection_budget(self) -> int:
        """Source connections one process may hold at most (`pool_size + max_overflow`)."""
        return self.source_pool_size + self.source_max_overflow

    @property
    def message_limits(self) -> dict[str, int]:
        """EUC-KR byte limit per message type."""
        return {"SMS": self.sms_max_bytes, "LMS": self.lms_max_bytes, "MMS": self.lms_max_bytes}

    @property
    def sample_path(self) -> Path:
        return self.home / "sample.db"

    @property
    def source_is_sample(self) -> bool:
        return self.source_url is None and self.mysql_host is None

    def source_sqlalchemy_url(self) -> URL:
        """The source URL; the embedded sample when nothing is configured."""
        if self.source_url is not None:
            return _checked(self.source_url, "HYBRIDWB_SOURCE_URL")
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
            return _checked(self.store_url, "HYBRIDWB_STORE_URL")
        if self.supabase_db_url is not None:
            return _checked(self.supabase_db_url, "SUPABASE_DB_URL", postgres=True)
        if self.supabase_url is not None:
            return None
        return URL.create("sqlite", database=str(self.home / "platform.db"))

    def describe(self) -> dict[str, str]:
        """Every configured value with secrets masked, and where it came from."""
        out: dict[str, str] = {}
        secrets = self.secret_values()  # a password pasted into another setting too
        for name in type(self).model_fields:
            if name == "origins":
                continue
            value = getattr(self, name)
            if value is None:
                continue
            if name in ("source_url", "store_url", "supabase_db_url"):
                shown = mask_url(value.get_secret_value(), name)
            elif isinstance(value, SecretStr):
                shown = "***"
            else:
                shown = str(value)
            out[name] = f"{secrets.scrub(shown)} ({self.origins.get(name, 'default')})"
        return out

    def secret_values(self) -> Secrets:
        """The raw secrets in a holder that never shows them, so output can be scrubbed."""
        held = Secrets()
        for name in SECRET_FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            if name.endswith("url"):
                held.add(_url_password(value))
                # the raw text too: an unencoded password may have been split oddly
                held.add(_raw_userinfo_password(value))
            else:
                held.add(value.get_secret_value())
        return held


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Remove every secret from a text meant for a person."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _checked(value: SecretStr, name: str, *, postgres: bool = False) -> URL:
    """Parse a secret URL (encoding its userinfo) and check its driver and options."""
    url = parse_db_url(value.get_secret_value(), name)
    if postgres and url.drivername in ("postgres", "postgresql"):
        url = url.set(drivername="postgresql+psycopg")
    check_driver(url, name)
    return url


def _url_password(value: SecretStr) -> str | None:
    try:
        return parse_db_url(value.get_secret_value(), "URL").password
    except ConfigError:
        return None


def _raw_userinfo_password(value: SecretStr) -> str | None:
    rest = value.get_secret_value().split("://", 1)[-1]
    if "@" not in rest:
        return None
    return rest.rsplit("@", 1)[0].partition(":")[2] or None


def find_project_root(cwd: Path, env: Mapping[str, str | None]) -> Path:
    """`HYBRIDWB_HOME`, or the nearest folder upwards holding `[tool.hybridwb]` or
    `.hybridwb/`, or the working directory itself."""
    home = env.get("HYBRIDWB_HOME")
    if home:
        path = Path(home).expanduser()
        path = path if path.is_absolute() else cwd / path
        # compatibility: HYBRIDWB_HOME once named the .hybridwb data folder itself
        return path.parent if path.name == PROJECT_MARKER else path
    ceilings = _ceilings()
    for folder in (cwd, *cwd.parents):
        if folder != cwd and folder.resolve() in ceilings:
            break  # a stray .hybridwb/ in the home or temp folder is no project
        if (folder / PROJECT_MARKER).is_dir() or _has_tool_section(folder / "pyproject.toml"):
            return folder
    return cwd


def _ceilings() -> set[Path]:
    """Folders the upward search never enters (like GIT_CEILING_DIRECTORIES)."""
    found = {Path(tempfile.gettempdir()).resolve(), Path("/")}
    with contextlib.suppress(RuntimeError, KeyError):
        found.add(Path.home().resolve())
    return found


def _has_tool_section(path: Path) -> bool:
    if not path.is_file():
        return False
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError):
        return False
    return "hybridwb" in data.get("tool", {})


def load_settings(
    cwd: Path | None = None, env: Mapping[str, str | None] | None = None, **overrides: Any
) -> Settings:
    """Read the configuration once, in the documented precedence (pydantic-settings)."""
    settings, problem = _build(
        Path.cwd() if cwd is None else Path(cwd), os.environ if env is None else env, overrides
    )
    if settings is None:
        # raised from a frame that holds neither the environment nor the arguments: a
        # traceback printed with locals would show os.environ, passwords included
        del env, overrides
        raise ConfigError(problem or "The configuration could not be read.")
    return settings


def _build(
    cwd: Path, env: Mapping[str, str | None], overrides: dict[str, Any]
) -> tuple[Settings | None, str | None]:
    """The settings, or (None, the one-line problem) - never an exception."""
    if "project_root" in overrides:  # round 51: a raw TypeError (given twice)
        return None, "project_root is the folder hybridwb.connect() starts in; pass cwd= instead."
    root = find_project_root(cwd, env)
    loading = _Loading(root, env)
    token = _LOADING.set(loading)
    failure: tuple[str, str, str] | None = None
    settings: Settings | None = None
    try:
        settings = Settings(**overrides, project_root=root)
    except ValidationError as exc:
        err = exc.errors()[0]
        # the type, the field and the message only: the error's text holds the input value
        failure = (err["type"], ".".join(str(p) for p in err["loc"]), err["msg"])
    finally:
        _LOADING.reset(token)
    origins: dict[str, str] = {}
    for given in loading.given:  # highest precedence first
        for name, origin in given.items():
            origins.setdefault(name, origin)
    if loading.problem is not None:
        return None, loading.problem
    if failure is not None:
        kind, name, msg = failure
        where = origins.get(name, "default")
        if kind == "extra_forbidden":
            return None, f"Unknown setting {short(name)} (from {where}); remove it."
        if kind == "path_type":
            return None, f"Setting {name} (from {where}) must be a path (text)."
        msg = msg.removeprefix("Value error, ")  # a validator of ours: its own words
        return None, f"Setting {name} (from {where}) is invalid: {msg.rstrip('.')}."
    assert settings is not None
    return settings.model_copy(update={"origins": origins}), None
