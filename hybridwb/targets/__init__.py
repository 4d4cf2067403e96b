"""Dynamic target selection: definitions, previews with quality statistics, streaming."""

from hybridwb.targets.definition import Condition, Group, TargetDefinition, parse
from hybridwb.targets.service import Preview, TargetService

__all__ = ["Condition", "Group", "Preview", "TargetDefinition", "TargetService", "parse"]
