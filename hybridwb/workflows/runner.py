"""The papermill runner: one active run per workflow, a heartbeat, an honest final status.

Order matters and is the guarantee: the notebook is found and the reports directory is
writable before anything is written; the workflow's lock is taken (for a run id chosen
beforehand) before the run row exists, so a refused or failed start leaves no row behind;
the final status comes from the rows (records, exclusions, frozen targets), and a status
that cannot be written is kept on disk and written by the next command (pending.py).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import threading
import types
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hybridwb.config import Settings
from hybridwb.errors import CellTimeoutError, HybridwbError, NotFound, ValidationError
from hybridwb.platform.campaigns import Campaigns, call_owner
from hybridwb.source.catalogue import server_text
from hybridwb.workflows import context, pending, periods
from hybridwb.workflows.config import message_config
from hybridwb.workflows.lock import (
    STALE_AFTER_S,
    Heartbeat,
    held_by_another,
    let_go,
    refusal,
)
from hybridwb.workflows.lock import RunRefused as RunRefused  # re-exported: its old home
from hybridwb.workflows.outcome import error_line
from hybridwb.workflows.outcome import final_status as final_status  # re-exported
from hybridwb.workflows.params import (
    check_parameters,
    refuse_another_dry_run,
    refuse_another_limit,
    refuse_parameter_unlike_flag,
    refuse_unreadable_run,
)
from hybridwb.workflows.progress import RunProgress, in_notebook, show_report_link
from hybridwb.workflows.report import render_html
from hybridwb.workflows.stale import ACTIVE as ACTIVE  # re-exported: their old home
from hybridwb.workflows.stale import check_stale_after, stale_runs

if TYPE_CHECKING:
    from hybridwb.platform.store import Store

DEFAULT_NOTEBOOK = "campaign.ipynb"


def _now() -> datetime:
    return datetime.now(UTC)


def slug(name: str) -> str:
    keep = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in name.strip())
    return keep.strip("-") or "workflow"


def notebook_for(wf: dict[str, Any], workflows_dir: Path) -> Path:
    candidates = []
    if wf.get("notebook"):
        candidates.append(Path(wf["notebook"]))
    candidates.append(workflows_dir / DEFAULT_NOTEBOOK)
    candidates.append(Path(__file__).resolve().parent / "notebooks" / DEFAULT_NOTEBOOK)
    for path in candidates:
        path = path if path.is_absolute() else Path.cwd() / path
        if path.is_file():
            return path
    raise NotFound(
        f"No workflow notebook found (looked for {candidates[0]}); set the workflow's notebook "
        "or HYBRIDWB_WORKFLOWS."
    )


def writable_dir(path: Path) -> None:
    """The reports directory exists and takes a file, or one line saying what to fix."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".probe-{uuid.uuid4().hex[:8]}"
        probe.write_bytes(b"x" * 4096)
        probe.unlink()
    except OSError as exc:
        raise ValidationError(
            f"The reports directory {path} is not writable ({exc.strerror or exc}); free space or "
            "fix its permissions (HYBRIDWB_REPORTS), then run again."
        ) from None


