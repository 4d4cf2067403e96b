"""The HTML summary written next to each executed run notebook (pure: data in, HTML out).

What a campaign owner wants: counts by outcome and exclusion reason, three sample messages
with personal values masked, the SMS/LMS split with byte sizes, what policies and consent
rules excluded, and timing (start, end, trigger). Autoescaped Jinja2.
"""

from __future__ import annotations

import base64
import csv
import functools
import io
import json
import re
from decimal import Decimal
from typing import Any

from jinja2 import Environment, Template, select_autoescape

from hybridwb.source.querylog import log_text_of
from hybridwb.workflows.policies import CONSENT_REASONS, POLICY_REASONS

_DIGITS = re.compile(r"\d{3,}")
_EMAIL = re.compile(r"([^@\s])[^@\s]*@([^@\s]+)")


def _mask_value(value: str) -> str:
    if len(value) <= 1:
        return "*"
    return value[0] + "*" * (len(value) - 1)


def mask_text(text: str, values: dict[str, Any] | None = None) -> str:
    """The text with every personal value masked: the rendered variable values (names,
    dates, amounts), e-mail addresses, and every run of 3+ digits except its last 2."""
    for value in sorted(
        (str(v) for v in (values or {}).values() if v not in (None, "")), key=len, reverse=True
    ):
        if len(value) >= 2:
            text = text.replace(value, _mask_value(value))
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    return _DIGITS.sub(lambda m: "*" * (len(m.group()) - 2) + m.group()[-2:], text)


def shown_definition(target: Any) -> Any:
    """A target definition as a report shows it, as the query log shows a statement: a
    saved query's literals as `?`; a keyword, and its parameters' and its conditions' text
    values, masked whole (`_mask_value`: what someone picked a customer by, a phone, an
    e-mail or a name, which neither digits nor an @ give away), numbers' digits masked
    (`mask_text`). A report names no customer (round 31: a condition or a parameter on
    the customer's name printed it whole)."""
    if not isinstance(target, dict):
        return target
    out = dict(target)
    if "sql" in out:
        out["sql"] = log_text_of(out["sql"])
    if isinstance(out.get("keyword"), str):
        out["keyword"] = _mask_value(out["keyword"])
    if "params" in out:
        out["params"] = _masked_values(out["params"])
    if "where" in out:
        out["where"] = _masked_conditions(out["where"])
    return out


def _masked_conditions(node: Any) -> Any:
    """Every condition's `value` masked (`_masked_values`); the rest as written."""
    if isinstance(node, dict):
        return {
            k: _masked_values(v) if k == "value" else _masked_conditions(v) for k, v in node.items()
        }
    if isinstance(node, list):
        return [_masked_conditions(v) for v in node]
    return node


