"""Layer three of the read-only guarantee: what the account's grants allow (pure)."""

from __future__ import annotations

import re

WRITE_PRIVILEGES = (
    "ALL PRIVILEGES",
    "INSERT",
    "UPDATE",
    "DELETE",
    "CREATE",
    "DROP",
    "ALTER",
    "INDEX",
    "REFERENCES",
    "CREATE TEMPORARY TABLES",
    "LOCK TABLES",
    "EXECUTE",
    "CREATE VIEW",
    "CREATE ROUTINE",
    "ALTER ROUTINE",
    "EVENT",
    "TRIGGER",
    "FILE",
    "SUPER",
    "DELETE HISTORY",
)
_GRANT = re.compile(r"^GRANT\s+(.+?)\s+ON\s+", re.IGNORECASE | re.DOTALL)


def write_privileges(grants: list[str]) -> list[str]:
    """The privileges in `SHOW GRANTS` lines that would let the account change data.

    Only `SELECT`, `SHOW VIEW`, `USAGE`, `PROCESS`, `SHOW DATABASES` and role or proxy
    grants are safe for hybridwb's account; everything else is reported.
    """
    found: list[str] = []
    for line in grants:
        match = _GRANT.match(line.strip())
        if not match:
            continue
        for raw in match.group(1).split(","):
            priv = re.sub(r"\s*\(.*\)$", "", raw.strip()).upper()  # column grants
            if priv == "ALL":
                priv = "ALL PRIVILEGES"
            if priv in WRITE_PRIVILEGES and priv not in found:
                found.append(priv)
    return found
