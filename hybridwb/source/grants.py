"""Layer three of the read-only guarantee: the account's grants against an allowlist (pure).

hybridwb's account may hold SELECT and SHOW VIEW on application schemas, USAGE, and EXECUTE
on exactly the stored functions a DBA allowlisted. Everything else is a finding with the
exact `REVOKE` to run: write and admin privileges (also column-level ones like
`UPDATE (a, b)`), `WITH GRANT OPTION`, PROXY, and any access to the `mysql` schema
(`SELECT ON *.*` reads `mysql.user`). Roles are expanded: `review()` gets the `SHOW GRANTS`
lines of the account and of every role granted to it (recursively), and reports what a role
holds as held through that role.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

SAFE = frozenset({"SELECT", "SHOW VIEW", "USAGE"})
#: Roles nested deeper than this are not followed (a cycle cannot happen in MariaDB, but a
#: bad answer must not loop).
MAX_ROLES = 50

_GRANT = re.compile(
    r"^GRANT\s+(?P<privs>.+?)\s+ON\s+(?:(?P<kind>FUNCTION|PROCEDURE|PACKAGE BODY|PACKAGE|TABLE)\s+)?"
    r"(?P<on>(?:`(?:[^`]|``)*`|[^\s.`]+|\*)(?:\.(?:`(?:[^`]|``)*`|[^\s`]+|\*))?|'[^']*'@'[^']*')"
    r"\s+TO\s+(?P<to>.+?)(?P<option>\s+WITH\s+GRANT\s+OPTION)?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_ROLE_GRANT = re.compile(
    r"^GRANT\s+(?P<roles>.+?)\s+TO\s+(?P<to>.+?)(?:\s+WITH\s+ADMIN\s+OPTION)?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_GRANTEE = re.compile(r"^((?:`(?:[^`]|``)*`|'[^']*'|[^\s@]+)(?:@(?:`(?:[^`]|``)*`|'[^']*'|\S+))?)")


@dataclass(frozen=True)
class Finding:
    """One privilege hybridwb's account must not hold, and how to take it away."""

    privilege: str
    on: str
    grantee: str
    revoke: str
    via_role: str | None = None

    def describe(self) -> str:
        via = f" through role {self.via_role}" if self.via_role else ""
        return f"{self.privilege}{via}"


@dataclass(frozen=True)
class Grant:
    privileges: tuple[str, ...]  # as written, column lists included: "UPDATE (`a`, `b`)"
    on: str
    kind: str  # "" | FUNCTION | PROCEDURE | ...
    grantee: str
    grant_option: bool


@dataclass(frozen=True)
class RoleGrant:
    roles: tuple[str, ...]
    grantee: str


def _split(text: str) -> list[str]:
    """Split a privilege list at commas outside parentheses and quotes."""
    parts: list[str] = []
    depth, quote, start = 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "`'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def _grantee(text: str) -> str:
    match = _GRANTEE.match(text.strip())
    return match.group(1) if match else text.strip()


def parse(line: str) -> Grant | RoleGrant | None:
    """One `SHOW GRANTS` line as data (None for lines that grant nothing, e.g. SET DEFAULT ROLE).

    Password clauses (`IDENTIFIED BY PASSWORD '*…'`) are dropped and never kept."""
    text = re.sub(
        r"\s+IDENTIFIED\s+(?:BY|VIA|WITH)\s+.*?(?=\s+WITH\s+GRANT\s+OPTION|$)",
        "",
        line.strip(),
        flags=re.IGNORECASE | re.DOTALL,
    )
    if not text.upper().startswith("GRANT "):
        return None
    match = _GRANT.match(text)
    if match and not _top_level_on_missing(text):
        return Grant(
            tuple(_split(match.group("privs"))),
            match.group("on"),
            (match.group("kind") or "").upper(),
            _grantee(match.group("to")),
            bool(match.group("option")),
        )
    role = _ROLE_GRANT.match(text)
    if role:
        return RoleGrant(tuple(_split(role.group("roles"))), _grantee(role.group("to")))
    return None


def _top_level_on_missing(text: str) -> bool:
    return re.search(r"\sON\s", text, re.IGNORECASE) is None


def _name(privilege: str) -> str:
    """`UPDATE (`a`, `b`)` -> `UPDATE`; `ALL` -> `ALL PRIVILEGES`."""
    name = re.sub(r"\s*\(.*\)\s*$", "", privilege, flags=re.DOTALL).strip().upper()
    name = re.sub(r"\s+", " ", name)
    return "ALL PRIVILEGES" if name == "ALL" else name


def _unquote(part: str) -> str:
    if part.startswith("`") and part.endswith("`"):
        return part[1:-1].replace("``", "`")
    return part


def _schema(on: str) -> str:
    return _unquote(on.split(".", 1)[0]) if "." in on else ""


def _is_allowed_function(grant: Grant, allowed: frozenset[str]) -> bool:
    if grant.kind != "FUNCTION" or "." not in grant.on:
        return False
    schema, name = (_unquote(p) for p in grant.on.split(".", 1))
    return name.lower() in allowed or f"{schema}.{name}".lower() in allowed


