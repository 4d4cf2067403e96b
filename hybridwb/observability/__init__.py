"""Diagnostics (`doctor`) and monitoring (`stats`)."""

from hybridwb.observability.doctor import Report, run_doctor
from hybridwb.observability.stats import Stats, collect, render_html

__all__ = ["Report", "Stats", "collect", "render_html", "run_doctor"]
