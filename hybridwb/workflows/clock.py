"""A run's `now` as every entry point reads it (CLI `--now`, `wb.workflows.run/process`,
the notebook parameter, the scheduler): one parser, so one wall time means one instant.

The team works in Korea and target definitions evaluate relative dates in Asia/Seoul, so a
time without a UTC offset is Seoul time, never UTC.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from hybridwb.errors import ValidationError
from hybridwb.validation import short

SEOUL = ZoneInfo("Asia/Seoul")


def parse_now(value: str | datetime | None) -> datetime | None:
    """`value` as an aware datetime (naive -> Asia/Seoul); None or '' stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValidationError(
                f"{short(value)} is not an ISO time; write it like 2026-03-01T22:30+09:00."
            ) from None
    if not isinstance(value, datetime):
        raise ValidationError(f"now must be an ISO time or a datetime, not {type(value).__name__}.")
    return value if value.tzinfo else value.replace(tzinfo=SEOUL)
