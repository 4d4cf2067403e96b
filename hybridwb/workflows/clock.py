"""A run's `now` as every entry point reads it (CLI `--now`, `wb.workflows.run/process`,
the notebook parameter, the scheduler): one parser, so one wall time means one instant.

The team works in Korea and target definitions evaluate relative dates in Asia/Seoul, so a
time without a UTC offset is Seoul time, never UTC.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hybridwb.errors import ValidationError
from hybridwb.validation import refuse_far_now, short

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
    value = value if value.tzinfo else value.replace(tzinfo=SEOUL)
    refuse_far_now(value)  # before a run row is made: its clock moves on from it
    return value


def run_clock(now: datetime | None, clock: Callable[[], datetime] | None) -> Callable[[], datetime]:
    """The run's clock, read again per batch: the injected one, else the given start time
    moving with real time (`--now`), else the wall clock."""
    if clock is not None:
        return clock
    start = parse_now(now)
    if start is not None:
        t0 = time.perf_counter()
        return lambda: start + timedelta(seconds=time.perf_counter() - t0)
    return lambda: datetime.now(UTC)
