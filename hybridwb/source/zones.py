"""Whether the source session reads TIMESTAMPs in a zone whose offset never changes.

hybridwb never sets the session `time_zone`: a TIMESTAMP comes back as local time in the
server's zone, and where the clocks go back (daylight saving time) two instants read as
one text (02:15 CEST and 02:15 CET). A key of such values is not a key as read, so targets
and search refuse it unless the session's zone is a fixed offset (see `fixed_offset`).
"""

from __future__ import annotations

import re
from typing import Any

#: MariaDB/MySQL spell a fixed zone '+09:00'; the named zones below never change offset
_OFFSET = re.compile(r"[+-]\d{1,2}:\d{2}")
_FIXED_NAME = re.compile(r"(Etc/)?(UTC|UCT|GMT|Universal|Zulu|Greenwich)([+-]\d{1,2}|0)?", re.I)

ZONE_SQL = "SELECT @@session.time_zone AS time_zone, @@system_time_zone AS system_time_zone"


def fixed_offset(time_zone: str | None, system_time_zone: str | None) -> bool:
    """True when the session zone (its `SYSTEM` being the server's own) has one offset.
    Any other name (Europe/Berlin, an abbreviation such as CET or KST) may have changed its
    offset at some instant a TIMESTAMP holds, so it is not taken as fixed."""
    zone = system_time_zone if (time_zone or "").upper() == "SYSTEM" else time_zone
    zone = (zone or "").strip()
    return bool(_OFFSET.fullmatch(zone) or _FIXED_NAME.fullmatch(zone))


def session_zone_is_fixed(source: Any) -> bool:
    """Ask the source session for its zone (one row); SQLite has no TIMESTAMP time zone."""
    if source.is_sqlite:
        return True
    row = source.records(ZONE_SQL, limit=1)[0]
    return fixed_offset(row["time_zone"], row["system_time_zone"])


def is_timestamp(column_type: str) -> bool:
    """A MariaDB/MySQL TIMESTAMP column type ('timestamp', 'TIMESTAMP(6)')."""
    return column_type.strip().upper().startswith("TIMESTAMP")
