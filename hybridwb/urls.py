"""Database URLs from people: parsed, rebuilt with encoded userinfo, checked, masked (pure).

A password often holds `@`, `#`, `/` or `?`. Parsed naively, `mysql://u:p@ss#x@host/db`
puts `ss#x` into the host, and every message that names the host leaks the tail of the
password. Here the userinfo is split off at the *last* `@` before the host, taken
literally when it holds characters that cannot be part of an encoded userinfo, and put
back through SQLAlchemy's `URL.create`, which encodes it. When the rest still does not
read as a URL, the error says how to encode the password and never repeats the URL.

A password may also come as a query option (`?password=…`, `?passwd=…`: both drivers take
it); it is moved into the userinfo, so it is masked and scrubbed like any password. Other
secret options (`?sslpassword=…`) are refused: nothing would mask them.
"""

from __future__ import annotations

import inspect
import re
from urllib.parse import unquote

from sqlalchemy.engine import URL, make_url
from sqlalchemy.engine.default import DefaultDialect
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from hybridwb.errors import ConfigError
from hybridwb.extras import missing_module_error

#: query options that carry the login password (pymysql: password, passwd; libpq: password)
PASSWORD_OPTIONS = ("password", "passwd")
#: query options that carry another secret: refused (pymysql's ssl_key_password, libpq's
#: sslpassword, and any other option whose name says password, secret or token)
SECRET_OPTIONS = ("sslpassword", "ssl_key_password")
_SECRET_OPTION = re.compile(r"pass(word|wd)|secret|token", re.IGNORECASE)
#: where a `?password=` option starts (its value may hold an unencoded `@`)
_PASSWORD_OPTION_AT = re.compile(r"[?&](?:password|passwd)=", re.IGNORECASE)
#: characters that cannot appear unencoded in a URL's userinfo
_RAW_USERINFO = re.compile(r"[@#/?\s\[\]]|%(?![0-9A-Fa-f]{2})")
ENCODE_HINT = (
    "percent-encode special characters in the user name and password "
    "(@ → %40, # → %23, / → %2F, : → %3A, % → %25; "
    "in Python: urllib.parse.quote(password, safe=''))"
)


def parse_db_url(raw: str, name: str) -> URL:
    """The SQLAlchemy URL in `raw`; a ConfigError naming `name` (never the URL) if unreadable.

    The error is raised from a frame that no longer holds the text, so a traceback
    printed with locals cannot show the password either."""
    url = _parse(raw) if isinstance(raw, str) else None
    if url is not None:
        url, problem = _password_from_query(url)
        if problem is not None:
            del raw, url
            raise ConfigError(f"{name} {problem}")
    if url is None:
        has_scheme = isinstance(raw, str) and "://" in raw
        del raw
        if not has_scheme:
            raise ConfigError(
                f"{name} is not a database URL (expected e.g. "
                "mysql+pymysql://user:password@host/db)."
            )
        raise ConfigError(f"{name} could not be read as a database URL; {ENCODE_HINT}.")
    return url


def _password_from_query(url: URL) -> tuple[URL, str | None]:
    """The URL with a `?password=` option moved into its userinfo, or why it cannot be."""
    if any(
        k.lower() in SECRET_OPTIONS
        or (k.lower() not in PASSWORD_OPTIONS and _SECRET_OPTION.search(k))
        for k in url.query
    ):
        return url, (
            "carries a secret in its options (?sslpassword=…, ?ssl_key_password=…), which "
            "would be shown; remove it (use a client key without a passphrase)."
        )
    given = [k for k in url.query if k.lower() in PASSWORD_OPTIONS]
    if not given:
        return url, None
    values = {str(v) for k in given for v in _values(url.query[k])}
    if url.password is not None:
        values.add(str(url.password))
    if len(values) != 1:
        return url, "gives more than one password (in the user info and in ?password=…); keep one."
    return url.difference_update_query(given).set(password=values.pop()), None


def _values(value: str | tuple[str, ...]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _parse(raw: str) -> URL | None:
    if "://" not in raw:
        return None
    scheme, rest = raw.split("://", 1)
    user = password = None
    hostpart = rest
    # the userinfo ends at the last `@` before a `?password=` option, whose value may hold
    # an `@` of its own
    option = _PASSWORD_OPTION_AT.search(rest)
    head, query = rest, ""
    if option is not None:
        start = rest.rfind("?", 0, option.start() + 1)
        head, query = rest[:start], rest[start:]
    hostpart = head
    if "@" in head and not scheme.startswith("sqlite"):
        userinfo, hostpart = head.rsplit("@", 1)
        user, sep, password = userinfo.partition(":")
        if not sep:
            password = None
        if not _RAW_USERINFO.search(userinfo):
            user = unquote(user)
            password = unquote(password) if password is not None else None
    try:
        url = make_url(f"{scheme}://{hostpart}")
        if query:  # read apart: make_url would take an `@` in an option for the userinfo's end
            url = url.update_query_string(query[1:], append=True)
        if user is not None:
            url = url.set(username=user or None, password=password or None)
    except (ArgumentError, ValueError, TypeError):
        return None
    if url.port is not None and not 0 < url.port < 65536:
        return None
    return url


def mask_url(url: str | URL, name: str = "URL") -> str:
    """Render a database URL with its password replaced by ***."""
    try:
        parsed = parse_db_url(url, name) if isinstance(url, str) else url
        return parsed.render_as_string(hide_password=True)
    except ConfigError:
        return "<unreadable URL>"


def strip_http_password(raw: str) -> str:
    """An http(s) URL without the password in its userinfo (the user name stays) and
    without a query or fragment (`?apikey=…`: the REST API takes its key from the settings).

    Split at the last `@` like `parse_db_url`, so an unencoded `#` or `/` in the password
    is not mistaken for a fragment or a path."""
    scheme, sep, rest = raw.partition("://")
    if not sep:
        return raw
    user = ""
    if "@" in rest:
        userinfo, rest = rest.rsplit("@", 1)
        user = userinfo.partition(":")[0]
    rest = rest.split("?", 1)[0].split("#", 1)[0]
    return f"{scheme}://{user + '@' if user else ''}{rest}"


def check_driver(url: URL, name: str) -> None:
    """The URL names an installed driver and only options the driver knows."""
    try:
        dialect_cls = url.get_dialect()
    except NoSuchModuleError:
        raise ConfigError(
            f"{name} names an unknown kind of database {url.drivername!r}; "
            "use mysql+pymysql://, postgresql+psycopg:// or sqlite:///."
        ) from None
    try:
        dbapi = dialect_cls.import_dbapi()
    except ModuleNotFoundError as exc:
        raise missing_module_error(exc.name or "?", f"{name} ({url.drivername})") from None
    if url.get_backend_name() == "sqlite" or not url.query:
        return
    if not issubclass(dialect_cls, DefaultDialect):  # every SQLAlchemy dialect is one
        return
    try:
        _, params = dialect_cls(dbapi=dbapi).create_connect_args(url)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"{name} has a query option the driver cannot use ({type(exc).__name__}); "
            "remove the options after '?'."
        ) from None
    connect = getattr(dbapi, "connect", None)
    if not callable(connect):
        return
    try:
        signature = inspect.signature(connect)
    except (TypeError, ValueError):
        return
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    unknown = sorted(set(params) - set(signature.parameters))
    if unknown and not accepts_any:
        raise ConfigError(
            f"{name} has an unknown option ?{unknown[0]}=… for {url.drivername}; "
            "remove it or check its spelling."
        )
