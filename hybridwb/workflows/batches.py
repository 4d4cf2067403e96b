"""A run's batches as read before the cap lock: the pending frozen targets in frozen order,
their current source rows, and the candidates the send policies decide on.

Nothing here depends on what the batch before wrote (see `prefetch`), so the run reads
the next batch in a worker while it writes this one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Iterator
from typing import Any

from hybridwb import recipients
from hybridwb.errors import ValidationError
from hybridwb.platform.campaigns import Campaigns
from hybridwb.source.snapshot import SnapshotLost
from hybridwb.targets.consent import consent_of
from hybridwb.validation import short
from hybridwb.workflows import audience, policies


def has_nul(*values: Any) -> bool:
    return any(isinstance(v, str) and "\x00" in v for v in values)


def rows_with_nul(rows: dict[str, dict[str, Any]]) -> set[str]:
    """The keys of rows holding a NUL byte in a text value. One search through the
    batch's text joined first (a clean batch, nearly always, costs no per-row check)."""
    texts = [v for row in rows.values() for v in row.values() if isinstance(v, str)]
    if "\x00" not in "".join(texts):
        return set()
    return {key for key, row in rows.items() if has_nul(*row.values())}


def check_run(limit: Any, batch_size: Any, batch_pause: Any) -> None:
    """A run's own arguments, refused in one line before it reads or writes anything.

    The first pass checked `batch_size` only where it freezes (`targets.iter`), which a
    resume skips: 0 read batches of nothing and returned with every pending customer
    unmessaged, -1 failed in the store. `limit="3"` or `2.5` raised a raw TypeError from
    the freeze's worker, and a negative one froze nobody without a word; `batch_pause`
    -1, NaN or `"1"` a raw ValueError or TypeError after the first batch."""
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValidationError(f"batch_size must be a positive number, not {short(batch_size)}.")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise ValidationError(
            f"limit must be a count of targets (0 or more) or None, not {short(limit)}."
        )
    if (
        not isinstance(batch_pause, int | float)
        or isinstance(batch_pause, bool)
        or not 0 <= batch_pause < float("inf")
    ):
        raise ValidationError(f"batch_pause must be seconds (0 or more), not {short(batch_pause)}.")