def unsafe(
    grant: Grant, allowed_functions: Collection[str] = (), via_role: str | None = None
) -> list[Finding]:
    """What in one GRANT line hybridwb's account must not hold."""
    allowed = frozenset(f.lower() for f in allowed_functions)
    on = f"{grant.kind} {grant.on}".strip()
    mysql_schema = _schema(grant.on).lower() == "mysql"
    global_ = grant.on == "*.*"
    found: list[Finding] = []
    for privilege in grant.privileges:
        name = _name(privilege)
        if name == "USAGE":
            continue
        if name in SAFE and not mysql_schema and not global_ and grant.kind in ("", "TABLE"):
            continue
        if name == "EXECUTE" and _is_allowed_function(grant, allowed):
            continue
        if name == "PROXY":
            revoke = _revoke("PROXY", grant.on, grant.grantee)
        else:
            revoke = _revoke(privilege, on, grant.grantee)
        found.append(Finding(privilege, on, grant.grantee, revoke, via_role))
    if grant.grant_option:
        found.append(
            Finding(
                "GRANT OPTION",
                on,
                grant.grantee,
                _revoke("GRANT OPTION", on, grant.grantee),
                via_role,
            )
        )
    return found


def roles(lines: Collection[str]) -> list[str]:
    """The roles granted in these lines (default roles included: they are granted too)."""
    out: list[str] = []
    for line in lines:
        parsed = parse(line)
        if isinstance(parsed, RoleGrant):
            out.extend(r for r in parsed.roles if r not in out)
    return out


def expand(
    fetch: Callable[[str | None], list[str]],
    errors: tuple[type[BaseException], ...] = (),
) -> dict[str | None, list[str] | None]:
    """`SHOW GRANTS` of the account (`fetch(None)`) and of every role it holds, recursively
    (`fetch(role)` runs `SHOW GRANTS FOR role`). A role the server will not show (MariaDB
    refuses `SHOW GRANTS FOR` a role granted only through another role) raises one of
    `errors`; its lines are None (`review` reports it unless its grants appear elsewhere: the
    active role's nested roles show up in the account's own lines)."""
    found: dict[str | None, list[str] | None] = {None: fetch(None)}
    todo = roles(found[None] or [])
    while todo and len(found) <= MAX_ROLES:
        role = todo.pop(0)
        if role in found:
            continue
        try:
            found[role] = fetch(role)
        except errors:
            found[role] = None
            continue
        todo.extend(r for r in roles(found[role] or []) if r not in found)
    return found


def review(
    grants: Mapping[str | None, list[str] | None], allowed_functions: Collection[str] = ()
) -> list[Finding]:
    """Every finding in the account's grants (`grants[None]`) and its roles' grants. A role
    whose grants could not be read (None) and appear nowhere else is itself a finding: MariaDB
    shows a role's grants only while it is active, and the account may `SET ROLE` it."""
    found: list[Finding] = []
    granted_to: dict[str, str] = {}
    seen: set[str] = set()
    for lines in grants.values():
        for line in lines or []:
            parsed = parse(line)
            if isinstance(parsed, RoleGrant):
                for granted in parsed.roles:
                    granted_to.setdefault(granted, parsed.grantee)
            if not isinstance(parsed, Grant):
                continue
            seen.add(parsed.grantee)
            role = parsed.grantee if "@" not in parsed.grantee else None
            for finding in unsafe(parsed, allowed_functions, role):
                if finding not in found:
                    found.append(finding)
    for role, lines in grants.items():
        if role is not None and lines is None and role not in seen:
            grantee = granted_to.get(role, "CURRENT_USER")
            found.append(
                Finding(
                    "ROLE (its grants cannot be read while it is not active)",
                    role,
                    grantee,
                    _revoke(role, None, grantee),
                    role,
                )
            )
    return found


def write_privileges(grants: list[str]) -> list[str]:
    """The unsafe privilege names in the account's own `SHOW GRANTS` lines (no roles)."""
    names: list[str] = []
    for finding in review({None: grants}):
        name = _name(finding.privilege)
        if name not in names:
            names.append(name)
    return names


_QUOTED_ROLE = re.compile(r"`(?:[^`]|``)+`(?:@`(?:[^`]|``)*`)?|'[^']+'(?:@'[^']*')?")


def _revoke(what: str, on: str | None, grantee: str) -> str:
    """The REVOKE line shown to the user as advice (never executed by hybridwb)."""
    target = ("ON", on) if on is not None else ()
    return " ".join(("REVOKE", what, *target, "FROM", grantee))


def show_grants_for(role: str) -> str:
    """`SHOW GRANTS FOR <role>` for a role name exactly as the server quoted it in SHOW GRANTS."""
    if not _QUOTED_ROLE.fullmatch(role):
        raise ValueError(f"not a role name quoted by the server: {role!r}")
    return " ".join(("SHOW GRANTS FOR", role))
