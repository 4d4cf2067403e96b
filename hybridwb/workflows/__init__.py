"""Workflows as parameterized notebooks: one module per concept.

crud.py        wb.workflows: CRUD with save-time checks; the entry to runs and schedules
config.py      message config, send policy, quiet-hours mode (pure)
audience.py    the audience from the mapping's roles; the one row fetcher
policies.py    consent, quiet hours, once-per-recipient, cooldown, frequency cap (pure)
advertising.py 정보통신망법 제50조 rules (pure)
params.py      papermill parameter checks (pure)
context.py     the run context handed to the kernel (settings via its env only)
process.py     inside the kernel: freeze, decide, render, write records
runner.py      papermill run, honest final status
outcome.py     how a run ended, from its rows (the final status)
lock.py        one active run per workflow: the lock, its heartbeat, its refusal
pending.py     final statuses the store did not take, written by the next command
scheduler.py   due workflows, each slot once
report.py      the HTML report (pure)
"""

from hybridwb.workflows.context import run_settings
from hybridwb.workflows.crud import WorkflowService

__all__ = ["WorkflowService", "run_settings"]