@dataclass
class Runner:
    """Runs a workflow's notebook; given the settings and the store explicitly."""

    settings: Settings
    store: Store

    def mark_stale(self, stale_after: float = STALE_AFTER_S) -> list[dict[str, Any]]:
        """Runs that claim to be active but whose heartbeat stopped -> status `stale`."""
        stale = stale_runs(self.store, stale_after)
        for run in stale:
            self.store.runs.update_open(
                run,
                status="stale",
                error=f"its heartbeat stopped; resume with: hybridwb run --resume {run['id']}",
            )
        return stale

    def run(
        self,
        workflow: Any,
        parameters: dict[str, Any] | None = None,
        *,
        dry_run: bool = False,
        limit: int | None = None,
        resume: Any = None,
        now: datetime | None = None,
        trigger: str = "manual",
        cell_timeout: int = 3600,
        progress: bool = True,
        stale_after: float = STALE_AFTER_S,
    ) -> dict[str, Any]:
        """Execute the workflow's notebook with papermill; returns the finished run row.

        A cell that runs past `cell_timeout` seconds fails the run (recorded, lock released,
        report written) and then raises `CellTimeoutError`, so a scheduler or the CLI stops
        on it instead of reading a generic failure."""
        check_stale_after(stale_after)  # before `acquire` (round 38: a living lock taken)
        pm = papermill()
        from nbclient.exceptions import CellTimeoutError as NbCellTimeout

        store = self.store
        pending.flush(store, self.settings.home)
        params = dict(check_parameters(parameters))
        if resume is not None:
            run = store.runs.get(resume)
            refuse_unreadable_run(run)
            if run["status"] == "succeeded":
                raise ValidationError(
                    f"Run {resume} already succeeded; there is nothing to resume."
                )
            stored = run.get("parameters") or {}
            refuse_another_limit(resume, stored.get("limit"), params, limit)
            refuse_another_dry_run(resume, bool(run.get("dry_run")), params, dry_run)
            wf = store.workflows.get(run["workflow_id"])
            if workflow is not None and str(store.workflows.get(workflow)["id"]) != str(wf["id"]):
                # round 31: `hybridwb run B --resume <a run of A>` resumed A without a word
                raise ValidationError(
                    f"Run {resume} is a run of workflow {wf['name']!r}, not of the one named; "
                    f"resume it without a workflow (hybridwb run --resume {resume})."
                )
            params = {**stored, **params}
            dry_run = bool(run.get("dry_run"))
            limit = stored.get("limit")
            run_id = run["id"]
        else:
            refuse_parameter_unlike_flag(params, dry_run, limit)
            wf = store.workflows.get(workflow)
            params = {**params, "limit": limit}
            run_id = uuid.uuid4()
        notebook = notebook_for(wf, self.settings.workflows_dir)
        out_dir = self.settings.reports_dir / slug(wf["name"])
        writable_dir(out_dir)
        campaigns = Campaigns(store.backend)
        owner = call_owner()  # two runs of this process (threads) are two owners
        pm_params = check_parameters(  # again where the notebook is built: stored ones too
            {
                **params,
                "workflow": str(wf["id"]),
                "run_id": str(run_id),
                "owner": owner,
                "dry_run": dry_run,
                "limit": limit,
                "now": now.isoformat() if now else params.get("now"),
            }
        )
        held: dict[str, Any] | None = None
        beat = Heartbeat(campaigns, wf["id"], run_id, owner)
        follow: RunProgress | None = None
        made: dict[str, Any] | None = None  # the fresh run's row, once created
        opened: dict[str, Any] | None = None  # the period this runner opened
        tried: list[dict[str, Any]] = []  # the periods it tried to open (`open_period`)
        try:
            # from the moment the lock's row may be written (in `acquire`) until the kernel
            # starts, any failure or Ctrl-C releases it and stops the heartbeat: a row left
            # under this process's owner (alive, in a notebook) refuses the workflow's next
            # run for minutes, and a heartbeat left beating keeps it fresh for good
            held = campaigns.acquire(wf["id"], run_id, owner, stale_after)
            if held is not None:
                raise refusal(wf, held)
            self.mark_stale(stale_after)  # a run whose lock was just taken over says so
            if resume is None:
                made = store.runs.create(wf["id"], params, dry_run=dry_run, run_id=run_id)
            campaigns.start_state(run_id, owner, trigger)
            beat.start()
            # the runner opens the run's period itself (`running`, a new `started_at`), from
            # a read taken under the lock, and checks it reads back its own start: its end
            # is written into that period only, and one kept on disk because the store
            # failed at the end names it without a read (rounds 35 and 36: a status kept
            # with no period; a resume reopening from a read taken before its lock, after
            # which the run had ended or succeeded, wrote nothing and took no period)
            opened = periods.open_period(
                store, run_id, made, resume=resume is not None, tried=tried, error=None
            )
            # in a notebook: a live bar from the store's counts and a link at the end; in a
            # terminal: the run kernel's own output (its plain-text bar) passed through
            notebook_ui = progress and in_notebook()
            follow = RunProgress(campaigns, run_id, wf["name"]) if notebook_ui else None
            if follow is not None:
                follow.start()
            passthrough = progress and not notebook_ui
            output = out_dir / f"{run_id}.ipynb"
            # from a notebook the run kernel's own stderr would land in the cell: it goes to
            # a file beside the executed notebook (kept only if the kernel wrote anything)
            kernel_log = output.with_suffix(".kernel.log") if in_notebook() else None
        except BaseException as exc:
            if follow is not None:
                follow.done.set()
            if held is None:  # refused: the lock is the holder's
                # a run made or opened here that cannot start ends `failed`, saying why
                # (kept on disk if the store is down), before its lock goes: left as it
                # was, it read `queued` or `running` with no end until called stale
                # (a fresh run: as made, whether or not the answer to its insert came;
                # then any period tried: the one the run is in is ended, at most one)
                fresh = {"id": run_id, "workflow_id": wf["id"], "started_at": None}
                ends = ([] if resume is not None else [fresh]) + tried
                with contextlib.suppress(HybridwbError, KeyboardInterrupt):
                    self._not_started(wf, run_id, ends, exc, owner)
                let_go(campaigns, wf["id"], run_id, owner, beat)  # the error in hand is raised
            raise
        error: str | None = None
        timed_out, slow_cell = False, None  # a cell ran past cell_timeout; its number
        interrupted: KeyboardInterrupt | None = None  # Ctrl-C here: raised once recorded
        try:
            try:
                with context.ipc_directory() as ipc:
                    pm.execute_notebook(
                        str(notebook),
                        str(output),
                        parameters=pm_params,
                        kernel_name="python3",
                        kernel_manager_class=context.kernel_manager_class(
                            context.kernel_env(self.settings), ipc, log=kernel_log
                        ),
                        execution_timeout=cell_timeout,
                        progress_bar=False,
                        stdout_file=sys.stdout if passthrough else None,
                        stderr_file=sys.stderr if passthrough else None,
                        cwd=str(Path.cwd()),
                    )
            except pm.PapermillExecutionError as exc:
                error = f"{exc.ename}: {error_line(exc.ename, exc.evalue)} (cell {exc.exec_count})"
            except NbCellTimeout:  # a TimeoutError, so an OSError: caught before those
                timed_out, slow_cell = True, context.running_cell(output)
                where = f"cell {slow_cell}" if slow_cell is not None else "a cell"
                error = f"CellTimeoutError: {where} ran past its {cell_timeout} s time limit"
            except OSError as exc:
                error = f"writing the executed notebook failed ({exc.strerror or exc}); free space, then resume"
            except Exception as exc:  # a dead kernel, a timeout: the run failed, say how
                error = f"{type(exc).__name__}: {server_text(str(exc))}"
            except KeyboardInterrupt as exc:
                # Ctrl-C reaches this process only (the kernel has a session of its own), and
                # papermill has stopped the kernel on its way out: the run failed here, and its
                # lock is released like any failed run's, so a resume (from any process) and
                # the next run are not refused as "already has an active run"
                interrupted = exc
                error = f"KeyboardInterrupt: the run was interrupted; resume with: hybridwb run --resume {run_id}"
            finally:
                beat.stop()
                if follow is not None:
                    follow.stop()
            log = context.kept_log(kernel_log) if kernel_log is not None else None
            if error is not None and log is not None:
                error = f"{error}; the kernel's own output is in {log.name}"
            final = self._finish(
                wf, opened, error, output.with_suffix(".html"), trigger, dry_run, owner=owner
            )
        except KeyboardInterrupt:
            # Ctrl-C (again) as the run ends (its heartbeat stopped, its status written, its
            # lock released) keeps the run's end on disk and writes it if it can (round 36:
            # the run was left `running` with no end), releases the lock all the same, then
            # is raised: a row left under this living process's owner refuses the resume
            # elsewhere for minutes
            with contextlib.suppress(HybridwbError, KeyboardInterrupt):
                end = periods.interrupted_end(run_id, "as it ended")
                # not over an entry `_finish` kept already (its end, or the lock to
                # release): that one is what happened (round 37: the kernel's own error
                # was replaced by "interrupted")
                home = self.settings.home
                pending.keep(home, wf["id"], run_id, end, owner=owner, run=opened, replace=False)
                pending.flush(store, home)
            let_go(campaigns, wf["id"], run_id, owner, beat)
            raise
        if notebook_ui:
            show_report_link(
                Path(final.get("report_path") or output.with_suffix(".html")),
                final["status"],
                log=log,
            )
        if interrupted is not None:
            raise interrupted
        if timed_out:
            cell = "A cell" if slow_cell is None else f"Cell {slow_cell}"
            raise CellTimeoutError(
                f"{cell} of workflow {wf['name']!r} ran past its {cell_timeout} s time limit; "
                f"run {run_id} is marked failed. Make the cell faster or raise cell_timeout, "
                f"then resume with: hybridwb run --resume {run_id}",
                run_id=run_id,
                cell=slow_cell,
                timeout=cell_timeout,
                run=final,
            )
        return final

    def _finish(
        self,
        wf: dict[str, Any],
        opened: dict[str, Any],
        error: str | None,
        html: Path,
        trigger: str,
        dry_run: bool,
        owner: str | None = None,
    ) -> dict[str, Any]:
        """The run's status and counts from the rows, its lock released, its report; as
        `owner` (the runner's, which opened the period `opened` as it started), nothing but
        the report once another owner holds the run's lock or has ended the run: a resume
        elsewhere took it over, and its end is that process's to write; the end itself is
        written into `opened` only (`Runs.update_open`), kept on disk with it if the store
        fails."""
        store = self.store
        campaigns = Campaigns(store.backend)
        run_id = opened["id"]
        try:
            counts = campaigns.counts(run_id)
            run = store.runs.get(run_id)
            if owner is not None and (
                held_by_another(campaigns.lock(wf["id"]), run_id, owner)
                or run.get("finished_at") is not None  # ended by another since it started
            ):
                return self._report(wf, run, html, trigger)
            status, reason = final_status(counts, error, dry_run, run)
            fields = {
                "status": status,
                "finished_at": _now(),
                "error": reason,
                "report_path": str(html),
                "target_count": counts["targets"],
                "sent_count": counts["records"],
                "skipped_count": counts["skipped"],
                # the report's reasons and pending from the rows too: a kernel that failed
                # mid-pass left the stats of an earlier pass (or of the freeze: none)
                "stats": {**(run.get("stats") or {}), **counts},
            }
            # as `owner`, only while the run has no end and is in the period read above
            # (checked above, and again in the write: one sent late, after a resume's end or
            # start, writes nothing); without one, as asked
            if owner is not None:
                store.runs.update_open(opened, **fields)
            else:
                store.runs.update(run_id, **fields)
        except HybridwbError as exc:
            fields = {"status": "failed", "finished_at": _now(), "error": error or str(exc)}
            pending.keep(self.settings.home, wf["id"], run_id, fields, owner=owner, run=opened)
            final = {
                "id": run_id,
                "workflow_id": wf["id"],
                **fields,
                "error": f"{error or ''} (the store is unreachable: {exc}; the status is "
                "written by the next command)",
            }
            return self._report(wf, final, html, trigger)
        # the end is written: a store failing now changes neither it nor what is reported
        # (round 36: a failed release kept a `failed` beside the written `succeeded`); a
        # lock it could not release is released by the next command
        try:
            campaigns.release(wf["id"], run_id, owner)
        except HybridwbError:
            pending.keep(self.settings.home, wf["id"], run_id, {}, owner=owner, run=opened)
        try:
            final = store.runs.get(run_id)
        except HybridwbError:
            final = {**run, **fields}
        return self._report(wf, final, html, trigger)

    def _not_started(
        self,
        wf: dict[str, Any],
        run_id: Any,
        ends: list[dict[str, Any]],
        exc: BaseException,
        owner: str,
    ) -> None:
        """End the run (made or opened by this runner, whose notebook never started)
        `failed` with why, into whichever of the periods `ends` it is in, or keep that end
        on disk."""
        if not ends:
            return
        if isinstance(exc, KeyboardInterrupt):
            end = periods.interrupted_end(run_id, "before its notebook started")
        else:
            name = type(exc).__name__
            end = {
                "status": "failed",
                "finished_at": _now(),
                "error": f"{name}: {error_line(name, str(exc))} (before its notebook started; "
                f"resume with: hybridwb run --resume {run_id})",
            }
        periods.end_or_keep(self.store, self.settings.home, wf["id"], run_id, ends, end, owner)

    def _report(
        self, wf: dict[str, Any], final: dict[str, Any], html: Path, trigger: str
    ) -> dict[str, Any]:
        """The run's HTML report beside its notebook; `final` with a note if not written."""
        store, run_id = self.store, final["id"]
        campaigns = Campaigns(store.backend)
        details: dict[str, Any]
        try:
            details = {
                "template_text": template_text(store, wf),
                "exclusions": campaigns.exclusions(run_id),
            }
        except HybridwbError:
            details = {}  # the store is unreachable: the report says what it knows
        try:
            html.write_text(render_html(wf, final, trigger, **details), encoding="utf-8")
        except OSError as exc:
            final = {
                **final,
                "report_error": f"the HTML report could not be written ({exc.strerror})",
            }
        return final


