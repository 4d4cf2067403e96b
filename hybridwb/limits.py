"""Bounds a user meets in the CLI as well as in the configuration, kept apart from
`config.py` so that the CLI can show them (`hybridwb demo --help`) without importing
pydantic and SQLAlchemy."""

from __future__ import annotations

#: the largest sample shop hybridwb builds (bigger ones take minutes and gigabytes)
MAX_SAMPLE_CUSTOMERS = 1_000_000

__all__ = ["MAX_SAMPLE_CUSTOMERS"]
