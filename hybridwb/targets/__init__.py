"""Dynamic target selection: definitions, previews with quality statistics, streaming."""

from hybridwb.targets.definition import (
    Aggregate,
    Condition,
    Exists,
    Group,
    Span,
    TargetDefinition,
    parse,
)
from hybridwb.targets.service import Plan, Preview, TargetService

__all__ = [
    "Aggregate",
    "Condition",
    "Exists",
    "Group",
    "Plan",
    "Preview",
    "Span",
    "TargetDefinition",
    "TargetService",
    "parse",
]
