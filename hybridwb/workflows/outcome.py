"""How a run ended, from its rows: the status `hybridwb run` writes, and the end of a run
processed without the runner (a notebook of one's own)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hybridwb import errors
from hybridwb.errors import HybridwbError
from hybridwb.platform.campaigns import Campaigns
from hybridwb.source.catalogue import server_text
from hybridwb.validation import unexpected_message
from hybridwb.workflows.lock import held_by_another

if TYPE_CHECKING:
    from hybridwb.platform.store import Store


def final_status(
    counts: dict[str, Any], error: str | None, dry_run: bool, run: dict[str, Any]
) -> tuple[str, str | None]:
    """The truth from the rows: failed, waiting, empty or succeeded, with the reason."""
    if error:
        return "failed", error
    stats = run.get("stats") or {}
    if counts["pending"] and stats.get("waiting"):
        return "waiting", (
            f"{counts['pending']:,} targets wait for 08:00 KST (no night-time consent); "
            f"resume with: hybridwb run --resume {run['id']} after then"
        )
    if dry_run:  # rendered targets stay pending: a dry run writes no records
        return "succeeded", None
    if counts["pending"]:
        return "failed", f"{counts['pending']:,} frozen targets were not processed; resume the run"
    if counts["targets"] == 0:
        return "empty", "no targets matched the workflow's target definition"
    if counts["records"] == 0:
        reasons = ", ".join(f"{r} {n:,}" for r, n in counts["skipped_by_reason"].items())
        return (
            "empty",
            f"all {counts['targets']:,} targets were excluded ({reasons}); nothing to send",
        )
    return "succeeded", None


def ended(
    store: Store,
    run_id: Any,
    dry_run: bool,
    stopped: BaseException | None = None,
    owner: str | None = None,
    periods: list[dict[str, Any]] | None = None,
) -> None:
    """The status of a run processed without the runner, from the rows as `hybridwb run`
    writes it: left `running`, its lock released, the next run would mark it `stale`
    ("its heartbeat stopped") though it had ended. A run `stopped` by an error (a consent
    column retyped mid-run, an interrupt) is failed with it, as the runner writes a cell's.
    The end is written into the `periods` the call opened or tried to open (each write
    names its period: at most one lands), or into a run never opened (`started_at` NULL);
    never into a period open now that is not the call's (a dead runner's, whose own end is
    kept on its host: round 36)."""
    error = None if stopped is None else stopped_line(stopped)
    campaigns = Campaigns(store.backend)
    run = store.runs.get(run_id)
    if owner is not None and held_by_another(campaigns.lock(run["workflow_id"]), run_id, owner):
        return  # taken over meanwhile (a resume elsewhere): the run's end is its new owner's
    counts = campaigns.counts(run_id)
    status, reason = final_status(counts, error, dry_run, run)
    targets = [*(periods or []), *([run] if run.get("started_at") is None else [])]
    for period in targets:
        store.runs.update_open(period, status=status, error=reason, finished_at=datetime.now(UTC))


def unwritten_end(stopped: BaseException | None, exc: BaseException) -> dict[str, Any]:
    """The end a by-hand call keeps when the store failed (`exc`) as its end was written:
    `failed`, with what stopped it if anything did; a resume settles the rest."""
    why = "" if stopped is None else f"{stopped_line(stopped)}; "
    return {
        "status": "failed",
        "finished_at": datetime.now(UTC),
        "error": f"{why}the store was unreachable as the run ended ({exc}); resume the run",
    }


def refuse_another_dry_run(run: dict[str, Any], dry_run: Any) -> None:
    """A run is processed as it was made, sending or not: a dry run processed by hand
    without `dry_run=True` wrote real send records (round 36); a real run tried dry ended
    `succeeded` with every target pending, and its resume was then refused (round 37)."""
    if bool(run.get("dry_run")) == bool(dry_run):
        return
    if run.get("dry_run"):
        raise errors.ValidationError(
            f"Run {run['id']} is a dry run; process it with dry_run=True (it sends nothing), "
            "or create a run without dry_run to send."
        )
    raise errors.ValidationError(
        f"Run {run['id']} sends (it is not a dry run); process it without dry_run, or try "
        "the workflow in a run made with dry_run=True."
    )


def stopped_line(stopped: BaseException) -> str:
    """What stopped a by-hand call, for `workflow_runs.error`: hybridwb's own error as its
    line, an interrupt as such, and any other error as the `InternalError` line the call
    leaves with (its type and place, never its text: round 55, a bug's `ValueError('…
    at 010-…')` was written to the run row as it was, masked only inside quotes)."""
    name = type(stopped).__name__
    if isinstance(stopped, KeyboardInterrupt):
        return f"{name}: the run was interrupted; resume it"
    if isinstance(stopped, HybridwbError):
        return f"{name}: {error_line(name, str(stopped))}"
    return f"InternalError: {unexpected_message(stopped, 'wb.workflows.process()')}"


def error_line(ename: str, evalue: str) -> str:
    """An error for `workflow_runs.error`: hybridwb's own errors are already scrubbed; any
    other (a driver error raised by a notebook's own code) may repeat a server message with
    a customer's value, so it goes through the one rule for server text."""
    cls = getattr(errors, ename, None)
    if isinstance(cls, type) and issubclass(cls, HybridwbError):
        return str(evalue).splitlines()[0] if evalue else ""
    return server_text(str(evalue or ""))


def end_by_hand(
    store: Store,
    home: Path | None,
    run_id: Any,
    kwargs: dict[str, Any],
    ends: list[dict[str, Any]],
    stopped: BaseException | None = None,
) -> None:
    """The end of a by-hand call's period (`ended`); when the store fails (or Ctrl-C
    lands) as it is written, kept on disk under `home` for the next command, as the runner
    keeps its own (round 36: the run was left `running` with no end)."""
    from hybridwb.workflows import pending, periods

    try:
        ended(store, run_id, bool(kwargs.get("dry_run")), stopped, kwargs["owner"], ends)
    except (HybridwbError, KeyboardInterrupt) as exc:
        if home is not None and ends:
            if isinstance(exc, KeyboardInterrupt):
                end = periods.interrupted_end(run_id, "as it ended")
            else:
                end = unwritten_end(stopped, exc)
            for period in ends:  # one entry per period tried: at most one lands (round 38)
                pending.keep(
                    home, period["workflow_id"], run_id, end, owner=kwargs["owner"], run=period
                )
        raise