def _masked_values(value: Any) -> Any:
    if isinstance(value, str):
        return _mask_value(value) if value else value
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        # a phone typed as a number (1012345678) is masked as its text; a count is as written
        masked = mask_text(str(value))
        return value if masked == str(value) else masked
    if isinstance(value, dict):
        return {k: _masked_values(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked_values(v) for v in value]
    return value


_ENV = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
_TEMPLATE_TEXT = """<!doctype html>
<html lang="ko"><head><meta charset="utf-8"><title>{{ wf.name }} — run {{ run.id }}</title>
<style>body{font-family:sans-serif;max-width:780px;margin:2em auto}td,th{padding:2px 10px;text-align:left}.error{color:#cf222e}.warning{background:#fff8c5;border:1px solid #d4a72c;padding:6px}pre{white-space:pre-wrap;background:#f6f8fa;padding:6px}</style></head>
<body>
<h1>{{ wf.name }}</h1>
<p>Run <code>{{ run.id }}</code> · status <b class="status">{{ run.status }}</b>{% if run.dry_run %} · dry run{% endif %}</p>
{% if run.error %}<p class="error"><b>Reason:</b> {{ run.error }}</p>{% endif %}
{% if share is not none and share >= MOST %}<p class="warning"><b>Most targets were excluded:</b> {{ "{:,}".format(skipped) }} of {{ "{:,}".format(targets) }} ({{ "{:.0f}".format(share * 100) }} %). Look at the reasons below before the next run.</p>
{% elif share %}<p class="share">{{ "{:,}".format(skipped) }} of {{ "{:,}".format(targets) }} targets excluded ({{ "{:.0f}".format(share * 100) }} %).</p>{% endif %}
<h2>Outcome</h2>
<table>
<tr><th>targets (frozen at start)</th><td class="targets">{{ "{:,}".format(stats.targets or run.target_count or 0) }}</td></tr>
<tr><th>send records</th><td class="sent">{{ "{:,}".format(run.sent_count or 0) }}</td></tr>
<tr><th>excluded</th><td class="skipped">{{ "{:,}".format(run.skipped_count or 0) }}</td></tr>
<tr><th>still pending</th><td class="pending">{{ "{:,}".format(stats.pending or 0) }}</td></tr>
<tr><th>changed in the source since the freeze</th><td class="changed">{{ "{:,}".format(stats.changed_in_source or 0) }}</td></tr>
</table>
<h2>Excluded, by reason</h2>
<table class="reasons">{% for reason, n in reasons %}<tr><td>{{ reason }}</td><td>{{ "{:,}".format(n) }}</td></tr>{% else %}<tr><td colspan="2">none</td></tr>{% endfor %}</table>
{% if exclusions %}<p><a class="exclusions" download="{{ csv_name }}" href="data:text/csv;charset=utf-8;base64,{{ csv_b64 }}">Download the {{ "{:,}".format(exclusions|length) }} excluded targets (CSV: key, masked recipient, reason)</a>{% if exclusions|length < skipped %} — the first {{ "{:,}".format(exclusions|length) }} of {{ "{:,}".format(skipped) }}{% endif %}</p>{% endif %}
<h2>What was sent</h2>
<table>
<tr><th>template</th><td class="template-name">{{ template_name }}</td></tr>
</table>
<pre class="template">{{ template_text }}</pre>
<h2>Target definition</h2>
<pre class="target">{{ target_json }}</pre>
<h2>Policies and consent</h2>
<table>
<tr><th>send policy</th><td>{{ policy_text }}</td></tr>
<tr><th>excluded by policy</th><td class="by-policy">{{ "{:,}".format(by_policy) }}</td></tr>
<tr><th>advertising (정보통신망법 제50조)</th><td>{{ "yes" if stats.advertising else "no (informational)" }}</td></tr>
<tr><th>excluded for consent / quiet hours</th><td class="by-consent">{{ "{:,}".format(by_consent) }}</td></tr>
{% if stats.advertising %}<tr><th>night (21–08 KST) at run time</th><td>{{ "yes" if stats.night else "no" }}{% if stats.night %}, recipients without night consent: {{ "left waiting for 08:00 KST" if stats.quiet_hours == "wait" else "excluded" }}{% endif %}</td></tr>{% endif %}
{% if stats.waiting %}<tr><th>waiting for 08:00 KST</th><td class="waiting">{{ "{:,}".format(stats.waiting) }}</td></tr>{% endif %}
</table>
<h2>Message types</h2>
<table class="sizes">{% for kind, s in sizes %}<tr><td>{{ kind }}</td><td>{{ "{:,}".format(s.count) }} messages</td><td>{{ "{:,}".format(s.bytes) }} bytes (EUC-KR), {{ "{:.0f}".format(s.bytes / s.count if s.count else 0) }} per message</td></tr>{% else %}<tr><td>none rendered in the last pass</td></tr>{% endfor %}</table>
<h2>Sample messages (masked)</h2>
{% for s in samples %}<p>to {{ s.recipient }} · {{ s.type }} · {{ s.bytes }} bytes</p><pre class="sample">{{ s.text }}</pre>{% else %}<p>none</p>{% endfor %}
<h2>Timing</h2>
<table>
<tr><th>trigger</th><td>{{ trigger }}</td></tr>
<tr><th>started</th><td>{{ run.started_at or "" }}</td></tr>
<tr><th>finished</th><td>{{ run.finished_at or "" }}</td></tr>
<tr><th>last pass</th><td>{{ "{:.2f}".format(stats.duration_s or 0) }} s, {{ "{:,.0f}".format(stats.messages_per_s or 0) }} messages/s</td></tr>
<tr><th>missing variables</th><td>{{ missing }}</td></tr>
</table>
</body></html>
"""


@functools.cache
def _template() -> Template:
    """The report's template, compiled when the first report is written (not at import:
    every kernel and CLI command imports this module)."""
    return _ENV.from_string(_TEMPLATE_TEXT)


def _policy_text(policy: dict[str, Any]) -> str:
    parts = []
    if policy.get("once_per_recipient"):
        parts.append("once per recipient")
    if policy.get("cooldown_days"):
        parts.append(f"cooldown {policy['cooldown_days']:g} days")
    cap = policy.get("frequency_cap")
    if cap:
        parts.append(
            f"at most {cap['messages']} per recipient per {cap['days']:g} days (all workflows)"
        )
    return ", ".join(parts) or "none"


#: the share of excluded targets from which the report warns in words
MOST = 0.5


def excluded_note(run: dict[str, Any]) -> str | None:
    """One line for a terminal when half or more of a run's targets were excluded."""
    targets = int(run.get("target_count") or 0)
    skipped = int(run.get("skipped_count") or 0)
    if not targets or skipped / targets < MOST:
        return None
    return (
        f"most targets were excluded: {skipped:,} of {targets:,} "
        f"({skipped / targets:.0%}); the report lists them and why"
    )


def exclusions_csv(exclusions: list[dict[str, Any]]) -> str:
    """The excluded targets as CSV (with a BOM, so spreadsheet programs read the Korean):
    the key, the frozen recipient masked like every personal value here, the reason."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow(["target_key", "recipient", "reason"])
    for row in exclusions:
        writer.writerow(
            [row["target_key"], mask_text(str(row.get("recipient") or "")), row["reason"]]
        )
    return out.getvalue()


def render_html(
    workflow: dict[str, Any],
    run: dict[str, Any],
    trigger: str = "manual",
    *,
    template_text: str | None = None,
    exclusions: list[dict[str, Any]] | None = None,
) -> str:
    """The report. `template_text` is the message as written (variables, not values);
    `exclusions` the excluded targets offered as a CSV download (recipients masked)."""
    stats = run.get("stats") or {}
    reasons = sorted((stats.get("skipped_by_reason") or {}).items(), key=lambda kv: -kv[1])
    targets = int(stats.get("targets") or run.get("target_count") or 0)
    skipped = int(run.get("skipped_count") or 0)
    message = workflow.get("message_config") or {}
    if not isinstance(message, dict):  # a row edited by hand: the run failed on it already
        message = {}
    exclusions = exclusions or []
    return _template().render(
        MOST=MOST,
        share=skipped / targets if targets else None,
        targets=targets,
        skipped=skipped,
        template_name=message.get("template") or "(text in the workflow)",
        template_text=template_text if template_text is not None else message.get("content") or "",
        target_json=json.dumps(
            shown_definition(workflow.get("target_config") or {}),
            ensure_ascii=False,
            indent=2,
            default=str,
        ),
        exclusions=exclusions,
        csv_name=f"{run.get('id')}-exclusions.csv",
        csv_b64=base64.b64encode(exclusions_csv(exclusions).encode("utf-8")).decode("ascii"),
        wf=workflow,
        run=run,
        stats=stats,
        reasons=reasons,
        by_policy=sum(n for r, n in reasons if r in POLICY_REASONS),
        by_consent=sum(n for r, n in reasons if r in CONSENT_REASONS),
        policy_text=_policy_text(stats.get("policy") or {}),
        sizes=sorted((stats.get("sizes") or {}).items()),
        samples=stats.get("samples") or [],
        missing=", ".join(run.get("missing_variables") or []) or "none",
        trigger=trigger,
    )
