"""The audience of a workflow, read from the mapping's roles (no table name in the code).

A target definition names a mapped table (or, for a saved query, the mapping marked
`audience`). That mapping gives the key (its primary key or a unique index), the
recipient (the channel address: `recipient`, else the one field whose role matches the
channel), and the marketing and night-time consent flags. Paths may be a field or a dotted
path through to-one relations (`address.phone`); `fetch()` is the one place that reads
them, through the shared relation resolver (mapping/resolve.py).
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from hybridwb.errors import ValidationError
from hybridwb.mapping.graph import Graph
from hybridwb.mapping.model import CHANNEL_ROLE as CHANNEL_ROLE  # where callers found it
from hybridwb.mapping.model import TableMapping
from hybridwb.mapping.resolve import compile_sql, time_text
from hybridwb.source import RowsCut
from hybridwb.targets.consent import temporal_type, type_family
from hybridwb.workflows.lock import taken_over

if TYPE_CHECKING:
    from hybridwb.platform.campaigns import Campaigns
    from hybridwb.platform.store import Store


@dataclass(frozen=True)
class Audience:
    table: str
    key: str
    key_type: str
    recipient: str
    channel: str
    consent: str | None
    night_consent: str | None

    @property
    def paths(self) -> list[str]:
        return [p for p in (self.recipient, self.consent, self.night_consent) if p]


def audience_of(name: str, mapping: TableMapping, graph: Graph | None = None) -> Audience:
    """The audience roles of one mapped table, or one error saying what to map. With the
    resolver's `graph`, a dotted path may go through any to-one relation it knows (the
    mapping's or a foreign key's); without it, through the mapping's own relations."""
    if not mapping.key:
        raise ValidationError(
            f"{name} has no 'key' in its mapping; set its primary key (or a unique column) "
            "as the key. Nothing was saved."
        )
    # the path, else the one field with the channel's role (several: refused)
    recipient = mapping.recipient_path(name)
    if not recipient:
        raise ValidationError(
            f"{name} has no recipient mapped (the {mapping.channel} address of each target); "
            f"set 'recipient' in its mapping, e.g. a phone field or 'address.phone'. "
            "Nothing was saved."
        )
    for i, path in enumerate((recipient, mapping.consent, mapping.nightConsent)):
        if path:  # the recipient (first) may end through the latest of a to-many relation
            _check_path(name, mapping, path, graph, latest=i == 0)
    return Audience(
        table=name,
        key=mapping.key,
        key_type=mapping.fields[mapping.key].type,
        recipient=recipient,
        channel=mapping.channel,
        consent=mapping.consent_path(name, "consent"),
        night_consent=mapping.consent_path(name, "night_consent"),
    )


def _check_path(
    name: str, mapping: TableMapping, path: str, graph: Graph | None, *, latest: bool = False
) -> None:
    """`latest`: the recipient's, whose last relation may be one-to-many with an orderBy."""
    head, _, rest = path.partition(".")
    if rest and graph is not None:
        try:
            graph.path(name, path, to_one=True, exact=True, latest=latest)
        except ValidationError as exc:
            raise ValidationError(f"{name}: {exc} Nothing was saved.", path=path) from None
        return
    if not rest:
        if head not in mapping.fields:
            raise ValidationError(
                f"{name}: {path!r} is not a mapped field; map it or fix the path. Nothing was saved."
            )
        return
    if not any(
        r.path_name == head and (r.kind == "many-to-one" or (latest and r.orderBy is not None))
        for r in mapping.relations
    ):
        raise ValidationError(
            f"{name}: {path!r} needs a to-one relation named {head!r}; add it to the mapping. "
            "Nothing was saved."
        )


def audience_for(mappings: Any, target_config: dict[str, Any]) -> Audience:
    """The audience of a target definition: its table, or the mapping marked `audience`."""
    table = (target_config or {}).get("table")
    resolver = getattr(mappings, "resolver", None)
    graph = resolver.graph if resolver is not None else None
    if table:
        name, mapping = mappings.resolve(table)
        return audience_of(name, mapping, graph)
    marked = [(n, m) for n, m in mappings.tables().items() if m.audience]
    if len(marked) != 1:
        raise ValidationError(
            "A saved-query target needs exactly one mapping marked 'audience': true "
            f"(found {len(marked)}); mark the table whose rows are your recipients."
        )
    return audience_of(*marked[0], graph)


