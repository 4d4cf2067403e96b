"""Message templates: parsing (#{} and Jinja2, sandboxed), variable matching, formatting."""

from hybridwb.templating.formatters import FORMATTERS
from hybridwb.templating.matching import Report, VariableStatus
from hybridwb.templating.message import euc_kr_size
from hybridwb.templating.parse import VariableUse, names, render, variables
from hybridwb.templating.service import Rendered, TemplateService

__all__ = [
    "FORMATTERS",
    "Rendered",
    "Report",
    "TemplateService",
    "VariableStatus",
    "VariableUse",
    "euc_kr_size",
    "names",
    "render",
    "variables",
]