def papermill() -> Any:
    """papermill, imported without building the IRI grammar jsonschema's `iri` format
    check uses when it finds `rfc3987-syntax` installed (a Jupyter dependency): 38 Lark
    parsers, ~0.7 s of a 4 s run's start, which nbformat's validation never asks for.
    While jsonschema is first imported, the grammar's module is a stand-in whose
    `is_valid_syntax` imports the real one on its first call, so jsonschema still checks
    IRIs in the process that ran this (`wb.run` in a user's own kernel), at that cost
    then; a later import of the module gets the real one. Nothing is changed once
    jsonschema or the grammar is imported already."""
    with _IMPORTING:
        if (
            "jsonschema" not in sys.modules
            and "rfc3987_syntax" not in sys.modules
            and importlib.util.find_spec("rfc3987_syntax") is not None
        ):
            stand_in = types.ModuleType("rfc3987_syntax")
            vars(stand_in).update(is_valid_syntax=_iri_syntax)
            sys.modules["rfc3987_syntax"] = stand_in
            try:
                import nbformat  # noqa: F401  # its validator imports jsonschema
            finally:
                if sys.modules.get("rfc3987_syntax") is stand_in:
                    del sys.modules["rfc3987_syntax"]
    import papermill as pm

    return pm


#: held while `papermill` has the grammar's stand-in in `sys.modules` (threads starting
#: runs at once), and by the stand-in's check while it imports the real module
_IMPORTING = threading.Lock()


def _renew_importing() -> None:
    """In a forked child: a lock another thread of the parent held at the fork (starting a
    run) would stay held forever, and the child's first run wait for it."""
    global _IMPORTING
    _IMPORTING = threading.Lock()


os.register_at_fork(after_in_child=_renew_importing)


def _iri_syntax(rule: str, value: str) -> bool:
    """`rfc3987_syntax.is_valid_syntax`, the real module imported on the first check (by
    name: it is jsonschema's optional dependency, not ours, and `papermill` put this
    stand-in only where `find_spec` found it installed)."""
    with _IMPORTING:
        grammar = importlib.import_module("rfc3987_syntax")
    return bool(grammar.is_valid_syntax(rule, value))


def template_text(store: Store, wf: dict[str, Any]) -> str:
    """The message as written: the library template's text, or the workflow's own."""
    cfg = message_config(wf.get("message_config") or {})
    if cfg.template:
        return str(store.templates.get(cfg.template)["content"])
    return str(cfg.content or "")