def key_text(value: Any) -> str:
    """A source key as the store keeps it (text, no NUL: Postgres text cannot hold one).

    Bytes keys (BINARY(16) UUIDs) are `\\x` and their hex; in text keys a backslash is
    doubled and a NUL is `\\0`, so every source key has one spelling and `key_value()`
    gives the source value back."""
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, dt.timedelta):  # a TIME key: the server's spelling of it
        return time_text(value)
    text = str(value)
    if "\\" in text or "\x00" in text:
        return text.replace("\\", "\\\\").replace("\x00", "\\0")
    return text


_ESCAPED = re.compile(r"\\(.)", re.DOTALL)


def key_value(text: str) -> Any:
    """The source value of a stored key (see `key_text`), before any type coercion."""
    if text.startswith("\\x"):
        return bytes.fromhex(text[2:])
    if "\\" in text:
        return _ESCAPED.sub(lambda m: "\x00" if m[1] == "0" else m[1], text)
    return text


def coerce_key(audience: Audience, key: str) -> Any:
    """A stored (text) key back in the source's type, so `IN` uses the index."""
    value = key_value(key)
    if audience.key_type == "number" and isinstance(value, str) and _INT_TEXT.fullmatch(value):
        # ASCII digits only: Python's `int()` also reads '2024_0001', '１２' and '٣', which the
        # server reads as other numbers (2024, 0), so such a key would be looked up as gone
        return int(value)
    return value


_INT_TEXT = re.compile(r"-?[0-9]+")


def fetch(
    source: Any,
    plan: Any,
    audience: Audience,
    keys: list[str],
    only: Collection[str | None] | None = None,
) -> dict[str, dict[str, Any]]:
    """The current rows of these frozen targets that still match the target definition,
    with their to-one paths (`address.phone`) resolved by the plan's joins: {key text: row}.

    Frozen batches are in the server's own key order (the order the freeze read them in),
    so one key-range statement from the batch's first key to its last fetches it; any key
    the range did not bring back is then looked up exactly (a collation that orders or
    compares text unlike Python, e.g. case-insensitive, can never lose one). Keyword
    targets (not in key order) use the key list. Built with SQLAlchemy Core and quoted by
    the dialect; a row missing here has left the source or no longer qualifies, and the run
    counts it as changed. `only`: the columns wanted besides the key (see `columns_for`)."""
    if not keys:
        return {}
    if plan.definition.keyword is not None:
        wanted = [coerce_key(audience, k) for k in keys]
        stmt = plan.statement(keys=wanted, only=only)
        return _rows_by_key(source, plan, audience, stmt, keys) or {}
    inner = plan.statement(only=only).subquery("frozen")
    key = inner.c[plan.key]
    first, last = coerce_key(audience, keys[0]), coerce_key(audience, keys[-1])
    stmt = sa.select(inner).where(key >= first, key <= last).order_by(key)
    found = _rows_by_key(source, plan, audience, stmt, keys, cut_ok=True)
    if found is None:
        # the range held more rows than the read's cap (rows that match now but were not
        # frozen, between frozen keys): the rows past the cut could hold a frozen key a
        # second time, so none of it is trusted and every key is looked up exactly (round 49)
        found = {}
    missed = [coerce_key(audience, k) for k in keys if k not in found]  # rarely any
    if missed:
        by_list = plan.statement(keys=missed, only=only)
        found.update(_rows_by_key(source, plan, audience, by_list, keys) or {})
    return found


def _rows_by_key(
    source: Any, plan: Any, audience: Audience, stmt: Any, keys: list[str], cut_ok: bool = False
) -> dict[str, dict[str, Any]] | None:
    """{key text: row} of the read, `SHARED` for a key two rows hold; None when the read was
    cut at its cap (`cut_ok`), else refused: a row cut off could be a key's second holder,
    and its target would be sent with a row that is not sure to be its customer's."""
    sql, params = compile_sql(stmt)
    most = max(10 * len(keys), 10_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RowsCut)  # told by the count, below
        # as of the run's freeze: a saved query's or a view's NOW() picks the rows it froze
        rows, types = source.typed_records(
            sql, {**params, **plan.params}, limit=most, as_of=plan.clock
        )
    refuse_temporal_consent(audience, plan, types)
    refuse_retyped_consent(audience, plan, types)
    if len(rows) >= most:
        if cut_ok:
            return None
        raise ValidationError(
            f"{audience.table}: more than {most:,} rows hold the keys of one batch of "
            f"{len(keys):,} targets, so the run cannot tell which row is each customer's; "
            "the run stopped before this batch (nothing of it was sent). Key the audience "
            "by a unique column."
        )
    return by_key_text(rows, plan.key, set(keys))


