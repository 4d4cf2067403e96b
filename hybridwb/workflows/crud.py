"""`wb.workflows`: CRUD with every save-time check, and the entry to runs and schedules.

The service is given its collaborators (settings, a store opener, mappings, targets,
templates, source) instead of the workbench, so workflows never import the workbench.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from hybridwb.config import Settings
from hybridwb.errors import ValidationError
from hybridwb.platform.backend import Op
from hybridwb.platform.repos import as_uuid
from hybridwb.validation import checked_calls
from hybridwb.workflows import advertising, audience, batches, scheduler
from hybridwb.workflows.advertising import message_of
from hybridwb.workflows.clock import parse_now
from hybridwb.workflows.config import message_config
from hybridwb.workflows.params import check_parameters
from hybridwb.workflows.process import DEFAULT_BATCH_SIZE, Processor
from hybridwb.workflows.runner import STALE_AFTER_S, Runner

if TYPE_CHECKING:
    from hybridwb.mapping import MappingService
    from hybridwb.platform.store import Store
    from hybridwb.source import Source
    from hybridwb.targets import TargetService
    from hybridwb.templating import TemplateService


@checked_calls("wb.workflows")
class WorkflowService:
    def __init__(
        self,
        settings: Settings,
        store: Callable[[], Store],
        source: Source,
        mappings: MappingService,
        targets: TargetService,
        templates: TemplateService,
    ) -> None:
        self.settings = settings
        self._store = store
        self.source = source
        self.mappings = mappings
        self.targets = targets
        self.templates = templates

    @property
    def store(self) -> Store:
        return self._store()

    # -- CRUD ------------------------------------------------------------------------------
    def check(self, fields: dict[str, Any], current: dict[str, Any] | None = None) -> None:
        """Everything a workflow is checked for before it is saved."""
        if not isinstance(fields, dict) or not isinstance(current, dict | None):
            raise ValidationError(
                "wb.workflows.check() takes the fields as a dict (and the current workflow "
                "as a dict or None); nothing was saved."
            )
        merged = {**(current or {}), **fields}
        target = merged.get("target_config") or {}
        if not isinstance(target, dict):  # round 32: JSON text was a raw AttributeError
            raise ValidationError(
                "workflow.target_config must be a dict, e.g. {'table': <a mapped table>, "
                "'where': {...}} (json.loads JSON text first); nothing was saved."
            )
        if fields.get("target_config"):
            self.targets.validate(target)
        if target and ("target_config" in fields or "message_config" in fields):
            audience.audience_for(self.mappings, target)  # no recipient -> refused
        if fields.get("message_config"):
            msg = message_config(fields["message_config"])
            if msg.template is None and msg.content is not None:
                self.templates.variables(msg.content)
            message = message_of(self.templates, fields["message_config"])
            if message.advertising:
                advertising.check(message.text, message.sender, "workflow's message")
        schedule = merged.get("schedule_config") or {}
        if fields.get("trigger_type") == "schedule" or fields.get("schedule_config"):
            scheduler.check_schedule(schedule)
        trigger = merged.get("trigger_config") or {}
        if not isinstance(trigger, dict):
            raise ValidationError(
                "workflow.trigger_config must be a dict, e.g. {'parameters': {...}}; "
                "nothing was saved."
            )
        params = trigger.get("parameters")
        if params is not None:
            check_parameters(params)
            # what a run would pass on to `process`, refused when it is saved, not at the
            # run the scheduler starts at 9:00 (round 51's leftover: `batch_size: 0` saved)
            batches.check_run(
                params.get("limit"),
                params.get("batch_size", DEFAULT_BATCH_SIZE),
                params.get("batch_pause", 0.0),
            )
            if params.get("now") is not None:
                parse_now(params["now"])

    def create(self, name: str, **fields: Any) -> dict[str, Any]:
        """Create a workflow; target, audience, message, advertising and schedule checked first."""
        self.check(fields)
        return self.store.workflows.create(name=name, **fields)

    def get(self, key: Any) -> dict[str, Any]:
        return self.store.workflows.get(key)

    def list(self, **where: Any) -> list[dict[str, Any]]:
        return self.store.workflows.list(**where)

    def update(self, key: Any, **fields: Any) -> dict[str, Any]:
        self.check(fields, self.get(key))
        return self.store.workflows.update(key, **fields)

    def delete(self, key: Any) -> None:
        self.store.workflows.delete(key)

    # -- runs ------------------------------------------------------------------------------
    @property
    def processor(self) -> Processor:
        return Processor(
            self.store,
            self.source,
            self.mappings,
            self.targets,
            self.templates,
            home=self.settings.home,
        )

    @property
    def runner(self) -> Runner:
        return Runner(self.settings, self.store)

    def process(self, workflow: Any, run_id: Any, **kwargs: Any) -> dict[str, Any]:
        """Inside the notebook: freeze, decide, render, write records (see process.py)."""
        now = parse_now(kwargs.pop("now", None))
        return self.processor.process(workflow, run_id, now=now, **kwargs)

    def run(
        self, workflow: Any, parameters: dict[str, Any] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Run the workflow's notebook with papermill; returns the finished run row."""
        if workflow is not None and kwargs.get("resume") is None:
            trigger = self.get(workflow).get("trigger_config") or {}
            if not isinstance(trigger, dict):  # a row edited by hand
                raise ValidationError(
                    "workflow.trigger_config must be a dict, e.g. {'parameters': {...}}; "
                    "fix it with wb.workflows.update(). Nothing was run."
                )
            stored = trigger.get("parameters") or {}
            parameters = {**stored, **(parameters or {})}
        if "now" in kwargs:
            kwargs["now"] = parse_now(kwargs["now"])
        if kwargs.get("resume") is None:
            # what the notebook passes on to `process` (`-p batch_size 0`, `-p now x`,
            # `--limit -5`), refused before the run's row is made: a typo was a failed run
            # with a report and a resume that fails alike (round 51)
            given = parameters or {}
            batches.check_run(
                kwargs.get("limit"),
                given.get("batch_size", DEFAULT_BATCH_SIZE),
                given.get("batch_pause", 0.0),
            )
            if kwargs.get("now") is None:
                parse_now(given.get("now"))
        return self.runner.run(workflow, parameters, **kwargs)

    def stale(self, stale_after: float = STALE_AFTER_S) -> builtins.list[dict[str, Any]]:
        """Mark and return runs whose heartbeat stopped."""
        return self.runner.mark_stale(stale_after)

    # -- schedules -------------------------------------------------------------------------
    def due(
        self, now: datetime | None = None, window_s: int = 300
    ) -> builtins.list[tuple[dict[str, Any], datetime]]:
        """(workflow, scheduled time) of each workflow due now; the rows skipped for a bad
        schedule are said in `last_problems` (as `run_due` says them), never dropped."""
        check = scheduler.due(self.list(), parse_now(now), window_s)
        self.last_problems = list(check.problems)
        return [(d.workflow, d.scheduled_for) for d in check.due]

    def run_due(
        self, owner: str, now: datetime | None = None, **kwargs: Any
    ) -> builtins.list[dict[str, Any]]:
        """Run every due workflow once per scheduled time; problems are in `last_problems`."""
        store = self.store

        def release(workflow_id: Any, scheduled_for: datetime) -> None:
            store.backend.apply(
                [
                    Op(
                        "delete",
                        "schedule_locks",
                        where={"workflow_id": as_uuid(workflow_id), "scheduled_for": scheduled_for},
                    )
                ]
            )

        def slot_run(workflow_id: Any, scheduled_for: datetime) -> Any:
            # the run made for this slot, by what it was made for (`as_of`), not by its
            # `created_at`: another host's clock stamps runs ahead or behind (round 55)
            slot = scheduled_for.isoformat()
            for run in store.runs.list(workflow_id):
                parameters = run.get("parameters")
                if isinstance(parameters, dict) and parameters.get("as_of") == slot:
                    return run["id"]
            return None

        def latest_run(workflow_id: Any) -> Any:
            newest = store.runs.list(workflow_id, limit=1)
            return newest[0]["id"] if newest else None

        runs, self.last_problems = scheduler.run_due(
            self.list(),
            store.claim_schedule,
            release,
            self.run,
            owner,
            parse_now(now),
            latest_run=latest_run,
            slot_run=slot_run,
            **kwargs,
        )
        return runs

    last_problems: builtins.list[str] = []  # noqa: RUF012 - replaced per call
