"""`wb.workflows`: CRUD with config checks, the in-notebook processing, papermill runs."""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hybridwb.errors import HybridwbError, NotFound, StoreError, ValidationError
from hybridwb.platform.repos import as_uuid
from hybridwb.workflows.config import message_config
from hybridwb.workflows.report import render_html

if TYPE_CHECKING:
    from hybridwb.workbench import Workbench

DEFAULT_NOTEBOOK = "campaign.ipynb"


def _now() -> datetime:
    return datetime.now(UTC)


class WorkflowService:
    def __init__(self, wb: Workbench) -> None:
        self.wb = wb

    # -- CRUD ------------------------------------------------------------------------------
    def _check(self, fields: dict[str, Any]) -> None:
        if fields.get("target_config"):
            self.wb.targets.validate(fields["target_config"])
        if fields.get("message_config"):
            msg = message_config(fields["message_config"])
            if msg.template is not None:
                self.wb.templates.get(msg.template)
            elif msg.content is not None:
                self.wb.templates.variables(msg.content)

    def create(self, name: str, **fields: Any) -> dict[str, Any]:
        """Create a workflow; target, message and schedule configs are checked first."""
        self._check(fields)
        return self.wb.store.workflows.create(name=name, **fields)

    def get(self, key: Any) -> dict[str, Any]:
        return self.wb.store.workflows.get(key)

    def list(self, **where: Any) -> list[dict[str, Any]]:
        return self.wb.store.workflows.list(**where)

    def update(self, key: Any, **fields: Any) -> dict[str, Any]:
        self._check(fields)
        return self.wb.store.workflows.update(key, **fields)

    def delete(self, key: Any) -> None:
        self.wb.store.workflows.delete(key)

    # -- inside the notebook ---------------------------------------------------------------
    def process(
        self,
        workflow: Any,
        run_id: Any,
        *,
        dry_run: bool = False,
        limit: int | None = None,
        batch_size: int = 1000,
        batch_pause: float = 0.0,
        progress: bool = True,
    ) -> dict[str, Any]:
        """Resolve targets at run time, render, write send records once per target.

        Resumable: targets that already have a record in this run are skipped, and a
        record is keyed by (run, target), so a re-run can neither lose nor double one.
        """
        from tqdm import tqdm  # plain text: readable in the saved notebook and the terminal

        started = time.perf_counter()
        wf = self.get(workflow)
        store = self.wb.store
        run = store.runs.get(run_id)
        msg = message_config(wf["message_config"])
        template = self.wb.templates.get(msg.template) if msg.template else None
        text = template["content"] if template else str(msg.content)
        message_type = msg.message_type or (template["message_type"] if template else "SMS")
        plan = self.wb.targets.plan(wf["target_config"])
        table = plan.table or "customers"
        report = self.wb.templates.automap(text, table)
        done = set() if dry_run else store.runs.done_keys(run["id"])
        store.runs.update(run["id"], status="running", started_at=run.get("started_at") or _now())
        counts: Counter[str] = Counter()
        skipped: Counter[str] = Counter()
        targets = rendered = written = 0
        bar = tqdm(
            total=limit, unit="target", desc=wf["name"], disable=not progress, mininterval=0.5
        )
        for batch in self.wb.targets.iter(wf["target_config"], batch_size):
            if limit is not None:
                batch = batch[: max(0, limit - targets)]
            if not batch:
                break
            targets += len(batch)
            todo = [r for r in batch if str(r[plan.key or "id"]) not in done] if done else batch
            related = self.wb.templates.related(report, todo)
            records = []
            for row, rel in zip(todo, related, strict=True):
                out = self.wb.templates.render(
                    text,
                    row,
                    table=table,
                    mode=msg.mode,
                    message_type=message_type,
                    related=rel,
                    report=report,
                )
                recipient = row.get(plan.recipient) if plan.recipient else None
                if out.skipped:
                    skipped[out.skipped] += 1
                    continue
                if recipient in (None, ""):
                    skipped["no recipient"] += 1
                    continue
                rendered += 1
                records.append(
                    {
                        "run_id": run["id"],
                        "workflow_id": wf["id"],
                        "target_key": str(row[plan.key or "id"]),
                        "recipient": str(recipient),
                        "channel": msg.channel,
                        "content": out.text,
                    }
                )
            if records and not dry_run:
                written += store.runs.add_records(records)
            counts["batches"] += 1
            bar.update(len(batch))
            if batch_pause:
                time.sleep(batch_pause)
            if limit is not None and targets >= limit:
                break
        bar.close()
        duration = time.perf_counter() - started
        total_records = 0 if dry_run else store.runs.record_count(run["id"])
        stats = {
            "targets": targets,
            "rendered": rendered,
            "written_now": written,
            "resumed_skipped": len(done),
            "skipped_by_reason": dict(skipped),
            "duration_s": round(duration, 3),
            "messages_per_s": round(rendered / duration, 1) if duration else 0.0,
            "batches": counts["batches"],
        }
        missing = [v.name for v in report.variables if v.status in ("missing", "ambiguous")]
        store.runs.update(
            run["id"],
            target_count=targets,
            rendered_count=rendered,
            skipped_count=sum(skipped.values()),
            sent_count=total_records,
            missing_variables=missing,
            stats=stats,
        )
        if not dry_run:
            if template is not None:
                store.templates.increment_usage(template["id"])
            for status in report.variables:  # individual variables' usage statistics
                if (
                    status.source is not None
                    and status.source.kind == "variable"
                    and status.source.variable
                ):
                    store.variables.record_use(status.source.variable["id"])
        return stats

    # -- papermill -------------------------------------------------------------------------
    def notebook_for(self, wf: dict[str, Any]) -> Path:
        candidates = []
        if wf.get("notebook"):
            candidates.append(Path(wf["notebook"]))
        candidates.append(self.wb.settings.workflows_dir / DEFAULT_NOTEBOOK)
        candidates.append(
            Path(__file__).resolve().parents[2] / "notebooks" / "workflows" / DEFAULT_NOTEBOOK
        )
        for path in candidates:
            path = path if path.is_absolute() else Path.cwd() / path
            if path.is_file():
                return path
        raise NotFound(
            f"No workflow notebook found (looked for {candidates[0]}); set the workflow's notebook or HYBRIDWB_WORKFLOWS."
        )

    def run(
        self,
        workflow: Any,
        parameters: dict[str, Any] | None = None,
        *,
        dry_run: bool = False,
        limit: int | None = None,
        resume: Any = None,
        cell_timeout: int = 3600,
        progress: bool = True,
    ) -> dict[str, Any]:
        """Execute the workflow's notebook with papermill; returns the finished run row.

        The executed notebook goes to reports/<workflow>/<run id>.ipynb with an HTML
        summary beside it. A failed run keeps its partial notebook and its error; resume
        it with `resume=RUN_ID`.
        """
        import papermill as pm

        store = self.wb.store
        if resume is not None:
            run = store.runs.get(resume)
            if run["status"] == "succeeded":
                raise ValidationError(
                    f"Run {resume} already succeeded; there is nothing to resume."
                )
            wf = self.get(run["workflow_id"])
            params = {**(run.get("parameters") or {}), **(parameters or {})}
            dry_run = bool(run.get("dry_run"))
            limit = params.get("limit", limit)
        else:
            wf = self.get(workflow)
            params = {**(parameters or {}), "limit": limit}
            run = store.runs.create(wf["id"], params, dry_run=dry_run)
        out_dir = self.wb.settings.reports_dir / _slug(wf["name"])
        out_dir.mkdir(parents=True, exist_ok=True)
        output = out_dir / f"{run['id']}.ipynb"
        notebook = self.notebook_for(wf)
        pm_params = {
            **params,
            "workflow": str(wf["id"]),
            "run_id": str(run["id"]),
            "dry_run": dry_run,
            "limit": limit,
        }
        error: str | None = None
        with self._kernel_env():
            try:
                pm.execute_notebook(
                    str(notebook),
                    str(output),
                    parameters=pm_params,
                    kernel_name="python3",
                    kernel_manager_class=_ipc_kernel_manager(),
                    execution_timeout=cell_timeout,
                    progress_bar=False,
                    # the kernel's tqdm bar (targets processed) streams to this terminal
                    stderr_file=sys.stderr if progress else None,
                    cwd=str(Path.cwd()),
                )
            except pm.PapermillExecutionError as exc:
                error = f"{exc.ename}: {exc.evalue} (cell {exc.exec_count})"
            except Exception as exc:  # a dead kernel, a timeout: the run failed, say how
                error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        html = output.with_suffix(".html")
        try:
            store.runs.update(
                run["id"],
                status="failed" if error else "succeeded",
                finished_at=_now(),
                error=error,
                report_path=str(html),
            )
            final = store.runs.get(run["id"])
        except HybridwbError as exc:
            final = {
                **run,
                "status": "failed",
                "error": f"{error or ''} (and the store is unreachable: {exc})",
            }
        html.write_text(render_html(wf, final), encoding="utf-8")
        return final

    @contextmanager
    def _kernel_env(self) -> Iterator[None]:
        """The kernel connects like this process: pass the configuration through the
        environment (never through notebook parameters, which are saved in the output)."""
        settings = self.wb.settings
        extra: dict[str, str] = {}
        if settings.source_url is not None:
            extra["HYBRIDWB_SOURCE_URL"] = settings.source_url.get_secret_value()
        if settings.store_url is not None:
            extra["HYBRIDWB_STORE_URL"] = settings.store_url.get_secret_value()
        extra["HYBRIDWB_HOME"] = str(settings.home)
        extra["HYBRIDWB_MAPPINGS"] = str(settings.mappings_path)
        saved = {k: os.environ.get(k) for k in extra}
        os.environ.update(extra)
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    # -- schedules -------------------------------------------------------------------------
    def due(
        self, now: datetime | None = None, window_s: int = 300
    ) -> list[tuple[dict[str, Any], datetime]]:
        """Scheduled, active workflows whose latest cron time falls within the window."""
        from zoneinfo import ZoneInfo

        from croniter import croniter

        now = now or _now()
        out = []
        for wf in self.list():
            cfg = wf.get("schedule_config") or {}
            if wf["trigger_type"] != "schedule" or wf["status"] != "active" or not cfg.get("cron"):
                continue
            tz = ZoneInfo(cfg.get("timezone", "Asia/Seoul"))
            local_now = now.astimezone(tz)
            previous = croniter(cfg["cron"], local_now + _tick()).get_prev(datetime)
            if (local_now - previous).total_seconds() <= window_s:
                out.append((wf, previous.astimezone(UTC)))
        return out

    def run_due(
        self, owner: str, now: datetime | None = None, **kwargs: Any
    ) -> list[dict[str, Any]]:
        """Run every due workflow once per scheduled time, whoever else is trying too."""
        runs = []
        for wf, scheduled_for in self.due(now):
            if not self.wb.store.claim_schedule(wf["id"], scheduled_for, owner):
                continue
            runs.append(self.run(wf["id"], {"as_of": scheduled_for.isoformat()}, **kwargs))
        return runs


def _ipc_kernel_manager() -> type:
    """Kernels talk over local IPC sockets, not TCP ports on the machine."""
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class IPCKernelManager(AsyncKernelManager):
        @default("transport")
        def _default_transport(self) -> str:
            return "ipc"

    return IPCKernelManager


def _tick() -> Any:
    from datetime import timedelta

    return timedelta(seconds=1)


def _slug(name: str) -> str:
    keep = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in name.strip())
    return keep.strip("-") or "workflow"


__all__ = ["StoreError", "WorkflowService", "as_uuid"]
