"""The read-only source: every byte hybridwb sends to MySQL/MariaDB (or the SQLite sample)."""

from hybridwb.source.guard import check
from hybridwb.source.querylog import QueryLog, QueryLogEntry
from hybridwb.source.source import ConnectionInfo, RowsCut, Source

__all__ = ["ConnectionInfo", "QueryLog", "QueryLogEntry", "RowsCut", "Source", "check"]
