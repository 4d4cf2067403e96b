"""Workflows as parameterized notebooks: papermill runs, exactly-once records, schedules."""

from hybridwb.workflows.service import WorkflowService

__all__ = ["WorkflowService"]