def refuse_temporal_consent(audience: Audience, plan: Any, types: dict[str, str]) -> None:
    """A batch's consent columns (`plan.consent or audience.consent`, `night_consent`: what
    the run decides on) refused when the batch's own read says the server now types one as
    a date or time: ALTERed after the run's plan checked it (`plan_for_run`), a YEAR 2021
    would read as yes for everyone. `types` come from the read's cursor description, so
    the check costs no statement; the batch is never decided, nothing of it is sent."""
    for attr, path in (
        ("consent", plan.consent or audience.consent),
        ("nightConsent", audience.night_consent),
    ):
        kind = temporal_type(types.get(path or "", ""))
        if kind is not None:
            raise ValidationError(
                f"{audience.table}.{attr}: {path!r} is now a {kind} column (altered while the "
                "run was sending; a date or time is not a yes or no), so the run stopped "
                "before this batch; make it a yes/no column again or map one as consent, "
                "then resume the run.",
                path=f"{audience.table}.{attr}",
            )


def refuse_retyped_consent(audience: Audience, plan: Any, types: dict[str, str]) -> None:
    """A batch's consent columns refused when the batch's own read types one in another
    family than the run's plan did (`Plan.consent_types`, `consent.type_family`): ALTERed
    while the run was sending (a flag made a VARCHAR or a DECIMAL), its values are no
    longer what the run was planned to read. Like `refuse_temporal_consent`, no statement
    of its own; the batch is never decided. A resume plans with the type then found."""
    for attr, path in (
        ("consent", plan.consent or audience.consent),
        ("nightConsent", audience.night_consent),
    ):
        was = type_family(plan.consent_types.get(path or "", ""))
        now = type_family(types.get(path or "", ""))
        if was is not None and now is not None and now != was:
            raise ValidationError(
                f"{audience.table}.{attr}: {path!r} is now a {now} column, not the {was} "
                "column the run was planned with (altered while the run was sending), so the "
                "run stopped before this batch; put the column back, then resume the run.",
                path=f"{audience.table}.{attr}",
            )


#: the row `fetch` gives for a key more than one row holds (a key column not unique, a
#: to-one relation that is not): none of them is sure to be the frozen customer, so none
#: fills a message; the run excludes the target (`batches.candidates`). Told by identity.
SHARED: dict[str, Any] = {}
#: the exclusion reason of such a target (beside `policies.RECIPIENT_CHANGED`)
KEY_NOT_UNIQUE = "key not unique (another row took it since the run started)"


def by_key_text(
    rows: list[dict[str, Any]], key: str, keep: Collection[str]
) -> dict[str, dict[str, Any]]:
    """{`key_text` of the row's key: row} of the rows whose key text is in `keep`, `SHARED`
    for a key that more than one of them holds. `key_text` is inline for an int key (its
    digits): a run reads every target's row."""
    found = {
        k: r for r in rows if (k := str(v) if type(v := r[key]) is int else key_text(v)) in keep
    }
    if len(found) < len(rows):  # rows beside the wanted ones, or a key held twice
        held = Counter(k for r in rows if (k := key_text(r[key])) in keep)
        found.update((k, SHARED) for k, n in held.items() if n > 1)
    return found


def value(row: dict[str, Any], path: str | None) -> Any:
    return None if path is None else row.get(path)