class Related:
    """A batch's related values (`TemplateService.related`), read with its rows in one
    snapshot of the source (`pending_batches`), handed out for the rows asked for as
    `related(rows)` would read them; what that read raised is raised where they are asked
    for, and only there (as before, a batch none of whose messages is rendered never
    asks)."""

    def __init__(self, values: dict[int, dict[str, Any]], error: Exception | None = None):
        self.values = values  # by the row's identity: the batch's own row objects
        self.error = error

    def __call__(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self.error is not None:
            raise self.error
        values = self.values
        return [values[id(row)] for row in rows]


def read_related(
    related: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
    rows: dict[str, dict[str, Any]],
    candidates: list[policies.Candidate],
) -> Related:
    """The related values of the rows a batch may render (its candidates still present:
    every row `rendering` and the run's samples ask for), in one read; a read that fails
    (a source hiccup) is made once more, in the same snapshot, as rendering read them
    again before. A lost snapshot (`SnapshotLost`) goes up: the batch is read again whole."""
    present = [rows[c[0]] for c in candidates if c[4]]  # `Candidate.key`, `.present`
    if not present:
        return Related({})
    for attempt in (1, 2):
        try:
            values = related(present)
        except SnapshotLost:
            raise
        except Exception as exc:  # raised where a message asks for them (`Related`)
            if attempt == 2:
                return Related({}, exc)
            continue
        return Related({id(row): value for row, value in zip(present, values, strict=True)})
    raise AssertionError("unreachable")


Batch = tuple[list[dict[str, Any]], dict[str, dict[str, Any]], Any, Related]


def pending_batches(
    campaigns: Campaigns,
    run_id: Any,
    batch_size: int,
    first_pass: bool,
    fetch: Callable[[list[str]], dict[str, dict[str, Any]]],
    to_candidates: Callable[[list[dict[str, Any]], dict[str, dict[str, Any]]], Any],
    related: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
    consistent: Callable[[Callable[[], Any]], Any] | None = None,
) -> Iterator[Batch]:
    """The run's batches of pending frozen targets in frozen order, each with its current
    source rows, its candidates (`candidates`) and the related values of its rows read by
    `related` (`Related`): everything a batch reads before the cap lock, so `prefetch.ahead`
    can read the next one while this one is written. `consistent` (`Source.consistent`):
    the rows and their related values are read in one snapshot of the source, so a message
    never names a value of another moment than the row it is sent by (round 58's BREAK 6:
    a newer address committed between the two reads was named in a message sent to the
    older one's phone)."""
    after = last = 0
    while True:
        batch, after = campaigns.pending(run_id, after, batch_size, check_done=not first_pass)
        if not batch:
            if after == last:
                return
            last = after
            continue
        last = after
        keys = [t["target_key"] for t in batch]

        def read(batch: list[dict[str, Any]] = batch, keys: list[str] = keys) -> Batch:
            rows = fetch(keys)
            found = to_candidates(batch, rows)
            return batch, rows, found, read_related(related, rows, found[0])

        yield read() if consistent is None else consistent(read)


def distinct_recipients(candidates: list[policies.Candidate]) -> list[str]:
    """The recipients a batch's history check looks up: each once, in order."""
    return sorted({c[1] for c in candidates if c[1]})  # `Candidate.recipient`, by position


#: a `policies.Candidate` from a tuple of its six fields (what `Candidate(...)` builds,
#: less a Python frame: a run makes one per target)
new_candidate = functools.partial(tuple.__new__, policies.Candidate)


def checked_normalizer(channel: str) -> Callable[[Any], tuple[str | None, bool]]:
    """`policies.normalizer(channel)` that also says whether the recipient it gives is known to be
    `policies.deliverable`: a phone read by the fast path is a KR mobile number valid by the
    metadata, what `policies.deliverable` checks first, so `decide` need not check it again. Any
    other recipient is `(normalize(...), False)`: `decide` checks it as before."""
    if channel != "sms":
        return lambda recipient: (policies.normalize(channel, recipient), False)
    # `policies.national_mobile` inline: one regex call, no call of its own per recipient
    shape, valid = recipients._PADDED_NATIONAL_MOBILE.fullmatch, recipients._national_mobile_check()
    parsed = recipients._parsed_national_mobile

    def phone(recipient: Any) -> tuple[str | None, bool]:
        if type(recipient) is str and (found := shape(recipient)) is not None:
            nsn = "".join(found.groups())
            # what `normalize` gives such a text: its E.164 when valid, else as parsed
            return ("+82" + nsn, True) if valid(nsn) else (parsed(recipient.strip()), False)
        return policies.normalize("sms", recipient), False

    return phone


def candidates(
    batch: list[dict[str, Any]],
    rows: dict[str, dict[str, Any]],
    channel: str,
    recipient_path: str | None,
    consent_path: str | None,
    night_path: str | None,
    night_held: Collection[int] = (),
) -> tuple[list[policies.Candidate], list[tuple[str, str]], int]:
    """The batch's frozen targets as policy candidates, the unreadable ones as exclusions,
    and how many changed in the source since the freeze (gone, or another recipient).
    `night_held`: the seq numbers of frozen targets another row of the audience refused
    night consent for (`refusals`); one whose own night consent is a clear yes is given
    `policies.NIGHT_HELD` as its night consent, which is none at night."""
    candidates: list[policies.Candidate] = []
    skips: list[tuple[str, str]] = []
    changed = 0
    normalize, read = policies.normalizer(channel), checked_normalizer(channel)
    new, add, shared = new_candidate, candidates.append, audience.SHARED
    unreadable = rows_with_nul(rows)
    for t in batch:
        key = t["target_key"]
        row = rows.get(key)
        if row is None:
            changed += 1
            add(new((key, normalize(t["recipient"]), None, None, False, False)))
            continue
        if key in unreadable:
            skips.append((key, policies.BAD_ROW))  # never blocks the run
            continue
        if row is shared:  # another row took the key since the freeze (`audience.SHARED`)
            changed += 1
            skips.append((key, audience.KEY_NOT_UNIQUE))
            continue
        # the frozen (key, recipient) pair is the contract: when the source now holds another
        # address for the key, neither is sure to be this customer's (a number given up may
        # already be someone else's; the new one was never in the frozen set), so neither
        # is messaged and the exclusion is counted
        frozen = t["recipient"]
        current, checked = read(row.get(recipient_path) if recipient_path else None)
        if current != frozen and current != normalize(frozen):
            changed += 1
            skips.append((key, policies.RECIPIENT_CHANGED))
            continue
        # the consent values as `audience.value` reads them, without a call per target
        consent = None if consent_path is None else row.get(consent_path)
        night = None if night_path is None else row.get(night_path)
        if night_held and t.get("seq") in night_held and consent_of(night) is True:
            night = policies.NIGHT_HELD
        add(new((key, current, consent, night, True, checked)))
    return candidates, skips, changed
