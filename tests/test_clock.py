"""`parse_now`: the one reading of a run's `now` for every entry point."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from hybridwb.errors import ValidationError
from hybridwb.workflows.clock import parse_now

KST = timezone(timedelta(hours=9))


@pytest.mark.parametrize(
    "value, utc",
    [
        pytest.param("2026-03-02T23:00:00", datetime(2026, 3, 2, 14, tzinfo=UTC), id="naive-text"),
        pytest.param(datetime(2026, 3, 2, 23), datetime(2026, 3, 2, 14, tzinfo=UTC), id="naive"),
        pytest.param("2026-03-02T23:00+00:00", datetime(2026, 3, 2, 23, tzinfo=UTC), id="utc"),
        pytest.param(
            datetime(2026, 3, 2, 23, tzinfo=KST), datetime(2026, 3, 2, 14, tzinfo=UTC), id="kst"
        ),
    ],
)
def test_a_time_without_an_offset_is_seoul_time(value: object, utc: datetime) -> None:
    assert parse_now(value) == utc  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [None, ""])
def test_no_time_means_the_wall_clock(value: str | None) -> None:
    assert parse_now(value) is None


def test_a_time_that_does_not_parse_is_refused() -> None:
    with pytest.raises(ValidationError, match="ISO time"):
        parse_now("tomorrow 9am")