def columns_for(
    plan: Any, audience: Audience, report: Any, *, advertising: bool = True
) -> set[str | None]:
    """The columns a run reads for each target (besides the key): the recipient path, the
    consent paths when the message is advertising (only then are they decided on), and
    what the template's variables read from the row (a field, or the local column a
    relation starts from, mapped or not: `Plan.locals`). Every mapped column too when a
    variable is an expression, which may read any field."""
    every = False
    wanted: set[str | None] = {plan.recipient or audience.recipient}
    if advertising:
        wanted |= {plan.consent or audience.consent, audience.night_consent}
    for status in report.variables:
        src = status.source
        if status.status not in ("mapped", "type mismatch") or src is None:
            continue
        var = src.variable or {}
        if var.get("source_type") == "expression":
            every = True
            continue
        if var.get("source_type") == "constant":
            continue
        if src.path is not None and src.path.hops:
            wanted.add(src.path.hops[0].local)
        elif src.field is not None:
            wanted.add(src.field)
    return {*plan.columns, *wanted} if every else wanted


def frozen_of(run: dict[str, Any], aud: Audience, now: dt.datetime) -> dict[str, Any]:
    """The frozen set's audience and as-of time; refuses a resume whose mapping now names
    another audience table or key (the stored keys would pick other people)."""
    frozen = (run.get("stats") or {}).get("frozen")
    if not frozen:  # frozen before this was recorded: judged as of now, as it was then
        return {"table": aud.table, "key": aud.key, "as_of": now.isoformat()}
    if (frozen["table"], frozen["key"]) != (aud.table, aud.key):
        raise ValidationError(
            f"Run {run['id']} froze its targets as {frozen['table']}.{frozen['key']}, but the "
            f"mapping now says {aud.table}.{aud.key}; resuming would message another audience. "
            "Restore the mapping to resume, or start a new run."
        )
    return dict(frozen)


def refuse_another_decision(
    run_id: Any, frozen: dict[str, Any], aud: Audience, advertising: bool
) -> None:
    """Refuses to work a frozen set's pending targets for another message or by other
    consent fields than it was decided for (`decided_for`, kept with the set)."""
    decided = decided_for(aud, advertising)
    # (a set frozen before round 46 recorded none of it: resumed as before)
    then = {name: frozen.get(name) for name in decided} if "advertising" in frozen else decided
    if then != decided:
        raise ValidationError(
            f"Run {run_id} froze its targets for {_decision_text(then)}, but the workflow "
            f"now sends {_decision_text(decided)}; the freeze decided who another customer's "
            "refusal of their phone or mailbox excludes for that message only, so resuming "
            "would message or exclude the wrong customers. Restore the workflow's template "
            "(or the mapping's consent fields) to resume, or start a new run."
        )


def decided_for(aud: Audience, advertising: bool) -> dict[str, Any]:
    """What a freeze decides the frozen set for, kept with it: an advertisement's freeze
    excludes the targets whose recipient another row refused marketing for and holds those
    refused night consent, by the consent fields mapped then (`workflows.refusals`); an
    informational message's decides nothing (it is exempt). A resume for another message,
    or by other consent fields, would go on with a set decided for something else (round
    46: a run frozen informational, made advertising and resumed, sent the ad to a phone
    its other holder had refused)."""
    return {
        "advertising": advertising,
        "consent": aud.consent if advertising else None,
        "night_consent": aud.night_consent if advertising else None,
    }


def _decision_text(decided: dict[str, Any]) -> str:
    if not decided.get("advertising"):
        return "an informational message"
    fields = ", ".join(
        f"{what} {decided.get(name)!r}"
        for what, name in (("consent", "consent"), ("night consent", "night_consent"))
    )
    return f"an advertisement ({fields})"


def remember_freeze(
    store: Store,
    campaigns: Campaigns,
    run: Any,
    aud: Audience,
    now: dt.datetime,
    owner: Any,
    advertising: bool = False,
    clock: float | None = None,
) -> None:
    """What the target set is frozen for (audience table, key, as-of time, the server's
    `clock` its reads see (None on SQLite), the message and consent fields it is decided
    for: `decided_for`), in the run's stats before the freeze marks it whole, as `owner` (`Campaigns.set_stats`): a resume completes it."""
    stats = dict(store.runs.get(run["id"]).get("stats") or {})
    stats["frozen"] = {
        "table": aud.table,
        "key": aud.key,
        "as_of": now.isoformat(),
        "clock": clock,
        **decided_for(aud, advertising),
    }
    if not campaigns.set_stats(run["id"], stats, workflow_id=run["workflow_id"], owner=owner):
        raise taken_over(run["id"])
