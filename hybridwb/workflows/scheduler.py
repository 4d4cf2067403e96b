"""Schedules: which workflows are due, and running each due slot exactly once.

A bad schedule row (a cron that never fires, an unknown time zone) is reported and skipped;
one workflow's failing run never stops the others, and a claimed slot is never lost: the
run's outcome (or its error) is returned for every claimed slot.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hybridwb.errors import HybridwbError, ValidationError
from hybridwb.source.catalogue import server_text
from hybridwb.validation import short

#: a cron must fire within this horizon to be accepted (`0 0 30 2 *` never does)
HORIZON_YEARS = 5
#: the widest window `due` looks back over: a check missed for a day still runs the slot
MAX_WINDOW_S = 86_400


def check_schedule(cfg: dict[str, Any]) -> None:
    """A cron that fires and a real time zone, or one ValidationError saying which."""
    from croniter import croniter

    if not isinstance(cfg, dict):
        raise ValidationError(
            "schedule_config must be a dict such as {'cron': '0 9 * * *', 'timezone': "
            f"'Asia/Seoul'}} (got {type(cfg).__name__}); nothing was saved."
        )
    cron = cfg.get("cron")
    if not isinstance(cron, str) or not croniter.is_valid(cron):
        raise ValidationError(
            f"schedule_config.cron must be a cron expression such as '0 9 * * *' (got {short(cron)}); "
            "nothing was saved."
        )
    tz_name = cfg.get("timezone", "Asia/Seoul")
    try:
        if not isinstance(tz_name, str):
            raise ValueError(tz_name)
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a path
        raise ValidationError(
            f"schedule_config.timezone {short(tz_name)} is not a time zone such as 'Asia/Seoul'; "
            "nothing was saved."
        ) from None
    start = datetime.now(tz)
    try:
        nxt = croniter(cron, start, max_years_between_matches=HORIZON_YEARS).get_next(datetime)
    except Exception:
        nxt = None
    if nxt is None or nxt - start > timedelta(days=366 * HORIZON_YEARS):
        raise ValidationError(
            f"schedule_config.cron {short(cron)} never fires; check the day and month "
            "(e.g. February has no 30th). Nothing was saved."
        )


@dataclass
class Due:
    workflow: dict[str, Any]
    scheduled_for: datetime


@dataclass
class DueCheck:
    due: list[Due] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # bad rows, reported and skipped


def due(
    workflows: list[dict[str, Any]], now: datetime | None = None, window_s: int = 300
) -> DueCheck:
    """Scheduled, active workflows whose latest cron time falls within the window."""
    from croniter import croniter

    # round 51: '5' and None raised a raw TypeError, -1 and NaN found nothing due silently
    if (
        isinstance(window_s, bool)
        or not isinstance(window_s, int | float)
        or not 0 < window_s <= MAX_WINDOW_S
    ):
        raise ValidationError(
            f"window_s must be seconds, more than 0 and at most {MAX_WINDOW_S:,} (a day), "
            f"not {short(window_s)}."
        )
    now = now or datetime.now(UTC)
    out = DueCheck()
    for wf in workflows:
        cfg = wf.get("schedule_config") or {}
        if wf["trigger_type"] != "schedule" or wf["status"] != "active":
            continue
        if not isinstance(cfg, dict):  # round 51: a raw AttributeError stopped the scheduler
            out.problems.append(
                f"workflow {wf['name']!r}: bad schedule, skipped (schedule_config is not a "
                "JSON object such as {'cron': '0 9 * * *'}; fix it with wb.workflows.update())"
            )
            continue
        if not cfg.get("cron"):
            continue
        try:
            check_schedule(cfg)
            local_now = now.astimezone(ZoneInfo(cfg.get("timezone", "Asia/Seoul")))
            previous = croniter(cfg["cron"], local_now + timedelta(seconds=1)).get_prev(datetime)
        except (HybridwbError, Exception) as exc:
            out.problems.append(
                f"workflow {wf['name']!r}: bad schedule, skipped ({str(exc).splitlines()[0]})"
            )
            continue
        if (local_now - previous).total_seconds() <= window_s:
            out.due.append(Due(wf, previous.astimezone(UTC)))
    return out


def run_due(
    workflows: list[dict[str, Any]],
    claim: Callable[[Any, datetime, str], bool],
    release: Callable[[Any, datetime], None],
    run: Callable[..., dict[str, Any]],
    owner: str,
    now: datetime | None = None,
    latest_run: Callable[[Any], Any] | None = None,
    slot_run: Callable[[Any, datetime], Any] | None = None,
    **kwargs: Any,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Run every due workflow once per scheduled time; (finished runs, problems).

    A slot whose run raises is given back only when the run never started: the error names
    no run and no run row was made for the slot: `slot_run(workflow_id, scheduled_for)`,
    the id of a run whose parameters' `as_of` is the slot, is None, and
    `latest_run(workflow_id)`, the id of the newest run, is unchanged. A run that started and
    then failed (a cell time limit after its records were written, a bug in its report)
    keeps its slot: running it again would message its recipients twice; it is resumed
    instead. When the store cannot say (`slot_run` fails), the slot is kept too (round 55:
    the newest run by `created_at`, the same before and after when another host's clock
    stamped a run ahead, or unread as the store blinked, released a slot whose run had
    sent, and the next check sent it again)."""
    check = due(workflows, now)
    runs: list[dict[str, Any]] = []
    problems = list(check.problems)
    for item in check.due:
        wf = item.workflow
        try:
            if not claim(wf["id"], item.scheduled_for, owner):
                continue
        except HybridwbError as exc:
            problems.append(f"workflow {wf['name']!r}: could not claim its slot ({exc})")
            continue
        before = _latest(latest_run, wf["id"])
        try:
            runs.append(
                run(
                    wf["id"],
                    {"as_of": item.scheduled_for.isoformat()},
                    trigger="schedule",
                    **kwargs,
                )
            )
        except Exception as exc:
            why = f"{type(exc).__name__}: {server_text(str(exc))[:200]}"
            run_id = getattr(exc, "run_id", None)
            if run_id is None and slot_run is not None:
                try:
                    run_id = slot_run(wf["id"], item.scheduled_for)
                except HybridwbError as unread:
                    problems.append(
                        f"workflow {wf['name']!r}: its run failed ({why}) and the store could "
                        f"not say whether it started ({str(unread).splitlines()[0]}); its slot "
                        "is kept: if no run of it is listed, run the workflow by hand"
                    )
                    continue
            if run_id is None:  # or a run made since the claim (any other row of it)
                after = _latest(latest_run, wf["id"])
                run_id = after if after is not None and after != before else None
            if run_id is not None:
                problems.append(
                    f"workflow {wf['name']!r}: run {run_id} started and failed ({why}); its "
                    f"slot is kept, resume it with `hybridwb run --resume {run_id}`"
                )
                continue
            # the run never started: give the slot back so the next check runs it
            problems.append(
                f"workflow {wf['name']!r}: the run did not start, slot released for the next "
                f"check ({why})"
            )
            with contextlib.suppress(HybridwbError):
                release(wf["id"], item.scheduled_for)
    return runs, problems


def _latest(latest_run: Callable[[Any], Any] | None, workflow_id: Any) -> Any:
    """The workflow's newest run id, or None (none yet, no way to ask, the store is down:
    then the error's own run id decides)."""
    if latest_run is None:
        return None
    try:
        return latest_run(workflow_id)
    except HybridwbError:
        return None
