"""Papermill parameters (pure): names are Python identifiers, values plain JSON data.

Papermill writes each parameter as `name = repr(value)` into a code cell, so a key like
`"x = 1\\nopen(...)"` or a value with a custom repr would become code. Checked where
parameters are stored and again where the notebook is built.
"""

from __future__ import annotations

import keyword
import math
from typing import Any

from hybridwb.errors import ValidationError

MAX_DEPTH = 8


def _check_value(name: str, value: Any, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise ValidationError(f"Parameter {name!r} is nested too deeply; flatten it.")
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(f"Parameter {name!r} must be a finite number.")
        return
    if isinstance(value, list):
        for item in value:
            _check_value(name, item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError(f"Parameter {name!r} has a non-text key; use text keys.")
            _check_value(name, item, depth + 1)
        return
    raise ValidationError(
        f"Parameter {name!r} must be JSON data (text, number, true/false, null, list, object), "
        f"not {type(value).__name__}."
    )


def check_parameters(params: dict[str, Any] | None) -> dict[str, Any]:
    """The parameters unchanged, or one ValidationError naming the first bad one."""
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise ValidationError("Notebook parameters must be a mapping of name -> value.")
    for name, value in params.items():
        if (
            not isinstance(name, str)
            or not name.isidentifier()
            or keyword.iskeyword(name)
            or not name.isascii()
        ):
            raise ValidationError(
                f"Parameter name {str(name)[:40]!r} is not a Python identifier; use letters, "
                "digits and _ (e.g. batch_size)."
            )
        _check_value(name, value)
    return params


def refuse_another_limit(
    run_id: Any, started: Any, params: dict[str, Any], limit: int | None
) -> None:
    """A resume sends the rest of the run's frozen targets, as many as the limit it was
    started with: a limit asked for now (`--limit`, or `-p limit`) that is another one is
    refused, not ignored (a resume asked for 3 sent every pending target)."""
    asked = params.get("limit", limit)
    if (limit is None and "limit" not in params) or asked == started:
        return
    was = "no limit" if started is None else f"--limit {started}"
    raise ValidationError(
        f"Run {run_id} was started with {was}, and a resume sends the rest of its targets; "
        f"resume it without a limit (hybridwb run --resume {run_id}), or start a new run "
        "with the limit you want."
    )


def refuse_parameter_unlike_flag(params: dict[str, Any], dry_run: bool, limit: int | None) -> None:
    """A new run's `-p dry_run` or `-p limit` that is another value than its flag is
    refused, not overwritten by the flag (round 32: `hybridwb run wf -p dry_run true`
    built the notebook with `dry_run = False` and messaged every target; so did a
    workflow whose `trigger_config` parameters hold `dry_run: true`, run by the scheduler)."""
    for name, flag, value in (("dry_run", "--dry-run", dry_run), ("limit", "--limit", limit)):
        asked = params.get(name, value)
        if asked == value and type(asked) is type(value):
            continue
        raise ValidationError(
            f"Parameter {name} is the run's {flag}, and -p {name} (or the workflow's "
            f"trigger_config parameters) asked for another value; ask with {flag} alone, "
            f"not as a parameter. Nothing was run."
        )


def refuse_another_dry_run(run_id: Any, started: bool, params: dict[str, Any], asked: bool) -> None:
    """A resume goes on as its run started, sending or not: a dry run asked for now
    (`--dry-run`, or `-p dry_run`) of a run that sends, or a send of a dry run, is refused,
    not ignored (round 31: a resume asked for a dry run "to see what would be sent"
    messaged every pending target)."""
    wanted = bool(params["dry_run"]) if "dry_run" in params else (asked or started)
    if wanted == started:
        return
    was = "as a dry run" if started else "to send (not as a dry run)"
    raise ValidationError(
        f"Run {run_id} was started {was}, and a resume goes on as it started; resume it "
        f"without dry_run (hybridwb run --resume {run_id}), or start a new run "
        f"({'without' if started else 'with'} --dry-run)."
    )


def refuse_unreadable_run(run: dict[str, Any]) -> None:
    """A run row whose `parameters` or `stats` is not a JSON object (edited by hand) is
    refused before its resume starts a kernel (round 51: the kernel ran, and the run's end
    raised a raw TypeError or AttributeError, its status left as it was)."""
    for name in ("parameters", "stats"):
        if not isinstance(run.get(name) or {}, dict):
            raise ValidationError(
                f"Run {run['id']}'s {name} is not a JSON object (edited by hand?); fix it with "
                "%%platform --write, or start a new run. Nothing was run."
            )
